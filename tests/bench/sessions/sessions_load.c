/* sessions_load.c: the sessions benchmark's client. Blocking HTTP/1.1 keep-alive
 * connections, one per thread, to a running agenthostd; every request's latency (first byte
 * written to last byte read) is kept, so p50/p99 are exact order statistics. Each command
 * below is one measurement of tests/bench/sessions/run.sh and prints one or more lines of
 * key=value fields that run.sh turns into tables. Every answer is checked; anything but the
 * expected status (and body, where one is expected) is counted by kind and printed, never
 * dropped.
 *
 * usage: sessions_load --free-port
 *        sessions_load -p PORT -t TOKEN COMMAND [options]   (see the commands table) */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_THREADS 256
#define IO_TIMEOUT_S 60 /* a request with no answer this long counts as a timeout */
#define MAX_STATUS 600

/* ---- options shared by the commands */

static struct {
	int port;
	const char *token;
	const char *agent;
	const char *body;
	const char *expect;
	const char *path;
	const char *ids_file;
	const char *levels;
	bool get, no_peer;
	int conns, samples, rounds, bwrap_cpu, gap_ms;
	long writes, max_calls;
	double seconds, warmup;
	int daemon_pid;
} opt = {.conns = 1,
         .samples = 300,
         .rounds = 3,
         .bwrap_cpu = -1,
         .writes = 10000,
         .max_calls = 100000,
         .seconds = 5,
         .warmup = 1,
         .body = "{\"input\": \"hello big world\"}",
         .expect = "\"status\":\"completed\""};

static struct sockaddr_in server;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "sessions_load: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- latencies */

struct lat {
	int64_t *v; /* ns */
	size_t n, cap;
};

static void lat_add(struct lat *l, int64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			die("realloc");
	}
	l->v[l->n++] = ns;
}

static void lat_merge(struct lat *into, const struct lat *from)
{
	for (size_t i = 0; i < from->n; i++)
		lat_add(into, from->v[i]);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (0..1) in µs, nearest rank; 0 when empty. Sorts l. */
static double lat_q_us(struct lat *l, double q)
{
	size_t i;

	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
	i = (size_t)(q * (double)l->n + 0.999999);
	i = i ? i - 1 : 0;
	if (i >= l->n)
		i = l->n - 1;
	return (double)l->v[i] / 1000.0;
}

/* Prints "NAME_p50_us=.. NAME_p99_us=.. NAME_max_us=.. NAME_n=.." */
static void lat_print(const char *name, struct lat *l)
{
	printf(" %s_p50_us=%.0f %s_p99_us=%.0f %s_max_us=%.0f %s_n=%zu", name, lat_q_us(l, 0.5),
	       name, lat_q_us(l, 0.99), name, lat_q_us(l, 1.0), name, l->n);
}

/* ---- failures, counted by kind */

struct failures {
	atomic_long status[MAX_STATUS]; /* unexpected statuses */
	atomic_long bad_body, errors, timeouts;
	pthread_mutex_t lock;
	char first[240]; /* the first failure's status and body, for the report */
};

static struct failures fails = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void fail_note(int status, const char *body)
{
	if (status < 0)
		atomic_fetch_add(status == -2 ? &fails.timeouts : &fails.errors, 1);
	else if (status < MAX_STATUS)
		atomic_fetch_add(&fails.status[status], 1);
	pthread_mutex_lock(&fails.lock);
	if (!fails.first[0]) {
		snprintf(fails.first, sizeof(fails.first), "%d %s", status, body ? body : "");
		for (char *p = fails.first; *p; p++)
			if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
				*p = '_'; /* one key=value field */
	}
	pthread_mutex_unlock(&fails.lock);
}

static long fail_total(void)
{
	long n = fails.bad_body + fails.errors + fails.timeouts;

	for (int i = 0; i < MAX_STATUS; i++)
		n += fails.status[i];
	return n;
}

/* " failures=N statuses=409:2,503:1 bad_body=.. errors=.. timeouts=.. first_failure=..",
 * then the counts start again. */
static void fail_print(void)
{
	bool any = false;

	printf(" failures=%ld statuses=", fail_total());
	for (int i = 0; i < MAX_STATUS; i++)
		if (fails.status[i]) {
			printf("%s%d:%ld", any ? "," : "", i, (long)fails.status[i]);
			any = true;
		}
	printf("%s bad_body=%ld errors=%ld timeouts=%ld first_failure=%s", any ? "" : "-",
	       (long)fails.bad_body, (long)fails.errors, (long)fails.timeouts,
	       fails.first[0] ? fails.first : "-");
	for (int i = 0; i < MAX_STATUS; i++)
		fails.status[i] = 0;
	fails.bad_body = fails.errors = fails.timeouts = 0;
	fails.first[0] = '\0';
}

/* ---- one blocking keep-alive HTTP/1.1 connection */

struct http {
	int fd;
	char *buf; /* the last answer; its body starts at body */
	size_t cap, len;
	char *body;
	size_t body_len;
};

static void http_close(struct http *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

static int http_open(struct http *h)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	int one = 1;

	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		return -1;
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(h->fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
		http_close(h);
		return -1;
	}
	return 0;
}

static const char *find_header(const char *head, size_t len, const char *name)
{
	size_t n = strlen(name);
	const char *p = head, *end = head + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) && p + 1 + n < end) {
		p++;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			for (p += n + 1; *p == ' '; p++)
				;
			return p;
		}
	}
	return NULL;
}

/* Sends one request and reads its whole answer into h->buf (body NUL-terminated at
 * h->body). Returns the HTTP status, -1 on a connection error, -2 on a timeout. A
 * connection the server broke between requests is reopened once. */
static int http_call(struct http *h, const char *method, const char *path, const char *body)
{
	char head[1024];
	size_t blen = body ? strlen(body) : 0;
	int n, attempt;

	n = snprintf(head, sizeof(head),
	             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
	             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	             method, path, opt.token, blen);
	for (attempt = 0; attempt < 2; attempt++) {
		bool fresh = h->fd < 0;
		if (fresh && http_open(h) < 0)
			return -1;
		struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, blen}};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
		ssize_t w = sendmsg(h->fd, &msg, MSG_NOSIGNAL);
		if (w != (ssize_t)(n + blen)) {
			/* Bodies are small: a short write only happens on a broken connection. */
			http_close(h);
			if (fresh)
				return -1;
			continue;
		}
		h->len = 0;
		for (;;) {
			if (h->cap - h->len < 4096) {
				h->cap = h->cap ? h->cap * 2 : 65536;
				h->buf = realloc(h->buf, h->cap);
				if (!h->buf)
					die("realloc");
			}
			ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				http_close(h);
				return -2;
			}
			if (r <= 0) {
				http_close(h);
				if (h->len == 0 && !fresh)
					break; /* closed while idle: reopen and send again */
				return -1;
			}
			h->len += (size_t)r;
			h->buf[h->len] = '\0';
			char *eoh = strstr(h->buf, "\r\n\r\n");
			if (!eoh)
				continue;
			size_t hl = (size_t)(eoh - h->buf) + 4;
			const char *cl = find_header(h->buf, hl, "content-length");
			size_t want = cl ? (size_t)atoll(cl) : 0;
			if (h->len < hl + want)
				continue;
			const char *conn = find_header(h->buf, hl, "connection");
			int status = atoi(h->buf + 9);
			h->body = h->buf + hl;
			h->body_len = want;
			h->body[want] = '\0';
			if (conn && strncasecmp(conn, "close", 5) == 0)
				http_close(h);
			return status;
		}
	}
	return -1;
}

/* The "id" of a JSON answer ("s_..."), copied into out. */
static int json_id(const char *body, char *out, size_t len)
{
	const char *p = strstr(body, "\"id\":\"");
	size_t n;

	if (!p)
		return -1;
	p += 6;
	n = strcspn(p, "\"");
	if (n == 0 || n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

#define ID_MAX 64

/* Creates a session of agent; 0 and its id, or -1 (counted as a failure). */
static int session_create(struct http *h, const char *agent, char *id, int64_t *ns)
{
	char path[256];
	int64_t t0 = now_ns();
	int st;

	snprintf(path, sizeof(path), "/v1/agents/%s/sessions", agent);
	st = http_call(h, "POST", path, NULL);
	if (ns)
		*ns = now_ns() - t0;
	if (st != 201 || json_id(h->body, id, ID_MAX) < 0) {
		fail_note(st, st > 0 ? h->body : NULL);
		return -1;
	}
	return 0;
}

static int session_destroy(struct http *h, const char *id, int64_t *ns)
{
	char path[128];
	int64_t t0 = now_ns();
	int st;

	snprintf(path, sizeof(path), "/v1/sessions/%s", id);
	st = http_call(h, "DELETE", path, NULL);
	if (ns)
		*ns = now_ns() - t0;
	if (st != 204) {
		fail_note(st, st > 0 ? h->body : NULL);
		return -1;
	}
	return 0;
}

/* Posts a run; 0 if it answered 200 with expect in the body. */
static int session_run(struct http *h, const char *id, const char *body, const char *expect)
{
	char path[128];
	int st;

	snprintf(path, sizeof(path), "/v1/sessions/%s/runs", id);
	st = http_call(h, "POST", path, body);
	if (st != 200) {
		fail_note(st, st > 0 ? h->body : NULL);
		return -1;
	}
	if (expect && !strstr(h->body, expect)) {
		atomic_fetch_add(&fails.bad_body, 1);
		fail_note(1000, h->body); /* 1000: not a status, only recorded as the first */
		return -1;
	}
	return 0;
}

/* ---- threads */

typedef void *(*thread_fn)(void *);

static void run_threads(int n, thread_fn fn, void *args, size_t arg_size)
{
	pthread_t t[MAX_THREADS];

	if (n > MAX_THREADS)
		n = MAX_THREADS;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0)
			die("pthread_create");
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/* ---- /proc: the daemon and its agents */

struct usage {
	long rss_kb, fds;
	long agents, agents_rss_kb, agents_pss_kb;
	long mem_available_kb;
};

static long status_field_kb(const char *path, const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = atol(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

static long count_fds(int pid)
{
	char path[64];
	long n = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The parent pid in /proc/PID/stat (after the command name, which may hold spaces). */
static int parent_of(const char *pid)
{
	char path[64], buf[512];
	FILE *f;
	size_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%.16s/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')))
		return -1;
	return atoi(p + 4); /* ") S PPID" */
}

/* The daemon's RSS and fds, and every direct child's (its agents') RSS and PSS. */
static void usage_read(int pid, struct usage *u)
{
	char path[96];
	struct dirent *e;
	DIR *d = opendir("/proc");

	memset(u, 0, sizeof(*u));
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	u->rss_kb = status_field_kb(path, "VmRSS");
	u->fds = count_fds(pid);
	u->mem_available_kb = status_field_kb("/proc/meminfo", "MemAvailable");
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || parent_of(e->d_name) != pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%.16s/smaps_rollup", e->d_name);
		long rss = status_field_kb(path, "Rss"), pss = status_field_kb(path, "Pss");
		if (rss < 0)
			continue;
		u->agents++;
		u->agents_rss_kb += rss;
		u->agents_pss_kb += pss;
	}
	closedir(d);
}

static void usage_print(const struct usage *u)
{
	printf(" rss_kb=%ld fds=%ld agents=%ld agents_rss_kb=%ld agents_pss_kb=%ld "
	       "mem_available_kb=%ld",
	       u->rss_kb, u->fds, u->agents, u->agents_rss_kb, u->agents_pss_kb,
	       u->mem_available_kb);
}

/* ---- command: create — session create/destroy next to a bare bwrap spawn */

/* One option and its arguments a line. */
/* clang-format off */
static const char *const bwrap_argv[] = {
    "bwrap", "--unshare-all", "--die-with-parent",
    "--ro-bind", "/usr", "/usr",
    "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64",
    "--symlink", "usr/bin", "/bin",
    "--proc", "/proc",
    "--dev", "/dev",
    "--", "/bin/true", NULL};
/* clang-format on */

/* One bwrap spawn to its exit, on the server's core if one was given (the calling thread's
 * affinity is what posix_spawn's child inherits). Returns ns, or -1. */
static int64_t bwrap_once(void)
{
	cpu_set_t mine, there;
	pid_t pid;
	int status, rc;
	int64_t t0;

	if (opt.bwrap_cpu >= 0) {
		sched_getaffinity(0, sizeof(mine), &mine);
		CPU_ZERO(&there);
		CPU_SET(opt.bwrap_cpu, &there);
		sched_setaffinity(0, sizeof(there), &there);
	}
	t0 = now_ns();
	rc = posix_spawn(&pid, "/usr/bin/bwrap", NULL, NULL, (char **)bwrap_argv, environ);
	if (opt.bwrap_cpu >= 0)
		sched_setaffinity(0, sizeof(mine), &mine);
	if (rc != 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	t0 = now_ns() - t0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t0 : -1;
}

/* -n SAMPLES rounds of: create a session of -a AGENT, destroy it, spawn bwrap (not with
 * --no-peer); the first 5% are a warm-up and dropped. */
static int cmd_create(void)
{
	struct http h = {.fd = -1};
	struct lat create = {0}, destroy = {0}, bwrap = {0};
	int warm = opt.samples / 20, bwrap_failed = 0;
	char id[ID_MAX];

	for (int i = 0; i < warm + opt.samples; i++) {
		int64_t c = -1, d = -1, b;
		if (session_create(&h, opt.agent, id, &c) == 0)
			session_destroy(&h, id, &d);
		b = opt.no_peer ? -1 : bwrap_once();
		if (b < 0 && !opt.no_peer)
			bwrap_failed++;
		if (i < warm)
			continue;
		if (c >= 0 && d >= 0) {
			lat_add(&create, c);
			lat_add(&destroy, d);
		}
		if (b >= 0)
			lat_add(&bwrap, b);
	}
	printf("create");
	lat_print("create", &create);
	lat_print("destroy", &destroy);
	lat_print("bwrap", &bwrap);
	printf(" bwrap_failed=%d", bwrap_failed);
	fail_print();
	printf("\n");
	return 0;
}

/* ---- command: loop — closed-loop runs (or a plain GET) on -c connections */

struct loop_arg {
	char id[ID_MAX];
	char path[128];
	struct lat lat;
	long good;
	int64_t deadline, warm_until;
	atomic_long *started;
};

static void *loop_thread(void *p)
{
	struct loop_arg *a = p;
	struct http h = {.fd = -1};

	for (;;) {
		int64_t t0 = now_ns();
		bool warm = t0 < a->warm_until;
		int st;
		if (t0 >= a->deadline ||
		    (!warm && atomic_fetch_add(a->started, 1) >= opt.max_calls))
			break;
		st = http_call(&h, opt.get ? "GET" : "POST", a->path, opt.get ? NULL : opt.body);
		int64_t ns = now_ns() - t0;
		if (st != 200) {
			fail_note(st, st > 0 ? h.body : NULL);
			continue;
		}
		if (opt.expect && !strstr(h.body, opt.expect)) {
			atomic_fetch_add(&fails.bad_body, 1);
			fail_note(1000, h.body);
			continue;
		}
		if (!warm) {
			lat_add(&a->lat, ns);
			a->good++;
		}
	}
	http_close(&h);
	return NULL;
}

/* -c connections, each with its own session of -a AGENT (or GET -u PATH with --get): -w
 * seconds of warm-up, then -d seconds or -n calls. The sessions are destroyed after. */
static int cmd_loop(void)
{
	struct loop_arg *args = calloc((size_t)opt.conns, sizeof(*args));
	struct http h = {.fd = -1};
	struct lat all = {0};
	atomic_long started = 0;
	long good = 0;
	int64_t t0;

	if (!args)
		die("calloc");
	for (int i = 0; i < opt.conns; i++) {
		if (opt.agent) {
			if (session_create(&h, opt.agent, args[i].id, NULL) < 0) {
				fprintf(stderr,
				        "sessions_load: loop: cannot create a session: %s\n",
				        fails.first);
				return 1;
			}
			snprintf(args[i].path, sizeof(args[i].path), "/v1/sessions/%s/runs",
			         args[i].id);
		} else {
			snprintf(args[i].path, sizeof(args[i].path), "%s", opt.path);
		}
	}
	t0 = now_ns();
	for (int i = 0; i < opt.conns; i++) {
		args[i].warm_until = t0 + (int64_t)(opt.warmup * 1e9);
		args[i].deadline = args[i].warm_until + (int64_t)(opt.seconds * 1e9);
		args[i].started = &started;
	}
	run_threads(opt.conns, loop_thread, args, sizeof(*args));
	double secs = (double)(now_ns() - t0) / 1e9 - opt.warmup;
	for (int i = 0; i < opt.conns; i++) {
		lat_merge(&all, &args[i].lat);
		good += args[i].good;
		if (opt.agent)
			session_destroy(&h, args[i].id, NULL);
	}
	printf("loop conns=%d good=%ld secs=%.2f rate=%.0f", opt.conns, good, secs,
	       secs > 0 ? (double)good / secs : 0);
	lat_print("rtt", &all);
	fail_print();
	printf("\n");
	return 0;
}

/* ---- command: kv — acknowledged KV writes from -c sessions at once */

struct kv_arg {
	char id[ID_MAX];
	pthread_barrier_t *barrier;
	int64_t start, end;
	bool ok;
};

static void *kv_thread(void *p)
{
	struct kv_arg *a = p;
	struct http h = {.fd = -1};
	char body[64], expect[64], path[160];

	snprintf(body, sizeof(body), "{\"input\": {\"n\": %ld}}", opt.writes);
	snprintf(expect, sizeof(expect), "\"written\":%ld", opt.writes);
	pthread_barrier_wait(a->barrier);
	a->start = now_ns();
	a->ok = session_run(&h, a->id, body, expect) == 0;
	a->end = now_ns();
	if (a->ok) {
		/* The last write of the run must be readable: key k((n-1) % 256). */
		char last[256];
		const char *v = strstr(h.body, "\"last\":\"");
		snprintf(last, sizeof(last), "%.200s", v ? v + 8 : "-");
		snprintf(path, sizeof(path), "/v1/sessions/%s/state/k%ld", a->id,
		         (opt.writes - 1) % 256);
		int st = http_call(&h, "GET", path, NULL);
		if (st != 200 || !v || !strstr(h.body, last)) {
			atomic_fetch_add(&fails.bad_body, 1);
			fail_note(st, st > 0 ? h.body : NULL);
			a->ok = false;
		}
	}
	http_close(&h);
	return NULL;
}

/* -r rounds; each: every one of -c sessions of -a AGENT (kvwriter) runs {"n": -w} at the
 * same moment; writes/s = acknowledged writes / (last answer - first request). */
static int cmd_kv(void)
{
	struct kv_arg *args = calloc((size_t)opt.conns, sizeof(*args));
	struct http h = {.fd = -1};
	pthread_barrier_t barrier;
	char warm_body[64];

	if (!args)
		die("calloc");
	snprintf(warm_body, sizeof(warm_body), "{\"input\": {\"n\": 100}}");
	for (int i = 0; i < opt.conns; i++) {
		if (session_create(&h, opt.agent, args[i].id, NULL) < 0 ||
		    session_run(&h, args[i].id, warm_body, "\"written\":100") < 0) {
			fprintf(stderr, "sessions_load: kv: cannot set up a session: %s\n",
			        fails.first);
			return 1;
		}
	}
	for (int r = 0; r < opt.rounds; r++) {
		int64_t first = INT64_MAX, last = 0;
		long ok = 0;
		pthread_barrier_init(&barrier, NULL, (unsigned)opt.conns);
		for (int i = 0; i < opt.conns; i++)
			args[i].barrier = &barrier;
		run_threads(opt.conns, kv_thread, args, sizeof(*args));
		pthread_barrier_destroy(&barrier);
		for (int i = 0; i < opt.conns; i++) {
			if (args[i].start < first)
				first = args[i].start;
			if (args[i].end > last)
				last = args[i].end;
			ok += args[i].ok;
		}
		double secs = (double)(last - first) / 1e9;
		printf("kv sessions=%d round=%d writes=%ld secs=%.3f rate=%.0f", opt.conns, r + 1,
		       ok * opt.writes, secs, secs > 0 ? (double)(ok * opt.writes) / secs : 0);
		fail_print();
		printf("\n");
		fflush(stdout);
	}
	for (int i = 0; i < opt.conns; i++)
		session_destroy(&h, args[i].id, NULL);
	return 0;
}

/* ---- command: ramp — live sessions up to each level, with create latency and usage */

struct ramp_arg {
	atomic_long *todo, *made;
	long *first_failure_at; /* live sessions when the first create failed, or -1 */
	pthread_mutex_t *lock;
};

static void *ramp_thread(void *p)
{
	struct ramp_arg *a = p;
	struct http h = {.fd = -1};
	char id[ID_MAX];

	while (atomic_fetch_sub(a->todo, 1) > 0) {
		if (session_create(&h, opt.agent, id, NULL) == 0) {
			atomic_fetch_add(a->made, 1);
			continue;
		}
		pthread_mutex_lock(a->lock);
		if (*a->first_failure_at < 0)
			*a->first_failure_at = *a->made;
		pthread_mutex_unlock(a->lock);
	}
	http_close(&h);
	return NULL;
}

/* --levels 10,1000,...: creates sessions of -a AGENT with -c connections until each level
 * is live, then reads the daemon's usage (--pid) and takes -n sequential create+destroy
 * samples. A level line per level, plus "ramp level=0" for the usage before. The sessions
 * stay live when it ends. */
static int cmd_ramp(void)
{
	struct ramp_arg *args = calloc((size_t)opt.conns, sizeof(*args));
	struct http h = {.fd = -1};
	struct usage u;
	atomic_long todo = 0, made = 0;
	long first_failure_at = -1, attempted = 0;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char *levels = strdup(opt.levels), *save = NULL, id[ID_MAX];

	if (!args || !levels)
		die("calloc");
	usage_read(opt.daemon_pid, &u);
	printf("ramp level=0 live=0");
	usage_print(&u);
	printf("\n");
	fflush(stdout);
	for (char *tok = strtok_r(levels, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long level = atol(tok), want = level - made;
		struct lat create = {0}, destroy = {0};
		int64_t t0 = now_ns();
		if (want > 0) {
			todo = want;
			attempted += want;
			for (int i = 0; i < opt.conns; i++)
				args[i] = (struct ramp_arg){&todo, &made, &first_failure_at, &lock};
			run_threads(opt.conns, ramp_thread, args, sizeof(*args));
		}
		double secs = (double)(now_ns() - t0) / 1e9;
		long bulk_failures = fail_total();
		/* No connection of ours open while the fds are counted: only the sessions'. */
		http_close(&h);
		usleep(200 * 1000);
		usage_read(opt.daemon_pid, &u);
		printf("ramp level=%ld live=%ld attempted=%ld bulk_secs=%.1f bulk_rate=%.0f "
		       "first_failure_at=%ld",
		       level, (long)made, attempted, secs,
		       secs > 0 && want > 0 ? (double)(want - bulk_failures) / secs : 0,
		       first_failure_at);
		usage_print(&u);
		fail_print();
		for (int i = 0; i < opt.samples; i++) {
			int64_t c = -1, d = -1;
			if (session_create(&h, opt.agent, id, &c) == 0 &&
			    session_destroy(&h, id, &d) == 0) {
				lat_add(&create, c);
				lat_add(&destroy, d);
			}
		}
		lat_print("create", &create);
		lat_print("destroy", &destroy);
		printf(" sample");
		fail_print();
		printf("\n");
		fflush(stdout);
		free(create.v);
		free(destroy.v);
	}
	free(levels);
	http_close(&h);
	return 0;
}

/* ---- command: populate — sessions made through the daemon, each run once */

struct populate_arg {
	atomic_long *todo, *made;
};

static void *populate_thread(void *p)
{
	struct populate_arg *a = p;
	struct http h = {.fd = -1};
	char id[ID_MAX];

	while (atomic_fetch_sub(a->todo, 1) > 0)
		if (session_create(&h, opt.agent, id, NULL) == 0 &&
		    session_run(&h, id, opt.body, opt.expect) == 0)
			atomic_fetch_add(a->made, 1);
	http_close(&h);
	return NULL;
}

/* -n sessions of -a AGENT, each created and run once with -b, on -c connections. */
static int cmd_populate(void)
{
	struct populate_arg *args = calloc((size_t)opt.conns, sizeof(*args));
	atomic_long todo = opt.samples, made = 0;
	int64_t t0 = now_ns();

	if (!args)
		die("calloc");
	for (int i = 0; i < opt.conns; i++)
		args[i] = (struct populate_arg){&todo, &made};
	run_threads(opt.conns, populate_thread, args, sizeof(*args));
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("populate sessions=%ld secs=%.1f rate=%.0f", (long)made, secs,
	       secs > 0 ? (double)made / secs : 0);
	fail_print();
	printf("\n");
	return 0;
}

/* ---- command: resume — the first run of randomly chosen hibernated sessions */

/* -f FILE (one session id a line): -n of them at random (distinct), one after the other
 * with --gap-ms between, each run with -b and checked for -e. */
static int cmd_resume(void)
{
	FILE *f = fopen(opt.ids_file, "r");
	char **ids = NULL, line[128];
	size_t n = 0, cap = 0;
	struct http h = {.fd = -1};
	struct lat lat = {0};
	unsigned seed = (unsigned)time(NULL);

	if (!f)
		die(opt.ids_file);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				die("realloc");
		}
		ids[n++] = strdup(line);
	}
	fclose(f);
	if (n < (size_t)opt.samples) {
		fprintf(stderr, "sessions_load: resume: %zu ids, %d wanted\n", n, opt.samples);
		return 1;
	}
	srand(seed);
	for (int i = 0; i < opt.samples; i++) {
		/* A partial Fisher-Yates shuffle: ids[0..i] are the chosen ones. */
		size_t j = (size_t)i + (size_t)(((double)rand() / ((double)RAND_MAX + 1)) *
		                                (double)(n - (size_t)i));
		char *t = ids[i];
		ids[i] = ids[j];
		ids[j] = t;
		int64_t t0 = now_ns();
		if (session_run(&h, ids[i], opt.body, opt.expect) == 0)
			lat_add(&lat, now_ns() - t0);
		if (opt.gap_ms > 0)
			usleep((useconds_t)opt.gap_ms * 1000);
	}
	printf("resume population=%zu seed=%u", n, seed);
	lat_print("resume", &lat);
	fail_print();
	printf("\n");
	return 0;
}

/* ---- command: probe — a GET every --gap-ms for -d seconds */

static int cmd_probe(void)
{
	struct http h = {.fd = -1};
	struct lat lat = {0};
	int64_t end = now_ns() + (int64_t)(opt.seconds * 1e9);

	while (now_ns() < end) {
		int64_t t0 = now_ns();
		int st = http_call(&h, "GET", opt.path, NULL);
		if (st == 200)
			lat_add(&lat, now_ns() - t0);
		else
			fail_note(st, st > 0 ? h.body : NULL);
		usleep((useconds_t)(opt.gap_ms > 0 ? opt.gap_ms : 10) * 1000);
	}
	printf("probe path=%s", opt.path);
	lat_print("get", &lat);
	fail_print();
	printf("\n");
	return 0;
}

/* ---- main */

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("free port");
	printf("%d\n", ntohs(a.sin_port));
	close(fd);
	return 0;
}

/* need: the options a command cannot do without ('a' agent, 'u' path, 'f' ids file, 'L'
 * levels and pid; "au": one of the two). */
static const struct command {
	const char *name, *need, *usage;
	int (*exec)(void);
} commands[] = {
    {"create", "a", "-a AGENT -n SAMPLES [--bwrap-cpu CPU] [--no-peer]", cmd_create},
    {"loop", "au", "(-a AGENT | -u PATH --get) -c CONNS [-b BODY] [-e EXPECT] -w S -d S -m MAX",
     cmd_loop},
    {"kv", "a", "-a AGENT -c SESSIONS -W WRITES -r ROUNDS", cmd_kv},
    {"ramp", "L", "-a AGENT -c CONNS --levels L1,L2,... -n SAMPLES --pid DAEMON_PID", cmd_ramp},
    {"populate", "a", "-a AGENT -n SESSIONS -c CONNS [-b BODY] [-e EXPECT]", cmd_populate},
    {"resume", "f", "-f IDS_FILE -n SAMPLES [-b BODY] [-e EXPECT] [--gap-ms MS]", cmd_resume},
    {"probe", "u", "-u PATH -d SECONDS [--gap-ms MS]", cmd_probe},
};

static bool has_needs(const char *need)
{
	if (strcmp(need, "au") == 0)
		return opt.agent || opt.path;
	switch (need[0]) {
	case 'a':
		return opt.agent;
	case 'u':
		return opt.path;
	case 'f':
		return opt.ids_file;
	default:
		return opt.agent && opt.levels && opt.daemon_pid > 0;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: sessions_load --free-port\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "       sessions_load -p PORT -t TOKEN %s %s\n", commands[i].name,
		        commands[i].usage);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"bwrap-cpu", required_argument, NULL, 'B'},
	                                      {"levels", required_argument, NULL, 'L'},
	                                      {"pid", required_argument, NULL, 'P'},
	                                      {"gap-ms", required_argument, NULL, 'G'},
	                                      {"get", no_argument, NULL, 'g'},
	                                      {"free-port", no_argument, NULL, 'F'},
	                                      {"no-peer", no_argument, NULL, 'N'},
	                                      {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "p:t:a:b:e:u:f:c:n:r:W:w:d:m:", longs, NULL)) != -1) {
		switch (c) {
		case 'F':
			return free_port();
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 't':
			opt.token = optarg;
			break;
		case 'a':
			opt.agent = optarg;
			break;
		case 'b':
			opt.body = optarg;
			break;
		case 'e':
			opt.expect = optarg[0] ? optarg : NULL;
			break;
		case 'u':
			opt.path = optarg;
			break;
		case 'f':
			opt.ids_file = optarg;
			break;
		case 'c':
			opt.conns = atoi(optarg);
			break;
		case 'n':
			opt.samples = atoi(optarg);
			break;
		case 'r':
			opt.rounds = atoi(optarg);
			break;
		case 'W':
			opt.writes = atol(optarg);
			break;
		case 'w':
			opt.warmup = atof(optarg);
			break;
		case 'd':
			opt.seconds = atof(optarg);
			break;
		case 'm':
			opt.max_calls = atol(optarg);
			break;
		case 'B':
			opt.bwrap_cpu = atoi(optarg);
			break;
		case 'L':
			opt.levels = optarg;
			break;
		case 'P':
			opt.daemon_pid = atoi(optarg);
			break;
		case 'G':
			opt.gap_ms = atoi(optarg);
			break;
		case 'g':
			opt.get = true;
			break;
		case 'N':
			opt.no_peer = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || !opt.port || !opt.token || opt.conns < 1 ||
	    opt.conns > MAX_THREADS)
		usage();
	server.sin_family = AF_INET;
	server.sin_port = htons((uint16_t)opt.port);
	server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (!has_needs(commands[i].need))
			usage();
		return commands[i].exec();
	}
	usage();
}
