/* store_crash_test.c: the durability promise of store.c under kill -9. A child commits
 * rows in a loop and reports each one on a pipe after its commit returned; the parent
 * kills it mid-write, reopens the database and checks that every reported row is there
 * and that no transaction is half-applied. Repeated with several kill delays. */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/store_crash_test.XXXXXX";
static char db_path[64];

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

/* One committed group: the event seq and the KV key "n" move together. */
static int write_row(struct store *st, const char *session, int64_t seq)
{
	/* A body big enough that the WAL fills and checkpoints run while we kill. */
	static char body[2048];
	struct store_event ev = {
	    .seq = seq, .type = "run.output", .run = "r_1", .time = seq, .body = body};
	char n[32];
	int rc;

	if (!body[0]) {
		memset(body, 'x', sizeof(body) - 1);
		body[0] = '"';
		body[sizeof(body) - 2] = '"';
	}
	snprintf(n, sizeof(n), "%lld", (long long)seq);
	rc = store_begin(st);
	if (rc == 0)
		rc = store_event_append(st, session, &ev);
	if (rc == 0)
		rc = store_kv_set(st, session, "n", n);
	if (rc == 0)
		return store_commit(st);
	store_rollback(st);
	return rc;
}

/* The child: writes rows until killed, reporting each after its commit returned. */
static void __attribute__((noreturn)) writer(const char *session, int fd)
{
	struct store *st = open_or_die(db_path);
	struct store_session s = {
	    .id = (char *)session, .agent = "a", .version = "1", .owner = "t", .state = "running"};

	if (store_session_insert(st, &s) != 0)
		_exit(3);
	for (int64_t seq = 1;; seq++) {
		if (write_row(st, session, seq) != 0) {
			fprintf(stderr, "writer: %s\n", store_errmsg(st));
			_exit(4);
		}
		if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
			_exit(5);
	}
}

/* Reads the child's reports for up to timeout_ms (-1: until end of file) into *last.
 * Reading while the child runs matters: a full pipe would block it in write(), and the
 * kill would then land between commits instead of in the middle of one. */
static void read_reports(int fd, int timeout_ms, int64_t *last)
{
	int64_t end = store_now_ms() + timeout_ms, seq[512];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int wait = timeout_ms < 0 ? -1 : (int)(end - store_now_ms());
		ssize_t n;

		if (timeout_ms >= 0 && wait <= 0)
			return;
		if (poll(&pfd, 1, wait) <= 0)
			continue; /* timeout (checked above) or EINTR */
		n = read(fd, seq, sizeof(seq));
		if (n <= 0)
			return;
		/* Writes of 8 bytes are atomic, so reads return whole reports. */
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(seq[0]); i++) {
			if (seq[i] != *last + 1)
				fprintf(stderr, "report %lld after %lld\n", (long long)seq[i],
				        (long long)*last);
			*last = seq[i];
		}
	}
}

struct contiguous {
	int64_t next;
	bool ok;
};

static int contiguous_cb(const struct store_event *ev, void *ctx)
{
	struct contiguous *c = ctx;

	if (ev->seq != c->next)
		c->ok = false;
	c->next = ev->seq + 1;
	return 0;
}

/* Every reported row is there, the log has no hole, and KV agrees with the log. */
static void check_after_crash(const char *session, int64_t reported)
{
	struct store *st = open_or_die(db_path);
	struct store_session s = {0};
	struct contiguous c = {1, true};
	char *n = NULL;

	CHECK_INT(store_integrity_check(st), 0);
	if (store_session_get(st, session, &s) == -ENOENT) {
		/* Killed before the session row was committed, so before any report. */
		CHECK_INT(reported, 0);
		printf("%s: killed before the first commit\n", session);
		store_close(st);
		return;
	}
	CHECK(s.last_seq >= reported);
	/* At most one commit may have landed after the child's last report. */
	CHECK(s.last_seq <= reported + 1);
	CHECK_INT(store_event_list(st, session, 0, 0, contiguous_cb, &c), 0);
	CHECK(c.ok);
	CHECK_INT(c.next - 1, s.last_seq);
	if (s.last_seq > 0) {
		CHECK_INT(store_kv_get(st, session, "n", &n), 0);
		CHECK_INT(n ? atoll(n) : -1, s.last_seq);
	}
	printf("%s: reported %lld, found %lld\n", session, (long long)reported,
	       (long long)s.last_seq);
	free(n);
	store_session_clear(&s);
	store_close(st);
}

static void crash_round(int round, int delay_ms)
{
	char session[32];
	int fds[2], status;
	int64_t reported = 0;
	pid_t pid;

	snprintf(session, sizeof(session), "s_crash_%d", round);
	if (pipe(fds) != 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(fds[0]);
		writer(session, fds[1]);
	}
	close(fds[1]);
	read_reports(fds[0], delay_ms, &reported);
	CHECK_INT(kill(pid, SIGKILL), 0);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	/* Killed, not exited: an exit would mean the writer failed before the kill. */
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	read_reports(fds[0], -1, &reported);
	close(fds[0]);
	CHECK(reported > 0 || delay_ms < 20);
	check_after_crash(session, reported);
}

int main(void)
{
	/* Short delays kill during open or the first commits; longer ones mid-stream and
	 * across automatic checkpoints. Rounds share one file, so each also recovers a
	 * database that was itself recovered. */
	static const int delays_ms[] = {1, 15, 40, 120, 300, 700};

	if (!mkdtemp(dir))
		return 2;
	snprintf(db_path, sizeof(db_path), "%s/state.db", dir);
	store_close(open_or_die(db_path)); /* the schema exists before the first kill */

	for (size_t i = 0; i < sizeof(delays_ms) / sizeof(delays_ms[0]); i++)
		crash_round((int)i, delays_ms[i]);

	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char name[80];

		snprintf(name, sizeof(name), "%s%s", db_path, suffixes[i]);
		unlink(name);
	}
	rmdir(dir);
	return check_summary();
}
