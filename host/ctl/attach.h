/* attach.h: `agentctl attach ID`, an interactive session over the daemon's WebSocket
 * (docs/websocket.md): each line of standard input is a run's input, the session's events
 * print as they stream, Ctrl-C cancels our run (twice: detaches), end of input detaches
 * once our runs have ended, and a dropped connection is made again and resumed. */
#ifndef AGENTHOST_CTL_ATTACH_H
#define AGENTHOST_CTL_ATTACH_H

#include "commands.h"

/* Returns an enum ctl_exit: 0 detached at the end of input, 1 the session does not exist
 * (or went away), the token was refused, or the daemon could not be reached again, 2 a
 * wrong command line, 130 detached by Ctrl-C. */
int ctl_cmd_attach(struct ctl_ctx *ctx, const struct ctl_args *args);

#endif
