/* ctl_sse_test.c: agentctl's incremental text/event-stream parser (host/ctl/sse.c). Every
 * stream is fed whole, byte by byte, and cut in two at every offset: the events must come
 * out the same each time, since the network may split a stream anywhere. */
#include <stdlib.h>

#include "check.h"
#include "sse.h"

/* What the callback saw: "type|id|data" per event, each followed by '\n'. */
struct seen {
	char text[4096];
	size_t len;
	int stop_after; /* return non-zero from this event on (1-based); 0: never */
	int count;
};

static int on_event(const struct ctl_sse_event *ev, void *user)
{
	struct seen *s = user;
	int n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s|%s|%s\n", ev->type, ev->id,
	                 ev->data);

	CHECK_INT(ev->data_len, strlen(ev->data));
	if (n > 0)
		s->len += (size_t)n;
	s->count++;
	return s->stop_after && s->count >= s->stop_after ? 7 : 0;
}

/* Feeds stream in pieces cut at the offsets of cuts (ascending, ended by 0 or len). */
static int feed_cut(const char *stream, size_t len, size_t cut, struct seen *s, size_t max)
{
	struct ctl_sse_parser *p = ctl_sse_new(on_event, s, max);
	int rc = ctl_sse_feed(p, stream, cut);

	if (!rc)
		rc = ctl_sse_feed(p, stream + cut, len - cut);
	ctl_sse_free(p);
	return rc;
}

static int feed_bytes(const char *stream, size_t len, struct seen *s)
{
	struct ctl_sse_parser *p = ctl_sse_new(on_event, s, 0);
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++)
		rc = ctl_sse_feed(p, stream + i, 1);
	ctl_sse_free(p);
	return rc;
}

/* Checks that stream gives want however it is cut. */
static void parses_to(const char *stream, const char *want)
{
	size_t len = strlen(stream);
	struct seen s;

	memset(&s, 0, sizeof(s));
	CHECK_INT(feed_bytes(stream, len, &s), 0);
	CHECK_STR(s.text, want);
	for (size_t cut = 0; cut <= len; cut++) {
		memset(&s, 0, sizeof(s));
		CHECK_INT(feed_cut(stream, len, cut, &s, 0), 0);
		if (strcmp(s.text, want)) {
			fprintf(stderr, "cut at %zu of %s\n", cut, stream);
			CHECK_STR(s.text, want);
		}
	}
}

static void test_daemon_events(void)
{
	/* As host/runs.c writes them. */
	parses_to("id: 1\nevent: run.started\ndata: {\"seq\":1}\n\n"
	          "id: 2\nevent: run.output\ndata: {\"seq\":2,\"data\":\"a b\"}\n\n",
	          "run.started|1|{\"seq\":1}\n"
	          "run.output|2|{\"seq\":2,\"data\":\"a b\"}\n");
}

static void test_line_ends(void)
{
	const char *want = "x|7|one\ny|7|two\n";

	parses_to("id: 7\r\nevent: x\r\ndata: one\r\n\r\nevent: y\r\ndata: two\r\n\r\n", want);
	parses_to("id: 7\revent: x\rdata: one\r\revent: y\rdata: two\r\r", want);
	parses_to("id: 7\nevent: x\r\ndata: one\r\revent: y\ndata: two\n\r\n", want);
	/* "\r\n" counts once, "\n\r" twice (a line end, then another). */
	parses_to("data: a\r\n\r\n", "message||a\n");
	parses_to("data: a\n\rdata: b\n\n", "message||a\nmessage||b\n");
}

static void test_data_lines(void)
{
	/* Several data lines join with '\n'; the last '\n' is dropped. */
	parses_to("data: {\"a\":\ndata:  1}\n\n", "message||{\"a\":\n 1}\n");
	/* One space after the colon goes, no more; no colon: the value is empty. */
	parses_to("data:x\ndata:  y\ndata\n\n", "message||x\n y\n\n");
	/* "data:" alone is an event with empty data; an event without data is none. */
	parses_to("data:\n\n", "message||\n");
	parses_to("event: lonely\n\ndata: a\n\n", "message||a\n");
	parses_to("\n\n\n", "");
}

static void test_comments_and_other_fields(void)
{
	parses_to(": keep-alive\n\n:\ndata: a\n: between\ndata: b\n\n", "message||a\nb\n");
	parses_to("retry: 1000\nfoo: bar\nDATA: no\ndata: yes\n\n", "message||yes\n");
	/* The id stays until another one; an empty id clears it. */
	parses_to("id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
	          "message|5|a\nmessage|5|b\nmessage||c\n");
	/* The field name is everything before the first colon. */
	parses_to("data: a:b: c\n\n", "message||a:b: c\n");
}

static void test_bom_and_unended(void)
{
	parses_to("\xef\xbb\xbf"
	          "data: a\n\n",
	          "message||a\n");
	/* Only at the very start. */
	parses_to("data: a\n\n\xef\xbb\xbf"
	          "data: b\n\n",
	          "message||a\n");
}

static void test_pending(void)
{
	struct seen s;
	struct ctl_sse_parser *p;

	memset(&s, 0, sizeof(s));
	p = ctl_sse_new(on_event, &s, 0);
	CHECK(!ctl_sse_pending(p));
	CHECK_INT(ctl_sse_feed(p, "data: a\n", 8), 0);
	CHECK(ctl_sse_pending(p));
	CHECK_INT(ctl_sse_events(p), 0);
	CHECK_INT(ctl_sse_feed(p, "\n: c\n", 5), 0);
	CHECK(!ctl_sse_pending(p));
	CHECK_INT(ctl_sse_events(p), 1);
	CHECK_INT(ctl_sse_feed(p, "da", 2), 0);
	CHECK(ctl_sse_pending(p));
	ctl_sse_free(p);
	ctl_sse_free(NULL);
}

static void test_stop_and_limit(void)
{
	const char *stream = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
	struct seen s;
	struct ctl_sse_parser *p;

	/* The callback's non-zero answer stops everything, now and later. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	p = ctl_sse_new(on_event, &s, 0);
	CHECK_INT(ctl_sse_feed(p, stream, strlen(stream)), 7);
	CHECK_STR(s.text, "message||1\nmessage||2\n");
	CHECK_INT(ctl_sse_feed(p, stream, strlen(stream)), 7);
	CHECK_INT(s.count, 2);
	ctl_sse_free(p);

	/* An event over the limit, whether one long line or many data lines, is -1. */
	memset(&s, 0, sizeof(s));
	stream = "data: 0123456789\n\n";
	CHECK_INT(feed_cut(stream, strlen(stream), 9, &s, 12), -1);
	CHECK_INT(s.count, 0);
	memset(&s, 0, sizeof(s));
	stream = "data: 01\ndata: 23\ndata: 45\n\n";
	CHECK_INT(feed_cut(stream, strlen(stream), 3, &s, 12), -1);
	CHECK_INT(s.count, 0);
	/* The limit is per event, not per stream. */
	memset(&s, 0, sizeof(s));
	stream = "data: 0123\n\ndata: 4567\n\n";
	CHECK_INT(feed_cut(stream, strlen(stream), 3, &s, 12), 0);
	CHECK_INT(s.count, 2);
}

int main(void)
{
	test_daemon_events();
	test_line_ends();
	test_data_lines();
	test_comments_and_other_fields();
	test_bom_and_unended();
	test_pending();
	test_stop_and_limit();
	return check_summary();
}
