/*
 * Every pooled connection leased, the writer up: dr_query gives DR_E_POOL_TIMEOUT (not
 * DR_E_NO_WRITER) within failover_timeout_ms, with a message naming the pool; once the lease
 * is given back, dr_query works again. Run under drfailover-topo --fault none.
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#define CHECK CHECK_OR_RETURN

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void) {
    const char *base = getenv("DRFAILOVER_TEST_DSN");
    if (!base) return 2;
    char dsn[2048];
    snprintf(dsn, sizeof dsn, "%s%spool_size=1&failover_timeout_ms=300", base,
             strchr(base, '?') ? "&" : "?");
    dr_client *db = NULL;
    CHECK(dr_connect(dsn, &db) == DR_OK);
    CHECK(dr_wait_ready(db, 5000, NULL) == DR_OK);

    st_mysql *held = NULL;
    CHECK(dr_lease(db, 2000, &held) == DR_OK && held != NULL);
    dr_result *res = NULL;
    double started = now_ms();
    dr_status st = dr_query(db, "SELECT 1", 0, &res);
    double took = now_ms() - started;
    CHECK(st == DR_E_POOL_TIMEOUT);
    CHECK(res == NULL);
    const dr_error *err = dr_last_error();
    CHECK(err != NULL && err->code == DR_E_POOL_TIMEOUT);
    CHECK(strstr(err->message, "pool") != NULL);
    CHECK(took >= 250 && took < 5000);
    printf("pool exhausted: %s after %.0f ms: %s\n", dr_status_str(st), took, err->message);

    CHECK(dr_release(db, held) == DR_OK);
    CHECK(dr_query(db, "SELECT 1", 0, &res) == DR_OK);
    dr_result_free(res);
    dr_close(db);
    printf("ok\n");
    return 0;
}
