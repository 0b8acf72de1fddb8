/* stream.h: a run whose events are printed as they come (`invoke`, `run`): its input, from
 * an argument or standard input by input.h's rules, and the POST that streams the run's
 * events back over SSE into the printer of events.h. */
#ifndef AGENTHOST_CTL_STREAM_H
#define AGENTHOST_CTL_STREAM_H

#include <jansson.h>

#include "commands.h"

/* The input in args->argv[index] ("-": standard input; absent: standard input when it is
 * not a terminal, else null). Returns CTL_EXIT_OK with *input set (a new reference), or the
 * exit status after printing why not: CTL_EXIT_USAGE for text that is not valid JSON
 * (with its line and column), CTL_EXIT_FAIL when stdin cannot be read. */
int ctl_read_input(const struct ctl_args *args, int index, json_t **input);

/* POSTs {"input": input} (borrowed) to path asking for an event stream, prints the events
 * as they come, and returns the exit status: 0 the run completed, 1 it did not (or the
 * daemon refused, or the network failed), 130 Ctrl-C. Ctrl-C closes the connection; a
 * stateless call ends with it. session is NULL for a stateless call; for a session's run
 * it is the session's route ("/v1/sessions/s_..."), and Ctrl-C first asks the daemon to
 * cancel the run, which would otherwise go on without its client. */
int ctl_stream_run(struct ctl_ctx *ctx, const char *path, json_t *input, const char *session);

#endif
