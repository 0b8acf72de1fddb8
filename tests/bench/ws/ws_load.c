/* ws_load.c: the WebSocket benchmark's client. Plain sockets and a minimal WebSocket client
 * of its own (RFC 6455: the upgrade, masked text frames out, unmasked frames in, pings
 * answered): no library between the socket and the clock, so a round trip is exactly "run
 * frame written" to "its run.completed read", and 10,000 idle connections cost one fd and a
 * small struct each.
 *
 * Load mode: a closed loop in one thread (epoll). Each connection sends
 * {"type":"run","input":INPUT,"ref":"N"}, reads the events of that run, and sends the next
 * run as soon as its run.completed is in. A run counts as good only if its events are the
 * expected ones: run.started with our ref (unless -r), -o run.output events, then
 * run.completed of the same run whose "output" is the input. Anything else is counted by
 * kind (wrong, server error messages, disconnects, timeouts). First a warm-up (-w seconds,
 * latencies dropped), then the measured phase: new runs stop after -d seconds or -n runs,
 * and the runs in flight finish. runs/s = good runs / (last completion - start).
 *
 * Idle mode (--idle N): opens N upgraded connections (the paths of -f in turn), prints
 * "ready opened=N refused=R" on stdout, then holds them, reading whatever arrives, until
 * SIGTERM/SIGINT; then prints "idle held=H dropped=D messages=M" and exits.
 *
 * usage: ws_load -p PORT -f PATHS [-t TOKEN] [-c CONNS] [-d SECONDS] [-n RUNS] [-w SECONDS]
 *                [-i INPUT_JSON] [-o OUTPUTS] [-r]
 *        ws_load --idle N -p PORT -f PATHS [-t TOKEN]
 * PATHS is a file of request paths, one a line; connection i uses line i (mod lines). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOAD_CONNS 1024
#define RBUF_SIZE 65536     /* a load connection's read buffer */
#define HEAD_MAX 4096       /* an upgrade answer's head; an idle connection's read buffer */
#define HANDSHAKE_BATCH 200 /* upgrades in flight while opening */
#define DRAIN_TIMEOUT_NS (15 * 1000000000LL) /* runs still open this long after the end */
#define SUBPROTOCOL "agenthost.v1"

struct conn {
	int fd;
	int path;      /* index into paths */
	bool busy;     /* a run is in flight */
	bool started;  /* its run.started came */
	int outputs;   /* its run.output events so far */
	char ref[24];  /* its ref */
	char run[80];  /* its run id, from run.started */
	int64_t start; /* ns, when its frame was written */
	size_t rlen;   /* bytes in rbuf */
	unsigned char *rbuf;
	char *frag; /* a fragmented message being assembled */
	size_t frag_len;
};

struct stats {
	uint64_t runs; /* runs that ended, any way, warm-up included */
	uint64_t good, wrong, server_errors, disconnects, timeouts, other_msgs;
	uint64_t msgs, bytes; /* server messages and their payload bytes, for good runs */
	int64_t *lat;         /* ns, good runs of the measured phase */
	size_t nlat, caplat;
	int64_t first, last;
	char first_problem[160];
};

static struct sockaddr_in addr;
static char host_header[64], auth_header[600];
static char **paths;
static int npaths;
static const char *input = "\"hello big world\"";
static char expect_output[4200]; /* "output":INPUT */
static int expect_outputs = 3;
static bool expect_started = true;
static uint64_t next_ref = 1;
static uint32_t rng = 2463534242u;
static volatile sig_atomic_t stop_idle;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "ws_load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void note_problem(struct stats *st, const char *kind, const char *text, size_t len)
{
	if (st->first_problem[0])
		return;
	snprintf(st->first_problem, sizeof(st->first_problem), "%s:%.*s", kind,
	         (int)(len > 100 ? 100 : len), text);
	for (char *p = st->first_problem; *p; p++)
		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			*p = '_'; /* the result is one line of key=value fields */
}

/* ---- the upgrade */

static void base64_key(char out[25])
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[18] = {0};
	int o = 0;

	for (int i = 0; i < 16; i++)
		raw[i] = (unsigned char)next_random();
	for (int i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	out[22] = out[23] = '='; /* 16 bytes: 22 characters and two pads */
	out[24] = '\0';
}

/* Connects (blocking) and writes the upgrade request. Returns the fd, or -1. */
static int upgrade_send(const char *path)
{
	char req[2048], key[25];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 10};

	if (fd < 0)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	base64_key(key);
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " SUBPROTOCOL
	                 "\r\n%s\r\n",
	                 path, host_header, key, auth_header);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the answer to the upgrade (blocking, 10 s at most). 0 if it is a 101 with
 * "Upgrade: websocket" (Sec-WebSocket-Accept is not checked: every server here is ours or
 * Node's ws); bytes after the head (fewer than HEAD_MAX) are left in rbuf. -1, with the
 * status line in why, if not. */
static int upgrade_finish(int fd, unsigned char *rbuf, size_t *rlen, char *why, size_t whylen)
{
	char head[HEAD_MAX];
	size_t len = 0;
	char *eoh = NULL;

	while (!eoh) {
		ssize_t r = recv(fd, head + len, sizeof(head) - 1 - len, 0);
		if (r <= 0) {
			snprintf(why, whylen, "%s", r == 0 ? "closed" : strerror(errno));
			return -1;
		}
		len += (size_t)r;
		head[len] = '\0';
		eoh = strstr(head, "\r\n\r\n");
		if (!eoh && len >= sizeof(head) - 1) {
			snprintf(why, whylen, "oversized answer head");
			return -1;
		}
	}
	size_t head_len = (size_t)(eoh - head) + 4;
	if (strncmp(head, "HTTP/1.1 101", 12) != 0 || !strcasestr(head, "upgrade: websocket")) {
		snprintf(why, whylen, "%.*s", (int)strcspn(head, "\r\n"), head);
		return -1;
	}
	*rlen = len - head_len;
	memcpy(rbuf, head + head_len, *rlen);
	return 0;
}

/* Opens n connections, HANDSHAKE_BATCH upgrades in flight at a time. Each fd ends
 * non-blocking, or -1 if its upgrade failed (counted in *refused, first reason in why). */
static void open_many(struct conn *cs, int n, int *refused, char *why, size_t whylen)
{
	for (int at = 0; at < n; at += HANDSHAKE_BATCH) {
		int end = at + HANDSHAKE_BATCH < n ? at + HANDSHAKE_BATCH : n;
		for (int i = at; i < end; i++)
			cs[i].fd = upgrade_send(paths[cs[i].path]);
		for (int i = at; i < end; i++) {
			char reason[200] = "connect failed";
			if (cs[i].fd >= 0 && upgrade_finish(cs[i].fd, cs[i].rbuf, &cs[i].rlen,
			                                    reason, sizeof(reason)) == 0) {
				fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
				continue;
			}
			if (!*refused)
				snprintf(why, whylen, "%s", reason);
			++*refused;
			if (cs[i].fd >= 0)
				close(cs[i].fd);
			cs[i].fd = -1;
		}
	}
}

/* ---- frames */

/* Writes one masked client frame (all of it: a blocked socket is waited for). */
static int send_frame(int fd, int opcode, const void *payload, size_t len)
{
	unsigned char frame[16 + 4096];
	size_t h = 0;
	uint32_t mask = next_random();

	if (len > 4096)
		return -1;
	frame[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		frame[h++] = (unsigned char)(0x80 | len);
	} else {
		frame[h++] = 0x80 | 126;
		frame[h++] = (unsigned char)(len >> 8);
		frame[h++] = (unsigned char)len;
	}
	memcpy(frame + h, &mask, 4);
	for (size_t i = 0; i < len; i++)
		frame[h + 4 + i] = ((const unsigned char *)payload)[i] ^ frame[h + i % 4];
	h += 4 + len;
	for (size_t off = 0; off < h;) {
		ssize_t w = send(fd, frame + off, h - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* The next whole frame in c->rbuf: 1 (opcode, fin, payload set), 0 if incomplete, -1 if
 * it cannot be (masked, or larger than the buffer). *used is the frame's size. */
static int next_frame(struct conn *c, int *opcode, bool *fin, unsigned char **payload, size_t *len,
                      size_t *used)
{
	unsigned char *b = c->rbuf;
	size_t h = 2;
	uint64_t n;

	if (c->rlen < 2)
		return 0;
	if (b[1] & 0x80)
		return -1; /* servers do not mask */
	n = b[1] & 0x7f;
	if (n == 126) {
		if (c->rlen < 4)
			return 0;
		n = (uint64_t)b[2] << 8 | b[3];
		h = 4;
	} else if (n == 127) {
		if (c->rlen < 10)
			return 0;
		n = 0;
		for (int i = 2; i < 10; i++)
			n = n << 8 | b[i];
		h = 10;
	}
	if (n > RBUF_SIZE - h)
		return -1;
	if (c->rlen < h + n)
		return 0;
	*opcode = b[0] & 0x0f;
	*fin = b[0] & 0x80;
	*payload = b + h;
	*len = (size_t)n;
	*used = h + (size_t)n;
	return 1;
}

/* ---- load mode */

static struct conn *conns;
static int nconns, ep;

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

static int run_send(struct conn *c)
{
	char msg[4200];

	snprintf(c->ref, sizeof(c->ref), "%llu", (unsigned long long)next_ref++);
	int n = snprintf(msg, sizeof(msg), "{\"type\":\"run\",\"input\":%s,\"ref\":\"%s\"}", input,
	                 c->ref);
	c->busy = true;
	c->started = false;
	c->outputs = 0;
	c->run[0] = '\0';
	c->start = now_ns();
	return send_frame(c->fd, 1, msg, (size_t)n);
}

/* The string value of "key" in a compact JSON object (the servers write no spaces), copied
 * into out; false if absent. Good enough for the messages of this benchmark, whose inputs hold
 * no quotes. */
static bool json_str(const char *msg, size_t len, const char *key, char *out, size_t outlen)
{
	char pat[40];
	int n = snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = memmem(msg, len, pat, (size_t)n), *end = msg + len, *q;

	if (!p)
		return false;
	p += n;
	q = memchr(p, '"', (size_t)(end - p));
	if (!q || (size_t)(q - p) >= outlen)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

enum verdict { GOING, DONE_GOOD, DONE_WRONG, DONE_ERROR };

/* One text message on c; says whether it ended c's run, and how. */
static enum verdict on_message(struct stats *st, struct conn *c, const char *m, size_t len)
{
	char type[40], val[80];

	st->msgs++;
	st->bytes += len;
	if (!json_str(m, len, "type", type, sizeof(type))) {
		st->other_msgs++;
		note_problem(st, "untyped", m, len);
		return GOING;
	}
	if (strcmp(type, "error") == 0) {
		st->server_errors++;
		note_problem(st, "error", m, len);
		/* A refused run names its ref; any other error leaves the run to its timeout. */
		return c->busy && json_str(m, len, "ref", val, sizeof(val)) &&
		               strcmp(val, c->ref) == 0
		           ? DONE_ERROR
		           : GOING;
	}
	if (!c->busy || strncmp(type, "run.", 4) != 0) {
		st->other_msgs++;
		return GOING;
	}
	if (strcmp(type, "run.started") == 0) {
		if (!expect_started || c->started || !json_str(m, len, "ref", val, sizeof(val)) ||
		    strcmp(val, c->ref) != 0 || !json_str(m, len, "run", c->run, sizeof(c->run))) {
			note_problem(st, "wrong-start", m, len);
			return DONE_WRONG;
		}
		c->started = true;
		return GOING;
	}
	if (strcmp(type, "run.output") == 0) {
		if (expect_started &&
		    (!json_str(m, len, "run", val, sizeof(val)) || strcmp(val, c->run) != 0)) {
			note_problem(st, "wrong-output", m, len);
			return DONE_WRONG;
		}
		c->outputs++;
		return GOING;
	}
	if (strcmp(type, "run.completed") == 0) {
		bool ok =
		    (!expect_started || (c->started && json_str(m, len, "run", val, sizeof(val)) &&
		                         strcmp(val, c->run) == 0)) &&
		    c->outputs == expect_outputs &&
		    memmem(m, len, expect_output, strlen(expect_output));
		if (!ok)
			note_problem(st, "wrong-end", m, len);
		return ok ? DONE_GOOD : DONE_WRONG;
	}
	note_problem(st, "wrong-event", m, len); /* run.failed, run.cancelled */
	return DONE_WRONG;
}

/* Reads what c has; ends its run when its events are in. Returns -1 if the connection is
 * gone (closed, reset, bad frame), else whether a run ended (then *v says how). */
static int conn_read(struct stats *st, struct conn *c, enum verdict *v)
{
	int opcode, ended = 0;
	bool fin;
	unsigned char *payload;
	size_t len, used;

	for (;;) {
		ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0)
			return -1;
		c->rlen += (size_t)r;
		if (c->rlen < RBUF_SIZE)
			break;
	}
	for (;;) {
		int rc = next_frame(c, &opcode, &fin, &payload, &len, &used);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		if (opcode == 8) {
			note_problem(st, "close", (const char *)payload + (len >= 2 ? 2 : 0),
			             len >= 2 ? len - 2 : 0);
			return -1;
		}
		if (opcode == 9) {
			send_frame(c->fd, 10, payload, len);
		} else if (opcode == 1 || opcode == 0) {
			const char *msg = (const char *)payload;
			size_t mlen = len;
			if (!fin || c->frag) {
				c->frag = realloc(c->frag, c->frag_len + len);
				if (!c->frag)
					die("realloc");
				memcpy(c->frag + c->frag_len, payload, len);
				c->frag_len += len;
				msg = c->frag;
				mlen = c->frag_len;
			}
			if (fin) {
				enum verdict got = on_message(st, c, msg, mlen);
				free(c->frag);
				c->frag = NULL;
				c->frag_len = 0;
				if (got != GOING) {
					*v = got;
					ended = 1;
				}
			}
		} else if (opcode == 2) {
			st->other_msgs++;
		}
		c->rlen -= used;
		memmove(c->rbuf, c->rbuf + used, c->rlen);
	}
	return ended;
}

static void conn_drop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->rlen = 0;
	free(c->frag);
	c->frag = NULL;
	c->frag_len = 0;
	c->busy = false;
}

static void conn_watch(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
}

/* A lost connection is opened again (blocking: it is a failure path, and counted). */
static void conn_reopen(struct stats *st, struct conn *c)
{
	int refused = 0;
	char why[200];

	conn_drop(c);
	open_many(c, 1, &refused, why, sizeof(why));
	if (refused) {
		note_problem(st, "reopen", why, strlen(why));
		return;
	}
	conn_watch(c);
}

static void run_phase(struct stats *st, double seconds, uint64_t max_runs)
{
	struct epoll_event evs[MAX_LOAD_CONNS];
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)(seconds * 1e9);
	uint64_t started = 0;
	int inflight = 0;
	bool ending = false;

	st->first = st->last = t0;
	for (int i = 0; i < nconns && started < max_runs; i++) {
		if (conns[i].fd < 0 || run_send(&conns[i]) < 0)
			continue; /* seen as broken by the read side, or left out */
		started++;
		inflight++;
	}
	while (inflight > 0) {
		int64_t now = now_ns();

		if (!ending && (now >= deadline || started >= max_runs))
			ending = true;
		if (ending && now >= deadline + DRAIN_TIMEOUT_NS) {
			for (int i = 0; i < nconns; i++)
				if (conns[i].busy) {
					st->timeouts++;
					st->runs++;
					conns[i].busy = false;
				}
			break;
		}
		int timeout_ms =
		    (int)(((ending ? deadline + DRAIN_TIMEOUT_NS : deadline) - now) / 1000000) + 1;
		int n = epoll_wait(ep, evs, MAX_LOAD_CONNS, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			enum verdict v = GOING;
			int rc = conn_read(st, c, &v);

			if (rc < 0) {
				bool was_busy = c->busy;
				st->disconnects++;
				conn_reopen(st, c);
				if (!was_busy)
					continue;
				st->runs++;
			} else if (rc == 0) {
				continue;
			} else {
				int64_t t = now_ns();
				st->runs++;
				c->busy = false;
				if (v == DONE_GOOD) {
					st->good++;
					record(st, t - c->start);
					st->last = t;
				} else if (v == DONE_WRONG) {
					st->wrong++;
				}
			}
			inflight--;
			if (!ending && now_ns() < deadline && started < max_runs && c->fd >= 0) {
				if (run_send(c) < 0) {
					st->disconnects++;
					conn_reopen(st, c);
					continue;
				}
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

/* Nearest-rank percentile of the sorted latencies, in microseconds. */
static double percentile_us(const struct stats *st, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)st->nlat + 0.999999);

	if (st->nlat == 0)
		return 0;
	k = k < 1 ? 1 : k > st->nlat ? st->nlat : k;
	return (double)st->lat[k - 1] / 1e3;
}

static void print_result(struct stats *st, int refused)
{
	double secs = (double)(st->last - st->first) / 1e9;

	qsort(st->lat, st->nlat, sizeof(*st->lat), cmp_i64);
	printf("runs=%llu good=%llu wrong=%llu server_errors=%llu disconnects=%llu timeouts=%llu "
	       "refused=%d other_msgs=%llu secs=%.3f rate=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f max_us=%.1f msgs_per_run=%.2f bytes_per_run=%.1f problem=%s\n",
	       (unsigned long long)st->runs, (unsigned long long)st->good,
	       (unsigned long long)st->wrong, (unsigned long long)st->server_errors,
	       (unsigned long long)st->disconnects, (unsigned long long)st->timeouts, refused,
	       (unsigned long long)st->other_msgs, secs, secs > 0 ? (double)st->good / secs : 0,
	       percentile_us(st, 50), percentile_us(st, 90), percentile_us(st, 99),
	       percentile_us(st, 100), st->good ? (double)st->msgs / (double)st->good : 0,
	       st->good ? (double)st->bytes / (double)st->good : 0,
	       st->first_problem[0] ? st->first_problem : "-");
}

static void close_all(struct conn *cs, int n)
{
	for (int i = 0; i < n; i++) {
		if (cs[i].fd >= 0)
			send_frame(cs[i].fd, 8, "\x03\xe8", 2); /* 1000, normal closure */
		conn_drop(&cs[i]);
		free(cs[i].rbuf);
	}
}

static struct conn *alloc_conns(int n, size_t rbuf)
{
	struct conn *cs = calloc((size_t)n, sizeof(*cs));

	if (!cs)
		die("calloc");
	for (int i = 0; i < n; i++) {
		cs[i].fd = -1;
		cs[i].path = i % npaths;
		cs[i].rbuf = malloc(rbuf);
		if (!cs[i].rbuf)
			die("malloc");
	}
	return cs;
}

static int load_main(double seconds, uint64_t max_runs, double warmup)
{
	struct stats warm = {0}, st = {0};
	int refused = 0;
	char why[200] = "";

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	conns = alloc_conns(nconns, RBUF_SIZE);
	open_many(conns, nconns, &refused, why, sizeof(why));
	if (refused)
		note_problem(&st, "refused", why, strlen(why));
	for (int i = 0; i < nconns; i++)
		if (conns[i].fd >= 0)
			conn_watch(&conns[i]);
	if (warmup > 0)
		run_phase(&warm, warmup, UINT64_MAX);
	run_phase(&st, seconds, max_runs);
	/* Failures of the warm-up are findings too: they are added, its latencies are not. */
	st.runs += warm.runs;
	st.wrong += warm.wrong;
	st.server_errors += warm.server_errors;
	st.disconnects += warm.disconnects;
	st.timeouts += warm.timeouts;
	st.other_msgs += warm.other_msgs;
	if (!st.first_problem[0])
		memcpy(st.first_problem, warm.first_problem, sizeof(st.first_problem));
	print_result(&st, refused);
	close_all(conns, nconns);
	free(warm.lat);
	free(st.lat);
	return 0;
}

/* ---- idle mode */

static void on_stop(int sig)
{
	(void)sig;
	stop_idle = 1;
}

static int idle_main(int n)
{
	struct rlimit rl;
	struct sigaction sa = {.sa_handler = on_stop};
	int refused = 0, held = 0, dropped = 0;
	unsigned long long messages = 0;
	char why[200] = "";
	struct epoll_event evs[256];

	/* Each connection is an fd: take the whole hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct conn *cs = alloc_conns(n, HEAD_MAX);
	open_many(cs, n, &refused, why, sizeof(why));
	for (int i = 0; i < n; i++) {
		if (cs[i].fd < 0)
			continue;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &cs[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
			die("epoll_ctl");
		held++;
	}
	printf("ready opened=%d refused=%d first_refusal=%s\n", held, refused, refused ? why : "-");
	fflush(stdout);
	while (!stop_idle) {
		int k = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			char buf[4096];
			ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
			if (r > 0) {
				messages++; /* a read, not a frame: only "was anything sent" matters
				             */
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				dropped++;
				held--;
				conn_drop(c);
			}
		}
	}
	printf("idle held=%d dropped=%d reads=%llu\n", held, dropped, messages);
	close_all(cs, n);
	return 0;
}

/* ---- command line */

static void read_paths(const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		die(file);
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		paths = realloc(paths, (size_t)(npaths + 1) * sizeof(*paths));
		if (!paths)
			die("realloc");
		paths[npaths++] = strdup(line);
	}
	free(line);
	fclose(f);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: ws_load -p PORT -f PATHS [-t TOKEN] [-c CONNS] [-d SECONDS] [-n RUNS]\n"
	        "               [-w SECONDS] [-i INPUT_JSON] [-o OUTPUTS] [-r]\n"
	        "       ws_load --idle N -p PORT -f PATHS [-t TOKEN]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *token = NULL, *file = NULL;
	int port = 0, opt, idle = 0;
	double seconds = 5, warmup = 1;
	uint64_t max_runs = UINT64_MAX;

	if (argc > 2 && strcmp(argv[1], "--idle") == 0) {
		idle = atoi(argv[2]);
		if (idle < 1)
			usage();
		argc -= 2;
		argv += 2;
	}
	nconns = 1;
	while ((opt = getopt(argc, argv, "p:f:t:c:d:n:w:i:o:r")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'n':
			max_runs = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'i':
			input = optarg;
			break;
		case 'o':
			expect_outputs = atoi(optarg);
			break;
		case 'r':
			expect_started = false;
			break;
		default:
			usage();
		}
	}
	if (!file || port <= 0 || port > 65535 || nconns < 1 || nconns > MAX_LOAD_CONNS ||
	    seconds <= 0 || max_runs < 1 || warmup < 0 || strlen(input) > 4000)
		usage();
	read_paths(file);
	if (npaths == 0)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(host_header, sizeof(host_header), "127.0.0.1:%d", port);
	if (token)
		snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %.500s\r\n",
		         token);
	snprintf(expect_output, sizeof(expect_output), "\"output\":%s", input);
	rng ^= (uint32_t)getpid() * 2654435761u;
	signal(SIGPIPE, SIG_IGN);
	return idle ? idle_main(idle) : load_main(seconds, max_runs, warmup);
}
