/* watch.h: the bookkeeping of `agentctl attach`, apart from its I/O (attach.c): which of
 * the session's events to print, in what order, across reconnects, and which run of ours
 * is on. Pure but for the FILEs it prints to (tests/unit/host/ctl/ctl_watch_test.c).
 *
 * Order. On every connection attach sends {"type":"resume","after":LAST}, LAST being the
 * last seq printed; the daemon then delivers the session's log from LAST + 1 in order,
 * once each (the events missed, then live ones), so a reconnect misses nothing and repeats
 * nothing. An event whose seq is not above the last one printed is a duplicate and is
 * dropped. The replay is over once the event that was the session's last when the
 * connection was made has been printed: only then is a line of input sent (its events
 * come after the history) and, after a reconnect, is our run's state looked at.
 *
 * Runs. A line of input is sent as {"type":"run","input":...,"ref":REF} only when no run
 * of ours is on: the session runs them in order anyway, and this keeps a long piped input
 * from overflowing the session's queue (429 session_busy). Ours is known by its ref on its
 * run.started, then by its run ID until its run.completed, run.failed or run.cancelled. */
#ifndef AGENTHOST_CTL_WATCH_H
#define AGENTHOST_CTL_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "events.h"

#define CTL_WATCH_REF_MAX 24

enum ctl_watch_run {
	CTL_WATCH_IDLE,    /* no run of ours is on: the next line may be sent */
	CTL_WATCH_SENT,    /* our run was sent; its run.started (with our ref) has not come */
	CTL_WATCH_RUNNING, /* our run started and has not ended */
};

struct ctl_watch {
	struct ctl_events events; /* prints the events (stdout) */
	FILE *err;                /* one-line notes and errors (stderr) */
	int64_t last_seq;         /* the last event printed: the next resume is after it */
	int64_t target;           /* the session's last seq when this connection was made */
	int connections;          /* connections made so far */
	bool replaying;           /* the event of seq target has not been printed yet */
	enum ctl_watch_run run_state;
	char ref[CTL_WATCH_REF_MAX]; /* the ref of our run ("line 3") */
	char run[80];                /* its ID, once it started; "" before */
	char ended_run[80];          /* a run whose end was printed from its result (below) */
	bool cancel_wanted;          /* Ctrl-C came before our run's ID */
	bool cancel_sent;            /* a cancel of our run was sent */
	/* Set when a reconnect's replay is over and our run has still not ended: a daemon
	 * that restarted may have failed it without an event in the log (before 0ffdb6b they
	 * all did), so attach asks for the run's result (GET .../runs/RUN) and hands it to
	 * ctl_watch_run_result. */
	bool check_run;
	bool gone;                             /* the daemon said the session was destroyed */
	char error[CTL_EVENTS_ERROR_MAX + 64]; /* why ctl_watch_receive returned -1 */
};

/* Starts watching: events after seq after are printed to out (borrowed) as events.h
 * prints them (json: NDJSON; clean: out is a terminal); notes and errors go to err. */
void ctl_watch_init(struct ctl_watch *w, FILE *out, FILE *err, bool json, bool clean,
                    int64_t after);

/* A connection was made to a session whose last seq was last_seq just before. Appends to
 * send (an array, borrowed) the message to send first: resume after the last seq printed.
 * If our run had been sent but not seen to start when the previous connection dropped, the
 * daemon may or may not have it: it is not sent again (a run has effects), a note says so,
 * and the next line may go. */
void ctl_watch_connected(struct ctl_watch *w, json_t *send, int64_t last_seq);

/* Whether the next line may be sent: connected (the caller knows), the replay over and no
 * run of ours on. */
bool ctl_watch_ready(const struct ctl_watch *w);

/* The run message of input (borrowed) with ref (copied, e.g. "line 3"): a new object to
 * send. Our run is now the one sent. */
json_t *ctl_watch_run(struct ctl_watch *w, json_t *input, const char *ref);

/* One message from the daemon (len bytes of text, borrowed). Prints what is to be printed
 * and sets *send to a message to send (a new object), or NULL: the cancel of our run when
 * Ctrl-C came before it started. Returns 0, or -1 when attach should end with exit status
 * 1 (w->error says why: the session was destroyed, or the output cannot be written). */
int ctl_watch_receive(struct ctl_watch *w, const char *text, size_t len, json_t **send);

/* Ctrl-C. Returns the cancel message of our run to send (a new object), with a note on
 * err, when our run is on and no cancel was asked yet (if it has not started, the cancel is
 * sent when it starts, through ctl_watch_receive, and NULL is returned). Sets *detach
 * instead when there is nothing to cancel: no run of ours, or a second Ctrl-C. */
json_t *ctl_watch_interrupt(struct ctl_watch *w, bool *detach);

/* The result of our run (GET .../runs/RUN, borrowed) after a reconnect (check_run). If it
 * has ended, its end is printed as an event would print it (run.completed, run.failed or
 * run.cancelled, without a seq) and our run is over; a later event of its end is not
 * printed again. Clears check_run. Returns as ctl_watch_receive. */
int ctl_watch_run_result(struct ctl_watch *w, const json_t *run);

#endif
