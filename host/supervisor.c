/* supervisor.c: agent processes on the event loop — spawn, frames in and out, output cap,
 * timers, the end by EOF, and the precise reason. See supervisor.h for the design. */
#include "supervisor.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "manifest.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELLO_TIMEOUT_MS 10000
#define READ_BUDGET (256 * 1024)     /* bytes read per wake-up, so one agent cannot hog the loop */
#define QUEUE_CAP (16 * 1024 * 1024) /* host→agent bytes an agent may leave unread */
#define KILL_BATCH 64                /* agents killed together at shutdown */
#define KILL_BATCH_PAUSE_US 20000    /* lets the kernel free their seccomp programs */
#define INPUT_STALL_US (2 * 1000000) /* an agent that reads none of its input this long */
#define REAP_RETRIES 12              /* 1, 2, 4 ... ms: about 4 s before a live agent is killed */

struct out_chunk {
	struct out_chunk *next;
	size_t len, off;
	char data[];
};

struct agent_proc {
	struct daemon *d;
	const struct agent_proc_ops *ops;
	void *owner;
	char *label; /* "agent=NAME session=ID" for logs */

	struct sandbox_child child;
	struct lws *wsi_sock, *wsi_out; /* NULL once closed */
	bool sock_eof, reaped, ending, ready;
	bool retired; /* ended by its owner because its work is done: not a kill worth counting */
	enum sandbox_host_kill host_kill;
	char detail[256];

	struct frame_reader reader;
	uint64_t output, output_cap;
	struct manifest_limits limits;

	struct out_chunk *q_head, *q_tail;
	size_t q_bytes;

	lws_sorted_usec_list_t timer;
	enum sandbox_host_kill timer_why;
	char timer_detail[128];
	lws_sorted_usec_list_t reap_timer;
	lws_sorted_usec_list_t write_timer; /* retries a write the agent's socket refused */
	lws_usec_t write_backoff_us;
	lws_usec_t write_stalled_since; /* when its socket last refused a write */
	int reap_tries;

	struct agent_proc *prev, *next;
};

static struct agent_proc *live; /* every agent not yet freed */
static int live_count;

static struct lws_context *context_of(struct agent_proc *p)
{
	return p->d->lws;
}

/* ---- the end */

static void cancel_timers(struct agent_proc *p)
{
	lws_sul_schedule(context_of(p), 0, &p->timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
	lws_sul_schedule(context_of(p), 0, &p->reap_timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
	lws_sul_schedule(context_of(p), 0, &p->write_timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
}

static void free_proc(struct agent_proc *p)
{
	cancel_timers(p);
	if (p->prev)
		p->prev->next = p->next;
	else
		live = p->next;
	if (p->next)
		p->next->prev = p->prev;
	live_count--;
	while (p->q_head) {
		struct out_chunk *next = p->q_head->next;
		free(p->q_head);
		p->q_head = next;
	}
	frame_reader_free(&p->reader);
	sandbox_child_close(&p->child);
	free(p->label);
	free(p);
}

/* Frees p once it has been reaped and lws has let go of both fds. */
static void maybe_free(struct agent_proc *p)
{
	if (p->reaped && !p->wsi_sock && !p->wsi_out)
		free_proc(p);
}

static void close_wsi(struct lws *wsi)
{
	if (wsi)
		lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* A sentence for an end the host did not decide itself, so no reason reaches a client
 * as a bare code. */
static void describe_end(const struct sandbox_exit *why, const struct manifest_limits *lim,
                         char *out, size_t len)
{
	switch (why->reason) {
	case SANDBOX_VIOLATION:
		snprintf(out, len,
		         "the agent made a system call its seccomp profile does not allow "
		         "(SIGSYS)");
		break;
	case SANDBOX_OOM:
		snprintf(out, len, "the agent used more than its memory limit of %lld MB",
		         (long long)lim->memory_mb);
		break;
	case SANDBOX_CPU_LIMIT:
		snprintf(out, len, "the agent used more than its %lld s of CPU time",
		         (long long)lim->cpu_seconds);
		break;
	case SANDBOX_EXITED:
		snprintf(out, len, "the agent exited with code %d", why->code);
		break;
	default:
		snprintf(out, len, "the agent was killed by signal %d (%s)", why->signal,
		         strsignal(why->signal));
	}
}

static void deliver_end(struct agent_proc *p, const struct sandbox_end *end)
{
	struct sandbox_end e = *end;
	struct sandbox_exit why;

	e.host_kill = p->host_kill;
	why = sandbox_exit_reason(&e);
	if (!p->detail[0])
		describe_end(&why, &p->limits, p->detail, sizeof(p->detail));
	if (!p->retired)
		p->d->metrics.agent_ends[why.reason]++;
	log_emit(why.reason == SANDBOX_EXITED || p->retired ? LOG_DEBUG : LOG_INFO, "agent.ended",
	         "%s pid=%d reason=%s code=%d signal=%d detail=\"%s\"", p->label, (int)p->child.pid,
	         sandbox_exit_reason_name(why.reason), why.code, why.signal, p->detail);
	p->reaped = true;
	cancel_timers(p);
	if (p->ops->ended)
		p->ops->ended(p, &why, p->detail, p->owner);
	close_wsi(p->wsi_out);
	close_wsi(p->wsi_sock);
	maybe_free(p);
}

static void try_reap(struct agent_proc *p);
static void kill_one(struct agent_proc *p);
static void write_queue(struct agent_proc *p, int fd);

static void reap_timer_fired(lws_sorted_usec_list_t *sul)
{
	struct agent_proc *p = lws_container_of(sul, struct agent_proc, reap_timer);

	try_reap(p);
}

/* Called once the protocol socket has reached EOF: the agent is gone or going. */
static void try_reap(struct agent_proc *p)
{
	struct sandbox_end end;
	int rc = sandbox_child_wait(&p->child, WNOHANG, &end);

	if (rc == 1) {
		deliver_end(p, &end);
		return;
	}
	if (rc < 0) {
		log_error("agent.reap_failed", "%s pid=%d error=\"%s\"", p->label,
		          (int)p->child.pid, strerror(-rc));
		memset(&end, 0, sizeof(end));
		end.status = SIGKILL; /* reported as killed */
		deliver_end(p, &end);
		return;
	}
	if (++p->reap_tries > REAP_RETRIES && !p->ending) {
		/* It closed its protocol socket but lives on. */
		p->ending = true;
		p->host_kill = SANDBOX_HOST_PROTOCOL_ERROR;
		snprintf(p->detail, sizeof(p->detail), "closed its protocol socket");
		sandbox_child_kill(&p->child);
	}
	lws_sul_schedule(context_of(p), 0, &p->reap_timer, reap_timer_fired,
	                 (lws_usec_t)1000 << (p->reap_tries < 12 ? p->reap_tries : 12));
}

void agent_proc_kill(struct agent_proc *p, enum sandbox_host_kill why, const char *detail)
{
	if (p->ending || p->reaped)
		return;
	p->ending = true;
	p->host_kill = why;
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	lws_sul_schedule(context_of(p), 0, &p->timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
	sandbox_child_kill(&p->child);
}

void agent_proc_retire(struct agent_proc *p)
{
	if (p->ending || p->reaped)
		return;
	p->retired = true;
	agent_proc_kill(p, SANDBOX_HOST_OTHER, "retired");
}

static void timer_fired(lws_sorted_usec_list_t *sul)
{
	struct agent_proc *p = lws_container_of(sul, struct agent_proc, timer);

	agent_proc_kill(p, p->timer_why, p->timer_detail);
}

void agent_proc_set_timer(struct agent_proc *p, int64_t ms, enum sandbox_host_kill why,
                          const char *detail)
{
	if (ms <= 0) {
		lws_sul_schedule(context_of(p), 0, &p->timer, NULL, LWS_SET_TIMER_USEC_CANCEL);
		return;
	}
	p->timer_why = why;
	snprintf(p->timer_detail, sizeof(p->timer_detail), "%s", detail ? detail : "");
	lws_sul_schedule(context_of(p), 0, &p->timer, timer_fired, (lws_usec_t)ms * 1000);
}

/* ---- frames from the agent */

static void protocol_error(struct agent_proc *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void protocol_error(struct agent_proc *p, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	agent_proc_kill(p, SANDBOX_HOST_PROTOCOL_ERROR, detail);
}

static void log_frame(struct agent_proc *p, json_t *frame)
{
	const char *level = json_string_value(json_object_get(frame, "level"));
	const char *msg = json_string_value(json_object_get(frame, "msg"));
	char q[1024];
	int lvl = level ? log_level_parse(level) : -1;

	log_emit(lvl < 0 ? LOG_INFO : (enum log_level)lvl, "agent.log", "%s msg=%s", p->label,
	         log_quote(msg ? msg : "", q, sizeof(q)));
}

static int on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	struct agent_proc *p = ctx;
	struct frame_error verr;
	int kind;

	if (p->ending)
		return 1;
	if (err) {
		protocol_error(p, "%s", err->text);
		return 1;
	}
	kind = frame_validate(frame, FRAME_TO_HOST, &verr);
	if (kind < 0) {
		protocol_error(p, "%s", verr.text);
		return 1;
	}
	if (kind == FRAME_LOG) {
		log_frame(p, frame);
		return 0;
	}
	if (kind == FRAME_READY) {
		if (p->ready) {
			protocol_error(p, "a second \"ready\"");
			return 1;
		}
		p->ready = true;
		agent_proc_set_timer(p, 0, SANDBOX_HOST_NONE, NULL);
		if (p->ops->ready)
			p->ops->ready(p, p->owner);
		return 0;
	}
	/* Before ready only kv.* may come: a resumed session reads its state in create. */
	if (!p->ready && kind != FRAME_KV_GET && kind != FRAME_KV_SET && kind != FRAME_KV_DEL &&
	    kind != FRAME_KV_LIST) {
		protocol_error(p, "frame \"%s\" before \"ready\"", frame_kind_name(kind));
		return 1;
	}
	if (p->ops->frame && p->ops->frame(p, kind, frame, p->owner) != 0) {
		if (!p->ending)
			protocol_error(p, "unexpected frame \"%s\"", frame_kind_name(kind));
		return 1;
	}
	return 0;
}

/* Counts bytes against the output cap; kills the agent past it. */
static bool count_output(struct agent_proc *p, size_t n)
{
	p->output += n;
	if (p->output <= p->output_cap)
		return true;
	char detail[96];
	snprintf(detail, sizeof(detail), "wrote more than %llu bytes",
	         (unsigned long long)p->output_cap);
	agent_proc_kill(p, SANDBOX_HOST_OUTPUT_LIMIT, detail);
	return false;
}

void agent_proc_reset_output(struct agent_proc *p)
{
	p->output = 0;
}

/* Reads what the protocol socket has (up to the budget). Returns -1 at EOF. */
static int read_sock(struct agent_proc *p, int fd)
{
	char buf[65536];
	size_t total = 0;

	while (total < READ_BUDGET) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		total += (size_t)n;
		if (p->ending)
			continue; /* drain; the agent's frames no longer matter */
		/* Parsed before counted: a line over the frame cap is a protocol error, not output
		 * volume (the cap and the output budget are the same number). */
		frame_reader_feed(&p->reader, buf, (size_t)n, on_frame, p);
		if (!p->ending)
			count_output(p, (size_t)n);
	}
	return 0;
}

static void on_sock_eof(struct agent_proc *p)
{
	struct frame_error err;

	p->sock_eof = true;
	if (!p->ending && frame_reader_eof(&p->reader, &err) < 0)
		protocol_error(p, "%s", err.text);
	try_reap(p);
}

/* stdout+stderr: counted against the cap and logged line by line at debug level. */
static int read_output(struct agent_proc *p, int fd)
{
	char buf[16384];
	size_t total = 0;

	while (total < READ_BUDGET) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		total += (size_t)n;
		if (p->ending || !count_output(p, (size_t)n))
			continue;
		if (p->ops->output)
			p->ops->output(p, buf, (size_t)n, p->owner);
		if (log_enabled(LOG_DEBUG)) {
			char q[sizeof(buf) + 64];
			buf[n] = '\0';
			utf8_sanitize(buf);
			log_debug("agent.output", "%s text=%s", p->label,
			          log_quote(buf, q, sizeof(q)));
		}
	}
	return 0;
}

/* ---- frames to the agent */

int agent_proc_send(struct agent_proc *p, json_t *frame)
{
	struct out_chunk *c;
	char *line;
	size_t len;

	if (p->ending || p->reaped || !p->wsi_sock)
		return -EPIPE;
	if (frame_encode(frame, 0, &line, &len) < 0)
		return -EINVAL;
	if (p->q_bytes + len > QUEUE_CAP) {
		free(line);
		protocol_error(p, "it left more than %d bytes of input unread", QUEUE_CAP);
		return -EPIPE;
	}
	c = xmalloc(sizeof(*c) + len);
	c->next = NULL;
	c->len = len;
	c->off = 0;
	memcpy(c->data, line, len);
	free(line);
	if (p->q_tail)
		p->q_tail->next = c;
	else
		p->q_head = c;
	p->q_tail = c;
	p->q_bytes += len;
	if (p->q_head == c && !p->write_backoff_us)
		write_queue(p, lws_get_socket_fd(p->wsi_sock)); /* an idle socket takes it now */
	return 0;
}

static void write_timer_fired(lws_sorted_usec_list_t *sul)
{
	struct agent_proc *p = lws_container_of(sul, struct agent_proc, write_timer);

	if (!p->wsi_sock || p->reaped || p->ending)
		return;
	if (lws_now_usecs() - p->write_stalled_since > INPUT_STALL_US) {
		protocol_error(p, "it has not read its input for %d s", INPUT_STALL_US / 1000000);
		return;
	}
	write_queue(p, lws_get_socket_fd(p->wsi_sock));
}

/* Writes what the queue holds until the socket is full. DESIGN: when it is, the write is
 * retried on a timer (200 µs, doubling to 2 ms) rather than on lws' writeable callback,
 * which lws 4.1 does not deliver for adopted raw fds on the libev loop. */
static void write_queue(struct agent_proc *p, int fd)
{
	while (p->q_head) {
		struct out_chunk *c = p->q_head;
		ssize_t n = write(fd, c->data + c->off, c->len - c->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!p->write_backoff_us)
				p->write_stalled_since = lws_now_usecs();
			p->write_backoff_us = p->write_backoff_us ? p->write_backoff_us * 2 : 200;
			if (p->write_backoff_us > 2000)
				p->write_backoff_us = 2000;
			lws_sul_schedule(context_of(p), 0, &p->write_timer, write_timer_fired,
			                 p->write_backoff_us);
			return;
		}
		if (n < 0) {
			return; /* EPIPE: the agent is going; EOF handling follows */
		}
		c->off += (size_t)n;
		p->q_bytes -= (size_t)n;
		p->write_backoff_us = 0;
		if (c->off < c->len)
			continue;
		p->q_head = c->next;
		if (!p->q_head)
			p->q_tail = NULL;
		free(c);
	}
}

/* ---- lws */

static int callback_agent(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct agent_proc *p = lws_get_opaque_user_data(wsi);
	int fd;

	(void)user, (void)in, (void)len;
	if (!p)
		return 0;
	fd = lws_get_socket_fd(wsi);
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (wsi == p->wsi_sock) {
			if (read_sock(p, fd) < 0)
				return -1; /* RAW_CLOSE_FILE follows */
		} else if (read_output(p, fd) < 0) {
			return -1;
		}
		return 0;

	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		if (wsi == p->wsi_sock) {
			p->wsi_sock = NULL;
			if (!p->sock_eof && !p->reaped) {
				on_sock_eof(p); /* may free p */
				return 0;
			}
		} else {
			p->wsi_out = NULL;
		}
		maybe_free(p);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocol = {
    .name = "agenthost-agent",
    .callback = callback_agent,
};

const struct lws_protocols *supervisor_protocol(void)
{
	return &protocol;
}

static struct lws *adopt(struct agent_proc *p, int fd)
{
	struct lws_vhost *vh = lws_get_vhost_by_name(context_of(p), "default");
	lws_sock_file_fd_type desc = {.filefd = fd};
	struct lws *wsi;

	if (!vh)
		return NULL;
	wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, desc, protocol.name, NULL);
	if (wsi)
		lws_set_opaque_user_data(wsi, p);
	return wsi;
}

/* ---- spawn */

static void add_config_env(struct sandbox_policy *pol, json_t *config)
{
	const char *key;
	json_t *value;

	json_object_foreach(config, key, value)
	{
		if (json_is_string(value))
			sandbox_policy_setenv(pol, key, json_string_value(value));
	}
}

static struct sandbox_policy *build_policy(const struct agent_proc_spec *spec, int out_fd)
{
	const struct manifest *m = spec->manifest;
	struct sandbox_policy *pol = sandbox_policy_from_manifest(m, spec->agent_dir);

	if (spec->config)
		add_config_env(pol, spec->config);
	sandbox_policy_setenv(pol, "AGENTHOST_PROTOCOL", "1");
	sandbox_policy_setenv(pol, "AGENTHOST_AGENT", m->name);
	sandbox_policy_setenv(pol, "AGENTHOST_VERSION", m->version);
	sandbox_policy_setenv(pol, "AGENTHOST_MODE", spec->mode);
	if (spec->session)
		sandbox_policy_setenv(pol, "AGENTHOST_SESSION", spec->session);
	sandbox_policy_set_output_fds(pol, out_fd, out_fd);
	return pol;
}

static json_t *hello_frame(const struct agent_proc_spec *spec)
{
	json_t *config = spec->config ? json_deep_copy(spec->config) : json_object();

	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:s?, s:b, s:o, s:I}", "t", "hello", "protocol",
	                 1, "agent", spec->manifest->name, "version", spec->manifest->version,
	                 "mode", spec->mode, "session", spec->session, "resumed", spec->resumed,
	                 "config", config, "max_frame_bytes",
	                 (json_int_t)spec->manifest->sandbox.limits.output_bytes);
}

int supervisor_spawn(struct daemon *d, const struct agent_proc_spec *spec,
                     const struct agent_proc_ops *ops, void *owner, struct agent_proc **out,
                     char *err, size_t errlen)
{
	struct agent_proc *p;
	struct sandbox_policy *pol;
	int pipefd[2], rc;

	*out = NULL;
	/* Non-blocking on the daemon's end only: the agent's stdout and stderr block like any
	 * program's, or a fast writer would see EAGAIN and die instead of hitting its cap. */
	if (pipe2(pipefd, O_CLOEXEC) < 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, errlen, "spawn %s: pipe: %s", spec->manifest->name, strerror(errno));
		return -errno;
	}
	pol = build_policy(spec, pipefd[1]);
	p = xcalloc(1, sizeof(*p));
	rc = sandbox_spawn(pol, &p->child);
	sandbox_policy_free(pol);
	close(pipefd[1]);
	if (rc < 0) {
		snprintf(err, errlen, "spawn %s: %s", spec->manifest->name, p->child.message);
		close(pipefd[0]);
		free(p);
		d->metrics.spawn_failures++;
		return rc;
	}
	/* The daemon reaps by pid; a pidfd would be a third fd per agent. */
	close(p->child.pidfd);
	p->child.pidfd = -1;

	p->d = d;
	p->ops = ops;
	p->owner = owner;
	p->label = spec->session
	               ? xasprintf("agent=%s session=%s", spec->manifest->name, spec->session)
	               : xasprintf("agent=%s mode=%s", spec->manifest->name, spec->mode);
	p->output_cap = (uint64_t)spec->manifest->sandbox.limits.output_bytes;
	p->limits = spec->manifest->sandbox.limits;
	frame_reader_init(&p->reader, (size_t)p->output_cap);
	p->next = live;
	if (live)
		live->prev = p;
	live = p;
	live_count++;
	d->metrics.spawns++;

	p->wsi_sock = adopt(p, p->child.sock);
	p->wsi_out = adopt(p, pipefd[0]);
	if (!p->wsi_sock || !p->wsi_out) {
		snprintf(err, errlen, "spawn %s: cannot watch its fds", spec->manifest->name);
		if (!p->wsi_out)
			close(pipefd[0]);
		/* lws owns whatever it adopted and closes it with the wsi. */
		if (p->wsi_sock)
			p->child.sock = -1;
		p->ops = &(const struct agent_proc_ops){0};
		agent_proc_kill(p, SANDBOX_HOST_OTHER, "adoption failed");
		close_wsi(p->wsi_sock);
		close_wsi(p->wsi_out);
		return -EIO;
	}
	p->child.sock = -1; /* lws closes it with the wsi */

	json_t *hello = hello_frame(spec);
	agent_proc_send(p, hello);
	json_decref(hello);
	agent_proc_set_timer(p, HELLO_TIMEOUT_MS, SANDBOX_HOST_TIMEOUT, "no \"ready\" within 10 s");
	log_debug("agent.spawned", "%s pid=%d", p->label, (int)p->child.pid);
	*out = p;
	return 0;
}

pid_t agent_proc_pid(const struct agent_proc *p)
{
	return p->child.pid;
}

void agent_proc_set_owner(struct agent_proc *p, void *owner)
{
	p->owner = owner;
}

int supervisor_live_count(void)
{
	return live_count;
}

void supervisor_kill_all(void)
{
	/* Agents die in batches: killed together (prompt even with thousands), reaped, then
	 * the next batch. Not all at once: each dead agent's seccomp program is freed by a
	 * kernel work item, and 8,000 queued at once deadlocked this kernel (6.18:
	 * bpf_prog_pack_free fills the workqueue while holding the JIT lock; see
	 * docs/sandbox.md). */
	while (live) {
		int n = 0;
		for (struct agent_proc *p = live; p && n < KILL_BATCH; p = p->next, n++)
			if (!p->reaped)
				sandbox_child_kill(&p->child);
		for (int i = 0; i < n && live; i++)
			kill_one(live);
		if (live)
			usleep(KILL_BATCH_PAUSE_US);
	}
}

/* Frees one agent at shutdown: no ended callback (its owner is gone). */
static void kill_one(struct agent_proc *p)
{
	if (p->wsi_sock)
		lws_set_opaque_user_data(p->wsi_sock, NULL);
	if (p->wsi_out)
		lws_set_opaque_user_data(p->wsi_out, NULL);
	p->wsi_sock = p->wsi_out = NULL;
	p->reaped = true;
	free_proc(p); /* sandbox_child_close reaps it */
}
