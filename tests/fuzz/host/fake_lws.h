/* fake_lws.h: a test double of the libwebsockets calls the daemon's transports make
 * (host/http.c, host/ws.c), so that fuzz targets drive their real lws callbacks without a
 * socket. The targets link with --wrap=lws_... (tests/fuzz/CMakeLists.txt, HOST_WRAPS):
 * every call the daemon's code makes to one of those functions lands here, with a
 * struct fake_conn standing for the struct lws. The target sets the request side of the
 * connection (method, path, headers, the WebSocket frame flags) and reads what the
 * daemon wrote (status, headers, body, WebSocket messages). */
#ifndef AGENTHOST_FAKE_LWS_H
#define AGENTHOST_FAKE_LWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws;

#define FAKE_MAX_ARGS 16

/* One connection. Strings are borrowed from the target; NULL means absent. */
struct fake_conn {
	/* The request. */
	int method;                      /* LWSHUMETH_GET, ... */
	const char *uri;                 /* the decoded path, without the query */
	const char *args[FAKE_MAX_ARGS]; /* the query's "name=value" fragments */
	int nargs;
	const char *authorization, *content_type, *accept, *content_length, *transfer_encoding,
	    *last_event_id, *upgrade;

	int fd; /* what lws_get_socket_fd returns: a socketpair end, or -1 */

	/* The WebSocket fragment being received. */
	bool binary, final;

	/* What the daemon asked of the connection. */
	bool writable;    /* lws_callback_on_writable since the target last cleared it */
	bool killed;      /* lws_set_timeout(..., LWS_TO_KILL_*) */
	bool completed;   /* lws_http_transaction_completed */
	bool timer;       /* lws_set_timer_usecs armed */
	int close_status; /* lws_close_reason, 0 if none */

	/* What the daemon wrote. */
	unsigned status;  /* lws_add_http_common_headers */
	char type[128];   /* its content type ("" for none) */
	int64_t declared; /* its content length, -1 when none */
	bool headers_done, final_written;
	int header_calls; /* common headers added; more than one is a bug */
	char *body;       /* every HTTP body byte written, NUL-terminated */
	size_t body_len;
	/* Called for every WebSocket text message written (data borrowed). */
	void (*on_message)(struct fake_conn *c, const char *data, size_t len);
	void *ctx;
};

/* The struct lws the daemon's code sees for c. */
struct lws *fake_wsi(struct fake_conn *c);

/* What lws_context_user() returns: the daemon. */
void fake_lws_set_user(void *user);

/* Frees what the connection collected (not the struct). */
void fake_conn_clear(struct fake_conn *c);

/* The method named by text ("GET", ...), as lws would report it; unknown names give an
 * unknown method. */
int fake_method(const char *text);

#endif
