/* ctl_events_test.c: how agentctl prints a run's streamed events (host/ctl/events.c): the
 * human form, the NDJSON form of --json, the end of the run and its one-line error, and
 * control characters from the agent kept off a terminal. */
#include <stdlib.h>

#include "check.h"
#include "events.h"

/* A printer into memory. */
struct sink {
	char *text;
	size_t len;
	FILE *f;
	struct ctl_events ev;
};

static void sink_open(struct sink *s, bool json, bool clean)
{
	memset(s, 0, sizeof(*s));
	s->f = open_memstream(&s->text, &s->len);
	ctl_events_init(&s->ev, s->f, json, clean);
}

static int add(struct sink *s, const char *type, const char *data)
{
	return ctl_events_add(&s->ev, type, data, strlen(data));
}

/* Closes the sink and checks what was printed. */
static void printed(struct sink *s, const char *want)
{
	fclose(s->f);
	CHECK_STR(s->text, want);
	free(s->text);
}

#define STARTED "{\"seq\":1,\"type\":\"run.started\",\"run\":\"r_1\"}"
#define WORD(n, w)                                                                                 \
	"{\"seq\":" #n ",\"type\":\"run.output\",\"run\":\"r_1\",\"data\":{\"word\":\"" w "\"}}"
#define COMPLETED(n, out)                                                                          \
	"{\"seq\":" #n ",\"type\":\"run.completed\",\"run\":\"r_1\",\"output\":" out "}"

static void test_echo_human(void)
{
	struct sink s;

	sink_open(&s, false, false);
	CHECK_INT(add(&s, "run.started", STARTED), 0);
	CHECK_INT(add(&s, "run.output", WORD(2, "hello")), 0);
	CHECK_INT(add(&s, "run.output", WORD(3, "big")), 0);
	CHECK_INT(s.ev.end, CTL_RUN_GOING);
	CHECK_INT(add(&s, "run.completed", COMPLETED(4, "\"hello big\"")), 1);
	CHECK_INT(s.ev.end, CTL_RUN_COMPLETED);
	CHECK_STR(s.ev.run, "r_1");
	CHECK_STR(s.ev.error, "");
	printed(&s, "run.started r_1\n"
	            "{\"word\":\"hello\"}\n"
	            "{\"word\":\"big\"}\n"
	            "hello big\n");
}

static void test_text_streams_join(void)
{
	struct sink s;

	/* Strings are printed as they are: streamed pieces of text join up, and the final
	 * output starts on a line of its own. */
	sink_open(&s, false, false);
	add(&s, "run.started", STARTED);
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":\"Hel\"}");
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":\"lo, \"}");
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":\"world\"}");
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":[1, 2]}");
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":\"line\\n\"}");
	CHECK_INT(add(&s, "run.completed", "{\"type\":\"run.completed\",\"output\":{\"n\":3}}"), 1);
	printed(&s, "run.started r_1\n"
	            "Hello, world\n"
	            "[1,2]\n"
	            "line\n"
	            "{\"n\":3}\n");

	/* A string output ending in a newline gets no other; null and "" are shown. */
	sink_open(&s, false, false);
	add(&s, "run.completed", "{\"type\":\"run.completed\",\"output\":\"done\\n\"}");
	printed(&s, "done\n");
	sink_open(&s, false, false);
	add(&s, "run.completed", "{\"type\":\"run.completed\",\"output\":null}");
	printed(&s, "null\n");
	sink_open(&s, false, false);
	add(&s, "run.completed", "{\"type\":\"run.completed\",\"output\":\"\"}");
	printed(&s, "\n");
	/* Text left open is ended before an error line goes to stderr. */
	sink_open(&s, false, false);
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":\"half\"}");
	ctl_events_end_line(&s.ev);
	ctl_events_end_line(&s.ev);
	printed(&s, "half\n");
}

static void test_failed_and_cancelled(void)
{
	struct sink s;

	sink_open(&s, false, false);
	add(&s, "run.started", STARTED);
	add(&s, "run.output", "{\"type\":\"run.output\",\"data\":{\"n\":1}}");
	CHECK_INT(add(&s, "run.failed",
	              "{\"seq\":3,\"type\":\"run.failed\",\"run\":\"r_1\",\"error\":{\"code\":"
	              "\"timeout\",\"message\":\"the run took longer than 1 s\"}}"),
	          1);
	CHECK_INT(s.ev.end, CTL_RUN_FAILED);
	CHECK_STR(s.ev.error, "run failed: timeout: the run took longer than 1 s");
	printed(&s, "run.started r_1\n{\"n\":1}\n");

	/* The message stays one line; a missing code or message does not break it. */
	sink_open(&s, false, false);
	CHECK_INT(add(&s, "run.cancelled",
	              "{\"type\":\"run.cancelled\",\"error\":{\"code\":\"cancelled\","
	              "\"message\":\"two\\nlines\\u001b[2J\"}}"),
	          1);
	CHECK_INT(s.ev.end, CTL_RUN_CANCELLED);
	CHECK_STR(s.ev.error, "run was cancelled: cancelled: two\\nlines\\x1b[2J");
	printed(&s, "");
	sink_open(&s, false, false);
	CHECK_INT(add(&s, "run.failed", "{\"type\":\"run.failed\"}"), 1);
	CHECK_STR(s.ev.error, "run failed: unknown");
	printed(&s, "");
}

static void test_json_lines(void)
{
	struct sink s;

	/* Every event, compact, one per line, keys in the daemon's order, even ones the
	 * human form leaves out; data spread over lines comes out on one. */
	sink_open(&s, true, false);
	CHECK_INT(add(&s, "run.started", STARTED), 0);
	CHECK_INT(add(&s, "session.hibernated", "{\"seq\": 2,\n \"type\": \"session.hibernated\"}"),
	          0);
	CHECK_INT(add(&s, "run.output", WORD(3, "a")), 0);
	CHECK_INT(add(&s, "run.failed",
	              "{\"seq\":4,\"type\":\"run.failed\",\"error\":{\"code\":\"oom\",\"message\":"
	              "\"m\"}}"),
	          1);
	CHECK_STR(s.ev.error, "run failed: oom: m");
	printed(
	    &s,
	    "{\"seq\":1,\"type\":\"run.started\",\"run\":\"r_1\"}\n"
	    "{\"seq\":2,\"type\":\"session.hibernated\"}\n"
	    "{\"seq\":3,\"type\":\"run.output\",\"run\":\"r_1\",\"data\":{\"word\":\"a\"}}\n"
	    "{\"seq\":4,\"type\":\"run.failed\",\"error\":{\"code\":\"oom\",\"message\":\"m\"}}\n");
}

static void test_type_and_bad_events(void)
{
	struct sink s;

	/* The JSON's own type wins over the SSE event name; without one, the name counts. */
	sink_open(&s, false, false);
	CHECK_INT(add(&s, "message", "{\"type\":\"run.completed\",\"output\":1}"), 1);
	printed(&s, "1\n");
	sink_open(&s, false, false);
	CHECK_INT(add(&s, "run.completed", "{\"output\":2}"), 1);
	printed(&s, "2\n");
	/* Unknown types print nothing for people. */
	sink_open(&s, false, false);
	CHECK_INT(add(&s, "session.resumed", "{\"type\":\"session.resumed\"}"), 0);
	printed(&s, "");

	sink_open(&s, false, false);
	CHECK_INT(add(&s, "run.output", "not json"), -1);
	CHECK_STR(s.ev.error, "the daemon sent a run.output event whose data is not a JSON object");
	CHECK_INT(add(&s, "run.output", "[1]"), -1);
	CHECK_INT(s.ev.end, CTL_RUN_GOING);
	printed(&s, "");
}

static void test_control_characters(void)
{
	const char *hostile = "{\"type\":\"run.output\",\"data\":\"a\\u001b[31mb\\r\\tc\\n"
	                      "\\u007f\\u009bd\\u0000e\"}";
	struct sink s;

	/* On a terminal the agent's control characters show as '?' (but newline and tab). */
	sink_open(&s, false, true);
	add(&s, "run.output", hostile);
	add(&s, "run.completed", "{\"type\":\"run.completed\",\"output\":{\"k\":\"\\u009b\"}}");
	printed(&s, "a?[31mb?\tc\n??d?e\n{\"k\":\"?\"}\n");

	/* Into a pipe, as they are. */
	sink_open(&s, false, false);
	add(&s, "run.output", hostile);
	fclose(s.f);
	CHECK_INT(s.len, 17);
	CHECK(!memcmp(s.text,
	              "a\x1b[31mb\r\tc\n\x7f\xc2\x9b"
	              "d\0e",
	              17));
	free(s.text);
}

/* A session's stream holds one run after another: each run.started names its own run. */
static void test_runs_one_after_another(void)
{
	struct sink s;

	sink_open(&s, false, false);
	CHECK_INT(add(&s, NULL, STARTED), 0);
	CHECK_INT(add(&s, NULL, COMPLETED(2, "1")), 1);
	CHECK_INT(add(&s, NULL, "{\"seq\":3,\"type\":\"run.started\",\"run\":\"r_2\"}"), 0);
	CHECK_STR(s.ev.run, "r_2");
	CHECK_INT(s.ev.end, CTL_RUN_GOING);
	CHECK_INT(add(&s, NULL,
	              "{\"seq\":4,\"type\":\"run.failed\",\"run\":\"r_2\",\"error\":{\"code\":"
	              "\"killed\",\"message\":\"gone\"}}"),
	          1);
	CHECK_STR(s.ev.error, "run failed: killed: gone");
	printed(&s, "run.started r_1\n1\nrun.started r_2\n");
}

/* A value alone (agentctl state ID KEY): as an output is printed. */
static void test_print_value(void)
{
	struct sink s;
	json_t *v;

	sink_open(&s, false, true);
	v = json_string("two\nlines\x1b");
	ctl_events_print_value(&s.ev, v);
	json_decref(v);
	v = json_pack("{s:[i,i]}", "a", 1, 2);
	ctl_events_print_value(&s.ev, v);
	json_decref(v);
	ctl_events_print_value(&s.ev, json_null());
	printed(&s, "two\nlines?\n{\"a\":[1,2]}\nnull\n");
}

int main(void)
{
	test_echo_human();
	test_text_streams_join();
	test_failed_and_cancelled();
	test_json_lines();
	test_type_and_bad_events();
	test_control_characters();
	test_runs_one_after_another();
	test_print_value();
	return check_summary();
}
