/* watch.c: the bookkeeping of `agentctl attach` (see watch.h for the rules). */
#include "watch.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

void ctl_watch_init(struct ctl_watch *w, FILE *out, FILE *err, bool json, bool clean, int64_t after)
{
	memset(w, 0, sizeof(*w));
	ctl_events_init(&w->events, out, json, clean);
	w->err = err;
	w->last_seq = after;
}

static const char *field(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

/* A note or error on err, in one line, after ending the line of streamed text. */
__attribute__((format(printf, 2, 3))) static void note(struct ctl_watch *w, const char *fmt, ...)
{
	char line[CTL_EVENTS_ERROR_MAX], clean[CTL_EVENTS_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_format_one_line(line, strlen(line), clean, sizeof(clean));
	ctl_events_end_line(&w->events);
	fprintf(w->err, "agentctl: %s\n", clean);
	fflush(w->err);
}

static void our_run_over(struct ctl_watch *w)
{
	w->run_state = CTL_WATCH_IDLE;
	w->run[0] = w->ref[0] = '\0';
	w->cancel_wanted = w->cancel_sent = w->check_run = false;
}

static bool is_end(const char *type)
{
	return !strcmp(type, "run.completed") || !strcmp(type, "run.failed") ||
	       !strcmp(type, "run.cancelled");
}

static json_t *cancel_message(const char *run)
{
	return json_pack("{s:s, s:s}", "type", "cancel", "run", run);
}

/* Prints one event through the printer; the error line of a failed or cancelled run goes
 * to err. Returns 0, or -1 when out cannot be written to. */
static int print(struct ctl_watch *w, const json_t *event)
{
	const char *type = field(event, "type");
	char *text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc;

	if (!text)
		abort();
	w->events.error[0] = '\0';
	rc = ctl_events_add(&w->events, type, text, strlen(text));
	free(text);
	if (rc < 0) {
		snprintf(w->error, sizeof(w->error), "%s", w->events.error);
		return -1;
	}
	if (w->events.error[0])
		note(w, "%s", w->events.error);
	return 0;
}

/* The replay is over once the session's last event at connection time is printed; our
 * run still on after a reconnect's replay may have been failed by a daemon restart. */
static void check_caught_up(struct ctl_watch *w)
{
	if (!w->replaying || w->last_seq < w->target)
		return;
	w->replaying = false;
	if (w->connections > 1 && w->run_state == CTL_WATCH_RUNNING)
		w->check_run = true;
}

/* A session event (it has a seq): printed unless it is a duplicate, and followed for the
 * state of our run. */
static int take_event(struct ctl_watch *w, const json_t *event, json_t **send)
{
	json_int_t seq = json_integer_value(json_object_get(event, "seq"));
	const char *type = field(event, "type"), *run = field(event, "run");

	if (seq <= w->last_seq)
		return 0;
	w->last_seq = seq;
	if (w->run_state == CTL_WATCH_SENT && !strcmp(type, "run.started") && *run &&
	    !strcmp(field(event, "ref"), w->ref)) {
		w->run_state = CTL_WATCH_RUNNING;
		snprintf(w->run, sizeof(w->run), "%s", run);
		if (w->cancel_wanted) {
			*send = cancel_message(run);
			w->cancel_sent = true;
		}
	}
	if (is_end(type) && *run && !strcmp(run, w->ended_run)) {
		w->ended_run[0] = '\0'; /* printed already, from the run's result */
	} else if (print(w, event)) {
		return -1;
	} else if (is_end(type) && w->run_state == CTL_WATCH_RUNNING && !strcmp(run, w->run)) {
		our_run_over(w);
	}
	check_caught_up(w);
	return 0;
}

/* {"type": "error", "error": {"code", "message"}, "ref"?}. */
static int take_error(struct ctl_watch *w, const json_t *msg)
{
	const json_t *error = json_object_get(msg, "error");
	const char *code = field(error, "code"), *message = field(error, "message");
	const char *ref = json_string_value(json_object_get(msg, "ref"));

	if (w->run_state == CTL_WATCH_SENT &&
	    (ref ? !strcmp(ref, w->ref) : strcmp(code, "not_found"))) {
		/* Ours: refused by its ref, or one the daemon could not read (too large). */
		note(w, "%s: the daemon refused the run: %s: %s", w->ref, code, message);
		our_run_over(w);
	} else if (!strcmp(code, "not_found") && w->cancel_sent) {
		/* The cancel crossed the run's end: nothing to say. */
	} else if (!strcmp(code, "not_found")) {
		/* The only other not_found: the session was destroyed (a close follows). */
		w->gone = true;
		snprintf(w->error, sizeof(w->error), "%s: %s", code, message);
		return -1;
	} else {
		note(w, "%s: %s", code, message);
	}
	return 0;
}

/* {"type": "events.truncated", "after", "first_seq"}: the log no longer has them all. */
static int take_truncated(struct ctl_watch *w, const json_t *msg)
{
	json_int_t first = json_integer_value(json_object_get(msg, "first_seq"));

	if (w->events.json)
		return print(w, msg);
	note(w,
	     "the session's log no longer holds events %" JSON_INTEGER_FORMAT
	     " to %" JSON_INTEGER_FORMAT "; printing from %" JSON_INTEGER_FORMAT,
	     json_integer_value(json_object_get(msg, "after")) + 1, first - 1, first);
	return 0;
}

int ctl_watch_receive(struct ctl_watch *w, const char *text, size_t len, json_t **send)
{
	json_t *msg = json_loadb(text, len, 0, NULL);
	const char *type = field(msg, "type");
	int rc = 0;

	*send = NULL;
	if (!json_is_object(msg))
		rc = 0; /* not ours to judge: the daemon speaks JSON objects */
	else if (!strcmp(type, "error"))
		rc = take_error(w, msg);
	else if (!strcmp(type, "events.truncated"))
		rc = take_truncated(w, msg);
	else if (!json_is_integer(json_object_get(msg, "seq")))
		rc = 0; /* a pong, or a message of a later protocol */
	else
		rc = take_event(w, msg, send);
	json_decref(msg);
	return rc;
}

void ctl_watch_connected(struct ctl_watch *w, json_t *send, int64_t last_seq)
{
	w->connections++;
	if (w->run_state == CTL_WATCH_SENT) {
		note(w,
		     "%s: the connection dropped before the daemon confirmed the run; it is not "
		     "sent again (if the daemon has it, its events show here)",
		     w->ref);
		our_run_over(w);
	}
	w->target = last_seq;
	w->replaying = true;
	check_caught_up(w);
	json_array_append_new(
	    send, json_pack("{s:s, s:I}", "type", "resume", "after", (json_int_t)w->last_seq));
}

bool ctl_watch_ready(const struct ctl_watch *w)
{
	return !w->replaying && w->run_state == CTL_WATCH_IDLE;
}

json_t *ctl_watch_run(struct ctl_watch *w, json_t *input, const char *ref)
{
	w->run_state = CTL_WATCH_SENT;
	w->run[0] = '\0';
	snprintf(w->ref, sizeof(w->ref), "%s", ref);
	return json_pack("{s:s, s:O, s:s}", "type", "run", "input", input, "ref", w->ref);
}

json_t *ctl_watch_interrupt(struct ctl_watch *w, bool *detach)
{
	*detach = false;
	if (w->run_state == CTL_WATCH_RUNNING && !w->cancel_sent) {
		w->cancel_sent = true;
		note(w, "cancelling run %s (Ctrl-C again to detach)", w->run);
		return cancel_message(w->run);
	}
	if (w->run_state == CTL_WATCH_SENT && !w->cancel_wanted) {
		w->cancel_wanted = true;
		note(w, "%s: cancelling the run once it starts (Ctrl-C again to detach)", w->ref);
		return NULL;
	}
	*detach = true;
	return NULL;
}

int ctl_watch_run_result(struct ctl_watch *w, const json_t *run)
{
	const char *status = field(run, "status"), *id = field(run, "id");
	char type[32];
	json_t *event;
	int rc;

	w->check_run = false;
	if (w->run_state != CTL_WATCH_RUNNING || strcmp(id, w->run) ||
	    (strcmp(status, "completed") && strcmp(status, "failed") &&
	     strcmp(status, "cancelled")))
		return 0;
	snprintf(type, sizeof(type), "run.%s", status);
	event = json_pack("{s:s, s:s, s:O?}", "type", type, "run", id, "time",
	                  json_object_get(run, "finished_at"));
	if (json_object_get(run, "output"))
		json_object_set(event, "output", json_object_get(run, "output"));
	if (json_object_get(run, "error"))
		json_object_set(event, "error", json_object_get(run, "error"));
	rc = print(w, event);
	json_decref(event);
	snprintf(w->ended_run, sizeof(w->ended_run), "%s", id);
	our_run_over(w);
	return rc;
}
