/*
 * AFTER: the same service on libdrfailover. No monitor thread, no global mutex, no blind
 * retry: the library probes every node with millisecond deadlines, follows the writer,
 * retries only statements that certainly did not run, and tells us what happened.
 *
 * Usage: failover_app 'mysql://app@db1:3306,db2:3306/shop?password_env=DB_PASSWORD' [N]
 */
#include <drfailover.h>

#include <stdio.h>
#include <stdlib.h>

static void on_event(void *userdata, const dr_event *ev) {
    (void)userdata;
    fprintf(stderr, "drfailover: %s\n", ev->json); /* e.g. ship to your log pipeline */
}

static int report(const char *what, dr_status st) {
    const dr_error *e = dr_last_error();
    fprintf(stderr, "%s: %s: %s\n", what, dr_status_str(st), e ? e->message : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN [N]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 100;
    dr_client *db = NULL;
    dr_status st = dr_connect(argv[1], &db);
    if (st != DR_OK) return report("connect", st);
    dr_on_event(db, on_event, NULL, NULL);
    if ((st = dr_wait_ready(db, 5000, NULL)) != DR_OK) return report("no writer", st);

    dr_query(db, "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)", 0, NULL);
    for (int i = 0; i < n; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%d)", i);
        st = dr_query(db, sql, 0, NULL); /* safe to call from many threads at once */
        if (st == DR_E_OUTCOME_UNKNOWN)
            fprintf(stderr, "insert %d: outcome unknown, check before retrying\n", i);
        else if (st != DR_OK)
            report("insert", st);
    }
    dr_close(db);
    return 0;
}
