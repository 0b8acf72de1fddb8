/* api_tokens.c: client token management (admin only). The secret is shown once, at
 * creation; the store keeps its hash. */
#include "api.h"
#include "daemon.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

static json_t *token_json(const struct store_token *t)
{
	char at[32];

	return json_pack("{s:s, s:s, s:b, s:s}", "id", t->id, "name", t->name, "admin", t->admin,
	                 "created_at", time_rfc3339(t->created_at, at, sizeof(at)));
}

static bool token_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isprint((unsigned char)name[i]))
			return false;
	return true;
}

void api_tokens_create(struct http_request *req)
{
	json_t *body = http_body_json(req), *name;
	char secret[AUTH_SECRET_LEN + 1];
	struct store_token row;
	const char *key;
	json_t *value;

	if (!body)
		return;
	json_object_foreach(body, key, value)
	{
		if (strcmp(key, "name") != 0) {
			http_reply_error(req, 400, "bad_request", "unknown field \"%s\"", key);
			json_decref(body);
			return;
		}
	}
	name = json_object_get(body, "name");
	if (!json_is_string(name) || !token_name_ok(json_string_value(name))) {
		http_reply_error(req, 400, "bad_request",
		                 "\"name\" must be a string of 1 to 64 printable characters");
		json_decref(body);
		return;
	}
	if (auth_token_create(req->daemon->store, json_string_value(name), secret, &row) < 0) {
		json_decref(body);
		api_store_failed(req);
		return;
	}
	json_t *out = token_json(&row);
	json_object_set_new(out, "token", json_string(secret));
	http_reply_json(req, 201, out);
	store_token_clear(&row);
	json_decref(body);
}

static int add_token(const struct store_token *t, void *ctx)
{
	json_array_append_new(ctx, token_json(t));
	return 0;
}

void api_tokens_list(struct http_request *req)
{
	json_t *list = json_array();

	if (store_token_list(req->daemon->store, add_token, list) < 0) {
		json_decref(list);
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "tokens", list));
}

void api_tokens_revoke(struct http_request *req)
{
	struct store *st = req->daemon->store;
	const char *id = req->params[0];
	struct store_token row = {0};
	int rc = store_token_get(st, id, &row);

	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "no token %s", id);
		return;
	}
	if (rc < 0) {
		api_store_failed(req);
		return;
	}
	bool admin = row.admin;
	store_token_clear(&row);
	if (admin) {
		http_reply_error(
		    req, 403, "forbidden",
		    "the admin token cannot be revoked; to rotate it, stop the daemon, "
		    "delete STATE/admin.token and start again");
		return;
	}
	if (store_token_delete(st, id) < 0) {
		api_store_failed(req);
		return;
	}
	auth_forget(id);
	http_reply_empty(req, 204);
}
