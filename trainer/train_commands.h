/* Subcommands of `tailor-train`, one file each (trainer/cmd_NAME.c). Each takes the arguments
 * after its name (argv[0] is the subcommand name) and returns the process exit status:
 * 0 success, 1 runtime error, 2 usage error. */
#ifndef TL_TRAINER_TRAIN_COMMANDS_H
#define TL_TRAINER_TRAIN_COMMANDS_H

#include "subcommand.h"

int cmd_demo_data(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif
