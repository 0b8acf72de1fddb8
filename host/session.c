/* session.c: the session manager — creation, the run queue, the event log and its
 * watchers, the agent's key-value requests, crash handling, and the housekeeping timer
 * (hibernation, expiry, unloading). See session.h for the design. */
#include "session.h"
#include "agent_config.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "manifest.h"
#include "registry.h"
#include "runs.h"
#include "store.h"
#include "supervisor.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#define BUCKETS 4096
#define CRASH_LIMIT 5
#define CRASH_WINDOW_MS 60000
#define CANCEL_GRACE_MS 5000
#define DESTROY_GRACE_MS 2000
#define CRON_US (1000 * 1000)
#define EXPIRY_EVERY_S 10
#define TRIM_EVERY 64

struct srun {
	char id[RUN_ID_LEN + 1];
	json_t *input;
	bool cancel_requested;
	int64_t created_at, started_at;
	struct srun *next;
};

struct session {
	struct daemon *d;
	char id[SESSION_ID_LEN + 1];
	char *agent, *version, *owner, *agent_dir;
	struct manifest *manifest;
	json_t *config;
	const char *state; /* static string */
	int64_t created_at, last_active_at, runs, last_seq;

	struct agent_proc *proc;
	bool proc_ready, resuming, retiring, destroying;

	struct srun *active, *queue_head, *queue_tail;
	int queued;
	struct session_watcher *watchers;
	int64_t crash_times[CRASH_LIMIT];
	int crash_next;

	session_created_fn created; /* pending create */
	void *created_ctx;

	struct session *hnext; /* hash bucket */
};

static struct daemon *daemon_;
static struct session *table[BUCKETS];
static int live_sessions; /* sessions with a process that is not being retired */
static lws_sorted_usec_list_t cron_timer;
static int64_t last_expiry_ms;

static void kick(struct session *s);
static bool room_available(struct daemon *d);
static int spawn_agent(struct session *s, bool resumed, char *err, size_t errlen);
static void session_free(struct session *s);

/* ---- the table of loaded sessions */

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % BUCKETS;
}

static struct session *table_get(const char *id)
{
	for (struct session *s = table[bucket_of(id)]; s; s = s->hnext)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static void table_add(struct session *s)
{
	unsigned b = bucket_of(s->id);

	s->hnext = table[b];
	table[b] = s;
}

static void table_remove(struct session *s)
{
	for (struct session **p = &table[bucket_of(s->id)]; *p; p = &(*p)->hnext) {
		if (*p == s) {
			*p = s->hnext;
			return;
		}
	}
}

const char *session_id(const struct session *s)
{
	return s->id;
}

/* ---- state and events */

static void set_state(struct session *s, const char *state)
{
	s->state = state;
	if (!s->destroying)
		store_session_set_state(s->d->store, s->id, state, s->last_active_at);
}

static void touch(struct session *s, int64_t add_runs)
{
	s->last_active_at = store_now_ms();
	s->runs += add_runs;
	if (!s->destroying)
		store_session_touch(s->d->store, s->id, s->last_active_at, add_runs);
}

/* Appends an event to the log, then hands it to the watchers. extra is stolen. */
static void emit(struct session *s, const char *type, const char *run, json_t *extra)
{
	int64_t now = store_now_ms(), seq = s->last_seq + 1;
	json_t *ev = run_event_json(seq, type, run, now, extra);
	char *body = json_dumps(ev, JSON_COMPACT);
	struct store_event row = {.seq = seq, .type = type, .run = run, .time = now, .body = body};
	struct session_watcher **wp;

	if (store_event_append(s->d->store, s->id, &row) < 0) {
		/* Never shown if not kept: a watcher could not resume past it. */
		log_error("session.event_lost", "session=%s seq=%lld type=%s error=\"%s\"", s->id,
		          (long long)seq, type, store_errmsg(s->d->store));
		goto out;
	}
	s->last_seq = seq;
	if (seq % TRIM_EVERY == 0)
		store_event_trim(s->d->store, s->id, s->d->cfg.events_kept);
	for (wp = &s->watchers; *wp;) {
		struct session_watcher *w = *wp;
		if (w->run && (!run || strcmp(w->run, run) != 0)) {
			wp = &w->next;
			continue;
		}
		struct session_watcher *next = w->next; /* w may free itself */
		if (w->event(w, s, ev) != 0)
			*wp = next; /* it asked to go */
		else
			wp = &w->next;
	}
out:
	free(body);
	json_decref(ev);
}

void session_watch(struct session *s, struct session_watcher *w)
{
	w->next = s->watchers;
	s->watchers = w;
}

void session_unwatch(struct session *s, struct session_watcher *w)
{
	for (struct session_watcher **wp = &s->watchers; *wp; wp = &(*wp)->next) {
		if (*wp == w) {
			*wp = w->next;
			return;
		}
	}
}

static void tell_watchers_gone(struct session *s)
{
	while (s->watchers) {
		struct session_watcher *w = s->watchers;
		s->watchers = w->next;
		w->gone(w, s);
	}
}

/* ---- JSON */

static void put_time(json_t *obj, const char *key, int64_t ms)
{
	char at[32];

	json_object_set_new(obj, key,
	                    ms ? json_string(time_rfc3339(ms, at, sizeof(at))) : json_null());
}

json_t *session_row_json(const struct store_session *row)
{
	json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", row->id, "agent",
	                        row->agent, "version", row->version, "state", row->state, "runs",
	                        (json_int_t)row->runs, "last_seq", (json_int_t)row->last_seq);

	put_time(out, "created_at", row->created_at);
	put_time(out, "last_active_at", row->last_active_at);
	return out;
}

json_t *session_json(struct session *s)
{
	struct store_session row = {.id = s->id,
	                            .agent = s->agent,
	                            .version = s->version,
	                            .owner = s->owner,
	                            .state = (char *)s->state,
	                            .created_at = s->created_at,
	                            .last_active_at = s->last_active_at,
	                            .runs = s->runs,
	                            .last_seq = s->last_seq};
	json_t *out = session_row_json(&row);

	json_object_set_new(out, "queued_runs", json_integer(s->queued));
	json_object_set_new(out, "active_run",
	                    s->active ? json_string(s->active->id) : json_null());
	return out;
}

/* ---- runs */

static char *dump_or_null(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void srun_free(struct srun *r)
{
	json_decref(r->input);
	free(r);
}

/* Records a run's end in the store, the log and the metrics. output/error borrowed. */
static void record_end(struct session *s, struct srun *r, const char *status, json_t *output,
                       json_t *error)
{
	struct run_record rec = {.status = status,
	                         .created_at = r->created_at,
	                         .started_at = r->started_at,
	                         .finished_at = store_now_ms()};
	char *out_text =
	    strcmp(status, "completed") == 0 ? dump_or_null(output ? output : json_null()) : NULL;
	char *err_text = dump_or_null(error);
	struct store_run row = {.id = r->id,
	                        .session = s->id,
	                        .status = (char *)status,
	                        .output = out_text,
	                        .error = err_text,
	                        .created_at = r->created_at,
	                        .started_at = r->started_at ? r->started_at : rec.finished_at,
	                        .finished_at = rec.finished_at};

	snprintf(rec.id, sizeof(rec.id), "%s", r->id);
	if (!rec.started_at)
		rec.started_at = rec.finished_at;
	store_run_update(s->d->store, &row);
	runs_account(s->d, &rec);
	json_t *extra = json_object();
	if (out_text)
		json_object_set(extra, "output", output ? output : json_null());
	if (error)
		json_object_set(extra, "error", error);
	emit(s, run_terminal_type(status), r->id, extra);
	free(out_text);
	free(err_text);
}

static json_t *error_json(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message);
}

/* Ends the active run and moves on to the next one. output/error are borrowed. */
static void finish_active(struct session *s, const char *status, json_t *output, json_t *error)
{
	struct srun *r = s->active;

	if (!r)
		return;
	s->active = NULL;
	if (s->proc)
		agent_proc_set_timer(s->proc, 0, SANDBOX_HOST_NONE, NULL);
	if (r->cancel_requested && strcmp(status, "completed") == 0)
		status = "cancelled"; /* docs/protocol.md: a cancelled run stays cancelled */
	json_t *err = error;
	if (strcmp(status, "cancelled") == 0 && !error)
		err = error_json("cancelled", "the run was cancelled");
	record_end(s, r, status, output, err);
	if (err != error)
		json_decref(err);
	touch(s, 1);
	if (s->proc && !s->destroying)
		set_state(s, "ready");
	srun_free(r);
	kick(s);
}

/* Starts the next queued run if the agent is ready and idle. */
static void kick(struct session *s)
{
	struct srun *r = s->queue_head;
	char detail[96];
	int64_t timeout_s = s->manifest->sandbox.limits.run_timeout_s;

	if (s->active || !r || s->destroying)
		return;
	if (!s->proc) {
		char err[320];
		if (spawn_agent(s, true, err, sizeof(err)) < 0) {
			/* Fail what waits rather than hold it forever. */
			while ((r = s->queue_head)) {
				s->queue_head = r->next;
				s->queued--;
				r->started_at = store_now_ms();
				record_end(s, r, "failed", NULL, error_json("spawn_failed", err));
				srun_free(r);
			}
			s->queue_tail = NULL;
		}
		return;
	}
	if (!s->proc_ready)
		return;
	s->queue_head = r->next;
	if (!s->queue_head)
		s->queue_tail = NULL;
	s->queued--;
	s->active = r;
	r->started_at = store_now_ms();
	struct store_run row = {.id = r->id,
	                        .session = s->id,
	                        .status = "running",
	                        .created_at = r->created_at,
	                        .started_at = r->started_at};
	store_run_update(s->d->store, &row);
	set_state(s, "running");
	touch(s, 0);
	emit(s, "run.started", r->id, NULL);
	json_t *frame = json_pack("{s:s, s:s, s:O}", "t", "run", "run", r->id, "input", r->input);
	agent_proc_reset_output(s->proc);
	agent_proc_send(s->proc, frame);
	json_decref(frame);
	snprintf(detail, sizeof(detail), "the run took longer than %lld s", (long long)timeout_s);
	agent_proc_set_timer(s->proc, timeout_s * 1000, SANDBOX_HOST_TIMEOUT, detail);
}

int session_run(struct session *s, json_t *input, char *run_id, const char **code, char *message,
                size_t msglen)
{
	struct srun *r;

	if (s->destroying) {
		*code = "not_found";
		snprintf(message, msglen, "session %s is being destroyed", s->id);
		return 404;
	}
	if (strcmp(s->state, "failed") == 0) {
		*code = "conflict";
		snprintf(message, msglen,
		         "session %s failed (its agent crashed %d times within 60 s); destroy it",
		         s->id, CRASH_LIMIT);
		return 409;
	}
	if (s->queued >= s->manifest->session.max_queued_runs && (s->active || !s->proc_ready)) {
		*code = "session_busy";
		snprintf(message, msglen, "session %s has %d runs waiting (max_queued_runs)", s->id,
		         s->queued);
		return 429;
	}
	if (!s->proc && !room_available(s->d)) {
		*code = "over_capacity";
		snprintf(message, msglen,
		         "%d sessions are live (--max-sessions) and none is idle: try again later",
		         live_sessions);
		return 503;
	}
	r = xcalloc(1, sizeof(*r));
	random_id("r_", 16, r->id, sizeof(r->id));
	r->input = json_incref(input);
	r->created_at = store_now_ms();
	char *input_text = dump_or_null(input);
	struct store_run row = {.id = r->id,
	                        .session = s->id,
	                        .status = "queued",
	                        .input = input_text,
	                        .created_at = r->created_at};
	int rc = store_run_insert(s->d->store, &row);
	free(input_text);
	if (rc < 0) {
		srun_free(r);
		*code = "internal";
		snprintf(message, msglen, "state store: %s", store_errmsg(s->d->store));
		return 500;
	}
	if (s->queue_tail)
		s->queue_tail->next = r;
	else
		s->queue_head = r;
	s->queue_tail = r;
	s->queued++;
	snprintf(run_id, RUN_ID_LEN + 1, "%s", r->id);
	return 0;
}

/* Called by transports after they registered their watcher for the new run. */
void session_kick(struct session *s)
{
	kick(s);
}

int session_cancel(struct session *s, const char *run_id)
{
	struct srun **rp, *r;

	for (rp = &s->queue_head; (r = *rp); rp = &r->next) {
		if (strcmp(r->id, run_id) != 0)
			continue;
		*rp = r->next;
		if (s->queue_tail == r) {
			s->queue_tail = NULL;
			for (struct srun *t = s->queue_head; t; t = t->next)
				s->queue_tail = t;
		}
		s->queued--;
		record_end(s, r, "cancelled", NULL,
		           error_json("cancelled", "cancelled before it started"));
		srun_free(r);
		return 0;
	}
	r = s->active;
	if (!r || strcmp(r->id, run_id) != 0)
		return -ENOENT;
	if (!r->cancel_requested) {
		r->cancel_requested = true;
		json_t *frame = json_pack("{s:s, s:s}", "t", "cancel", "run", r->id);
		agent_proc_send(s->proc, frame);
		json_decref(frame);
		agent_proc_set_timer(s->proc, CANCEL_GRACE_MS, SANDBOX_HOST_OTHER,
		                     "it did not stop within 5 s of cancel");
	}
	return 0;
}

/* ---- the agent's key-value requests */

static void kv_reply(struct session *s, json_t *req, json_t *value, const char *code,
                     const char *message)
{
	json_t *res =
	    json_pack("{s:s, s:O, s:b}", "t", "kv.result", "req", req, "ok", code == NULL);

	if (value)
		json_object_set_new(res, "value", value);
	if (code)
		json_object_set_new(res, "error", error_json(code, message));
	agent_proc_send(s->proc, res);
	json_decref(res);
}

static int add_key(const char *key, const char *value, void *ctx)
{
	(void)value;
	json_array_append_new(ctx, json_string(key));
	return 0;
}

static void handle_kv(struct session *s, int kind, json_t *frame)
{
	struct store *st = s->d->store;
	json_t *req = json_object_get(frame, "req");
	const char *key = json_string_value(json_object_get(frame, "key"));
	char *text = NULL;
	int rc;

	if (kind != FRAME_KV_LIST && (!key || !key[0] || strlen(key) > SESSION_KV_KEY_MAX)) {
		kv_reply(s, req, NULL, "invalid_key", "a key is 1 to 512 bytes");
		return;
	}
	switch (kind) {
	case FRAME_KV_GET:
		rc = store_kv_get(st, s->id, key, &text);
		if (rc == 0)
			kv_reply(s, req, json_loads(text, JSON_DECODE_ANY, NULL), NULL, NULL);
		else if (rc == -ENOENT)
			kv_reply(s, req, NULL, NULL, NULL);
		break;
	case FRAME_KV_SET:
		text = json_dumps(json_object_get(frame, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text || strlen(text) > SESSION_KV_VALUE_MAX) {
			kv_reply(s, req, NULL, "too_large", "a value is at most 1 MiB of JSON");
			free(text);
			return;
		}
		rc = store_kv_set(st, s->id, key, text);
		if (rc == 0)
			kv_reply(s, req, NULL, NULL, NULL);
		break;
	case FRAME_KV_DEL:
		rc = store_kv_del(st, s->id, key);
		if (rc == 0 || rc == -ENOENT)
			kv_reply(s, req, json_boolean(rc == 0), NULL, NULL);
		if (rc == -ENOENT)
			rc = 0;
		break;
	default: {
		const char *prefix = json_string_value(json_object_get(frame, "prefix"));
		json_t *keys = json_array();
		rc = store_kv_list(st, s->id, prefix ? prefix : "", add_key, keys);
		if (rc == 0)
			kv_reply(s, req, keys, NULL, NULL);
		else
			json_decref(keys);
	}
	}
	if (rc < 0 && rc != -ENOENT)
		kv_reply(s, req, NULL, "unavailable", store_errmsg(st));
	s->d->metrics.kv_ops++;
	free(text);
}

/* ---- the agent process */

static void agent_ready(struct agent_proc *p, void *owner)
{
	struct session *s = owner;

	(void)p;
	s->proc_ready = true;
	if (s->resuming) {
		s->resuming = false;
		emit(s, "session.resumed", NULL, NULL);
	}
	set_state(s, "ready");
	if (s->created) {
		session_created_fn done = s->created;
		s->created = NULL;
		done(s->created_ctx, s, 201, NULL, NULL);
	}
	kick(s);
}

static int run_matches(struct session *s, json_t *frame)
{
	const char *run = json_string_value(json_object_get(frame, "run"));

	return s->active && run && strcmp(run, s->active->id) == 0;
}

static int agent_frame(struct agent_proc *p, int kind, json_t *frame, void *owner)
{
	struct session *s = owner;

	(void)p;
	switch (kind) {
	case FRAME_KV_GET:
	case FRAME_KV_SET:
	case FRAME_KV_DEL:
	case FRAME_KV_LIST:
		handle_kv(s, kind, frame);
		return 0;
	case FRAME_EVENT:
		if (!run_matches(s, frame))
			return -1;
		emit(s, "run.output", s->active->id,
		     json_pack("{s:O}", "data", json_object_get(frame, "data")));
		return 0;
	case FRAME_DONE:
		if (!run_matches(s, frame))
			return -1;
		finish_active(s, "completed", json_object_get(frame, "output"), NULL);
		return 0;
	case FRAME_ERROR: {
		if (!run_matches(s, frame))
			return -1;
		json_t *err = json_pack("{s:O, s:O}", "code", json_object_get(frame, "code"),
		                        "message", json_object_get(frame, "message"));
		finish_active(s, s->active->cancel_requested ? "cancelled" : "failed", NULL, err);
		json_decref(err);
		return 0;
	}
	default:
		return -1;
	}
}

static bool crashed_too_often(struct session *s)
{
	int64_t now = store_now_ms();
	int recent = 0;

	s->crash_times[s->crash_next++ % CRASH_LIMIT] = now;
	for (int i = 0; i < CRASH_LIMIT; i++)
		if (s->crash_times[i] && now - s->crash_times[i] <= CRASH_WINDOW_MS)
			recent++;
	return recent >= CRASH_LIMIT;
}

static void fail_queue(struct session *s, const char *code, const char *message)
{
	struct srun *r;

	while ((r = s->queue_head)) {
		s->queue_head = r->next;
		s->queued--;
		json_t *err = error_json(code, message);
		record_end(s, r, "failed", NULL, err);
		json_decref(err);
		srun_free(r);
	}
	s->queue_tail = NULL;
}

static void agent_ended(struct agent_proc *p, const struct sandbox_exit *why, const char *detail,
                        void *owner)
{
	struct session *s = owner;
	const char *reason = sandbox_exit_reason_name(why->reason);
	char message[320];
	bool retired = s->retiring;

	(void)p;
	s->proc = NULL;
	s->proc_ready = false;
	s->retiring = false;
	if (!retired)
		live_sessions--;
	snprintf(message, sizeof(message), "%s", detail[0] ? detail : reason);

	if (s->destroying) {
		session_free(s);
		return;
	}
	if (s->created) {
		/* It never became ready: the create fails and leaves nothing behind. */
		session_created_fn done = s->created;
		s->created = NULL;
		char text[400];
		snprintf(text, sizeof(text), "the agent did not start: %s: %s", reason, message);
		done(s->created_ctx, NULL, 500, "internal", text);
		s->destroying = true;
		store_session_delete(s->d->store, s->id);
		table_remove(s);
		session_free(s);
		return;
	}
	if (retired) {
		set_state(s, "hibernated");
		kick(s); /* a run that came in meanwhile respawns it */
		return;
	}
	json_t *err = error_json(reason, message);
	if (s->active)
		finish_active(s, s->active->cancel_requested ? "cancelled" : "failed", NULL, err);
	if (why->reason == SANDBOX_KILLED && why->signal && !s->active && detail[0] &&
	    strstr(detail, "cancel")) {
		/* Our own kill after an ignored cancel: not the agent's crash. */
		json_decref(err);
		set_state(s, "hibernated");
		kick(s);
		return;
	}
	emit(s, "session.crashed", NULL, json_pack("{s:o}", "error", err));
	if (crashed_too_often(s)) {
		set_state(s, "failed");
		fail_queue(s, "session_failed", "the session's agent crashed 5 times within 60 s");
		log_warn("session.failed", "session=%s agent=%s", s->id, s->agent);
		return;
	}
	set_state(s, "crashed");
	kick(s);
}

/* ---- logs: STATE/logs/ID.log, and ID.log.old once it passes half the cap */

#define LOG_HALF (512 * 1024)

char *session_log_path(struct daemon *d, const char *id, bool old)
{
	return xasprintf("%s/logs/%s.log%s", d->state_dir, id, old ? ".old" : "");
}

static void agent_output(struct agent_proc *p, const char *data, size_t len, void *owner)
{
	struct session *s = owner;
	char *path = session_log_path(s->d, s->id, false);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	struct stat sb;

	(void)p;
	if (fd >= 0) {
		if (write(fd, data, len) < 0) {
			/* A full disk loses log lines, never the session. */
		}
		if (fstat(fd, &sb) == 0 && sb.st_size > LOG_HALF) {
			char *old = session_log_path(s->d, s->id, true);
			rename(path, old);
			free(old);
		}
		close(fd);
	}
	free(path);
}

static void remove_logs(struct session *s)
{
	for (int old = 0; old < 2; old++) {
		char *path = session_log_path(s->d, s->id, old);
		unlink(path);
		free(path);
	}
}

static const struct agent_proc_ops session_ops = {
    .ready = agent_ready,
    .frame = agent_frame,
    .output = agent_output,
    .ended = agent_ended,
};

/* The least recently used live session that could be hibernated now, or NULL. */
static struct session *idle_lru(void)
{
	struct session *lru = NULL;

	for (int b = 0; b < BUCKETS; b++)
		for (struct session *s = table[b]; s; s = s->hnext)
			if (s->proc && s->proc_ready && !s->active && !s->queue_head &&
			    !s->retiring && !s->destroying &&
			    (!lru || s->last_active_at < lru->last_active_at))
				lru = s;
	return lru;
}

static bool room_available(struct daemon *d)
{
	return live_sessions < d->cfg.max_sessions || idle_lru();
}

static bool make_room(struct daemon *d)
{
	struct session *lru;

	if (live_sessions < d->cfg.max_sessions)
		return true;
	lru = idle_lru();
	if (!lru)
		return false;
	lru->retiring = true;
	live_sessions--;
	emit(lru, "session.hibernated", NULL, json_pack("{s:s}", "reason", "max_sessions"));
	agent_proc_retire(lru->proc);
	return true;
}

/* The operator's values are read at every spawn, so a changed or rotated value reaches
 * the session's next process; the session row keeps only the create body's own values. */
static int spawn_agent(struct session *s, bool resumed, char *err, size_t errlen)
{
	struct agent_proc_spec spec = {.manifest = s->manifest,
	                               .agent_dir = s->agent_dir,
	                               .mode = "session",
	                               .session = s->id,
	                               .resumed = resumed};
	const char *code;
	int status = 0, rc;

	if (!make_room(s->d)) {
		snprintf(err, errlen, "%d sessions are live (--max-sessions) and none is idle",
		         live_sessions);
		return -EAGAIN;
	}
	spec.config =
	    agent_config_build(s->d->store, s->manifest, s->config, &code, err, errlen, &status);
	if (!spec.config)
		return -EINVAL;
	rc = supervisor_spawn(s->d, &spec, &session_ops, s, &s->proc, err, errlen);
	json_decref(spec.config);
	if (rc < 0)
		return rc;
	live_sessions++;
	s->proc_ready = false;
	s->resuming = resumed;
	set_state(s, "starting");
	return 0;
}

/* ---- loading and creating */

static void session_free(struct session *s)
{
	struct srun *r;

	while ((r = s->queue_head)) {
		s->queue_head = r->next;
		srun_free(r);
	}
	if (s->active)
		srun_free(s->active);
	manifest_free(s->manifest);
	json_decref(s->config);
	free(s->agent);
	free(s->version);
	free(s->owner);
	free(s->agent_dir);
	free(s);
}

/* A session object for a stored row, with its agent version's manifest. */
static struct session *session_from_row(struct daemon *d, const struct store_session *row,
                                        char *err, size_t errlen)
{
	struct store_agent agent = {0};
	struct manifest *m = NULL;
	struct session *s;

	if (store_agent_get(d->store, row->agent, row->version, &agent) < 0) {
		snprintf(err, errlen, "agent %s %s is no longer installed", row->agent,
		         row->version);
		return NULL;
	}
	if (registry_manifest(&agent, &m, err, errlen) < 0) {
		store_agent_clear(&agent);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->d = d;
	snprintf(s->id, sizeof(s->id), "%s", row->id);
	s->agent = xstrdup(row->agent);
	s->version = xstrdup(row->version);
	s->owner = xstrdup(row->owner);
	s->agent_dir = xstrdup(agent.path);
	s->manifest = m;
	s->state = strcmp(row->state, "failed") == 0 ? "failed" : "hibernated";
	s->created_at = row->created_at;
	s->last_active_at = row->last_active_at;
	s->runs = row->runs;
	s->last_seq = row->last_seq;
	s->config = row->config ? json_loads(row->config, 0, NULL) : NULL;
	if (!s->config)
		s->config = json_object();
	store_agent_clear(&agent);
	return s;
}

int session_find(struct daemon *d, const char *id, const struct auth_identity *who,
                 struct session **out)
{
	struct store_session row = {0};
	struct session *s = table_get(id);
	char err[320];
	int rc;

	if (!s) {
		rc = store_session_get(d->store, id, &row);
		if (rc < 0)
			return rc == -ENOENT ? -ENOENT : -EIO;
		s = session_from_row(d, &row, err, sizeof(err));
		store_session_clear(&row);
		if (!s) {
			log_warn("session.load_failed", "session=%s error=\"%s\"", id, err);
			return -EIO;
		}
		table_add(s);
	}
	if (who && !who->admin && strcmp(s->owner, who->token_id) != 0)
		return -ENOENT;
	*out = s;
	return 0;
}

int session_create(struct daemon *d, const char *agent, const char *owner, json_t *given,
                   session_created_fn done, void *ctx, const char **code, char *message,
                   size_t msglen)
{
	struct store_agent row = {0};
	struct manifest *m = NULL;
	struct session *s;
	json_t *config;
	char err[320], node[8];
	int status = 0, rc = store_agent_get(d->store, agent, NULL, &row);

	if (rc < 0) {
		*code = rc == -ENOENT ? "not_found" : "internal";
		snprintf(message, msglen,
		         rc == -ENOENT ? "agent %s is not installed" : "state store: %s",
		         rc == -ENOENT ? agent : store_errmsg(d->store));
		return rc == -ENOENT ? 404 : 500;
	}
	if (registry_manifest(&row, &m, err, sizeof(err)) < 0) {
		*code = "internal";
		snprintf(message, msglen, "%s", err);
		store_agent_clear(&row);
		return 500;
	}
	if (!m->mode_session) {
		*code = "bad_request";
		snprintf(message, msglen, "agent %s does not take sessions (its modes: invoke)",
		         agent);
		status = 400;
	}
	/* Checked now (undeclared, secret or missing keys are refused); built again at spawn. */
	config =
	    status ? NULL : agent_config_build(d->store, m, given, code, message, msglen, &status);
	json_decref(config);
	config = given ? json_deep_copy(given) : json_object();
	if (status) {
		json_decref(config);
		manifest_free(m);
		store_agent_clear(&row);
		return status;
	}

	s = xcalloc(1, sizeof(*s));
	s->d = d;
	snprintf(node, sizeof(node), "%.4s", d->cfg.node_id);
	random_id("", 16, s->id + 6, sizeof(s->id) - 6);
	memcpy(s->id, "s_", 2);
	memcpy(s->id + 2, node, 4);
	s->agent = xstrdup(row.name);
	s->version = xstrdup(row.version);
	s->owner = xstrdup(owner);
	s->agent_dir = xstrdup(row.path);
	s->manifest = m;
	s->config = config;
	s->state = "starting";
	s->created_at = s->last_active_at = store_now_ms();
	store_agent_clear(&row);

	char *config_text = json_dumps(config, JSON_COMPACT);
	struct store_session srow = {.id = s->id,
	                             .agent = s->agent,
	                             .version = s->version,
	                             .owner = s->owner,
	                             .state = "starting",
	                             .config = config_text,
	                             .created_at = s->created_at,
	                             .last_active_at = s->last_active_at};
	rc = store_session_insert(d->store, &srow);
	free(config_text);
	if (rc < 0) {
		*code = "internal";
		snprintf(message, msglen, "state store: %s", store_errmsg(d->store));
		session_free(s);
		return 500;
	}
	rc = spawn_agent(s, false, err, sizeof(err));
	if (rc < 0) {
		store_session_delete(d->store, s->id);
		*code = rc == -EAGAIN ? "over_capacity" : "internal";
		snprintf(message, msglen, "%s", err);
		session_free(s);
		return rc == -EAGAIN ? 503 : 500;
	}
	table_add(s);
	s->created = done;
	s->created_ctx = ctx;
	d->metrics.sessions_created++;
	return 0;
}

/* ---- destroy */

int session_destroy(struct session *s)
{
	struct srun *r;

	if (s->destroying)
		return 0;
	s->destroying = true;
	table_remove(s);
	tell_watchers_gone(s);
	while ((r = s->queue_head)) {
		s->queue_head = r->next;
		srun_free(r);
	}
	s->queue_tail = NULL;
	s->queued = 0;
	store_session_delete(s->d->store, s->id);
	remove_logs(s);
	log_info("session.destroyed", "session=%s agent=%s", s->id, s->agent);
	if (!s->proc) {
		session_free(s);
		return 0;
	}
	/* The agent gets destroy and a grace period; its scratch goes with its process. */
	json_t *frame = json_pack("{s:s}", "t", "destroy");
	if (s->proc_ready && agent_proc_send(s->proc, frame) == 0)
		agent_proc_set_timer(s->proc, DESTROY_GRACE_MS, SANDBOX_HOST_OTHER,
		                     "destroyed (grace period over)");
	else
		agent_proc_kill(s->proc, SANDBOX_HOST_OTHER, "destroyed");
	json_decref(frame);
	if (!s->retiring)
		live_sessions--;
	s->retiring = true; /* its end is not a crash */
	return 0;
}

int session_kv_put(struct session *s, const char *key, const char *value)
{
	return store_kv_set(s->d->store, s->id, key, value);
}

/* ---- housekeeping */

/* At most this many sessions hibernate per housekeeping pass, the rest on the next ones:
 * a burst of thousands of agents ending at once also means thousands of seccomp programs
 * freed at once, which this kernel does not survive (docs/sandbox.md). */
#define HIBERNATIONS_PER_PASS 64

static bool hibernate_idle(struct session *s, int64_t now)
{
	int64_t idle_ms = s->manifest->session.hibernate_after_s * 1000;

	if (!s->proc || !s->proc_ready || s->active || s->queue_head || s->retiring ||
	    s->destroying || now - s->last_active_at < idle_ms)
		return false;
	s->retiring = true;
	live_sessions--;
	emit(s, "session.hibernated", NULL, json_pack("{s:s}", "reason", "idle"));
	agent_proc_retire(s->proc);
	return true;
}

/* A session that crashed within the window stays loaded: its crash count lives here. */
static bool crashed_recently(const struct session *s, int64_t now)
{
	for (int i = 0; i < CRASH_LIMIT; i++)
		if (s->crash_times[i] && now - s->crash_times[i] <= CRASH_WINDOW_MS)
			return true;
	return false;
}

static bool unloadable(const struct session *s, int64_t now)
{
	return !s->proc && !s->watchers && !s->active && !s->queue_head && !s->created &&
	       !s->destroying && !crashed_recently(s, now);
}

struct expiry {
	struct daemon *d;
	int64_t now;
	char **ids;
	size_t n;
};

/* Sessions idle past their agent's expire_after_s (read from the loaded object or the
 * installed manifest). */
static int check_expiry(const struct store_session *row, void *ctx)
{
	struct expiry *e = ctx;
	struct session *s = table_get(row->id);
	int64_t expire_s;

	if (s) {
		expire_s = s->manifest->session.expire_after_s;
	} else {
		struct store_agent agent = {0};
		struct manifest *m = NULL;
		char err[320];
		if (store_agent_get(e->d->store, row->agent, row->version, &agent) < 0 ||
		    registry_manifest(&agent, &m, err, sizeof(err)) < 0) {
			store_agent_clear(&agent);
			return 0;
		}
		expire_s = m->session.expire_after_s;
		manifest_free(m);
		store_agent_clear(&agent);
	}
	if (e->now - row->last_active_at >= expire_s * 1000) {
		e->ids = xrealloc(e->ids, (e->n + 1) * sizeof(char *));
		e->ids[e->n++] = xstrdup(row->id);
	}
	return 0;
}

static void expire_sessions(struct daemon *d, int64_t now)
{
	struct expiry e = {.d = d, .now = now};

	store_session_list_idle(d->store, now - 1000, 10000, check_expiry, &e);
	for (size_t i = 0; i < e.n; i++) {
		struct session *s;
		if (session_find(d, e.ids[i], NULL, &s) == 0 && !s->active && !s->queue_head) {
			log_info("session.expired", "session=%s", s->id);
			session_destroy(s);
		}
		free(e.ids[i]);
	}
	free(e.ids);
}

/* The one housekeeping pass, once a second. */
static void session_cron(lws_sorted_usec_list_t *sul)
{
	int64_t now = store_now_ms();
	int hibernated = 0;

	(void)sul;
	for (int b = 0; b < BUCKETS; b++) {
		for (struct session **sp = &table[b]; *sp;) {
			struct session *s = *sp;
			if (hibernated < HIBERNATIONS_PER_PASS && hibernate_idle(s, now))
				hibernated++;
			if (unloadable(s, now)) {
				*sp = s->hnext;
				session_free(s);
				continue;
			}
			sp = &s->hnext;
		}
	}
	if (now - last_expiry_ms >= EXPIRY_EVERY_S * 1000) {
		last_expiry_ms = now;
		expire_sessions(daemon_, now);
	}
	lws_sul_schedule(daemon_->lws, 0, &cron_timer, session_cron, CRON_US);
}

/* ---- start-up: runs the previous daemon left going */

struct live_row {
	char *id;
	int64_t last_seq;
};

struct live_rows {
	struct live_row *rows;
	size_t n;
};

static int collect_running(const struct store_session *row, void *ctx)
{
	struct live_rows *l = ctx;

	if (strcmp(row->state, "running") != 0)
		return 0;
	l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
	l->rows[l->n++] = (struct live_row){xstrdup(row->id), row->last_seq};
	return 0;
}

struct open_run {
	char run[RUN_ID_LEN + 1]; /* the last run.started not followed by its end */
};

static int find_open_run(const struct store_event *ev, void *ctx)
{
	struct open_run *o = ctx;

	if (strcmp(ev->type, "run.started") == 0 && ev->run)
		snprintf(o->run, sizeof(o->run), "%s", ev->run);
	else if (ev->run && strcmp(ev->run, o->run) == 0 && strncmp(ev->type, "run.", 4) == 0 &&
	         strcmp(ev->type, "run.output") != 0)
		o->run[0] = '\0';
	return 0;
}

/* A run that was going on when the previous daemon died gets its run.failed event, so a
 * client following the log sees it end (its record is failed by the store). */
static void end_interrupted_runs(struct daemon *d)
{
	struct live_rows l = {0};

	store_session_list(d->store, NULL, collect_running, &l);
	for (size_t i = 0; i < l.n; i++) {
		struct open_run o = {""};
		int64_t seq = l.rows[i].last_seq + 1, now = store_now_ms();

		store_event_list(d->store, l.rows[i].id, l.rows[i].last_seq - 1000, 0,
		                 find_open_run, &o);
		if (o.run[0]) {
			json_t *ev = run_event_json(
			    seq, "run.failed", o.run, now,
			    json_pack("{s:o}", "error",
			              error_json("killed", "the daemon stopped during the run")));
			char *body = json_dumps(ev, JSON_COMPACT);
			struct store_event row = {.seq = seq,
			                          .type = "run.failed",
			                          .run = o.run,
			                          .time = now,
			                          .body = body};
			store_event_append(d->store, l.rows[i].id, &row);
			free(body);
			json_decref(ev);
		}
		free(l.rows[i].id);
	}
	free(l.rows);
}

int sessions_init(struct daemon *d)
{
	char err[128];
	char *text;
	int n;

	daemon_ = d;
	text = xasprintf("%s/logs", d->state_dir);
	mkdir(text, 0700);
	free(text);
	end_interrupted_runs(d);
	n = store_session_hibernate_all(d->store);
	if (n > 0)
		log_info("sessions.hibernated_at_start", "count=%d", n);
	json_t *killed = error_json("killed", "the daemon stopped during the run");
	text = json_dumps(killed, JSON_COMPACT);
	json_decref(killed);
	store_run_fail_unfinished(d->store, text, store_now_ms());
	free(text);
	(void)err;
	last_expiry_ms = store_now_ms();
	lws_sul_schedule(d->lws, 0, &cron_timer, session_cron, CRON_US);
	return n < 0 ? n : 0;
}

void sessions_shutdown(void)
{
	if (!daemon_)
		return;
	lws_sul_schedule(daemon_->lws, 0, &cron_timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
	for (int b = 0; b < BUCKETS; b++) {
		while (table[b]) {
			struct session *s = table[b];
			table[b] = s->hnext;
			tell_watchers_gone(s);
			s->destroying = true; /* no more store writes: the rows stay for restart */
			if (s->proc)
				agent_proc_set_owner(s->proc, NULL);
			s->proc = NULL;
			session_free(s);
		}
	}
}
