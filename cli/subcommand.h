/* The subcommand dispatch shared by the `tailor` and `tailor-train` executables: a table of
 * named commands, --help / --version, routing argv to the chosen command.
 * Not for: parsing a subcommand's own options (each cmd_NAME.c does that). */
#ifndef TL_CLI_SUBCOMMAND_H
#define TL_CLI_SUBCOMMAND_H

/* One subcommand. run takes the arguments after the program name (argv[0] is the subcommand
 * name) and returns the process exit status: 0 success, 1 runtime error, 2 usage error. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

/* Runs program's main: --help / -h prints the usage built from commands (ended by a row of
 * NULLs), --version prints "program VERSION", a command name runs that command. Returns the
 * exit status: the command's, 0 for --help / --version, 2 for a missing or unknown command. */
int cli_dispatch(const char *program, const cli_command *commands, int argc, char **argv);

#endif
