/*
 * BEFORE: the program C services run today, written directly on libmariadb.
 *
 * A monitor thread pings the database every 10 s under one global mutex and reconnects by
 * host name; every query is serialized behind the same mutex; a failed statement is retried
 * blindly (maybe running it twice); a frozen server blocks everyone until TCP gives up.
 * Compare with failover_app.c, which does more, correctly, in a third of the code.
 *
 * Usage: legacy_monitor HOST PORT USER PASSWORD DB
 */
#define _POSIX_C_SOURCE 200809L
#include <mysql.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;
static MYSQL *db;
static const char *host, *user, *password, *dbname;
static unsigned int port;

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

static int run(const char *sql) {
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
    }
    pthread_mutex_unlock(&db_lock);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DB\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = (unsigned int)atoi(argv[2]);
    user = argv[3];
    password = argv[4];
    dbname = argv[5];
    db = open_db();
    pthread_t t;
    pthread_create(&t, NULL, monitor, NULL);
    for (int i = 0; i < 100; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%d)", i);
        if (run(sql) != 0) fprintf(stderr, "insert %d failed\n", i);
    }
    return 0;
}
