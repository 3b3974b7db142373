/* `tailor-train`: the trainer's command line. Dispatches to one subcommand per file
 * (trainer/cmd_*.c); this file only lists them (cli_dispatch routes). `tailor-train
 * CONFIG.json` is `tailor-train train CONFIG.json`. */
#include <stddef.h>
#include <string.h>

#include "train_commands.h"

static const cli_command commands[] = {
    {"demo-data", "write the Fashion-MNIST Colours demo data set", cmd_demo_data},
    {"plot", "draw a run's metrics.jsonl as an SVG", cmd_plot},
    {"train", "train a model from CONFIG.json (also: tailor-train CONFIG.json)", cmd_train},
    {NULL, NULL, NULL},
};

static int is_config_path(const char *arg) {
    size_t n = strlen(arg);
    return n > 5 && !strcmp(arg + n - 5, ".json");
}

int main(int argc, char **argv) {
    if (argc >= 2 && is_config_path(argv[1])) return cmd_train(argc, argv);
    return cli_dispatch("tailor-train", commands, argc, argv);
}
