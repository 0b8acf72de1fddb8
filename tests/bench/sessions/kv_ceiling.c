/* kv_ceiling.c: the peer of the sessions benchmark's KV writes — SQLite alone, in one
 * process, doing what the daemon's store does for each acknowledged agent write: one upsert
 * per transaction (autocommit) into the same session_kv table (same schema, foreign key to
 * sessions, journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON), with the same values as
 * kvwriter (a 200-byte JSON string, stored as its JSON text) and keys cycling over k0..k255.
 * No HTTP, no agent, no frames: the most a daemon built on this store could do on one
 * thread.
 *
 * usage: sessions_kv_ceiling DB_PATH WRITES SESSIONS
 * prints: ceiling writes=N secs=S rate=R commit_p50_us=.. commit_p99_us=.. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void check(sqlite3 *db, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fprintf(stderr, "sessions_kv_ceiling: %s: %s\n", what, sqlite3_errmsg(db));
		exit(1);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const char schema[] =
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
	    "CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, agent TEXT NOT NULL,"
	    "  version TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL, config TEXT,"
	    "  created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL,"
	    "  runs INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0);"
	    "CREATE TABLE session_kv ("
	    "  session TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
	    "  key TEXT NOT NULL, value TEXT NOT NULL,"
	    "  PRIMARY KEY (session, key)) WITHOUT ROWID;";
	sqlite3 *db;
	sqlite3_stmt *ins, *set;
	long writes, sessions;
	int64_t *lat, t0, total;
	char value[256], key[16], id[40];

	if (argc != 4 || (writes = atol(argv[2])) < 1 || (sessions = atol(argv[3])) < 1) {
		fprintf(stderr, "usage: sessions_kv_ceiling DB_PATH WRITES SESSIONS\n");
		return 2;
	}
	lat = malloc((size_t)writes * sizeof(*lat));
	if (!lat)
		return 1;
	check(NULL, sqlite3_open(argv[1], &db), "open");
	check(db, sqlite3_exec(db, schema, NULL, NULL, NULL), "schema");
	check(db,
	      sqlite3_prepare_v2(db,
	                         "INSERT INTO sessions (id, agent, version, owner, state,"
	                         " created_at, last_active_at) VALUES (?1, 'kvwriter', '1.0.0',"
	                         " 't_admin', 'ready', 0, 0)",
	                         -1, &ins, NULL),
	      "prepare");
	for (long s = 0; s < sessions; s++) {
		snprintf(id, sizeof(id), "s_0000%032ld", s);
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
		check(db, sqlite3_step(ins), "insert session");
		sqlite3_reset(ins);
	}
	check(db,
	      sqlite3_prepare_v2(db,
	                         "INSERT INTO session_kv (session, key, value) VALUES (?1, ?2, ?3)"
	                         " ON CONFLICT (session, key) DO UPDATE SET value = excluded.value",
	                         -1, &set, NULL),
	      "prepare");
	memset(value, 'v', sizeof(value));
	t0 = now_ns();
	for (long i = 0; i < writes; i++) {
		int64_t c0 = now_ns();
		long s = i % sessions, n = i / sessions;
		int len = snprintf(value, 202, "\"write %ld of %ld ", n + 1, writes / sessions);
		value[len] = 'v';
		value[201] = '"';
		value[202] = '\0';
		snprintf(id, sizeof(id), "s_0000%032ld", s);
		snprintf(key, sizeof(key), "k%ld", n % 256);
		sqlite3_bind_text(set, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(set, 2, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(set, 3, value, -1, SQLITE_TRANSIENT);
		check(db, sqlite3_step(set), "upsert");
		sqlite3_reset(set);
		lat[i] = now_ns() - c0;
	}
	total = now_ns() - t0;
	qsort(lat, (size_t)writes, sizeof(*lat), cmp_i64);
	printf("ceiling writes=%ld sessions=%ld secs=%.3f rate=%.0f commit_p50_us=%.1f "
	       "commit_p99_us=%.1f commit_max_us=%.0f\n",
	       writes, sessions, (double)total / 1e9, (double)writes * 1e9 / (double)total,
	       (double)lat[writes / 2] / 1000.0, (double)lat[writes * 99 / 100] / 1000.0,
	       (double)lat[writes - 1] / 1000.0);
	sqlite3_finalize(ins);
	sqlite3_finalize(set);
	sqlite3_close(db);
	free(lat);
	return 0;
}
