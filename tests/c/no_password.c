/*
 * No password in any message: every error message, event and log record
 * of failing and succeeding runs is searched for the password and for pieces of it.
 * - malformed DSNs whose password misleads the parser (`/`, `?`, no `@host`);
 * - a wrong password against a real server (DR_E_AUTH), with events and TRACE logging on;
 * - the right password: connect, query, close.
 * Run under drfailover-topo --fault none (DRFAILOVER_TEST_DSN and MYSQL_PWD are set).
 */
#define _POSIX_C_SOURCE 200809L
#include <drfailover.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#define CHECK CHECK_OR_RETURN

/* Everything the library said, one text per line. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char *seen;
static size_t seen_len, seen_cap;

static void remember(const char *what, const char *text) {
    if (!text) return;
    pthread_mutex_lock(&seen_lock);
    size_t need = seen_len + strlen(what) + strlen(text) + 3;
    if (need > seen_cap) {
        size_t cap = need * 2;
        char *grown = realloc(seen, cap);
        if (!grown) abort();
        seen = grown;
        seen_cap = cap;
    }
    seen_len += (size_t)sprintf(seen + seen_len, "%s %s\n", what, text);
    pthread_mutex_unlock(&seen_lock);
}

static void on_log(void *userdata, dr_log_level level, const char *target, const char *message) {
    (void)userdata;
    (void)level;
    (void)target;
    remember("log:", message);
}

static void on_event(void *userdata, const dr_event *event) {
    (void)userdata;
    remember("event reason:", event->reason);
    remember("event json:", event->json);
    remember("event endpoint:", event->endpoint);
}

static void remember_error(const char *what) {
    const dr_error *err = dr_last_error();
    if (err) remember(what, err->message);
}

/* Fails if anything remembered contains one of the NULL-terminated `pieces`. */
static int check_clean(const char *run, const char *const *pieces) {
    int bad = 0;
    pthread_mutex_lock(&seen_lock);
    for (const char *const *p = pieces; *p; p++) {
        const char *hit = seen ? strstr(seen, *p) : NULL;
        if (hit) {
            const char *line = hit;
            while (line > seen && line[-1] != '\n') line--;
            const char *end = strchr(hit, '\n');
            fprintf(stderr, "%s: `%s` appears in: %.*s\n", run, *p,
                    (int)(end ? end - line : (long)strlen(line)), line);
            bad = 1;
        }
    }
    printf("%s: %zu bytes of messages searched, %s\n", run, seen_len, bad ? "LEAK" : "clean");
    if (getenv("NO_PASSWORD_SHOW") && seen) fputs(seen, stdout);
    seen_len = 0;
    if (seen) seen[0] = 0;
    pthread_mutex_unlock(&seen_lock);
    return bad;
}

/* `base` with its password replaced by `password`. */
static int with_password(const char *base, const char *password, char *out, size_t cap) {
    const char *scheme = strstr(base, "://");
    const char *at = strchr(base, '@');
    if (!scheme || !at) return 1;
    const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (!colon) return 1;
    snprintf(out, cap, "%.*s:%s%s", (int)(colon - base), base, password, at);
    return 0;
}

static int connect_and_collect(const char *dsn, dr_status expected, const char *what) {
    dr_config *cfg = NULL;
    CHECK(dr_config_new(&cfg) == DR_OK);
    CHECK(dr_config_on_event(cfg, on_event, NULL, NULL) == DR_OK);
    dr_status st = dr_config_set(cfg, "dsn", dsn);
    if (st != DR_OK) {
        remember_error(what);
        dr_config_free(cfg);
        CHECK(st == expected);
        return 0;
    }
    dr_client *db = NULL;
    st = dr_connect_config(cfg, &db);
    dr_config_free(cfg);
    if (st != DR_OK) remember_error(what);
    printf("%s: %s\n", what, dr_status_str(st));
    CHECK(st == expected);
    if (db) {
        dr_result *r = NULL;
        CHECK(dr_query(db, "SELECT 1", 0, &r) == DR_OK);
        dr_result_free(r);
        if (dr_query(db, "SELECT * FROM no_such_table", 0, NULL) != DR_OK) remember_error(what);
        dr_close(db);
    }
    /* The plain entry point too. */
    dr_client *plain = NULL;
    if (dr_connect(dsn, &plain) != DR_OK) remember_error(what);
    if (plain) dr_close(plain);
    return 0;
}

int main(void) {
    const char *base = getenv("DRFAILOVER_TEST_DSN");
    const char *password = getenv("MYSQL_PWD");
    if (!base || !password || !*password) return 2;
    CHECK(dr_set_log_callback(on_log, NULL, DR_LOG_TRACE) == DR_OK);

    /* DSNs whose password's `/`, `?` or a missing `@host` could mislead the parser. */
    const char *misleading[] = {
        "mysql://app:S3cr/tPw@127.0.0.1:3306/app",
        "mysql://app:S3c?r3tPw@127.0.0.1:3306/app",
        "mysql://app:S3cr3tPw/app",
        "mysql://app:S3cr3tPw@/app",
        "mysql://app:S3cr3tPw@127.0.0.1:notaport/app",
        "mysql://app:S3cr3tPw@127.0.0.1:3306/app?no_such_option=1",
        NULL,
    };
    for (const char **d = misleading; *d; d++) {
        dr_client *db = NULL;
        dr_status st = dr_connect(*d, &db);
        CHECK(st == DR_E_CONFIG);
        CHECK(db == NULL);
        remember_error("error:");
        dr_config *cfg = NULL;
        CHECK(dr_config_new(&cfg) == DR_OK);
        CHECK(dr_config_set(cfg, "dsn", *d) == DR_E_CONFIG);
        remember_error("error:");
        dr_config_free(cfg);
    }
    const char *issue_pieces[] = {"S3cr", "tPw", "r3tPw", "S3c", NULL};
    if (check_clean("misleading DSNs", issue_pieces)) return 1;

    /* A wrong password against the real server. */
    const char *wrong = "Wr0ngPassw0rdXyz";
    char dsn[4096];
    CHECK(with_password(base, wrong, dsn, sizeof dsn) == 0);
    if (connect_and_collect(dsn, DR_E_AUTH, "wrong password")) return 1;
    const char *wrong_pieces[] = {wrong, "Wr0ng", "Passw0rd", NULL};
    if (check_clean("wrong password", wrong_pieces)) return 1;

    /* The right password: nothing of it either. */
    if (connect_and_collect(base, DR_OK, "right password")) return 1;
    const char *right_pieces[] = {password, NULL};
    if (check_clean("right password", right_pieces)) return 1;

    CHECK(dr_set_log_callback(NULL, NULL, DR_LOG_OFF) == DR_OK);
    free(seen);
    printf("no password in any message\n");
    return 0;
}
