/*
 * React to failovers: an event callback logs what happened, and a thread blocks on
 * dr_wait_generation (a condition variable, no polling) to refresh its own state whenever
 * the writer changes — e.g. to re-read configuration or reset caches.
 *
 * Usage: events_wait DSN [FAILOVERS]   (prints READY once it is watching)
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static dr_client *db;
static int wanted = 1;

static void on_event(void *userdata, const dr_event *ev) {
    (void)userdata;
    if (ev->kind == DR_EVENT_FAILOVER_COMPLETED)
        printf("failover %s -> %s in %.1f ms\n", ev->old_writer, ev->new_writer, ev->duration_us / 1000.0);
    else
        printf("event: %s\n", ev->json);
    fflush(stdout);
}

static void *watcher(void *arg) {
    uint64_t gen = *(uint64_t *)arg;
    for (int seen = 0; seen < wanted;) {
        uint64_t now;
        dr_status st = dr_wait_generation(db, gen, 60000, &now);
        if (st != DR_OK) {
            fprintf(stderr, "wait: %s\n", dr_status_str(st));
            exit(1);
        }
        char *writer = NULL;
        if (dr_current_writer(db, &writer) == DR_OK) {
            printf("generation %llu -> %llu, writer now %s\n", (unsigned long long)gen, (unsigned long long)now, writer);
            dr_string_free(writer);
            seen++;
        }
        gen = now;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN [FAILOVERS]\n", argv[0]);
        return 2;
    }
    if (argc > 2) wanted = atoi(argv[2]);
    if (dr_connect(argv[1], &db) != DR_OK) return 1;
    dr_on_event(db, on_event, NULL, NULL);
    uint64_t gen = 0;
    if (dr_wait_ready(db, 5000, &gen) != DR_OK) return 1;
    pthread_t t;
    pthread_create(&t, NULL, watcher, &gen);
    printf("READY\n");
    fflush(stdout);
    pthread_join(t, NULL);
    dr_stats_info s;
    dr_stats(db, &s);
    printf("failovers=%llu probes=%llu\n", (unsigned long long)s.failovers, (unsigned long long)s.probes);
    dr_close(db);
    return 0;
}
