/* session.h: stateful sessions (DESIGN §5, §6). A session is a row in the store plus, while
 * it is loaded, this in-memory object: its agent process (or none when hibernated), its
 * queue of runs (one at a time, in order), and the watchers that receive its events.
 *
 * DESIGN: every event is appended to the session's log in the store before any watcher
 * sees it, so a watcher that reconnects resumes from the store without gaps. Sessions
 * are loaded on demand and unloaded when hibernated and unwatched, so 100,000 hibernated
 * sessions cost the daemon only their rows. One housekeeping timer (session_cron, once a
 * second) does hibernation, expiry and unloading, in one place. A session's process ending
 * unexpectedly is a crash: the active run fails with the precise reason, the log gets
 * session.crashed, and the next run respawns it with resumed=true; five crashes within
 * 60 s put the session in state "failed".
 *
 * Sessions know nothing of HTTP or lws: transports implement struct session_watcher. */
#ifndef AGENTHOST_SESSION_H
#define AGENTHOST_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"

struct daemon;
struct session;

#define SESSION_ID_LEN 38 /* "s_" + 4 hex node id + 32 hex random */
#define SESSION_KV_KEY_MAX 512
#define SESSION_KV_VALUE_MAX (1024 * 1024)

/* Something that receives a session's events: an SSE stream, a run waiting for its end, a
 * WebSocket. Owned by the transport; registered with session_watch. */
struct session_watcher {
	/* An event was appended. ev is borrowed. Return nonzero to be removed (then `gone` is
	 * not called). */
	int (*event)(struct session_watcher *w, struct session *s, const json_t *ev);
	/* The session is going away (destroyed, or the daemon stops); the watcher is removed. */
	void (*gone)(struct session_watcher *w, struct session *s);
	const char *run; /* receive only this run's events, or NULL for all */
	struct session_watcher *next;
};

/* Creation completes asynchronously (when the agent answers ready, or fails). */
typedef void (*session_created_fn)(void *ctx, struct session *s, int status, const char *code,
                                   const char *message);

/* At start-up: sessions of the previous daemon become hibernated, their unfinished runs
 * failed; the housekeeping timer starts. */
int sessions_init(struct daemon *d);
/* At shutdown: every watcher is told `gone`, every process killed, memory freed. */
void sessions_shutdown(void);

/* Starts a session of the current version of agent for owner (a token id). config is the
 * create body's config object (borrowed, may be NULL). On a synchronous refusal returns
 * an HTTP status (4xx/5xx) with code and message filled and done is never called; else
 * returns 0 and done is called exactly once: status 201 with the session, or 5xx. */
int session_create(struct daemon *d, const char *agent, const char *owner, json_t *config,
                   session_created_fn done, void *ctx, const char **code, char *message,
                   size_t msglen);

/* Finds a session the caller may see (its owner, or an admin), loading it if needed.
 * Returns 0, -ENOENT (missing or not the caller's), or -EIO. */
int session_find(struct daemon *d, const char *id, const struct auth_identity *who,
                 struct session **out);

/* The session as JSON (new reference). */
json_t *session_json(struct session *s);
/* A stored session row as JSON (for listings, without loading it). */
struct store_session;
json_t *session_row_json(const struct store_session *row);

const char *session_id(const struct session *s);

/* Queues a run (input borrowed). Returns 0 with the run id in run_id[RUN_ID_LEN + 1], or
 * an HTTP status with code and message: 429 session_busy (queue full), 409 conflict
 * (state failed), 503 over_capacity (no room for its process), 500. */
int session_run(struct session *s, json_t *input, char *run_id, const char **code, char *message,
                size_t msglen);

/* Starts the next queued run if it can. Transports call it after session_run and after
 * registering the watcher of the new run, so that watcher sees run.started. */
void session_kick(struct session *s);

/* Cancels a queued or running run. 0, or -ENOENT (unknown or already finished). */
int session_cancel(struct session *s, const char *run_id);

/* Destroys the session: agent told destroy, killed after a grace period, rows, KV,
 * events and runs deleted, watchers told gone. s is invalid afterwards. */
int session_destroy(struct session *s);

void session_watch(struct session *s, struct session_watcher *w);
void session_unwatch(struct session *s, struct session_watcher *w);

/* STATE/logs/ID.log (old: the older half, ID.log.old). Caller frees. */
char *session_log_path(struct daemon *d, const char *id, bool old);

/* KV for clients (the agent uses the protocol). value is JSON text. */
int session_kv_put(struct session *s, const char *key, const char *value);

#endif
