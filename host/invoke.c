/* invoke.c: stateless calls, POST /v1/agents/{name}/invoke. With "process" isolation every
 * call gets a fresh sandboxed agent that answers exactly that run and is killed; with
 * "worker" isolation a pool of long-lived agents per (name, version) serves calls one at a
 * time each, and a worker that crashes is replaced by the next call. Invoke agents get no
 * key-value state. The reply is JSON (wait for the end), SSE (stream the run's events), or
 * 202 at once (?wait=false; the result is kept a while for GET .../invoke/{run}). */
#include "api.h"
#include "agent_config.h"
#include "catalog.h"
#include "daemon.h"
#include "registry.h"
#include "frame.h"
#include "log.h"
#include "manifest.h"
#include "runs.h"
#include "store.h"
#include "supervisor.h"
#include "util.h"

#include <errno.h>
#include <string.h>

#define POOL_QUEUE_PER_WORKER 64 /* calls that may wait per worker before 429 */

struct pool;

struct call {
	struct daemon *d;
	struct http_request *req; /* NULL when nobody waits (gone, or ?wait=false) */
	bool sse;
	struct agent_proc *proc;
	struct pool *pool;               /* worker isolation */
	const struct manifest *manifest; /* process isolation: the catalog's */
	const char *agent_name;          /* process isolation: the catalog's */
	json_t *config;                  /* process isolation: owned */
	char *agent_dir;
	json_t *input;
	struct run_record run;
	int64_t seq;       /* SSE event numbers of this call */
	struct call *next; /* pool queue */
};

/* ---- worker pools */

struct worker {
	struct pool *pool;
	struct agent_proc *proc; /* NULL: not started or ended */
	bool ready;
	struct call *call; /* the call it serves, or NULL when idle */
};

struct pool {
	char *name, *version, *agent_dir;
	struct manifest *manifest;
	json_t *config; /* for the workers started next */
	struct worker *workers;
	int nworkers;
	struct call *queue_head, *queue_tail;
	int queued;
	struct pool *next;
};

static struct pool *pools;

static void call_finish(struct call *c, const char *status, json_t *output, json_t *error);
static void call_send_run(struct call *c);
static void pool_dispatch(struct pool *pool);

/* ---- replies */

static void sse_event(struct call *c, const char *type, json_t *extra)
{
	json_t *ev = run_event_json(++c->seq, type, c->run.id, store_now_ms(), extra);
	char *text = runs_sse_format(c->seq, type, ev);

	if (c->req)
		http_stream_write(c->req, text, strlen(text));
	free(text);
	json_decref(ev);
}

static void call_free(struct call *c)
{
	json_decref(c->config);
	free(c->agent_dir);
	json_decref(c->input);
	run_record_clear(&c->run);
	free(c);
}

/* The client left: a stateless call has nobody left to answer, so its agent is killed. */
static void call_client_gone(struct http_request *req, void *ctx)
{
	struct call *c = ctx;

	(void)req;
	c->req = NULL;
	if (c->proc)
		agent_proc_kill(c->proc, SANDBOX_HOST_OTHER, "the client went away");
}

static void call_finish(struct call *c, const char *status, json_t *output, json_t *error)
{
	run_record_finish(&c->run, status, output, error);
	runs_account(c->d, &c->run);
	if (c->req && c->sse) {
		sse_event(c, run_terminal_type(status), run_result_fields(&c->run));
		http_stream_end(c->req);
	} else if (c->req) {
		http_reply_json(c->req, 200, run_record_json(&c->run));
		http_resume(c->req);
	}
	if (c->req)
		c->req->on_gone = NULL;
	c->req = NULL;
	runs_remember(&c->run, c->pool ? c->pool->name : c->agent_name);
}

/* ---- the agent's side of a call */

static struct call *call_of(void *owner)
{
	return owner;
}

static int check_run_id(struct call *c, json_t *frame)
{
	const char *run = json_string_value(json_object_get(frame, "run"));

	return run && strcmp(run, c->run.id) == 0 ? 0 : -1;
}

/* Answers a kv.* frame: invoke agents have no key-value state. */
static void refuse_kv(struct agent_proc *p, json_t *frame)
{
	json_t *res = json_pack("{s:s, s:O, s:b, s:{s:s, s:s}}", "t", "kv.result", "req",
	                        json_object_get(frame, "req"), "ok", 0, "error", "code", "no_kv",
	                        "message", "stateless calls have no key-value state");
	agent_proc_send(p, res);
	json_decref(res);
}

/* Common frame handling for both isolations; c may be NULL for an idle worker. */
static int call_frame(struct agent_proc *p, struct call *c, int kind, json_t *frame)
{
	switch (kind) {
	case FRAME_KV_GET:
	case FRAME_KV_SET:
	case FRAME_KV_DEL:
	case FRAME_KV_LIST:
		refuse_kv(p, frame);
		return 0;
	case FRAME_EVENT:
		if (!c || check_run_id(c, frame) < 0)
			return -1;
		if (c->sse)
			sse_event(c, "run.output",
			          json_pack("{s:O}", "data", json_object_get(frame, "data")));
		return 0;
	case FRAME_DONE:
		if (!c || check_run_id(c, frame) < 0)
			return -1;
		agent_proc_set_timer(p, 0, SANDBOX_HOST_NONE, NULL);
		call_finish(c, "completed", json_incref(json_object_get(frame, "output")), NULL);
		return 1; /* handled: the owner moves on */
	case FRAME_ERROR:
		if (!c || check_run_id(c, frame) < 0)
			return -1;
		agent_proc_set_timer(p, 0, SANDBOX_HOST_NONE, NULL);
		call_finish(c, "failed", NULL,
		            json_pack("{s:O, s:O}", "code", json_object_get(frame, "code"),
		                      "message", json_object_get(frame, "message")));
		return 1;
	default:
		return -1;
	}
}

static void call_send_run(struct call *c)
{
	json_t *run = json_pack("{s:s, s:s, s:O}", "t", "run", "run", c->run.id, "input", c->input);
	int64_t timeout_s = c->pool ? c->pool->manifest->sandbox.limits.run_timeout_s
	                            : c->manifest->sandbox.limits.run_timeout_s;
	char detail[64];

	run_record_start(&c->run);
	agent_proc_reset_output(c->proc);
	agent_proc_send(c->proc, run);
	json_decref(run);
	snprintf(detail, sizeof(detail), "the run took longer than %lld s", (long long)timeout_s);
	agent_proc_set_timer(c->proc, timeout_s * 1000, SANDBOX_HOST_TIMEOUT, detail);
	if (c->sse)
		sse_event(c, "run.started", NULL);
}

/* The error of a run whose agent ended before answering (detail is the supervisor's
 * sentence for the end). */
static json_t *end_error(const struct sandbox_exit *why, const char *detail)
{
	return json_pack("{s:s, s:s}", "code", sandbox_exit_reason_name(why->reason), "message",
	                 detail);
}

/* A call whose agent could not be started: 500 naming the step to a client still waiting
 * for JSON (docs/http.md), a failed run otherwise. */
static void call_spawn_failed(struct call *c, const char *err)
{
	if (c->req && !c->sse) {
		c->req->on_gone = NULL;
		http_reply_error(c->req, 500, "internal", "%s", err);
		http_resume(c->req);
		c->req = NULL;
		run_record_finish(&c->run, "failed", NULL, NULL);
		return;
	}
	call_finish(c, "failed", NULL,
	            json_pack("{s:s, s:s}", "code", "spawn_failed", "message", err));
}

/* -- process isolation: one agent, one call */

static void process_ready(struct agent_proc *p, void *owner)
{
	(void)p;
	call_send_run(call_of(owner));
}

static int process_frame(struct agent_proc *p, int kind, json_t *frame, void *owner)
{
	int rc = call_frame(p, call_of(owner), kind, frame);

	if (rc == 1) {
		/* Answered: the process has served its one call. */
		agent_proc_retire(p);
		return 0;
	}
	return rc;
}

static void process_ended(struct agent_proc *p, const struct sandbox_exit *why, const char *detail,
                          void *owner)
{
	struct call *c = call_of(owner);

	(void)p;
	c->proc = NULL;
	if (!run_record_finished(&c->run))
		call_finish(c, why->reason == SANDBOX_KILLED && !c->req ? "cancelled" : "failed",
		            NULL, end_error(why, detail));
	call_free(c);
}

static const struct agent_proc_ops process_ops = {
    .ready = process_ready,
    .frame = process_frame,
    .ended = process_ended,
};

/* -- worker isolation */

static void worker_take_next(struct worker *w)
{
	struct pool *pool = w->pool;
	struct call *c = pool->queue_head;

	if (!c || !w->proc || !w->ready || w->call)
		return;
	pool->queue_head = c->next;
	if (!pool->queue_head)
		pool->queue_tail = NULL;
	pool->queued--;
	w->call = c;
	c->proc = w->proc;
	call_send_run(c);
}

static void worker_ready(struct agent_proc *p, void *owner)
{
	struct worker *w = owner;

	(void)p;
	w->ready = true;
	worker_take_next(w);
}

static int worker_frame(struct agent_proc *p, int kind, json_t *frame, void *owner)
{
	struct worker *w = owner;
	struct call *c = w->call;
	int rc = call_frame(p, c, kind, frame);

	if (rc == 1) {
		w->call = NULL;
		c->proc = NULL;
		call_free(c);
		worker_take_next(w);
		return 0;
	}
	return rc;
}

static void worker_ended(struct agent_proc *p, const struct sandbox_exit *why, const char *detail,
                         void *owner)
{
	struct worker *w = owner;
	struct call *c = w->call;

	(void)p;
	w->proc = NULL;
	w->ready = false;
	w->call = NULL;
	if (c) {
		c->proc = NULL;
		if (!run_record_finished(&c->run))
			call_finish(c, "failed", NULL, end_error(why, detail));
		call_free(c);
	}
	/* Replace it if calls are waiting; otherwise the next call starts it. */
	pool_dispatch(w->pool);
}

static const struct agent_proc_ops worker_ops = {
    .ready = worker_ready,
    .frame = worker_frame,
    .ended = worker_ended,
};

static int worker_start(struct daemon *d, struct worker *w, char *err, size_t errlen)
{
	struct agent_proc_spec spec = {.manifest = w->pool->manifest,
	                               .agent_dir = w->pool->agent_dir,
	                               .mode = "invoke",
	                               .config = w->pool->config};

	w->ready = false;
	return supervisor_spawn(d, &spec, &worker_ops, w, &w->proc, err, errlen);
}

/* Makes sure the pool has at least one worker alive or starting, so that a pool whose
 * agent cannot start is refused before the call is answered. */
static int pool_start_one(struct daemon *d, struct pool *pool, char *err, size_t errlen)
{
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].proc)
			return 0;
	return worker_start(d, &pool->workers[0], err, errlen);
}

/* Starts workers for waiting calls, and hands calls to idle ready workers. */
static void pool_dispatch(struct pool *pool)
{
	for (int i = 0; i < pool->nworkers && pool->queue_head; i++) {
		struct worker *w = &pool->workers[i];
		char err[320];

		if (!w->proc && worker_start(pool->queue_head->d, w, err, sizeof(err)) < 0) {
			/* Fail the first waiting call rather than retrying forever. */
			struct call *c = pool->queue_head;
			pool->queue_head = c->next;
			if (!pool->queue_head)
				pool->queue_tail = NULL;
			pool->queued--;
			call_spawn_failed(c, err);
			call_free(c);
			continue;
		}
		worker_take_next(w);
	}
}

/* The pool of an installed copy: its manifest pointer identifies it (catalog entries live
 * until shutdown), so a reinstall of the same version gets a fresh pool. */
static struct pool *pool_get(const struct catalog_entry *agent)
{
	struct pool *pool;

	for (pool = pools; pool; pool = pool->next)
		if (pool->manifest == agent->manifest)
			return pool;
	pool = xcalloc(1, sizeof(*pool));
	pool->name = xstrdup(agent->name);
	pool->version = xstrdup(agent->version);
	pool->agent_dir = xstrdup(agent->path);
	pool->manifest = agent->manifest;
	pool->nworkers = (int)agent->manifest->invoke.workers;
	pool->workers = xcalloc((size_t)pool->nworkers, sizeof(*pool->workers));
	for (int i = 0; i < pool->nworkers; i++)
		pool->workers[i].pool = pool;
	pool->next = pools;
	pools = pool;
	return pool;
}

/* ---- the route */

/* Reads {"input": ...} (input may be absent: null). Replies 400 and returns NULL on error. */
static json_t *parse_input(struct http_request *req)
{
	json_t *body = http_body_json(req), *input;
	const char *key;
	json_t *value;

	if (!body)
		return NULL;
	if (!json_is_object(body)) {
		http_reply_error(req, 400, "bad_request",
		                 "the body must be an object {\"input\": ...}");
		json_decref(body);
		return NULL;
	}
	json_object_foreach(body, key, value)
	{
		if (strcmp(key, "input") != 0) {
			http_reply_error(req, 400, "bad_request", "unknown field \"%s\"", key);
			json_decref(body);
			return NULL;
		}
	}
	input = json_object_get(body, "input");
	input = input ? json_incref(input) : json_null();
	json_decref(body);
	return input;
}

/* The current version of the route's agent (from the catalog) and the config its process
 * gets. Replies and returns -1 on error. */
static int load_agent(struct http_request *req, const struct catalog_entry **agent, json_t **config)
{
	char err[MANIFEST_ERR_MAX], message[512];
	const char *code;
	int status = 0,
	    rc = catalog_current(req->daemon->store, req->params[0], agent, err, sizeof(err));

	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found", "agent %s is not installed",
		                 req->params[0]);
		return -1;
	}
	if (rc < 0) {
		http_reply_error(req, 500, "internal", "%s", err);
		return -1;
	}
	if (!(*agent)->manifest->mode_invoke) {
		status = 400;
		code = "bad_request";
		snprintf(message, sizeof(message),
		         "agent %s does not take stateless calls (its modes: session)",
		         (*agent)->name);
	} else {
		*config = agent_config_build(req->daemon->store, (*agent)->manifest, NULL, &code,
		                             message, sizeof(message), &status);
	}
	if (status) {
		http_reply_error(req, status, code, "%s", message);
		return -1;
	}
	return 0;
}

/* Answers the HTTP request according to ?wait and Accept, before the call runs. */
static void reply_mode(struct http_request *req, struct call *c)
{
	const char *wait = http_query(req, "wait");

	if (wait && strcmp(wait, "false") == 0) {
		http_reply_json(req, 202,
		                json_pack("{s:s, s:s}", "id", c->run.id, "status", "queued"));
		return; /* nobody waits: c->req stays NULL */
	}
	c->req = req;
	req->on_gone = call_client_gone;
	req->gone_ctx = c;
	if (http_wants_sse(req)) {
		c->sse = true;
		http_stream_start(req, 200, "text/event-stream");
	} else {
		http_defer(req);
	}
}

void api_invoke(struct http_request *req)
{
	const struct catalog_entry *agent = NULL;
	json_t *config = NULL;
	json_t *input = parse_input(req);
	struct call *c;
	char err[320];

	if (!input)
		return;
	if (load_agent(req, &agent, &config) < 0) {
		json_decref(input);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->d = req->daemon;
	c->input = input;
	run_record_init(&c->run);
	req->daemon->metrics.invokes++;

	if (agent->manifest->invoke.isolation == MANIFEST_ISOLATION_WORKER) {
		struct pool *pool = pool_get(agent);
		json_decref(pool->config); /* workers started from now on get today's values */
		pool->config = config;
		if (pool->queued >= pool->nworkers * POOL_QUEUE_PER_WORKER) {
			http_reply_error(req, 429, "too_many", "%d calls already wait for agent %s",
			                 pool->queued, agent->name);
			call_free(c);
			return;
		}
		if (pool_start_one(req->daemon, pool, err, sizeof(err)) < 0) {
			/* Said now, while the answer can still be a 500 (docs/http.md). */
			http_reply_error(req, 500, "internal", "%s", err);
			call_free(c);
			return;
		}
		c->pool = pool;
		reply_mode(req, c);
		if (pool->queue_tail)
			pool->queue_tail->next = c;
		else
			pool->queue_head = c;
		pool->queue_tail = c;
		pool->queued++;
		pool_dispatch(pool);
		return;
	}

	c->manifest = agent->manifest;
	c->agent_name = agent->name;
	c->config = config;
	c->agent_dir = xstrdup(agent->path);
	struct agent_proc_spec spec = {.manifest = agent->manifest,
	                               .agent_dir = c->agent_dir,
	                               .mode = "invoke",
	                               .config = config};
	if (supervisor_spawn(req->daemon, &spec, &process_ops, c, &c->proc, err, sizeof(err)) < 0) {
		http_reply_error(req, 500, "internal", "%s", err);
		call_free(c);
		return;
	}
	reply_mode(req, c);
}

void api_invoke_result(struct http_request *req)
{
	json_t *run = runs_recall(req->params[1], req->params[0]);

	if (!run) {
		http_reply_error(req, 404, "not_found",
		                 "no finished call %s (results are kept for %d minutes)",
		                 req->params[1], RUNS_REMEMBER_MINUTES);
		return;
	}
	http_reply_json(req, 200, run);
}
