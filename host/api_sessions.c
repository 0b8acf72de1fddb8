/* api_sessions.c: the session routes of DESIGN §5 — create, list, get, destroy, runs (JSON,
 * SSE, ?wait=false), a run's record, cancel, the resumable event stream, and the session's
 * key-value state. The HTTP side of struct session_watcher lives here. */
#include "api.h"
#include "daemon.h"
#include "runs.h"
#include "session.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* Finds the route's session for the caller; replies 404/500 and returns NULL if none. */
static struct session *find(struct http_request *req)
{
	struct session *s;
	int rc = session_find(req->daemon, req->params[0], &req->who, &s);

	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "no session %s", req->params[0]);
		return NULL;
	}
	if (rc < 0) {
		http_reply_error(req, 500, "internal", "session %s could not be loaded",
		                 req->params[0]);
		return NULL;
	}
	return s;
}

/* A body that must be a JSON object with only the given fields (NULL-terminated). An
 * empty body is {} when empty_ok. Replies 400 and returns NULL on error. */
static json_t *object_body(struct http_request *req, const char *const *fields, bool empty_ok)
{
	json_t *body, *value;
	const char *key;

	if (req->body_len == 0 && empty_ok)
		return json_object();
	body = http_body_json(req);
	if (!body)
		return NULL;
	if (!json_is_object(body)) {
		http_reply_error(req, 400, "bad_request", "the body must be a JSON object");
		json_decref(body);
		return NULL;
	}
	json_object_foreach(body, key, value)
	{
		bool known = false;
		for (const char *const *f = fields; *f; f++)
			known |= strcmp(*f, key) == 0;
		if (!known) {
			http_reply_error(req, 400, "bad_request", "unknown field \"%s\"", key);
			json_decref(body);
			return NULL;
		}
	}
	return body;
}

/* ---- create */

struct create_wait {
	struct http_request *req; /* NULL once the client left */
};

static void create_client_gone(struct http_request *req, void *ctx)
{
	(void)req;
	((struct create_wait *)ctx)->req = NULL;
}

static void created(void *ctx, struct session *s, int status, const char *code, const char *message)
{
	struct create_wait *w = ctx;

	if (w->req) {
		w->req->on_gone = NULL;
		if (s)
			http_reply_json(w->req, status, session_json(s));
		else
			http_reply_error(w->req, status, code, "%s", message);
		http_resume(w->req);
	}
	free(w);
}

void api_sessions_create(struct http_request *req)
{
	static const char *const fields[] = {"config", NULL};
	json_t *body = object_body(req, fields, true), *config;
	struct create_wait *w;
	const char *code;
	char message[512];
	int status;

	if (!body)
		return;
	config = json_object_get(body, "config");
	if (config && !json_is_object(config)) {
		http_reply_error(req, 400, "bad_request", "\"config\" must be an object");
		json_decref(body);
		return;
	}
	int64_t owned = 0;
	if (!req->who.admin &&
	    (store_session_count_for_owner(req->daemon->store, req->who.token_id, &owned) < 0 ||
	     owned >= req->daemon->cfg.sessions_per_token)) {
		json_decref(body);
		http_reply_error(
		    req, 429, "too_many",
		    "this token owns %lld sessions (--sessions-per-token %lld): destroy "
		    "some first",
		    (long long)owned, (long long)req->daemon->cfg.sessions_per_token);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	status = session_create(req->daemon, req->params[0], req->who.token_id, config, created, w,
	                        &code, message, sizeof(message));
	json_decref(body);
	if (status) {
		free(w);
		http_reply_error(req, status, code, "%s", message);
		return;
	}
	req->on_gone = create_client_gone;
	req->gone_ctx = w;
	http_defer(req);
}

/* ---- list, get, destroy */

static int add_session(const struct store_session *row, void *ctx)
{
	json_array_append_new(ctx, session_row_json(row));
	return 0;
}

void api_sessions_list(struct http_request *req)
{
	const char *all = http_query(req, "all");
	json_t *list = json_array();
	const char *owner = req->who.token_id;

	if (all && strcmp(all, "true") == 0) {
		if (!req->who.admin) {
			json_decref(list);
			http_reply_error(req, 403, "forbidden", "?all=true needs the admin token");
			return;
		}
		owner = NULL;
	}
	if (store_session_list(req->daemon->store, owner, add_session, list) < 0) {
		json_decref(list);
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "sessions", list));
}

void api_sessions_get(struct http_request *req)
{
	struct session *s = find(req);

	if (s)
		http_reply_json(req, 200, session_json(s));
}

void api_sessions_destroy(struct http_request *req)
{
	struct session *s = find(req);

	if (!s)
		return;
	session_destroy(s);
	http_reply_empty(req, 204);
}

/* ---- runs */

/* A client waiting for one run: its JSON at the end, or its events as SSE. */
struct run_wait {
	struct session_watcher w;
	struct http_request *req;
	struct session *s;
	char run[RUN_ID_LEN + 1];
	bool sse;
};

static bool is_terminal(const char *type)
{
	return strcmp(type, "run.completed") == 0 || strcmp(type, "run.failed") == 0 ||
	       strcmp(type, "run.cancelled") == 0;
}

static json_t *stored_run_json(struct store *st, const char *session, const char *id);

static int run_wait_event(struct session_watcher *w, struct session *s, const json_t *ev)
{
	struct run_wait *rw = (struct run_wait *)w;
	const char *type = json_string_value(json_object_get(ev, "type"));

	if (rw->sse) {
		char *text =
		    runs_sse_format(json_integer_value(json_object_get(ev, "seq")), type, ev);
		http_stream_write(rw->req, text, strlen(text));
		free(text);
	}
	if (!is_terminal(type))
		return 0;
	rw->req->on_gone = NULL;
	if (rw->sse) {
		http_stream_end(rw->req);
	} else {
		http_reply_json(rw->req, 200,
		                stored_run_json(rw->req->daemon->store, session_id(s), rw->run));
		http_resume(rw->req);
	}
	free(rw);
	return 1;
}

static void run_wait_gone(struct session_watcher *w, struct session *s)
{
	struct run_wait *rw = (struct run_wait *)w;

	(void)s;
	rw->req->on_gone = NULL;
	if (rw->sse) {
		http_stream_end(rw->req);
	} else {
		http_reply_error(rw->req, 404, "not_found", "the session was destroyed");
		http_resume(rw->req);
	}
	free(rw);
}

static void run_wait_client_gone(struct http_request *req, void *ctx)
{
	struct run_wait *rw = ctx;

	(void)req;
	session_unwatch(rw->s, &rw->w); /* a dropped connection cancels nothing */
	free(rw);
}

/* The run as the store has it: {"id", "status", "output"?, "error"?, times}. */
static json_t *stored_run_json(struct store *st, const char *session, const char *id)
{
	struct store_run row = {0};
	json_t *out;
	char at[32];

	if (store_run_get(st, session, id, &row) < 0)
		return json_pack("{s:s, s:s}", "id", id, "status", "unknown");
	out = json_pack("{s:s, s:s}", "id", row.id, "status", row.status);
	if (row.output)
		json_object_set_new(out, "output", json_loads(row.output, JSON_DECODE_ANY, NULL));
	if (row.error)
		json_object_set_new(out, "error", json_loads(row.error, JSON_DECODE_ANY, NULL));
	json_object_set_new(out, "created_at",
	                    json_string(time_rfc3339(row.created_at, at, sizeof(at))));
	json_object_set_new(out, "started_at",
	                    row.started_at
	                        ? json_string(time_rfc3339(row.started_at, at, sizeof(at)))
	                        : json_null());
	json_object_set_new(out, "finished_at",
	                    row.finished_at
	                        ? json_string(time_rfc3339(row.finished_at, at, sizeof(at)))
	                        : json_null());
	store_run_clear(&row);
	return out;
}

void api_runs_create(struct http_request *req)
{
	static const char *const fields[] = {"input", NULL};
	struct session *s = find(req);
	json_t *body, *input;
	const char *wait = http_query(req, "wait"), *code;
	char run_id[RUN_ID_LEN + 1], message[512];
	int status;

	if (!s)
		return;
	body = object_body(req, fields, false);
	if (!body)
		return;
	input = json_object_get(body, "input");
	status =
	    session_run(s, input ? input : json_null(), run_id, &code, message, sizeof(message));
	json_decref(body);
	if (status) {
		http_reply_error(req, status, code, "%s", message);
		return;
	}
	if (wait && strcmp(wait, "false") == 0) {
		http_reply_json(req, 202,
		                json_pack("{s:s, s:s}", "id", run_id, "status", "queued"));
		session_kick(s);
		return;
	}
	struct run_wait *rw = xcalloc(1, sizeof(*rw));
	rw->req = req;
	rw->s = s;
	snprintf(rw->run, sizeof(rw->run), "%s", run_id);
	rw->w.run = rw->run;
	rw->w.event = run_wait_event;
	rw->w.gone = run_wait_gone;
	rw->sse = http_wants_sse(req);
	req->on_gone = run_wait_client_gone;
	req->gone_ctx = rw;
	if (rw->sse)
		http_stream_start(req, 200, "text/event-stream");
	else
		http_defer(req);
	session_watch(s, &rw->w);
	session_kick(s);
}

void api_runs_get(struct http_request *req)
{
	struct session *s = find(req);
	struct store_run row = {0};

	if (!s)
		return;
	int rc = store_run_get(req->daemon->store, session_id(s), req->params[1], &row);
	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "no run %s in session %s", req->params[1],
		                 session_id(s));
		return;
	}
	store_run_clear(&row);
	if (rc < 0) {
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200,
	                stored_run_json(req->daemon->store, session_id(s), req->params[1]));
}

void api_runs_cancel(struct http_request *req)
{
	struct session *s = find(req);

	if (!s)
		return;
	if (session_cancel(s, req->params[1]) < 0) {
		http_reply_error(req, 404, "not_found", "no queued or running run %s in session %s",
		                 req->params[1], session_id(s));
		return;
	}
	http_reply_json(req, 202,
	                json_pack("{s:s, s:s}", "id", req->params[1], "status", "cancelling"));
}

/* ---- the event stream */

struct event_stream {
	struct session_watcher w;
	struct http_request *req;
	struct session *s;
};

static int stream_event(struct session_watcher *w, struct session *s, const json_t *ev)
{
	struct event_stream *es = (struct event_stream *)w;
	const char *type = json_string_value(json_object_get(ev, "type"));
	char *text = runs_sse_format(json_integer_value(json_object_get(ev, "seq")), type, ev);
	int rc = http_stream_write(es->req, text, strlen(text));

	(void)s;
	free(text);
	return rc < 0 ? 0 : 0; /* a slow client is cut by the transport; its on_gone unwatches */
}

static void stream_gone(struct session_watcher *w, struct session *s)
{
	struct event_stream *es = (struct event_stream *)w;

	(void)s;
	es->req->on_gone = NULL;
	http_stream_end(es->req);
	free(es);
}

static void stream_client_gone(struct http_request *req, void *ctx)
{
	struct event_stream *es = ctx;

	(void)req;
	session_unwatch(es->s, &es->w);
	free(es);
}

struct replay {
	struct http_request *req;
};

static int replay_event(const struct store_event *ev, void *ctx)
{
	struct replay *r = ctx;
	json_t *doc = json_loads(ev->body, 0, NULL);
	char *text = runs_sse_format(ev->seq, ev->type, doc);

	http_stream_write(r->req, text, strlen(text));
	free(text);
	json_decref(doc);
	return 0;
}

/* Where to resume: ?after=SEQ, else Last-Event-ID, else 0 (everything kept). -1: bad. */
static int64_t resume_point(struct http_request *req)
{
	const char *after = http_query(req, "after");
	const char *text = after ? after : req->last_event_id;
	char *end;
	long long v;

	if (!text || !text[0])
		return 0;
	errno = 0;
	v = strtoll(text, &end, 10);
	return (*end || end == text || v < 0 || errno == ERANGE) ? -1 : v;
}

void api_sessions_events(struct http_request *req)
{
	struct session *s = find(req);
	struct replay r = {.req = req};
	int64_t after = resume_point(req), first = 0;

	if (!s)
		return;
	json_t *info = session_json(s);
	int64_t last = json_integer_value(json_object_get(info, "last_seq"));
	json_decref(info);
	if (after > last)
		after = last; /* nothing is after the end: resume from it */
	if (after < 0) {
		http_reply_error(req, 400, "bad_request",
		                 "?after and Last-Event-ID take an event seq (an integer >= 0)");
		return;
	}
	http_stream_start(req, 200, "text/event-stream");
	store_event_first_seq(req->daemon->store, session_id(s), &first);
	if (first > after + 1) {
		/* Said, not skipped silently: events after..first-1 are gone. */
		char *text =
		    xasprintf("event: events.truncated\ndata: {\"type\":\"events.truncated\","
		              "\"after\":%lld,\"first_seq\":%lld}\n\n",
		              (long long)after, (long long)first);
		http_stream_write(req, text, strlen(text));
		free(text);
	}
	store_event_list(req->daemon->store, session_id(s), after, 0, replay_event, &r);
	struct event_stream *es = xcalloc(1, sizeof(*es));
	es->req = req;
	es->s = s;
	es->w.event = stream_event;
	es->w.gone = stream_gone;
	req->on_gone = stream_client_gone;
	req->gone_ctx = es;
	session_watch(s, &es->w);
}

/* ---- key-value state */

static int add_kv(const char *key, const char *value, void *ctx)
{
	json_object_set_new(ctx, key, json_loads(value, JSON_DECODE_ANY, NULL));
	return 0;
}

void api_state_list(struct http_request *req)
{
	struct session *s = find(req);
	json_t *state = json_object();

	if (!s) {
		json_decref(state);
		return;
	}
	if (store_kv_list(req->daemon->store, session_id(s), "", add_kv, state) < 0) {
		json_decref(state);
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "state", state));
}

static bool key_ok(struct http_request *req, const char *key)
{
	if (strlen(key) > SESSION_KV_KEY_MAX) {
		http_reply_error(req, 400, "bad_request", "a key is at most %d bytes",
		                 SESSION_KV_KEY_MAX);
		return false;
	}
	return true;
}

void api_state_get(struct http_request *req)
{
	struct session *s = find(req);
	const char *key = req->params[1];
	char *value = NULL;

	if (!s || !key_ok(req, key))
		return;
	int rc = store_kv_get(req->daemon->store, session_id(s), key, &value);
	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "no key %s in session %s", key,
		                 session_id(s));
		return;
	}
	if (rc < 0) {
		api_store_failed(req);
		return;
	}
	http_reply_json(
	    req, 200,
	    json_pack("{s:s, s:o}", "key", key, "value", json_loads(value, JSON_DECODE_ANY, NULL)));
	free(value);
}

void api_state_put(struct http_request *req)
{
	struct session *s = find(req);
	const char *key = req->params[1];
	json_error_t jerr;
	json_t *value;

	if (!s || !key_ok(req, key))
		return;
	if (req->body_len > SESSION_KV_VALUE_MAX) {
		http_reply_error(req, 413, "too_large", "a value is at most 1 MiB of JSON");
		return;
	}
	value = json_loadb(req->body ? req->body : "", req->body_len,
	                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!value) {
		http_reply_error(req, 400, "bad_request",
		                 "the body must be the JSON value itself: line %d column %d: %s",
		                 jerr.line, jerr.column, jerr.text);
		return;
	}
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	int rc = session_kv_put(s, key, text);
	free(text);
	if (rc < 0) {
		json_decref(value);
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:s, s:o}", "key", key, "value", value));
}

void api_state_delete(struct http_request *req)
{
	struct session *s = find(req);

	if (!s || !key_ok(req, req->params[1]))
		return;
	int rc = store_kv_del(req->daemon->store, session_id(s), req->params[1]);
	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "no key %s in session %s", req->params[1],
		                 session_id(s));
		return;
	}
	if (rc < 0) {
		api_store_failed(req);
		return;
	}
	http_reply_empty(req, 204);
}

/* ---- logs */

/* Reads up to want bytes from the end of path into buf. */
static size_t read_tail(const char *path, char *buf, size_t want)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	ssize_t n = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) == 0) {
		off_t from = sb.st_size > (off_t)want ? sb.st_size - (off_t)want : 0;
		n = pread(fd, buf, want, from);
	}
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

void api_sessions_logs(struct http_request *req)
{
	struct session *s = find(req);
	const char *bytes = http_query(req, "bytes");
	size_t want = 64 * 1024, got_new, got_old;
	char *new_path, *old_path, *buf, *end;

	if (!s)
		return;
	if (bytes) {
		errno = 0;
		long long v = strtoll(bytes, &end, 10);
		if (*end || end == bytes || v < 1 || errno == ERANGE) {
			http_reply_error(req, 400, "bad_request",
			                 "?bytes takes a whole number of bytes >= 1");
			return;
		}
		want = (size_t)v;
	}
	if (want == 0 || want > 1024 * 1024)
		want = 1024 * 1024;
	new_path = session_log_path(req->daemon, session_id(s), false);
	old_path = session_log_path(req->daemon, session_id(s), true);
	buf = xmalloc(2 * want);
	/* The newest bytes are in ID.log; the rest comes from the end of ID.log.old. */
	got_new = read_tail(new_path, buf + want, want);
	got_old = got_new < want ? read_tail(old_path, buf, want - got_new) : 0;
	memmove(buf + got_old, buf + want, got_new);
	http_reply_text(req, 200, "text/plain; charset=utf-8", buf, got_old + got_new);
	free(buf);
	free(new_path);
	free(old_path);
}

/* A plain GET on the WebSocket route: say what it needs. */
void api_sessions_ws_plain(struct http_request *req)
{
	http_reply_error(req, 426, "upgrade_required",
	                 "%s is a WebSocket (subprotocol agenthost.v1): send an Upgrade request",
	                 req->path);
}
