/* tailord's configuration: one table declares every option (name, type, bounds, default, help,
 * validator); defaults, the JSON config file, TAILORD_* environment variables and command-line
 * flags are applied in that order through the same table, and --help and /v1/info read it.
 * Not for: reloading at run time (a restart or SIGHUP re-reads model and index, not options). */
#ifndef TAILORD_CONFIG_H
#define TAILORD_CONFIG_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config_list {
    char **items;
    int count;
} config_list;

typedef struct tailord_config {
    char *listen; /* IP address to bind */
    int64_t port;
    char *model_dir, *index_dir, *web_dir;
    char *state_dir;         /* admin changes; "" = index_dir + ".state" */
    int64_t threads;         /* model threads; 0 = online CPUs */
    int64_t decode_bf16;     /* 1: captions decode with bf16 weight copies */
    double batch_window_ms;  /* how long the batcher waits for more work */
    int64_t batch_max;       /* inputs per forward pass */
    int64_t queue_max;       /* queued inputs before interactive requests get 503 */
    int64_t queue_bulk_max;  /* queued inputs before bulk requests get 429 */
    int64_t body_limit;      /* request body bytes */
    int64_t url_limit;       /* request URL bytes */
    int64_t embed_max_items; /* inputs per /v1/embed request */
    int64_t image_max_pixels;
    int64_t http_connections, http_timeout_s;
    config_list api_keys;
    int64_t sessions_max_count, sessions_max_bytes, sessions_ttl_s;
    double sessions_decay; /* decayed-sum session memory (proto/session.md) */
    char *sessions_persist;
    char *redis_url;
    char *log_level;
    int64_t drain_timeout_s;
} tailord_config;

/* Fills cfg from defaults, then the file named by --config FILE (or TAILORD_CONFIG), then
 * TAILORD_* variables of envp, then flags (--name=value or --name value). On error returns -1
 * with a message naming the option or key in msg. cfg must be released with config_free. */
int config_load(tailord_config *cfg, int argc, char **argv, char **envp, char *msg,
                size_t msg_size);
void config_free(tailord_config *cfg);

/* Writes every option with its type, default and help. */
void config_print_help(FILE *out);

/* The effective configuration as a JSON object (API keys replaced by their count). New
 * reference, owned by the caller. */
json_t *config_to_json(const tailord_config *cfg);

#endif
