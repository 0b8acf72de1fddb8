/* events.h: how agentctl prints the events of runs as they stream (`invoke`, `run`,
 * `attach`): for people, the run's ID, each piece of output as the agent emitted it and
 * the final output; with --json, each event as one line of JSON (NDJSON). It also keeps
 * track of how the latest run ended, for the exit status. Pure but for the FILE it writes
 * to, so tests/unit/host/ctl/ctl_events_test.c checks it through open_memstream. */
#ifndef AGENTHOST_CTL_EVENTS_H
#define AGENTHOST_CTL_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CTL_EVENTS_ERROR_MAX 1024

enum ctl_run_end {
	CTL_RUN_GOING,     /* no final event yet */
	CTL_RUN_COMPLETED, /* run.completed */
	CTL_RUN_FAILED,    /* run.failed */
	CTL_RUN_CANCELLED, /* run.cancelled */
};

struct ctl_events {
	FILE *out;
	bool json;     /* --json: every event's JSON, compact, one per line */
	bool clean;    /* show control characters from the agent as '?' (out is a terminal) */
	bool mid_line; /* the last text printed did not end its line */
	enum ctl_run_end end;
	char run[80];                     /* the run's ID, from its first event; "" before */
	char error[CTL_EVENTS_ERROR_MAX]; /* why it failed, or what was wrong with an event */
};

/* Starts printing to out (borrowed). clean as above. */
void ctl_events_init(struct ctl_events *ev, FILE *out, bool json, bool clean);

/* One event of the stream: data (len bytes, borrowed) is its JSON, whose "type" names it
 * (type, the SSE event name, is used when it has none). Prints it, for people:
 * - run.started: "run.started RUN_ID" (ev->run becomes that run: a session's stream
 *   holds one run after another);
 * - run.output: its data; a string as it is (no newline added, so streamed pieces of text
 *   join up), anything else as compact JSON on a line of its own;
 * - run.completed: the output on a line of its own, a string as it is, else compact JSON;
 * - run.failed, run.cancelled: nothing; ev->error becomes "run failed: CODE: MESSAGE"
 *   (one line) for the caller to print on stderr;
 * - other types: nothing.
 * With json, every event is printed, as compact JSON and a newline. out is flushed.
 * Returns 0 to go on, 1 when the event ended the run (ev->end says how), or -1 when data is
 * not a JSON object (nothing is printed) or out cannot be written to (a closed pipe); then
 * ev->error says so. */
int ctl_events_add(struct ctl_events *ev, const char *type, const char *data, size_t len);

/* Ends the line that streamed text left open, if any (before an error on stderr). */
void ctl_events_end_line(struct ctl_events *ev);

/* Prints value (borrowed) on a line of its own as run.completed prints an output: a string
 * as it is, anything else as compact JSON, control characters as '?' when ev->clean; then
 * flushes. For values that are not events (`agentctl state ID KEY`). */
void ctl_events_print_value(struct ctl_events *ev, const json_t *value);

#endif
