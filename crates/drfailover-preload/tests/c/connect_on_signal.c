/* A plain libmariadb program (no drfailover code, no connect or read timeout set, like
 * sysbench) that connects, closes, waits for a file to appear, then connects once more and
 * reports how that second connect ended, for the preload library's bounded-handshake test:
 *
 *   connect_on_signal HOST PORT USER PASSWORD GO_FILE
 *
 * Prints "connected" after the first connect, then "second ok MS" or "second fail ERRNO MS". */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double ms_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: connect_on_signal HOST PORT USER PASSWORD GO_FILE\n");
    return 2;
  }
  unsigned port = (unsigned)atoi(argv[2]);
  MYSQL *m = mysql_init(NULL);
  if (!mysql_real_connect(m, argv[1], argv[3], argv[4], NULL, port, NULL, 0)) {
    fprintf(stderr, "first connect: %s\n", mysql_error(m));
    return 1;
  }
  mysql_close(m);
  printf("connected\n");
  fflush(stdout);
  while (access(argv[5], F_OK) != 0) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  m = mysql_init(NULL);
  if (mysql_real_connect(m, argv[1], argv[3], argv[4], NULL, port, NULL, 0)) {
    printf("second ok %.0f\n", ms_since(&start));
  } else {
    printf("second fail %u %.0f\n", mysql_errno(m), ms_since(&start));
  }
  mysql_close(m);
  return 0;
}
