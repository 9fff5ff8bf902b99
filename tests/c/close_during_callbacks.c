/*
 * dr_close while a slow event callback is running: dr_close waits for it, the finalizer runs
 * once after the last callback, and no callback runs after dr_close returns.
 * Run under drfailover-topo --fault kill9 (the failover produces a burst of events).
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int in_callback, calls, finalized, calls_after_finalize;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_event(void *userdata, const dr_event *ev) {
    (void)userdata;
    (void)ev;
    if (atomic_load(&finalized)) atomic_fetch_add(&calls_after_finalize, 1);
    atomic_store(&in_callback, 1);
    atomic_fetch_add(&calls, 1);
    sleep_ms(150);
    atomic_store(&in_callback, 0);
}

static void on_finalize(void *userdata) {
    (void)userdata;
    if (atomic_load(&in_callback)) atomic_fetch_add(&calls_after_finalize, 1);
    atomic_fetch_add(&finalized, 1);
}

int main(void) {
    const char *dsn = getenv("DRFAILOVER_TEST_DSN");
    if (!dsn) return 2;
    dr_config *cfg = NULL;
    dr_config_new(&cfg);
    if (dr_config_set(cfg, "dsn", dsn) != DR_OK) return 1;
    dr_config_on_event(cfg, on_event, NULL, on_finalize);
    dr_client *db = NULL;
    dr_status st = dr_connect_config(cfg, &db);
    dr_config_free(cfg);
    if (st != DR_OK) return 1;
    if (dr_wait_ready(db, 10000, NULL) != DR_OK) return 1;
    int before = atomic_load(&calls);
    printf("READY\n");
    fflush(stdout);
    /* Wait until a callback for the failover is running, then close under its feet. */
    for (int i = 0; i < 2000 && !(atomic_load(&in_callback) && atomic_load(&calls) > before); i++) sleep_ms(5);
    if (!atomic_load(&in_callback)) {
        fprintf(stderr, "no callback was running\n");
        return 1;
    }
    dr_close(db);
    int after_close = atomic_load(&calls);
    if (atomic_load(&in_callback)) {
        fprintf(stderr, "a callback is still running after dr_close returned\n");
        return 1;
    }
    if (atomic_load(&finalized) != 1) {
        fprintf(stderr, "finalizer ran %d times\n", atomic_load(&finalized));
        return 1;
    }
    sleep_ms(300);
    if (atomic_load(&calls) != after_close || atomic_load(&calls_after_finalize) != 0) {
        fprintf(stderr, "callbacks ran after dr_close / the finalizer\n");
        return 1;
    }
    /* The handle is a tombstone now: calls fail cleanly, a second close does nothing. */
    if (dr_query(db, "SELECT 1", 0, NULL) != DR_E_CLOSED) return 1;
    if (dr_wait_ready(db, 0, NULL) != DR_E_CLOSED) return 1;
    dr_close(db);
    printf("close_during_callbacks: ok (%d callbacks)\n", after_close);
    return 0;
}
