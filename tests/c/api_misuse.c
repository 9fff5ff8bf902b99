/*
 * Every entry point given NULLs and bad input returns an error, never crashes. No server
 * needed: the DSN points at a closed loopback port.
 */
#include <drfailover.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
#include "check.h"
#define CHECK CHECK_OR_COUNT

static int finalized = 0;
static void on_event(void *ud, const dr_event *e) {
    (void)ud;
    (void)e;
}
static void finalize(void *ud) { ++*(int *)ud; }

/* A log callback as slow as a careless one (it blocks until released, at most 10 s): it must
 * never delay the library's own threads. */
static volatile int log_records = 0;
static volatile int log_release = 0;
static void slow_log(void *ud, dr_log_level level, const char *target, const char *message) {
    (void)ud;
    (void)level;
    (void)target;
    (void)message;
    log_records++;
    for (int i = 0; i < 1000 && !log_release; i++) usleep(10 * 1000);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Released values never change meaning; new kinds get new values. */
_Static_assert(DR_EVENT_OTHER == 0, "DR_EVENT_OTHER");
_Static_assert(DR_EVENT_EVENTS_DROPPED == 10, "EVENTS_DROPPED");
_Static_assert(DR_EVENT_PRIMARY_UNREACHABLE == 11 && DR_EVENT_FAILOVER_BLOCKED == 12 &&
                   DR_EVENT_FENCED == 13 && DR_EVENT_STEP_COMPLETED == 14 &&
                   DR_EVENT_STEP_FAILED == 15,
               "orchestrator kinds");

int main(void) {
    dr_client *c = (dr_client *)0x1; /* must stay untouched on failure */
    CHECK(dr_connect(NULL, &c) == DR_E_INVALID_ARGUMENT);
    CHECK(c == (dr_client *)0x1);
    CHECK(dr_last_error() != NULL && dr_last_error()->code == DR_E_INVALID_ARGUMENT);
    CHECK(strstr(dr_last_error()->message, "dsn") != NULL);
    CHECK(dr_connect("mysql://u@h1:3306", NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_connect("postgres://nope", &c) == DR_E_CONFIG);
    CHECK(dr_connect("mysql://u@h1:99999/db", &c) == DR_E_CONFIG);
    CHECK(strstr(dr_last_error()->message, "99999") != NULL);
    CHECK(dr_connect("mysql://u@h1/db?nope=1", &c) == DR_E_CONFIG);
    CHECK(dr_connect("mysql://u:secretpw@h1/db?nope=1", &c) == DR_E_CONFIG);
    CHECK(strstr(dr_last_error()->message, "secretpw") == NULL);
    CHECK(dr_connect("mysql://u@h\xff\xfe/db", &c) == DR_E_INVALID_ARGUMENT); /* bad UTF-8 */
    CHECK(c == (dr_client *)0x1);

    CHECK(dr_query(NULL, "SELECT 1", 0, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_wait_ready(NULL, 0, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_wait_generation(NULL, 0, 0, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_on_event(NULL, NULL, NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_state(NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_stats(NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_current_writer(NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_lease(NULL, 0, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_release(NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_new(NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_set(NULL, "user", "x") == DR_E_INVALID_ARGUMENT);
    CHECK(dr_connect_config(NULL, &c) == DR_E_INVALID_ARGUMENT);
    dr_close(NULL);
    dr_result_free(NULL);
    dr_config_free(NULL);
    dr_string_free(NULL);
    CHECK(dr_result_num_rows(NULL) == 0);
    CHECK(dr_result_num_fields(NULL) == 0);
    CHECK(dr_result_field_name(NULL, 0) == NULL);
    CHECK(dr_result_next_row(NULL) == 0);
    CHECK(dr_result_value(NULL, 0, NULL) == NULL);
    CHECK(dr_result_value_at(NULL, 0, 0, NULL) == NULL);
    CHECK(dr_result_affected_rows(NULL) == 0);
    CHECK(dr_result_insert_id(NULL) == 0);
    CHECK(dr_config_on_event(NULL, NULL, NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_version() != NULL && strlen(dr_version()) >= 5);

    /* Over-long strings are rejected without reading past the limit. */
    size_t big = 2u << 20;
    char *longdsn = malloc(big + 1);
    memset(longdsn, 'a', big);
    longdsn[big] = '\0';
    memcpy(longdsn, "mysql://", 8);
    CHECK(dr_connect(longdsn, &c) == DR_E_INVALID_ARGUMENT);
    CHECK(strstr(dr_last_error()->message, "longer than") != NULL);
    free(longdsn);
    /* A 1 MiB DSN of many password pieces fails at once (no quadratic redaction). */
    size_t mib = 1u << 20;
    char *pieces = malloc(mib + 1);
    memcpy(pieces, "mysql://u:", 10);
    for (size_t i = 10; i < mib; i++) {
        pieces[i] = (i % 4 == 3) ? ':' : (char)('a' + (i / 4) % 26);
    }
    memcpy(pieces + mib - 6, "@h:x/d", 6);
    pieces[mib] = '\0';
    double parse_started = now_ms();
    CHECK(dr_connect(pieces, &c) != DR_OK);
    CHECK(now_ms() - parse_started < 2000.0);
    CHECK(strstr(dr_last_error()->message, "longer than") != NULL);
    free(pieces);
    CHECK(strcmp(dr_status_str(DR_E_OUTCOME_UNKNOWN), "DR_E_OUTCOME_UNKNOWN") == 0);
    CHECK(strcmp(dr_status_str(12345), "DR_E_UNKNOWN") == 0);
    CHECK(strcmp(dr_status_str(DR_E_TLS), "DR_E_TLS") == 0);
    CHECK(strcmp(dr_status_str(DR_E_POOL_TIMEOUT), "DR_E_POOL_TIMEOUT") == 0);
    _Static_assert(DR_E_POOL_TIMEOUT == 13, "released values never change");

    dr_config *cfg = NULL;
    CHECK(dr_config_new(&cfg) == DR_OK && cfg != NULL);
    CHECK(dr_config_set(cfg, NULL, "x") == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_set(cfg, "user", NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_set(cfg, "probe_interval_ms", "soon") == DR_E_CONFIG);
    CHECK(strstr(dr_last_error()->message, "probe_interval_ms") != NULL);
    CHECK(dr_config_set(cfg, "no_such_key", "1") == DR_E_CONFIG);
    CHECK(dr_config_on_event(cfg, NULL, NULL, NULL) == DR_E_INVALID_ARGUMENT);
    /* A failed connect leaves the config's event callbacks registered, not finalized. */
    CHECK(dr_config_on_event(cfg, on_event, &finalized, finalize) == DR_OK);
    CHECK(dr_connect_config(cfg, &c) == DR_E_CONFIG); /* no endpoints */
    CHECK(finalized == 0);

    /* Control characters from input are escaped in messages. */
    CHECK(dr_config_set(cfg, "bad\nkey\x1b[31m", "1") == DR_E_CONFIG);
    CHECK(strchr(dr_last_error()->message, '\n') == NULL);
    CHECK(strchr(dr_last_error()->message, '\x1b') == NULL);
    CHECK(strstr(dr_last_error()->message, "bad\\nkey\\u{1b}[31m") != NULL);

    /* Log levels out of range are rejected. */
    CHECK(dr_set_log_callback(slow_log, NULL, -1) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_set_log_callback(slow_log, NULL, 6) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_set_log_callback(slow_log, NULL, INT_MAX) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_set_log_callback(NULL, NULL, INT_MIN) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_set_log_callback(slow_log, NULL, DR_LOG_TRACE) == DR_OK);
    CHECK(dr_config_set(cfg, "host", "127.0.0.1:1") == DR_OK); /* nothing listens there */
    CHECK(dr_config_set(cfg, "user", "app") == DR_OK);
    CHECK(dr_config_set(cfg, "failover_timeout_ms", "100") == DR_OK);
    CHECK(dr_config_set(cfg, "probe_timeout_ms", "50") == DR_OK);
    dr_client *client = NULL;
    /* The first probe round logs; a blocked log callback must not hold up the connect (it
     * did: the records were delivered on the monitor's thread). Generous bound: valgrind. */
    double t0 = now_ms();
    CHECK(dr_connect_config(cfg, &client) == DR_OK && client != NULL);
    double connect_ms = now_ms() - t0;
    CHECK(connect_ms < 3000);
    if (connect_ms >= 3000) fprintf(stderr, "dr_connect_config took %.0f ms\n", connect_ms);
    CHECK(finalized == 0);
    dr_config_free(cfg); /* the client owns the callback now: not finalized here */
    CHECK(finalized == 0);

    dr_result *r = (dr_result *)0x1;
    CHECK(dr_query(client, NULL, 0, &r) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_query(client, "SELECT 1", 0x80, &r) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_query(client, "SELECT \xc3\x28", 0, &r) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_query(client, "SELECT 1", 0, &r) == DR_E_NO_WRITER);
    CHECK(r == (dr_result *)0x1);
    CHECK(dr_wait_ready(client, 10, NULL) == DR_E_NO_WRITER);
    uint64_t g = 77;
    CHECK(dr_wait_generation(client, 0, 10, &g) == DR_E_NO_WRITER && g == 77);
    char *w = NULL;
    CHECK(dr_current_writer(client, &w) == DR_E_NO_WRITER && w == NULL);
    dr_state_info s;
    CHECK(dr_state(client, &s) == DR_OK && s.ready == 0 && s.endpoints == 1 && s.endpoints_up == 0);
    dr_stats_info st;
    CHECK(dr_stats(client, &st) == DR_OK && st.probes >= 1);
    CHECK(dr_release(client, (struct st_mysql *)0x1234) == DR_E_NOT_LEASED);
    CHECK(dr_release(client, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_lease(client, 0, NULL) == DR_E_INVALID_ARGUMENT);
    struct st_mysql *m = (struct st_mysql *)0x1;
    CHECK(dr_lease(client, 50, &m) == DR_E_NO_WRITER && m == (struct st_mysql *)0x1);
    CHECK(dr_on_event(client, NULL, NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_state(client, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_stats(client, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_current_writer(client, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_wait_generation(client, 0, 0, NULL) == DR_E_INVALID_ARGUMENT);
    log_release = 1;
    CHECK(dr_set_log_callback(NULL, NULL, DR_LOG_DEBUG) == DR_OK);
    CHECK(log_records >= 1); /* the slow callback did receive records */
    dr_close(client);
    CHECK(finalized == 1);
    /* A closed handle is a tombstone: calls fail cleanly, a second close does nothing. */
    CHECK(dr_query(client, "SELECT 1", 0, NULL) == DR_E_CLOSED);
    CHECK(dr_state(client, &s) == DR_E_CLOSED);
    dr_close(client);

    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("api_misuse: all checks passed\n");
    return 0;
}
