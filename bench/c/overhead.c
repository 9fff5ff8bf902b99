/*
 * Per-statement cost of the C ABI against raw libmariadb, same server, same process.
 *
 * Usage: overhead MODE ITERATIONS HOST:PORT USER [SQL]   (password in MYSQL_PWD, DSN in
 *        DRFAILOVER_TEST_DSN; run under drfailover-topo)
 * MODE: raw | dr_query | dr_lease, or setup (creates the point-select table kv).
 * Prints "MODE statements/s".
 * Each mode's loop is its own non-inlined function, so callgrind --toggle-collect=loop_*
 * counts only the statements' client-side instructions.
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>
#include <mysql.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The statement every loop runs (argv[5]; SELECT 1 by default). */
static const char *SQL = "SELECT 1";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static int loop_raw(MYSQL *m, long n) {
    for (long i = 0; i < n; i++) {
        if (mysql_real_query(m, SQL, (unsigned long)strlen(SQL))) return 1;
        MYSQL_RES *r = mysql_store_result(m);
        if (!r) return 1;
        mysql_free_result(r);
    }
    return 0;
}

__attribute__((noinline)) static int loop_dr_query(dr_client *c, long n) {
    for (long i = 0; i < n; i++) {
        dr_result *r = NULL;
        if (dr_query(c, SQL, 0, &r) != DR_OK) return 1;
        dr_result_free(r);
    }
    return 0;
}

__attribute__((noinline)) static int loop_dr_lease(dr_client *c, long n) {
    for (long i = 0; i < n; i++) {
        MYSQL *m = NULL;
        if (dr_lease(c, 1000, &m) != DR_OK) return 1;
        if (mysql_real_query(m, SQL, (unsigned long)strlen(SQL))) return 1;
        MYSQL_RES *r = mysql_store_result(m);
        if (!r) return 1;
        mysql_free_result(r);
        if (dr_release(c, m) != DR_OK) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s raw|dr_query|dr_lease|setup ITERATIONS HOST:PORT USER [SQL]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (argc > 5) SQL = argv[5];
    long n = atol(argv[2]);
    char host[256];
    snprintf(host, sizeof host, "%s", argv[3]);
    char *colon = strrchr(host, ':');
    if (!colon) return 2;
    *colon = '\0';
    unsigned port = (unsigned)atoi(colon + 1);
    int rc;
    double t;
    if (strcmp(mode, "setup") == 0) {
        /* The table of the primary-key point select: kv(id, v), 1000 rows. */
        MYSQL *m = mysql_init(NULL);
        if (!mysql_real_connect(m, host, argv[4], getenv("MYSQL_PWD"), "app", port, NULL, 0) ||
            mysql_query(m, "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(32))") ||
            mysql_query(m, "INSERT INTO kv SELECT seq, CONCAT('value-', seq) FROM seq_1_to_1000")) {
            fprintf(stderr, "setup: %s\n", mysql_error(m));
            return 1;
        }
        mysql_close(m);
        return 0;
    }
    if (strcmp(mode, "raw") == 0) {
        MYSQL *m = mysql_init(NULL);
        if (!mysql_real_connect(m, host, argv[4], getenv("MYSQL_PWD"), "app", port, NULL, 0)) {
            fprintf(stderr, "connect: %s\n", mysql_error(m));
            return 1;
        }
        loop_raw(m, 200); /* warm up */
        t = now_s();
        rc = loop_raw(m, n);
        t = now_s() - t;
        mysql_close(m);
    } else {
        dr_client *c = NULL;
        if (dr_connect(getenv("DRFAILOVER_TEST_DSN"), &c) != DR_OK || dr_wait_ready(c, 5000, NULL) != DR_OK) {
            fprintf(stderr, "dr_connect: %s\n", dr_last_error()->message);
            return 1;
        }
        int lease = strcmp(mode, "dr_lease") == 0;
        if (lease) loop_dr_lease(c, 200); else loop_dr_query(c, 200);
        t = now_s();
        rc = lease ? loop_dr_lease(c, n) : loop_dr_query(c, n);
        t = now_s() - t;
        dr_close(c);
    }
    if (rc) {
        fprintf(stderr, "%s: a statement failed\n", mode);
        return 1;
    }
    printf("%s %.0f\n", mode, n / t);
    return 0;
}
