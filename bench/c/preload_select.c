/* A plain libmariadb program for the preload library's overhead figures: one connection,
 * N statements in run_statements() (callgrind collects only there), then exits.
 *
 *   preload_select HOST PORT USER PASSWORD DB N
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int run_statements(MYSQL *m, long n);
__attribute__((noinline)) int run_statements(MYSQL *m, long n) {
  for (long i = 0; i < n; i++) {
    if (mysql_query(m, "SELECT 1")) return 1;
    MYSQL_RES *r = mysql_store_result(m);
    if (r) mysql_free_result(r);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: preload_select HOST PORT USER PASSWORD DB N\n");
    return 2;
  }
  MYSQL *m = mysql_init(NULL);
  if (!mysql_real_connect(m, argv[1], argv[3], argv[4], argv[5], (unsigned)atoi(argv[2]), NULL, 0)) {
    fprintf(stderr, "connect: %s\n", mysql_error(m));
    return 1;
  }
  int rc = run_statements(m, atol(argv[6]));
  if (rc) fprintf(stderr, "query: %s\n", mysql_error(m));
  mysql_close(m);
  return rc;
}
