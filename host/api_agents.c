/* api_agents.c: agent discovery (offline: it reads the store, never starts an agent),
 * install and uninstall. Installs and uninstalls touch the file system and may run a
 * command, so they run on a worker thread with its own store connection. */
#include "api.h"
#include "agent_config.h"
#include "catalog.h"
#include "manifest.h"
#include "daemon.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- rendering */

static int add_version(const struct store_agent *a, void *ctx)
{
	json_array_append_new(ctx, json_string(a->version));
	return 0;
}

/* The agent's JSON: a summary, or with full the manifest and install info too. */
static json_t *agent_json(struct store *st, const struct store_agent *a, bool full)
{
	json_t *manifest = json_loads(a->manifest, 0, NULL), *versions = json_array(), *out;
	char at[32];

	if (!manifest)
		manifest = json_object(); /* the store only holds what we dumped */
	store_agent_list(st, a->name, false, add_version, versions);
	out = json_pack("{s:s, s:s, s:O, s:O, s:s, s:o}", "name", a->name, "version", a->version,
	                "description", json_object_get(manifest, "description"), "modes",
	                json_object_get(manifest, "modes"), "installed_at",
	                time_rfc3339(a->installed_at, at, sizeof(at)), "versions", versions);
	if (full) {
		json_object_set_new(out, "current", json_boolean(a->current));
		json_object_set_new(out, "path", json_string(a->path));
		json_object_set_new(out, "digest", json_string(a->digest));
		json_object_set(out, "manifest", manifest);
	}
	json_decref(manifest);
	return out;
}

/* ---- discovery */

/* Rows are copied out before rendering: agent_json() walks the store again, and a
 * statement cannot be stepped while its own walk is under way. */
struct row_list {
	struct store_agent *rows;
	size_t n;
};

static int copy_row(const struct store_agent *a, void *ctx)
{
	struct row_list *l = ctx;

	l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
	l->rows[l->n++] = (struct store_agent){
	    .name = xstrdup(a->name),
	    .version = xstrdup(a->version),
	    .manifest = xstrdup(a->manifest),
	    .path = xstrdup(a->path),
	    .digest = xstrdup(a->digest),
	    .installed_at = a->installed_at,
	    .current = a->current,
	};
	return 0;
}

void api_agents_list(struct http_request *req)
{
	struct store *st = req->daemon->store;
	struct row_list l = {0};
	json_t *agents = json_array();
	int rc = store_agent_list(st, NULL, true, copy_row, &l);

	for (size_t i = 0; i < l.n; i++) {
		if (rc == 0)
			json_array_append_new(agents, agent_json(st, &l.rows[i], false));
		store_agent_clear(&l.rows[i]);
	}
	free(l.rows);
	if (rc < 0) {
		json_decref(agents);
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "agents", agents));
}

void api_agents_get(struct http_request *req)
{
	const char *version = http_query(req, "version");
	struct store_agent row = {0};
	int rc = store_agent_get(req->daemon->store, req->params[0], version, &row);

	if (rc == -ENOENT) {
		http_reply_error(req, 404, "not_found",
		                 version ? "agent %s %s is not installed"
		                         : "agent %s is not installed",
		                 req->params[0], version);
		return;
	}
	if (rc < 0) {
		api_store_failed(req);
		return;
	}
	http_reply_json(req, 200, agent_json(req->daemon->store, &row, true));
	store_agent_clear(&row);
}

/* ---- install and uninstall, on a worker thread */

struct registry_job {
	struct http_request *req;
	struct daemon *daemon;
	char *path; /* install */
	char *name; /* uninstall */
	bool force;
	int rc;
	char err[REGISTRY_ERR_MAX];
	json_t *result; /* install: the agent's JSON */
};

/* A worker's own connection: struct store is not shared across threads. */
static struct store *open_worker_store(struct registry_job *job)
{
	char *db = xasprintf("%s/agenthost.db", job->daemon->state_dir);
	struct store *st = NULL;

	job->rc = store_open(db, &st, job->err, sizeof(job->err));
	if (job->rc < 0)
		job->rc = -EIO;
	free(db);
	return st;
}

static void install_work(void *arg)
{
	struct registry_job *job = arg;
	struct store *st = open_worker_store(job);
	struct store_agent row = {0};

	if (!st)
		return;
	job->rc = registry_install(job->daemon->registry, st, job->path, &row, job->err,
	                           sizeof(job->err));
	if (job->rc == 0) {
		job->result = agent_json(st, &row, true);
		store_agent_clear(&row);
	}
	store_close(st);
}

static void uninstall_work(void *arg)
{
	struct registry_job *job = arg;
	struct store *st = open_worker_store(job);

	if (!st)
		return;
	job->rc = registry_uninstall(job->daemon->registry, st, job->name, NULL, job->force,
	                             job->err, sizeof(job->err));
	store_close(st);
}

static void reply_registry_error(struct http_request *req, int rc, const char *err)
{
	switch (rc) {
	case -EINVAL:
		http_reply_error(req, 422, "invalid_input", "%s", err);
		break;
	case -EEXIST:
	case -EBUSY:
		http_reply_error(req, 409, "conflict", "%s", err);
		break;
	case -ENOENT:
		http_reply_error(req, 404, "not_found", "%s", err);
		break;
	default:
		http_reply_error(req, 500, "internal", "%s", err);
	}
}

static void registry_job_done(void *arg)
{
	struct registry_job *job = arg;
	struct http_request *req = job->req;

	if (job->path) {
		if (job->rc == 0)
			job->daemon->metrics.installs_ok++;
		else
			job->daemon->metrics.installs_failed++;
	}
	if (job->rc == 0) {
		/* The current version may have changed: the next call reads the store again. */
		const char *name =
		    job->name ? job->name : json_string_value(json_object_get(job->result, "name"));
		if (name)
			catalog_forget(name);
	}
	if (job->rc == 0 && job->result)
		http_reply_json(req, 201, job->result);
	else if (job->rc == 0)
		http_reply_empty(req, 204);
	else
		reply_registry_error(req, job->rc, job->err);
	http_resume(req);
	free(job->path);
	free(job->name);
	free(job);
}

static void submit(struct http_request *req, struct registry_job *job, worker_fn work)
{
	job->req = req;
	job->daemon = req->daemon;
	if (worker_submit(req->daemon->lws, work, registry_job_done, job) < 0) {
		http_reply_error(req, 503, "over_capacity", "no worker thread could be started");
		free(job->path);
		free(job->name);
		free(job);
		return;
	}
	http_defer(req);
}

void api_agents_install(struct http_request *req)
{
	json_t *body = http_body_json(req), *path;
	const char *key;
	json_t *value;

	if (!body)
		return;
	json_object_foreach(body, key, value)
	{
		if (strcmp(key, "path") != 0) {
			http_reply_error(req, 400, "bad_request", "unknown field \"%s\"", key);
			json_decref(body);
			return;
		}
	}
	path = json_object_get(body, "path");
	if (!json_is_string(path) || json_string_length(path) == 0) {
		http_reply_error(req, 400, "bad_request",
		                 "\"path\" must be the absolute path of an agent folder or its "
		                 "agent.json");
		json_decref(body);
		return;
	}
	struct registry_job *job = xcalloc(1, sizeof(*job));
	job->path = xstrdup(json_string_value(path));
	json_decref(body);
	submit(req, job, install_work);
}

void api_agents_uninstall(struct http_request *req)
{
	const char *force = http_query(req, "force");
	struct registry_job *job = xcalloc(1, sizeof(*job));

	job->name = xstrdup(req->params[0]);
	job->force = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
	submit(req, job, uninstall_work);
}

/* ---- operator config (admin) */

/* The route agent's current manifest; replies and returns NULL when there is none. */
static struct manifest *current_manifest(struct http_request *req)
{
	struct store_agent row = {0};
	struct manifest *m = NULL;
	char err[REGISTRY_ERR_MAX];
	int rc = store_agent_get(req->daemon->store, req->params[0], NULL, &row);

	if (rc == -ENOENT)
		http_reply_error(req, 404, "not_found", "agent %s is not installed",
		                 req->params[0]);
	else if (rc < 0)
		api_store_failed(req);
	else if (registry_manifest(&row, &m, err, sizeof(err)) < 0)
		http_reply_error(req, 500, "internal", "%s", err);
	store_agent_clear(&row);
	return m;
}

static void reply_config(struct http_request *req, const struct manifest *m)
{
	http_reply_json(req, 200,
	                json_pack("{s:o}", "config", agent_config_public(req->daemon->store, m)));
}

void api_config_get(struct http_request *req)
{
	struct manifest *m = current_manifest(req);

	if (m)
		reply_config(req, m);
	manifest_free(m);
}

/* Checks every key first, so a bad body changes nothing. */
static bool config_body_ok(struct http_request *req, const struct manifest *m, json_t *body)
{
	const char *key;
	json_t *value;

	if (!json_is_object(body)) {
		http_reply_error(req, 400, "bad_request",
		                 "the body is an object {\"KEY\": \"value\"}");
		return false;
	}
	json_object_foreach(body, key, value)
	{
		bool known = false;
		for (size_t i = 0; i < m->config_len; i++)
			known |= strcmp(m->config[i].name, key) == 0;
		if (!known) {
			http_reply_error(req, 400, "bad_request",
			                 "config %s is not declared by agent %s", key, m->name);
			return false;
		}
		if (!json_is_string(value) && !json_is_null(value)) {
			http_reply_error(req, 400, "bad_request",
			                 "config %s: a value is a string (or null to unset it)",
			                 key);
			return false;
		}
	}
	return true;
}

void api_config_put(struct http_request *req)
{
	struct manifest *m = current_manifest(req);
	json_t *body, *value;
	const char *key;
	int rc = 0;

	if (!m)
		return;
	body = http_body_json(req);
	if (!body || !config_body_ok(req, m, body)) {
		json_decref(body);
		manifest_free(m);
		return;
	}
	store_begin(req->daemon->store);
	json_object_foreach(body, key, value)
	{
		if (rc == 0 && json_is_null(value)) {
			rc = store_config_del(req->daemon->store, m->name, key);
			rc = rc == -ENOENT ? 0 : rc;
		} else if (rc == 0) {
			rc = store_config_set(req->daemon->store, m->name, key,
			                      json_string_value(value));
		}
	}
	if (rc == 0 && store_commit(req->daemon->store) == 0) {
		log_info("config.changed", "agent=%s keys=%zu", m->name, json_object_size(body));
		reply_config(req, m);
	} else {
		store_rollback(req->daemon->store);
		api_store_failed(req);
	}
	json_decref(body);
	manifest_free(m);
}
