/* invoke_load.c: the invoke benchmark's client. A closed loop over C keep-alive HTTP/1.1
 * connections in one thread (epoll): each connection sends a POST, reads the whole answer,
 * and sends the next one at once. Every call's latency (first byte written to last byte
 * read) is kept, so p50/p99 are exact order statistics, not histogram buckets. An answer
 * counts as good only if it is a 200 whose body holds the -e string; everything else
 * (another status, another body, a reset, a timeout) is counted and printed.
 *
 * First a warm-up phase (-w seconds, latencies dropped, every call drained), then the
 * measured phase: new calls stop after -d seconds or -n calls, whichever comes first, and
 * the calls in flight are finished. calls/s = good calls / (last answer - start).
 *
 * Output: one line of key=value fields (see print_result). The failure counts and
 * answers (every whole answer, for CPU per call) include the warm-up; good, secs, rate and
 * the latencies are the measured phase's.
 *
 * usage: invoke_load -p PORT -u PATH [-a ADDR] [-t TOKEN] [-b BODY] [-c CONNS] [-d SECONDS]
 *                    [-n CALLS] [-w SECONDS] [-e EXPECT]
 *        invoke_load --free-port      prints a free loopback TCP port */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define RESPONSE_MAX 65536
#define DRAIN_TIMEOUT_NS (15 * 1000000000LL) /* calls still open this long after the end */

enum conn_state { IDLE, SENDING, READING };

struct conn {
	int fd;
	enum conn_state state;
	bool out_armed; /* EPOLLOUT asked for: the request did not fit at once */
	size_t sent;    /* bytes of the request written */
	size_t len;     /* bytes of the answer read */
	int64_t start;  /* ns, when the request's first byte was written */
	char buf[RESPONSE_MAX];
};

struct stats {
	uint64_t answers; /* whole answers of any kind, warm-up included (for CPU per call) */
	uint64_t good, non200, bad_body, errors, timeouts, reconnects;
	uint64_t status[600];
	int64_t *lat; /* ns, good calls */
	size_t nlat, caplat;
	int64_t first, last;
};

static struct sockaddr_in addr;
static char *request;
static size_t request_len;
static const char *expect;
static struct conn *conns;
static int nconns, ep;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "invoke_load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void conn_open(struct conn *c)
{
	int one = 1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
	c->state = IDLE;
}

static void conn_close(struct conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->out_armed = false;
	c->state = IDLE;
}

static void want_write(struct conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what it can of the request; the rest goes on EPOLLOUT. -1 on a broken connection. */
static int conn_send(struct conn *c)
{
	while (c->sent < request_len) {
		ssize_t n = send(c->fd, request + c->sent, request_len - c->sent,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_armed)
				want_write(c, true);
			c->out_armed = true;
			return 0;
		}
		if (n <= 0)
			return -1;
		c->sent += (size_t)n;
	}
	if (c->out_armed)
		want_write(c, false);
	c->out_armed = false;
	c->state = READING;
	return 0;
}

static void conn_start(struct conn *c)
{
	if (c->fd < 0)
		conn_open(c);
	c->sent = 0;
	c->len = 0;
	c->out_armed = false;
	c->state = SENDING;
	c->start = now_ns();
	conn_send(c); /* on a broken connection the read side sees the error */
}

static const char *find_header(const char *head, size_t head_len, const char *name)
{
	size_t n = strlen(name);
	const char *p = memchr(head, '\n', head_len), *end = head + head_len;

	while (p && p + 1 + n < end) {
		p++;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = memchr(p, '\n', (size_t)(end - p));
	}
	return NULL;
}

/* 1: a whole answer is in c->buf (*status, *close_after set); 0: not yet; -1: malformed. */
static int parse_answer(struct conn *c, int *status, bool *close_after, size_t *body_at,
                        size_t *body_len)
{
	char *eoh;
	const char *v;
	size_t head_len;
	long long cl;

	c->buf[c->len] = '\0';
	eoh = strstr(c->buf, "\r\n\r\n");
	if (!eoh)
		return c->len >= RESPONSE_MAX - 1 ? -1 : 0;
	head_len = (size_t)(eoh - c->buf) + 4;
	if (strncmp(c->buf, "HTTP/1.1 ", 9) != 0 && strncmp(c->buf, "HTTP/1.0 ", 9) != 0)
		return -1;
	*status = atoi(c->buf + 9);
	v = find_header(c->buf, head_len, "content-length");
	if (!v)
		return -1; /* both servers always send a length for a JSON answer */
	cl = atoll(v);
	if (cl < 0 || head_len + (size_t)cl >= RESPONSE_MAX)
		return -1;
	v = find_header(c->buf, head_len, "connection");
	*close_after = (v && strncasecmp(v, "close", 5) == 0) || c->buf[7] == '0';
	if (c->len < head_len + (size_t)cl)
		return 0;
	if (c->len > head_len + (size_t)cl)
		return -1; /* bytes nobody asked for */
	*body_at = head_len;
	*body_len = (size_t)cl;
	return 1;
}

static void record(struct stats *st, int64_t ns)
{
	if (st->nlat == st->caplat) {
		st->caplat = st->caplat ? st->caplat * 2 : 65536;
		st->lat = realloc(st->lat, st->caplat * sizeof(*st->lat));
		if (!st->lat)
			die("realloc");
	}
	st->lat[st->nlat++] = ns;
}

/* One phase: every connection calls until the end (deadline or max_calls started), then the
 * calls in flight finish. Returns with every connection idle. */
static void run_phase(struct stats *st, double seconds, uint64_t max_calls)
{
	struct epoll_event evs[MAX_CONNS];
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)(seconds * 1e9);
	uint64_t started = 0;
	int inflight = 0;
	bool ending = false;

	st->first = t0;
	st->last = t0;
	for (int i = 0; i < nconns && started < max_calls; i++) {
		conn_start(&conns[i]);
		started++;
		inflight++;
	}
	while (inflight > 0) {
		int64_t now = now_ns();
		int timeout_ms, n;

		if (!ending && (now >= deadline || started >= max_calls))
			ending = true;
		if (ending && now >= deadline + DRAIN_TIMEOUT_NS) {
			for (int i = 0; i < nconns; i++)
				if (conns[i].state != IDLE) {
					st->timeouts++;
					conn_close(&conns[i]);
				}
			break;
		}
		timeout_ms =
		    (int)(((ending ? deadline + DRAIN_TIMEOUT_NS : deadline) - now) / 1000000) + 1;
		n = epoll_wait(ep, evs, MAX_CONNS, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int status = 0, rc;
			bool close_after = false, done = false, broken = false;
			size_t body_at = 0, body_len = 0;

			if (c->fd < 0)
				continue;
			if (c->state == IDLE) {
				/* The server closed a connection between calls: reopen it later. */
				conn_close(c);
				st->reconnects++;
				continue;
			}
			if ((evs[i].events & EPOLLOUT) && c->state == SENDING && conn_send(c) < 0)
				broken = true;
			if (!broken && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				ssize_t r = recv(c->fd, c->buf + c->len, RESPONSE_MAX - 1 - c->len,
				                 MSG_DONTWAIT);
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (r <= 0)
					broken = true;
				else
					c->len += (size_t)r;
			}
			if (!broken && c->len > 0) {
				rc = parse_answer(c, &status, &close_after, &body_at, &body_len);
				if (rc < 0)
					broken = true;
				else if (rc > 0)
					done = true;
			}
			if (broken) {
				st->errors++;
				conn_close(c);
				st->reconnects++;
			} else if (done) {
				int64_t t = now_ns();
				st->answers++;
				if (status == 200 && (!expect || memmem(c->buf + body_at, body_len,
				                                        expect, strlen(expect)))) {
					st->good++;
					record(st, t - c->start);
				} else if (status == 200) {
					st->bad_body++;
				} else {
					st->non200++;
					st->status[status > 0 && status < 600 ? status : 0]++;
				}
				st->last = t;
				c->state = IDLE;
				if (close_after) {
					conn_close(c);
					st->reconnects++;
				}
			} else {
				continue;
			}
			inflight--;
			if (!ending && now_ns() < deadline && started < max_calls) {
				conn_start(c);
				started++;
				inflight++;
			}
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile, in microseconds. */
static double pct_us(const struct stats *st, double p)
{
	size_t k;

	if (st->nlat == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)st->nlat + 0.999999);
	if (k < 1)
		k = 1;
	if (k > st->nlat)
		k = st->nlat;
	return (double)st->lat[k - 1] / 1e3;
}

static void print_result(struct stats *st)
{
	double secs = (double)(st->last - st->first) / 1e9;

	qsort(st->lat, st->nlat, sizeof(*st->lat), cmp_i64);
	printf("answers=%llu good=%llu non200=%llu bad_body=%llu errors=%llu timeouts=%llu "
	       "reconnects=%llu secs=%.3f rate=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
	       "max_us=%.1f statuses=",
	       (unsigned long long)st->answers, (unsigned long long)st->good,
	       (unsigned long long)st->non200, (unsigned long long)st->bad_body,
	       (unsigned long long)st->errors, (unsigned long long)st->timeouts,
	       (unsigned long long)st->reconnects, secs, secs > 0 ? (double)st->good / secs : 0,
	       pct_us(st, 50), pct_us(st, 90), pct_us(st, 99), pct_us(st, 100));
	int any = 0;
	for (int s = 0; s < 600; s++)
		if (st->status[s])
			printf("%s%d:%llu", any++ ? "," : "", s, (unsigned long long)st->status[s]);
	printf("%s\n", any ? "" : "-");
}

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

static void usage(void)
{
	fprintf(stderr, "usage: invoke_load -p PORT -u PATH [-a ADDR] [-t TOKEN] [-b BODY] "
	                "[-c CONNS] [-d SECONDS] [-n CALLS] [-w SECONDS] [-e EXPECT]\n"
	                "       invoke_load --free-port\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = NULL, *token = NULL,
	           *body = "{\"input\": \"hello big world\"}";
	int port = 0, opt;
	double seconds = 10, warmup = 1;
	uint64_t max_calls = 5000;
	struct stats warm = {0}, st = {0};
	char auth[512] = "";

	if (argc == 2 && strcmp(argv[1], "--free-port") == 0)
		return free_port();
	nconns = 1;
	while ((opt = getopt(argc, argv, "a:p:u:t:b:c:d:n:w:e:")) != -1) {
		switch (opt) {
		case 'a':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			path = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'b':
			body = optarg;
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'n':
			max_calls = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'e':
			expect = optarg;
			break;
		default:
			usage();
		}
	}
	if (!path || port <= 0 || port > 65535 || nconns < 1 || nconns > MAX_CONNS ||
	    seconds <= 0 || max_calls < 1 || warmup < 0)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage();
	if (token)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
	request_len =
	    (size_t)asprintf(&request,
	                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%s"
	                     "Content-Type: application/json\r\nAccept: application/json\r\n"
	                     "Content-Length: %zu\r\n\r\n%s",
	                     path, host, port, auth, strlen(body), body);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	conns = calloc((size_t)nconns, sizeof(*conns));
	if (!conns)
		die("calloc");
	for (int i = 0; i < nconns; i++)
		conn_open(&conns[i]);
	if (warmup > 0)
		run_phase(&warm, warmup, UINT64_MAX);
	run_phase(&st, seconds, max_calls);
	/* Counts from the warm-up are findings too: they are added, latencies are not. */
	st.answers += warm.answers;
	st.non200 += warm.non200;
	st.bad_body += warm.bad_body;
	st.errors += warm.errors;
	st.timeouts += warm.timeouts;
	st.reconnects += warm.reconnects;
	for (int s = 0; s < 600; s++)
		st.status[s] += warm.status[s];
	print_result(&st);
	free(warm.lat);
	free(st.lat);
	return 0;
}
