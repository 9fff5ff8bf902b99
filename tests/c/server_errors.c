/*
 * The server's errno and SQLSTATE reach the C caller unchanged:
 * an unknown database is 1044 / 42000 (not 1045 / 28000), a wrong password 1045 / 28000, and a
 * write rejected by a writer that was made read-only (nothing promoted) ends, after
 * failover_timeout_ms, in DR_E_NO_WRITER carrying the server's 1290 / HY000.
 * Run under drfailover-topo --fault readonly (the primary is made read-only at READY).
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#define CHECK CHECK_OR_RETURN

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Connect with `dsn`, expect `status` with the server's `errno_` and `sqlstate`. */
static int expect_connect_error(const char *what, const char *dsn, dr_status status,
                                unsigned errno_, const char *sqlstate) {
    dr_client *db = NULL;
    dr_status st = dr_connect(dsn, &db);
    const dr_error *err = dr_last_error();
    printf("%s: %s, mysql_errno %u, sqlstate %s: %s\n", what, dr_status_str(st),
           err ? err->mysql_errno : 0, err ? err->sqlstate : "-", err ? err->message : "-");
    CHECK(st == status);
    CHECK(db == NULL);
    CHECK(err != NULL && err->code == status);
    CHECK(err->mysql_errno == errno_);
    CHECK(strcmp(err->sqlstate, sqlstate) == 0);
    return 0;
}

int main(void) {
    const char *base = getenv("DRFAILOVER_TEST_DSN");
    const char *password = getenv("MYSQL_PWD");
    if (!base || !password || !*password) return 2;
    char dsn[2048];

    /* mysql://user:pw@hosts/app?options -> .../no_such_db?options */
    const char *query = strchr(base, '?');
    const char *end = query ? query : base + strlen(base);
    const char *slash = end;
    while (slash > base && *slash != '/') slash--;
    CHECK(*slash == '/');
    snprintf(dsn, sizeof dsn, "%.*s/no_such_db%s", (int)(slash - base), base, query ? query : "");
    if (expect_connect_error("unknown database", dsn, DR_E_AUTH, 1044, "42000")) return 1;
    const dr_error *err = dr_last_error();
    CHECK(strstr(err->message, "no_such_db") != NULL);

    /* The same DSN with the password replaced. */
    const char *pw = strstr(base, password);
    CHECK(pw != NULL);
    snprintf(dsn, sizeof dsn, "%.*swrong%s", (int)(pw - base), base, pw + strlen(password));
    if (expect_connect_error("wrong password", dsn, DR_E_AUTH, 1045, "28000")) return 1;
    CHECK(strstr(dr_last_error()->message, password) == NULL);

    /* A write rejected as read-only. */
    snprintf(dsn, sizeof dsn, "%s%sfailover_timeout_ms=500", base, query ? "&" : "?");
    dr_client *db = NULL;
    CHECK(dr_connect(dsn, &db) == DR_OK);
    CHECK(dr_wait_ready(db, 5000, NULL) == DR_OK);
    dr_result *res = NULL;
    CHECK(dr_query(db, "CREATE TABLE app.ro (id INT PRIMARY KEY)", 0, &res) == DR_OK);
    dr_result_free(res);
    CHECK(dr_query(db, "INSERT INTO app.ro VALUES (0)", 0, &res) == DR_OK);
    dr_result_free(res);
    printf("READY\n");
    fflush(stdout);
    dr_status st = DR_OK;
    int acked = 1;
    for (int i = 1; i < 4000 && st == DR_OK; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO app.ro VALUES (%d)", i);
        res = NULL;
        st = dr_query(db, sql, 0, &res);
        if (st == DR_OK) {
            acked++;
            dr_result_free(res);
            sleep_ms(5);
        }
    }
    err = dr_last_error();
    printf("read-only writer: %s after %d acknowledged writes, mysql_errno %u, sqlstate %s: %s\n",
           dr_status_str(st), acked, err ? err->mysql_errno : 0, err ? err->sqlstate : "-",
           err ? err->message : "-");
    CHECK(st == DR_E_NO_WRITER);
    CHECK(err != NULL && err->code == DR_E_NO_WRITER);
    CHECK(err->mysql_errno == 1290);
    CHECK(strcmp(err->sqlstate, "HY000") == 0);
    dr_close(db);
    printf("ok\n");
    return 0;
}
