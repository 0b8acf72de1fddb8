/* api_admin.c: operator routes. POST /v1/backup copies the live database into a new file
 * with SQLite's online backup API (store_backup). The copy runs on a worker thread with
 * its own store connection, so the loop goes on serving and writing meanwhile; one backup
 * runs at a time. */
#include "api.h"
#include "daemon.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct backup_job {
	struct http_request *req;
	struct daemon *daemon;
	char *path;
	int rc;
	char err[1024];
	int64_t bytes, took_ms;
};

/* The backup under way, if any; touched on the loop thread only. */
static const struct backup_job *running;

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void backup_work(void *arg)
{
	struct backup_job *job = arg;
	int64_t start = monotonic_ms();
	char *db = xasprintf("%s/agenthost.db", job->daemon->state_dir);
	struct store *st = NULL;
	struct stat sb;

	/* struct store is one connection of one thread: the worker opens its own. */
	job->rc = store_open(db, &st, job->err, sizeof(job->err));
	if (job->rc == 0)
		job->rc = store_backup(st, job->path, job->err, sizeof(job->err));
	else
		job->rc = -EIO;
	store_close(st);
	free(db);
	if (job->rc == 0 && stat(job->path, &sb) == 0)
		job->bytes = sb.st_size;
	job->took_ms = monotonic_ms() - start;
}

/* Replies to a failed backup; returns the status. */
static int reply_backup_error(struct http_request *req, const struct backup_job *job)
{
	switch (job->rc) {
	case -EEXIST:
		http_reply_error(req, 409, "conflict", "%s", job->err);
		return 409;
	case -ENOENT:
	case -ENOTDIR:
	case -EACCES:
	case -EPERM:
	case -EROFS:
	case -ELOOP:
	case -ENAMETOOLONG:
	case -EINVAL:
		http_reply_error(req, 422, "invalid_input", "%s", job->err);
		return 422;
	default: /* -ENOSPC, -EIO, ... : the daemon's side */
		http_reply_error(req, 500, "internal", "backup failed: %s", job->err);
		return 500;
	}
}

static void backup_done(void *arg)
{
	struct backup_job *job = arg;
	char q[1200], e[1200];

	running = NULL;
	if (job->rc == 0) {
		log_info("backup.done", "path=%s bytes=%lld took_ms=%lld",
		         log_quote(job->path, q, sizeof(q)), (long long)job->bytes,
		         (long long)job->took_ms);
		http_reply_json(job->req, 201,
		                json_pack("{s:s, s:I, s:I}", "path", job->path, "bytes",
		                          (json_int_t)job->bytes, "took_ms",
		                          (json_int_t)job->took_ms));
	} else {
		/* The client's mistakes (a file that exists, a folder that does not) are not the
		 * daemon's errors. */
		int status = reply_backup_error(job->req, job);

		log_emit(status >= 500 ? LOG_ERROR : LOG_WARN, "backup.failed",
		         "path=%s took_ms=%lld error=%s", log_quote(job->path, q, sizeof(q)),
		         (long long)job->took_ms, log_quote(job->err, e, sizeof(e)));
	}
	http_resume(job->req); /* frees the request if the client has gone */
	free(job->path);
	free(job);
}

/* The body's path, or NULL after replying 400/422. */
static char *backup_path(struct http_request *req)
{
	json_t *body = http_body_json(req), *value, *path;
	const char *key;
	char *out = NULL;

	if (!body)
		return NULL;
	if (!json_is_object(body)) {
		http_reply_error(req, 400, "bad_request",
		                 "the body is an object {\"path\": \"/absolute/file.db\"}");
		json_decref(body);
		return NULL;
	}
	json_object_foreach(body, key, value)
	{
		if (strcmp(key, "path") != 0) {
			http_reply_error(req, 400, "bad_request", "unknown field \"%s\"", key);
			json_decref(body);
			return NULL;
		}
	}
	path = json_object_get(body, "path");
	if (!json_is_string(path) || json_string_length(path) == 0 ||
	    strlen(json_string_value(path)) != json_string_length(path))
		http_reply_error(req, 400, "bad_request",
		                 "\"path\" must be the absolute path of the backup file to create");
	else if (json_string_value(path)[0] != '/')
		http_reply_error(req, 422, "invalid_input",
		                 "%s: the path must be absolute (the daemon does not share the "
		                 "client's working folder)",
		                 json_string_value(path));
	else
		out = xstrdup(json_string_value(path));
	json_decref(body);
	return out;
}

void api_backup(struct http_request *req)
{
	struct backup_job *job;
	char *path = backup_path(req);

	if (!path)
		return;
	if (running) {
		http_reply_error(req, 409, "conflict",
		                 "a backup to %s is under way: one backup runs at a time",
		                 running->path);
		free(path);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->req = req;
	job->daemon = req->daemon;
	job->path = path;
	if (worker_submit(req->daemon->lws, backup_work, backup_done, job) < 0) {
		/* As installs do: the daemon is out of threads, not broken. */
		http_reply_error(req, 503, "over_capacity", "no worker thread could be started");
		free(job->path);
		free(job);
		return;
	}
	running = job;
	http_defer(req);
}
