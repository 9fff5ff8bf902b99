/*
 * A multi-threaded worker pool sharing one client: no global mutex — the library's pool
 * hands each thread its own connection, and no lock is held while a statement runs.
 *
 * Usage: worker_pool DSN [THREADS] [JOBS_PER_THREAD]
 */
#include <drfailover.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static dr_client *db;
static int jobs = 200;

static void *worker(void *arg) {
    long id = (long)arg, done = 0, unknown = 0;
    for (int j = 0; j < jobs; j++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO jobs (id, worker) VALUES (%ld, %ld)", id * 1000000 + j, id);
        dr_status st = dr_query(db, sql, 0, NULL);
        if (st == DR_OK) done++;
        else if (st == DR_E_OUTCOME_UNKNOWN) unknown++; /* do not blindly retry */
        else fprintf(stderr, "worker %ld: %s\n", id, dr_last_error()->message);
    }
    printf("worker %ld: %ld done, %ld unknown\n", id, done, unknown);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN [THREADS] [JOBS_PER_THREAD]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    if (argc > 3) jobs = atoi(argv[3]);
    if (threads < 1 || threads > 256) return 2;
    if (dr_connect(argv[1], &db) != DR_OK || dr_wait_ready(db, 5000, NULL) != DR_OK) {
        fprintf(stderr, "connect: %s\n", dr_last_error()->message);
        return 1;
    }
    if (dr_query(db, "CREATE TABLE IF NOT EXISTS jobs (id BIGINT PRIMARY KEY, worker INT)", 0, NULL) != DR_OK) return 1;
    pthread_t t[256];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    dr_result *r = NULL;
    if (dr_query(db, "SELECT COUNT(*) FROM jobs", 0, &r) != DR_OK || dr_result_next_row(r) != 1) return 1;
    printf("rows: %s\n", dr_result_value(r, 0, NULL));
    long rows = atol(dr_result_value(r, 0, NULL));
    dr_result_free(r);
    dr_close(db);
    return rows == (long)threads * jobs ? 0 : 1;
}
