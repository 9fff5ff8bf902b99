/*
 * The C side of the kill -9 failover proof (driven by crates/drfailover-ffi/tests/c_failover.rs).
 *
 * Usage: failover_loop DSN [WRITES_AFTER_FAILOVER]
 * Inserts rows with unique ids into app.t in a loop through libdrfailover and prints one line
 * per outcome with a CLOCK_MONOTONIC timestamp:
 *   ok ID NS | unknown ID NS | event NS JSON | stats ... | done
 * Exits 0 after WRITES_AFTER_FAILOVER successful writes following a FAILOVER_COMPLETED event
 * and a clean dr_close (with the finalizer run); non-zero on any other error or after 60 s.
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

struct watch {
    atomic_int failovers;
    atomic_int connected;
    atomic_int finalized;
};

static void on_event(void *userdata, const dr_event *ev) {
    struct watch *w = userdata;
    printf("event %llu %s\n", now_ns(), ev->json);
    fflush(stdout);
    if (ev->kind == DR_EVENT_FAILOVER_COMPLETED) atomic_fetch_add(&w->failovers, 1);
    if (ev->kind == DR_EVENT_CONNECTED) atomic_fetch_add(&w->connected, 1);
}

static void on_finalize(void *userdata) {
    struct watch *w = userdata;
    atomic_store(&w->finalized, 1);
}

static int fail(const char *what, dr_status st) {
    const dr_error *e = dr_last_error();
    fprintf(stderr, "%s: %s (errno %u): %s\n", what, dr_status_str(st), e ? e->mysql_errno : 0,
            e && e->message ? e->message : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN [WRITES_AFTER_FAILOVER]\n", argv[0]);
        return 2;
    }
    int wanted_after = argc > 2 ? atoi(argv[2]) : 20;
    static struct watch w;

    dr_config *cfg = NULL;
    dr_status st = dr_config_new(&cfg);
    if (st != DR_OK) return fail("dr_config_new", st);
    if ((st = dr_config_set(cfg, "dsn", argv[1])) != DR_OK) return fail("dr_config_set dsn", st);
    if ((st = dr_config_on_event(cfg, on_event, &w, on_finalize)) != DR_OK) return fail("dr_config_on_event", st);
    dr_client *client = NULL;
    st = dr_connect_config(cfg, &client);
    dr_config_free(cfg);
    if (st != DR_OK) return fail("dr_connect_config", st);
    if ((st = dr_wait_ready(client, 10000, NULL)) != DR_OK) return fail("dr_wait_ready", st);

    unsigned long long started = now_ns();
    int after = 0;
    for (int id = 1;; id++) {
        if (now_ns() - started > 60ull * 1000000000ull) {
            fprintf(stderr, "gave up after 60 s (failovers seen: %d)\n", atomic_load(&w.failovers));
            return 3;
        }
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%d)", id);
        dr_result *res = NULL;
        st = dr_query(client, sql, 0, &res);
        if (st == DR_OK) {
            if (dr_result_affected_rows(res) != 1) {
                fprintf(stderr, "insert %d affected %llu rows\n", id,
                        (unsigned long long)dr_result_affected_rows(res));
                return 4;
            }
            dr_result_free(res);
            printf("ok %d %llu\n", id, now_ns());
            fflush(stdout);
            if (atomic_load(&w.failovers) > 0 && ++after >= wanted_after) break;
        } else if (st == DR_E_OUTCOME_UNKNOWN) {
            printf("unknown %d %llu\n", id, now_ns());
            fflush(stdout);
        } else {
            return fail("dr_query", st);
        }
    }

    /* Read back through the library: every row we were told about is on the writer. */
    dr_result *res = NULL;
    if ((st = dr_query(client, "SELECT COUNT(*), MAX(id) FROM t", 0, &res)) != DR_OK)
        return fail("select", st);
    if (dr_result_next_row(res) != 1) return fail("select: no row", DR_E_SQL);
    printf("count %s max %s\n", dr_result_value(res, 0, NULL), dr_result_value(res, 1, NULL));
    dr_result_free(res);

    dr_stats_info stats;
    if ((st = dr_stats(client, &stats)) != DR_OK) return fail("dr_stats", st);
    printf("stats failovers=%llu outcome_unknown=%llu retries=%llu reconnects=%llu\n",
           (unsigned long long)stats.failovers, (unsigned long long)stats.outcome_unknown,
           (unsigned long long)stats.retries, (unsigned long long)stats.reconnects);
    dr_close(client);
    if (!atomic_load(&w.finalized)) {
        fprintf(stderr, "finalizer did not run during dr_close\n");
        return 5;
    }
    if (atomic_load(&w.connected) != 1) {
        fprintf(stderr, "expected exactly one CONNECTED event, saw %d\n", atomic_load(&w.connected));
        return 6;
    }
    printf("done\n");
    return 0;
}
