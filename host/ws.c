/* ws.c: the session WebSocket, GET /v1/sessions/{id}/ws, subprotocol agenthost.v1
 * (DESIGN §5). Admission (path, token, the session being the caller's) is decided in the
 * filter callback from the headers, before the upgrade completes and before any state is
 * allocated.
 *
 * DESIGN: a connection delivers the session's event log in order through a cursor, the
 * seq of the last event it sent. Delivery starts with the client's `resume {after}` (the
 * cursor is then `after`), or with its first other message, or a second after it
 * connected (the cursor is then the last seq at connection time). An appended event is
 * sent at once when it is the next one; otherwise the connection is behind and catches up
 * from the store, a batch at a time when its socket drains, so a long replay never fills
 * memory and replayed and live events never cross. Writes happen only in the writeable
 * callback; a client that stops reading while live events pile up past WS_QUEUE_CAP is
 * disconnected at once (it can resume later), so nobody else waits for it. */
#include "ws.h"
#include "api.h"
#include "daemon.h"
#include "log.h"
#include "runs.h"
#include "session.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <libwebsockets.h>
#include <string.h>
#include <sys/socket.h>

#define WS_QUEUE_CAP (4 * 1024 * 1024) /* bytes a client may leave unread */
#define WS_MAX_REFS 64                 /* runs awaiting their run.started, per connection */
#define WS_PUMP_BATCH 64               /* events read from the store per catch-up step */
#define WS_PUMP_LOW (256 * 1024)       /* catch up only while less than this is queued */
#define WS_START_US (1000 * 1000)      /* delivery starts by itself after this */

struct ws_msg {
	struct ws_msg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE, then len bytes */
};

struct ws_ref {
	char run[RUN_ID_LEN + 1];
	char *ref;
};

struct ws_conn {
	struct session_watcher w; /* first: the watcher is the connection */
	struct lws *wsi;
	struct daemon *d;
	char session[SESSION_ID_LEN + 1];
	struct auth_identity who;
	struct session *s; /* NULL once the session is gone */
	int64_t watermark; /* last_seq when it connected */
	int64_t cursor;    /* seq of the last event sent, in order */
	int64_t floor;     /* the lowest `after` served: older events come only by asking */
	bool started;      /* delivery has begun */
	bool behind;       /* catching up from the store */
	size_t lag;        /* bytes of events appended since it fell behind, not yet sent */

	struct ws_msg *q_head, *q_tail;
	size_t q_bytes;
	bool closing;

	char *rx; /* a message being assembled from fragments */
	size_t rx_len;
	bool rx_too_big, rx_binary;

	struct ws_ref refs[WS_MAX_REFS];
};

/* Per-connection data: a pointer to the connection, plus what admission found. */
struct ws_pss {
	struct ws_conn *conn;
	char session[SESSION_ID_LEN + 1];
	struct auth_identity who;
};

/* ---- sending */

/* Cut off rather than buffered without end; the client can resume. Not through the queue:
 * a client that does not read would never let it drain. */
static void cut_slow_client(struct ws_conn *c)
{
	if (c->closing)
		return;
	log_warn("ws.slow_client", "session=%s queued=%zu behind=%zu", c->session, c->q_bytes,
	         c->lag);
	c->closing = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void send_text(struct ws_conn *c, const char *text, size_t len)
{
	struct ws_msg *m;

	if (c->closing)
		return;
	if (c->q_bytes + len > WS_QUEUE_CAP) {
		cut_slow_client(c);
		return;
	}
	m = xmalloc(sizeof(*m) + LWS_PRE + len);
	m->next = NULL;
	m->len = len;
	memcpy(m->data + LWS_PRE, text, len);
	if (c->q_tail)
		c->q_tail->next = m;
	else
		c->q_head = m;
	c->q_tail = m;
	c->q_bytes += len;
	lws_callback_on_writable(c->wsi);
}

static void send_json(struct ws_conn *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	send_text(c, text, strlen(text));
	free(text);
	json_decref(msg);
}

static void send_error(struct ws_conn *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error(struct ws_conn *c, const char *code, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	utf8_sanitize(message);
	send_json(c, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "code", code,
	                       "message", message));
}

/* ---- session events */

/* The ref a client gave a run, handed out once with its run.started. */
static char *take_ref(struct ws_conn *c, const char *run)
{
	for (int i = 0; i < WS_MAX_REFS; i++) {
		if (c->refs[i].ref && strcmp(c->refs[i].run, run) == 0) {
			char *ref = c->refs[i].ref;
			c->refs[i].ref = NULL;
			return ref;
		}
	}
	return NULL;
}

/* Sends one event as the log holds it (body), adding the client's ref to the
 * run.started of a run it named. */
static void send_event(struct ws_conn *c, const char *type, const char *run, const char *body)
{
	char *ref = run && strcmp(type, "run.started") == 0 ? take_ref(c, run) : NULL;

	if (ref) {
		json_t *ev = json_loads(body, 0, NULL);
		json_object_set_new(ev, "ref", json_string(ref));
		send_json(c, ev);
		free(ref);
		return;
	}
	send_text(c, body, strlen(body));
}

static int send_stored(const struct store_event *ev, void *ctx)
{
	struct ws_conn *c = ctx;

	size_t len = strlen(ev->body);

	send_event(c, ev->type, ev->run, ev->body);
	c->cursor = ev->seq;
	c->lag -= len < c->lag ? len : c->lag;
	return 0;
}

/* One catch-up step: the next batch after the cursor, from the store. */
static void catch_up(struct ws_conn *c)
{
	int64_t before = c->cursor;

	store_event_list(c->d->store, c->session, c->cursor, WS_PUMP_BATCH, send_stored, c);
	if (c->cursor - before < WS_PUMP_BATCH) {
		c->behind = false; /* reached the end of the log: live from here */
		c->lag = 0;
	}
	lws_callback_on_writable(c->wsi);
}

static void start_delivery(struct ws_conn *c, int64_t after)
{
	int64_t first = 0;

	c->started = true;
	c->cursor = c->floor = after;
	store_event_first_seq(c->d->store, c->session, &first);
	if (first > after + 1) {
		send_json(c, json_pack("{s:s, s:I, s:I}", "type", "events.truncated", "after",
		                       (json_int_t)after, "first_seq", (json_int_t)first));
		c->cursor = first - 1;
	}
	c->behind = true;
	lws_set_timer_usecs(c->wsi, LWS_SET_TIMER_USEC_CANCEL);
	lws_callback_on_writable(c->wsi);
}

static int on_session_event(struct session_watcher *w, struct session *s, const json_t *ev)
{
	struct ws_conn *c = (struct ws_conn *)w;
	int64_t seq = json_integer_value(json_object_get(ev, "seq"));

	(void)s;
	if (!c->started || c->closing)
		return 0; /* the log has it; delivery will read it from there */
	char *body = json_dumps(ev, JSON_COMPACT);
	if (c->behind || seq != c->cursor + 1) {
		/* The log keeps it; but a client this far behind is not reading. */
		c->behind = true;
		c->lag += strlen(body);
		free(body);
		if (c->lag > WS_QUEUE_CAP)
			cut_slow_client(c);
		else
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	send_event(c, json_string_value(json_object_get(ev, "type")),
	           json_string_value(json_object_get(ev, "run")), body);
	free(body);
	c->cursor = seq;
	return 0;
}

static void on_session_gone(struct session_watcher *w, struct session *s)
{
	struct ws_conn *c = (struct ws_conn *)w;

	(void)s;
	c->s = NULL;
	send_error(c, "not_found", "session %s was destroyed", c->session);
	c->closing = true;
	lws_callback_on_writable(c->wsi);
}

/* ---- client messages */

static void do_run(struct ws_conn *c, json_t *msg)
{
	json_t *ref = json_object_get(msg, "ref"), *input = json_object_get(msg, "input");
	char run_id[RUN_ID_LEN + 1], message[512];
	const char *code;
	int slot = -1;

	if (ref && !json_is_string(ref)) {
		send_error(c, "bad_request", "\"ref\" must be a string");
		return;
	}
	for (int i = 0; ref && i < WS_MAX_REFS && slot < 0; i++)
		if (!c->refs[i].ref)
			slot = i;
	if (ref && slot < 0) {
		send_error(c, "too_many", "more than %d runs with a ref wait to start",
		           WS_MAX_REFS);
		return;
	}
	int status =
	    session_run(c->s, input ? input : json_null(), run_id, &code, message, sizeof(message));
	if (status) {
		json_t *err = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "code",
		                        code, "message", message);
		if (ref)
			json_object_set(err, "ref", ref);
		send_json(c, err);
		return;
	}
	if (ref) {
		snprintf(c->refs[slot].run, sizeof(c->refs[slot].run), "%s", run_id);
		c->refs[slot].ref = xstrdup(json_string_value(ref));
	}
	session_kick(c->s);
}

/* Sends events (after, floor] that this connection has not had: a second resume asking
 * for older events than the first. Bounded by what the log keeps. */
static int send_older(const struct store_event *ev, void *ctx)
{
	struct ws_conn *c = ctx;

	if (ev->seq > c->floor)
		return 1;
	send_event(c, ev->type, ev->run, ev->body);
	return 0;
}

static void do_resume(struct ws_conn *c, json_t *msg)
{
	json_t *after = json_object_get(msg, "after");

	if (!json_is_integer(after) || json_integer_value(after) < 0) {
		send_error(c, "bad_request", "\"after\" must be an event seq (an integer >= 0)");
		return;
	}
	int64_t from = json_integer_value(after);
	json_t *info = c->s ? session_json(c->s) : NULL;
	int64_t last = json_integer_value(json_object_get(info, "last_seq"));
	json_decref(info);
	if (from > last)
		from = last; /* nothing is after the end: what comes next is live */
	if (!c->started) {
		start_delivery(c, from);
		return;
	}
	if (from < c->floor) {
		store_event_list(c->d->store, c->session, from, 0, send_older, c);
		c->floor = from;
	}
}

static void on_message(struct ws_conn *c, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *type;

	if (!msg || !json_is_object(msg)) {
		send_error(c, "bad_request",
		           msg ? "a message is a JSON object with a \"type\""
		               : "invalid JSON at line %d column %d: %s",
		           jerr.line, jerr.column, jerr.text);
		json_decref(msg);
		return;
	}
	type = json_string_value(json_object_get(msg, "type"));
	if (!c->started && (!type || strcmp(type, "resume") != 0))
		start_delivery(c, c->watermark);
	if (!c->s && type && strcmp(type, "ping") != 0) {
		send_error(c, "not_found", "session %s was destroyed", c->session);
	} else if (!type) {
		send_error(c, "bad_request", "a message needs a string \"type\"");
	} else if (strcmp(type, "run") == 0) {
		do_run(c, msg);
	} else if (strcmp(type, "cancel") == 0) {
		const char *run = json_string_value(json_object_get(msg, "run"));
		if (!run || session_cancel(c->s, run) < 0)
			send_error(c, "not_found", "no queued or running run %s",
			           run ? run : "(missing \"run\")");
	} else if (strcmp(type, "resume") == 0) {
		do_resume(c, msg);
	} else if (strcmp(type, "ping") == 0) {
		send_json(c, json_pack("{s:s}", "type", "pong"));
	} else {
		send_error(c, "bad_request", "unknown message type \"%s\"", type);
	}
	json_decref(msg);
}

static void on_receive(struct ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
	size_t max = c->d->cfg.max_body;

	if (lws_frame_is_binary(wsi))
		c->rx_binary = true;
	if (!c->rx_too_big && c->rx_len + len > max) {
		c->rx_too_big = true;
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
	}
	if (!c->rx_too_big && !c->rx_binary) {
		c->rx = xrealloc(c->rx, c->rx_len + len + 1);
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return;
	if (c->rx_binary)
		send_error(c, "bad_request", "messages are JSON text frames, not binary");
	else if (c->rx_too_big)
		send_error(c, "too_large", "a message is at most %zu bytes", max);
	else
		on_message(c, c->rx, c->rx_len);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	c->rx_too_big = c->rx_binary = false;
}

/* ---- admission and lifetime */

/* /v1/sessions/{id}/ws → id, or -1. */
static int parse_path(const char *path, char *id, size_t idlen)
{
	const char *prefix = "/v1/sessions/";
	size_t n = strlen(prefix), len;

	if (strncmp(path, prefix, n) != 0)
		return -1;
	path += n;
	len = strcspn(path, "/");
	if (len == 0 || len >= idlen || strcmp(path + len, "/ws") != 0)
		return -1;
	memcpy(id, path, len);
	id[len] = '\0';
	return 0;
}

/* Answers the upgrade request with the API's JSON error and closes. */
static int refuse(struct lws *wsi, unsigned status, const char *code, const char *why)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;
	json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", why);
	char *text = json_dumps(body, JSON_COMPACT);
	size_t len = strlen(text);

	log_debug("ws.refused", "status=%u reason=\"%s\"", status, why);
	/* Written by hand: lws 4.1 answers a refused upgrade as HTTP/1.0, which WebSocket
	 * clients (RFC 6455 needs 1.1) cannot read. The socket is fresh and the reply small. */
	(void)start, (void)end;
	int n = snprintf((char *)p, sizeof(buf) - LWS_PRE,
	                 "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\ncontent-length: "
	                 "%zu\r\nconnection: close\r\n\r\n%s",
	                 status,
	                 status == 400   ? "Bad Request"
	                 : status == 401 ? "Unauthorized"
	                 : status == 503 ? "Service Unavailable"
	                                 : "Not Found",
	                 len, text);
	if (n > 0 && (size_t)n < sizeof(buf) - LWS_PRE &&
	    send(lws_get_socket_fd(wsi), p, (size_t)n, MSG_NOSIGNAL) < 0)
		log_debug("ws.refusal_not_sent", "error=\"%s\"", strerror(errno));
	free(text);
	json_decref(body);
	return -1;
}

/* Decides from the headers alone; allocates nothing. */
static int admit(struct lws *wsi, struct ws_pss *pss)
{
	struct daemon *d = lws_context_user(lws_get_context(wsi));
	char path[512], header[1024], frag[1024];
	const char *secret = NULL;
	struct session *s;

	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) > 0 && !utf8_sanitize(path))
		return refuse(wsi, 400, "bad_request", "the path is not valid UTF-8");
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
	    parse_path(path, pss->session, sizeof(pss->session)) < 0)
		return refuse(wsi, 404, "not_found", "WebSocket is served on /v1/sessions/{id}/ws");
	if (lws_hdr_copy(wsi, header, sizeof(header), WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
		secret = auth_bearer(header);
	for (int i = 0; !secret && i < 16; i++) {
		if (lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) <= 0)
			break;
		if (strncmp(frag, "access_token=", 13) == 0)
			secret = frag + 13;
	}
	if (!secret || auth_check(d->store, secret, &pss->who) < 0)
		return refuse(wsi, 401, "unauthorized",
		              "a valid token is needed (Authorization: Bearer, or ?access_token=)");
	if (session_find(d, pss->session, &pss->who, &s) < 0)
		return refuse(wsi, 404, "not_found", "no such session");
	if (d->metrics.ws_connections >= d->cfg.max_ws)
		return refuse(wsi, 503, "over_capacity",
		              "too many WebSocket connections are open (--max-ws)");
	return 0;
}

static int on_established(struct lws *wsi, struct ws_pss *pss)
{
	struct daemon *d = lws_context_user(lws_get_context(wsi));
	struct ws_conn *c;
	struct session *s;

	if (session_find(d, pss->session, &pss->who, &s) < 0)
		return -1; /* destroyed between admission and now */
	c = xcalloc(1, sizeof(*c));
	c->wsi = wsi;
	c->d = d;
	c->s = s;
	memcpy(c->session, pss->session, sizeof(c->session));
	c->who = pss->who;
	json_t *info = session_json(s);
	c->watermark = json_integer_value(json_object_get(info, "last_seq"));
	json_decref(info);
	c->w.event = on_session_event;
	c->w.gone = on_session_gone;
	session_watch(s, &c->w);
	lws_set_timer_usecs(wsi, WS_START_US);
	pss->conn = c;
	d->metrics.ws_connections++;
	return 0;
}

static void conn_free(struct ws_conn *c)
{
	if (c->s)
		session_unwatch(c->s, &c->w); /* a dropped connection cancels nothing */
	while (c->q_head) {
		struct ws_msg *next = c->q_head->next;
		free(c->q_head);
		c->q_head = next;
	}
	for (int i = 0; i < WS_MAX_REFS; i++)
		free(c->refs[i].ref);
	free(c->rx);
	c->d->metrics.ws_connections--;
	free(c);
}

static int on_writeable(struct ws_conn *c)
{
	struct ws_msg *m;

	if (c->behind && !c->closing && c->q_bytes < WS_PUMP_LOW)
		catch_up(c);
	m = c->q_head;

	if (!m) {
		if (c->closing) {
			lws_close_reason(c->wsi, LWS_CLOSE_STATUS_GOINGAWAY, NULL, 0);
			return -1;
		}
		return 0;
	}
	c->q_head = m->next;
	if (!c->q_head)
		c->q_tail = NULL;
	c->q_bytes -= m->len;
	int n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
	free(m);
	if (n < 0)
		return -1;
	if (c->q_head || c->closing || c->behind)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int callback_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
	struct ws_pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return pss ? admit(wsi, pss) : -1;
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(wsi, pss);
	case LWS_CALLBACK_RECEIVE:
		if (pss && pss->conn)
			on_receive(pss->conn, wsi, in, len);
		return 0;
	case LWS_CALLBACK_TIMER:
		if (pss && pss->conn && !pss->conn->started)
			start_delivery(pss->conn, pss->conn->watermark);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pss && pss->conn ? on_writeable(pss->conn) : 0;
	case LWS_CALLBACK_CLOSED:
		if (pss && pss->conn) {
			conn_free(pss->conn);
			pss->conn = NULL;
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocol = {
    .name = "agenthost.v1",
    .callback = callback_ws,
    .per_session_data_size = sizeof(struct ws_pss),
    .rx_buffer_size = 65536,
};

const struct lws_protocols *ws_protocol(void)
{
	return &protocol;
}
