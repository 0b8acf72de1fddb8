/* ahsandbox: runs one command inside exactly the sandbox an agent gets (like bwrap, for our
 * policy), relays its stdout, stderr and protocol socket, and ends with one line saying why
 * it ended. The command-line contract is in docs/sandbox.md; the hostile-agent suite
 * (tests/sandbox/) codes against it. */
#include "manifest.h"
#include "sandbox.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124
#define EXIT_OUTPUT_LIMIT 125
#define EXIT_SPAWN_FAILED 126

#define DEFAULT_TIMEOUT_S 60
#define DEFAULT_OUTPUT_BYTES 4194304

/* What the command line says; a field left unset (-1, NULL) keeps the manifest's value or
 * the default. */
struct options {
	const char *manifest;
	const char *agent_dir;
	bool writable_agent_dir;
	const char *cwd;
	const char **paths;
	size_t npaths;
	bool network;
	const char *profile;
	const char **allow;
	size_t nallow;
	int64_t memory_mb, cpu_seconds, processes, open_files, file_size_mb, scratch_mb;
	double timeout_s;
	int64_t output_bytes;
	const char **env;
	size_t nenv;
	char **argv;
};

static void usage(FILE *f)
{
	fputs("usage: ahsandbox [--manifest PATH/agent.json] [--agent-dir DIR] "
	      "[--writable-agent-dir] [--cwd PATH]\n"
	      "          [--path HOSTPATH[:rw]]... [--network] [--profile default|python] "
	      "[--allow SYSCALL]...\n"
	      "          [--memory-mb N] [--cpu-seconds N] [--processes N] [--open-files N] "
	      "[--file-size-mb N]\n"
	      "          [--scratch-mb N] [--timeout SECONDS] [--output-bytes N] "
	      "[--env KEY=VALUE]...\n"
	      "          -- CMD [ARG...]\n",
	      f);
}

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "ahsandbox: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	exit(EXIT_USAGE);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		abort();
	return p;
}

static void push(const char ***list, size_t *n, const char *value)
{
	*list = xrealloc(*list, (*n + 2) * sizeof(char *));
	(*list)[(*n)++] = value;
	(*list)[*n] = NULL;
}

static int64_t parse_count(const char *flag, const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		die_usage("%s needs a number >= 0", flag);
	return v;
}

enum {
	OPT_MANIFEST = 256,
	OPT_AGENT_DIR,
	OPT_WRITABLE,
	OPT_CWD,
	OPT_PATH,
	OPT_NETWORK,
	OPT_PROFILE,
	OPT_ALLOW,
	OPT_MEMORY,
	OPT_CPU,
	OPT_PROCESSES,
	OPT_OPEN_FILES,
	OPT_FSIZE,
	OPT_SCRATCH,
	OPT_TIMEOUT,
	OPT_OUTPUT,
	OPT_ENV,
	OPT_HELP,
};

static const struct option long_options[] = {
    {"manifest", required_argument, NULL, OPT_MANIFEST},
    {"agent-dir", required_argument, NULL, OPT_AGENT_DIR},
    {"writable-agent-dir", no_argument, NULL, OPT_WRITABLE},
    {"cwd", required_argument, NULL, OPT_CWD},
    {"path", required_argument, NULL, OPT_PATH},
    {"network", no_argument, NULL, OPT_NETWORK},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"memory-mb", required_argument, NULL, OPT_MEMORY},
    {"cpu-seconds", required_argument, NULL, OPT_CPU},
    {"processes", required_argument, NULL, OPT_PROCESSES},
    {"open-files", required_argument, NULL, OPT_OPEN_FILES},
    {"file-size-mb", required_argument, NULL, OPT_FSIZE},
    {"scratch-mb", required_argument, NULL, OPT_SCRATCH},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"output-bytes", required_argument, NULL, OPT_OUTPUT},
    {"env", required_argument, NULL, OPT_ENV},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void parse_option(struct options *o, int c, const char *arg)
{
	const char *flag = long_options[c - OPT_MANIFEST].name;
	char *end;

	switch (c) {
	case OPT_MANIFEST:
		o->manifest = arg;
		break;
	case OPT_AGENT_DIR:
		o->agent_dir = arg;
		break;
	case OPT_WRITABLE:
		o->writable_agent_dir = true;
		break;
	case OPT_CWD:
		o->cwd = arg;
		break;
	case OPT_PATH:
		push(&o->paths, &o->npaths, arg);
		break;
	case OPT_NETWORK:
		o->network = true;
		break;
	case OPT_PROFILE:
		o->profile = arg;
		break;
	case OPT_ALLOW:
		push(&o->allow, &o->nallow, arg);
		break;
	case OPT_MEMORY:
		o->memory_mb = parse_count(flag, arg);
		break;
	case OPT_CPU:
		o->cpu_seconds = parse_count(flag, arg);
		break;
	case OPT_PROCESSES:
		o->processes = parse_count(flag, arg);
		break;
	case OPT_OPEN_FILES:
		o->open_files = parse_count(flag, arg);
		break;
	case OPT_FSIZE:
		o->file_size_mb = parse_count(flag, arg);
		break;
	case OPT_SCRATCH:
		o->scratch_mb = parse_count(flag, arg);
		break;
	case OPT_OUTPUT:
		o->output_bytes = parse_count(flag, arg);
		break;
	case OPT_ENV:
		if (!strchr(arg, '=') || arg[0] == '=')
			die_usage("--env needs KEY=VALUE, got \"%s\"", arg);
		push(&o->env, &o->nenv, arg);
		break;
	case OPT_TIMEOUT:
		errno = 0;
		o->timeout_s = strtod(arg, &end);
		if (errno || *end || o->timeout_s < 0)
			die_usage("--timeout needs seconds >= 0 (0: none), got \"%s\"", arg);
		break;
	case OPT_HELP:
		usage(stdout);
		exit(0);
	}
}

static void parse_args(struct options *o, int argc, char **argv)
{
	int c;

	*o = (struct options){.memory_mb = -1,
	                      .cpu_seconds = -1,
	                      .processes = -1,
	                      .open_files = -1,
	                      .file_size_mb = -1,
	                      .scratch_mb = -1,
	                      .timeout_s = -1,
	                      .output_bytes = -1};
	/* '+': options end at the command, which has options of its own. */
	while ((c = getopt_long(argc, argv, "+", long_options, NULL)) != -1) {
		if (c == '?')
			usage(stderr), exit(EXIT_USAGE);
		parse_option(o, c, optarg);
	}
	o->argv = argv + optind;
	if (!o->argv[0] && !o->manifest)
		die_usage("%s", "no command given (and no --manifest to take one from)");
}

/* ---- the policy ---- */

static void spawn_failed(const char *what)
{
	fprintf(stderr, "ahsandbox: spawn failed: %s\n", what);
	exit(EXIT_SPAWN_FAILED);
}

/* The folder of the manifest file, as an absolute path. */
static char *manifest_folder(const char *path)
{
	char *real = realpath(path, NULL), *slash;

	if (!real)
		return NULL;
	slash = strrchr(real, '/');
	if (slash == real)
		slash[1] = '\0';
	else
		*slash = '\0';
	return real;
}

/* An absolute path for the agent folder; whether it exists is the library's to say. */
static char *absolute(const char *path)
{
	char *real = realpath(path, NULL), *cwd, *abs;

	if (real || path[0] == '/')
		return real ? real : strdup(path);
	cwd = getcwd(NULL, 0);
	if (!cwd || asprintf(&abs, "%s/%s", cwd, path) < 0)
		abort();
	free(cwd);
	return abs;
}

static char *agent_folder(const struct options *o)
{
	char *dir;

	if (o->agent_dir)
		return absolute(o->agent_dir);
	dir = o->manifest ? manifest_folder(o->manifest) : getcwd(NULL, 0);
	if (!dir) {
		char msg[PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "agent_dir: %s", strerror(errno));
		spawn_failed(msg);
	}
	return dir;
}

static void override_limit(uint64_t *field, int64_t value)
{
	if (value >= 0)
		*field = (uint64_t)value;
}

static void apply_limits(struct sandbox_policy *p, const struct options *o)
{
	struct sandbox_limits l;

	sandbox_policy_get_limits(p, &l);
	override_limit(&l.memory_mb, o->memory_mb);
	override_limit(&l.cpu_seconds, o->cpu_seconds);
	override_limit(&l.processes, o->processes);
	override_limit(&l.open_files, o->open_files);
	override_limit(&l.file_size_mb, o->file_size_mb);
	override_limit(&l.scratch_mb, o->scratch_mb);
	sandbox_policy_set_limits(p, &l);
}

static void apply_paths(struct sandbox_policy *p, const struct options *o)
{
	for (size_t i = 0; i < o->npaths; i++) {
		char *path = strdup(o->paths[i]);
		size_t n = strlen(path);
		bool rw = n > 3 && strcmp(path + n - 3, ":rw") == 0;

		if (rw || (n > 3 && strcmp(path + n - 3, ":ro") == 0))
			path[n - 3] = '\0';
		sandbox_policy_add_path(p, path, rw);
		free(path);
	}
}

/* The manifest's allow_syscalls and the --allow names together. */
static void apply_seccomp(struct sandbox_policy *p, const struct options *o,
                          const struct manifest *m)
{
	const char **all = NULL;
	size_t n = 0;

	for (size_t i = 0; m && i < m->sandbox.allow_syscalls_len; i++)
		push(&all, &n, m->sandbox.allow_syscalls[i]);
	for (size_t i = 0; i < o->nallow; i++)
		push(&all, &n, o->allow[i]);
	sandbox_policy_set_seccomp(
	    p, o->profile ? o->profile : (m && m->sandbox.seccomp ? m->sandbox.seccomp : "default"),
	    all);
	free(all);
}

static void apply_env(struct sandbox_policy *p, const struct options *o)
{
	for (size_t i = 0; i < o->nenv; i++) {
		char *key = strndup(o->env[i], strcspn(o->env[i], "="));

		sandbox_policy_setenv(p, key, o->env[i] + strlen(key) + 1);
		free(key);
	}
}

static struct manifest *load_manifest(const char *path)
{
	char err[MANIFEST_ERR_MAX], msg[MANIFEST_ERR_MAX + 16];
	struct manifest *m;

	if (manifest_load(path, &m, err, sizeof(err)) < 0) {
		snprintf(msg, sizeof(msg), "manifest: %s", err);
		spawn_failed(msg);
	}
	return m;
}

/* Fills the run's timeout and output cap too (flags > manifest > defaults). */
static struct sandbox_policy *build_policy(const struct options *o, double *timeout_s,
                                           uint64_t *output_bytes)
{
	struct manifest *m = o->manifest ? load_manifest(o->manifest) : NULL;
	char *dir = agent_folder(o);
	struct sandbox_policy *p = m ? sandbox_policy_from_manifest(m, dir) : sandbox_policy_new();

	if (o->argv[0])
		sandbox_policy_set_argv(p, (const char *const *)o->argv);
	sandbox_policy_set_agent_dir(p, dir, o->writable_agent_dir);
	if (o->cwd)
		sandbox_policy_set_cwd(p, o->cwd);
	apply_paths(p, o);
	if (o->network)
		sandbox_policy_set_network(p, true);
	apply_seccomp(p, o, m);
	apply_limits(p, o);
	apply_env(p, o);
	*timeout_s = o->timeout_s >= 0 ? o->timeout_s
	             : m               ? (double)m->sandbox.limits.run_timeout_s
	                               : DEFAULT_TIMEOUT_S;
	*output_bytes = o->output_bytes >= 0 ? (uint64_t)o->output_bytes
	                : m                  ? (uint64_t)m->sandbox.limits.output_bytes
	                                     : DEFAULT_OUTPUT_BYTES;
	manifest_free(m);
	free(dir);
	return p;
}

/* ---- the run ---- */

struct run {
	struct sandbox_child child;
	struct pollfd fds[5]; /* stdout, stderr, socket, pidfd, signals */
	int stop_signal;      /* SIGTERM, SIGINT or SIGHUP received, else 0 */
	int dest[3];          /* where each stream goes: 1, 2, 1 */
	uint64_t cap, total;
	enum sandbox_host_kill host_kill;
	bool exited;
};

/* Writes everything, waiting while our own output is full. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLOUT, 0};

			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* our reader went away; the cap still bounds the child */
		buf += n;
		len -= (size_t)n;
	}
}

static void host_kill(struct run *r, enum sandbox_host_kill why)
{
	if (r->host_kill == SANDBOX_HOST_NONE && !r->exited) {
		r->host_kill = why;
		sandbox_child_kill(&r->child);
	}
}

/* Relays what one stream has; the cap counts every stream together. */
static void relay(struct run *r, int i)
{
	char buf[65536];
	ssize_t n = read(r->fds[i].fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		r->fds[i].fd = -1; /* EOF: poll ignores negative fds */
		return;
	}
	if (r->host_kill != SANDBOX_HOST_NONE)
		return; /* after a kill, only drain */
	if (r->total + (uint64_t)n > r->cap) {
		write_all(r->dest[i], buf, (size_t)(r->cap - r->total));
		r->total = r->cap;
		host_kill(r, SANDBOX_HOST_OUTPUT_LIMIT);
		return;
	}
	r->total += (uint64_t)n;
	write_all(r->dest[i], buf, (size_t)n);
}

/* SIGTERM, SIGINT, SIGHUP arrive on a signalfd: the program is killed and reaped, its
 * cgroups removed, and then we die of the same signal (see main). */
static int stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigprocmask(SIG_BLOCK, set, NULL);
	return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void stop_requested(struct run *r)
{
	struct signalfd_siginfo si;

	if (read(r->fds[4].fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!r->stop_signal)
		r->stop_signal = (int)si.ssi_signo;
	host_kill(r, SANDBOX_HOST_OTHER);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool streams_open(const struct run *r)
{
	return r->fds[0].fd >= 0 || r->fds[1].fd >= 0 || r->fds[2].fd >= 0;
}

/* Until the program has exited and every stream reached EOF (all writers are in its pid
 * namespace, so they close when it ends). */
static void relay_loop(struct run *r, double timeout_s)
{
	int64_t deadline = timeout_s > 0 ? now_ms() + (int64_t)(timeout_s * 1000) : -1;

	while (!r->exited || streams_open(r)) {
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();
		int n;

		if (deadline >= 0 && left <= 0) {
			host_kill(r, SANDBOX_HOST_TIMEOUT);
			deadline = -1;
			continue;
		}
		n = poll(r->fds, 5, left < 0 ? -1 : (int)(left > INT_MAX ? INT_MAX : left));
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 3; i++)
			if (r->fds[i].fd >= 0 && r->fds[i].revents)
				relay(r, i);
		if (r->fds[3].fd >= 0 && r->fds[3].revents) {
			r->exited = true;
			r->fds[3].fd = -1;
		}
		if (r->fds[4].fd >= 0 && r->fds[4].revents)
			stop_requested(r);
	}
}

static const char *signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "%d", sig);
	return buf;
}

static int exit_status(const struct sandbox_exit *e)
{
	switch (e->reason) {
	case SANDBOX_EXITED:
		return e->code;
	case SANDBOX_TIMEOUT:
		return EXIT_TIMEOUT;
	case SANDBOX_OUTPUT_LIMIT:
		return EXIT_OUTPUT_LIMIT;
	default:
		return e->signal ? 128 + e->signal : 1;
	}
}

/* The one final line on stderr, and our exit status. */
static int report(const struct sandbox_end *end)
{
	struct sandbox_exit e = sandbox_exit_reason(end);
	char line[256], sig[32], name[64];
	int n;

	n = snprintf(line, sizeof(line), "ahsandbox: reason=%s",
	             sandbox_exit_reason_name(e.reason));
	if (e.reason == SANDBOX_EXITED)
		n += snprintf(line + n, sizeof(line) - n, " code=%d", e.code);
	if (e.signal)
		n += snprintf(line + n, sizeof(line) - n, " signal=%s",
		              signal_name(e.signal, sig, sizeof(sig)));
	if (e.syscall >= 0 && sandbox_syscall_name(e.syscall, name, sizeof(name)) == 0)
		n += snprintf(line + n, sizeof(line) - n, " syscall=%s", name);
	snprintf(line + n, sizeof(line) - n, "\n");
	write_all(2, line, strlen(line));
	return exit_status(&e);
}

static int run_child(struct sandbox_policy *p, double timeout_s, uint64_t cap, int *stop_signal)
{
	struct run r = {.cap = cap, .dest = {1, 2, 1}};
	struct sandbox_end end;
	sigset_t stops;
	int sigfd = stop_signals(&stops);
	int rc = sandbox_spawn(p, &r.child);

	if (rc < 0)
		spawn_failed(r.child.message);
	r.fds[4] = (struct pollfd){sigfd, POLLIN, 0};
	r.fds[0] = (struct pollfd){r.child.out, POLLIN, 0};
	r.fds[1] = (struct pollfd){r.child.err, POLLIN, 0};
	r.fds[2] = (struct pollfd){r.child.sock, POLLIN, 0};
	r.fds[3] = (struct pollfd){r.child.pidfd, POLLIN, 0};
	relay_loop(&r, timeout_s);
	rc = sandbox_child_wait(&r.child, 0, &end);
	if (rc <= 0) {
		fprintf(stderr, "ahsandbox: wait: %s\n", strerror(-rc));
		return EXIT_SPAWN_FAILED;
	}
	end.host_kill = r.host_kill;
	sandbox_child_close(&r.child);
	close(sigfd);
	*stop_signal = r.stop_signal;
	return report(&end);
}

/* Ends ahsandbox by the signal it was stopped with, as if it had not caught it. */
static void die_of(int sig)
{
	sigset_t set;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

int main(int argc, char **argv)
{
	struct options o;
	struct sandbox_policy *p;
	uint64_t output_bytes;
	double timeout_s;
	int status, stop_signal = 0;

	/* A reader of our output that goes away must not kill us before the report. */
	signal(SIGPIPE, SIG_IGN);
	parse_args(&o, argc, argv);
	p = build_policy(&o, &timeout_s, &output_bytes);
	status = run_child(p, timeout_s, output_bytes, &stop_signal);
	sandbox_policy_free(p);
	free(o.paths);
	free(o.allow);
	free(o.env);
	if (stop_signal)
		die_of(stop_signal);
	return status;
}
