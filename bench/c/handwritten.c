/*
 * The hand-written design users run today, as a benchmark subject (the same design as
 * c-examples/legacy_monitor.c, tuned as aggressively as is sane):
 *
 * - one connection, one global mutex around every statement;
 * - a monitor thread that pings every INTERVAL_MS and, when the ping fails, reconnects by
 *   host name (the name is expected to flip to the new primary, as a failover DNS record does);
 * - a statement that fails with 2006/2013 reconnects at once and is retried blindly (it may
 *   run twice);
 * - connect timeout 1 s, read/write timeouts 2 s (without them a frozen server blocks every
 *   thread until TCP gives up).
 *
 * Usage: handwritten HOST PORT USER PASSWORD DB THREADS INTERVAL_MS FIRST_ID
 * Writes `INSERT INTO t (id) VALUES (n)` from THREADS threads, forever. Prints one line per
 * statement: "A <thread> <CLOCK_MONOTONIC ns>" when acknowledged, "F <thread> <errno>" when
 * it failed, and "B <thread>" for each blind retry.
 */
#define _POSIX_C_SOURCE 200809L
#include <mysql.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static MYSQL *db;
static const char *host, *user, *password, *dbname;
static unsigned int port;
static long interval_ms;
static unsigned long long next_id;

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static MYSQL *open_db(void) {
    MYSQL *m = mysql_init(NULL);
    if (!m) return NULL;
    unsigned int connect_timeout = 1, io_timeout = 2;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    if (!mysql_real_connect(m, host, user, password, dbname, port, NULL, 0)) {
        mysql_close(m);
        return NULL;
    }
    return m;
}

static void *monitor(void *arg) {
    (void)arg;
    for (;;) {
        sleep_ms(interval_ms);
        pthread_mutex_lock(&db_lock);
        if (!db || mysql_ping(db) != 0) {
            if (db) mysql_close(db);
            db = open_db(); /* by name: wherever the name points now */
        }
        pthread_mutex_unlock(&db_lock);
    }
    return NULL;
}

static void say(const char *line) {
    pthread_mutex_lock(&out_lock);
    fputs(line, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

/* Returns 0 when acknowledged, else the error number. */
static unsigned int run(const char *sql, int thread) {
    pthread_mutex_lock(&db_lock); /* every statement in the process waits here */
    unsigned int err = 0;
    if (!db) {
        err = 2006;
    } else if (mysql_query(db, sql) != 0) {
        err = mysql_errno(db);
        if (err == 2006 || err == 2013) {
            mysql_close(db);
            db = open_db();
            char line[64];
            snprintf(line, sizeof line, "B %d\n", thread);
            say(line);
            err = !db ? 2006 : (mysql_query(db, sql) != 0 ? mysql_errno(db) : 0);
        }
    }
    pthread_mutex_unlock(&db_lock);
    return err;
}

static void *writer(void *arg) {
    int thread = (int)(long)arg;
    for (;;) {
        pthread_mutex_lock(&out_lock);
        unsigned long long id = next_id++;
        pthread_mutex_unlock(&out_lock);
        char sql[96], line[96];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%llu)", id);
        unsigned int err = run(sql, thread);
        if (err == 0) {
            snprintf(line, sizeof line, "A %d %llu\n", thread, now_ns());
            say(line);
        } else {
            snprintf(line, sizeof line, "F %d %u\n", thread, err);
            say(line);
            sleep_ms(5);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr,
                "usage: %s HOST PORT USER PASSWORD DB THREADS INTERVAL_MS FIRST_ID\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = (unsigned int)atoi(argv[2]);
    user = argv[3];
    password = argv[4];
    dbname = argv[5];
    int threads = atoi(argv[6]);
    interval_ms = atol(argv[7]);
    next_id = strtoull(argv[8], NULL, 10);
    if (threads < 1 || interval_ms < 1) {
        fprintf(stderr, "THREADS and INTERVAL_MS must be positive\n");
        return 2;
    }
    db = open_db();
    if (!db) {
        fprintf(stderr, "cannot connect to %s:%u\n", host, port);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, monitor, NULL);
    for (int i = 0; i < threads; i++) pthread_create(&t, NULL, writer, (void *)(long)i);
    pthread_join(t, NULL);
    return 0;
}
