/*
 * Existing code that uses the MySQL C API directly (prepared statements, explicit
 * transactions) keeps working: lease a MYSQL * from drfailover, use it, give it back.
 * The lease still gets failover handling: a dead writer's socket is shut down, so a blocked
 * mysql_* call returns at once; the next dr_lease hands out a connection to the new writer.
 *
 * Usage: lease_prepared DSN
 */
#include <drfailover.h>
#include <mysql.h>

#include <stdio.h>
#include <string.h>

static int fail_stmt(MYSQL_STMT *stmt) {
    fprintf(stderr, "statement: %s\n", mysql_stmt_error(stmt));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DSN\n", argv[0]);
        return 2;
    }
    dr_client *db = NULL;
    if (dr_connect(argv[1], &db) != DR_OK || dr_wait_ready(db, 5000, NULL) != DR_OK) {
        fprintf(stderr, "connect: %s\n", dr_last_error()->message);
        return 1;
    }
    MYSQL *m = NULL;
    if (dr_lease(db, 5000, &m) != DR_OK) {
        fprintf(stderr, "lease: %s\n", dr_last_error()->message);
        return 1;
    }
    if (mysql_query(m, "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name VARCHAR(40))")) {
        fprintf(stderr, "create: %s\n", mysql_error(m));
        return 1;
    }
    /* An explicit transaction with a prepared INSERT. */
    mysql_query(m, "START TRANSACTION");
    MYSQL_STMT *stmt = mysql_stmt_init(m);
    const char *sql = "INSERT INTO items (id, name) VALUES (?, ?)";
    if (mysql_stmt_prepare(stmt, sql, (unsigned long)strlen(sql))) return fail_stmt(stmt);
    for (int id = 1; id <= 3; id++) {
        char name[40];
        unsigned long name_len = (unsigned long)snprintf(name, sizeof name, "item-%d", id);
        MYSQL_BIND bind[2];
        memset(bind, 0, sizeof bind);
        bind[0].buffer_type = MYSQL_TYPE_LONG;
        bind[0].buffer = &id;
        bind[1].buffer_type = MYSQL_TYPE_STRING;
        bind[1].buffer = name;
        bind[1].buffer_length = sizeof name;
        bind[1].length = &name_len;
        if (mysql_stmt_bind_param(stmt, bind) || mysql_stmt_execute(stmt)) return fail_stmt(stmt);
    }
    mysql_stmt_close(stmt);
    if (mysql_commit(m)) {
        /* 2013 here means the outcome of the COMMIT is unknown: check before retrying. */
        fprintf(stderr, "commit: %u %s\n", mysql_errno(m), mysql_error(m));
        dr_release(db, m);
        return 1;
    }
    dr_release(db, m); /* reused only if healthy and no transaction is left open */

    dr_result *r = NULL;
    if (dr_query(db, "SELECT COUNT(*) FROM items", 0, &r) != DR_OK || dr_result_next_row(r) != 1) return 1;
    printf("items: %s\n", dr_result_value(r, 0, NULL));
    dr_result_free(r);
    dr_close(db);
    return 0;
}
