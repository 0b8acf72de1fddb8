/* http.c: libwebsockets HTTP callbacks → struct http_request → the router, and replies
 * written back in chunks from the writeable callback. */
#include "http.h"
#include "api.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#define REPLY_CHUNK 16384

/* One queued piece of a streamed reply, with lws' headroom before it. */
struct http_chunk {
	struct http_chunk *next;
	size_t len;
	char data[]; /* LWS_PRE bytes, then len bytes */
};

/* Per-connection data: only a pointer to the transport-independent request. */
struct http_conn {
	struct http_request *req;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *const method_names[] = {"GET",   "POST", "PUT",     "DELETE",
                                           "PATCH", "HEAD", "OPTIONS", "OTHER"};

const char *http_method_name(enum http_method m)
{
	return method_names[m];
}

static enum http_method method_of(struct lws *wsi)
{
	char *uri;
	int len;

	switch (lws_http_get_uri_and_method(wsi, &uri, &len)) {
	case LWSHUMETH_GET:
		return HTTP_GET;
	case LWSHUMETH_POST:
		return HTTP_POST;
	case LWSHUMETH_PUT:
		return HTTP_PUT;
	case LWSHUMETH_DELETE:
		return HTTP_DELETE;
	case LWSHUMETH_PATCH:
		return HTTP_PATCH;
	case LWSHUMETH_HEAD:
		return HTTP_HEAD;
	case LWSHUMETH_OPTIONS:
		return HTTP_OPTIONS;
	default:
		return HTTP_OTHER;
	}
}

static char *copy_header(struct lws *wsi, enum lws_token_indexes token)
{
	int len = lws_hdr_total_length(wsi, token);
	char *value;

	if (len <= 0)
		return NULL;
	value = xmalloc((size_t)len + 1);
	if (lws_hdr_copy(wsi, value, len + 1, token) < 0) {
		free(value);
		return NULL;
	}
	return value;
}

static char *copy_custom_header(struct lws *wsi, const char *name)
{
	int len = lws_hdr_custom_length(wsi, name, (int)strlen(name));
	char *value;

	if (len <= 0)
		return NULL;
	value = xmalloc((size_t)len + 1);
	if (lws_hdr_custom_copy(wsi, value, len + 1, name, (int)strlen(name)) < 0) {
		free(value);
		return NULL;
	}
	return value;
}

static void copy_query(struct http_request *req, struct lws *wsi)
{
	char frag[1024];

	for (int i = 0; i < HTTP_MAX_QUERY; i++) {
		if (lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) <= 0)
			break;
		req->query[req->nquery++] = xstrdup(frag);
	}
}

static struct http_request *request_new(struct lws *wsi, const char *path)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	char *length, *encoding;

	req->daemon = lws_context_user(lws_get_context(wsi));
	req->wsi = wsi;
	req->started_us = now_us();
	req->method = method_of(wsi);
	req->path = xstrdup(path);
	copy_query(req, wsi);
	req->authorization = copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	req->content_type = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
	req->accept = copy_header(wsi, WSI_TOKEN_HTTP_ACCEPT);
	req->last_event_id = copy_custom_header(wsi, "last-event-id:");
	length = copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	req->content_length = length ? strtoll(length, NULL, 10) : -1;
	free(length);
	encoding = copy_header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
	req->chunked = encoding && strcasestr(encoding, "chunked");
	free(encoding);
	return req;
}

static void request_free(struct http_request *req)
{
	if (!req)
		return;
	free(req->path);
	for (int i = 0; i < req->nquery; i++)
		free(req->query[i]);
	for (int i = 0; i < HTTP_MAX_PARAMS; i++)
		free(req->params[i]);
	free(req->authorization);
	free(req->content_type);
	free(req->accept);
	free(req->last_event_id);
	free(req->body);
	free(req->reply);
	while (req->stream_head) {
		struct http_chunk *next = req->stream_head->next;
		free(req->stream_head);
		req->stream_head = next;
	}
	free(req);
}

const char *http_query(const struct http_request *req, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < req->nquery; i++)
		if (strncmp(req->query[i], name, n) == 0 && req->query[i][n] == '=')
			return req->query[i] + n + 1;
	return NULL;
}

/* ---- replies */

static void set_reply(struct http_request *req, int status, const char *type, const char *data,
                      size_t len)
{
	if (req->replied)
		return;
	req->replied = true;
	req->status = status;
	req->reply_type = type;
	req->reply = xmalloc(LWS_PRE + len + 1);
	memcpy(req->reply + LWS_PRE, data, len);
	req->reply_len = len;
	if (status >= 100 && status < 600)
		req->daemon->metrics.http_by_status[status]++;
}

void http_reply_text(struct http_request *req, int status, const char *type, char *text, size_t len)
{
	set_reply(req, status, type, text, len);
}

void http_reply_json(struct http_request *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);

	json_decref(body);
	if (!text)
		abort(); /* jansson only fails to dump on allocation failure here */
	set_reply(req, status, "application/json", text, strlen(text));
	free(text);
}

void http_reply_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	utf8_sanitize(message); /* it may quote the path or a name from the client */
	http_reply_json(req, status,
	                json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

void http_reply_empty(struct http_request *req, int status)
{
	set_reply(req, status, NULL, "", 0);
}

json_t *http_body_json(struct http_request *req)
{
	json_error_t jerr;
	json_t *doc;

	if (req->body_len == 0) {
		http_reply_error(req, 400, "bad_request", "the request needs a JSON body");
		return NULL;
	}
	doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		http_reply_error(req, 400, "bad_request",
		                 "the body is not valid JSON: line %d column %d: %s", jerr.line,
		                 jerr.column, jerr.text);
	return doc;
}

void http_defer(struct http_request *req)
{
	req->deferred = true;
}

/* Asks for the writeable callback that sends the reply; frees a request whose client
 * has gone. */
void http_resume(struct http_request *req)
{
	req->deferred = false;
	if (!req->wsi) {
		request_free(req);
		return;
	}
	lws_callback_on_writable(req->wsi);
}

bool http_wants_sse(const struct http_request *req)
{
	return req->accept && strstr(req->accept, "text/event-stream");
}

int http_stream_start(struct http_request *req, int status, const char *type)
{
	if (req->replied)
		return -EPIPE;
	req->replied = true;
	req->streaming = true;
	req->close_after = true; /* no length: the end of the body is the end of the connection */
	req->status = status;
	req->reply_type = type;
	req->daemon->metrics.http_by_status[status]++;
	if (!req->wsi)
		return -EPIPE;
	lws_callback_on_writable(req->wsi);
	return 0;
}

int http_stream_write(struct http_request *req, const char *data, size_t len)
{
	struct http_chunk *c;

	if (!req->streaming || req->stream_ended || !req->wsi)
		return -EPIPE;
	if (req->stream_bytes + len > HTTP_STREAM_CAP) {
		/* A client this far behind is cut off rather than buffered without end. */
		log_warn("http.slow_client", "path=%s queued=%zu", req->path, req->stream_bytes);
		lws_set_timeout(req->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		return -EPIPE;
	}
	c = xmalloc(sizeof(*c) + LWS_PRE + len);
	c->next = NULL;
	c->len = len;
	memcpy(c->data + LWS_PRE, data, len);
	if (req->stream_tail)
		req->stream_tail->next = c;
	else
		req->stream_head = c;
	req->stream_tail = c;
	req->stream_bytes += len;
	lws_callback_on_writable(req->wsi);
	return 0;
}

void http_stream_end(struct http_request *req)
{
	if (!req->streaming || req->stream_ended)
		return;
	req->stream_ended = true;
	if (req->wsi)
		lws_callback_on_writable(req->wsi);
}

static void log_request(struct http_request *req)
{
	log_emit(req->status >= 500 ? LOG_WARN : LOG_DEBUG, "http.request",
	         "method=%s path=%s status=%d us=%lld token=%s", http_method_name(req->method),
	         req->path, req->status, (long long)(now_us() - req->started_us),
	         req->authenticated ? req->who.token_id : "-");
}

static int write_headers(struct lws *wsi, struct http_request *req)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->reply_type,
	                                req->status == 204 || req->streaming
	                                    ? LWS_ILLEGAL_HTTP_CONTENT_LEN
	                                    : (lws_filepos_t)req->reply_len,
	                                &p, end))
		return -1;
	if (req->allow[0] && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
	                                                 (const unsigned char *)req->allow,
	                                                 (int)strlen(req->allow), &p, end))
		return -1;
	if (req->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
	                                 5, &p, end))
		return -1;
	return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* One step of a streamed reply: one queued chunk. Returns -1 to close (at the end). */
static int write_stream(struct lws *wsi, struct http_conn *conn)
{
	struct http_request *req = conn->req;
	struct http_chunk *c = req->stream_head;

	if (c) {
		req->stream_head = c->next;
		if (!req->stream_head)
			req->stream_tail = NULL;
		req->stream_bytes -= c->len;
		int n = lws_write(wsi, (unsigned char *)c->data + LWS_PRE, c->len, LWS_WRITE_HTTP);
		free(c);
		if (n < 0)
			return -1;
	}
	if (req->stream_head || !req->stream_ended) {
		if (req->stream_head)
			lws_callback_on_writable(wsi);
		return 0;
	}
	log_request(req);
	request_free(req);
	conn->req = NULL;
	return -1;
}

/* One step of sending the reply. Returns -1 to close the connection. */
static int write_reply(struct lws *wsi, struct http_conn *conn)
{
	struct http_request *req = conn->req;
	size_t left, n;
	int final;

	if (!req->headers_sent) {
		req->headers_sent = true;
		if (write_headers(wsi, req) < 0)
			return -1;
		if (req->streaming) {
			/* A stream may be quiet for long: no idle timeout (lws_http_mark_sse
			 * is for h2 streams only in lws 4.1). */
			lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
			lws_callback_on_writable(wsi);
			return 0;
		}
		if (req->reply_len > 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	} else {
		left = req->reply_len - req->reply_sent;
		n = left > REPLY_CHUNK ? REPLY_CHUNK : left;
		final = n == left;
		if (lws_write(wsi, (unsigned char *)req->reply + LWS_PRE + req->reply_sent, n,
		              final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
			return -1;
		req->reply_sent += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	log_request(req);
	if (req->body_expected && !req->body_complete) {
		req->reply_written = true; /* on_body_complete() closes */
		return 0;
	}
	bool close_after = req->close_after;
	request_free(req);
	conn->req = NULL;
	if (close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Runs the handler once the body is complete, unless the router already refused. */
static void dispatch(struct lws *wsi, struct http_request *req)
{
	/* lws reports a body completion even for "Content-Length: 0", after the headers
	 * already dispatched: a handler runs once per request. */
	if (req->dispatched)
		return;
	req->dispatched = true;
	if (!req->replied && req->body_too_large)
		http_reply_error(req, 413, "too_large", "the body is larger than %zu bytes",
		                 req->daemon->cfg.max_body);
	if (!req->replied)
		api_handle(req);
	if (req->replied && !req->deferred)
		lws_callback_on_writable(wsi);
}

static void append_body(struct http_request *req, const void *in, size_t len)
{
	size_t max = req->daemon->cfg.max_body;

	if (req->replied || req->body_too_large)
		return; /* refused already: read and drop the rest */
	if (req->body_len + len > max) {
		req->body_too_large = true;
		free(req->body);
		req->body = NULL;
		req->body_len = 0;
		return;
	}
	req->body = xrealloc(req->body, req->body_len + len + 1);
	memcpy(req->body + req->body_len, in, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
}

/* A refused body is read and dropped before the connection closes, so the client (still
 * sending) sees the reply instead of a reset; past this many times the limit it is not
 * worth reading, and the connection closes as soon as the reply is out. */
#define HTTP_DRAIN_FACTOR 64

static int on_headers(struct lws *wsi, struct http_conn *conn, const char *path)
{
	struct http_request *req = request_new(wsi, path);
	int64_t max = (int64_t)req->daemon->cfg.max_body;

	conn->req = req;
	req->body_expected = req->content_length > 0 || req->chunked;
	api_route(req);
	if (!req->replied && req->chunked && req->content_length < 0)
		/* lws 4.1 does not de-chunk request bodies on the server side. */
		http_reply_error(req, 411, "length_required",
		                 "chunked request bodies are not supported: send Content-Length");
	if (!req->replied && req->content_length > max)
		http_reply_error(req, 413, "too_large", "the body is larger than %lld bytes",
		                 (long long)max);
	if (req->replied) {
		/* Refused from the headers alone: answer now, without reading the body. */
		if (req->body_expected) {
			req->close_after = true;
			if (req->content_length > max * HTTP_DRAIN_FACTOR)
				req->body_expected = false; /* do not wait for it */
		}
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (!req->body_expected)
		dispatch(wsi, req);
	return 0;
}

static int on_body_complete(struct lws *wsi, struct http_conn *conn)
{
	struct http_request *req = conn->req;

	if (!req)
		return 0;
	req->body_complete = true;
	if (req->reply_written) {
		/* An early reply went out; the rest of the body is now drained. */
		request_free(req);
		conn->req = NULL;
		return -1;
	}
	dispatch(wsi, req);
	return 0;
}

/* The client has gone. A request someone still holds is handed back to them. */
static void on_closed(struct http_conn *conn)
{
	struct http_request *req = conn->req;

	conn->req = NULL;
	if (!req)
		return;
	req->wsi = NULL;
	if (req->on_gone && (req->deferred || (req->streaming && !req->stream_ended))) {
		req->on_gone(req, req->gone_ctx);
		request_free(req);
	} else if (!req->deferred) {
		request_free(req);
	} /* else: a worker holds it; its http_resume() frees it */
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct http_conn *conn = user;

	/* lws refuses some requests (a NUL in the path, ...) before it allocates the
	 * per-connection data, and still tells us about the close. */
	if (!conn)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		request_free(conn->req); /* a previous request on this connection that never
		                            completed (should not happen) */
		conn->req = NULL;
		return on_headers(wsi, conn, in ? in : "/");
	case LWS_CALLBACK_HTTP_BODY:
		if (conn->req)
			append_body(conn->req, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return on_body_complete(wsi, conn);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!conn->req || !conn->req->replied || conn->req->deferred)
			return 0;
		if (conn->req->streaming && conn->req->headers_sent)
			return write_stream(wsi, conn);
		return write_reply(wsi, conn);
	case LWS_CALLBACK_CLOSED_HTTP:
		on_closed(conn);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocol = {
    .name = "http",
    .callback = callback_http,
    .per_session_data_size = sizeof(struct http_conn),
};

const struct lws_protocols *http_protocol(void)
{
	return &protocol;
}
