/*
 * Every entry point given NULLs and bad input returns an error, never crashes. No server
 * needed: the DSN points at a closed loopback port.
 */
#include <drfailover.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

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
    CHECK(strcmp(dr_status_str(DR_E_OUTCOME_UNKNOWN), "DR_E_OUTCOME_UNKNOWN") == 0);
    CHECK(strcmp(dr_status_str(12345), "DR_E_UNKNOWN") == 0);
    CHECK(strcmp(dr_status_str(DR_E_TLS), "DR_E_TLS") == 0);

    dr_config *cfg = NULL;
    CHECK(dr_config_new(&cfg) == DR_OK && cfg != NULL);
    CHECK(dr_config_set(cfg, NULL, "x") == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_set(cfg, "user", NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_config_set(cfg, "probe_interval_ms", "soon") == DR_E_CONFIG);
    CHECK(strstr(dr_last_error()->message, "probe_interval_ms") != NULL);
    CHECK(dr_config_set(cfg, "no_such_key", "1") == DR_E_CONFIG);
    CHECK(dr_config_on_event(cfg, NULL, NULL, NULL) == DR_E_INVALID_ARGUMENT);
    CHECK(dr_connect_config(cfg, &c) == DR_E_CONFIG); /* no endpoints */
    CHECK(dr_config_set(cfg, "host", "127.0.0.1:1") == DR_OK); /* nothing listens there */
    CHECK(dr_config_set(cfg, "user", "app") == DR_OK);
    CHECK(dr_config_set(cfg, "failover_timeout_ms", "100") == DR_OK);
    CHECK(dr_config_set(cfg, "probe_timeout_ms", "50") == DR_OK);
    dr_client *client = NULL;
    CHECK(dr_connect_config(cfg, &client) == DR_OK && client != NULL);
    dr_config_free(cfg);

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
    CHECK(dr_set_log_callback(NULL, NULL, DR_LOG_DEBUG) == DR_OK);
    dr_close(client);
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
