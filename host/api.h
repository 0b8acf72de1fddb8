/* api.h: the client API of DESIGN §5 as a table of routes. The router matches a
 * request's method and path, checks its token and content type before any body is read,
 * and later runs the route's handler. Handlers live in api_<resource>.c. */
#ifndef AGENTHOST_API_H
#define AGENTHOST_API_H

#include "http.h"

enum route_access {
	ROUTE_OPEN,   /* no token: /healthz, /metrics */
	ROUTE_CLIENT, /* any live token */
	ROUTE_ADMIN,  /* the admin token only */
};

struct route {
	enum http_method method;
	const char *pattern; /* "/v1/agents/{}" : {} captures one segment */
	enum route_access access;
	bool has_body;
	bool query_token; /* may authenticate with ?access_token= (SSE, WebSocket) */
	void (*handle)(struct http_request *req);
};

/* Called once the headers are in: resolves the route, checks auth, method and content
 * type. Replies (and returns -1) when the request is refused; returns 0 otherwise. */
int api_route(struct http_request *req);

/* Called once the body is complete (or at once for body-less requests). */
void api_handle(struct http_request *req);

/* Route handlers, by resource. */
void api_healthz(struct http_request *req);
void api_metrics(struct http_request *req);
void api_agents_list(struct http_request *req);
void api_agents_get(struct http_request *req);
void api_agents_install(struct http_request *req);
void api_agents_uninstall(struct http_request *req);
void api_config_get(struct http_request *req);
void api_config_put(struct http_request *req);
void api_invoke(struct http_request *req);
void api_invoke_result(struct http_request *req);
void api_sessions_create(struct http_request *req);
void api_sessions_list(struct http_request *req);
void api_sessions_get(struct http_request *req);
void api_sessions_destroy(struct http_request *req);
void api_sessions_events(struct http_request *req);
void api_sessions_logs(struct http_request *req);
void api_sessions_ws_plain(struct http_request *req);
void api_runs_create(struct http_request *req);
void api_runs_get(struct http_request *req);
void api_runs_cancel(struct http_request *req);
void api_state_list(struct http_request *req);
void api_state_get(struct http_request *req);
void api_state_put(struct http_request *req);
void api_state_delete(struct http_request *req);
void api_tokens_create(struct http_request *req);
void api_tokens_list(struct http_request *req);
void api_tokens_revoke(struct http_request *req);
void api_backup(struct http_request *req);

/* The store error reply shared by handlers: 500 internal with the store's message. */
void api_store_failed(struct http_request *req);

#endif
