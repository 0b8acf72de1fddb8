/* ws_fuzz.c: libFuzzer target for the session WebSocket (host/ws.c): admission, message
 * assembly from fragments, every client message (run, cancel, resume, ping, anything
 * else), event delivery and the send queue, driven through ws_protocol()'s real callback
 * with fake_lws standing for the socket and fake agents answering runs (tests/fuzz/host).
 * The input is:
 *
 *   TARGET                 the upgrade request's path and query, e.g.
 *                            /v1/sessions/{s}/ws?access_token={client}
 *   Name: value            headers (Authorization)
 *                          an empty line
 *   MESSAGE                one message per line, answered before the next line (0x1c
 *   ...                      separates messages received back to back); 0x1f splits a
 *                            message into fragments, a leading 0x1e sends it as binary;
 *                            a line of just 0x1d fires the timer that starts delivery;
 *                            lines after the 32nd are ignored
 *
 * A refused upgrade must be answered with a JSON error. Every message the daemon sends
 * must be a JSON object with a string "type" (errors as {"type": "error", "error": {"code",
 * "message"}}); no event may be sent twice on one connection; and once everything is at
 * rest, a connection that has begun delivery must have been sent every event from the
 * first it got to the newest (none skipped, save those the log no longer keeps). */
#include "fake_agent.h"
#include "fake_lws.h"
#include "fuzz.h"
#include "harness.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "ws.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SEQ 4096
#define MAX_LINES 32 /* lines of an input that are used: longer ones only slow it down */

struct client {
	char session[SESSION_ID_LEN + 1];
	bool seen[MAX_SEQ]; /* event seqs received */
	int64_t min_seq, max_seq;
	int messages;
};

static void on_message(struct fake_conn *c, const char *data, size_t len)
{
	struct client *cl = c->ctx;
	json_t *msg = json_loadb(data, len, 0, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	json_t *seq = json_object_get(msg, "seq");

	if (getenv("FUZZ_VERBOSE")) /* to see what the seeds do */
		fprintf(stderr, "<- %.*s\n", (int)(len > 300 ? 300 : len), data);
	REQUIRE(json_is_object(msg) && type);
	cl->messages++;
	if (strcmp(type, "error") == 0) {
		json_t *error = json_object_get(msg, "error");
		REQUIRE(json_is_string(json_object_get(error, "code")));
		REQUIRE(json_is_string(json_object_get(error, "message")));
	} else if (seq) {
		json_int_t n = json_integer_value(seq);
		REQUIRE(json_is_integer(seq) && n >= 1 && n < MAX_SEQ);
		REQUIRE(!cl->seen[n]); /* exactly once */
		cl->seen[n] = true;
		if (!cl->min_seq || n < cl->min_seq)
			cl->min_seq = n;
		if (n > cl->max_seq)
			cl->max_seq = n;
	}
	json_decref(msg);
}

/* The upgrade was refused: the client must have been told why, as JSON. */
static void check_refusal(struct fake_conn *c, int peer)
{
	char buf[2048];
	ssize_t n = recv(peer, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n > 0) { /* written on the socket by hand */
		buf[n] = '\0';
		REQUIRE(strncmp(buf, "HTTP/1.1 ", 9) == 0);
		char *body = strstr(buf, "\r\n\r\n");
		REQUIRE(body);
		json_t *doc = json_loads(body + 4, 0, NULL);
		REQUIRE(json_is_string(json_object_get(json_object_get(doc, "error"), "code")));
		json_decref(doc);
	} else { /* through lws' header helpers */
		REQUIRE(c->headers_done && c->status >= 400);
		json_t *doc = json_loadb(c->body, c->body_len, 0, NULL);
		REQUIRE(json_is_string(json_object_get(json_object_get(doc, "error"), "code")));
		json_decref(doc);
	}
}

/* ---- one connection */

struct ws {
	struct fake_conn c;
	void *pss;
	bool closed;
};

static int callback(struct ws *ws, enum lws_callback_reasons reason, void *in, size_t len)
{
	return ws_protocol()->callback(fake_wsi(&ws->c), reason, ws->pss, in, len);
}

/* Runs the agents and the writeable callbacks until nothing moves. */
static void settle(struct ws *ws)
{
	for (int rounds = 0;; rounds++) {
		REQUIRE(rounds < 100000);
		fake_agents_run();
		if (ws->c.killed)
			ws->closed = true;
		if (!ws->c.writable || ws->closed)
			return;
		ws->c.writable = false;
		if (callback(ws, LWS_CALLBACK_SERVER_WRITEABLE, NULL, 0))
			ws->closed = true;
	}
}

/* One message, in fragments. */
static void deliver_message(struct ws *ws, char *line, size_t len)
{
	bool binary = len > 0 && line[0] == 0x1e;

	if (binary) {
		line++;
		len--;
	}
	for (;;) {
		char *sep = memchr(line, 0x1f, len);
		size_t n = sep ? (size_t)(sep - line) : len;
		ws->c.binary = binary;
		ws->c.final = !sep;
		callback(ws, LWS_CALLBACK_RECEIVE, line, n);
		if (!sep)
			break;
		line += n + 1;
		len -= n + 1;
	}
}

/* One line of input: the timer, or messages (separated by 0x1c) received back to back,
 * before anything else runs. */
static void deliver(struct ws *ws, char *line, size_t len)
{
	if (len == 1 && line[0] == 0x1d) {
		if (ws->c.timer) {
			ws->c.timer = false;
			callback(ws, LWS_CALLBACK_TIMER, NULL, 0);
		}
		return;
	}
	for (;;) {
		char *sep = memchr(line, 0x1c, len);
		size_t n = sep ? (size_t)(sep - line) : len;
		deliver_message(ws, line, n);
		if (!sep)
			break;
		line += n + 1;
		len -= n + 1;
	}
}

/* Every event from the first this client got to the newest must have reached it. */
static void check_no_gap(const struct client *cl)
{
	struct store_session row = {0};
	int64_t first = 0;

	if (!cl->min_seq || store_session_get(H.d.store, cl->session, &row) < 0)
		return;
	REQUIRE(store_event_first_seq(H.d.store, cl->session, &first) == 0);
	REQUIRE(cl->max_seq <= row.last_seq);
	for (int64_t s = cl->min_seq; s <= row.last_seq && s < MAX_SEQ; s++)
		if (!cl->seen[s] && s >= first) {
			fprintf(stderr, "event %lld of %lld never sent (sent from %lld)\n",
			        (long long)s, (long long)row.last_seq, (long long)cl->min_seq);
			REQUIRE(!"no event is skipped");
		}
	store_session_clear(&row);
}

static void set_header(struct fake_conn *c, char *line)
{
	if (strncasecmp(line, "authorization:", 14) == 0) {
		line += 14;
		while (*line == ' ')
			line++;
		c->authorization = line;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *nl = memchr(data, '\n', size), *p;
	struct client cl = {.min_seq = 0};
	struct ws ws = {.closed = false};
	char *target, *headers, *query;
	int sv[2];

	harness_init();
	harness_reset();
	if (!nl)
		return 0;
	target = harness_expand((const char *)data, (size_t)(nl - data));
	for (p = nl + 1; p < end && *p != '\n';) {
		const uint8_t *next = memchr(p, '\n', (size_t)(end - p));
		p = next ? next + 1 : end;
	}
	headers = harness_expand((const char *)nl + 1, (size_t)(p - nl - 1));
	p = p < end ? p + 1 : end;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	ws.c = (struct fake_conn){.method = fake_method("GET"), .fd = sv[0], .declared = -1};
	ws.c.on_message = on_message;
	ws.c.ctx = &cl;
	if ((query = strchr(target, '?'))) {
		*query++ = '\0';
		for (char *arg = strtok(query, "&"); arg && ws.c.nargs < FAKE_MAX_ARGS;
		     arg = strtok(NULL, "&"))
			ws.c.args[ws.c.nargs++] = arg;
	}
	ws.c.uri = target;
	for (char *line = strtok(headers, "\n"); line; line = strtok(NULL, "\n"))
		set_header(&ws.c, line);
	ws.pss = xcalloc(1, ws_protocol()->per_session_data_size);

	if (callback(&ws, LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION, NULL, 0)) {
		check_refusal(&ws.c, sv[1]);
	} else if (callback(&ws, LWS_CALLBACK_ESTABLISHED, NULL, 0) == 0) {
		/* Admission passed: the path names the session. */
		const char *id = target + strlen("/v1/sessions/");
		snprintf(cl.session, sizeof(cl.session), "%.*s", (int)strcspn(id, "/"), id);
		for (int lines = 0; p < end && !ws.closed && lines < MAX_LINES; lines++) {
			const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((eol ? eol : end) - p);
			char *line = xmalloc(len + 1);
			memcpy(line, p, len);
			deliver(&ws, line, len);
			free(line);
			settle(&ws);
			p += len + 1;
		}
		if (!ws.closed)
			check_no_gap(&cl);
	}
	callback(&ws, LWS_CALLBACK_CLOSED, NULL, 0);
	fake_agents_run();

	close(sv[0]);
	close(sv[1]);
	fake_conn_clear(&ws.c);
	free(ws.pss);
	free(headers);
	free(target);
	return 0;
}
