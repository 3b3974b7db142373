/* Runs a libFuzzer target over every file in the directories (or files) given on the command
 * line, so CI replays the committed corpora with any compiler and under the sanitizers.
 * Prints TAP: one test per corpus directory. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!buf) return -1;
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int failed = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        int count = 0, errors = 0;
        if (stat(argv[a], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[a]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
                errors += replay_file(path) != 0;
                count++;
            }
            if (d) closedir(d);
        } else {
            errors += replay_file(argv[a]) != 0;
            count = 1;
        }
        /* A crash aborts the process; reaching here means every input ran cleanly. */
        int bad = errors > 0 || count == 0;
        failed += bad;
        printf("%s %d - replay %s (%d inputs)\n", bad ? "not ok" : "ok", a, argv[a], count);
    }
    printf("1..%d\n", argc - 1);
    return failed ? 1 : 0;
}
