/* http.h: the HTTP transport. It turns libwebsockets' HTTP callbacks into one
 * struct http_request per request (headers copied, body collected up to a limit) and
 * writes the reply set on it, in chunks, from the writeable callback only. What a request
 * means is decided by the router (api.h); the transport knows no routes.
 *
 * Lifetime: a request is allocated when its headers arrive and freed when its reply has
 * been written, or when the connection closes — except while it is deferred (a worker is
 * computing the reply), in which case http_resume() frees it if the client has gone. */
#ifndef AGENTHOST_HTTP_H
#define AGENTHOST_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct daemon;
struct lws;
struct lws_protocols;
struct route;
struct http_chunk;

enum http_method {
	HTTP_GET,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_PATCH,
	HTTP_HEAD,
	HTTP_OPTIONS,
	HTTP_OTHER,
};

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_QUERY 16

struct http_request {
	struct daemon *daemon;
	struct lws *wsi; /* NULL once the client has gone */
	enum http_method method;
	char *path;                  /* decoded path without the query */
	char *query[HTTP_MAX_QUERY]; /* "name=value" fragments, decoded */
	int nquery;
	char *authorization; /* header values, NULL when absent */
	char *content_type;
	char *accept;
	char *last_event_id;    /* SSE resume header */
	int64_t content_length; /* -1 when absent */
	bool chunked;           /* Transfer-Encoding: chunked */
	int64_t started_us;

	/* Filled by the router. */
	const struct route *route;
	char *params[HTTP_MAX_PARAMS]; /* path captures, e.g. the {name} of /v1/agents/{name} */
	struct auth_identity who;
	bool authenticated;

	/* The body, up to the daemon's limit; past it the rest is read and dropped. */
	char *body;
	size_t body_len;
	bool body_expected;
	bool dispatched; /* the handler has run */
	bool body_complete;
	bool body_too_large;

	/* The reply. */
	bool replied;
	bool deferred;
	int status;
	const char *reply_type;
	char *reply; /* LWS_PRE bytes of headroom, then reply_len bytes */
	size_t reply_len, reply_sent;
	char allow[64]; /* Allow header for 405 */
	bool headers_sent;
	bool close_after;   /* the body was not read: the connection cannot be reused */
	bool reply_written; /* sent, waiting only for the rest of the body to drain */

	/* A streamed reply (SSE): chunks queued by http_stream_write, sent in order. */
	bool streaming, stream_ended;
	struct http_chunk *stream_head, *stream_tail;
	size_t stream_bytes;

	/* Told once if the client goes away while the request is deferred or streaming;
	 * the request is freed right after. */
	void (*on_gone)(struct http_request *req, void *ctx);
	void *gone_ctx;
};

/* The lws protocol entry serving HTTP; its user data is the daemon. */
const struct lws_protocols *http_protocol(void);

/* Replies. Each sets the reply once; later calls are ignored. body is stolen. */
void http_reply_json(struct http_request *req, int status, json_t *body);
void http_reply_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_reply_empty(struct http_request *req, int status);
void http_reply_text(struct http_request *req, int status, const char *type, char *text,
                     size_t len); /* text is copied */

/* The handler will reply later, from the event loop thread, then call http_resume(). */
void http_defer(struct http_request *req);
void http_resume(struct http_request *req);

/* Streaming: starts a reply of unknown length (headers go out at once, the connection
 * closes after http_stream_end), queues chunks (copied), ends it. A client that reads
 * so slowly that more than HTTP_STREAM_CAP bytes wait is disconnected (on_gone is
 * called). All return -EPIPE once the client has gone. */
#define HTTP_STREAM_CAP (4 * 1024 * 1024)
int http_stream_start(struct http_request *req, int status, const char *type);
int http_stream_write(struct http_request *req, const char *data, size_t len);
void http_stream_end(struct http_request *req);

/* Whether the client asked for text/event-stream. */
bool http_wants_sse(const struct http_request *req);

/* The value of query parameter name, or NULL (borrowed from req). */
const char *http_query(const struct http_request *req, const char *name);

/* The body parsed as JSON (new reference). On failure replies 400 naming the problem
 * and returns NULL. */
json_t *http_body_json(struct http_request *req);

const char *http_method_name(enum http_method m);

#endif
