/* `tailor-train`: the trainer's command line. Dispatches to one subcommand per file
 * (trainer/cmd_*.c); this file only lists them (cli_dispatch routes). */
#include <stddef.h>

#include "train_commands.h"

static const cli_command commands[] = {
    {"demo-data", "write the Fashion-MNIST Colours demo data set", cmd_demo_data},
    {"plot", "draw a run's metrics.jsonl as an SVG", cmd_plot},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) {
    return cli_dispatch("tailor-train", commands, argc, argv);
}
