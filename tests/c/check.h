/* Checks shared by the C tests. */
#ifndef DRFAILOVER_TEST_CHECK_H
#define DRFAILOVER_TEST_CHECK_H

#include <stdio.h>
#include <unistd.h>

/* Fail the calling function (return 1) when `cond` is false, saying where. */
#define CHECK_OR_RETURN(cond)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                              \
        }                                                                          \
    } while (0)

/* Count a failure in the caller's `failures` when `cond` is false, saying where; go on. */
#define CHECK_OR_COUNT(cond)                                                     \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

/* This process's resident set in KiB (from /proc/self/statm), or -1 when unreadable. */
static inline long check_rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
