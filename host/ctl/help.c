/* help.c: agentctl's help texts (see help.h). */
#include "help.h"

#include <ctype.h>
#include <string.h>

#include "output.h"

static void print_commands(FILE *out, const struct ctl_command *table, size_t n, const char *group)
{
	struct ctl_table *t = ctl_table_new(2, NULL);
	size_t glen = group ? strlen(group) : 0;

	for (size_t i = 0; i < n; i++) {
		char left[128];
		const char *cells[2] = {left, table[i].summary};

		if (group && (strncmp(table[i].name, group, glen) || table[i].name[glen] != ' '))
			continue;
		snprintf(left, sizeof(left), "  %s%s%s", table[i].name, *table[i].usage ? " " : "",
		         table[i].usage);
		ctl_table_add_row(t, cells);
	}
	ctl_table_print(t, out, false);
	ctl_table_free(t);
}

static void print_options(FILE *out, const struct ctl_option *opts)
{
	struct ctl_table *t = ctl_table_new(2, NULL);

	for (; opts && opts->name; opts++) {
		char left[64];
		const char *cells[2] = {left, opts->help};

		snprintf(left, sizeof(left), "  --%s%s%s", opts->name, opts->value ? " " : "",
		         opts->value ? opts->value : "");
		ctl_table_add_row(t, cells);
	}
	ctl_table_print(t, out, false);
	ctl_table_free(t);
}

void ctl_help_main(FILE *out, const struct ctl_command *table, size_t n)
{
	fprintf(out, "usage: agentctl [OPTIONS] COMMAND [ARGS]\n\n"
	             "Manages an agenthost daemon over its HTTP API.\n\n"
	             "Commands:\n");
	print_commands(out, table, n, NULL);
	fprintf(out, "\nOptions (before or after the command):\n");
	print_options(out, ctl_global_options);
	fprintf(out, "\n'agentctl COMMAND --help' tells what a command does and prints.\n"
	             "Exit status: 0 ok, 1 the daemon answered an error or could not be reached,\n"
	             "2 the command line is wrong.\n");
}

void ctl_help_command(FILE *out, const struct ctl_command *c)
{
	/* The summary is a lower-case line in the list; here it opens a sentence. */
	fprintf(out, "usage: agentctl %s%s%s\n\n%c%s.\n\n%s\n", c->name, *c->usage ? " " : "",
	        c->usage, toupper((unsigned char)c->summary[0]), c->summary + 1, c->help);
	if (c->options && c->options->name) {
		fprintf(out, "\nOptions:\n");
		print_options(out, c->options);
	}
	fprintf(out, "\nGlobal options (--url, --token, --json...): see 'agentctl --help'.\n");
}

void ctl_help_group(FILE *out, const struct ctl_command *table, size_t n, const char *group)
{
	fprintf(out, "usage: agentctl %s COMMAND [ARGS]\n\nCommands:\n", group);
	print_commands(out, table, n, group);
	fprintf(out, "\n'agentctl %s COMMAND --help' tells more.\n", group);
}
