/* kv_fuzz.c: libFuzzer target for session key-value state, from both sides: the agent's
 * kv.* frames (host/session.c, handle_kv) and the client's state routes (host/
 * api_sessions.c), over the store (host/store.c) of the harness daemon. Each input runs in
 * a new session of fz-sess, created through POST /v1/agents/fz-sess/sessions, whose agent
 * is a fake (tests/fuzz/host/fake_agent.h). The input is lines:
 *
 *   {"t":"kv.set","req":1,"key":"k","value":...}   a frame the agent sends (kv.* only;
 *                                                   others, and lines that are not frames,
 *                                                   are skipped: tests/fuzz/frame covers them)
 *   PUT KEY JSON          PUT /v1/sessions/ID/state/KEY with body JSON
 *   GET KEY | DEL KEY     GET or DELETE /v1/sessions/ID/state/KEY
 *   LIST                  GET /v1/sessions/ID/state
 *
 * A model (a JSON object) says what the state must be. Every operation must answer as the
 * model says (docs/protocol.md for kv.result, docs/http.md for the routes): what one side
 * writes the other reads back equal, lists come in byte order, and bad keys are refused
 * without a change. */
#include "fake_agent.h"
#include "fake_lws.h"
#include "frame.h"
#include "fuzz.h"
#include "harness.h"
#include "session.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct kv_run {
	char id[SESSION_ID_LEN + 1];
	struct fake_agent *agent;
	json_t *model; /* key -> value */
};

/* ---- the agent's side */

static bool key_ok(const char *key)
{
	return key && key[0] && strlen(key) <= SESSION_KV_KEY_MAX;
}

static int by_bytes(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The model's keys that start with prefix, in byte order (the store's BINARY order). */
static json_t *model_keys(json_t *model, const char *prefix)
{
	const char **keys = xcalloc(json_object_size(model) + 1, sizeof(*keys));
	json_t *value, *out = json_array();
	const char *key;
	size_t n = 0;

	json_object_foreach(model, key, value)
	{
		if (strncmp(key, prefix, strlen(prefix)) == 0)
			keys[n++] = key;
	}
	qsort(keys, n, sizeof(*keys), by_bytes);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(out, json_string(keys[i]));
	free(keys);
	return out;
}

static void check_refused(json_t *result, const char *code)
{
	REQUIRE(json_is_false(json_object_get(result, "ok")));
	REQUIRE(!json_object_get(result, "value"));
	REQUIRE(strcmp(json_string_value(json_object_get(json_object_get(result, "error"), "code")),
	               code) == 0);
}

/* Sends one kv.* frame and checks its kv.result against the model. */
static void agent_kv(struct kv_run *run, json_t *frame, int kind)
{
	const char *key = json_string_value(json_object_get(frame, "key"));
	json_t *result, *value;

	REQUIRE(fake_agent_send(run->agent, frame) == kind);
	result = fake_agent_take(run->agent, "kv.result");
	REQUIRE(result); /* every request is answered, at once */
	REQUIRE(json_equal(json_object_get(result, "req"), json_object_get(frame, "req")));
	REQUIRE(!fake_agent_take(run->agent, "kv.result"));
	value = json_object_get(result, "value");
	if (kind != FRAME_KV_LIST && !key_ok(key)) {
		check_refused(result, "invalid_key");
		json_decref(result);
		return;
	}
	REQUIRE(json_is_true(json_object_get(result, "ok")));
	switch (kind) {
	case FRAME_KV_SET:
		REQUIRE(!value);
		json_object_set(run->model, key, json_object_get(frame, "value"));
		break;
	case FRAME_KV_GET: {
		json_t *want = json_object_get(run->model, key);
		REQUIRE(want ? value && json_equal(value, want) : !value);
		break;
	}
	case FRAME_KV_DEL:
		REQUIRE(json_is_boolean(value) &&
		        json_is_true(value) == (json_object_get(run->model, key) != NULL));
		json_object_del(run->model, key);
		break;
	default: {
		json_t *want =
		    model_keys(run->model, json_string_value(json_object_get(frame, "prefix")));
		REQUIRE(json_equal(value, want));
		json_decref(want);
	}
	}
	json_decref(result);
}

static int on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	int kind;

	if (!frame)
		return 0;
	(void)err;
	kind = frame_validate(frame, FRAME_TO_HOST, NULL);
	if (kind == FRAME_KV_GET || kind == FRAME_KV_SET || kind == FRAME_KV_DEL ||
	    kind == FRAME_KV_LIST)
		agent_kv(ctx, frame, kind);
	return 0;
}

/* ---- the client's side */

/* A key the route can carry as one path segment: valid UTF-8, no '/', and none of the
 * characters a URL would not hold decoded ('?', '#'). */
static bool key_routable(const char *key)
{
	char *copy = xstrdup(key);
	bool ok = key[0] && !strpbrk(key, "/?#") && utf8_sanitize(copy);

	free(copy);
	return ok;
}

static json_t *client(struct kv_run *run, const char *method, const char *key, const char *body,
                      int *status)
{
	char *target =
	    xasprintf("/v1/sessions/%s/state%s%s", run->id, key ? "/" : "", key ? key : "");
	char *headers =
	    xasprintf("Authorization: Bearer %s\nContent-Type: application/json", H.client);
	struct fake_conn c;
	json_t *doc = NULL;

	harness_http(&c, method, target, headers, body, body ? strlen(body) : 0, 7);
	REQUIRE(c.headers_done);
	*status = (int)c.status;
	if (c.body_len)
		doc = json_loadb(c.body, c.body_len, 0, NULL);
	REQUIRE(c.status == 204 ? !doc : json_is_object(doc));
	fake_conn_clear(&c);
	free(headers);
	free(target);
	return doc;
}

/* What PUT must do with body: 200 with the value, 400 for bad JSON, 413 when too big. */
static int expected_put(const char *body, json_t **value)
{
	*value = NULL;
	if (strlen(body) > HARNESS_MAX_BODY)
		return 413;
	/* The same parse as api_state_put's: the value itself, any JSON, no duplicates. */
	*value = json_loads(body, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	return *value ? 200 : 400;
}

static void client_op(struct kv_run *run, char *line)
{
	char *key = NULL, *rest = NULL, *space = strchr(line, ' ');
	json_t *reply, *want = NULL;
	int status, expect;

	if (space) {
		*space = '\0';
		key = space + 1;
		if ((space = strchr(key, ' '))) {
			*space = '\0';
			rest = space + 1;
		}
		if (!key_routable(key))
			return;
	}
	if (strcmp(line, "LIST") == 0) {
		reply = client(run, "GET", NULL, NULL, &status);
		REQUIRE(status == 200 && json_equal(json_object_get(reply, "state"), run->model));
	} else if (strcmp(line, "PUT") == 0 && key && rest) {
		expect = strlen(key) > SESSION_KV_KEY_MAX ? 400 : expected_put(rest, &want);
		reply = client(run, "PUT", key, rest, &status);
		REQUIRE(status == expect);
		if (status == 200) {
			REQUIRE(json_equal(json_object_get(reply, "value"), want));
			json_object_set(run->model, key, want);
		}
		json_decref(want);
	} else if (strcmp(line, "GET") == 0 && key) {
		want = json_object_get(run->model, key);
		expect = strlen(key) > SESSION_KV_KEY_MAX ? 400 : want ? 200 : 404;
		reply = client(run, "GET", key, NULL, &status);
		REQUIRE(status == expect);
		if (status == 200)
			REQUIRE(json_equal(json_object_get(reply, "value"), want));
	} else if (strcmp(line, "DEL") == 0 && key) {
		want = json_object_get(run->model, key);
		expect = strlen(key) > SESSION_KV_KEY_MAX ? 400 : want ? 204 : 404;
		reply = client(run, "DELETE", key, NULL, &status);
		REQUIRE(status == expect);
		json_object_del(run->model, key);
	} else {
		return;
	}
	json_decref(reply);
}

/* ---- the input */

static void start_session(struct kv_run *run)
{
	struct fake_conn c;
	struct session *s;
	json_t *doc;
	char *headers = xasprintf("Authorization: Bearer %s", H.client);

	harness_http(&c, "POST", "/v1/agents/fz-sess/sessions", headers, NULL, 0, 0);
	free(headers);
	REQUIRE(c.status == 201);
	doc = json_loadb(c.body, c.body_len, 0, NULL);
	snprintf(run->id, sizeof(run->id), "%s", json_string_value(json_object_get(doc, "id")));
	json_decref(doc);
	fake_conn_clear(&c);
	REQUIRE(session_find(&H.d, run->id, &H.client_id, &s) == 0);
	run->agent = fake_agent_of(s);
	REQUIRE(run->agent);
	run->model = json_object();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	struct frame_reader reader;
	struct kv_run run;

	harness_init();
	harness_reset();
	start_session(&run);
	frame_reader_init(&reader, 1024 * 1024);
	for (const uint8_t *p = data; p < end;) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len && p[0] == '{') {
			/* Read as the supervisor reads the agent's socket. */
			frame_reader_feed(&reader, p, len, on_frame, &run);
			frame_reader_feed(&reader, "\n", 1, on_frame, &run);
		} else if (len) {
			char *line = xmalloc(len + 1);
			memcpy(line, p, len);
			line[len] = '\0';
			if (strlen(line) == len)
				client_op(&run, line);
			free(line);
		}
		p += len + 1;
	}
	frame_reader_free(&reader);
	json_decref(run.model);
	return 0;
}
