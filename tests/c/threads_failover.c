/*
 * 8 threads write through one client while the primary is killed and the replica promoted
 * (run under drfailover-topo --fault kill9). Each thread must get writes through again;
 * every acknowledged write must be on the new primary; nothing but DR_OK and
 * DR_E_OUTCOME_UNKNOWN may come back.
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define WANTED 20

static dr_client *db;
static atomic_int failed_over;
static atomic_int errors;

struct worker {
    pthread_t thread;
    int index;
    long acked, unknown, acked_after;
};

static void *work(void *arg) {
    struct worker *w = arg;
    for (long n = 1; n < 1000000; n++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO t (id, thread) VALUES (%ld, %d)", w->index * 10000000L + n, w->index);
        dr_status st = dr_query(db, sql, 0, NULL);
        if (st == DR_OK) {
            w->acked++;
            if (atomic_load(&failed_over)) w->acked_after++;
        } else if (st == DR_E_OUTCOME_UNKNOWN) {
            w->unknown++;
        } else {
            fprintf(stderr, "thread %d: %s: %s\n", w->index, dr_status_str(st), dr_last_error()->message);
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        if (w->acked_after >= WANTED) return NULL;
    }
    return NULL;
}

int main(void) {
    const char *dsn = getenv("DRFAILOVER_TEST_DSN");
    if (!dsn) {
        fprintf(stderr, "DRFAILOVER_TEST_DSN is not set (run under drfailover-topo)\n");
        return 2;
    }
    if (dr_connect(dsn, &db) != DR_OK) return 1;
    uint64_t gen = 0;
    if (dr_wait_ready(db, 10000, &gen) != DR_OK) return 1;

    struct worker workers[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].index = i + 1;
        pthread_create(&workers[i].thread, NULL, work, &workers[i]);
    }
    /* Let every thread write a little, then ask for the fault. */
    for (int tries = 0; tries < 3000; tries++) {
        int ready = 1;
        for (int i = 0; i < THREADS; i++) ready &= workers[i].acked >= WANTED;
        if (ready) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("READY\n");
    fflush(stdout);
    uint64_t now = 0;
    dr_status st = dr_wait_generation(db, gen, 60000, &now);
    if (st != DR_OK) {
        fprintf(stderr, "no failover seen: %s\n", dr_status_str(st));
        return 1;
    }
    atomic_store(&failed_over, 1);
    long acked = 0, unknown = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(workers[i].thread, NULL);
        acked += workers[i].acked;
        unknown += workers[i].unknown;
        if (workers[i].acked_after < WANTED) {
            fprintf(stderr, "thread %d: only %ld writes after the failover\n", i + 1, workers[i].acked_after);
            return 1;
        }
    }
    dr_result *r = NULL;
    if (dr_query(db, "SELECT COUNT(*) FROM t", 0, &r) != DR_OK || dr_result_next_row(r) != 1) return 1;
    long rows = atol(dr_result_value(r, 0, NULL));
    dr_result_free(r);
    printf("acked=%ld unknown=%ld rows=%ld generation=%llu\n", acked, unknown, rows, (unsigned long long)now);
    dr_close(db);
    /* Every acknowledged write is there; at most the unknown ones are extra. */
    if (rows < acked || rows > acked + unknown || atomic_load(&errors)) return 1;
    printf("threads_failover: ok\n");
    return 0;
}
