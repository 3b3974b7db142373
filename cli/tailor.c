/* `tailor`: the command-line front door to the engine and the index. Dispatches to one
 * subcommand per file (cli/cmd_*.c); this file only lists them (cli_dispatch routes). */
#include <stddef.h>

#include "commands.h"

static const cli_command commands[] = {
    /* {"name", "one-line summary", cmd_name}, */
    {"compose", "composed (image + text) query embedding", cmd_compose},
    {"classify", "sub-category probabilities of an image", cmd_classify},
    {"caption", "caption an image", cmd_caption},
    {"embed", "print CLIP embeddings of texts and images", cmd_embed},
    {"eval", "evaluate a checkpoint on a data set split", cmd_eval},
    {"index", "build, inspect and verify index directories", cmd_index},
    {"search", "search an index directory by text, image or item", cmd_search},
    {"session", "replay a multi-turn search over a gallery", cmd_session},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) {
    return cli_dispatch("tailor", commands, argc, argv);
}
