/* Subcommands of the `tailor` CLI, one file each (cli/cmd_NAME.c). Each takes the arguments
 * after its name (argv[0] is the subcommand name) and returns the process exit status:
 * 0 success, 1 runtime error, 2 usage error. */
#ifndef TL_CLI_COMMANDS_H
#define TL_CLI_COMMANDS_H

#include "subcommand.h"

/* One declaration per subcommand file. */
int cmd_compose(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_caption(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_session(int argc, char **argv);

#endif
