/* Checks shared by the C tests. */
#ifndef DRFAILOVER_TEST_CHECK_H
#define DRFAILOVER_TEST_CHECK_H

#include <stdio.h>

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

#endif
