/* api.c: the route table and the router. Admission (route, method, token, content type)
 * is decided from the headers alone, before any body is read or state allocated. */
#include "api.h"
#include "daemon.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <string.h>

static const struct route routes[] = {
    {HTTP_GET, "/healthz", ROUTE_OPEN, false, false, api_healthz},
    {HTTP_GET, "/metrics", ROUTE_OPEN, false, false, api_metrics},
    {HTTP_GET, "/v1/agents", ROUTE_CLIENT, false, false, api_agents_list},
    {HTTP_POST, "/v1/agents", ROUTE_ADMIN, true, false, api_agents_install},
    {HTTP_GET, "/v1/agents/{}", ROUTE_CLIENT, false, false, api_agents_get},
    {HTTP_DELETE, "/v1/agents/{}", ROUTE_ADMIN, false, false, api_agents_uninstall},
    {HTTP_GET, "/v1/agents/{}/config", ROUTE_ADMIN, false, false, api_config_get},
    {HTTP_PUT, "/v1/agents/{}/config", ROUTE_ADMIN, true, false, api_config_put},
    {HTTP_POST, "/v1/agents/{}/invoke", ROUTE_CLIENT, true, false, api_invoke},
    {HTTP_GET, "/v1/agents/{}/invoke/{}", ROUTE_CLIENT, false, false, api_invoke_result},
    {HTTP_POST, "/v1/agents/{}/sessions", ROUTE_CLIENT, true, false, api_sessions_create},
    {HTTP_GET, "/v1/sessions", ROUTE_CLIENT, false, false, api_sessions_list},
    {HTTP_GET, "/v1/sessions/{}", ROUTE_CLIENT, false, false, api_sessions_get},
    {HTTP_DELETE, "/v1/sessions/{}", ROUTE_CLIENT, false, false, api_sessions_destroy},
    {HTTP_POST, "/v1/sessions/{}/runs", ROUTE_CLIENT, true, false, api_runs_create},
    {HTTP_GET, "/v1/sessions/{}/runs/{}", ROUTE_CLIENT, false, false, api_runs_get},
    {HTTP_POST, "/v1/sessions/{}/runs/{}/cancel", ROUTE_CLIENT, true, false, api_runs_cancel},
    {HTTP_GET, "/v1/sessions/{}/events", ROUTE_CLIENT, false, true, api_sessions_events},
    {HTTP_GET, "/v1/sessions/{}/ws", ROUTE_CLIENT, false, true, api_sessions_ws_plain},
    {HTTP_GET, "/v1/sessions/{}/logs", ROUTE_CLIENT, false, false, api_sessions_logs},
    {HTTP_GET, "/v1/sessions/{}/state", ROUTE_CLIENT, false, false, api_state_list},
    {HTTP_GET, "/v1/sessions/{}/state/{}", ROUTE_CLIENT, false, false, api_state_get},
    {HTTP_PUT, "/v1/sessions/{}/state/{}", ROUTE_CLIENT, true, false, api_state_put},
    {HTTP_DELETE, "/v1/sessions/{}/state/{}", ROUTE_CLIENT, false, false, api_state_delete},
    {HTTP_GET, "/v1/tokens", ROUTE_ADMIN, false, false, api_tokens_list},
    {HTTP_POST, "/v1/tokens", ROUTE_ADMIN, true, false, api_tokens_create},
    {HTTP_DELETE, "/v1/tokens/{}", ROUTE_ADMIN, false, false, api_tokens_revoke},
    {HTTP_POST, "/v1/backup", ROUTE_ADMIN, true, false, api_backup},
};

/* Matches path against pattern; on success stores the {} captures in params (new
 * strings, caller frees) and returns true. */
static bool match(const char *pattern, const char *path, char *params[HTTP_MAX_PARAMS])
{
	int n = 0;

	while (*pattern && *path) {
		if (pattern[0] == '{' && pattern[1] == '}') {
			size_t len = strcspn(path, "/");
			if (len == 0 || n == HTTP_MAX_PARAMS)
				goto fail;
			params[n] = xmalloc(len + 1);
			memcpy(params[n], path, len);
			params[n++][len] = '\0';
			pattern += 2;
			path += len;
		} else if (*pattern++ != *path++) {
			goto fail;
		}
	}
	if (*pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0))
		return true;
fail:
	for (int i = 0; i < n; i++) {
		free(params[i]);
		params[i] = NULL;
	}
	return false;
}

/* Finds the route; fills req->allow with the methods the path takes when only the
 * method is wrong. */
static const struct route *find_route(struct http_request *req)
{
	char *scratch[HTTP_MAX_PARAMS] = {0};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (routes[i].method == req->method &&
		    match(routes[i].pattern, req->path, req->params))
			return &routes[i];
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, req->path, scratch))
			continue;
		for (int j = 0; j < HTTP_MAX_PARAMS; j++) {
			free(scratch[j]);
			scratch[j] = NULL;
		}
		size_t used = strlen(req->allow);
		snprintf(req->allow + used, sizeof(req->allow) - used, "%s%s", used ? ", " : "",
		         http_method_name(routes[i].method));
	}
	return NULL;
}

/* Bodies are JSON; curl's default form type and text/plain are accepted as JSON too,
 * since clients commonly send JSON under them. */
static bool content_type_ok(const char *type)
{
	static const char *const ok[] = {"application/json", "text/plain",
	                                 "application/x-www-form-urlencoded"};
	size_t len;

	if (!type || !type[0])
		return true;
	len = strcspn(type, "; ");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (len == strlen(ok[i]) && strncasecmp(type, ok[i], len) == 0)
			return true;
	/* application/<anything>+json */
	return strncasecmp(type, "application/", 12) == 0 && len > 17 &&
	       strncasecmp(type + len - 5, "+json", 5) == 0;
}

static int authenticate(struct http_request *req, const struct route *route)
{
	const char *secret = auth_bearer(req->authorization);

	if (!secret && route->query_token)
		secret = http_query(req, "access_token");
	int rc;

	if (!secret) {
		http_reply_error(
		    req, 401, "unauthorized",
		    route->query_token
		        ? "this route needs an \"Authorization: Bearer TOKEN\" header or "
		          "?access_token=TOKEN"
		        : "this route needs an \"Authorization: Bearer TOKEN\" header");
		return -1;
	}
	rc = auth_check(req->daemon->store, secret, &req->who);
	if (rc == -EACCES) {
		http_reply_error(req, 401, "unauthorized", "the token is not valid (revoked?)");
		return -1;
	}
	if (rc < 0) {
		api_store_failed(req);
		return -1;
	}
	req->authenticated = true;
	if (!ratelimit_allow(req->who.token_id, req->daemon->cfg.rate_limit)) {
		http_reply_error(req, 429, "too_many",
		                 "more than %lld requests per second for this token (--rate-limit)",
		                 (long long)req->daemon->cfg.rate_limit);
		return -1;
	}
	if (route->access == ROUTE_ADMIN && !req->who.admin) {
		http_reply_error(req, 403, "forbidden", "this route needs the admin token");
		return -1;
	}
	return 0;
}

int api_route(struct http_request *req)
{
	const struct route *route;

	if (!utf8_sanitize(req->path)) {
		http_reply_error(req, 400, "bad_request", "the path is not valid UTF-8: %s",
		                 req->path);
		return -1;
	}
	route = find_route(req);
	if (!route) {
		if (req->allow[0])
			http_reply_error(req, 405, "method_not_allowed",
			                 "%s is not allowed on %s (allowed: %s)",
			                 http_method_name(req->method), req->path, req->allow);
		else
			http_reply_error(req, 404, "not_found", "no route %s", req->path);
		return -1;
	}
	if (route->access != ROUTE_OPEN && authenticate(req, route) < 0)
		return -1;
	if (route->has_body && !content_type_ok(req->content_type)) {
		http_reply_error(req, 415, "unsupported_media_type",
		                 "the body must be JSON, not %s", req->content_type);
		return -1;
	}
	req->route = route;
	return 0;
}

void api_handle(struct http_request *req)
{
	if (req->route)
		req->route->handle(req);
}

void api_store_failed(struct http_request *req)
{
	http_reply_error(req, 500, "internal", "state store: %s", store_errmsg(req->daemon->store));
}
