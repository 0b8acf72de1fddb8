/* store_backup_test.c: store_backup (host/store.c). The copy opens with store_open as a
 * valid database holding the same rows as the source in every table; it is one file, mode
 * 0600, with nothing left beside it; it never replaces a file (the target, or a PATH.tmp
 * of another backup) and leaves nothing behind when it fails; it is refused inside a
 * transaction; and copies taken while another process commits (an event and a KV row per
 * transaction, as sessions do) are each a consistent moment: the KV row and the event log
 * agree in every copy. */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/store_backup_test.XXXXXX";
static char db_path[128];

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

static char *path_in_dir(const char *name)
{
	static char buf[4][160];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static bool exists_suffix(const char *path, const char *suffix)
{
	char p[256];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return exists(p);
}

/* ---- every table's rows as one string, to compare two databases */

struct dump {
	char buf[8192];
	struct store *st;
};

static void dump_add(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void dump_add(struct dump *d, const char *fmt, ...)
{
	size_t n = strlen(d->buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->buf + n, sizeof(d->buf) - n, fmt, ap);
	va_end(ap);
}

static int dump_agent(const struct store_agent *a, void *ctx)
{
	dump_add(ctx, "agent %s %s %s %s %s %lld %d\n", a->name, a->version, a->manifest, a->path,
	         a->digest, (long long)a->installed_at, a->current);
	return 0;
}

static int dump_token(const struct store_token *t, void *ctx)
{
	dump_add(ctx, "token %s %s %02x%02x %d %lld\n", t->id, t->name, t->hash[0], t->hash[31],
	         t->admin, (long long)t->created_at);
	return 0;
}

static int dump_kv(const char *key, const char *value, void *ctx)
{
	dump_add(ctx, "  kv %s=%s\n", key, value);
	return 0;
}

static int dump_event(const struct store_event *ev, void *ctx)
{
	dump_add(ctx, "  event %lld %s %s %lld %s\n", (long long)ev->seq, ev->type,
	         ev->run ? ev->run : "-", (long long)ev->time, ev->body);
	return 0;
}

static int dump_config(const char *key, const char *value, void *ctx)
{
	dump_add(ctx, "config %s=%s\n", key, value);
	return 0;
}

static int dump_session(const struct store_session *s, void *ctx)
{
	struct dump *d = ctx;
	struct store_run r = {0};

	dump_add(d, "session %s %s %s %s %s %s %lld %lld %lld %lld\n", s->id, s->agent, s->version,
	         s->owner, s->state, s->config ? s->config : "-", (long long)s->created_at,
	         (long long)s->last_active_at, (long long)s->runs, (long long)s->last_seq);
	store_kv_list(d->st, s->id, "", dump_kv, d);
	store_event_list(d->st, s->id, 0, 0, dump_event, d);
	if (store_run_get(d->st, s->id, "r_1", &r) == 0)
		dump_add(d, "  run %s %s %s %s %lld\n", r.id, r.status, r.input, r.output,
		         (long long)r.finished_at);
	store_run_clear(&r);
	return 0;
}

static void dump(struct store *st, struct dump *d)
{
	d->buf[0] = '\0';
	d->st = st;
	dump_add(d, "schema %d\n", store_schema_version(st));
	store_agent_list(st, NULL, false, dump_agent, d);
	store_token_list(st, dump_token, d);
	store_config_list(st, "echo", dump_config, d);
	store_session_list(st, NULL, dump_session, d);
}

/* Rows in every table, enough of them that the copy spans many pages. */
static void fill(struct store *st)
{
	struct store_agent a = {.name = "echo",
	                        .version = "1.0.0",
	                        .manifest = "{\"name\":\"echo\"}",
	                        .path = "/var/lib/agenthost/agents/echo/1.0.0",
	                        .digest = "ab12",
	                        .installed_at = 1000};
	struct store_token t = {.id = "t_1", .name = "admin", .admin = true, .created_at = 5};
	char id[32], key[32], body[600];

	memset(t.hash, 7, sizeof(t.hash));
	CHECK_INT(store_agent_insert(st, &a), 0);
	CHECK_INT(store_token_insert(st, &t), 0);
	CHECK_INT(store_config_set(st, "echo", "GREETING", "hi"), 0);
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (int i = 0; i < 20; i++) {
		struct store_session s = {.id = id,
		                          .agent = "echo",
		                          .version = "1.0.0",
		                          .owner = "t_1",
		                          .state = "ready",
		                          .created_at = i,
		                          .last_active_at = i};
		struct store_run r = {.id = "r_1",
		                      .session = id,
		                      .status = "completed",
		                      .input = "1",
		                      .output = "2",
		                      .created_at = i,
		                      .finished_at = i + 1};

		snprintf(id, sizeof(id), "s_%02d", i);
		CHECK_INT(store_session_insert(st, &s), 0);
		CHECK_INT(store_run_insert(st, &r), 0);
		for (int k = 0; k < 10; k++) {
			struct store_event ev = {.seq = k + 1,
			                         .type = "run.output",
			                         .run = "r_1",
			                         .time = k,
			                         .body = body};

			snprintf(key, sizeof(key), "key%d", k);
			CHECK_INT(store_kv_set(st, id, key, "\"value\""), 0);
			CHECK_INT(store_event_append(st, id, &ev), 0);
		}
	}
}

static void test_copy_has_the_same_rows(void)
{
	struct store *st = open_or_die(db_path), *copy;
	const char *path = path_in_dir("copy.db");
	static struct dump a, b;
	char err[512] = "", head[20];
	struct stat sb;
	FILE *f;

	fill(st);
	CHECK_INT(store_backup(st, path, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	/* One file, mode 0600, no temporary or journal files beside it. */
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
	CHECK(sb.st_size > 100 * 1024);
	CHECK(!exists_suffix(path, ".tmp"));
	CHECK(!exists_suffix(path, "-wal"));
	CHECK(!exists_suffix(path, "-shm"));
	CHECK(!exists_suffix(path, "-journal"));
	CHECK(!exists_suffix(path, ".tmp-journal"));
	/* Bytes 18 and 19 of the header are 1 (rollback journal), not 2 (WAL): the file
	 * needs nothing beside it to be read, even from a read-only folder. */
	f = fopen(path, "rb");
	CHECK(f && fread(head, 1, sizeof(head), f) == sizeof(head));
	if (f)
		fclose(f);
	CHECK(memcmp(head, "SQLite format 3", 16) == 0);
	CHECK_INT(head[18], 1);
	CHECK_INT(head[19], 1);

	copy = open_or_die(path);
	CHECK_INT(store_integrity_check(copy), 0);
	dump(st, &a);
	dump(copy, &b);
	CHECK(strlen(a.buf) > 1000);
	CHECK_STR(b.buf, a.buf);
	/* The copy is a working database: writes go to it, not to the source. */
	CHECK_INT(store_kv_set(copy, "s_00", "only-in-copy", "1"), 0);
	CHECK_INT(store_kv_get(st, "s_00", "only-in-copy", &(char *){NULL}), -ENOENT);
	store_close(copy);
	store_close(st);
}

static void test_never_replaces(void)
{
	struct store *st = open_or_die(db_path);
	const char *path = path_in_dir("copy.db"); /* made by the previous test */
	const char *other = path_in_dir("other.db");
	char tmp[256], err[512];
	struct stat before, after;
	FILE *f;

	/* The target exists: -EEXIST, and it is untouched. */
	CHECK(stat(path, &before) == 0);
	CHECK_INT(store_backup(st, path, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, path) && strstr(err, "exists"));
	CHECK(strstr(store_errmsg(st), "exists") != NULL);
	CHECK(stat(path, &after) == 0 && after.st_size == before.st_size &&
	      after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	      after.st_mtim.tv_nsec == before.st_mtim.tv_nsec && after.st_ino == before.st_ino);
	CHECK(!exists_suffix(path, ".tmp"));

	/* A folder, a symlink (even a dangling one) are files too. */
	CHECK_INT(store_backup(st, dir, err, sizeof(err)), -EEXIST);
	CHECK_INT(symlink("/nonexistent/x.db", path_in_dir("link.db")), 0);
	CHECK_INT(store_backup(st, path_in_dir("link.db"), err, sizeof(err)), -EEXIST);
	CHECK(!exists("/nonexistent/x.db"));

	/* PATH.tmp of another backup (or an interrupted one): refused, left alone. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", other);
	f = fopen(tmp, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("someone else's", f);
		fclose(f);
	}
	CHECK_INT(store_backup(st, other, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, ".tmp exists") != NULL);
	CHECK(!exists(other));
	CHECK(stat(tmp, &after) == 0 && after.st_size == 14);
	unlink(tmp);
	CHECK_INT(store_backup(st, other, err, sizeof(err)), 0);
	CHECK(exists(other) && !exists(tmp));
	store_close(st);
}

static void test_failures_leave_nothing(void)
{
	struct store *st = open_or_die(db_path);
	const char *missing = path_in_dir("no-such-folder/copy.db");
	const char *in_file = path_in_dir("copy.db/x.db"); /* copy.db is a file */
	const char *target = path_in_dir("in-tx.db");
	char err[512];

	CHECK_INT(store_backup(st, missing, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no-such-folder/copy.db.tmp") && strstr(err, "No such file"));
	CHECK(!exists(path_in_dir("no-such-folder")));
	CHECK_INT(store_backup(st, in_file, err, sizeof(err)), -ENOTDIR);
	CHECK_INT(store_backup(st, "", err, sizeof(err)), -EINVAL);
	CHECK_INT(store_backup(st, NULL, NULL, 0), -EINVAL);

	/* Inside a transaction the copy would read uncommitted writes: refused. */
	CHECK_INT(store_begin(st), 0);
	CHECK_INT(store_kv_set(st, "s_00", "uncommitted", "1"), 0);
	CHECK_INT(store_backup(st, target, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "transaction") != NULL);
	CHECK(!exists(target) && !exists_suffix(target, ".tmp"));
	CHECK_INT(store_rollback(st), 0);
	store_close(st);
}

/* Another connection's open write transaction is not in the copy; its commit is in the
 * next copy. */
static void test_snapshot_skips_uncommitted(void)
{
	struct store *st = open_or_die(db_path), *writer = open_or_die(db_path), *copy;
	char err[512], *value = NULL;

	CHECK_INT(store_begin(writer), 0);
	CHECK_INT(store_kv_set(writer, "s_01", "pending", "\"x\""), 0);
	CHECK_INT(store_backup(st, path_in_dir("during.db"), err, sizeof(err)), 0);
	CHECK_INT(store_commit(writer), 0);
	CHECK_INT(store_backup(st, path_in_dir("after.db"), err, sizeof(err)), 0);

	copy = open_or_die(path_in_dir("during.db"));
	CHECK_INT(store_kv_get(copy, "s_01", "pending", &value), -ENOENT);
	store_close(copy);
	copy = open_or_die(path_in_dir("after.db"));
	CHECK_INT(store_kv_get(copy, "s_01", "pending", &value), 0);
	CHECK_STR(value, "\"x\"");
	free(value);
	store_close(copy);
	store_close(writer);
	store_close(st);
}

/* ---- copies taken while another process commits */

static void __attribute__((noreturn)) writer_loop(void)
{
	struct store *st = open_or_die(db_path);
	struct store_session s = {.id = "s_live",
	                          .agent = "echo",
	                          .version = "1.0.0",
	                          .owner = "t_1",
	                          .state = "running"};
	char body[1024], n[32];

	memset(body, 'w', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	if (store_session_insert(st, &s) != 0)
		_exit(3);
	for (int64_t seq = 1;; seq++) {
		struct store_event ev = {
		    .seq = seq, .type = "run.output", .time = seq, .body = body};
		int rc = store_begin(st);

		snprintf(n, sizeof(n), "%lld", (long long)seq);
		if (rc == 0)
			rc = store_event_append(st, "s_live", &ev);
		if (rc == 0)
			rc = store_kv_set(st, "s_live", "n", n);
		if (rc == 0)
			rc = store_commit(st);
		if (rc != 0) {
			fprintf(stderr, "writer: %s\n", store_errmsg(st));
			_exit(4);
		}
	}
}

static int last_event(const struct store_event *ev, void *ctx)
{
	*(int64_t *)ctx = ev->seq;
	return 0;
}

static void test_copies_under_writes(void)
{
	struct store *st = open_or_die(db_path);
	int64_t prev = 0;
	pid_t pid = fork();

	if (pid == 0)
		writer_loop();
	CHECK(pid > 0);
	usleep(100 * 1000);
	for (int i = 0; i < 8; i++) {
		struct store_session s = {0};
		struct store *copy;
		char name[32], err[512], *n = NULL;
		int64_t last = -1;

		snprintf(name, sizeof(name), "live%d.db", i);
		CHECK_INT(store_backup(st, path_in_dir(name), err, sizeof(err)), 0);
		copy = open_or_die(path_in_dir(name));
		CHECK_INT(store_integrity_check(copy), 0);
		/* One moment: the KV row, the newest event and last_seq all agree. */
		CHECK_INT(store_session_get(copy, "s_live", &s), 0);
		CHECK_INT(store_kv_get(copy, "s_live", "n", &n), 0);
		CHECK_INT(store_event_list(copy, "s_live", 0, 0, last_event, &last), 0);
		CHECK(n && atoll(n) == s.last_seq && last == s.last_seq);
		/* The writer went on between copies (it is not blocked by them). */
		CHECK(s.last_seq > prev);
		prev = s.last_seq;
		free(n);
		store_session_clear(&s);
		store_close(copy);
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("copies under writes: the last one holds %lld commits\n", (long long)prev);
	store_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(db_path, sizeof(db_path), "%s/state.db", dir);
	test_copy_has_the_same_rows();
	test_never_replaces();
	test_failures_leave_nothing();
	test_snapshot_skips_uncommitted();
	test_copies_under_writes();
	if (!check_failed) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return check_summary();
}
