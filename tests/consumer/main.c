/* Links against the installed library and checks the version and one real call. */
#include <drfailover.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", DR_VERSION_MAJOR, DR_VERSION_MINOR, DR_VERSION_PATCH);
    if (strcmp(dr_version(), expected) != 0) {
        fprintf(stderr, "header says %s, library says %s\n", expected, dr_version());
        return 1;
    }
    dr_client *c = NULL;
    if (dr_connect("mysql://u@h1:notaport/db", &c) != DR_E_CONFIG) return 1;
    printf("consumer: drfailover %s ok\n", dr_version());
    return 0;
}
