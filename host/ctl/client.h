/* client.h: agentctl's blocking HTTP client on the libwebsockets client API. One request
 * at a time: send it, service the lws loop until the answer is complete (or the timeout),
 * return. A streaming mode hands each piece of a 2xx body to a callback as it arrives
 * (for the SSE runs of `agentctl run`). lws rather than libcurl so that the project has one
 * HTTP library, the one that will also carry `agentctl attach` over WebSocket. */
#ifndef AGENTHOST_CTL_CLIENT_H
#define AGENTHOST_CTL_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "url.h"

struct ctl_http_client;

/* Called with each piece of a 2xx response body, in order. Returns 0 to go on, non-zero
 * to stop the transfer (ctl_http_request then returns 0 with what it has, and the
 * connection is closed). data is borrowed for the call only. While a body streams, the
 * client's timeout counts from the last piece: a stream may last as long as it goes on
 * sending. */
typedef int (*ctl_http_chunk_fn)(const char *data, size_t len, void *user);

struct ctl_http_request {
	const char *method; /* "GET", "POST", "PUT", "DELETE"; borrowed */
	const char *path;   /* from the root, e.g. "/v1/agents"; already escaped; borrowed */
	const char *body;   /* NULL for none; borrowed for the call */
	size_t body_len;
	const char *content_type;   /* of the body; NULL means application/json */
	const char *accept;         /* NULL means application/json */
	bool no_auth;               /* do not send the token (open routes: /healthz) */
	ctl_http_chunk_fn on_chunk; /* NULL: collect the body into the response */
	void *user;                 /* handed to on_chunk */
	/* NULL, or a flag (set by a signal handler) checked at least every 100 ms while the
	 * request is under way: once it is non-zero the connection is closed and the request
	 * fails with "interrupted". */
	const volatile sig_atomic_t *stop;
};

struct ctl_http_response {
	int status;             /* HTTP status */
	char content_type[128]; /* "" when the daemon sent none */
	char *body;             /* owned; NUL-terminated (not counted in body_len); NULL if none */
	size_t body_len;        /* non-2xx bodies are always collected, even when streaming */
};

/* A client for the daemon at url (copied). token (copied) may be NULL: then no
 * Authorization header is sent. timeout_s bounds each whole request, 0 for none; the
 * TCP connect alone gives up after 10 s. verbose lets lws log to stderr. Never NULL:
 * allocation failure aborts. */
struct ctl_http_client *ctl_http_client_new(const struct ctl_url *url, const char *token,
                                            int timeout_s, bool verbose);

/* Performs req (borrowed). Returns 0 once a whole response (of any status) came, with
 * *resp filled (free its body with ctl_http_response_free); or -1 when there was none, with
 * one line in err such as "cannot reach http://127.0.0.1:8080: Connection refused" or
 * "http://127.0.0.1:8080 did not answer within 300 s". */
int ctl_http_request(struct ctl_http_client *client, const struct ctl_http_request *req,
                     struct ctl_http_response *resp, char *err, size_t errlen);

/* Frees what resp owns (not resp). */
void ctl_http_response_free(struct ctl_http_response *resp);

/* Frees the client and its lws context. NULL is fine. */
void ctl_http_client_free(struct ctl_http_client *client);

#endif
