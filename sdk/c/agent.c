/* agent.c: the C SDK's protocol engine (agent.h). One thread, one blocking loop: read
 * frames from the host, dispatch hello/run/destroy to the callbacks, and while a callback
 * runs, read the socket only when the agent calls in (agent_cancelled, a KV call), keeping
 * frames that are not for that call in a queue for the loop. */
#include "agent.h"

#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The host sends run inputs, KV values and hello; all are far below this. The buffer grows
 * only as large as the longest incomplete frame. */
#define HOST_FRAME_MAX (64u << 20)

/* How many reads agent_cancelled() may do before it answers, so that a chatty host cannot
 * keep a run inside it. */
#define POLL_READS_MAX 16

struct agent {
	int fd;
	const struct agent_callbacks *cb;
	void *user;
	struct frame_reader reader;
	json_t *queue;  /* frames read and not yet dispatched, oldest first */
	json_t *hello;  /* the host's hello, NULL before it */
	size_t max_out; /* the host's cap on our frames (hello.max_frame_bytes), 0 if unknown */

	long long next_req;   /* last "req" used */
	long long kv_waiting; /* "req" of the KV call waiting for its answer, 0 if none */
	json_t *kv_answer;    /* its kv.result, once read */

	char *run;             /* the active run's ID, NULL between runs */
	bool run_ended;        /* done or error sent for it */
	bool cancelled;        /* cancel (or destroy, or hang-up) seen for it */
	bool cancel_to_report; /* the cancel callback is still to be called */
	json_t *early_cancels; /* {run ID: true}: queued runs already cancelled */

	bool ready;   /* create succeeded and ready was sent */
	bool hung_up; /* the host closed the connection (or reading failed) */
	bool broken;  /* the host broke the protocol: stop */
	char errmsg[256];
};

const char *agent_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case AGENT_EINVAL:
		return "invalid argument or no such active run";
	case AGENT_EIO:
		return "host connection lost";
	case AGENT_ETOOBIG:
		return "frame over the host's size cap";
	case AGENT_ENOTFOUND:
		return "no such key";
	case AGENT_ENOKV:
		return "no key-value state in this mode";
	case AGENT_EHOST:
		return "refused by the host";
	}
	return "unknown error";
}

const char *agent_errmsg(struct agent *a)
{
	return a->errmsg;
}

static int fail_with(struct agent *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why a call failed (agent_errmsg) and returns code. */
static int fail_with(struct agent *a, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->errmsg, sizeof(a->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

/* The host broke the protocol. The SDK stops: the process ends with status 1. A run in
 * progress is told through agent_cancelled(). */
static void protocol_error(struct agent *a, const char *what)
{
	fprintf(stderr, "agent: protocol error from the host: %s\n", what);
	fail_with(a, AGENT_EIO, "protocol error from the host: %s", what);
	a->broken = true;
	if (a->run)
		a->cancelled = true;
}

/* ---- Reading ---------------------------------------------------------------------------- */

static bool frame_is_run(const json_t *frame)
{
	const char *t = json_string_value(json_object_get(frame, "t"));

	return t && strcmp(t, "run") == 0;
}

static void note_cancel(struct agent *a)
{
	if (a->run && !a->run_ended && !a->cancelled) {
		a->cancelled = true;
		a->cancel_to_report = true;
	}
}

/* Routes one frame as soon as it is read: a KV answer goes to the waiting call and a cancel
 * of the active run is applied at once; everything else waits in the queue. */
static int on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	struct agent *a = ctx;
	struct frame_error verr;
	int kind;

	if (err) {
		protocol_error(a, err->text);
		return 1;
	}
	kind = frame_validate(frame, FRAME_TO_AGENT, &verr);
	if (kind == FRAME_EUNKNOWN) {
		/* A newer host may send frames this SDK does not know: they are not for it. */
		fprintf(stderr, "agent: ignoring %s\n", verr.text);
		return 0;
	}
	if (kind < 0) {
		protocol_error(a, verr.text);
		return 1;
	}
	switch (kind) {
	case FRAME_KV_RESULT:
		if (json_integer_value(json_object_get(frame, "req")) != a->kv_waiting ||
		    a->kv_answer) {
			protocol_error(a, "kv.result for a request nobody is waiting for");
			return 1;
		}
		a->kv_answer = json_incref(frame);
		return 0;
	case FRAME_CANCEL: {
		const char *run = json_string_value(json_object_get(frame, "run"));
		size_t i;
		json_t *queued;

		if (a->run && strcmp(run, a->run) == 0) {
			note_cancel(a);
			return 0;
		}
		/* A cancel of a run still in the queue (read in the same go, or while a call
		 * read): that run starts cancelled. */
		json_array_foreach(a->queue, i, queued)
		{
			const char *id = json_string_value(json_object_get(queued, "run"));

			if (frame_is_run(queued) && id && strcmp(id, run) == 0)
				json_object_set_new(a->early_cancels, run, json_true());
		}
		return 0;
	}
	case FRAME_DESTROY:
		note_cancel(a);
		break;
	}
	json_array_append(a->queue, frame);
	return 0;
}

static void hang_up(struct agent *a)
{
	struct frame_error err;

	a->hung_up = true;
	fail_with(a, AGENT_EIO, "the host closed the connection");
	if (frame_reader_eof(&a->reader, &err) != 0)
		protocol_error(a, err.text);
	note_cancel(a);
}

/* Calls the cancel callback for a cancel read since the last call. */
static void report_cancel(struct agent *a)
{
	if (!a->cancel_to_report)
		return;
	a->cancel_to_report = false;
	if (a->cb->cancel)
		a->cb->cancel(a, a->run, a->user);
}

/* Waits up to timeout_ms (-1: for ever) for bytes from the host and processes them.
 * Returns 1 if something was read, 0 if nothing came, AGENT_EIO once nothing more will
 * come (hang-up, read error, protocol error). */
static int read_host(struct agent *a, int timeout_ms)
{
	char buf[65536];
	struct pollfd pfd = {.fd = a->fd, .events = POLLIN};
	ssize_t n;

	if (a->broken || a->hung_up)
		return AGENT_EIO;
	n = poll(&pfd, 1, timeout_ms);
	if (n == 0 || (n < 0 && errno == EINTR))
		return 0;
	n = n < 0 ? -1 : read(a->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		hang_up(a);
		report_cancel(a);
		return AGENT_EIO;
	}
	frame_reader_feed(&a->reader, buf, (size_t)n, on_frame, a);
	report_cancel(a);
	return a->broken ? AGENT_EIO : 1;
}

/* The next queued frame (a reference the caller owns), reading as needed; NULL when the
 * host is gone or broke the protocol. */
static json_t *next_frame(struct agent *a)
{
	while (json_array_size(a->queue) == 0)
		if (read_host(a, -1) < 0)
			return NULL;
	if (a->broken)
		return NULL;
	{
		json_t *frame = json_incref(json_array_get(a->queue, 0));

		json_array_remove(a->queue, 0);
		return frame;
	}
}

/* ---- Writing ---------------------------------------------------------------------------- */

static int write_all(struct agent *a, const char *p, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a host that hung up must give EPIPE, not kill us with SIGPIPE. */
		ssize_t n = send(a->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(a->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = a->fd, .events = POLLOUT};

			poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0)
			return fail_with(a, AGENT_EIO, "writing to the host: %s",
			                 n < 0 ? strerror(errno) : "nothing written");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Encodes and writes frame (taken). */
static int send_frame(struct agent *a, json_t *frame)
{
	char *line;
	size_t len;
	int rc;

	rc = frame_encode(frame, a->max_out, &line, &len);
	if (rc == FRAME_ETOOLONG)
		rc = fail_with(a, AGENT_ETOOBIG, "%s frame longer than the host's cap of %zu bytes",
		               json_string_value(json_object_get(frame, "t")), a->max_out);
	else if (rc)
		rc = fail_with(a, AGENT_EINVAL, "frame cannot be encoded as JSON");
	json_decref(frame);
	if (rc)
		return rc;
	rc = write_all(a, line, len);
	free(line);
	return rc;
}

/* A JSON string of s; bytes that are not valid UTF-8 become '?' rather than losing the
 * whole text. */
static json_t *text_value(const char *s)
{
	json_t *v = json_string(s ? s : "");
	char *copy;

	if (v)
		return v;
	copy = strdup(s);
	if (!copy)
		abort();
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

/* A new frame {"t": t}; the fields are added with json_object_set_new. */
static json_t *frame_new(const char *t)
{
	json_t *frame = json_object();

	json_object_set_new(frame, "t", json_string(t));
	return frame;
}

/* ---- Runs ------------------------------------------------------------------------------- */

static bool run_is_active(struct agent *a, const char *run)
{
	return a->run && !a->run_ended && run && strcmp(run, a->run) == 0;
}

static int send_run_frame(struct agent *a, const char *t, const char *run, const char *key,
                          json_t *value)
{
	json_t *frame;

	if (!run_is_active(a, run)) {
		json_decref(value);
		return fail_with(a, AGENT_EINVAL, "%s: run %s is not the active run", t,
		                 run ? run : "(null)");
	}
	frame = frame_new(t);
	json_object_set_new(frame, "run", json_string(a->run));
	json_object_set_new(frame, key, value ? value : json_null());
	return send_frame(a, frame);
}

int agent_emit(struct agent *a, const char *run, json_t *data)
{
	return send_run_frame(a, "event", run, "data", data);
}

int agent_done(struct agent *a, const char *run, json_t *output)
{
	int rc = send_run_frame(a, "done", run, "output", output);

	/* After AGENT_EIO nothing more can be sent for the run anyway. */
	if (rc == 0 || rc == AGENT_EIO)
		a->run_ended = true;
	return rc;
}

int agent_fail(struct agent *a, const char *run, const char *code, const char *message)
{
	json_t *frame;
	int rc;

	if (!run_is_active(a, run))
		return fail_with(a, AGENT_EINVAL, "error: run %s is not the active run",
		                 run ? run : "(null)");
	frame = frame_new("error");
	json_object_set_new(frame, "run", json_string(a->run));
	json_object_set_new(frame, "code", text_value(code && *code ? code : "agent_error"));
	json_object_set_new(frame, "message", text_value(message));
	rc = send_frame(a, frame);
	if (rc == 0 || rc == AGENT_EIO)
		a->run_ended = true;
	return rc;
}

bool agent_cancelled(struct agent *a, const char *run)
{
	if (!a->run || !run || strcmp(run, a->run) != 0)
		return true;
	for (int i = 0; i < POLL_READS_MAX && !a->cancelled; i++)
		if (read_host(a, 0) <= 0)
			break;
	report_cancel(a); /* a cancel that came with the run frame */
	return a->cancelled;
}

/* Runs one run frame through the run callback and makes sure the run ends. */
static void do_run(struct agent *a, json_t *frame)
{
	json_t *input = json_object_get(frame, "input");

	a->run = strdup(json_string_value(json_object_get(frame, "run")));
	if (!a->run)
		abort();
	a->run_ended = a->cancelled = a->cancel_to_report = false;
	if (json_object_get(a->early_cancels, a->run)) {
		/* Cancelled before it started: agent_cancelled() is true from the first call,
		 * and the cancel callback is called from there (or the first KV call). */
		json_object_del(a->early_cancels, a->run);
		a->cancelled = a->cancel_to_report = true;
	}
	if (a->cb->run)
		a->cb->run(a, a->run, input, a->user);
	else
		agent_fail(a, a->run, "not_implemented", "this agent has no run callback");
	if (!a->run_ended && !a->broken) {
		if (a->cancelled)
			agent_fail(a, a->run, "cancelled", "run cancelled");
		else
			agent_fail(a, a->run, "agent_error",
			           "the run callback returned without agent_done or agent_fail");
	}
	free(a->run);
	a->run = NULL;
}

/* ---- Key-value state -------------------------------------------------------------------- */

/* Sends a kv.* frame (taken) with a fresh "req" and waits for its kv.result, which it
 * returns in *answer (a reference the caller owns) when the host said ok. */
static int kv_call(struct agent *a, json_t *frame, json_t **answer)
{
	char t[16]; /* frame's "t", for messages after frame is gone */
	json_t *result, *error;
	int rc = 0;

	snprintf(t, sizeof(t), "%s", json_string_value(json_object_get(frame, "t")));
	*answer = NULL;
	if (!a->hello || a->kv_waiting)
		rc = fail_with(a, AGENT_EINVAL, "%s: not allowed here", t);
	else if (strcmp(json_string_value(json_object_get(a->hello, "mode")), "invoke") == 0)
		rc = fail_with(a, AGENT_ENOKV, "%s: no key-value state in mode invoke", t);
	if (rc) {
		json_decref(frame);
		return rc;
	}
	json_object_set_new(frame, "req", json_integer(++a->next_req));
	a->kv_waiting = a->next_req;
	rc = send_frame(a, frame);
	while (rc == 0 && !a->kv_answer)
		if (read_host(a, -1) < 0)
			rc = AGENT_EIO;
	a->kv_waiting = 0;
	result = a->kv_answer;
	a->kv_answer = NULL;
	if (rc) {
		json_decref(result);
		return rc;
	}
	error = json_object_get(result, "error");
	if (json_is_true(json_object_get(result, "ok"))) {
		*answer = result;
		return 0;
	}
	rc = fail_with(a,
	               strcmp(json_string_value(json_object_get(error, "code")), "no_kv") == 0
	                   ? AGENT_ENOKV
	                   : AGENT_EHOST,
	               "%s: %s: %s", t, json_string_value(json_object_get(error, "code")),
	               json_string_value(json_object_get(error, "message")));
	json_decref(result);
	return rc;
}

static json_t *kv_frame(const char *t, const char *name, const char *text)
{
	json_t *frame = frame_new(t);

	json_object_set_new(frame, name, json_string(text));
	return frame;
}

int agent_kv_get(struct agent *a, const char *key, json_t **value)
{
	json_t *answer;
	int rc;

	*value = NULL;
	if (!key || !*key)
		return fail_with(a, AGENT_EINVAL, "kv.get: empty key");
	rc = kv_call(a, kv_frame("kv.get", "key", key), &answer);
	if (rc)
		return rc;
	*value = json_incref(json_object_get(answer, "value"));
	json_decref(answer);
	return *value ? 0 : AGENT_ENOTFOUND;
}

int agent_kv_set(struct agent *a, const char *key, json_t *value)
{
	json_t *frame, *answer;
	int rc;

	if (!key || !*key) {
		json_decref(value);
		return fail_with(a, AGENT_EINVAL, "kv.set: empty key");
	}
	frame = kv_frame("kv.set", "key", key);
	json_object_set_new(frame, "value", value ? value : json_null());
	rc = kv_call(a, frame, &answer);
	json_decref(answer);
	return rc;
}

int agent_kv_del(struct agent *a, const char *key)
{
	json_t *answer;
	int rc;

	if (!key || !*key)
		return fail_with(a, AGENT_EINVAL, "kv.del: empty key");
	rc = kv_call(a, kv_frame("kv.del", "key", key), &answer);
	if (rc == 0 && json_is_false(json_object_get(answer, "value")))
		rc = AGENT_ENOTFOUND;
	json_decref(answer);
	return rc;
}

int agent_kv_list(struct agent *a, const char *prefix, json_t **keys)
{
	json_t *answer;
	int rc;

	*keys = NULL;
	rc = kv_call(a, kv_frame("kv.list", "prefix", prefix ? prefix : ""), &answer);
	if (rc)
		return rc;
	*keys = json_incref(json_object_get(answer, "value"));
	json_decref(answer);
	if (!json_is_array(*keys)) {
		json_decref(*keys);
		*keys = NULL;
		return fail_with(a, AGENT_EHOST, "kv.list: the host's answer holds no key array");
	}
	return 0;
}

/* ---- Logs and config -------------------------------------------------------------------- */

int agent_log(struct agent *a, enum agent_log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	json_t *frame;
	va_list ap, ap2;
	char *msg;
	int n;

	if ((unsigned)level > AGENT_LOG_ERROR)
		level = AGENT_LOG_ERROR;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	msg = malloc(n < 0 ? 1 : (size_t)n + 1);
	if (!msg)
		abort();
	if (n < 0)
		msg[0] = '\0';
	else
		vsnprintf(msg, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	frame = frame_new("log");
	json_object_set_new(frame, "level", json_string(names[level]));
	json_object_set_new(frame, "msg", text_value(msg));
	free(msg);
	return send_frame(a, frame);
}

const char *agent_config(struct agent *a, const char *name)
{
	return json_string_value(json_object_get(json_object_get(a->hello, "config"), name));
}

/* ---- The loop --------------------------------------------------------------------------- */

/* Answers hello: checks the version, calls create, sends ready. Returns 0 to go on. */
static int do_hello(struct agent *a, json_t *frame)
{
	json_int_t version = json_integer_value(json_object_get(frame, "protocol"));
	json_int_t max = json_integer_value(json_object_get(frame, "max_frame_bytes"));

	if (a->hello) {
		protocol_error(a, "a second hello");
		return -1;
	}
	if (version != 1) {
		fprintf(stderr, "agent: the host speaks protocol %lld; this SDK speaks 1\n",
		        (long long)version);
		return -1;
	}
	a->hello = json_incref(frame);
	a->max_out = max > 0 ? (size_t)max : 0;
	if (a->cb->create && a->cb->create(a, frame, a->user) != 0) {
		fprintf(stderr, "agent: the create callback failed\n");
		return -1;
	}
	if (send_frame(a, frame_new("ready")) != 0)
		return -1;
	a->ready = true;
	return 0;
}

/* Handles one queued frame between runs. Returns 0 to go on, 1 to stop after destroy, -1
 * to stop on a failure. */
static int dispatch(struct agent *a, json_t *frame)
{
	switch (frame_validate(frame, FRAME_TO_AGENT, NULL)) {
	case FRAME_HELLO:
		return do_hello(a, frame);
	case FRAME_RUN:
		if (!a->ready) {
			protocol_error(a, "a run before hello");
			return -1;
		}
		do_run(a, frame);
		return a->broken ? -1 : 0;
	case FRAME_DESTROY:
		return 1;
	}
	/* A cancel of a run that already ended. */
	return 0;
}

static int agent_open(struct agent *a, const struct agent_callbacks *cb, void *user)
{
	const char *env = getenv("AGENTHOST_FD");
	char *end;
	long fd = 3;

	memset(a, 0, sizeof(*a));
	if (env) {
		fd = strtol(env, &end, 10);
		if (*env == '\0' || *end != '\0' || fd < 0 || fd > 65535) {
			fprintf(stderr, "agent: AGENTHOST_FD=%s is not a file descriptor\n", env);
			return -1;
		}
	}
	if (fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr,
		        "agent: no host connection on fd %ld: this program is an agenthost agent "
		        "and runs under agenthostd\n",
		        fd);
		return -1;
	}
	/* Programs the agent starts must not inherit (and hold open) the host connection. */
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	a->fd = (int)fd;
	a->cb = cb;
	a->user = user;
	a->queue = json_array();
	a->early_cancels = json_object();
	frame_reader_init(&a->reader, HOST_FRAME_MAX);
	return 0;
}

static void agent_close(struct agent *a)
{
	frame_reader_free(&a->reader);
	json_decref(a->queue);
	json_decref(a->early_cancels);
	json_decref(a->hello);
	json_decref(a->kv_answer);
	close(a->fd);
}

int agent_main(int argc, char **argv, const struct agent_callbacks *cb, void *user)
{
	static const struct agent_callbacks none;
	struct agent a;
	int rc = 0;

	(void)argc;
	(void)argv;
	if (agent_open(&a, cb ? cb : &none, user) < 0)
		return 1;
	while (rc == 0) {
		json_t *frame = next_frame(&a);

		if (!frame)
			break;
		rc = dispatch(&a, frame);
		json_decref(frame);
	}
	if (a.ready && a.cb->destroy)
		a.cb->destroy(&a, a.user);
	agent_close(&a);
	return rc < 0 || a.broken ? 1 : 0;
}
