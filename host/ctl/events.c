/* events.c: agentctl's printing of a run's streamed events (see events.h). */
#include "events.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

void ctl_events_init(struct ctl_events *ev, FILE *out, bool json, bool clean)
{
	memset(ev, 0, sizeof(*ev));
	ev->out = out;
	ev->json = json;
	ev->clean = clean;
}

/* Whether text[i] starts a control character: C0 but newline and tab, DEL, or C1 in its
 * UTF-8 form (U+0080..U+009F, which some terminals obey like ESC). Returns its length. */
static size_t control_at(const char *text, size_t len, size_t i)
{
	unsigned char c = (unsigned char)text[i];

	if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
		return 1;
	if (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] >= 0x80 &&
	    (unsigned char)text[i + 1] <= 0x9f)
		return 2;
	return 0;
}

/* Writes text as it is, or with its control characters as '?' when ev->clean: an agent
 * must not be able to drive the operator's terminal. */
static void put_text(struct ctl_events *ev, const char *text, size_t len)
{
	size_t start = 0;

	if (!len)
		return;
	if (ev->clean) {
		for (size_t i = 0; i < len;) {
			size_t n = control_at(text, len, i);

			if (!n) {
				i++;
				continue;
			}
			fwrite(text + start, 1, i - start, ev->out);
			fputc('?', ev->out);
			i += n;
			start = i;
		}
	}
	fwrite(text + start, 1, len - start, ev->out);
	ev->mid_line = text[len - 1] != '\n';
}

void ctl_events_end_line(struct ctl_events *ev)
{
	if (ev->mid_line)
		fputc('\n', ev->out);
	ev->mid_line = false;
	fflush(ev->out);
}

/* A value on a line of its own: a string as it is, anything else as compact JSON. */
static void put_line(struct ctl_events *ev, const json_t *value, bool raw_string)
{
	char *text;

	ctl_events_end_line(ev);
	if (raw_string && json_is_string(value)) {
		put_text(ev, json_string_value(value), json_string_length(value));
		ctl_events_end_line(ev);
		if (!json_string_length(value))
			fputc('\n', ev->out);
		return;
	}
	text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (!text)
		abort();
	put_text(ev, text, strlen(text));
	fputc('\n', ev->out);
	ev->mid_line = false;
	free(text);
}

/* The data of a run.output: a string joins the text streamed so far. */
static void put_output(struct ctl_events *ev, const json_t *data)
{
	if (json_is_string(data))
		put_text(ev, json_string_value(data), json_string_length(data));
	else if (data)
		put_line(ev, data, false);
}

/* "run failed: CODE: MESSAGE" from the event's error, in one line. */
static void set_error(struct ctl_events *ev, const char *verb, const json_t *error)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *message = json_string_value(json_object_get(error, "message"));
	char line[CTL_EVENTS_ERROR_MAX];
	int n;

	n = snprintf(line, sizeof(line), "run %s: %s", verb, code ? code : "unknown");
	if (message && n > 0 && (size_t)n + 2 < sizeof(line)) {
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": ");
		ctl_format_one_line(message, strlen(message), line + n, sizeof(line) - (size_t)n);
	}
	ctl_format_one_line(line, strlen(line), ev->error, sizeof(ev->error));
}

/* The human form of one event; returns 1 when it ended the run. */
static int print_event(struct ctl_events *ev, const char *type, const json_t *event)
{
	if (!strcmp(type, "run.started")) {
		char id[sizeof(ev->run) + 16];

		snprintf(id, sizeof(id), "run.started %s", ev->run[0] ? ev->run : "-");
		ctl_events_end_line(ev);
		put_text(ev, id, strlen(id));
		ctl_events_end_line(ev);
	} else if (!strcmp(type, "run.output")) {
		put_output(ev, json_object_get(event, "data"));
	} else if (!strcmp(type, "run.completed")) {
		if (json_object_get(event, "output"))
			put_line(ev, json_object_get(event, "output"), true);
		return 1;
	} else if (!strcmp(type, "run.failed") || !strcmp(type, "run.cancelled")) {
		return 1;
	}
	return 0;
}

static enum ctl_run_end end_of(const char *type)
{
	if (!strcmp(type, "run.completed"))
		return CTL_RUN_COMPLETED;
	if (!strcmp(type, "run.failed"))
		return CTL_RUN_FAILED;
	if (!strcmp(type, "run.cancelled"))
		return CTL_RUN_CANCELLED;
	return CTL_RUN_GOING;
}

int ctl_events_add(struct ctl_events *ev, const char *type, const char *data, size_t len)
{
	json_t *event = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	const char *t = json_string_value(json_object_get(event, "type"));
	const char *run = json_string_value(json_object_get(event, "run"));
	int rc;

	if (!json_is_object(event)) {
		snprintf(ev->error, sizeof(ev->error),
		         "the daemon sent a %s event whose data is not a JSON object",
		         type ? type : "nameless");
		json_decref(event);
		return -1;
	}
	t = t ? t : type ? type : "";
	if (run && (!ev->run[0] || !strcmp(t, "run.started")))
		ctl_format_one_line(run, strlen(run), ev->run, sizeof(ev->run));
	ev->end = end_of(t);
	if (ev->end == CTL_RUN_FAILED || ev->end == CTL_RUN_CANCELLED)
		set_error(ev, ev->end == CTL_RUN_FAILED ? "failed" : "was cancelled",
		          json_object_get(event, "error"));
	if (ev->json) {
		put_line(ev, event, false);
		rc = ev->end != CTL_RUN_GOING;
	} else {
		rc = print_event(ev, t, event);
	}
	json_decref(event);
	/* A closed pipe (agentctl invoke ... | head -1): no one reads on, so stop the call. */
	if (fflush(ev->out) || ferror(ev->out)) {
		snprintf(ev->error, sizeof(ev->error), "cannot write the output: %s",
		         strerror(errno));
		return -1;
	}
	return rc;
}

void ctl_events_print_value(struct ctl_events *ev, const json_t *value)
{
	put_line(ev, value, true);
	fflush(ev->out);
}
