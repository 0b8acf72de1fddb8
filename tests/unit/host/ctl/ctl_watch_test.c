/* ctl_watch_test.c: the bookkeeping of `agentctl attach` (host/ctl/watch.c): resume after
 * the last seq printed on every connection, the replay over once the session's last event
 * at connection time is printed, duplicates dropped, one run of ours at a time followed by
 * its ref then its ID, refused runs, Ctrl-C (cancel, then detach), a reconnect while our
 * run was sent or running, the result of a run a daemon restart failed, and a destroyed
 * session. */
#include <stdlib.h>

#include "check.h"
#include "watch.h"

/* A watch printing into memory. */
struct sink {
	char *out, *err;
	size_t out_len, err_len;
	FILE *fout, *ferr;
	struct ctl_watch w;
};

static void sink_open(struct sink *s, bool json, int64_t after)
{
	memset(s, 0, sizeof(*s));
	s->fout = open_memstream(&s->out, &s->out_len);
	s->ferr = open_memstream(&s->err, &s->err_len);
	ctl_watch_init(&s->w, s->fout, s->ferr, json, false, after);
}

/* What was printed on out and err since the last call, then forgotten. */
static void printed(struct sink *s, const char *out, const char *err)
{
	fflush(s->fout);
	fflush(s->ferr);
	CHECK_STR(s->out, out);
	CHECK_STR(s->err, err);
	fclose(s->fout);
	fclose(s->ferr);
	free(s->out);
	free(s->err);
	s->fout = open_memstream(&s->out, &s->out_len);
	s->ferr = open_memstream(&s->err, &s->err_len);
	s->w.events.out = s->fout;
	s->w.err = s->ferr;
}

static void sink_close(struct sink *s)
{
	fclose(s->fout);
	fclose(s->ferr);
	free(s->out);
	free(s->err);
}

/* Feeds one message; returns what ctl_watch_receive returned, the message to send (as
 * compact JSON) in sent, or "" for none. */
static char sent[512];

static int feed(struct sink *s, const char *text)
{
	json_t *send = NULL;
	int rc = ctl_watch_receive(&s->w, text, strlen(text), &send);
	char *dump = send ? json_dumps(send, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	snprintf(sent, sizeof(sent), "%s", dump ? dump : "");
	free(dump);
	json_decref(send);
	return rc;
}

/* The compact JSON of a message made by the watch (freed). */
static const char *text_of(json_t *msg)
{
	static char buf[512];
	char *dump = msg ? json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	snprintf(buf, sizeof(buf), "%s", dump ? dump : "(null)");
	free(dump);
	json_decref(msg);
	return buf;
}

/* The messages sent on a connection to a session whose last seq is last_seq. */
static const char *connect_msgs(struct sink *s, int64_t last_seq)
{
	json_t *send = json_array();

	ctl_watch_connected(&s->w, send, last_seq);
	return text_of(send);
}

#define STARTED(seq, run) "{\"seq\":" #seq ",\"type\":\"run.started\",\"run\":\"" run "\"}"
#define STARTED_REF(seq, run, ref)                                                                 \
	"{\"seq\":" #seq ",\"type\":\"run.started\",\"run\":\"" run "\",\"ref\":\"" ref "\"}"
#define OUTPUT(seq, run, data)                                                                     \
	"{\"seq\":" #seq ",\"type\":\"run.output\",\"run\":\"" run "\",\"data\":" data "}"
#define DONE(seq, run, out)                                                                        \
	"{\"seq\":" #seq ",\"type\":\"run.completed\",\"run\":\"" run "\",\"output\":" out "}"
#define CANCELLED(seq, run)                                                                        \
	"{\"seq\":" #seq ",\"type\":\"run.cancelled\",\"run\":\"" run                              \
	"\",\"error\":{\"code\":\"cancelled\",\"message\":\"by the client\"}}"
#define PONG "{\"type\":\"pong\"}"
#define RESUME(n) "[{\"type\":\"resume\",\"after\":" #n "}]"

static void test_replay_then_live(void)
{
	struct sink s;

	sink_open(&s, false, 0);
	CHECK(ctl_watch_ready(&s.w)); /* nothing to catch up with before a connection */
	CHECK_STR(connect_msgs(&s, 3), RESUME(0));
	CHECK(!ctl_watch_ready(&s.w));
	/* The log from the start, in order; ready once seq 3 (the last at connection) is in. */
	CHECK_INT(feed(&s, STARTED(1, "r_1")), 0);
	CHECK_INT(feed(&s, DONE(2, "r_1", "\"a\"")), 0);
	CHECK(!ctl_watch_ready(&s.w));
	CHECK_INT(feed(&s, STARTED(3, "r_2")), 0);
	CHECK(ctl_watch_ready(&s.w));
	printed(&s, "run.started r_1\na\nrun.started r_2\n", "");
	CHECK_INT(s.w.last_seq, 3);
	/* Then live, as they come; a duplicate is dropped. */
	CHECK_INT(feed(&s, OUTPUT(4, "r_2", "\"x\"")), 0);
	CHECK_INT(feed(&s, OUTPUT(4, "r_2", "\"x\"")), 0);
	CHECK_INT(feed(&s, OUTPUT(2, "r_1", "\"old\"")), 0);
	CHECK_INT(feed(&s, DONE(5, "r_2", "\"xy\"")), 0);
	printed(&s, "x\nxy\n", "");
	/* Other messages are not events: a pong, unknown types, not JSON. */
	CHECK_INT(feed(&s, PONG), 0);
	CHECK_INT(feed(&s, "{\"type\":\"hello\"}"), 0);
	CHECK_INT(feed(&s, "not json"), 0);
	printed(&s, "", "");
	sink_close(&s);

	/* An empty session: nothing to replay. */
	sink_open(&s, false, 0);
	CHECK_STR(connect_msgs(&s, 0), RESUME(0));
	CHECK(ctl_watch_ready(&s.w));
	sink_close(&s);
}

static void test_after_and_json(void)
{
	struct sink s;

	sink_open(&s, true, 1);
	CHECK_STR(connect_msgs(&s, 2), RESUME(1));
	CHECK_INT(feed(&s, STARTED(1, "r_1")), 0); /* not after 1: dropped */
	CHECK(!ctl_watch_ready(&s.w));
	CHECK_INT(feed(&s, DONE(2, "r_1", "1")), 0);
	CHECK(ctl_watch_ready(&s.w));
	printed(&s, DONE(2, "r_1", "1") "\n", "");
	/* events.truncated is a line of its own with --json, a note without. */
	CHECK_INT(feed(&s, "{\"type\":\"events.truncated\",\"after\":2,\"first_seq\":9}"), 0);
	printed(&s, "{\"type\":\"events.truncated\",\"after\":2,\"first_seq\":9}\n", "");
	sink_close(&s);

	sink_open(&s, false, 0);
	connect_msgs(&s, 600);
	CHECK_INT(feed(&s, "{\"type\":\"events.truncated\",\"after\":0,\"first_seq\":501}"), 0);
	printed(&s, "",
	        "agentctl: the session's log no longer holds events 1 to 500; printing "
	        "from 501\n");
	sink_close(&s);
}

static void test_our_runs(void)
{
	struct sink s;
	json_t *input = json_string("a b");

	sink_open(&s, false, 0);
	connect_msgs(&s, 0);
	CHECK_STR(text_of(ctl_watch_run(&s.w, input, "line 1")),
	          "{\"type\":\"run\",\"input\":\"a b\",\"ref\":\"line 1\"}");
	CHECK_INT(s.w.run_state, CTL_WATCH_SENT);
	CHECK(!ctl_watch_ready(&s.w));
	/* Another client's run is not ours. */
	CHECK_INT(feed(&s, STARTED(1, "r_other")), 0);
	CHECK_INT(s.w.run_state, CTL_WATCH_SENT);
	CHECK_INT(feed(&s, DONE(2, "r_other", "0")), 0);
	CHECK_INT(s.w.run_state, CTL_WATCH_SENT);
	/* Ours comes with its ref, then ends by its ID. */
	CHECK_INT(feed(&s, STARTED_REF(3, "r_1", "line 1")), 0);
	CHECK_INT(s.w.run_state, CTL_WATCH_RUNNING);
	CHECK_STR(s.w.run, "r_1");
	CHECK_INT(feed(&s, OUTPUT(4, "r_1", "{\"word\":\"a\"}")), 0);
	CHECK_INT(feed(&s, DONE(5, "r_1", "\"a b\"")), 0);
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	CHECK(ctl_watch_ready(&s.w));
	printed(&s, "run.started r_other\n0\nrun.started r_1\n{\"word\":\"a\"}\na b\n", "");

	/* Refused by its ref: a note, and the next line may go. */
	json_decref(ctl_watch_run(&s.w, input, "line 2"));
	CHECK_INT(feed(&s, "{\"type\":\"error\",\"ref\":\"line 2\",\"error\":{\"code\":"
	                   "\"session_busy\",\"message\":\"4 runs are queued\"}}"),
	          0);
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	printed(&s, "",
	        "agentctl: line 2: the daemon refused the run: session_busy: 4 runs are "
	        "queued\n");
	/* A message too large to read comes back without its ref: ours all the same. */
	json_decref(ctl_watch_run(&s.w, input, "line 3"));
	CHECK_INT(feed(&s, "{\"type\":\"error\",\"error\":{\"code\":\"too_large\",\"message\":"
	                   "\"a message is at most 10 bytes\"}}"),
	          0);
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	printed(&s, "",
	        "agentctl: line 3: the daemon refused the run: too_large: a message is "
	        "at most 10 bytes\n");
	/* Any other error is said, and changes nothing. */
	CHECK_INT(feed(&s, "{\"type\":\"error\",\"error\":{\"code\":\"bad_request\",\"message\":"
	                   "\"x\"}}"),
	          0);
	printed(&s, "", "agentctl: bad_request: x\n");
	json_decref(input);
	sink_close(&s);
}

static void test_interrupts(void)
{
	struct sink s;
	json_t *input = json_null();
	bool detach;

	sink_open(&s, false, 0);
	connect_msgs(&s, 0);
	/* Nothing of ours on: Ctrl-C detaches. */
	CHECK_STR(text_of(ctl_watch_interrupt(&s.w, &detach)), "(null)");
	CHECK(detach);

	/* Our run on: cancel it; a second Ctrl-C detaches. */
	json_decref(ctl_watch_run(&s.w, input, "line 1"));
	feed(&s, STARTED_REF(1, "r_1", "line 1"));
	printed(&s, "run.started r_1\n", "");
	CHECK_STR(text_of(ctl_watch_interrupt(&s.w, &detach)),
	          "{\"type\":\"cancel\",\"run\":\"r_1\"}");
	CHECK(!detach);
	printed(&s, "", "agentctl: cancelling run r_1 (Ctrl-C again to detach)\n");
	CHECK_STR(text_of(ctl_watch_interrupt(&s.w, &detach)), "(null)");
	CHECK(detach);
	/* The cancel crossing the run's end is no error; the run ends cancelled. */
	CHECK_INT(feed(&s, "{\"type\":\"error\",\"error\":{\"code\":\"not_found\",\"message\":"
	                   "\"no queued or running run r_1\"}}"),
	          0);
	CHECK_INT(feed(&s, CANCELLED(2, "r_1")), 0);
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	printed(&s, "", "agentctl: run was cancelled: cancelled: by the client\n");

	/* Sent, not started yet: the cancel goes once its run.started tells its ID. */
	json_decref(ctl_watch_run(&s.w, input, "line 2"));
	CHECK_STR(text_of(ctl_watch_interrupt(&s.w, &detach)), "(null)");
	CHECK(!detach);
	printed(&s, "",
	        "agentctl: line 2: cancelling the run once it starts (Ctrl-C again to "
	        "detach)\n");
	CHECK_INT(feed(&s, STARTED_REF(3, "r_2", "line 2")), 0);
	CHECK_STR(sent, "{\"type\":\"cancel\",\"run\":\"r_2\"}");
	CHECK_STR(text_of(ctl_watch_interrupt(&s.w, &detach)), "(null)");
	CHECK(detach);
	printed(&s, "run.started r_2\n", "");
	json_decref(input);
	sink_close(&s);
}

static void test_reconnects(void)
{
	struct sink s;
	json_t *input = json_null(), *run;

	sink_open(&s, false, 0);
	connect_msgs(&s, 0);
	/* Dropped after our run was sent, before it was seen to start: not sent again. */
	json_decref(ctl_watch_run(&s.w, input, "line 1"));
	CHECK_STR(connect_msgs(&s, 2), RESUME(0));
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	printed(&s, "",
	        "agentctl: line 1: the connection dropped before the daemon confirmed the "
	        "run; it is not sent again (if the daemon has it, its events show here)\n");
	/* It had it: its events come in the replay, without the ref. */
	feed(&s, STARTED(1, "r_1"));
	feed(&s, DONE(2, "r_1", "null"));
	CHECK(ctl_watch_ready(&s.w));
	CHECK(!s.w.check_run);
	printed(&s, "run.started r_1\nnull\n", "");

	/* Dropped while ours ran: resume after the last seq printed; our run still on after
	 * the replay: its result is asked for. */
	json_decref(ctl_watch_run(&s.w, input, "line 2"));
	feed(&s, STARTED_REF(3, "r_2", "line 2"));
	feed(&s, OUTPUT(4, "r_2", "{\"n\":1}"));
	printed(&s, "run.started r_2\n{\"n\":1}\n", "");
	CHECK_STR(connect_msgs(&s, 5), RESUME(4));
	CHECK_INT(s.w.run_state, CTL_WATCH_RUNNING);
	CHECK(!s.w.check_run);
	feed(&s, OUTPUT(4, "r_2", "{\"n\":1}")); /* already printed */
	feed(&s, OUTPUT(5, "r_2", "{\"n\":2}"));
	CHECK(s.w.check_run);
	printed(&s, "{\"n\":2}\n", "");
	/* Still running: nothing to do, the events will come. */
	run = json_pack("{s:s, s:s}", "id", "r_2", "status", "running");
	CHECK_INT(ctl_watch_run_result(&s.w, run), 0);
	json_decref(run);
	CHECK(!s.w.check_run);
	CHECK_INT(s.w.run_state, CTL_WATCH_RUNNING);
	/* Failed by the restart, with no event: printed from the result. */
	run = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "id", "r_2", "status", "failed", "error",
	                "code", "killed", "message", "the daemon stopped during the run",
	                "finished_at", "2026-11-22T00:00:00.000Z");
	CHECK_INT(ctl_watch_run_result(&s.w, run), 0);
	json_decref(run);
	CHECK_INT(s.w.run_state, CTL_WATCH_IDLE);
	printed(&s, "", "agentctl: run failed: killed: the daemon stopped during the run\n");
	/* Should its event come after all, it is not printed twice. */
	feed(&s,
	     "{\"seq\":6,\"type\":\"run.failed\",\"run\":\"r_2\",\"error\":{\"code\":\"killed\","
	     "\"message\":\"the daemon stopped during the run\"}}");
	printed(&s, "", "");
	CHECK_INT(s.w.last_seq, 6);
	/* Reconnected while ours ran, with nothing to replay: its result at once. */
	json_decref(ctl_watch_run(&s.w, input, "line 3"));
	feed(&s, STARTED_REF(7, "r_3", "line 3"));
	CHECK_STR(connect_msgs(&s, 7), RESUME(7));
	CHECK(s.w.check_run);
	printed(&s, "run.started r_3\n", "");
	json_decref(input);
	sink_close(&s);
}

static void test_session_destroyed(void)
{
	struct sink s;

	sink_open(&s, false, 0);
	connect_msgs(&s, 0);
	CHECK_INT(feed(&s, "{\"type\":\"error\",\"error\":{\"code\":\"not_found\",\"message\":"
	                   "\"session s_1 was destroyed\"}}"),
	          -1);
	CHECK(s.w.gone);
	CHECK_STR(s.w.error, "not_found: session s_1 was destroyed");
	printed(&s, "", "");
	sink_close(&s);
}

int main(void)
{
	test_replay_then_live();
	test_after_and_json();
	test_our_runs();
	test_interrupts();
	test_reconnects();
	test_session_destroyed();
	return check_summary();
}
