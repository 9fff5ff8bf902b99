/*
 * BEFORE: the program C services run today, written directly on libmariadb.
 *
 * A monitor thread pings the database every 10 s under one global mutex and reconnects by
 * host name; every query is serialized behind the same mutex; a failed statement is retried
 * blindly (maybe running it twice); a frozen server blocks everyone until TCP gives up.
 * Compare with failover_app.c, which does more, correctly, with less code.
 *
 * It runs the same workload as failover_app.c (one row every 2 ms for 1 s, READY, SECONDS
 * more) and prints the same summary, so ctest runs both through a kill -9 and a promotion.
 * Exit 0 when it ran (its failures are the point), 1 when it could not even start.
 *
 * Usage: MYSQL_PWD=... legacy_monitor HOST[:PORT] USER DB [SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <mysql.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;
static MYSQL *db;
static char host[256];
static const char *user, *password, *dbname;
static unsigned int port = 3306;

static MYSQL *open_db(void) {
    MYSQL *m = mysql_init(NULL);
    unsigned int timeout = 10;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, host, user, password, dbname, port, NULL, 0)) {
        fprintf(stderr, "connect: %s\n", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static void *monitor(void *arg) {
    (void)arg;
    for (;;) {
        sleep(10);
        pthread_mutex_lock(&db_lock);
        if (!db || mysql_ping(db) != 0) { /* notices a dead primary up to 10 s late */
            if (db) mysql_close(db);
            db = open_db(); /* may land on the old primary, now read-only */
        }
        pthread_mutex_unlock(&db_lock);
    }
    return NULL;
}

/* Runs one statement; on failure copies the error into err. */
static int run(const char *sql, char *err, size_t errlen) {
    pthread_mutex_lock(&db_lock); /* every query in the process waits here */
    int rc = db ? mysql_query(db, sql) : -1;
    if (rc != 0 && db && (mysql_errno(db) == 2006 || mysql_errno(db) == 2013)) {
        mysql_close(db);
        db = open_db();
        rc = db ? mysql_query(db, sql) : -1; /* blind retry: may run the write twice */
    }
    if (rc == 0) {
        MYSQL_RES *res = mysql_store_result(db);
        if (res) mysql_free_result(res);
    } else {
        snprintf(err, errlen, "%s", db ? mysql_error(db) : "not connected");
    }
    pthread_mutex_unlock(&db_lock);
    return rc;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: MYSQL_PWD=... %s HOST[:PORT] USER DB [SECONDS]\n", argv[0]);
        return 2;
    }
    snprintf(host, sizeof host, "%s", argv[1]);
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = '\0';
        port = (unsigned int)atoi(colon + 1);
    }
    user = argv[2];
    dbname = argv[3];
    password = getenv("MYSQL_PWD");
    double seconds = argc > 4 ? atof(argv[4]) : 3;
    char err[512] = "", last_err[512] = "";
    db = open_db();
    if (!db) return 1;
    if (run("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)", err, sizeof err) != 0 ||
        run("DELETE FROM t", err, sizeof err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, monitor, NULL);

    int acked = 0, failed = 0;
    double start = now_ms(), ready = 0, last_ack = 0, longest = 0, first_failure = 0;
    for (int i = 0; now_ms() - start < (1 + seconds) * 1e3; i++) {
        if (!ready && now_ms() - start >= 1e3) {
            ready = last_ack = now_ms();
            printf("READY\n");
            fflush(stdout);
        }
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%d)", i);
        if (run(sql, err, sizeof err) == 0) {
            acked++;
            double now = now_ms();
            if (ready && now - last_ack > longest) longest = now - last_ack;
            last_ack = now;
        } else {
            failed++;
            if (!first_failure) first_failure = now_ms();
            if (strcmp(err, last_err) != 0) /* each new error once, not once per insert */
                fprintf(stderr, "insert %d failed: %s\n", i, err);
            snprintf(last_err, sizeof last_err, "%s", err);
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    double end = now_ms();
    if (ready && end - last_ack > longest) longest = end - last_ack;
    int recovered = !first_failure || last_ack > first_failure;
    printf("before (hand-written monitor): %d acknowledged, %d failed; longest pause after READY "
           "%.0f ms%s\n",
           acked, failed, longest, recovered ? "" : " (never wrote again after its first failure)");
    return 0;
}
