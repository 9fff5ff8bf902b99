/* A plain libmariadb program (no drfailover code) that sets its session through the API and
 * prints what the server it is connected to sees, every 20 ms, for the preload library's
 * session-restore test:
 *
 *   session_probe HOST PORT USER PASSWORD DB SECONDS
 *
 * Connects without a database, then mysql_select_db(DB), mysql_set_character_set("latin1"),
 * MYSQL_INIT_COMMAND "SET @init_marker = 42", mysql_autocommit(0). Prints
 * "state SERVER_ADDRESS DB CHARSET MARKER AUTOCOMMIT" per successful probe (COMMIT after each), "fail ERRNO"
 * otherwise; "done" at the end. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: session_probe HOST PORT USER PASSWORD DB SECONDS\n");
    return 2;
  }
  MYSQL *m = mysql_init(NULL);
  unsigned timeout = 5;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_INIT_COMMAND, "SET @init_marker = 42");
  if (!mysql_real_connect(m, argv[1], argv[3], argv[4], NULL, (unsigned)atoi(argv[2]), NULL, 0)) {
    fprintf(stderr, "connect: %s\n", mysql_error(m));
    return 1;
  }
  if (mysql_select_db(m, argv[5]) || mysql_set_character_set(m, "latin1") || mysql_autocommit(m, 0)) {
    fprintf(stderr, "session: %s\n", mysql_error(m));
    return 1;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  double seconds = atof(argv[6]);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9 > seconds) break;
    if (mysql_query(m, "SELECT @@bind_address, DATABASE(), @@character_set_client, @init_marker, @@autocommit") != 0) {
      printf("fail %u\n", mysql_errno(m));
    } else {
      MYSQL_RES *r = mysql_store_result(m);
      MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
      if (row)
        printf("state %s %s %s %s %s\n", row[0] ? row[0] : "NULL", row[1] ? row[1] : "NULL",
               row[2] ? row[2] : "NULL", row[3] ? row[3] : "NULL", row[4] ? row[4] : "NULL");
      if (r) mysql_free_result(r);
      if (mysql_commit(m) != 0) printf("fail %u\n", mysql_errno(m));
    }
    fflush(stdout);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  printf("done\n");
  mysql_close(m);
  return 0;
}
