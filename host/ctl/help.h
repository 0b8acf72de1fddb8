/* help.h: agentctl's --help texts, generated from the command table so that a command
 * is listed exactly when it exists. */
#ifndef AGENTHOST_CTL_HELP_H
#define AGENTHOST_CTL_HELP_H

#include <stdio.h>

#include "args.h"

/* `agentctl --help`: usage, every command with its summary, the global options. */
void ctl_help_main(FILE *out, const struct ctl_command *table, size_t n);

/* `agentctl CMD --help`: its usage, what it does and prints, its options. */
void ctl_help_command(FILE *out, const struct ctl_command *c);

/* `agentctl token --help`: the verbs of a group. */
void ctl_help_group(FILE *out, const struct ctl_command *table, size_t n, const char *group);

#endif
