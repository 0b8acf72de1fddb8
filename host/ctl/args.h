/* args.h: agentctl's command line: global options (anywhere on the line), the command,
 * looked up in a table of small entries in the tmux manner, its positional arguments and
 * its own options. Pure: no I/O, so the rules are unit-tested (tests/unit/host/ctl). */
#ifndef AGENTHOST_CTL_ARGS_H
#define AGENTHOST_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of DESIGN §7. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,  /* the daemon answered an error, or the network failed */
	CTL_EXIT_USAGE = 2, /* the command line is wrong */
	/* Ctrl-C ended a streamed call: 128 + SIGINT, as a shell reports a process killed by
	 * it; agentctl closes the connection first (the daemon then ends the call). */
	CTL_EXIT_INTERRUPTED = 130,
};

#define CTL_MAX_ARGS 8
#define CTL_MAX_OPTIONS 8 /* a command's own options, in its table entry */
#define CTL_MAX_GIVEN 32  /* option words on one line ("--config A=1 --config B=2") */

/* One option, global or a command's own. Options are long only ("--force"); a value comes
 * as "--name VALUE" or "--name=VALUE". A command's option may be given several times
 * (`create --config A=1 --config B=2`): ctl_args_option gives the last, ctl_args_option_nth
 * each in turn. */
struct ctl_option {
	const char *name;  /* without the leading "--" */
	const char *value; /* NULL for a flag; else the value's name in help, e.g. "URL" */
	const char *help;  /* one line */
};

struct ctl_ctx;
struct ctl_args;

/* One command. Every string is static. */
struct ctl_command {
	const char *name;    /* "agents", or "token create" for a verb of a group */
	const char *usage;   /* what follows the name, e.g. "NAME [--force]" */
	const char *summary; /* one line for `agentctl --help` */
	const char *help;    /* for `agentctl CMD --help`: what it does and what it prints */
	int min_args, max_args;
	const struct ctl_option *options; /* its own options; NULL, or ended by {NULL} */
	/* Runs the command; returns an enum ctl_exit. */
	int (*exec)(struct ctl_ctx *ctx, const struct ctl_args *args);
};

/* The parsed line. Every string is borrowed from argv. */
struct ctl_args {
	const char *url, *token, *state_dir, *timeout; /* NULL when not given */
	bool json, verbose, help, version;
	const struct ctl_command *command; /* NULL: none given, or a group name alone */
	const char *group;                 /* "token" when `agentctl token --help` was asked */
	const char *argv[CTL_MAX_ARGS];    /* the command's positional arguments */
	int argc;
	/* By index into command->options: the value, "" for a flag given, NULL if absent
	 * (the last one when the option was given several times). */
	const char *option_values[CTL_MAX_OPTIONS];
	/* Every command option given, in the order of the line: its index into
	 * command->options and its value ("" for a flag). */
	struct {
		int index;
		const char *value;
	} given[CTL_MAX_GIVEN];
	int ngiven;
};

/* The global options, ended by {NULL}, for the help text. */
extern const struct ctl_option ctl_global_options[];

/* Parses argv[1..argc-1] against the n commands of table (borrowed, must outlive *out).
 * Returns 0 with *out filled, or -1 with one line in err (e.g. "unknown command 'instal'",
 * "agent: missing argument NAME (usage: agentctl agent NAME)"). A help request is never
 * an error: with --help, missing or extra arguments are not checked. `agentctl help CMD`
 * is the same as `agentctl CMD --help`. */
int ctl_args_parse(int argc, char **argv, const struct ctl_command *table, size_t n,
                   struct ctl_args *out, char *err, size_t errlen);

/* The value of the command's option name: "" for a flag given, NULL if absent. */
const char *ctl_args_option(const struct ctl_args *args, const char *name);

/* The n-th value (from 0) of the command's option name, in the order of the line; NULL
 * past the last. For options given several times, such as create's --config. */
const char *ctl_args_option_nth(const struct ctl_args *args, const char *name, int n);

/* Whether name is a group of commands in table ("token" for "token create"...). */
bool ctl_args_is_group(const struct ctl_command *table, size_t n, const char *name);

#endif
