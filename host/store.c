/* store.c: the daemon's persistent state over one SQLite connection: schema and forward
 * migrations, the prepared statements (every SQL text of the project is here), nestable
 * transactions, and the typed row functions that store.h promises. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

/* ---- allocation: failure aborts (STYLE rule 5), so callers never see NULL */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

/* ---- schema
 *
 * migrations[N - 1] brings the database from version N - 1 to N. Steps are only ever
 * appended: a released step is never edited, because databases in the field already ran
 * it. Each step runs in its own transaction together with the user_version bump. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE agents ("
    "  name TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  manifest TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  installed_at INTEGER NOT NULL,"
    "  current INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1)),"
    "  PRIMARY KEY (name, version));"
    /* At most one current version per name, enforced by the database itself. */
    "CREATE UNIQUE INDEX agents_current ON agents (name) WHERE current = 1;"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  admin INTEGER NOT NULL CHECK (admin IN (0, 1)),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  agent TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  config TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  last_active_at INTEGER NOT NULL,"
    "  runs INTEGER NOT NULL DEFAULT 0,"
    "  last_seq INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_by_owner ON sessions (owner, created_at);"
    "CREATE INDEX sessions_by_agent ON sessions (agent);"
    "CREATE TABLE session_kv ("
    "  session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (session, key)) WITHOUT ROWID;"
    "CREATE TABLE session_events ("
    "  session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL CHECK (seq > 0),"
    "  type TEXT NOT NULL,"
    "  run TEXT,"
    "  time INTEGER NOT NULL,"
    "  body TEXT NOT NULL,"
    "  PRIMARY KEY (session, seq)) WITHOUT ROWID;",
    /* 2: runs, agent config, and the index for finding idle sessions. */
    "CREATE TABLE session_runs ("
    "  session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  input TEXT,"
    "  output TEXT,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (session, id)) WITHOUT ROWID;"
    /* Only the runs a dead daemon may have left behind: start-up finds them without
     * reading every run ever made. */
    "CREATE INDEX session_runs_unfinished ON session_runs (status)"
    "  WHERE status IN ('queued', 'running');"
    "CREATE TABLE agent_config ("
    "  agent TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (agent, key)) WITHOUT ROWID;"
    "CREATE INDEX sessions_by_last_active ON sessions (last_active_at);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must equal the number of migrations");

/* ---- prepared statements: prepared once at open, reset after every use */

#define AGENT_COLS "name, version, manifest, path, digest, installed_at, current"
#define TOKEN_COLS "id, name, hash, admin, created_at"
#define SESSION_COLS                                                                               \
	"id, agent, version, owner, state, config, created_at, last_active_at, runs, last_seq"
#define RUN_COLS "id, session, status, input, output, error, created_at, started_at, finished_at"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_USER_VERSION,
	S_QUICK_CHECK,
	S_AGENT_CLEAR_CURRENT,
	S_AGENT_INSERT,
	S_AGENT_UPDATE,
	S_AGENT_GET,
	S_AGENT_GET_CURRENT,
	S_AGENT_LIST,
	S_AGENT_DELETE_VERSION,
	S_AGENT_DELETE_ALL,
	S_AGENT_PROMOTE,
	S_TOKEN_INSERT,
	S_TOKEN_BY_HASH,
	S_TOKEN_GET,
	S_TOKEN_LIST,
	S_TOKEN_DELETE,
	S_SESSION_INSERT,
	S_SESSION_GET,
	S_SESSION_SET_STATE,
	S_SESSION_LIST_ALL,
	S_SESSION_LIST_OWNER,
	S_SESSION_DELETE,
	S_SESSION_COUNT_AGENT,
	S_SESSION_COUNT_STATE,
	S_SESSION_TOUCH,
	S_SESSION_HIBERNATE_ALL,
	S_SESSION_LIST_IDLE,
	S_SESSION_COUNT_OWNER,
	S_RUN_INSERT,
	S_RUN_UPDATE,
	S_RUN_GET,
	S_RUN_FAIL_UNFINISHED,
	S_CONFIG_SET,
	S_CONFIG_DEL,
	S_CONFIG_LIST,
	S_KV_SET,
	S_KV_GET,
	S_KV_DEL,
	S_KV_LIST,
	S_EVENT_INSERT,
	S_EVENT_BUMP_LAST_SEQ,
	S_EVENT_LIST,
	S_EVENT_TRIM,
	S_EVENT_FIRST_SEQ,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    /* IMMEDIATE takes the write lock up front: a deferred transaction that reads first
     * and then writes can fail with SQLITE_BUSY without waiting for the busy timeout. */
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    /* One name for every level: SQLite resolves it to the innermost savepoint. */
    [S_SAVEPOINT] = "SAVEPOINT store_level",
    [S_RELEASE] = "RELEASE store_level",
    [S_ROLLBACK_TO] = "ROLLBACK TO store_level",
    [S_USER_VERSION] = "PRAGMA user_version",
    [S_QUICK_CHECK] = "PRAGMA quick_check",

    [S_AGENT_CLEAR_CURRENT] = "UPDATE agents SET current = 0 WHERE name = ?1 AND current = 1",
    [S_AGENT_INSERT] = "INSERT INTO agents (" AGENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
    [S_AGENT_UPDATE] = "UPDATE agents SET manifest = ?3, path = ?4, digest = ?5,"
                       " installed_at = ?6 WHERE name = ?1 AND version = ?2",
    [S_AGENT_GET] = "SELECT " AGENT_COLS " FROM agents WHERE name = ?1 AND version = ?2",
    [S_AGENT_GET_CURRENT] = "SELECT " AGENT_COLS " FROM agents WHERE name = ?1 AND current = 1",
    [S_AGENT_LIST] = "SELECT " AGENT_COLS " FROM agents"
                     " WHERE (?1 IS NULL OR name = ?1) AND (?2 = 0 OR current = 1)"
                     " ORDER BY name, installed_at, rowid",
    [S_AGENT_DELETE_VERSION] = "DELETE FROM agents WHERE name = ?1 AND version = ?2",
    [S_AGENT_DELETE_ALL] = "DELETE FROM agents WHERE name = ?1",
    /* Makes the most recently installed version current, if no version of name is. */
    [S_AGENT_PROMOTE] = "UPDATE agents SET current = 1 WHERE name = ?1 AND version ="
                        " (SELECT version FROM agents WHERE name = ?1"
                        "  ORDER BY installed_at DESC, rowid DESC LIMIT 1)"
                        " AND NOT EXISTS (SELECT 1 FROM agents WHERE name = ?1 AND current = 1)",

    [S_TOKEN_INSERT] = "INSERT INTO tokens (" TOKEN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_TOKEN_BY_HASH] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1",
    [S_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = ?1",
    [S_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, rowid",
    [S_TOKEN_DELETE] = "DELETE FROM tokens WHERE id = ?1",

    [S_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ")"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1",
    [S_SESSION_SET_STATE] = "UPDATE sessions SET state = ?2, last_active_at = ?3 WHERE id = ?1",
    [S_SESSION_LIST_ALL] = "SELECT " SESSION_COLS " FROM sessions ORDER BY created_at, rowid",
    /* Separate from LIST_ALL so that the planner can use sessions_by_owner. */
    [S_SESSION_LIST_OWNER] = "SELECT " SESSION_COLS " FROM sessions WHERE owner = ?1"
                             " ORDER BY created_at, rowid",
    /* KV rows, events and runs go with it through ON DELETE CASCADE, in the same
     * statement. */
    [S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [S_SESSION_COUNT_AGENT] = "SELECT count(*) FROM sessions WHERE agent = ?1",
    [S_SESSION_COUNT_STATE] = "SELECT state, count(*) FROM sessions GROUP BY state ORDER BY state",
    [S_SESSION_TOUCH] = "UPDATE sessions SET last_active_at = ?2, runs = runs + ?3 WHERE id = ?1",
    /* The live states: their process died with the daemon that wrote them. */
    [S_SESSION_HIBERNATE_ALL] = "UPDATE sessions SET state = 'hibernated'"
                                " WHERE state IN ('ready', 'running', 'starting')",
    /* A range scan of sessions_by_last_active, which also gives the order. */
    [S_SESSION_LIST_IDLE] = "SELECT " SESSION_COLS " FROM sessions WHERE last_active_at < ?1"
                            " ORDER BY last_active_at, rowid LIMIT ?2",
    [S_SESSION_COUNT_OWNER] = "SELECT count(*) FROM sessions WHERE owner = ?1",

    [S_RUN_INSERT] = "INSERT INTO session_runs (" RUN_COLS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_RUN_UPDATE] = "UPDATE session_runs SET status = ?3, output = ?4, error = ?5,"
                     " started_at = ?6, finished_at = ?7 WHERE session = ?1 AND id = ?2",
    [S_RUN_GET] = "SELECT " RUN_COLS " FROM session_runs WHERE session = ?1 AND id = ?2",
    /* The WHERE repeats session_runs_unfinished's, so that the planner uses it. */
    [S_RUN_FAIL_UNFINISHED] = "UPDATE session_runs SET status = 'failed', error = ?1,"
                              " finished_at = ?2 WHERE status IN ('queued', 'running')",

    [S_CONFIG_SET] = "INSERT INTO agent_config (agent, key, value) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value",
    [S_CONFIG_DEL] = "DELETE FROM agent_config WHERE agent = ?1 AND key = ?2",
    [S_CONFIG_LIST] = "SELECT key, value FROM agent_config WHERE agent = ?1 ORDER BY key",

    [S_KV_SET] = "INSERT INTO session_kv (session, key, value) VALUES (?1, ?2, ?3)"
                 " ON CONFLICT (session, key) DO UPDATE SET value = excluded.value",
    [S_KV_GET] = "SELECT value FROM session_kv WHERE session = ?1 AND key = ?2",
    [S_KV_DEL] = "DELETE FROM session_kv WHERE session = ?1 AND key = ?2",
    /* Starts at the prefix; store_kv_list stops at the first key past it. */
    [S_KV_LIST] = "SELECT key, value FROM session_kv WHERE session = ?1 AND key >= ?2"
                  " ORDER BY key",

    [S_EVENT_INSERT] = "INSERT INTO session_events (session, seq, type, run, time, body)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_EVENT_BUMP_LAST_SEQ] = "UPDATE sessions SET last_seq = ?2 WHERE id = ?1 AND last_seq < ?2",
    [S_EVENT_LIST] = "SELECT seq, type, run, time, body FROM session_events"
                     " WHERE session = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [S_EVENT_TRIM] = "DELETE FROM session_events WHERE session = ?1 AND seq <="
                     " (SELECT seq FROM session_events WHERE session = ?1"
                     "  ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
    [S_EVENT_FIRST_SEQ] = "SELECT coalesce(min(seq), 0) FROM session_events WHERE session = ?1",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int depth; /* transaction levels open through this API (BEGIN, then SAVEPOINTs) */
	char errmsg[512];
};

/* ---- errors */

static int fail(struct store *st, int code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct store *st, int code, const char *what, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(st->errmsg, sizeof(st->errmsg), "%s: ", what);

	if (n < 0 || (size_t)n >= sizeof(st->errmsg))
		return code;
	va_start(ap, fmt);
	vsnprintf(st->errmsg + n, sizeof(st->errmsg) - n, fmt, ap);
	va_end(ap);
	return code;
}

/* Maps a failed SQLite result code to the store's contract and records the message. */
static int sql_fail(struct store *st, int rc, const char *what)
{
	int code;

	switch (rc) {
	case SQLITE_NOMEM:
		abort();
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		code = -EEXIST;
		break;
	case SQLITE_CONSTRAINT_FOREIGNKEY: /* the session the row belongs to does not exist */
		code = -ENOENT;
		break;
	case SQLITE_CONSTRAINT_NOTNULL:
	case SQLITE_CONSTRAINT_CHECK:
		code = -EINVAL;
		break;
	default:
		code = -EIO;
	}
	return fail(st, code, what, "%s", sqlite3_errmsg(st->db));
}

const char *store_errmsg(struct store *st)
{
	return st ? st->errmsg : "no store";
}

/* ---- statement use */

/* Scope guard: resets a statement and drops its bindings on every return path, so that
 * no statement keeps a read snapshot open or points at the caller's strings. reset's
 * result only repeats the error the last step already returned, which was handled. */
static void stmt_release(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}
#define STMT __attribute__((cleanup(stmt_release))) sqlite3_stmt *

/* True when SQLite rolled back a transaction this API still counts as open (after an I/O
 * error or a full disk). Every call then fails until the caller unwinds its levels. */
static bool tx_lost(struct store *st)
{
	return st->depth > 0 && sqlite3_get_autocommit(st->db);
}

static int tx_lost_fail(struct store *st, const char *what)
{
	return fail(st, -EIO, what,
	            "the open transaction was rolled back by an earlier failure; "
	            "roll it back first");
}

/* Binds args to a statement by a format: 's' text (NULL binds NULL), 'i' int64_t,
 * 'b' bool, 'h' a token hash. Texts are bound without a copy: they must live until the
 * statement is reset, which the STMT guard does before the caller returns. */
static int bind_args(struct store *st, sqlite3_stmt *s, const char *what, const char *fmt,
                     va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 1; *fmt && rc == SQLITE_OK; fmt++, i++) {
		const char *text;

		switch (*fmt) {
		case 's':
			text = va_arg(ap, const char *);
			rc = text ? sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC)
			          : sqlite3_bind_null(s, i);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'b':
			rc = sqlite3_bind_int(s, i, va_arg(ap, int) ? 1 : 0);
			break;
		case 'h':
			rc = sqlite3_bind_blob(s, i, va_arg(ap, const unsigned char *),
			                       STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
			break;
		default:
			abort(); /* a typo in this file's formats */
		}
	}
	return rc == SQLITE_OK ? 0 : sql_fail(st, rc, what);
}

/* Hands out statement id with args bound in *out (to be declared with STMT). */
static int vquery(struct store *st, enum stmt_id id, sqlite3_stmt **out, const char *what,
                  const char *fmt, va_list ap)
{
	sqlite3_stmt *s = st->stmt[id];

	if (tx_lost(st))
		return tx_lost_fail(st, what);
	/* A callback that re-enters the same list would reset the walk under its caller. */
	if (sqlite3_stmt_busy(s))
		return fail(st, -EIO, what, "statement re-entered from its own callback");
	*out = s;
	return bind_args(st, s, what, fmt, ap);
}

static int query(struct store *st, enum stmt_id id, sqlite3_stmt **out, const char *what,
                 const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vquery(st, id, out, what, fmt, ap);
	va_end(ap);
	return rc;
}

/* One step: 1 for a row, 0 when done, negative on failure. */
static int step(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sql_fail(st, rc, what);
}

/* Steps a statement that always yields one row (an aggregate, a pragma): 0 or negative. */
static int step_one(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = step(st, s, what);

	if (rc == 0)
		return fail(st, -EIO, what, "statement returned no row");
	return rc < 0 ? rc : 0;
}

/* Runs a statement that returns no rows: the number of rows changed, or negative. */
static int exec(struct store *st, enum stmt_id id, const char *what, const char *fmt, ...)
{
	STMT s = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vquery(st, id, &s, what, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	rc = step(st, s, what);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return fail(st, -EIO, what, "statement unexpectedly returned rows");
	return (int)sqlite3_changes64(st->db);
}

/* Column i as text: a copy (for rows the caller owns) or SQLite's own buffer (for rows
 * lent to a callback, valid until the next step). SQL NULL stays NULL. */
static char *col_text(sqlite3_stmt *s, int i, bool copy)
{
	const char *t;

	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return NULL;
	t = (const char *)sqlite3_column_text(s, i);
	if (!t)
		abort(); /* a non-NULL value that could not be converted: out of memory */
	return copy ? xstrdup(t) : (char *)t;
}

/* Calls row(s, arg) for each row until it returns non-zero, which is returned. */
static int walk(struct store *st, sqlite3_stmt *s, const char *what,
                int (*row)(sqlite3_stmt *s, void *arg), void *arg)
{
	int rc;

	while ((rc = step(st, s, what)) > 0) {
		rc = row(s, arg);
		if (rc)
			return rc;
	}
	return rc;
}

/* ---- transactions: level 0 is BEGIN IMMEDIATE, deeper levels are savepoints, so a
 * function that needs atomicity works alone and inside a caller's store_begin. */

static int tx_exec(struct store *st, enum stmt_id id, const char *what)
{
	STMT s = st->stmt[id];
	int rc = step(st, s, what);

	return rc > 0 ? 0 : rc;
}

static int tx_begin(struct store *st, const char *what)
{
	int rc;

	if (tx_lost(st))
		return tx_lost_fail(st, what);
	rc = tx_exec(st, st->depth ? S_SAVEPOINT : S_BEGIN, what);
	if (rc == 0)
		st->depth++;
	return rc;
}

static int tx_commit(struct store *st, const char *what)
{
	int rc;

	if (st->depth == 0)
		return fail(st, -EIO, what, "no transaction is open");
	if (tx_lost(st)) {
		st->depth--;
		return fail(st, -EIO, what,
		            "the transaction was rolled back by an earlier failure");
	}
	rc = tx_exec(st, st->depth == 1 ? S_COMMIT : S_RELEASE, what);
	if (rc == 0)
		st->depth--;
	return rc; /* on failure the level stays open: the caller rolls it back */
}

static int tx_rollback(struct store *st, const char *what)
{
	int rc;

	if (st->depth == 0)
		return fail(st, -EIO, what, "no transaction is open");
	st->depth--;
	if (sqlite3_get_autocommit(st->db))
		return 0; /* SQLite already rolled everything back; outer levels see tx_lost */
	if (st->depth == 0)
		return tx_exec(st, S_ROLLBACK, what);
	/* ROLLBACK TO undoes the level but keeps the savepoint; RELEASE then pops it. */
	rc = tx_exec(st, S_ROLLBACK_TO, what);
	return rc ? rc : tx_exec(st, S_RELEASE, what);
}

/* Ends a level opened with tx_begin: commits it when rc is 0, else rolls it back. The
 * first failure is the one reported. */
static int tx_end(struct store *st, int rc, const char *what)
{
	char cause[sizeof(st->errmsg)];

	if (rc == 0) {
		rc = tx_commit(st, what);
		if (rc == 0)
			return 0;
	}
	memcpy(cause, st->errmsg, sizeof(cause));
	tx_rollback(st, what);
	memcpy(st->errmsg, cause, sizeof(cause));
	return rc;
}

int store_begin(struct store *st)
{
	return tx_begin(st, __func__);
}

int store_commit(struct store *st)
{
	return tx_commit(st, __func__);
}

int store_rollback(struct store *st)
{
	return tx_rollback(st, __func__);
}

/* ---- open, migrate, close */

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one fixed statement and copies the first column of its first row to buf ("" when
 * it returns no row). Only for the open-time pragmas, which are not worth keeping. */
static int open_query(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return rc;
	buf[0] = '\0';
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		snprintf(buf, len, "%s", t ? (const char *)t : "");
		rc = SQLITE_DONE;
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_finalize(s); /* repeats step's error, already in rc */
	return rc;
}

/* Sets a pragma and reads it back (journal_mode=WAL, for one, silently stays "delete" on
 * a file system without shared memory): the store must not run with weaker settings. */
static int open_pragma(sqlite3 *db, const char *set, const char *get, const char *want, char *err,
                       size_t errlen)
{
	char got[32];
	int rc = open_query(db, set, got, sizeof(got));

	if (rc == SQLITE_OK)
		rc = open_query(db, get, got, sizeof(got));
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", set, sqlite3_errmsg(db));
		return -EIO;
	}
	if (strcmp(got, want) != 0) {
		snprintf(err, errlen, "%s did not hold (%s reads \"%s\")", set, get, got);
		return -EIO;
	}
	return 0;
}

static int open_settings(sqlite3 *db, char *err, size_t errlen)
{
	int rc = sqlite3_extended_result_codes(db, 1);

	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		return -EIO;
	}
	rc =
	    open_pragma(db, "PRAGMA journal_mode = WAL", "PRAGMA journal_mode", "wal", err, errlen);
	if (rc == 0)
		rc = open_pragma(db, "PRAGMA synchronous = NORMAL", "PRAGMA synchronous", "1", err,
		                 errlen);
	if (rc == 0)
		rc = open_pragma(db, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", "1", err,
		                 errlen);
	return rc;
}

static int read_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
	char buf[32];

	if (open_query(db, "PRAGMA user_version", buf, sizeof(buf)) != SQLITE_OK) {
		snprintf(err, errlen, "reading the schema version: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	*version = atoi(buf);
	return 0;
}

/* Runs migration `to` (from to - 1) in one transaction. The version is read again under
 * the write lock because another process may have migrated since we looked. */
static int migrate_step(sqlite3 *db, int to, char *err, size_t errlen)
{
	char bump[64];
	int version, rc;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "migration %d: %s", to, sqlite3_errmsg(db));
		return -EIO;
	}
	rc = read_version(db, &version, err, errlen);
	if (rc == 0 && version == to - 1) {
		/* user_version takes no bound parameter; `to` is our own constant. */
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", to);
		if (sqlite3_exec(db, migrations[to - 1], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, bump, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "migration %d: %s", to, sqlite3_errmsg(db));
			rc = -EIO;
		}
	} else if (rc == 0) {
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
		if (rc)
			snprintf(err, errlen, "migration %d: %s", to, sqlite3_errmsg(db));
	}
	if (rc && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* best effort; rc says why */
	return rc;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
	int version, rc;

	for (;;) {
		rc = read_version(db, &version, err, errlen);
		if (rc)
			return rc;
		if (version > STORE_SCHEMA_VERSION) {
			snprintf(err, errlen,
			         "schema version %d is newer than this agenthost knows (%d): "
			         "use a newer agenthost or another state directory",
			         version, STORE_SCHEMA_VERSION);
			return -ENOTSUP;
		}
		if (version == STORE_SCHEMA_VERSION)
			return 0;
		rc = migrate_step(db, version + 1, err, errlen);
		if (rc)
			return rc;
	}
}

static int prepare_all(struct store *st, char *err, size_t errlen)
{
	for (int i = 0; i < S_COUNT; i++) {
		int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                            &st->stmt[i], NULL);

		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "preparing \"%s\": %s", stmt_sql[i],
			         sqlite3_errmsg(st->db));
			return -EIO;
		}
	}
	return 0;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	char cause[384] = "";
	struct store *st = xcalloc(1, sizeof(*st));
	/* NOMUTEX: a connection belongs to one thread (store.h), so SQLite's locks would only
	 * cost time. */
	int rc = sqlite3_open_v2(
	    path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

	*out = NULL;
	if (rc == SQLITE_NOMEM)
		abort();
	if (rc != SQLITE_OK) {
		snprintf(cause, sizeof(cause), "%s", sqlite3_errmsg(st->db));
		rc = -EIO;
	} else {
		rc = open_settings(st->db, cause, sizeof(cause));
		if (rc == 0)
			rc = migrate(st->db, cause, sizeof(cause));
		if (rc == 0)
			rc = prepare_all(st, cause, sizeof(cause));
	}
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "database %s: %s", path, cause);
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]); /* NULL is a no-op; errors repeat old steps' */
	/* Fails only with statements left unfinalized, which would be a bug in this file;
	 * an open transaction is rolled back by SQLite. */
	if (sqlite3_close(st->db) != SQLITE_OK)
		abort();
	free(st);
}

int store_schema_version(struct store *st)
{
	STMT s = NULL;
	int rc = query(st, S_USER_VERSION, &s, __func__, "");

	if (rc == 0)
		rc = step_one(st, s, __func__);
	if (rc < 0)
		return rc;
	return sqlite3_column_int(s, 0);
}

int store_integrity_check(struct store *st)
{
	STMT s = NULL;
	int rc = query(st, S_QUICK_CHECK, &s, __func__, "");

	if (rc == 0)
		rc = step_one(st, s, __func__);
	if (rc < 0)
		return rc;
	if (strcmp(col_text(s, 0, false), "ok") != 0)
		return fail(st, -EIO, __func__, "%s", col_text(s, 0, false));
	return 0;
}

/* ---- backup: SQLite's online backup API into a new file, renamed into place */

#define BACKUP_BUSY_RETRIES 100 /* x 50 ms, on top of the source's busy timeout */

static int backup_fail(struct store *st, char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Records the cause in err (when given) and in the connection's message. */
static int backup_fail(struct store *st, char *err, size_t errlen, int code, const char *fmt, ...)
{
	char cause[sizeof(st->errmsg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	fail(st, code, "store_backup", "%s", cause);
	if (err && errlen)
		snprintf(err, errlen, "%s", cause);
	return code;
}

/* The negative code for a failed SQLite call on the copy: a full disk is worth telling. */
static int backup_sql_code(int rc)
{
	if (rc == SQLITE_NOMEM)
		abort();
	return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO;
}

/* fsync of a file or folder by name. */
static int sync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	int rc;

	if (fd < 0)
		return -errno;
	rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Renames tmp to path unless path exists (then -EEXIST). RENAME_NOREPLACE makes the check
 * and the rename one step; a file system without it gets link + unlink, also atomic. */
static int rename_noreplace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(tmp, path) < 0)
		return -errno;
	unlink(tmp);
	return 0;
}

/* Copies the source in one step (-1): one read transaction, so the copy is the database
 * as of one moment. In WAL mode that read blocks no writer of any connection. Stepping in
 * slices would restart the copy after every write of another connection. */
static int backup_copy(struct store *st, sqlite3 *dest, const char *tmp, char *err, size_t errlen)
{
	sqlite3_backup *b = sqlite3_backup_init(dest, "main", st->db, "main");
	int rc;

	if (!b)
		return backup_fail(st, err, errlen, backup_sql_code(sqlite3_errcode(dest)),
		                   "backup into %s: %s", tmp, sqlite3_errmsg(dest));
	for (int tries = 0;; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries == BACKUP_BUSY_RETRIES)
			break;
		sqlite3_sleep(50);
	}
	sqlite3_backup_finish(b); /* sets dest's error from the step's */
	if (rc != SQLITE_DONE)
		return backup_fail(st, err, errlen, backup_sql_code(rc), "backup into %s: %s", tmp,
		                   sqlite3_errmsg(dest));
	return 0;
}

/* Makes the copy one self-contained file (the header the source's pages brought says
 * WAL; DELETE mode needs no -wal or -shm beside it) and checks it. */
static int backup_finish_copy(struct store *st, sqlite3 *dest, const char *tmp, char *err,
                              size_t errlen)
{
	char got[64];
	int rc = open_query(dest, "PRAGMA journal_mode = DELETE", got, sizeof(got));

	if (rc == SQLITE_OK && strcmp(got, "delete") != 0)
		return backup_fail(st, err, errlen, -EIO,
		                   "%s: journal_mode = DELETE did not hold (%s)", tmp, got);
	if (rc == SQLITE_OK)
		rc = open_query(dest, "PRAGMA quick_check", got, sizeof(got));
	if (rc != SQLITE_OK)
		return backup_fail(st, err, errlen, backup_sql_code(rc), "checking %s: %s", tmp,
		                   sqlite3_errmsg(dest));
	if (strcmp(got, "ok") != 0)
		return backup_fail(st, err, errlen, -EIO, "the copy %s failed its check: %s", tmp,
		                   got);
	return 0;
}

static void remove_copy(const char *tmp)
{
	static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
	char name[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", tmp, suffixes[i]);
		unlink(name);
	}
}

/* Creates tmp (0600, O_EXCL) and opens it as the copy's connection. */
static int backup_create(struct store *st, const char *path, const char *tmp, sqlite3 **dest,
                         char *err, size_t errlen)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc;

	if (fd < 0 && errno == EEXIST)
		return backup_fail(st, err, errlen, -EEXIST,
		                   "%s exists: another backup to %s is under way, or one was "
		                   "interrupted (remove it)",
		                   tmp, path);
	if (fd < 0)
		return backup_fail(st, err, errlen, -errno, "cannot create %s: %s", tmp,
		                   strerror(errno));
	fchmod(fd, 0600); /* in case a umask took bits away that 0600 needs */
	close(fd);
	/* No journal and no syncs while the copy is written: until the rename it is only a
	 * temporary file, synced once at the end. */
	rc = sqlite3_open_v2(tmp, dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(*dest, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF",
		                  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return backup_fail(st, err, errlen, backup_sql_code(rc), "opening %s: %s", tmp,
		                   *dest ? sqlite3_errmsg(*dest) : sqlite3_errstr(rc));
	return 0;
}

int store_backup(struct store *st, const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	sqlite3 *dest = NULL;
	struct stat sb;
	int rc;

	if (!path || !path[0])
		return backup_fail(st, err, errlen, -EINVAL, "no backup path given");
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return backup_fail(st, err, errlen, -ENAMETOOLONG, "%s: %s", path,
		                   strerror(ENAMETOOLONG));
	/* The copy reads through this connection: inside a transaction it would see writes
	 * that may still be rolled back. */
	if (st->depth > 0)
		return backup_fail(st, err, errlen, -EINVAL,
		                   "a transaction is open on this connection: back up outside it");
	if (lstat(path, &sb) == 0)
		return backup_fail(st, err, errlen, -EEXIST,
		                   "%s exists: a backup never replaces a file", path);
	if (errno != ENOENT)
		return backup_fail(st, err, errlen, -errno, "%s: %s", path, strerror(errno));
	rc = backup_create(st, path, tmp, &dest, err, errlen);
	if (rc == -EEXIST)
		return rc; /* that tmp is not ours to remove */
	if (rc == 0)
		rc = backup_copy(st, dest, tmp, err, errlen);
	if (rc == 0)
		rc = backup_finish_copy(st, dest, tmp, err, errlen);
	if (dest && sqlite3_close(dest) != SQLITE_OK && rc == 0)
		rc =
		    backup_fail(st, err, errlen, -EIO, "closing %s: %s", tmp, sqlite3_errmsg(dest));
	if (rc == 0 && (rc = sync_path(tmp, 0)) < 0)
		backup_fail(st, err, errlen, rc, "fsync %s: %s", tmp, strerror(-rc));
	if (rc == 0 && (rc = rename_noreplace(tmp, path)) < 0)
		backup_fail(st, err, errlen, rc,
		            rc == -EEXIST ? "%s appeared while the backup was written: it is kept, "
		                            "the backup is not (%s)"
		                          : "rename to %s: %s",
		            path, strerror(-rc));
	if (rc < 0) {
		remove_copy(tmp);
		return rc;
	}
	/* The rename is durable once the folder's entry is on disk. */
	snprintf(dir, sizeof(dir), "%s", path);
	sync_path(dirname(dir), O_DIRECTORY);
	return 0;
}

/* ---- agents */

void store_agent_clear(struct store_agent *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->version);
	free(a->manifest);
	free(a->path);
	free(a->digest);
	memset(a, 0, sizeof(*a));
}

static void read_agent(sqlite3_stmt *s, struct store_agent *a, bool copy)
{
	a->name = col_text(s, 0, copy);
	a->version = col_text(s, 1, copy);
	a->manifest = col_text(s, 2, copy);
	a->path = col_text(s, 3, copy);
	a->digest = col_text(s, 4, copy);
	a->installed_at = sqlite3_column_int64(s, 5);
	a->current = sqlite3_column_int(s, 6) != 0;
}

static int agent_insert_body(struct store *st, const struct store_agent *a)
{
	int rc = exec(st, S_AGENT_CLEAR_CURRENT, __func__, "s", a->name);

	if (rc >= 0)
		rc = exec(st, S_AGENT_INSERT, __func__, "sssssi", a->name, a->version, a->manifest,
		          a->path, a->digest, a->installed_at);
	return rc < 0 ? rc : 0;
}

int store_agent_insert(struct store *st, const struct store_agent *a)
{
	int rc = tx_begin(st, __func__);

	return rc ? rc : tx_end(st, agent_insert_body(st, a), __func__);
}

int store_agent_update(struct store *st, const struct store_agent *a)
{
	int rc = exec(st, S_AGENT_UPDATE, __func__, "sssssi", a->name, a->version, a->manifest,
	              a->path, a->digest, a->installed_at);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no agent %s version %s", a->name, a->version);
	return rc < 0 ? rc : 0;
}

int store_agent_get(struct store *st, const char *name, const char *version,
                    struct store_agent *out)
{
	STMT s = NULL;
	int rc = version ? query(st, S_AGENT_GET, &s, __func__, "ss", name, version)
	                 : query(st, S_AGENT_GET_CURRENT, &s, __func__, "s", name);

	if (rc == 0)
		rc = step(st, s, __func__);
	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no agent %s version %s", name,
		            version ? version : "(current)");
	if (rc < 0)
		return rc;
	read_agent(s, out, true);
	return 0;
}

struct agent_walk {
	store_agent_cb cb;
	void *ctx;
};

static int agent_row(sqlite3_stmt *s, void *arg)
{
	struct agent_walk *w = arg;
	struct store_agent a;

	read_agent(s, &a, false);
	return w->cb(&a, w->ctx);
}

int store_agent_list(struct store *st, const char *name, bool current_only, store_agent_cb cb,
                     void *ctx)
{
	STMT s = NULL;
	int rc = query(st, S_AGENT_LIST, &s, __func__, "sb", name, current_only);

	return rc ? rc : walk(st, s, __func__, agent_row, &(struct agent_walk){cb, ctx});
}

static int agent_delete_body(struct store *st, const char *name, const char *version)
{
	int rc = version ? exec(st, S_AGENT_DELETE_VERSION, __func__, "ss", name, version)
	                 : exec(st, S_AGENT_DELETE_ALL, __func__, "s", name);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no agent %s version %s", name,
		            version ? version : "(any)");
	if (rc > 0)
		rc = exec(st, S_AGENT_PROMOTE, __func__, "s", name);
	return rc < 0 ? rc : 0;
}

int store_agent_delete(struct store *st, const char *name, const char *version)
{
	int rc = tx_begin(st, __func__);

	return rc ? rc : tx_end(st, agent_delete_body(st, name, version), __func__);
}

/* ---- tokens */

void store_token_clear(struct store_token *t)
{
	if (!t)
		return;
	free(t->id);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

static int read_token(struct store *st, sqlite3_stmt *s, struct store_token *t, bool copy)
{
	const void *hash = sqlite3_column_blob(s, 2);

	/* The CHECK constraint guarantees the length; a mismatch means a damaged file. */
	if (!hash || sqlite3_column_bytes(s, 2) != STORE_TOKEN_HASH_LEN)
		return fail(st, -EIO, "store_token", "token %s has a hash of %d bytes",
		            (const char *)sqlite3_column_text(s, 0), sqlite3_column_bytes(s, 2));
	t->id = col_text(s, 0, copy);
	t->name = col_text(s, 1, copy);
	memcpy(t->hash, hash, STORE_TOKEN_HASH_LEN);
	t->admin = sqlite3_column_int(s, 3) != 0;
	t->created_at = sqlite3_column_int64(s, 4);
	return 0;
}

int store_token_insert(struct store *st, const struct store_token *t)
{
	int rc = exec(st, S_TOKEN_INSERT, __func__, "sshbi", t->id, t->name, t->hash, t->admin,
	              t->created_at);

	return rc < 0 ? rc : 0;
}

/* Steps a single-row token query into out. */
static int token_one(struct store *st, sqlite3_stmt *s, struct store_token *out, const char *what,
                     const char *missing)
{
	int rc = step(st, s, what);

	if (rc == 0)
		return fail(st, -ENOENT, what, "no token %s", missing);
	return rc < 0 ? rc : read_token(st, s, out, true);
}

int store_token_find_by_hash(struct store *st, const unsigned char hash[STORE_TOKEN_HASH_LEN],
                             struct store_token *out)
{
	STMT s = NULL;
	int rc = query(st, S_TOKEN_BY_HASH, &s, __func__, "h", hash);

	return rc ? rc : token_one(st, s, out, __func__, "with that hash");
}

int store_token_get(struct store *st, const char *id, struct store_token *out)
{
	STMT s = NULL;
	int rc = query(st, S_TOKEN_GET, &s, __func__, "s", id);

	return rc ? rc : token_one(st, s, out, __func__, id);
}

struct token_walk {
	struct store *st;
	store_token_cb cb;
	void *ctx;
};

static int token_row(sqlite3_stmt *s, void *arg)
{
	struct token_walk *w = arg;
	struct store_token t;
	int rc = read_token(w->st, s, &t, false);

	return rc ? rc : w->cb(&t, w->ctx);
}

int store_token_list(struct store *st, store_token_cb cb, void *ctx)
{
	STMT s = NULL;
	int rc = query(st, S_TOKEN_LIST, &s, __func__, "");

	return rc ? rc : walk(st, s, __func__, token_row, &(struct token_walk){st, cb, ctx});
}

int store_token_delete(struct store *st, const char *id)
{
	int rc = exec(st, S_TOKEN_DELETE, __func__, "s", id);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no token %s", id);
	return rc < 0 ? rc : 0;
}

/* ---- sessions */

void store_session_clear(struct store_session *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->agent);
	free(s->version);
	free(s->owner);
	free(s->state);
	free(s->config);
	memset(s, 0, sizeof(*s));
}

static void read_session(sqlite3_stmt *s, struct store_session *out, bool copy)
{
	out->id = col_text(s, 0, copy);
	out->agent = col_text(s, 1, copy);
	out->version = col_text(s, 2, copy);
	out->owner = col_text(s, 3, copy);
	out->state = col_text(s, 4, copy);
	out->config = col_text(s, 5, copy);
	out->created_at = sqlite3_column_int64(s, 6);
	out->last_active_at = sqlite3_column_int64(s, 7);
	out->runs = sqlite3_column_int64(s, 8);
	out->last_seq = sqlite3_column_int64(s, 9);
}

int store_session_insert(struct store *st, const struct store_session *s)
{
	int rc = exec(st, S_SESSION_INSERT, __func__, "ssssssiiii", s->id, s->agent, s->version,
	              s->owner, s->state, s->config, s->created_at, s->last_active_at, s->runs,
	              s->last_seq);

	return rc < 0 ? rc : 0;
}

int store_session_get(struct store *st, const char *id, struct store_session *out)
{
	STMT s = NULL;
	int rc = query(st, S_SESSION_GET, &s, __func__, "s", id);

	if (rc == 0)
		rc = step(st, s, __func__);
	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no session %s", id);
	if (rc < 0)
		return rc;
	read_session(s, out, true);
	return 0;
}

int store_session_set_state(struct store *st, const char *id, const char *state,
                            int64_t last_active_at)
{
	int rc = exec(st, S_SESSION_SET_STATE, __func__, "ssi", id, state, last_active_at);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no session %s", id);
	return rc < 0 ? rc : 0;
}

struct session_walk {
	store_session_cb cb;
	void *ctx;
};

static int session_row(sqlite3_stmt *s, void *arg)
{
	struct session_walk *w = arg;
	struct store_session row;

	read_session(s, &row, false);
	return w->cb(&row, w->ctx);
}

int store_session_list(struct store *st, const char *owner, store_session_cb cb, void *ctx)
{
	STMT s = NULL;
	int rc = owner ? query(st, S_SESSION_LIST_OWNER, &s, __func__, "s", owner)
	               : query(st, S_SESSION_LIST_ALL, &s, __func__, "");

	return rc ? rc : walk(st, s, __func__, session_row, &(struct session_walk){cb, ctx});
}

int store_session_delete(struct store *st, const char *id)
{
	int rc = exec(st, S_SESSION_DELETE, __func__, "s", id);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no session %s", id);
	return rc < 0 ? rc : 0;
}

int store_session_count_for_agent(struct store *st, const char *agent, int64_t *count)
{
	STMT s = NULL;
	int rc = query(st, S_SESSION_COUNT_AGENT, &s, __func__, "s", agent);

	if (rc == 0)
		rc = step_one(st, s, __func__);
	if (rc < 0)
		return rc;
	*count = sqlite3_column_int64(s, 0);
	return 0;
}

struct count_walk {
	store_count_cb cb;
	void *ctx;
};

static int count_row(sqlite3_stmt *s, void *arg)
{
	struct count_walk *w = arg;

	return w->cb(col_text(s, 0, false), sqlite3_column_int64(s, 1), w->ctx);
}

int store_session_count_by_state(struct store *st, store_count_cb cb, void *ctx)
{
	STMT s = NULL;
	int rc = query(st, S_SESSION_COUNT_STATE, &s, __func__, "");

	return rc ? rc : walk(st, s, __func__, count_row, &(struct count_walk){cb, ctx});
}

/* ---- session key-value state */

int store_kv_set(struct store *st, const char *session, const char *key, const char *value)
{
	int rc = exec(st, S_KV_SET, __func__, "sss", session, key, value);

	if (rc == -ENOENT) /* the foreign key: say which session */
		return fail(st, rc, __func__, "no session %s", session);
	return rc < 0 ? rc : 0;
}

int store_kv_get(struct store *st, const char *session, const char *key, char **value)
{
	STMT s = NULL;
	int rc = query(st, S_KV_GET, &s, __func__, "ss", session, key);

	if (rc == 0)
		rc = step(st, s, __func__);
	if (rc == 0)
		return fail(st, -ENOENT, __func__, "session %s has no key %s", session, key);
	if (rc < 0)
		return rc;
	*value = col_text(s, 0, true);
	return 0;
}

int store_kv_del(struct store *st, const char *session, const char *key)
{
	int rc = exec(st, S_KV_DEL, __func__, "ss", session, key);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "session %s has no key %s", session, key);
	return rc < 0 ? rc : 0;
}

struct kv_walk {
	const char *prefix;
	size_t prefix_len;
	bool past_prefix;
	store_kv_cb cb;
	void *ctx;
};

static int kv_row(sqlite3_stmt *s, void *arg)
{
	struct kv_walk *w = arg;
	const char *key = col_text(s, 0, false);

	/* Keys come in memcmp order (BINARY collation), so the first key without the
	 * prefix ends the range. */
	if (strncmp(key, w->prefix, w->prefix_len) != 0) {
		w->past_prefix = true;
		return 1;
	}
	return w->cb(key, col_text(s, 1, false), w->ctx);
}

int store_kv_list(struct store *st, const char *session, const char *prefix, store_kv_cb cb,
                  void *ctx)
{
	struct kv_walk w = {prefix ? prefix : "", 0, false, cb, ctx};
	STMT s = NULL;
	int rc = query(st, S_KV_LIST, &s, __func__, "ss", session, w.prefix);

	w.prefix_len = strlen(w.prefix);
	if (rc == 0)
		rc = walk(st, s, __func__, kv_row, &w);
	return w.past_prefix ? 0 : rc;
}

/* ---- session events */

static int event_append_body(struct store *st, const char *session, const struct store_event *ev)
{
	int rc = exec(st, S_EVENT_INSERT, __func__, "sissis", session, ev->seq, ev->type, ev->run,
	              ev->time, ev->body);

	if (rc == -ENOENT)
		return fail(st, rc, __func__, "no session %s", session);
	if (rc == -EEXIST)
		return fail(st, rc, __func__, "session %s already has event %lld", session,
		            (long long)ev->seq);
	if (rc >= 0)
		rc = exec(st, S_EVENT_BUMP_LAST_SEQ, __func__, "si", session, ev->seq);
	/* No row bumped: seq is not above last_seq (it was trimmed away or skipped back). */
	if (rc == 0)
		return fail(st, -EEXIST, __func__, "session %s: event %lld is not above last_seq",
		            session, (long long)ev->seq);
	return rc < 0 ? rc : 0;
}

int store_event_append(struct store *st, const char *session, const struct store_event *ev)
{
	int rc = tx_begin(st, __func__);

	return rc ? rc : tx_end(st, event_append_body(st, session, ev), __func__);
}

struct event_walk {
	store_event_cb cb;
	void *ctx;
};

static int event_row(sqlite3_stmt *s, void *arg)
{
	struct event_walk *w = arg;
	struct store_event ev = {
	    .seq = sqlite3_column_int64(s, 0),
	    .type = col_text(s, 1, false),
	    .run = col_text(s, 2, false),
	    .time = sqlite3_column_int64(s, 3),
	    .body = col_text(s, 4, false),
	};

	return w->cb(&ev, w->ctx);
}

int store_event_list(struct store *st, const char *session, int64_t after, int64_t limit,
                     store_event_cb cb, void *ctx)
{
	STMT s = NULL;
	/* LIMIT -1 is SQLite's "no limit". */
	int rc = query(st, S_EVENT_LIST, &s, __func__, "sii", session, after,
	               limit > 0 ? limit : (int64_t)-1);

	return rc ? rc : walk(st, s, __func__, event_row, &(struct event_walk){cb, ctx});
}

int store_event_trim(struct store *st, const char *session, int64_t keep)
{
	int rc;

	if (keep < 0)
		return fail(st, -EINVAL, __func__, "keep must not be negative (%lld)",
		            (long long)keep);
	rc = exec(st, S_EVENT_TRIM, __func__, "si", session, keep);
	return rc < 0 ? rc : 0;
}

int store_event_first_seq(struct store *st, const char *session, int64_t *seq)
{
	STMT s = NULL;
	int rc = query(st, S_EVENT_FIRST_SEQ, &s, __func__, "s", session);

	if (rc == 0)
		rc = step_one(st, s, __func__);
	if (rc < 0)
		return rc;
	*seq = sqlite3_column_int64(s, 0);
	return 0;
}

/* ---- schema 2: session bookkeeping */

int store_session_touch(struct store *st, const char *id, int64_t last_active_at,
                        int64_t add_runs)
{
	int rc = exec(st, S_SESSION_TOUCH, __func__, "sii", id, last_active_at, add_runs);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "no session %s", id);
	return rc < 0 ? rc : 0;
}

int store_session_hibernate_all(struct store *st)
{
	return exec(st, S_SESSION_HIBERNATE_ALL, __func__, "");
}

int store_session_list_idle(struct store *st, int64_t before, int64_t limit, store_session_cb cb,
                            void *ctx)
{
	STMT s = NULL;
	/* LIMIT -1 is SQLite's "no limit". */
	int rc = query(st, S_SESSION_LIST_IDLE, &s, __func__, "ii", before,
	               limit > 0 ? limit : (int64_t)-1);

	return rc ? rc : walk(st, s, __func__, session_row, &(struct session_walk){cb, ctx});
}

int store_session_count_for_owner(struct store *st, const char *owner, int64_t *count)
{
	STMT s = NULL;
	int rc = query(st, S_SESSION_COUNT_OWNER, &s, __func__, "s", owner);

	if (rc == 0)
		rc = step_one(st, s, __func__);
	if (rc < 0)
		return rc;
	*count = sqlite3_column_int64(s, 0);
	return 0;
}

/* ---- schema 2: runs */

void store_run_clear(struct store_run *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->session);
	free(r->status);
	free(r->input);
	free(r->output);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

int store_run_insert(struct store *st, const struct store_run *r)
{
	int rc = exec(st, S_RUN_INSERT, __func__, "ssssssiii", r->id, r->session, r->status,
	              r->input, r->output, r->error, r->created_at, r->started_at,
	              r->finished_at);

	if (rc == -ENOENT) /* the foreign key: say which session */
		return fail(st, rc, __func__, "no session %s", r->session);
	return rc < 0 ? rc : 0;
}

int store_run_update(struct store *st, const struct store_run *r)
{
	int rc = exec(st, S_RUN_UPDATE, __func__, "sssssii", r->session, r->id, r->status,
	              r->output, r->error, r->started_at, r->finished_at);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "session %s has no run %s", r->session, r->id);
	return rc < 0 ? rc : 0;
}

int store_run_get(struct store *st, const char *session, const char *id, struct store_run *out)
{
	STMT s = NULL;
	int rc = query(st, S_RUN_GET, &s, __func__, "ss", session, id);

	if (rc == 0)
		rc = step(st, s, __func__);
	if (rc == 0)
		return fail(st, -ENOENT, __func__, "session %s has no run %s", session, id);
	if (rc < 0)
		return rc;
	out->id = col_text(s, 0, true);
	out->session = col_text(s, 1, true);
	out->status = col_text(s, 2, true);
	out->input = col_text(s, 3, true);
	out->output = col_text(s, 4, true);
	out->error = col_text(s, 5, true);
	out->created_at = sqlite3_column_int64(s, 6);
	out->started_at = sqlite3_column_int64(s, 7);
	out->finished_at = sqlite3_column_int64(s, 8);
	return 0;
}

int store_run_fail_unfinished(struct store *st, const char *error, int64_t now)
{
	return exec(st, S_RUN_FAIL_UNFINISHED, __func__, "si", error, now);
}

/* ---- schema 2: agent config */

int store_config_set(struct store *st, const char *agent, const char *key, const char *value)
{
	int rc = exec(st, S_CONFIG_SET, __func__, "sss", agent, key, value);

	return rc < 0 ? rc : 0;
}

int store_config_del(struct store *st, const char *agent, const char *key)
{
	int rc = exec(st, S_CONFIG_DEL, __func__, "ss", agent, key);

	if (rc == 0)
		return fail(st, -ENOENT, __func__, "agent %s has no config key %s", agent, key);
	return rc < 0 ? rc : 0;
}

struct config_walk {
	store_config_cb cb;
	void *ctx;
};

static int config_row(sqlite3_stmt *s, void *arg)
{
	struct config_walk *w = arg;

	return w->cb(col_text(s, 0, false), col_text(s, 1, false), w->ctx);
}

int store_config_list(struct store *st, const char *agent, store_config_cb cb, void *ctx)
{
	STMT s = NULL;
	int rc = query(st, S_CONFIG_LIST, &s, __func__, "s", agent);

	return rc ? rc : walk(st, s, __func__, config_row, &(struct config_walk){cb, ctx});
}
