/* sdk_test.c: drives the C SDK and the C example agents through a fake host on a
 * socketpair: hello -> ready, runs with events, the KV round trip, cancel (of slow, during a
 * KV call, and in the same read as its run), frames over 64 KiB, hang-ups, size caps and
 * host protocol errors.
 * Usage: sdk_test ECHO SLOW SDK_TEST_AGENT (paths of the three programs). */
#include "check.h"
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

static const char *echo_path, *slow_path, *agent_path;

/* The fake host's end of one agent. */
struct host {
	pid_t pid;
	int fd;
	struct frame_reader reader;
	json_t *inbox; /* frames read, not yet taken */
	json_t *kv;    /* the session's fake KV state */
	json_t *logs;  /* "msg" of every log frame */
	bool eof;
	int bad; /* lines that were not valid agent frames */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Starts path with the socket on child_fd (AGENTHOST_FD set unless child_fd is 3; no
 * socket at all if child_fd < 0). */
static void host_spawn(struct host *h, const char *path, int child_fd)
{
	int sv[2];

	memset(h, 0, sizeof(*h));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	h->pid = fork();
	if (h->pid == 0) {
		char num[16];

		unsetenv("AGENTHOST_FD");
		if (child_fd < 0) {
			close(3);
		} else {
			dup2(sv[1], child_fd);
			if (sv[1] == child_fd)
				fcntl(child_fd, F_SETFD, 0);
			if (child_fd != 3) {
				snprintf(num, sizeof(num), "%d", child_fd);
				setenv("AGENTHOST_FD", num, 1);
			}
		}
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	h->fd = sv[0];
	frame_reader_init(&h->reader, 1 << 20);
	h->inbox = json_array();
	h->kv = json_object();
	h->logs = json_array();
}

static void host_write(struct host *h, const char *text)
{
	size_t len = strlen(text);

	while (len > 0) {
		ssize_t n = send(h->fd, text, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* Sends frame (taken). */
static void host_send(struct host *h, json_t *frame)
{
	char *line;
	size_t len;

	CHECK_INT(frame_encode(frame, 0, &line, &len), 0);
	json_decref(frame);
	host_write(h, line);
	free(line);
}

static void host_hello(struct host *h, const char *mode, json_t *config, json_int_t max_frame)
{
	json_t *hello =
	    json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:b, s:o}", "t", "hello", "protocol", 1,
	              "agent", "test", "version", "1.0.0", "mode", mode, "session",
	              strcmp(mode, "session") == 0 ? json_string("s_1") : json_null(), "resumed", 0,
	              "config", config ? config : json_object());

	if (max_frame)
		json_object_set_new(hello, "max_frame_bytes", json_integer(max_frame));
	host_send(h, hello);
}

static void host_run(struct host *h, const char *run, json_t *input)
{
	host_send(h, json_pack("{s:s, s:s, s:o}", "t", "run", "run", run, "input", input));
}

static int host_on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	struct host *h = ctx;
	struct frame_error verr;

	if (err || frame_validate(frame, FRAME_TO_HOST, &verr) < 0) {
		fprintf(stderr, "fake host: bad frame: %s\n", err ? err->text : verr.text);
		h->bad++;
		return 0;
	}
	json_array_append(h->inbox, frame);
	return 0;
}

/* The next frame from the agent (a reference the caller owns), or NULL after timeout_ms
 * or at EOF. */
static json_t *host_next(struct host *h, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	json_t *frame;

	while (json_array_size(h->inbox) == 0) {
		struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
		char buf[65536];
		long long left = deadline - now_ms();
		ssize_t n;

		if (h->eof || left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return NULL;
		n = read(h->fd, buf, sizeof(buf));
		if (n <= 0) {
			h->eof = true;
			CHECK_INT(frame_reader_eof(&h->reader, NULL), 0);
			continue;
		}
		frame_reader_feed(&h->reader, buf, (size_t)n, host_on_frame, h);
	}
	frame = json_incref(json_array_get(h->inbox, 0));
	json_array_remove(h->inbox, 0);
	return frame;
}

static bool frame_is(const json_t *frame, const char *t)
{
	return frame && strcmp(json_string_value(json_object_get(frame, "t")), t) == 0;
}

/* Expects the next frame to be of type t; returns it (owned) or NULL. */
static json_t *host_expect(struct host *h, const char *t)
{
	json_t *frame = host_next(h, TIMEOUT_MS);

	if (!frame_is(frame, t)) {
		char *s = frame ? json_dumps(frame, 0) : NULL;

		fprintf(stderr, "fake host: expected %s, got %s\n", t, s ? s : "nothing");
		free(s);
		CHECK(!"expected frame");
		json_decref(frame);
		return NULL;
	}
	return frame;
}

static void host_kv_answer(struct host *h, json_int_t req, bool ok, const char *key, json_t *value)
{
	json_t *result = json_pack("{s:s, s:I, s:b}", "t", "kv.result", "req", req, "ok", ok);

	if (ok && value)
		json_object_set(result, "value", value);
	if (!ok)
		json_object_set_new(result, "error",
		                    json_pack("{s:s, s:s}", "code", "too_large", "message", key));
	host_send(h, result);
}

/* Answers a kv.* frame from h->kv, as the daemon would. Key "refuse" is refused. */
static void host_serve_kv(struct host *h, json_t *frame)
{
	const char *t = json_string_value(json_object_get(frame, "t"));
	const char *key = json_string_value(json_object_get(frame, "key"));
	json_int_t req = json_integer_value(json_object_get(frame, "req"));

	if (key && strcmp(key, "refuse") == 0) {
		host_kv_answer(h, req, false, "value over 1 MiB", NULL);
	} else if (strcmp(t, "kv.get") == 0) {
		host_kv_answer(h, req, true, key, json_object_get(h->kv, key));
	} else if (strcmp(t, "kv.set") == 0) {
		json_object_set(h->kv, key, json_object_get(frame, "value"));
		host_kv_answer(h, req, true, key, NULL);
	} else if (strcmp(t, "kv.del") == 0) {
		json_t *existed = json_boolean(json_object_get(h->kv, key) != NULL);

		json_object_del(h->kv, key);
		host_kv_answer(h, req, true, key, existed);
		json_decref(existed);
	} else if (strcmp(t, "kv.list") == 0) {
		const char *prefix = json_string_value(json_object_get(frame, "prefix"));
		json_t *keys = json_array(), *value;
		const char *k;

		json_object_foreach(h->kv, k, value) if (strncmp(k, prefix, strlen(prefix)) == 0)
		    json_array_append_new(keys, json_string(k));
		host_kv_answer(h, req, true, key, keys);
		json_decref(keys);
	}
}

/* Reads until run ends, serving KV and keeping logs; returns the done or error frame
 * (owned) and, in *events, the data of every event (owned; may be NULL). */
static json_t *host_until_end(struct host *h, const char *run, json_t **events)
{
	json_t *frame;

	if (events)
		*events = json_array();
	while ((frame = host_next(h, TIMEOUT_MS))) {
		const char *t = json_string_value(json_object_get(frame, "t"));

		if (strncmp(t, "kv.", 3) == 0) {
			host_serve_kv(h, frame);
		} else if (strcmp(t, "log") == 0) {
			json_array_append(h->logs, json_object_get(frame, "msg"));
		} else if (strcmp(t, "event") == 0) {
			CHECK_STR(json_string_value(json_object_get(frame, "run")), run);
			if (events)
				json_array_append(*events, json_object_get(frame, "data"));
		} else if (strcmp(t, "done") == 0 || strcmp(t, "error") == 0) {
			CHECK_STR(json_string_value(json_object_get(frame, "run")), run);
			return frame;
		}
		json_decref(frame);
	}
	CHECK(!"run ended");
	return NULL;
}

/* Waits for the agent to exit; returns its exit status, or -1 (and kills it) after
 * timeout_ms. */
static int host_wait(struct host *h, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	const struct timespec ms = {.tv_nsec = 1000000};
	int status;

	while (waitpid(h->pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, &status, 0);
			return -1;
		}
		nanosleep(&ms, NULL);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void host_close(struct host *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

static void host_free(struct host *h)
{
	host_close(h);
	CHECK_INT(h->bad, 0);
	frame_reader_free(&h->reader);
	json_decref(h->inbox);
	json_decref(h->kv);
	json_decref(h->logs);
}

/* Starts path on fd 3 and completes the handshake. */
static void host_start(struct host *h, const char *path, const char *mode)
{
	json_t *ready;

	host_spawn(h, path, 3);
	host_hello(h, mode, NULL, 0);
	ready = host_expect(h, "ready");
	json_decref(ready);
}

static void check_output(json_t *end, const char *t, const char *json)
{
	json_t *want = json_loads(json, JSON_DECODE_ANY, NULL);

	CHECK(frame_is(end, t));
	if (!json_equal(json_object_get(end, strcmp(t, "done") == 0 ? "output" : "code"), want)) {
		char *s = json_dumps(end, 0);

		fprintf(stderr, "expected %s %s, got %s\n", t, json, s);
		free(s);
		CHECK(!"output");
	}
	json_decref(want);
	json_decref(end);
}

/* ---- echo ------------------------------------------------------------------------------- */

static void test_echo(void)
{
	struct host h;
	json_t *events, *want;

	host_start(&h, echo_path, "session");
	host_run(&h, "r_1", json_string("hello  big\tworld "));
	check_output(host_until_end(&h, "r_1", &events), "done", "\"hello  big\\tworld \"");
	want =
	    json_loads("[{\"word\":\"hello\"},{\"word\":\"big\"},{\"word\":\"world\"}]", 0, NULL);
	CHECK(json_equal(events, want));
	json_decref(want);
	json_decref(events);

	/* Input that is not a string comes back whole, without events. */
	host_run(&h, "r_2", json_pack("{s:[i,i]}", "a", 1, 2));
	check_output(host_until_end(&h, "r_2", &events), "done", "{\"a\":[1,2]}");
	CHECK_INT(json_array_size(events), 0);
	json_decref(events);

	/* A cancel of a run that already ended is ignored; an unknown frame too. */
	host_write(&h, "{\"t\":\"cancel\",\"run\":\"r_2\"}\n{\"t\":\"future\",\"x\":1}\n");
	host_run(&h, "r_3", json_string("\xc3\xa9t\xc3\xa9 caf\xc3\xa9"));
	check_output(host_until_end(&h, "r_3", &events), "done",
	             "\"\xc3\xa9t\xc3\xa9 caf\xc3\xa9\"");
	CHECK_INT(json_array_size(events), 2);
	json_decref(events);

	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);
}

static void test_echo_invoke_and_fd(void)
{
	struct host h;
	json_t *ready;

	/* AGENTHOST_FD picks another descriptor; a hang-up ends the agent cleanly. */
	host_spawn(&h, echo_path, 7);
	host_hello(&h, "invoke", NULL, 0);
	ready = host_expect(&h, "ready");
	json_decref(ready);
	host_run(&h, "r_1", json_string("one"));
	check_output(host_until_end(&h, "r_1", NULL), "done", "\"one\"");
	host_close(&h);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);

	/* Started by hand, without a host connection, it says so and fails. */
	host_spawn(&h, echo_path, -1);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 1);
	host_free(&h);
}

/* ---- the SDK, through sdk_test_agent ---------------------------------------------------- */

static void test_kv_round_trip(void)
{
	struct host h;
	json_t *end, *out, *want;

	host_start(&h, agent_path, "session");
	host_run(&h, "r_1", json_pack("{s:s}", "op", "kv"));
	end = host_until_end(&h, "r_1", NULL);
	CHECK(frame_is(end, "done"));
	out = json_object_get(end, "output");
	want = json_pack("{s:i, s:i, s:i, s:{s:[i]}, s:i, s:b, s:[s,s,s], s:[s,s], s:i, s:i, "
	                 "s:i, s:i, s:s}",
	                 "set_a", 0, "set_b", 0, "set_ab", 0, "get_b", "x", 1, "get_missing", -4,
	                 "missing_value_null", 1, "list_all", "a", "b", "ab", "list_a", "a", "ab",
	                 "del_a", 0, "del_a_again", -4, "get_empty_key", -1, "refused", -6,
	                 "refused_msg", "kv.set: too_large: value over 1 MiB");
	if (!json_equal(out, want)) {
		char *s = json_dumps(out, JSON_SORT_KEYS);

		fprintf(stderr, "kv round trip gave %s\n", s);
		free(s);
		CHECK(!"kv round trip");
	}
	CHECK(json_is_null(json_object_get(h.kv, "ab")));
	CHECK(json_object_get(h.kv, "a") == NULL);
	json_decref(want);
	json_decref(end);
	host_free(&h);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
}

/* The host cancels the run while the agent waits for a KV answer: the SDK applies the
 * cancel at once (callback called, agent_cancelled true without another read), and a run
 * that then returns is ended as "cancelled". */
static void test_cancel_during_kv(void)
{
	struct host h;
	json_t *get, *end;

	host_start(&h, agent_path, "session");
	host_run(&h, "r_1", json_pack("{s:s}", "op", "kv_cancel"));
	get = host_expect(&h, "kv.get");
	CHECK(json_integer_value(json_object_get(get, "req")) >= 1);
	host_write(&h, "{\"t\":\"cancel\",\"run\":\"r_1\"}\n");
	host_kv_answer(&h, json_integer_value(json_object_get(get, "req")), true, "k", NULL);
	json_decref(get);
	end = host_until_end(&h, "r_1", NULL);
	check_output(end, "error", "\"cancelled\"");
	CHECK_STR(json_string_value(json_array_get(h.logs, 0)), "rc=-4 cancelled=1 cancels=1");
	host_free(&h);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
}

static void test_run_endings(void)
{
	struct host h;
	json_t *end, *events;

	host_start(&h, agent_path, "session");
	/* Returning without a result fails the run for the agent. */
	host_run(&h, "r_1", json_pack("{s:s}", "op", "nothing"));
	check_output(host_until_end(&h, "r_1", NULL), "error", "\"agent_error\"");
	host_run(&h, "r_2", json_pack("{s:s}", "op", "fail"));
	check_output(host_until_end(&h, "r_2", NULL), "error", "\"agent_error\"");
	/* Calls for another run, or after the end, are refused locally. */
	host_run(&h, "r_3", json_pack("{s:s}", "op", "wrongrun"));
	check_output(host_until_end(&h, "r_3", NULL), "done", "{\"rc\": -1}");
	end = host_expect(&h, "log");
	CHECK_STR(json_string_value(json_object_get(end, "msg")), "again=-1 fail=-1");
	json_decref(end);
	/* Logs: level and text, with invalid UTF-8 made safe. */
	host_run(&h, "r_4", json_pack("{s:s}", "op", "log"));
	check_output(host_until_end(&h, "r_4", NULL), "done", "null");
	CHECK_STR(json_string_value(json_array_get(h.logs, 0)), "n=42 ?");
	/* A run that polls agent_cancelled() sees a cancel. */
	host_run(&h, "r_5", json_pack("{s:s}", "op", "spin"));
	end = host_expect(&h, "event");
	json_decref(end);
	host_write(&h, "{\"t\":\"cancel\",\"run\":\"r_5\"}\n");
	check_output(host_until_end(&h, "r_5", &events), "error", "\"cancelled\"");
	json_decref(events);
	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);
}

/* A run input and a kv.result longer than one read of the SDK (64 KiB) arrive whole. */
static void test_frames_over_64k(void)
{
	struct host h;
	char *text = malloc(70001), *value = malloc((900 << 10) + 1);

	memset(text, 'x', 70000);
	text[70000] = '\0';
	memset(value, 'v', 900 << 10);
	value[900 << 10] = '\0';
	host_start(&h, agent_path, "session");
	json_object_set_new(h.kv, "big", json_string(value));
	host_run(&h, "r_1", json_pack("{s:s, s:s}", "op", "long", "text", text));
	check_output(host_until_end(&h, "r_1", NULL), "done",
	             "{\"rc\": 0, \"input_len\": 70000, \"value_len\": 921600}");
	/* echo sends a long string input back whole. */
	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);
	host_start(&h, echo_path, "session");
	host_run(&h, "r_1", json_pack("{s:i, s:s}", "n", 1, "text", text));
	{
		json_t *end = host_until_end(&h, "r_1", NULL);

		CHECK(frame_is(end, "done"));
		CHECK_STR(
		    json_string_value(json_object_get(json_object_get(end, "output"), "text")),
		    text);
		json_decref(end);
	}
	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);
	free(text);
	free(value);
}

/* run and cancel in one write: the SDK reads both at once, and the run must see the cancel
 * from its start (agent_cancelled() true at the first call, the callback called once). */
static void test_cancel_in_the_same_read(void)
{
	struct host h;
	long long sent;
	json_t *end;

	host_start(&h, agent_path, "session");
	sent = now_ms();
	host_write(&h, "{\"t\":\"run\",\"run\":\"r_1\",\"input\":{\"op\":\"spin_count\"}}\n"
	               "{\"t\":\"cancel\",\"run\":\"r_1\"}\n");
	check_output(host_until_end(&h, "r_1", NULL), "error", "\"cancelled\"");
	CHECK(now_ms() - sent < 200);
	CHECK_STR(json_string_value(json_array_get(h.logs, 0)), "cancels=1");
	/* The next run is not cancelled. */
	host_run(&h, "r_2", json_pack("{s:s}", "op", "log"));
	check_output(host_until_end(&h, "r_2", NULL), "done", "null");
	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);

	/* The slow example: it checks agent_cancelled() before its first tick. */
	host_start(&h, slow_path, "session");
	sent = now_ms();
	host_write(&h, "{\"t\":\"run\",\"run\":\"r_1\",\"input\":{\"seconds\":10}}\n"
	               "{\"t\":\"cancel\",\"run\":\"r_1\"}\n");
	end = host_until_end(&h, "r_1", NULL);
	fprintf(stderr, "slow: cancel sent with the run answered in %lld ms\n", now_ms() - sent);
	CHECK(now_ms() - sent < 200);
	check_output(end, "error", "\"cancelled\"");
	host_run(&h, "r_2", json_pack("{s:f}", "seconds", 0.1));
	check_output(host_until_end(&h, "r_2", NULL), "done", "{\"n\": 1}");
	host_send(&h, json_pack("{s:s}", "t", "destroy"));
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);
}

static void test_invoke_and_caps(void)
{
	struct host h;
	json_t *ready, *end;

	/* Mode invoke has no KV: refused without asking the host. The hello's cap is kept. */
	host_spawn(&h, agent_path, 3);
	host_hello(&h, "invoke", NULL, 200);
	ready = host_expect(&h, "ready");
	json_decref(ready);
	host_run(&h, "r_1", json_pack("{s:s}", "op", "nokv"));
	end = host_until_end(&h, "r_1", NULL);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(end, "output"), "rc")), -5);
	json_decref(end);
	host_run(&h, "r_2", json_pack("{s:s}", "op", "big"));
	end = host_until_end(&h, "r_2", NULL);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(end, "output"), "rc")), -3);
	CHECK_STR(json_string_value(json_object_get(json_object_get(end, "output"), "msg")),
	          "event frame longer than the host's cap of 200 bytes");
	json_decref(end);
	host_close(&h);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	host_free(&h);

	/* A failing create: never ready, exit status 1. */
	host_spawn(&h, agent_path, 3);
	host_hello(&h, "session", json_pack("{s:s}", "FAIL_CREATE", "1"), 0);
	CHECK(host_next(&h, TIMEOUT_MS) == NULL);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 1);
	host_free(&h);
}

static void expect_protocol_error(const char *what, const char *lines)
{
	struct host h;

	fprintf(stderr, "-- expecting a protocol error (%s):\n", what);
	host_spawn(&h, agent_path, 3);
	host_write(&h, lines);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 1);
	host_free(&h);
}

static void test_host_protocol_errors(void)
{
	static const char hello[] = "{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":"
	                            "\"1\",\"mode\":\"session\",\"session\":\"s\",\"resumed\":"
	                            "false,\"config\":{}}\n";
	char buf[512];

	expect_protocol_error("garbage", "garbage\n");
	expect_protocol_error("run before hello", "{\"t\":\"run\",\"run\":\"r\",\"input\":1}\n");
	expect_protocol_error("bad hello", "{\"t\":\"hello\",\"protocol\":1}\n");
	snprintf(buf, sizeof(buf), "%s%s", hello, "{\"t\":\"kv.result\",\"req\":1,\"ok\":true}\n");
	expect_protocol_error("stray kv.result", buf);
	snprintf(buf, sizeof(buf), "%s%s", hello, hello);
	expect_protocol_error("second hello", buf);
	/* A frame cut by the hang-up. */
	snprintf(buf, sizeof(buf), "%s{\"t\":\"run\"", hello);
	{
		struct host h;

		host_spawn(&h, agent_path, 3);
		host_write(&h, buf);
		json_decref(host_expect(&h, "ready"));
		host_close(&h);
		CHECK_INT(host_wait(&h, TIMEOUT_MS), 1);
		host_free(&h);
	}
}

/* ---- slow ------------------------------------------------------------------------------- */

static void test_slow(void)
{
	struct host h;
	json_t *events, *first, *end;
	long long sent;

	host_start(&h, slow_path, "session");
	host_run(&h, "r_1", json_pack("{s:f}", "seconds", 0.3));
	check_output(host_until_end(&h, "r_1", &events), "done", "{\"n\": 3}");
	CHECK_INT(json_array_size(events), 3);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(events, 2), "n")), 3);
	json_decref(events);

	host_run(&h, "r_2", json_pack("{s:i}", "seconds", 10));
	first = host_expect(&h, "event");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(first, "data"), "n")), 1);
	json_decref(first);
	sent = now_ms();
	host_write(&h, "{\"t\":\"cancel\",\"run\":\"r_2\"}\n");
	end = host_until_end(&h, "r_2", &events);
	fprintf(stderr, "slow: cancel answered in %lld ms\n", now_ms() - sent);
	CHECK(now_ms() - sent < 200);
	CHECK(json_array_size(events) <= 2);
	json_decref(events);
	check_output(end, "error", "\"cancelled\"");

	host_run(&h, "r_3", json_pack("{s:i}", "seconds", -1));
	check_output(host_until_end(&h, "r_3", NULL), "error", "\"invalid_input\"");

	/* A hang-up in the middle of a run ends the agent promptly. */
	host_run(&h, "r_4", json_null());
	first = host_expect(&h, "event");
	json_decref(first);
	sent = now_ms();
	host_close(&h);
	CHECK_INT(host_wait(&h, TIMEOUT_MS), 0);
	CHECK(now_ms() - sent < 500);
	host_free(&h);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sdk_test ECHO SLOW SDK_TEST_AGENT\n");
		return 2;
	}
	echo_path = argv[1];
	slow_path = argv[2];
	agent_path = argv[3];
	signal(SIGPIPE, SIG_IGN);
	test_echo();
	test_echo_invoke_and_fd();
	test_kv_round_trip();
	test_cancel_during_kv();
	test_run_endings();
	test_frames_over_64k();
	test_cancel_in_the_same_read();
	test_invoke_and_caps();
	test_host_protocol_errors();
	test_slow();
	return check_summary();
}
