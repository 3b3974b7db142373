/* libFuzzer target for tailord's JSON config file (server/config.c): each input becomes the
 * file named by --config, read through config_load with no environment and no other flags.
 * The input lives in one memfd, rewritten per run and opened by its /proc/self/fd path, so no
 * disk is touched. An accepted config must print back as a JSON object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

/* The path of a memfd holding exactly data, or NULL when it cannot be written. */
static const char *input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_tailord_config", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) return NULL;
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = input_file(data, size);
    if (!path) return 0;
    char *argv[] = {"tailord", "--config", (char *)path, NULL};
    char *envp[] = {NULL};
    char msg[512] = "";
    tailord_config cfg;
    if (config_load(&cfg, 3, argv, envp, msg, sizeof msg) == 0) {
        json_t *shown = config_to_json(&cfg);
        if (!json_is_object(shown)) abort();
        json_decref(shown);
    } else if (!msg[0]) {
        abort(); /* every failure names its problem */
    }
    config_free(&cfg);
    return 0;
}
