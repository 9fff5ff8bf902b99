/*
 * Secret and option files read bounded (regular files only) and NUL bytes refused, through
 * the C API. No server needed.
 *
 * - `password_file` / `defaults_file` naming /dev/zero, a FIFO nobody writes to, a directory,
 *   a file over the limit (4 KiB password, 64 KiB option file; a sparse 1 GiB file too) each
 *   give DR_E_CONFIG at once (each call bounded by a generous 5 s, the process's memory does not
 *   grow), naming the key and the file, never the content.
 * - A NUL byte (`%00` in a DSN, or raw in a password/option file) in user, password or
 *   database is DR_E_CONFIG at parse time, without the password in the message.
 * An alarm turns a hang into a failure.
 */
#define _GNU_SOURCE
#include <drfailover.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
#include "check.h"
#define CHECK CHECK_OR_COUNT

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* The last error is DR_E_CONFIG and its message contains every needle and no "SECRET". */
static void expect_config_error(dr_status s, const char *what, const char *n1, const char *n2,
                                const char *n3) {
    const dr_error *e = dr_last_error();
    if (s != DR_E_CONFIG || !e) {
        fprintf(stderr, "%s: status %d, expected DR_E_CONFIG\n", what, (int)s);
        failures++;
        return;
    }
    const char *needles[] = {n1, n2, n3};
    for (int i = 0; i < 3; i++) {
        if (needles[i] && !strstr(e->message, needles[i])) {
            fprintf(stderr, "%s: message lacks `%s`: %s\n", what, needles[i], e->message);
            failures++;
        }
    }
    if (strstr(e->message, "SECRET") || strstr(e->message, "S3cr")) {
        fprintf(stderr, "%s: message shows the password: %s\n", what, e->message);
        failures++;
    }
}

/* dr_config_set(key, path) fails with DR_E_CONFIG naming key, path and why, within 1 s. */
static void refused_file(const char *key, const char *path, const char *why) {
    dr_config *cfg = NULL;
    CHECK(dr_config_new(&cfg) == DR_OK && cfg);
    double t = now_ms();
    dr_status s = dr_config_set(cfg, key, path);
    double took = now_ms() - t;
    char what[512];
    snprintf(what, sizeof what, "%s=%s", key, path);
    expect_config_error(s, what, key, path, why);
    if (took > 5000) { /* generous: a hang never returns at all */
        fprintf(stderr, "%s: took %.0f ms\n", what, took);
        failures++;
    }
    dr_config_free(cfg);
}

int main(void) {
    alarm(60);
    char dir[] = "/tmp/drfailover-config-files-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char fifo[256], big_pw[256], sparse[256], nul_pw[256], nul_cnf[256], good_pw[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(big_pw, sizeof big_pw, "%s/big-pw", dir);
    snprintf(sparse, sizeof sparse, "%s/sparse.cnf", dir);
    snprintf(nul_pw, sizeof nul_pw, "%s/nul-pw", dir);
    snprintf(nul_cnf, sizeof nul_cnf, "%s/nul.cnf", dir);
    snprintf(good_pw, sizeof good_pw, "%s/good-pw", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    static char big[5000];
    memset(big, 'S', sizeof big);
    write_file(big_pw, big, sizeof big);
    int fd = open(sparse, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 1L << 30) == 0); /* 1 GiB, no disk used */
    if (fd >= 0) close(fd);
    write_file(nul_pw, "SECRET\0pw\n", 10);
    write_file(nul_cnf, "[client]\nuser=app\npassword=SECRET\0pw\n", 37);
    write_file(good_pw, "S3cr3tPw\n", 9);

    long rss_before = check_rss_kib();
    const char *keys[] = {"password_file", "defaults_file"};
    for (int i = 0; i < 2; i++) {
        refused_file(keys[i], "/dev/zero", "is a character device, not a regular file");
        refused_file(keys[i], fifo, "is a FIFO, not a regular file");
        refused_file(keys[i], dir, "is a directory, not a regular file");
        refused_file(keys[i], sparse, "larger than");
    }
    refused_file("password_file", big_pw, "larger than 4096 bytes");
    refused_file("password_file", nul_pw, "password contains a NUL byte");
    refused_file("defaults_file", nul_cnf, "`password` contains a NUL byte");
    long rss_after = check_rss_kib();
    /* Reading /dev/zero must not grow the process; allow 16 MiB of noise. */
    CHECK(rss_before > 0 && rss_after - rss_before < 16 * 1024);

    /* A good password file still works, and so do the same keys through a DSN. */
    dr_config *cfg = NULL;
    CHECK(dr_config_new(&cfg) == DR_OK);
    CHECK(dr_config_set(cfg, "password_file", good_pw) == DR_OK);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "mysql://app@127.0.0.1:1/db?password_file=%s", fifo);
    expect_config_error(dr_config_set(cfg, "dsn", dsn), "dsn with a FIFO", "password_file",
                        "not a regular file", NULL);

    /* Defect 5: NUL bytes in user, password or database, at parse time. */
    const char *nul_dsns[][2] = {
        {"mysql://ap%00p:S3cr3tPw@127.0.0.1:1/db", "`user`"},
        {"mysql://app:S3cr%00etPw@127.0.0.1:1/db", "`password`"},
        {"mysql://app:S3cr3tPw@127.0.0.1:1/d%00b", "`database`"},
        {"mysql://app:S3cr3tPw@127.0.0.1:1/db?password=a%00b", "`password`"},
        {"mysql://app:S3cr3tPw@127.0.0.1:1/db?user=a%00b", "`user`"},
    };
    for (size_t i = 0; i < sizeof nul_dsns / sizeof nul_dsns[0]; i++) {
        dr_client *c = NULL;
        double t = now_ms();
        expect_config_error(dr_connect(nul_dsns[i][0], &c), nul_dsns[i][0], nul_dsns[i][1],
                            "NUL byte", NULL);
        CHECK(c == NULL);
        CHECK(now_ms() - t < 5000); /* refused while parsing, no probe round */
        expect_config_error(dr_config_set(cfg, "dsn", nul_dsns[i][0]), nul_dsns[i][0],
                            nul_dsns[i][1], "NUL byte", NULL);
    }
    dr_config_free(cfg);

    unlink(fifo);
    unlink(big_pw);
    unlink(sparse);
    unlink(nul_pw);
    unlink(nul_cnf);
    unlink(good_pw);
    rmdir(dir);
    if (failures) {
        fprintf(stderr, "config_files: %d failure(s)\n", failures);
        return 1;
    }
    printf("config_files: ok\n");
    return 0;
}
