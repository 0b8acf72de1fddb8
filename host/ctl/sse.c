/* sse.c: the incremental text/event-stream parser of agentctl (see sse.h). Bytes go into
 * the current line until a line end; each whole line is a field of the event being built;
 * an empty line hands the event to the callback. A "\r" ends a line at once, and a "\n"
 * right after it (maybe in the next piece) is then skipped. */
#include "sse.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES (64u << 20)

/* A growing byte string, always NUL-terminated once it holds anything. */
struct buf {
	char *data;
	size_t len, cap;
};

struct ctl_sse_parser {
	ctl_sse_event_fn fn;
	void *user;
	size_t max;
	struct buf line; /* the line being read */
	struct buf data; /* the event's data lines, each followed by '\n' */
	struct buf type; /* its "event:" */
	struct buf id;   /* the last "id:" of the stream */
	bool after_cr;   /* the last byte was '\r': a '\n' now belongs to it */
	bool first_line; /* the next line is the stream's first (it may start with a BOM) */
	bool fields;     /* a field of the current event came */
	int stopped;     /* non-zero: the callback stopped us, or -1 for too large */
	size_t events;
};

static void buf_set(struct buf *b, const char *s, size_t len)
{
	if (len + 1 > b->cap) {
		b->cap = (len + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
	memcpy(b->data, s, len);
	b->len = len;
	b->data[len] = '\0';
}

static void buf_add(struct buf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* The text of b ("" when it never held anything). */
static const char *buf_text(const struct buf *b)
{
	return b->data ? b->data : "";
}

struct ctl_sse_parser *ctl_sse_new(ctl_sse_event_fn fn, void *user, size_t max_bytes)
{
	struct ctl_sse_parser *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->fn = fn;
	p->user = user;
	p->max = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
	p->first_line = true;
	return p;
}

/* An empty line: the event is complete. One without data is dropped (the spec's rule). */
static int dispatch(struct ctl_sse_parser *p)
{
	struct ctl_sse_event ev;
	int rc;

	p->fields = false;
	if (!p->data.len) {
		p->type.len = 0;
		return 0;
	}
	p->data.data[--p->data.len] = '\0'; /* the '\n' after the last data line */
	ev.id = buf_text(&p->id);
	ev.type = p->type.len ? p->type.data : "message";
	ev.data = p->data.data;
	ev.data_len = p->data.len;
	p->events++;
	rc = p->fn(&ev, p->user);
	p->data.len = 0;
	p->type.len = 0;
	return rc;
}

static bool field_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && !memcmp(name, want, len);
}

/* One whole line (without its end). */
static int process_line(struct ctl_sse_parser *p)
{
	const char *line = buf_text(&p->line), *colon, *value;
	size_t len = p->line.len, name_len, value_len;

	if (p->first_line) {
		p->first_line = false;
		if (len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
			line += 3;
			len -= 3;
		}
	}
	if (!len)
		return dispatch(p);
	if (line[0] == ':')
		return 0;
	colon = memchr(line, ':', len);
	name_len = colon ? (size_t)(colon - line) : len;
	value = colon ? colon + 1 : line + len;
	value_len = len - (size_t)(value - line);
	if (value_len && *value == ' ') {
		value++;
		value_len--;
	}
	p->fields = true;
	if (field_is(line, name_len, "event")) {
		buf_set(&p->type, value, value_len);
	} else if (field_is(line, name_len, "data")) {
		buf_add(&p->data, value, value_len);
		buf_add(&p->data, "\n", 1);
	} else if (field_is(line, name_len, "id")) {
		/* The spec ignores an id with a NUL in it. */
		if (!memchr(value, '\0', value_len))
			buf_set(&p->id, value, value_len);
	}
	return 0;
}

/* Ends the current line and processes it. */
static int end_line(struct ctl_sse_parser *p)
{
	int rc = process_line(p);

	p->line.len = 0;
	return rc;
}

/* How many of the len bytes at data come before a line end. */
static size_t text_run(const char *data, size_t len)
{
	size_t n = 0;

	while (n < len && data[n] != '\r' && data[n] != '\n')
		n++;
	return n;
}

int ctl_sse_feed(struct ctl_sse_parser *p, const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && !p->stopped) {
		size_t run;

		if (p->after_cr) {
			p->after_cr = false;
			if (data[i] == '\n') {
				i++;
				continue;
			}
		}
		if (data[i] == '\r' || data[i] == '\n') {
			p->after_cr = data[i] == '\r';
			i++;
			p->stopped = end_line(p);
			continue;
		}
		/* The bytes up to the next line end join the line in one go. */
		run = text_run(data + i, len - i);
		if (p->line.len + run + p->data.len > p->max) {
			p->stopped = -1;
			break;
		}
		buf_add(&p->line, data + i, run);
		i += run;
	}
	return p->stopped;
}

size_t ctl_sse_events(const struct ctl_sse_parser *p)
{
	return p->events;
}

int ctl_sse_pending(const struct ctl_sse_parser *p)
{
	return p->line.len || p->fields;
}

void ctl_sse_free(struct ctl_sse_parser *p)
{
	if (!p)
		return;
	free(p->line.data);
	free(p->data.data);
	free(p->type.data);
	free(p->id.data);
	free(p);
}
