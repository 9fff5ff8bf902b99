// The header compiles on its own as C++.
#include <drfailover.h>
int drfailover_header_alone_cpp() { return static_cast<int>(DR_OK) + DR_VERSION_MAJOR; }
