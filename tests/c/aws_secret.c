/*
 * Credentials from AWS Secrets Manager through the C API: every argument `key=value` is given
 * to dr_config_set (e.g. host=…, database=…, secret_arn=…, secret_endpoint=…), then
 * dr_connect_config, then `SELECT 1` on the writer. Prints one line, `ok`, or
 * `error <status name> <message>` (exit 3). Run by crates/drfailover-ffi/tests/c_aws_secret.rs
 * against moto and MariaDB.
 */
#include <drfailover.h>

#include <stdio.h>
#include <string.h>

static int fail(dr_status status) {
    const dr_error *err = dr_last_error();
    printf("error %s %s\n", dr_status_str(status), err && err->message ? err->message : "");
    return 3;
}

int main(int argc, char **argv) {
    dr_config *config = NULL;
    dr_status s = dr_config_new(&config);
    if (s != DR_OK) return fail(s);
    for (int i = 1; i < argc; i++) {
        char key[64];
        const char *eq = strchr(argv[i], '=');
        size_t len = eq ? (size_t)(eq - argv[i]) : 0;
        if (!eq || len >= sizeof key) {
            fprintf(stderr, "usage: aws_secret key=value...\n");
            dr_config_free(config);
            return 2;
        }
        memcpy(key, argv[i], len);
        key[len] = '\0';
        s = dr_config_set(config, key, eq + 1);
        if (s != DR_OK) {
            int rc = fail(s);
            dr_config_free(config);
            return rc;
        }
    }
    dr_client *client = NULL;
    s = dr_connect_config(config, &client);
    dr_config_free(config);
    if (s != DR_OK) return fail(s);
    s = dr_wait_ready(client, 10000, NULL);
    dr_result *result = NULL;
    if (s == DR_OK) s = dr_query(client, "SELECT 1", 0, &result);
    int rc = s == DR_OK ? 0 : fail(s);
    if (rc == 0) printf("ok\n");
    dr_result_free(result);
    dr_close(client);
    return rc;
}
