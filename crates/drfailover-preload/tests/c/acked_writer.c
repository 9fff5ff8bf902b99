/* A plain libmariadb program (no drfailover code) that logs every write the server
 * acknowledged, for the preload library's tests: run it with and without LD_PRELOAD and
 * check afterwards that every logged id is on the new primary exactly once.
 *
 *   acked_writer HOST PORT USER PASSWORD DB THREADS SECONDS MODE
 *
 * MODE: auto (one autocommit INSERT per statement), txn (BEGIN; two INSERTs; COMMIT),
 * ps (a prepared INSERT), fork (one autocommit INSERT in the parent, then THREADS child
 * processes, one writer each, forked after the parent's connection was closed), reconnect
 * (auto, with the client library's own reconnect turned on after each connect: the legacy
 * idiom; "reconnect_on ID" when it is still on after the write that carried ID).
 * Table preload_acks(id BIGINT, thread INT) must exist.
 * Output, one line each, flushed: "ack ID" once the server acknowledged the write that
 * carried ID (for txn, after COMMIT succeeded), "fail ERRNO" for a failed statement,
 * "ping ERRNO" for a failed mysql_ping (one per 100 writes), "done ACKS FAILS". Each thread
 * keeps one MYSQL handle for the whole run, reconnecting only when mysql_ping fails (the
 * legacy pattern). */
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *host, *user, *password, *db, *mode;
static unsigned port;
static double seconds;
static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
static long total_acks, total_fails;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, long long a) {
  pthread_mutex_lock(&out);
  printf(fmt, a);
  fflush(stdout);
  pthread_mutex_unlock(&out);
}

static MYSQL *connect_one(void) {
  MYSQL *m = mysql_init(NULL);
  unsigned timeout = 5;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
  while (!mysql_real_connect(m, host, user, password, db, port, NULL, 0)) {
    say("fail %lld\n", mysql_errno(m));
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  if (strcmp(mode, "reconnect") == 0) {
    my_bool on = 1;
    mysql_options(m, MYSQL_OPT_RECONNECT, &on);
  }
  return m;
}

static int run(MYSQL *m, const char *sql) {
  if (mysql_query(m, sql) != 0) {
    say("fail %lld\n", mysql_errno(m));
    return 1;
  }
  MYSQL_RES *r = mysql_store_result(m);
  if (r) mysql_free_result(r);
  return 0;
}

static void *writer(void *arg) {
  long thread = (long)arg;
  MYSQL *m = connect_one();
  MYSQL_STMT *stmt = NULL;
  long long id_param = 0;
  MYSQL_BIND bind[2];
  long thread_param = thread;
  if (strcmp(mode, "ps") == 0) {
    stmt = mysql_stmt_init(m);
    const char *q = "INSERT INTO preload_acks (id, thread) VALUES (?, ?)";
    if (mysql_stmt_prepare(stmt, q, strlen(q)) != 0) {
      fprintf(stderr, "prepare: %s\n", mysql_stmt_error(stmt));
      exit(2);
    }
    memset(bind, 0, sizeof bind);
    bind[0].buffer_type = MYSQL_TYPE_LONGLONG;
    bind[0].buffer = &id_param;
    bind[1].buffer_type = MYSQL_TYPE_LONG;
    bind[1].buffer = &thread_param;
    if (mysql_stmt_bind_param(stmt, bind) != 0) {
      fprintf(stderr, "bind: %s\n", mysql_stmt_error(stmt));
      exit(2);
    }
  }
  long long seq = 0;
  long acks = 0, fails = 0;
  double end = now_s() + seconds;
  char sql[256];
  while (now_s() < end) {
    long long id = thread * 1000000000LL + seq;
    if (strcmp(mode, "ps") == 0) {
      id_param = id;
      seq++;
      if (mysql_stmt_execute(stmt) == 0) {
        say("ack %lld\n", id);
        acks++;
      } else {
        say("fail %lld\n", mysql_stmt_errno(stmt));
        fails++;
      }
    } else if (strcmp(mode, "txn") == 0) {
      seq += 2;
      int bad = run(m, "BEGIN");
      snprintf(sql, sizeof sql, "INSERT INTO preload_acks (id, thread) VALUES (%lld, %ld)", id, thread);
      bad = bad || run(m, sql);
      snprintf(sql, sizeof sql, "INSERT INTO preload_acks (id, thread) VALUES (%lld, %ld)", id + 1, thread);
      bad = bad || run(m, sql);
      bad = bad || run(m, "COMMIT");
      if (bad) {
        fails++;
        run(m, "ROLLBACK");
      } else {
        say("ack %lld\n", id);
        say("ack %lld\n", id + 1);
        acks += 2;
      }
    } else {
      seq++;
      snprintf(sql, sizeof sql, "INSERT INTO preload_acks (id, thread) VALUES (%lld, %ld)", id, thread);
      if (run(m, sql) == 0) {
        say("ack %lld\n", id);
        acks++;
      } else {
        fails++;
      }
      my_bool reconnect = 0;
      if (strcmp(mode, "reconnect") == 0 &&
          mysql_get_option(m, MYSQL_OPT_RECONNECT, &reconnect) == 0 && reconnect)
        say("reconnect_on %lld\n", id);
    }
    if (seq % 100 == 0 && mysql_ping(m) != 0) {
      say("ping %lld\n", mysql_errno(m));
      if (stmt) mysql_stmt_close(stmt);
      mysql_close(m);
      m = connect_one();
      if (stmt) {
        fprintf(stderr, "reconnected by hand in ps mode: not expected\n");
        exit(3);
      }
    }
  }
  if (stmt) mysql_stmt_close(stmt);
  mysql_close(m);
  pthread_mutex_lock(&out);
  total_acks += acks;
  total_fails += fails;
  pthread_mutex_unlock(&out);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: acked_writer HOST PORT USER PASSWORD DB THREADS SECONDS MODE\n");
    return 2;
  }
  host = argv[1];
  port = (unsigned)atoi(argv[2]);
  user = argv[3];
  password = argv[4];
  db = argv[5];
  int threads = atoi(argv[6]);
  seconds = atof(argv[7]);
  mode = argv[8];
  if (threads < 1 || threads > 64) return 2;
  if (strcmp(mode, "fork") == 0) {
    /* A pre-fork server: the parent uses the database first (its monitor starts), then
     * forks; each child starts its own at its first managed connect. */
    mode = "auto";
    MYSQL *m = connect_one();
    if (run(m, "INSERT INTO preload_acks (id, thread) VALUES (0, 0)") == 0) say("ack %lld\n", 0);
    mysql_close(m);
    for (long i = 0; i < threads; i++) {
      pid_t pid = fork();
      if (pid < 0) return 4;
      if (pid == 0) {
        writer((void *)(i + 1));
        printf("done %ld %ld\n", total_acks, total_fails);
        fflush(stdout);
        _exit(0);
      }
    }
    int bad = 0;
    for (long i = 0; i < threads; i++) {
      int status = 0;
      if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) bad = 1;
    }
    return bad ? 5 : 0;
  }
  pthread_t t[64];
  for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, writer, (void *)(i + 1));
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  printf("done %ld %ld\n", total_acks, total_fails);
  return 0;
}
