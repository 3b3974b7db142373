/* server/config.c: defaults, the four layers in order (default < file < env < flag), bounds,
 * validators, unknown keys named in the error, and --help listing every option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"

static int load(tailord_config *cfg, int argc, char **argv, char **envp, char *msg) {
    return config_load(cfg, argc, argv, envp, msg, 256);
}

static char *write_temp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/tailord-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? path : NULL;
}

TEST(defaults) {
    tailord_config c;
    char msg[256];
    char *argv[] = {"tailord", NULL};
    REQUIRE(load(&c, 1, argv, NULL, msg) == 0);
    CHECK(!strcmp(c.listen, "127.0.0.1"));
    CHECK(c.port == 8080);
    CHECK_NEAR(c.batch_window_ms, 2.0, 0);
    CHECK(c.api_keys.count == 0);
    CHECK(!strcmp(c.log_level, "info"));
    CHECK(c.decode_bf16 == 0); /* captions decode in fp32 unless asked */
    config_free(&c);
}

TEST(layers_apply_in_order) {
    char *path = write_temp("{\"port\": 9000, \"sessions\": {\"ttl_s\": 60, \"max_count\": 5},"
                            " \"api_keys\": [\"a\", \"b\"], \"batch.max\": 8}");
    REQUIRE(path);
    char flag_config[128];
    snprintf(flag_config, sizeof flag_config, "--config=%s", path);
    char *argv[] = {"tailord", flag_config, "--sessions.ttl_s", "90", NULL};
    char *envp[] = {"TAILORD_SESSIONS_TTL_S=70", "TAILORD_PORT=9100", "OTHER=1", NULL};
    tailord_config c;
    char msg[256];
    REQUIRE(load(&c, 4, argv, envp, msg) == 0);
    CHECK(c.port == 9100);            /* env over file */
    CHECK(c.sessions_ttl_s == 90);    /* flag over env */
    CHECK(c.sessions_max_count == 5); /* nested file key */
    CHECK(c.batch_max == 8);          /* dotted file key */
    CHECK(c.api_keys.count == 2 && !strcmp(c.api_keys.items[1], "b"));
    config_free(&c);
    unlink(path);
}

TEST(errors_name_the_key) {
    tailord_config c;
    char msg[256];
    char *unknown_flag[] = {"tailord", "--prot", "1", NULL};
    CHECK(load(&c, 3, unknown_flag, NULL, msg) == -1 && strstr(msg, "prot"));
    config_free(&c);
    char *out_of_range[] = {"tailord", "--port=70000", NULL};
    CHECK(load(&c, 2, out_of_range, NULL, msg) == -1 && strstr(msg, "port"));
    config_free(&c);
    char *bad_switch[] = {"tailord", "--decode_bf16", "2", NULL};
    CHECK(load(&c, 3, bad_switch, NULL, msg) == -1 && strstr(msg, "decode_bf16"));
    config_free(&c);
    char *bad_ip[] = {"tailord", "--listen", "localhost", NULL};
    CHECK(load(&c, 3, bad_ip, NULL, msg) == -1 && strstr(msg, "listen"));
    config_free(&c);
    char *missing_value[] = {"tailord", "--port", NULL};
    CHECK(load(&c, 2, missing_value, NULL, msg) == -1 && strstr(msg, "port"));
    config_free(&c);
    char *argv[] = {"tailord", NULL};
    char *bad_env[] = {"TAILORD_NOPE=1", NULL};
    CHECK(load(&c, 1, argv, bad_env, msg) == -1 && strstr(msg, "TAILORD_NOPE"));
    config_free(&c);
    char *path = write_temp("{\"sessions\": {\"ttl\": 5}}");
    REQUIRE(path);
    char flag[128];
    snprintf(flag, sizeof flag, "--config=%s", path);
    char *file_argv[] = {"tailord", flag, NULL};
    CHECK(load(&c, 2, file_argv, NULL, msg) == -1 && strstr(msg, "sessions.ttl"));
    config_free(&c);
    unlink(path);
    path = write_temp("{\"port\": \"80\"}");
    REQUIRE(path);
    snprintf(flag, sizeof flag, "--config=%s", path);
    CHECK(load(&c, 2, file_argv, NULL, msg) == -1 && strstr(msg, "port"));
    config_free(&c);
    unlink(path);
}

TEST(help_lists_every_option) {
    char buf[16384] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    REQUIRE(f);
    config_print_help(f);
    fclose(f);
    tailord_config c;
    char msg[256];
    char *argv[] = {"tailord", NULL};
    REQUIRE(load(&c, 1, argv, NULL, msg) == 0);
    json_t *all = config_to_json(&c);
    const char *key;
    json_t *value;
    int listed = 0, total = 0;
    json_object_foreach(all, key, value) {
        char flag[96];
        snprintf(flag, sizeof flag, "--%s ", strcmp(key, "api_keys_count") ? key : "api_keys");
        total++;
        listed += strstr(buf, flag) != NULL;
    }
    CHECKF(listed == total && total > 20, "%d of %d listed", listed, total);
    CHECK(strstr(buf, "default: 8080"));
    json_decref(all);
    config_free(&c);
}

int main(void) {
    RUN(defaults);
    RUN(layers_apply_in_order);
    RUN(errors_name_the_key);
    RUN(help_lists_every_option);
    return th_done();
}
