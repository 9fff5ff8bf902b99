/* The header compiles on its own (nothing included before it). */
#include <drfailover.h>
int drfailover_header_alone_c(void) { return DR_OK + DR_VERSION_MAJOR; }
