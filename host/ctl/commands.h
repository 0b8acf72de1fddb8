/* commands.h: agentctl's command table and the context every command runs with. Each
 * command is one entry {name, usage, summary, help, arity, options, exec} and one exec
 * function in commands.c; a new command of DESIGN §7 is a new entry, nothing else. */
#ifndef AGENTHOST_CTL_COMMANDS_H
#define AGENTHOST_CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "client.h"
#include "config.h"

struct ctl_ctx {
	struct ctl_config cfg;        /* owned */
	struct ctl_http_client *http; /* owned */
	bool json;                    /* --json: print the daemon's JSON */
	bool verbose;                 /* --verbose: lws' own log lines on stderr */
};

extern const struct ctl_command ctl_commands[];
extern const size_t ctl_commands_len;

#endif
