/* store_test.c: unit tests of host/store.c on a temporary database: every function, its
 * error codes, the agent current-version rules, cascades, the event log, transactions
 * and their nesting, reopening, schema migrations (including the upgrade of a version-1
 * file), and the schema 2 calls: session bookkeeping, runs, agent config. */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/store_test.XXXXXX";
static char db_path[64];

/* Removes the database with its WAL and shared-memory files. */
static void remove_db(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char name[80];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
		unlink(name);
	}
}

static struct store *open_or_die(const char *path)
{
	char err[256];
	struct store *st;

	if (store_open(path, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(2);
	}
	return st;
}

/* A fresh database for one test. */
static struct store *fresh(void)
{
	remove_db(db_path);
	return open_or_die(db_path);
}

/* ---- collecting list output into one comparable string */

struct out {
	char buf[1024];
	int stop_after; /* return 7 from the callback after this many rows (0: never) */
	int rows;
};

static int out_add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int out_add(struct out *o, const char *fmt, ...)
{
	size_t n = strlen(o->buf);
	va_list ap;

	if (n && n + 1 < sizeof(o->buf)) {
		o->buf[n++] = ',';
		o->buf[n] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(o->buf + n, sizeof(o->buf) - n, fmt, ap);
	va_end(ap);
	o->rows++;
	return o->stop_after && o->rows >= o->stop_after ? 7 : 0;
}

static int agent_cb(const struct store_agent *a, void *ctx)
{
	return out_add(ctx, "%s@%s%s", a->name, a->version, a->current ? "*" : "");
}

static int token_cb(const struct store_token *t, void *ctx)
{
	return out_add(ctx, "%s%s", t->id, t->admin ? "!" : "");
}

static int session_cb(const struct store_session *s, void *ctx)
{
	return out_add(ctx, "%s", s->id);
}

static int count_cb(const char *key, int64_t count, void *ctx)
{
	return out_add(ctx, "%s=%lld", key, (long long)count);
}

static int kv_cb(const char *key, const char *value, void *ctx)
{
	return out_add(ctx, "%s=%s", key, value);
}

static int event_cb(const struct store_event *ev, void *ctx)
{
	return out_add(ctx, "%lld:%s:%s", (long long)ev->seq, ev->type, ev->run ? ev->run : "-");
}

/* ---- fixtures */

static int add_agent(struct store *st, const char *name, const char *version, int64_t at)
{
	struct store_agent a = {
	    .name = (char *)name,
	    .version = (char *)version,
	    .manifest = "{\"name\":\"x\"}",
	    .path = "/state/agents/x",
	    .digest = "abcd",
	    .installed_at = at,
	};

	return store_agent_insert(st, &a);
}

static int add_session(struct store *st, const char *id, const char *agent, const char *owner,
                       int64_t created_at)
{
	struct store_session s = {
	    .id = (char *)id,
	    .agent = (char *)agent,
	    .version = "1.0.0",
	    .owner = (char *)owner,
	    .state = "ready",
	    .config = "{\"GREETING\":\"hi\"}",
	    .created_at = created_at,
	    .last_active_at = created_at,
	};

	return store_session_insert(st, &s);
}

static int add_event(struct store *st, const char *session, int64_t seq, const char *run)
{
	struct store_event ev = {
	    .seq = seq, .type = "run.output", .run = run, .time = 1000 + seq, .body = "{}"};

	return store_event_append(st, session, &ev);
}

static void hash_of(unsigned char h[STORE_TOKEN_HASH_LEN], int seed)
{
	for (int i = 0; i < STORE_TOKEN_HASH_LEN; i++)
		h[i] = (unsigned char)(seed * 31 + i);
}

static int add_token(struct store *st, const char *id, int seed, bool admin, int64_t at)
{
	struct store_token t = {
	    .id = (char *)id, .name = "label", .admin = admin, .created_at = at};

	hash_of(t.hash, seed);
	return store_token_insert(st, &t);
}

/* Runs one SQL text on a separate raw connection: for setting up databases the store
 * would never write itself (future versions, half-built schemas). */
static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc = sqlite3_open(path, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw_exec %s: %s\n", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

/* The first column of the first row of sql, as text ("" if no row). */
static void raw_query(const char *path, const char *sql, char *buf, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *s = NULL;

	buf[0] = '\0';
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* ---- tests */

static void test_open_new(void)
{
	struct store *st = fresh();
	char buf[64];

	CHECK_INT(store_schema_version(st), STORE_SCHEMA_VERSION);
	CHECK_INT(store_integrity_check(st), 0);
	CHECK(store_now_ms() / 1000 - time(NULL) <= 1);
	CHECK(store_now_ms() / 1000 - time(NULL) >= -1);
	store_close(st);
	store_close(NULL);
	/* journal_mode is stored in the file: a plain connection sees WAL. */
	raw_query(db_path, "PRAGMA journal_mode", buf, sizeof(buf));
	CHECK_STR(buf, "wal");
	raw_query(db_path, "PRAGMA user_version", buf, sizeof(buf));
	CHECK_INT(atoi(buf), STORE_SCHEMA_VERSION);
}

static void test_open_errors(void)
{
	char path[128], err[256] = "";
	struct store *st = (struct store *)&st;

	snprintf(path, sizeof(path), "%s/missing-dir/x.db", dir);
	CHECK_INT(store_open(path, &st, err, sizeof(err)), -EIO);
	CHECK(st == NULL);
	CHECK(strstr(err, path) != NULL);
	CHECK(store_open(path, &st, NULL, 0) < 0); /* err may be NULL */
	CHECK_STR(store_errmsg(NULL), "no store");
}

static void test_open_newer_refused(void)
{
	char err[256] = "", buf[32];
	struct store *st = (struct store *)&st;

	remove_db(db_path);
	CHECK_INT(raw_exec(db_path, "PRAGMA user_version = 99"), SQLITE_OK);
	CHECK_INT(store_open(db_path, &st, err, sizeof(err)), -ENOTSUP);
	CHECK(st == NULL);
	CHECK(strstr(err, "99") != NULL);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(strstr(err, db_path) != NULL);
	raw_query(db_path, "PRAGMA user_version", buf, sizeof(buf));
	CHECK_STR(buf, "99"); /* left untouched */
}

/* A migration that fails must leave the database exactly at its old version. */
static void test_migration_atomic(void)
{
	char err[256] = "", buf[32];
	struct store *st = NULL;

	remove_db(db_path);
	/* A version-0 file that already has a "sessions" table makes migration 1 fail after
	 * it created agents and tokens. */
	CHECK_INT(raw_exec(db_path, "CREATE TABLE sessions (x)"), SQLITE_OK);
	CHECK_INT(store_open(db_path, &st, err, sizeof(err)), -EIO);
	CHECK(st == NULL);
	CHECK(strstr(err, "migration 1") != NULL);
	raw_query(db_path, "PRAGMA user_version", buf, sizeof(buf));
	CHECK_STR(buf, "0");
	raw_query(db_path, "SELECT count(*) FROM sqlite_master WHERE name IN ('agents', 'tokens')",
	          buf, sizeof(buf));
	CHECK_STR(buf, "0");
	/* Once the obstacle is gone the same file migrates to the newest version. */
	CHECK_INT(raw_exec(db_path, "DROP TABLE sessions"), SQLITE_OK);
	st = open_or_die(db_path);
	CHECK_INT(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}

static void test_agents(void)
{
	struct store *st = fresh();
	struct store_agent a = {0};
	struct out o = {0};

	CHECK_INT(add_agent(st, "echo", "1", 100), 0);
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), 0);
	CHECK_STR(a.version, "1");
	CHECK_STR(a.manifest, "{\"name\":\"x\"}");
	CHECK_STR(a.path, "/state/agents/x");
	CHECK_STR(a.digest, "abcd");
	CHECK_INT(a.installed_at, 100);
	CHECK(a.current);
	store_agent_clear(&a);
	CHECK(a.name == NULL);
	store_agent_clear(NULL);

	/* A new version becomes current; a duplicate changes nothing. */
	CHECK_INT(add_agent(st, "echo", "2", 200), 0);
	CHECK_INT(add_agent(st, "echo", "1", 300), -EEXIST);
	CHECK(strstr(store_errmsg(st), "UNIQUE") != NULL);
	CHECK_INT(add_agent(st, "counter", "0.1", 150), 0);
	CHECK_INT(store_agent_list(st, NULL, false, agent_cb, &o), 0);
	CHECK_STR(o.buf, "counter@0.1*,echo@1,echo@2*");

	/* Update replaces the fields of one version and keeps it non-current. */
	a = (struct store_agent){.name = "echo",
	                         .version = "1",
	                         .manifest = "{}",
	                         .path = "/p",
	                         .digest = "ff",
	                         .installed_at = 400};
	CHECK_INT(store_agent_update(st, &a), 0);
	a.version = "9";
	CHECK_INT(store_agent_update(st, &a), -ENOENT);
	a = (struct store_agent){0};
	CHECK_INT(store_agent_get(st, "echo", "1", &a), 0);
	CHECK_STR(a.manifest, "{}");
	CHECK_STR(a.path, "/p");
	CHECK_STR(a.digest, "ff");
	CHECK_INT(a.installed_at, 400);
	CHECK(!a.current);
	store_agent_clear(&a);
	CHECK_INT(store_agent_get(st, "echo", "9", &a), -ENOENT);
	CHECK_INT(store_agent_get(st, "nope", NULL, &a), -ENOENT);
	CHECK(strstr(store_errmsg(st), "nope") != NULL);

	/* Filters, ordering by installed_at, and a callback that stops the walk. */
	o = (struct out){0};
	CHECK_INT(store_agent_list(st, "echo", false, agent_cb, &o), 0);
	CHECK_STR(o.buf, "echo@2*,echo@1");
	o = (struct out){0};
	CHECK_INT(store_agent_list(st, NULL, true, agent_cb, &o), 0);
	CHECK_STR(o.buf, "counter@0.1*,echo@2*");
	o = (struct out){.stop_after = 1};
	CHECK_INT(store_agent_list(st, NULL, false, agent_cb, &o), 7);
	CHECK_STR(o.buf, "counter@0.1*");

	/* A NULL where the schema needs text is an invalid argument. */
	a = (struct store_agent){.name = "bad", .version = "1", .path = "/p", .digest = "d"};
	CHECK_INT(store_agent_insert(st, &a), -EINVAL);
	store_close(st);
}

static void test_agent_promotion(void)
{
	struct store *st = fresh();
	struct store_agent a = {0};
	struct out o = {0};

	CHECK_INT(add_agent(st, "echo", "1", 100), 0);
	CHECK_INT(add_agent(st, "echo", "3", 300), 0);
	CHECK_INT(add_agent(st, "echo", "2", 250), 0); /* inserted last: current */
	CHECK_INT(add_agent(st, "other", "1", 500), 0);

	/* The current one goes: the most recently installed remaining one (3) takes over. */
	CHECK_INT(store_agent_delete(st, "echo", "2"), 0);
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), 0);
	CHECK_STR(a.version, "3");
	store_agent_clear(&a);
	/* A non-current one goes: the current one stays. */
	CHECK_INT(store_agent_delete(st, "echo", "1"), 0);
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), 0);
	CHECK_STR(a.version, "3");
	store_agent_clear(&a);
	CHECK_INT(store_agent_delete(st, "echo", "1"), -ENOENT);
	/* The last one goes: nothing is current. */
	CHECK_INT(store_agent_delete(st, "echo", "3"), 0);
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), -ENOENT);

	/* Deleting every version of a name. */
	CHECK_INT(add_agent(st, "echo", "4", 600), 0);
	CHECK_INT(add_agent(st, "echo", "5", 700), 0);
	CHECK_INT(store_agent_delete(st, "echo", NULL), 0);
	CHECK_INT(store_agent_delete(st, "echo", NULL), -ENOENT);
	CHECK_INT(store_agent_list(st, NULL, false, agent_cb, &o), 0);
	CHECK_STR(o.buf, "other@1*");
	store_close(st);
}

static void test_tokens(void)
{
	struct store *st = fresh();
	struct store_token t = {0};
	unsigned char h[STORE_TOKEN_HASH_LEN];
	struct out o = {0};

	CHECK_INT(add_token(st, "t_b", 1, true, 20), 0);
	CHECK_INT(add_token(st, "t_a", 2, false, 30), 0);
	CHECK_INT(add_token(st, "t_b", 3, false, 40), -EEXIST); /* same id */
	CHECK_INT(add_token(st, "t_c", 2, false, 40), -EEXIST); /* same hash */

	hash_of(h, 2);
	CHECK_INT(store_token_find_by_hash(st, h, &t), 0);
	CHECK_STR(t.id, "t_a");
	CHECK_STR(t.name, "label");
	CHECK(!t.admin);
	CHECK_INT(t.created_at, 30);
	CHECK(memcmp(t.hash, h, sizeof(h)) == 0);
	store_token_clear(&t);
	CHECK(t.id == NULL);
	store_token_clear(NULL);
	hash_of(h, 9);
	CHECK_INT(store_token_find_by_hash(st, h, &t), -ENOENT);

	CHECK_INT(store_token_get(st, "t_b", &t), 0);
	CHECK(t.admin);
	hash_of(h, 1);
	CHECK(memcmp(t.hash, h, sizeof(h)) == 0);
	store_token_clear(&t);
	CHECK_INT(store_token_get(st, "t_x", &t), -ENOENT);

	CHECK_INT(store_token_list(st, token_cb, &o), 0);
	CHECK_STR(o.buf, "t_b!,t_a"); /* by created_at, not by id */
	CHECK_INT(store_token_delete(st, "t_b"), 0);
	CHECK_INT(store_token_delete(st, "t_b"), -ENOENT);
	o = (struct out){0};
	CHECK_INT(store_token_list(st, token_cb, &o), 0);
	CHECK_STR(o.buf, "t_a");
	store_close(st);
}

static void test_sessions(void)
{
	struct store *st = fresh();
	struct store_session s = {0};
	struct out o = {0};
	int64_t n = -1;

	CHECK_INT(add_session(st, "s_2", "echo", "t_a", 20), 0);
	CHECK_INT(add_session(st, "s_1", "echo", "t_b", 10), 0);
	CHECK_INT(add_session(st, "s_3", "counter", "t_a", 30), 0);
	CHECK_INT(add_session(st, "s_1", "echo", "t_a", 40), -EEXIST);

	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_STR(s.id, "s_1");
	CHECK_STR(s.agent, "echo");
	CHECK_STR(s.version, "1.0.0");
	CHECK_STR(s.owner, "t_b");
	CHECK_STR(s.state, "ready");
	CHECK_STR(s.config, "{\"GREETING\":\"hi\"}");
	CHECK_INT(s.created_at, 10);
	CHECK_INT(s.last_active_at, 10);
	CHECK_INT(s.runs, 0);
	CHECK_INT(s.last_seq, 0);
	store_session_clear(&s);
	CHECK(s.id == NULL);
	store_session_clear(NULL);
	CHECK_INT(store_session_get(st, "s_9", &s), -ENOENT);

	/* config is optional. */
	s = (struct store_session){.id = "s_4",
	                           .agent = "a",
	                           .version = "1",
	                           .owner = "t_c",
	                           .state = "ready",
	                           .created_at = 50,
	                           .last_active_at = 50};
	CHECK_INT(store_session_insert(st, &s), 0);
	s = (struct store_session){0};
	CHECK_INT(store_session_get(st, "s_4", &s), 0);
	CHECK(s.config == NULL);
	store_session_clear(&s);

	CHECK_INT(store_session_set_state(st, "s_2", "hibernated", 99), 0);
	CHECK_INT(store_session_get(st, "s_2", &s), 0);
	CHECK_STR(s.state, "hibernated");
	CHECK_INT(s.last_active_at, 99);
	store_session_clear(&s);
	CHECK_INT(store_session_set_state(st, "s_9", "ready", 1), -ENOENT);

	CHECK_INT(store_session_list(st, NULL, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_1,s_2,s_3,s_4");
	o = (struct out){0};
	CHECK_INT(store_session_list(st, "t_a", session_cb, &o), 0);
	CHECK_STR(o.buf, "s_2,s_3");
	o = (struct out){0};
	CHECK_INT(store_session_list(st, "t_none", session_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){.stop_after = 2};
	CHECK_INT(store_session_list(st, NULL, session_cb, &o), 7);

	CHECK_INT(store_session_count_for_agent(st, "echo", &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(store_session_count_for_agent(st, "none", &n), 0);
	CHECK_INT(n, 0);
	o = (struct out){0};
	CHECK_INT(store_session_count_by_state(st, count_cb, &o), 0);
	CHECK_STR(o.buf, "hibernated=1,ready=3");

	CHECK_INT(store_session_delete(st, "s_2"), 0);
	CHECK_INT(store_session_delete(st, "s_2"), -ENOENT);
	CHECK_INT(store_session_get(st, "s_2", &s), -ENOENT);
	store_close(st);
}

static void test_kv(void)
{
	static const char *const keys[] = {"b/x", "a", "abc", "ab", "b", "abd", "ab\xc3\xa9"};
	struct store *st = fresh();
	struct out o = {0};
	char *v = NULL;

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(add_session(st, "s_2", "echo", "t", 2), 0);
	CHECK_INT(store_kv_set(st, "s_1", "k", "1"), 0);
	CHECK_INT(store_kv_get(st, "s_1", "k", &v), 0);
	CHECK_STR(v, "1");
	free(v);
	CHECK_INT(store_kv_set(st, "s_1", "k", "{\"a\":[1,2]}"), 0); /* overwrite */
	CHECK_INT(store_kv_get(st, "s_1", "k", &v), 0);
	CHECK_STR(v, "{\"a\":[1,2]}");
	free(v);
	CHECK_INT(store_kv_get(st, "s_2", "k", &v), -ENOENT); /* sessions do not share keys */
	CHECK_INT(store_kv_set(st, "s_9", "k", "1"), -ENOENT);
	CHECK(strstr(store_errmsg(st), "s_9") != NULL);
	CHECK_INT(store_kv_del(st, "s_1", "k"), 0);
	CHECK_INT(store_kv_del(st, "s_1", "k"), -ENOENT);
	CHECK_INT(store_kv_get(st, "s_1", "k", &v), -ENOENT);

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK_INT(store_kv_set(st, "s_1", keys[i], "0"), 0);
	CHECK_INT(store_kv_set(st, "s_2", "ab2", "0"), 0);
	CHECK_INT(store_kv_list(st, "s_1", "ab", kv_cb, &o), 0);
	CHECK_STR(o.buf, "ab=0,abc=0,abd=0,ab\xc3\xa9=0");
	o = (struct out){0};
	CHECK_INT(store_kv_list(st, "s_1", "", kv_cb, &o), 0);
	CHECK_STR(o.buf, "a=0,ab=0,abc=0,abd=0,ab\xc3\xa9=0,b=0,b/x=0");
	o = (struct out){0};
	CHECK_INT(store_kv_list(st, "s_1", "b/", kv_cb, &o), 0);
	CHECK_STR(o.buf, "b/x=0");
	o = (struct out){0};
	CHECK_INT(store_kv_list(st, "s_1", "zz", kv_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){0};
	CHECK_INT(store_kv_list(st, "s_9", "", kv_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){.stop_after = 2};
	CHECK_INT(store_kv_list(st, "s_1", "ab", kv_cb, &o), 7);
	CHECK_STR(o.buf, "ab=0,abc=0");
	store_close(st);
}

static void test_events(void)
{
	struct store *st = fresh();
	struct store_session s = {0};
	struct out o = {0};
	int64_t first = -1;

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(store_event_first_seq(st, "s_1", &first), 0);
	CHECK_INT(first, 0);
	for (int64_t seq = 1; seq <= 5; seq++)
		CHECK_INT(add_event(st, "s_1", seq, seq % 2 ? "r_1" : NULL), 0);
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_INT(s.last_seq, 5);
	store_session_clear(&s);

	CHECK_INT(add_event(st, "s_1", 5, NULL), -EEXIST); /* already there */
	CHECK_INT(add_event(st, "s_9", 1, NULL), -ENOENT); /* no such session */

	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 0);
	CHECK_STR(o.buf, "1:run.output:r_1,2:run.output:-,3:run.output:r_1,4:run.output:-,"
	                 "5:run.output:r_1");
	o = (struct out){0};
	CHECK_INT(store_event_list(st, "s_1", 2, 2, event_cb, &o), 0);
	CHECK_STR(o.buf, "3:run.output:r_1,4:run.output:-");
	o = (struct out){0};
	CHECK_INT(store_event_list(st, "s_1", 5, -1, event_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){.stop_after = 1};
	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 7);

	/* Trim keeps the newest; the sequence never goes back, even past a trim. */
	CHECK_INT(store_event_trim(st, "s_1", 2), 0);
	CHECK_INT(store_event_first_seq(st, "s_1", &first), 0);
	CHECK_INT(first, 4);
	CHECK_INT(store_event_trim(st, "s_1", 10), 0);
	CHECK_INT(store_event_first_seq(st, "s_1", &first), 0);
	CHECK_INT(first, 4);
	CHECK_INT(add_event(st, "s_1", 2, NULL), -EEXIST); /* trimmed, but not above last_seq */
	CHECK_INT(add_event(st, "s_1", 7, NULL), 0);       /* gaps are allowed */
	o = (struct out){0};
	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 0);
	CHECK_STR(o.buf, "4:run.output:-,5:run.output:r_1,7:run.output:-");
	CHECK_INT(store_event_trim(st, "s_1", 0), 0);
	CHECK_INT(store_event_first_seq(st, "s_1", &first), 0);
	CHECK_INT(first, 0);
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_INT(s.last_seq, 7); /* a trim does not rewind it */
	store_session_clear(&s);
	CHECK_INT(store_event_trim(st, "s_1", -1), -EINVAL);
	CHECK_INT(store_event_first_seq(st, "s_9", &first), 0);
	CHECK_INT(first, 0);

	/* The full event record round-trips. */
	struct store_event ev = {
	    .seq = 8, .type = "run.completed", .run = "r_2", .time = 12345, .body = "{\"x\":1}"};
	CHECK_INT(store_event_append(st, "s_1", &ev), 0);
	o = (struct out){0};
	CHECK_INT(store_event_list(st, "s_1", 7, 1, event_cb, &o), 0);
	CHECK_STR(o.buf, "8:run.completed:r_2");
	store_close(st);
}

static int body_cb(const struct store_event *ev, void *ctx)
{
	return out_add(ctx, "%lld/%s", (long long)ev->time, ev->body);
}

static void test_event_fields(void)
{
	struct store *st = fresh();
	struct store_event ev = {
	    .seq = 1, .type = "run.started", .run = NULL, .time = 12345, .body = "{\"a\":1}"};
	struct out o = {0};

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(store_event_append(st, "s_1", &ev), 0);
	CHECK_INT(store_event_list(st, "s_1", 0, 0, body_cb, &o), 0);
	CHECK_STR(o.buf, "12345/{\"a\":1}");
	ev.seq = 2;
	ev.body = NULL;
	CHECK_INT(store_event_append(st, "s_1", &ev), -EINVAL);
	store_close(st);
}

/* Deleting a session takes its KV rows and events, and only its own. */
static void test_cascade(void)
{
	struct store *st = fresh();
	struct out o = {0};
	int64_t first = -1;
	char *v = NULL;

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(add_session(st, "s_2", "echo", "t", 2), 0);
	CHECK_INT(store_kv_set(st, "s_1", "k", "1"), 0);
	CHECK_INT(store_kv_set(st, "s_2", "k", "2"), 0);
	CHECK_INT(add_event(st, "s_1", 1, NULL), 0);
	CHECK_INT(add_event(st, "s_2", 1, NULL), 0);

	CHECK_INT(store_session_delete(st, "s_1"), 0);
	CHECK_INT(store_kv_get(st, "s_1", "k", &v), -ENOENT);
	CHECK_INT(store_kv_list(st, "s_1", "", kv_cb, &o), 0);
	CHECK_STR(o.buf, "");
	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 0);
	CHECK_STR(o.buf, "");
	CHECK_INT(store_event_first_seq(st, "s_1", &first), 0);
	CHECK_INT(first, 0);
	/* A new session under the old ID starts empty. */
	CHECK_INT(add_session(st, "s_1", "echo", "t", 3), 0);
	CHECK_INT(add_event(st, "s_1", 1, NULL), 0);

	CHECK_INT(store_kv_get(st, "s_2", "k", &v), 0);
	CHECK_STR(v, "2");
	free(v);
	CHECK_INT(store_event_first_seq(st, "s_2", &first), 0);
	CHECK_INT(first, 1);
	store_close(st);
}

static void check_kv(struct store *st, const char *key, const char *want)
{
	char *v = NULL;
	int rc = store_kv_get(st, "s_1", key, &v);

	if (want) {
		CHECK_INT(rc, 0);
		CHECK_STR(v, want);
	} else {
		CHECK_INT(rc, -ENOENT);
	}
	free(v);
}

static void test_transactions(void)
{
	struct store *st = fresh();
	struct store *other = open_or_die(db_path);
	struct store_session s = {0};

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(store_commit(st), -EIO); /* nothing open */
	CHECK(strstr(store_errmsg(st), "no transaction") != NULL);
	CHECK_INT(store_rollback(st), -EIO);

	/* Rollback undoes the group; another connection sees only committed data. */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "a", "1"), 0);
	check_kv(other, "a", NULL);
	CHECK_INT(store_rollback(st), 0);
	check_kv(st, "a", NULL);

	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "a", "1"), 0);
	CHECK_INT(add_event(st, "s_1", 1, NULL), 0); /* its own level, released into ours */
	CHECK_INT(store_commit(st), 0);
	check_kv(other, "a", "1");
	CHECK_INT(store_session_get(other, "s_1", &s), 0);
	CHECK_INT(s.last_seq, 1);
	store_session_clear(&s);

	/* A failing function inside a group undoes only itself. */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "b", "2"), 0);
	CHECK_INT(add_event(st, "s_1", 1, NULL), -EEXIST);
	CHECK_INT(add_agent(st, "echo", "1", 1), 0);
	CHECK_INT(add_agent(st, "echo", "1", 2), -EEXIST);
	CHECK_INT(store_commit(st), 0);
	check_kv(other, "b", "2");
	struct store_agent a = {0};
	CHECK_INT(store_agent_get(other, "echo", NULL, &a), 0); /* still current */
	CHECK_STR(a.version, "1");
	store_agent_clear(&a);

	/* Nested groups: the inner rollback undoes the inner writes only... */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "outer", "1"), 0);
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "inner", "1"), 0);
	CHECK_INT(store_rollback(st), 0);
	check_kv(st, "inner", NULL);
	check_kv(st, "outer", "1");
	/* ...an inner commit is undone by an outer rollback... */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_1", "inner2", "1"), 0);
	CHECK_INT(store_commit(st), 0);
	check_kv(other, "inner2", NULL);
	CHECK_INT(store_rollback(st), 0);
	check_kv(st, "outer", NULL);
	check_kv(st, "inner2", NULL);
	/* ...and a function's own transaction goes with the outer rollback. */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(add_event(st, "s_1", 2, NULL), 0);
	CHECK_INT(store_agent_delete(st, "echo", NULL), 0);
	CHECK_INT(store_rollback(st), 0);
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_INT(s.last_seq, 1);
	store_session_clear(&s);
	CHECK_INT(store_agent_get(st, "echo", "1", &a), 0);
	store_agent_clear(&a);
	CHECK_INT(store_commit(st), -EIO); /* every level is closed again */

	store_close(other);
	store_close(st);
}

/* A callback may use the connection, but not re-enter the walk that called it. */
struct reenter {
	struct store *st;
	int inner_rc;
	char *value;
};

static int reenter_cb(const char *key, const char *value, void *ctx)
{
	struct reenter *r = ctx;
	struct out o = {0};

	(void)key;
	(void)value;
	r->inner_rc = store_kv_list(r->st, "s_1", "", kv_cb, &o);
	if (!r->value)
		store_kv_get(r->st, "s_1", "b", &r->value);
	return 0;
}

static void test_reentry(void)
{
	struct store *st = fresh();
	struct reenter r = {.st = st};
	struct out o = {0};

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(store_kv_set(st, "s_1", "a", "1"), 0);
	CHECK_INT(store_kv_set(st, "s_1", "b", "2"), 0);
	CHECK_INT(store_kv_list(st, "s_1", "", reenter_cb, &r), 0);
	CHECK_INT(r.inner_rc, -EIO);
	CHECK_STR(r.value, "2");
	free(r.value);
	/* The refused re-entry did not disturb the statement: the next walk is whole. */
	CHECK_INT(store_kv_list(st, "s_1", "", kv_cb, &o), 0);
	CHECK_STR(o.buf, "a=1,b=2");
	store_close(st);
}

/* Closing and opening again keeps everything and does not migrate twice. */
static void test_reopen(void)
{
	struct store *st = fresh();
	struct store_token t = {0};
	struct store_agent a = {0};
	unsigned char h[STORE_TOKEN_HASH_LEN];
	struct out o = {0};

	CHECK_INT(add_agent(st, "echo", "1", 1), 0);
	CHECK_INT(add_token(st, "t_1", 5, true, 1), 0);
	CHECK_INT(add_session(st, "s_1", "echo", "t_1", 1), 0);
	CHECK_INT(store_kv_set(st, "s_1", "k", "\"v\""), 0);
	CHECK_INT(add_event(st, "s_1", 1, "r_1"), 0);
	store_close(st);

	st = open_or_die(db_path);
	CHECK_INT(store_schema_version(st), STORE_SCHEMA_VERSION);
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), 0);
	store_agent_clear(&a);
	hash_of(h, 5);
	CHECK_INT(store_token_find_by_hash(st, h, &t), 0);
	CHECK_STR(t.id, "t_1");
	store_token_clear(&t);
	check_kv(st, "k", "\"v\"");
	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 0);
	CHECK_STR(o.buf, "1:run.output:r_1");
	CHECK_INT(store_integrity_check(st), 0);
	store_close(st);
}

/* A writer that finds the database locked waits (busy timeout) instead of failing: a
 * child holds a write transaction for a while, the parent writes meanwhile. */
static void test_busy_wait(void)
{
	struct store *st = fresh();
	int fds[2];
	char c;

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	store_close(st);
	if (pipe(fds) != 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		struct store *child = open_or_die(db_path);

		if (store_begin(child) != 0 || store_kv_set(child, "s_1", "child", "1") != 0)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		_exit(store_commit(child) == 0 ? 0 : 1);
	}
	close(fds[1]);
	CHECK_INT(read(fds[0], &c, 1), 1);
	close(fds[0]);
	st = open_or_die(db_path);
	CHECK_INT(store_kv_set(st, "s_1", "parent", "1"), 0);
	check_kv(st, "child", "1"); /* the write above waited for the child's commit */
	int status = -1;
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	store_close(st);
}

/* ---- schema 2 */

static int config_cb(const char *key, const char *value, void *ctx)
{
	return out_add(ctx, "%s=%s", key, value);
}

static int session_state_cb(const struct store_session *s, void *ctx)
{
	return out_add(ctx, "%s:%s", s->id, s->state);
}

static int add_session_at(struct store *st, const char *id, const char *owner, const char *state,
                          int64_t created_at, int64_t last_active_at)
{
	struct store_session s = {
	    .id = (char *)id,
	    .agent = "echo",
	    .version = "1.0.0",
	    .owner = (char *)owner,
	    .state = (char *)state,
	    .created_at = created_at,
	    .last_active_at = last_active_at,
	};

	return store_session_insert(st, &s);
}

static int add_run(struct store *st, const char *session, const char *id, const char *status)
{
	struct store_run r = {
	    .id = (char *)id,
	    .session = (char *)session,
	    .status = (char *)status,
	    .input = "{\"q\":1}",
	    .created_at = 100,
	};

	return store_run_insert(st, &r);
}

static void check_run_status(struct store *st, const char *session, const char *id,
                             const char *want)
{
	struct store_run r = {0};
	int rc = store_run_get(st, session, id, &r);

	if (want) {
		CHECK_INT(rc, 0);
		CHECK_STR(r.status, want);
	} else {
		CHECK_INT(rc, -ENOENT);
	}
	store_run_clear(&r);
}

static void test_session_bookkeeping(void)
{
	struct store *st = fresh();
	struct store_session s = {0};
	struct out o = {0};
	int64_t n = -1;

	/* created_at order differs from last_active_at order on purpose. */
	CHECK_INT(add_session_at(st, "s_1", "t_a", "ready", 10, 500), 0);
	CHECK_INT(add_session_at(st, "s_2", "t_a", "running", 20, 100), 0);
	CHECK_INT(add_session_at(st, "s_3", "t_b", "starting", 30, 300), 0);
	CHECK_INT(add_session_at(st, "s_4", "t_a", "hibernated", 40, 200), 0);
	CHECK_INT(add_session_at(st, "s_5", "t_b", "failed", 50, 300), 0);

	/* touch: last_active_at is set, runs adds up. */
	CHECK_INT(store_session_touch(st, "s_1", 600, 1), 0);
	CHECK_INT(store_session_touch(st, "s_1", 700, 2), 0);
	CHECK_INT(store_session_touch(st, "s_4", 50, 0), 0);
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_INT(s.last_active_at, 700);
	CHECK_INT(s.runs, 3);
	CHECK_STR(s.state, "ready"); /* touch leaves the state alone */
	store_session_clear(&s);
	CHECK_INT(store_session_touch(st, "s_9", 1, 1), -ENOENT);
	CHECK(strstr(store_errmsg(st), "s_9") != NULL);

	/* list_idle: before is exclusive, oldest first, ties in insertion order. */
	CHECK_INT(store_session_list_idle(st, 300, 0, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_4,s_2");
	o = (struct out){0};
	CHECK_INT(store_session_list_idle(st, 301, 0, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_4,s_2,s_3,s_5");
	o = (struct out){0};
	CHECK_INT(store_session_list_idle(st, 301, 3, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_4,s_2,s_3");
	o = (struct out){0};
	CHECK_INT(store_session_list_idle(st, 1000, -1, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_4,s_2,s_3,s_5,s_1");
	o = (struct out){0};
	CHECK_INT(store_session_list_idle(st, 50, 0, session_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){.stop_after = 1};
	CHECK_INT(store_session_list_idle(st, 1000, 0, session_cb, &o), 7);
	CHECK_STR(o.buf, "s_4");

	CHECK_INT(store_session_count_for_owner(st, "t_a", &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(store_session_count_for_owner(st, "t_b", &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(store_session_count_for_owner(st, "t_none", &n), 0);
	CHECK_INT(n, 0);

	/* hibernate_all: only the live states change; a second call finds nothing. */
	CHECK_INT(store_session_hibernate_all(st), 3);
	o = (struct out){0};
	CHECK_INT(store_session_list(st, NULL, session_state_cb, &o), 0);
	CHECK_STR(o.buf, "s_1:hibernated,s_2:hibernated,s_3:hibernated,s_4:hibernated,s_5:failed");
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_INT(s.last_active_at, 700); /* not a use of the session */
	store_session_clear(&s);
	CHECK_INT(store_session_hibernate_all(st), 0);
	store_close(st);
}

static void test_runs(void)
{
	struct store *st = fresh();
	struct store_run r = {0};

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(add_session(st, "s_2", "echo", "t", 2), 0);

	r = (struct store_run){.id = "r_1",
	                       .session = "s_1",
	                       .status = "queued",
	                       .input = "{\"q\":1}",
	                       .created_at = 100};
	CHECK_INT(store_run_insert(st, &r), 0);
	CHECK_INT(store_run_insert(st, &r), -EEXIST);
	r.session = "s_2"; /* run IDs are per session */
	CHECK_INT(store_run_insert(st, &r), 0);
	r.session = "s_9";
	CHECK_INT(store_run_insert(st, &r), -ENOENT);
	CHECK(strstr(store_errmsg(st), "s_9") != NULL);
	r.session = "s_1";
	r.id = "r_2";
	r.status = NULL;
	CHECK_INT(store_run_insert(st, &r), -EINVAL);
	r.status = "queued";
	r.id = NULL;
	CHECK_INT(store_run_insert(st, &r), -EINVAL);

	r = (struct store_run){0};
	CHECK_INT(store_run_get(st, "s_1", "r_1", &r), 0);
	CHECK_STR(r.id, "r_1");
	CHECK_STR(r.session, "s_1");
	CHECK_STR(r.status, "queued");
	CHECK_STR(r.input, "{\"q\":1}");
	CHECK(r.output == NULL);
	CHECK(r.error == NULL);
	CHECK_INT(r.created_at, 100);
	CHECK_INT(r.started_at, 0);
	CHECK_INT(r.finished_at, 0);
	store_run_clear(&r);
	CHECK(r.id == NULL);
	store_run_clear(NULL);
	CHECK_INT(store_run_get(st, "s_1", "r_9", &r), -ENOENT);
	CHECK_INT(store_run_get(st, "s_9", "r_1", &r), -ENOENT);

	/* update: status, output, error and the times; input and created_at stay. */
	r = (struct store_run){.id = "r_1",
	                       .session = "s_1",
	                       .status = "completed",
	                       .input = "{\"ignored\":true}",
	                       .output = "{\"a\":2}",
	                       .created_at = 999,
	                       .started_at = 110,
	                       .finished_at = 120};
	CHECK_INT(store_run_update(st, &r), 0);
	r = (struct store_run){0};
	CHECK_INT(store_run_get(st, "s_1", "r_1", &r), 0);
	CHECK_STR(r.status, "completed");
	CHECK_STR(r.input, "{\"q\":1}");
	CHECK_STR(r.output, "{\"a\":2}");
	CHECK(r.error == NULL);
	CHECK_INT(r.created_at, 100);
	CHECK_INT(r.started_at, 110);
	CHECK_INT(r.finished_at, 120);
	store_run_clear(&r);
	check_run_status(st, "s_2", "r_1", "queued"); /* the other session's r_1 is untouched */
	r = (struct store_run){.id = "r_9", .session = "s_1", .status = "failed"};
	CHECK_INT(store_run_update(st, &r), -ENOENT);
	CHECK(strstr(store_errmsg(st), "r_9") != NULL);
	r = (struct store_run){.id = "r_1", .session = "s_1", .status = NULL};
	CHECK_INT(store_run_update(st, &r), -EINVAL);
	check_run_status(st, "s_1", "r_1", "completed");

	/* fail_unfinished: queued and running become failed, the rest stay. */
	CHECK_INT(add_run(st, "s_1", "r_run", "running"), 0);
	CHECK_INT(add_run(st, "s_1", "r_can", "cancelled"), 0);
	CHECK_INT(add_run(st, "s_2", "r_fail", "failed"), 0);
	CHECK_INT(store_run_fail_unfinished(st, "{\"code\":\"host_restarted\"}", 5000), 2);
	check_run_status(st, "s_1", "r_1", "completed");
	check_run_status(st, "s_1", "r_can", "cancelled");
	check_run_status(st, "s_2", "r_1", "failed");
	r = (struct store_run){0};
	CHECK_INT(store_run_get(st, "s_1", "r_run", &r), 0);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.error, "{\"code\":\"host_restarted\"}");
	CHECK_INT(r.finished_at, 5000);
	store_run_clear(&r);
	CHECK_INT(store_run_get(st, "s_2", "r_fail", &r), 0);
	CHECK(r.error == NULL); /* was already failed: not rewritten */
	CHECK_INT(r.finished_at, 0);
	store_run_clear(&r);
	CHECK_INT(store_run_fail_unfinished(st, "{}", 6000), 0);
	store_close(st);
}

/* Deleting a session takes its runs, and only its own. */
static void test_run_cascade(void)
{
	struct store *st = fresh();
	char buf[32];

	CHECK_INT(add_session(st, "s_1", "echo", "t", 1), 0);
	CHECK_INT(add_session(st, "s_2", "echo", "t", 2), 0);
	CHECK_INT(add_run(st, "s_1", "r_1", "completed"), 0);
	CHECK_INT(add_run(st, "s_1", "r_2", "running"), 0);
	CHECK_INT(add_run(st, "s_2", "r_1", "queued"), 0);

	CHECK_INT(store_session_delete(st, "s_1"), 0);
	check_run_status(st, "s_1", "r_1", NULL);
	check_run_status(st, "s_1", "r_2", NULL);
	check_run_status(st, "s_2", "r_1", "queued");
	raw_query(db_path, "SELECT count(*) FROM session_runs WHERE session = 's_1'", buf,
	          sizeof(buf));
	CHECK_STR(buf, "0");
	/* A new session under the old ID starts without runs, and may reuse run IDs. */
	CHECK_INT(add_session(st, "s_1", "echo", "t", 3), 0);
	check_run_status(st, "s_1", "r_1", NULL);
	CHECK_INT(add_run(st, "s_1", "r_1", "queued"), 0);
	/* A group that deletes the session and rolls back keeps the runs. */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_session_delete(st, "s_2"), 0);
	check_run_status(st, "s_2", "r_1", NULL);
	CHECK_INT(store_rollback(st), 0);
	check_run_status(st, "s_2", "r_1", "queued");
	store_close(st);
}

static void test_config(void)
{
	struct store *st = fresh();
	struct out o = {0};

	CHECK_INT(store_config_set(st, "echo", "b", "2"), 0);
	CHECK_INT(store_config_set(st, "echo", "a", "1"), 0);
	CHECK_INT(store_config_set(st, "echo", "B", "3"), 0);
	CHECK_INT(store_config_set(st, "other", "a", "x"), 0);
	CHECK_INT(store_config_set(st, "echo", "a", "one"), 0); /* overwrite */
	CHECK_INT(store_config_list(st, "echo", config_cb, &o), 0);
	CHECK_STR(o.buf, "B=3,a=one,b=2"); /* bytewise key order */
	o = (struct out){0};
	CHECK_INT(store_config_list(st, "other", config_cb, &o), 0);
	CHECK_STR(o.buf, "a=x");
	o = (struct out){0};
	CHECK_INT(store_config_list(st, "none", config_cb, &o), 0);
	CHECK_STR(o.buf, "");
	o = (struct out){.stop_after = 1};
	CHECK_INT(store_config_list(st, "echo", config_cb, &o), 7);
	CHECK_STR(o.buf, "B=3");

	CHECK_INT(store_config_set(st, "echo", "c", NULL), -EINVAL);
	CHECK_INT(store_config_set(st, NULL, "c", "1"), -EINVAL);
	CHECK_INT(store_config_del(st, "echo", "b"), 0);
	CHECK_INT(store_config_del(st, "echo", "b"), -ENOENT);
	CHECK(strstr(store_errmsg(st), "echo") != NULL);
	CHECK_INT(store_config_del(st, "none", "a"), -ENOENT);
	o = (struct out){0};
	CHECK_INT(store_config_list(st, "echo", config_cb, &o), 0);
	CHECK_STR(o.buf, "B=3,a=one");

	/* Config belongs to the name, not to an installed version. */
	CHECK_INT(add_agent(st, "echo", "1", 1), 0);
	CHECK_INT(store_agent_delete(st, "echo", NULL), 0);
	o = (struct out){0};
	CHECK_INT(store_config_list(st, "echo", config_cb, &o), 0);
	CHECK_STR(o.buf, "B=3,a=one");
	store_close(st);
}

/* Migration 1 exactly as released: a version-1 file is built from it with plain SQL. */
static const char v1_schema[] =
    "CREATE TABLE agents ("
    "  name TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  manifest TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  installed_at INTEGER NOT NULL,"
    "  current INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1)),"
    "  PRIMARY KEY (name, version));"
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
    "  PRIMARY KEY (session, seq)) WITHOUT ROWID;";

/* Rows a version-1 daemon would have written. */
static const char v1_rows[] =
    "INSERT INTO agents VALUES ('echo', '1', '{}', '/p', 'ab', 5, 1);"
    "INSERT INTO tokens VALUES ('t_1', 'ops', zeroblob(32), 1, 6);"
    "INSERT INTO sessions VALUES ('s_1', 'echo', '1', 't_1', 'running', NULL, 7, 70, 4, 2);"
    "INSERT INTO sessions VALUES ('s_2', 'echo', '1', 't_1', 'ready', '{}', 8, 30, 0, 0);"
    "INSERT INTO session_kv VALUES ('s_1', 'k', '\"v\"');"
    "INSERT INTO session_events VALUES ('s_1', 1, 'run.started', 'r_1', 71, '{}');"
    "INSERT INTO session_events VALUES ('s_1', 2, 'run.output', 'r_1', 72, '{}');"
    "PRAGMA user_version = 1;";

static void make_v1(void)
{
	remove_db(db_path);
	CHECK_INT(raw_exec(db_path, v1_schema), SQLITE_OK);
	CHECK_INT(raw_exec(db_path, v1_rows), SQLITE_OK);
}

static void test_upgrade_from_v1(void)
{
	struct store *st;
	struct store_session s = {0};
	struct store_agent a = {0};
	struct store_token t = {0};
	struct out o = {0};
	int64_t n = -1;
	char buf[64];

	make_v1();
	raw_query(db_path, "PRAGMA user_version", buf, sizeof(buf));
	CHECK_STR(buf, "1");
	st = open_or_die(db_path);
	CHECK_INT(store_schema_version(st), 2);
	CHECK_INT(store_integrity_check(st), 0);

	/* The version-1 rows are all there. */
	CHECK_INT(store_agent_get(st, "echo", NULL, &a), 0);
	CHECK_STR(a.version, "1");
	store_agent_clear(&a);
	CHECK_INT(store_token_get(st, "t_1", &t), 0);
	CHECK(t.admin);
	store_token_clear(&t);
	CHECK_INT(store_session_get(st, "s_1", &s), 0);
	CHECK_STR(s.state, "running");
	CHECK_INT(s.runs, 4);
	CHECK_INT(s.last_seq, 2);
	CHECK_INT(s.last_active_at, 70);
	store_session_clear(&s);
	check_kv(st, "k", "\"v\"");
	CHECK_INT(store_event_list(st, "s_1", 0, 0, event_cb, &o), 0);
	CHECK_STR(o.buf, "1:run.started:r_1,2:run.output:r_1");

	/* The new tables and index exist and work on the old rows. */
	raw_query(db_path,
	          "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE name IN"
	          " ('session_runs', 'agent_config', 'sessions_by_last_active') ORDER BY name)",
	          buf, sizeof(buf));
	CHECK_STR(buf, "agent_config session_runs sessions_by_last_active");
	o = (struct out){0};
	CHECK_INT(store_session_list_idle(st, 100, 0, session_cb, &o), 0);
	CHECK_STR(o.buf, "s_2,s_1");
	CHECK_INT(store_session_count_for_owner(st, "t_1", &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(add_run(st, "s_1", "r_1", "running"), 0);
	CHECK_INT(store_config_set(st, "echo", "K", "v"), 0);
	CHECK_INT(store_session_hibernate_all(st), 2);
	CHECK_INT(store_run_fail_unfinished(st, "{}", 9), 1);
	check_run_status(st, "s_1", "r_1", "failed");
	CHECK_INT(store_session_delete(st, "s_1"), 0); /* the cascade holds on an upgraded file */
	check_run_status(st, "s_1", "r_1", NULL);
	store_close(st);

	/* Opening again does not migrate again. */
	st = open_or_die(db_path);
	CHECK_INT(store_schema_version(st), 2);
	o = (struct out){0};
	CHECK_INT(store_config_list(st, "echo", config_cb, &o), 0);
	CHECK_STR(o.buf, "K=v");
	store_close(st);
}

/* A migration 2 that fails leaves the version-1 file as it was. */
static void test_migration2_atomic(void)
{
	char err[256] = "", buf[32];
	struct store *st = NULL;

	make_v1();
	/* An agent_config already there makes step 2 fail after it created session_runs. */
	CHECK_INT(raw_exec(db_path, "CREATE TABLE agent_config (x)"), SQLITE_OK);
	CHECK_INT(store_open(db_path, &st, err, sizeof(err)), -EIO);
	CHECK(st == NULL);
	CHECK(strstr(err, "migration 2") != NULL);
	raw_query(db_path, "PRAGMA user_version", buf, sizeof(buf));
	CHECK_STR(buf, "1");
	raw_query(db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'session_runs'", buf,
	          sizeof(buf));
	CHECK_STR(buf, "0");
	raw_query(db_path, "SELECT count(*) FROM sessions", buf, sizeof(buf));
	CHECK_STR(buf, "2");
	CHECK_INT(raw_exec(db_path, "DROP TABLE agent_config"), SQLITE_OK);
	st = open_or_die(db_path);
	CHECK_INT(store_schema_version(st), 2);
	store_close(st);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 2;
	snprintf(db_path, sizeof(db_path), "%s/state.db", dir);

	test_open_new();
	test_open_errors();
	test_open_newer_refused();
	test_migration_atomic();
	test_agents();
	test_agent_promotion();
	test_tokens();
	test_sessions();
	test_kv();
	test_events();
	test_event_fields();
	test_cascade();
	test_transactions();
	test_reentry();
	test_reopen();
	test_busy_wait();
	test_session_bookkeeping();
	test_runs();
	test_run_cascade();
	test_config();
	test_upgrade_from_v1();
	test_migration2_atomic();

	remove_db(db_path);
	rmdir(dir);
	return check_summary();
}
