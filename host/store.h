/* store.h: the daemon's persistent state in one SQLite database (WAL). Every SQL
 * statement of the project lives in store.c; the rest of the host sees typed rows.
 *
 * Contract for every function returning int: 0 on success, a negative errno-style code
 * on failure (-ENOENT: no such row, -EEXIST: the row exists, -EIO: SQLite failed, the
 * message is in store_errmsg()). Strings in the row structs returned to the caller are
 * owned by that struct: release them with the matching *_clear(). Rows handed to a
 * callback are borrowed for the duration of the call only.
 * Also: -EINVAL for an argument the schema rejects (a NULL where a value is required), and
 * a write that names a session that does not exist (KV, events) gives -ENOENT. A callback
 * may call other store functions on the same connection, but not the list it is called
 * from (that gives -EIO).
 *
 * One struct store is one connection and is not thread-safe; a thread that needs the
 * database opens its own (SQLite serializes writers; WAL lets readers go on). */
#ifndef AGENTHOST_STORE_H
#define AGENTHOST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Time in the store is milliseconds since the Unix epoch. */
int64_t store_now_ms(void);

/* Opens (creating if needed) the database at path, sets WAL + synchronous=NORMAL +
 * foreign keys + a busy timeout, and migrates the schema forward to the newest version.
 * A database from a newer agenthost (version above ours) is refused with -ENOTSUP. On
 * failure writes the cause (naming path) to err and returns a negative code (-EIO for
 * SQLite failures); *out is then NULL. err may be NULL. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *st); /* NULL is fine */

/* The last SQLite error message of this connection (borrowed, valid until next call). */
const char *store_errmsg(struct store *st);

/* The newest schema version this code knows: the number of migrations in store.c. */
#define STORE_SCHEMA_VERSION 2

/* The schema version the database is at (PRAGMA user_version), or a negative code. */
int store_schema_version(struct store *st);

/* PRAGMA quick_check: 0 when the database is sound, -EIO with the finding otherwise. */
int store_integrity_check(struct store *st);

/* Copies the database, as of one moment, into a new file at path with SQLite's online
 * backup API, while other connections go on reading and writing (in WAL mode the copy's
 * one read transaction blocks no writer; the WAL only cannot be checkpointed past it
 * meanwhile). The copy is written to "PATH.tmp" (created with O_EXCL, mode 0600), made a
 * self-contained file (journal mode DELETE: no -wal or -shm belongs to it), checked with
 * quick_check, fsynced, then renamed to path without ever replacing a file, and the
 * folder is fsynced. Call it outside any store_begin group (else -EINVAL): the copy reads
 * through this connection. Returns 0, or: -EEXIST (path exists, or PATH.tmp does: a backup
 * to the same path under way or interrupted; it is left alone), the errno of creating
 * PATH.tmp (-ENOENT for a missing folder, -ENOTDIR, -EACCES, -EROFS, ...), -ENOSPC (the
 * disk filled), -EIO (SQLite failed), -EINVAL. On failure nothing is left at path or
 * PATH.tmp, and the cause, naming the file, is in err (may be NULL) and store_errmsg(). */
int store_backup(struct store *st, const char *path, char *err, size_t errlen);

/* Explicit transactions, for callers that group several writes. store_begin takes the
 * write lock at once (BEGIN IMMEDIATE, waiting up to the busy timeout), so a group never
 * fails half-way for want of the lock. Calls nest: an inner store_begin is a savepoint
 * that its store_commit releases into the outer level and its store_rollback undoes
 * alone; only the outermost commit makes the writes durable. The functions below that
 * are "one transaction" use the same levels, so they work alone and inside a group, and
 * a failure inside a group undoes only that function's writes. If SQLite itself rolls
 * the group back (I/O error, disk full), every call fails with -EIO until the caller has
 * rolled back each level it opened. Commit or rollback without an open level: -EIO. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/* ---- agents: one row per installed (name, version); one version per name is current */

struct store_agent {
	char *name;
	char *version;
	char *manifest; /* normalized manifest JSON text */
	char *path;     /* absolute path of the installed copy */
	char *digest;   /* hex SHA-256 over the installed folder's files */
	int64_t installed_at;
	bool current;
};
void store_agent_clear(struct store_agent *a);

/* Inserts a new version and makes it the current one of its name (in one transaction).
 * -EEXIST if (name, version) is already there. a->current is ignored. */
int store_agent_insert(struct store *st, const struct store_agent *a);

/* Replaces manifest, path, digest and installed_at of an existing (name, version). */
int store_agent_update(struct store *st, const struct store_agent *a);

/* One version; version NULL means the current one. -ENOENT if absent. */
int store_agent_get(struct store *st, const char *name, const char *version,
		    struct store_agent *out);

/* Calls cb for each row, ordered by name then installed_at. name NULL means every agent;
 * current_only keeps only current versions. A non-zero return from cb stops the walk
 * and is returned. */
typedef int (*store_agent_cb)(const struct store_agent *a, void *ctx);
int store_agent_list(struct store *st, const char *name, bool current_only, store_agent_cb cb,
		     void *ctx);

/* Deletes one version (version non-NULL) or every version of name. If the current one
 * went and others remain, the most recently installed remaining one becomes current.
 * -ENOENT if nothing matched. */
int store_agent_delete(struct store *st, const char *name, const char *version);

/* ---- tokens: client and admin bearer tokens, stored only as SHA-256 hashes */

#define STORE_TOKEN_HASH_LEN 32

struct store_token {
	char *id;   /* "t_" + hex */
	char *name; /* operator's label */
	unsigned char hash[STORE_TOKEN_HASH_LEN];
	bool admin;
	int64_t created_at;
};
void store_token_clear(struct store_token *t);

int store_token_insert(struct store *st, const struct store_token *t); /* -EEXIST on id/hash */
int store_token_find_by_hash(struct store *st, const unsigned char hash[STORE_TOKEN_HASH_LEN],
			     struct store_token *out); /* -ENOENT */
int store_token_get(struct store *st, const char *id, struct store_token *out);
typedef int (*store_token_cb)(const struct store_token *t, void *ctx);
int store_token_list(struct store *st, store_token_cb cb, void *ctx); /* by created_at */
int store_token_delete(struct store *st, const char *id);            /* -ENOENT */

/* ---- sessions */

struct store_session {
	char *id;
	char *agent;
	char *version;
	char *owner;  /* token id that created it */
	char *state;  /* "ready", "running", "hibernated", "failed", ... */
	char *config; /* JSON object text of the create body's config, or NULL */
	int64_t created_at;
	int64_t last_active_at;
	int64_t runs;
	int64_t last_seq; /* seq of the newest event, 0 when none */
};
void store_session_clear(struct store_session *s);

int store_session_insert(struct store *st, const struct store_session *s); /* -EEXIST */
int store_session_get(struct store *st, const char *id, struct store_session *out);
int store_session_set_state(struct store *st, const char *id, const char *state,
			    int64_t last_active_at);
/* owner NULL lists every session; ordered by created_at. */
typedef int (*store_session_cb)(const struct store_session *s, void *ctx);
int store_session_list(struct store *st, const char *owner, store_session_cb cb, void *ctx);
/* Deletes the session with its KV rows and events (one transaction). -ENOENT. */
int store_session_delete(struct store *st, const char *id);
/* Number of sessions (any state) that use agent name (any version). */
int store_session_count_for_agent(struct store *st, const char *agent, int64_t *count);
/* Number of sessions in each state: cb(state, count). */
typedef int (*store_count_cb)(const char *key, int64_t count, void *ctx);
int store_session_count_by_state(struct store *st, store_count_cb cb, void *ctx);

/* ---- session key-value state: values are JSON text */

int store_kv_set(struct store *st, const char *session, const char *key, const char *value);
int store_kv_get(struct store *st, const char *session, const char *key,
		 char **value); /* *value is malloc'd, caller frees; -ENOENT */
int store_kv_del(struct store *st, const char *session, const char *key); /* -ENOENT */
/* Keys starting with prefix ("" for all), in key order. */
typedef int (*store_kv_cb)(const char *key, const char *value, void *ctx);
int store_kv_list(struct store *st, const char *session, const char *prefix, store_kv_cb cb,
		  void *ctx);

/* ---- session events: an append-only log per session, seq strictly increasing from 1 */

struct store_event {
	int64_t seq;
	const char *type;
	const char *run;  /* NULL when the event belongs to no run */
	int64_t time;     /* ms since epoch */
	const char *body; /* the whole event as JSON text */
};

/* Appends one event and sets the session's last_seq to ev->seq (one transaction).
 * -EEXIST if that seq is already there, or is not above the session's last_seq (so seq
 * stays strictly increasing even after a trim); -ENOENT if the session does not exist. */
int store_event_append(struct store *st, const char *session, const struct store_event *ev);
/* Events with seq > after, oldest first, at most limit of them (limit <= 0: no limit). */
typedef int (*store_event_cb)(const struct store_event *ev, void *ctx);
int store_event_list(struct store *st, const char *session, int64_t after, int64_t limit,
		     store_event_cb cb, void *ctx);
/* Deletes all but the newest keep events of the session (-EINVAL if keep < 0). The list,
 * trim and first_seq calls read an unknown session as an empty log. */
int store_event_trim(struct store *st, const char *session, int64_t keep);
/* The oldest seq still kept (0 when the log is empty). */
int store_event_first_seq(struct store *st, const char *session, int64_t *seq);

/* ---- schema 2: session bookkeeping, runs, agent config */

/* Records that a session was used: last_active_at, and runs += add_runs. -ENOENT. */
int store_session_touch(struct store *st, const char *id, int64_t last_active_at,
			int64_t add_runs);
/* At start-up: every session in a live state ("ready", "running", "starting") becomes
 * "hibernated" (its process died with the previous daemon). Returns the number changed,
 * or a negative code. */
int store_session_hibernate_all(struct store *st);
/* Sessions whose last_active_at is before `before` (ms), oldest first, at most limit
 * (limit <= 0: no limit), in any state (the callback filters). Through the index
 * sessions_by_last_active. */
int store_session_list_idle(struct store *st, int64_t before, int64_t limit, store_session_cb cb,
			    void *ctx);
/* Number of sessions owned by owner (any state). */
int store_session_count_for_owner(struct store *st, const char *owner, int64_t *count);

/* A session's run. Text fields are JSON texts (NULL when absent) except id and status. */
struct store_run {
	char *id;
	char *session;
	char *status; /* "queued", "running", "completed", "failed", "cancelled" */
	char *input;
	char *output;
	char *error;
	int64_t created_at, started_at, finished_at; /* 0 = not yet */
};
void store_run_clear(struct store_run *r);
/* -EEXIST if (session, id) exists, -ENOENT if the session does not, -EINVAL if id, session
 * or status is NULL. r->created_at is stored as given. */
int store_run_insert(struct store *st, const struct store_run *r); /* -EEXIST */
/* Updates status, output, error, started_at and finished_at of (session, id). -ENOENT.
 * input and created_at are never changed. */
int store_run_update(struct store *st, const struct store_run *r);
int store_run_get(struct store *st, const char *session, const char *id, struct store_run *out);
/* At start-up: runs left "queued" or "running" by a daemon that died become "failed" with
 * error (JSON text) and finished_at = now. Returns the number changed or a negative code. */
int store_run_fail_unfinished(struct store *st, const char *error, int64_t now);
/* store_session_delete also deletes the session's runs (cascade). */

/* Operator-supplied config of an agent (by name, all versions): values are strings.
 * set inserts or overwrites (-EINVAL on a NULL); the agent need not be installed, and
 * store_agent_delete leaves its config alone. list is in key order (bytewise); an agent
 * without config lists nothing. */
int store_config_set(struct store *st, const char *agent, const char *key, const char *value);
int store_config_del(struct store *st, const char *agent, const char *key); /* -ENOENT */
typedef int (*store_config_cb)(const char *key, const char *value, void *ctx);
int store_config_list(struct store *st, const char *agent, store_config_cb cb, void *ctx);

#endif
