/* The option table of config.h and the four layers that apply it (default, file, env, flag).
 * Every value, whatever its source, goes through option_set so bounds and validators run once. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef TAILORD_WEB_DIR
#define TAILORD_WEB_DIR "server/web"
#endif

typedef enum option_type { OPT_STRING, OPT_INT, OPT_DOUBLE, OPT_LIST } option_type;

typedef int (*option_validator)(const char *value, char *msg, size_t msg_size);

typedef struct config_option {
    const char *name;
    option_type type;
    size_t offset;
    double min, max; /* bounds of numbers */
    const char *default_value;
    const char *help;
    option_validator validate; /* extra check of string values; may be NULL */
} config_option;

static int validate_ip(const char *value, char *msg, size_t msg_size);
static int validate_log_level(const char *value, char *msg, size_t msg_size);
static int validate_redis_url(const char *value, char *msg, size_t msg_size);

#define OFF(field) offsetof(tailord_config, field)
static const config_option options[] = {
    {"listen", OPT_STRING, OFF(listen), 0, 0, "127.0.0.1", "IP address to listen on", validate_ip},
    {"port", OPT_INT, OFF(port), 0, 65535, "8080", "TCP port (0 = any free port)", NULL},
    {"model_dir", OPT_STRING, OFF(model_dir), 0, 0, "", "checkpoint directory to serve", NULL},
    {"index_dir", OPT_STRING, OFF(index_dir), 0, 0, "",
     "index directory written by `tailor index build` (never modified)", NULL},
    {"state_dir", OPT_STRING, OFF(state_dir), 0, 0, "",
     "journal of admin item changes and their images (empty = INDEX_DIR.state)", NULL},
    {"web_dir", OPT_STRING, OFF(web_dir), 0, 0, TAILORD_WEB_DIR, "demo page files", NULL},
    {"threads", OPT_INT, OFF(threads), 0, 1024, "0", "model threads (0 = online CPUs)", NULL},
    {"decode_bf16", OPT_INT, OFF(decode_bf16), 0, 1, "0",
     "1: captioning reads bf16 copies of the decoder weights (faster, near fp32, more memory)",
     NULL},
    {"batch.window_ms", OPT_DOUBLE, OFF(batch_window_ms), 0, 1000, "2",
     "how long a batch waits for more inputs", NULL},
    {"batch.max", OPT_INT, OFF(batch_max), 1, 4096, "32", "inputs per forward pass", NULL},
    {"queue.max", OPT_INT, OFF(queue_max), 1, 1000000, "1024",
     "queued inputs before interactive requests get 503", NULL},
    {"queue.bulk_max", OPT_INT, OFF(queue_bulk_max), 1, 1000000, "256",
     "queued inputs before bulk (/v1/embed) requests get 429", NULL},
    {"limits.body_bytes", OPT_INT, OFF(body_limit), 1024, 1 << 30, "8388608",
     "largest request body", NULL},
    {"limits.url_bytes", OPT_INT, OFF(url_limit), 64, 65536, "2048", "longest request URL", NULL},
    {"limits.embed_items", OPT_INT, OFF(embed_max_items), 1, 4096, "64",
     "texts plus images per /v1/embed request", NULL},
    {"limits.image_pixels", OPT_INT, OFF(image_max_pixels), 1, 1e9, "40000000",
     "largest decoded image (width x height)", NULL},
    {"http.connections", OPT_INT, OFF(http_connections), 1, 100000, "1024",
     "concurrent connections", NULL},
    {"http.timeout_s", OPT_INT, OFF(http_timeout_s), 1, 3600, "30",
     "idle connection timeout (slow clients)", NULL},
    {"api_keys", OPT_LIST, OFF(api_keys), 0, 0, "",
     "admin API keys (comma-separated in env and flags)", NULL},
    {"sessions.max_count", OPT_INT, OFF(sessions_max_count), 1, 1e8, "10000",
     "sessions held before the least recently used is evicted", NULL},
    {"sessions.max_bytes", OPT_INT, OFF(sessions_max_bytes), 1024, 1e12, "268435456",
     "session memory before the least recently used is evicted", NULL},
    {"sessions.ttl_s", OPT_INT, OFF(sessions_ttl_s), 1, 1e7, "1800",
     "idle seconds before a session expires", NULL},
    {"sessions.decay", OPT_DOUBLE, OFF(sessions_decay), 0, 1, "0.5",
     "weight of earlier turns in the zero-shot session memory", NULL},
    {"sessions.persist", OPT_STRING, OFF(sessions_persist), 0, 0, "",
     "snapshot file written on SIGTERM and read on start (empty = none)", NULL},
    {"redis_url", OPT_STRING, OFF(redis_url), 0, 0, "",
     "redis://host:port for shared sessions (empty = in-process)", validate_redis_url},
    {"log_level", OPT_STRING, OFF(log_level), 0, 0, "info", "debug, info, warn or error",
     validate_log_level},
    {"drain_timeout_s", OPT_INT, OFF(drain_timeout_s), 0, 3600, "20",
     "how long SIGTERM waits for requests in flight", NULL},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static int fail(char *msg, size_t msg_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t msg_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_size, fmt, ap);
    va_end(ap);
    return -1;
}

static int validate_ip(const char *value, char *msg, size_t msg_size) {
    unsigned char addr[16];
    if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1) return 0;
    return fail(msg, msg_size, "'%s' is not an IPv4 or IPv6 address", value);
}

static int validate_log_level(const char *value, char *msg, size_t msg_size) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(value, names[i])) return 0;
    return fail(msg, msg_size, "'%s' is not one of debug, info, warn, error", value);
}

static int validate_redis_url(const char *value, char *msg, size_t msg_size) {
    if (!*value || !strncmp(value, "redis://", 8)) return 0;
    return fail(msg, msg_size, "'%s' does not start with redis://", value);
}

static const config_option *option_find(const char *name) {
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strcmp(options[i].name, name)) return &options[i];
    return NULL;
}

static void list_clear(config_list *list) {
    for (int i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static int list_append(config_list *list, const char *item, size_t len) {
    char **grown = realloc(list->items, (size_t)(list->count + 1) * sizeof *grown);
    if (!grown) return -1;
    list->items = grown;
    if (!(list->items[list->count] = strndup(item, len))) return -1;
    list->count++;
    return 0;
}

/* Comma-separated items; empty items are skipped. */
static int list_set(config_list *list, const char *value) {
    list_clear(list);
    for (const char *p = value; *p;) {
        size_t len = strcspn(p, ",");
        if (len && list_append(list, p, len)) return -1;
        p += len + (p[len] == ',');
    }
    return 0;
}

static int parse_number(const config_option *opt, const char *value, double *out, char *msg,
                        size_t msg_size) {
    char *end;
    errno = 0;
    double v = opt->type == OPT_INT ? (double)strtoll(value, &end, 10) : strtod(value, &end);
    if (!*value || *end || errno || !isfinite(v))
        return fail(msg, msg_size, "option %s: '%s' is not a number", opt->name, value);
    if (v < opt->min || v > opt->max) {
        char bounds[96];
        snprintf(bounds, sizeof bounds, "'%s' is outside [%g, %g]", value, opt->min, opt->max);
        return fail(msg, msg_size, "option %s: %s", opt->name, bounds);
    }
    *out = v;
    return 0;
}

/* Sets one option from its text form, checking type, bounds and validator. */
static int option_set(tailord_config *cfg, const config_option *opt, const char *value, char *msg,
                      size_t msg_size) {
    void *field = (char *)cfg + opt->offset;
    double number = 0;
    switch (opt->type) {
        case OPT_STRING: {
            if (opt->validate && opt->validate(value, msg, msg_size)) {
                char why[256];
                snprintf(why, sizeof why, "%s", msg);
                return fail(msg, msg_size, "option %s: %s", opt->name, why);
            }
            char *copy = strdup(value);
            if (!copy) return fail(msg, msg_size, "option %s: out of memory", opt->name);
            free(*(char **)field);
            *(char **)field = copy;
            return 0;
        }
        case OPT_INT:
            if (parse_number(opt, value, &number, msg, msg_size)) return -1;
            *(int64_t *)field = (int64_t)number;
            return 0;
        case OPT_DOUBLE:
            if (parse_number(opt, value, &number, msg, msg_size)) return -1;
            *(double *)field = number;
            return 0;
        case OPT_LIST:
            if (list_set(field, value))
                return fail(msg, msg_size, "option %s: out of memory", opt->name);
            return 0;
    }
    return -1;
}

/* The text form of a JSON value for opt: strings as they are, numbers printed, lists joined. */
static int json_value_text(const config_option *opt, json_t *value, char *text, size_t size) {
    switch (opt->type) {
        case OPT_STRING:
            return json_is_string(value) ? (snprintf(text, size, "%s", json_string_value(value)), 0)
                                         : -1;
        case OPT_INT:
            if (!json_is_integer(value)) return -1;
            snprintf(text, size, "%lld", (long long)json_integer_value(value));
            return 0;
        case OPT_DOUBLE:
            if (!json_is_number(value)) return -1;
            snprintf(text, size, "%.17g", json_number_value(value));
            return 0;
        case OPT_LIST: {
            if (!json_is_array(value)) return -1;
            size_t i, used = 0;
            json_t *item;
            text[0] = 0;
            json_array_foreach(value, i, item) {
                if (!json_is_string(item) || strchr(json_string_value(item), ',')) return -1;
                used += (size_t)snprintf(text + used, size > used ? size - used : 0, "%s%s",
                                         i ? "," : "", json_string_value(item));
            }
            return used < size ? 0 : -1;
        }
    }
    return -1;
}

/* Applies one object of the config file; nested objects name groups ("sessions": {...}). */
static int apply_json_object(tailord_config *cfg, json_t *object, const char *prefix, char *msg,
                             size_t msg_size) {
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        char name[128], text[8192];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (json_is_object(value)) {
            if (apply_json_object(cfg, value, name, msg, msg_size)) return -1;
            continue;
        }
        const config_option *opt = option_find(name);
        if (!opt) return fail(msg, msg_size, "config file: unknown key '%s'", name);
        if (json_value_text(opt, value, text, sizeof text))
            return fail(msg, msg_size, "config file: key '%s' has the wrong type", name);
        if (option_set(cfg, opt, text, msg, msg_size)) return -1;
    }
    return 0;
}

static int apply_file(tailord_config *cfg, const char *path, char *msg, size_t msg_size) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char where[300];
        snprintf(where, sizeof where, "line %d: %s", jerr.line, jerr.text);
        return fail(msg, msg_size, "config file %s: %s", path, where);
    }
    int rc = json_is_object(root) ? apply_json_object(cfg, root, "", msg, msg_size)
                                  : fail(msg, msg_size, "config file %s: not a JSON object", path);
    json_decref(root);
    return rc;
}

/* TAILORD_SESSIONS_TTL_S names sessions.ttl_s: upper case, dots and dashes as underscores. */
static void env_name(const char *option, char *out, size_t size) {
    size_t n = (size_t)snprintf(out, size, "TAILORD_");
    for (const char *p = option; *p && n + 1 < size; p++)
        out[n++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    out[n] = 0;
}

static int apply_env(tailord_config *cfg, char **envp, char *msg, size_t msg_size) {
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "TAILORD_", 8)) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        size_t len = (size_t)(eq - *e);
        if (len == strlen("TAILORD_CONFIG") && !strncmp(*e, "TAILORD_CONFIG", len)) continue;
        const config_option *match = NULL;
        for (size_t i = 0; i < N_OPTIONS && !match; i++) {
            char name[128];
            env_name(options[i].name, name, sizeof name);
            if (strlen(name) == len && !strncmp(name, *e, len)) match = &options[i];
        }
        if (!match) {
            char var[128];
            snprintf(var, sizeof var, "%.*s", (int)(len < 100 ? len : 100), *e);
            return fail(msg, msg_size, "environment: unknown variable '%s'", var);
        }
        if (option_set(cfg, match, eq + 1, msg, msg_size)) return -1;
    }
    return 0;
}

/* Finds --config FILE / --config=FILE among the flags (applied before the other flags). */
static const char *config_path_flag(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9)) return argv[i] + 9;
    }
    return NULL;
}

static int apply_flags(tailord_config *cfg, int argc, char **argv, char *msg, size_t msg_size) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2)) return fail(msg, msg_size, "unexpected argument '%s'", arg);
        char name[128];
        const char *eq = strchr(arg, '='), *value;
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg - 2) : 120, arg + 2);
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return fail(msg, msg_size, "flag --%s needs a value", name);
        if (!strcmp(name, "config")) continue;
        const config_option *opt = option_find(name);
        if (!opt) return fail(msg, msg_size, "unknown flag '--%s' (see --help)", name);
        if (option_set(cfg, opt, value, msg, msg_size)) return -1;
    }
    return 0;
}

int config_load(tailord_config *cfg, int argc, char **argv, char **envp, char *msg,
                size_t msg_size) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (option_set(cfg, &options[i], options[i].default_value, msg, msg_size)) return -1;
    const char *path = config_path_flag(argc, argv);
    if (!path) path = getenv("TAILORD_CONFIG");
    if (path && *path && apply_file(cfg, path, msg, msg_size)) return -1;
    if (apply_env(cfg, envp, msg, msg_size)) return -1;
    return apply_flags(cfg, argc, argv, msg, msg_size);
}

void config_free(tailord_config *cfg) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        void *field = (char *)cfg + options[i].offset;
        if (options[i].type == OPT_STRING) free(*(char **)field);
        if (options[i].type == OPT_LIST) list_clear(field);
    }
    memset(cfg, 0, sizeof *cfg);
}

static const char *const type_names[] = {"string", "int", "number", "list"};

void config_print_help(FILE *out) {
    fprintf(out, "options (flag --NAME VALUE, env TAILORD_NAME, or key NAME in --config FILE):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option *o = &options[i];
        char env[128];
        env_name(o->name, env, sizeof env);
        fprintf(out, "  --%-20s %-6s %s (default: %s%s%s)\n", o->name, type_names[o->type], o->help,
                *o->default_value ? "" : "\"", o->default_value, *o->default_value ? "" : "\"");
        if (o->type == OPT_INT || o->type == OPT_DOUBLE)
            fprintf(out, "  %-22s        range [%g, %g], env %s\n", "", o->min, o->max, env);
        else
            fprintf(out, "  %-22s        env %s\n", "", env);
    }
}

json_t *config_to_json(const tailord_config *cfg) {
    json_t *out = json_object();
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option *o = &options[i];
        const void *field = (const char *)cfg + o->offset;
        json_t *v = NULL;
        switch (o->type) {
            case OPT_STRING:
                v = json_string(*(char *const *)field);
                break;
            case OPT_INT:
                v = json_integer(*(const int64_t *)field);
                break;
            case OPT_DOUBLE:
                v = json_real(*(const double *)field);
                break;
            case OPT_LIST:
                v = json_integer(((const config_list *)field)->count);
                break;
        }
        json_object_set_new(out, o->type == OPT_LIST ? "api_keys_count" : o->name, v);
    }
    return out;
}
