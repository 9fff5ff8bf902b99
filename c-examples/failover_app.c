/*
 * AFTER: the same service as legacy_monitor.c, on libdrfailover. No monitor thread, no global
 * mutex, no blind retry: the library probes every node with millisecond deadlines, follows the
 * writer, retries only statements that certainly did not run, and tells us what happened.
 *
 * Writes one row every 2 ms for 1 s, prints READY (drfailover-topo, which ctest uses, kills the
 * primary and promotes the replica then), writes for SECONDS more, and prints what it saw:
 * statements acknowledged / failed / outcome unknown, the longest pause between two
 * acknowledged writes after READY, and whether every acknowledged row is on the writer.
 * Exit 0 when no acknowledged row is missing and writes went on after the first failure.
 *
 * Usage: failover_app 'mysql://app@db1:3306,db2:3306/shop?password_env=DB_PASSWORD' [SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void on_event(void *userdata, const dr_event *ev) {
    (void)userdata;
    fprintf(stderr, "drfailover: %s\n", ev->json); /* e.g. ship to your log pipeline */
}

static int report(const char *what, dr_status st) {
    const dr_error *e = dr_last_error();
    fprintf(stderr, "%s: %s: %s\n", what, dr_status_str(st), e ? e->message : "");
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN [SECONDS]\n", argv[0]);
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 3;
    dr_client *db = NULL;
    dr_status st = dr_connect(argv[1], &db);
    if (st != DR_OK) return report("connect", st);
    dr_on_event(db, on_event, NULL, NULL);
    if ((st = dr_wait_ready(db, 5000, NULL)) != DR_OK) return report("no writer", st);
    if ((st = dr_query(db, "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)", 0, NULL)) != DR_OK)
        return report("create table", st);
    if ((st = dr_query(db, "DELETE FROM t", 0, NULL)) != DR_OK) return report("empty table", st);

    int max = (int)((1 + seconds) * 500) + 1, acked = 0, failed = 0, unknown = 0;
    char *ok = calloc((size_t)max, 1);
    double start = now_ms(), ready = 0, last_ack = 0, longest = 0, first_failure = 0;
    for (int i = 0; i < max && now_ms() - start < (1 + seconds) * 1e3; i++) {
        if (!ready && now_ms() - start >= 1e3) {
            ready = last_ack = now_ms();
            printf("READY\n");
            fflush(stdout);
        }
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%d)", i);
        st = dr_query(db, sql, 0, NULL); /* safe to call from many threads at once */
        if (st == DR_OK) {
            ok[i] = 1;
            acked++;
            double t = now_ms();
            if (ready && t - last_ack > longest) longest = t - last_ack;
            last_ack = t;
        } else if (st == DR_E_OUTCOME_UNKNOWN) {
            if (!first_failure) first_failure = now_ms();
            unknown++; /* the connection died after sending: check, don't replay */
            fprintf(stderr, "insert %d: outcome unknown, not replayed\n", i);
        } else {
            if (!first_failure) first_failure = now_ms();
            failed++;
            report("insert", st);
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }

    /* Every acknowledged row must be on the writer. */
    dr_result *res = NULL;
    if ((st = dr_query(db, "SELECT id FROM t", 0, &res)) != DR_OK) return report("read back", st);
    char *present = calloc((size_t)max, 1);
    for (uint64_t r = 0; r < dr_result_num_rows(res); r++) {
        int id = atoi(dr_result_value_at(res, r, 0, NULL));
        if (id >= 0 && id < max) present[id] = 1;
    }
    dr_result_free(res);
    int lost = 0;
    for (int i = 0; i < max; i++) lost += ok[i] && !present[i];
    printf("after (drfailover): %d acknowledged, %d failed, %d outcome unknown; "
           "longest pause after READY %.0f ms; acknowledged rows missing: %d\n",
           acked, failed, unknown, longest, lost);
    free(ok);
    free(present);
    dr_close(db);
    int recovered = !first_failure || last_ack > first_failure;
    if (!recovered) fprintf(stderr, "never wrote again after the first failure\n");
    return lost == 0 && recovered ? 0 : 1;
}
