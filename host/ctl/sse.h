/* sse.h: an incremental parser of text/event-stream bodies (the WHATWG "server-sent events"
 * format), for the streamed runs of `agentctl invoke` (and later `run`). It is fed the body
 * in whatever pieces the network gives and calls back once per complete event, so a field
 * split across two reads, a "\r\n" cut between its two bytes, or several events in one read
 * all come out the same. Pure: no I/O (tests/unit/host/ctl/ctl_sse_test.c). */
#ifndef AGENTHOST_CTL_SSE_H
#define AGENTHOST_CTL_SSE_H

#include <stddef.h>

/* One event. Every string is NUL-terminated and borrowed for the callback only. */
struct ctl_sse_event {
	const char *id;   /* the last "id:" seen so far in the stream ("" for none) */
	const char *type; /* "event:", or "message" when the event had none */
	const char *data; /* the "data:" lines joined by '\n' (no trailing '\n') */
	size_t data_len;  /* strlen(data), unless data holds a NUL */
};

/* Called for each event, in order. Returns 0 to go on; anything else stops the parser,
 * and ctl_sse_feed returns that value (now and on every later call). */
typedef int (*ctl_sse_event_fn)(const struct ctl_sse_event *event, void *user);

struct ctl_sse_parser;

/* A parser that hands events to fn. An event (or a line) longer than max_bytes is an
 * error (0: 64 MiB). Never NULL: allocation failure aborts. */
struct ctl_sse_parser *ctl_sse_new(ctl_sse_event_fn fn, void *user, size_t max_bytes);

/* Parses the next len bytes of the stream. The rules are those of the WHATWG spec: lines
 * end with "\r\n", "\n" or "\r"; an empty line ends an event; a line starting with ':' is
 * a comment; "field: value" loses one space after the colon; "data" lines accumulate;
 * an event without data is not dispatched; "retry" and unknown fields are ignored; a
 * UTF-8 byte order mark at the very start is skipped. Returns 0, the callback's non-zero
 * value, or -1 when an event grew past max_bytes. */
int ctl_sse_feed(struct ctl_sse_parser *p, const char *data, size_t len);

/* How many events were dispatched so far. */
size_t ctl_sse_events(const struct ctl_sse_parser *p);

/* Whether the parser holds part of an event (a field or a line not yet ended by an empty
 * line): a stream that ends now ended in the middle of an event, which the spec drops. */
int ctl_sse_pending(const struct ctl_sse_parser *p);

/* Frees p. NULL is fine. */
void ctl_sse_free(struct ctl_sse_parser *p);

#endif
