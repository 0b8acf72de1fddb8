/* spawn_bench.c: wall time from "start a process" to its first byte, for (a) plain
 * fork+exec, (b) libahsandbox's full sandbox, (c) bwrap --unshare-all, (d) unshare
 * --user --map-root-user --pid --net --mount --ipc --uts --fork; the four are interleaved
 * round by round so that they see the same machine. Then (a) and (b) again from a parent
 * with 1 GiB touched. Prints a Markdown table of median and p99 in milliseconds.
 *
 * usage: spawn_bench [-n SPAWNS] [-s SKIP-1GB] FOLDER-WITH-first_byte */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *dir;   /* holds first_byte */
static char helper[4096]; /* dir/first_byte */
static struct sandbox_policy *policy;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void read_byte(int fd)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	char c;

	for (;;) {
		ssize_t n = read(fd, &c, 1);

		if (n == 1)
			return;
		if (n < 0 && errno == EAGAIN) {
			poll(&pfd, 1, 5000);
			continue;
		}
		fprintf(stderr, "no first byte (read %zd)\n", n);
		exit(1);
	}
}

/* (a): fork, put the socket on fd 3, exec. */
static double run_fork_exec(void)
{
	int sv[2];
	double t0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		char *argv[] = {helper, NULL};

		dup2(sv[1], 3);
		execve(helper, argv, environ);
		_exit(127);
	}
	if (pid < 0)
		die("fork");
	close(sv[1]);
	read_byte(sv[0]);
	t0 = now_ms() - t0;
	close(sv[0]);
	waitpid(pid, NULL, 0);
	return t0;
}

/* (b): the full sandbox. */
static double run_sandbox(void)
{
	struct sandbox_child c;
	struct sandbox_end end;
	double t0 = now_ms();

	if (sandbox_spawn(policy, &c) < 0) {
		fprintf(stderr, "sandbox_spawn: %s\n", c.message);
		exit(1);
	}
	read_byte(c.sock);
	t0 = now_ms() - t0;
	sandbox_child_wait(&c, 0, &end);
	sandbox_child_close(&c);
	return t0;
}

/* (c), (d): a peer tool started with posix_spawn (cheap for any parent), its child's stdout
 * on a pipe. */
static double run_peer(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int p[2];
	double t0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	t0 = now_ms();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		die("posix_spawn");
	close(p[1]);
	read_byte(p[0]);
	t0 = now_ms() - t0;
	close(p[0]);
	waitpid(pid, NULL, 0);
	posix_spawn_file_actions_destroy(&fa);
	return t0;
}

static char *bwrap_argv[32], *unshare_argv[16];

static double run_bwrap(void)
{
	return run_peer(bwrap_argv);
}

static double run_unshare(void)
{
	return run_peer(unshare_argv);
}

static void peer_argvs(void)
{
	char *b[] = {"/usr/bin/bwrap",
	             "--unshare-all",
	             "--die-with-parent",
	             "--ro-bind",
	             "/usr",
	             "/usr",
	             "--symlink",
	             "usr/lib",
	             "/lib",
	             "--symlink",
	             "usr/lib64",
	             "/lib64",
	             "--symlink",
	             "usr/bin",
	             "/bin",
	             "--proc",
	             "/proc",
	             "--dev",
	             "/dev",
	             "--ro-bind",
	             (char *)dir,
	             "/agent",
	             "--",
	             "/agent/first_byte",
	             NULL};
	char *u[] = {"/usr/bin/unshare",
	             "--user",
	             "--map-root-user",
	             "--pid",
	             "--net",
	             "--mount",
	             "--ipc",
	             "--uts",
	             "--fork",
	             helper,
	             NULL};

	memcpy(bwrap_argv, b, sizeof(b));
	memcpy(unshare_argv, u, sizeof(u));
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct series {
	const char *name;
	double (*run)(void);
	double *ms;
};

static void row(struct series *s, int n)
{
	qsort(s->ms, n, sizeof(double), cmp);
	printf("| %s | %d | %.2f | %.2f |\n", s->name, n, s->ms[n / 2],
	       s->ms[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1]);
}

/* Runs every series n times, interleaved: spawn i of each, then spawn i+1 of each. */
static void measure(struct series *s, int count, int n)
{
	for (int j = 0; j < count; j++)
		s[j].ms = calloc(n, sizeof(double));
	for (int i = 0; i < n; i++)
		for (int j = 0; j < count; j++)
			s[j].ms[i] = s[j].run();
	for (int j = 0; j < count; j++) {
		row(&s[j], n);
		free(s[j].ms);
	}
}

static void make_policy(void)
{
	const char *const argv[] = {"/agent/first_byte", NULL};

	policy = sandbox_policy_new();
	sandbox_policy_set_argv(policy, argv);
	sandbox_policy_set_agent_dir(policy, dir, false);
	/* For experiments: how much of (b) is the network namespace. */
	if (getenv("SPAWN_BENCH_NETWORK"))
		sandbox_policy_set_network(policy, true);
}

int main(int argc, char **argv)
{
	struct series first[] = {
	    {"(a) fork+exec", run_fork_exec, NULL},
	    {"(b) libahsandbox full sandbox", run_sandbox, NULL},
	    {"(c) bwrap --unshare-all ...", run_bwrap, NULL},
	    {"(d) unshare --user --map-root-user --pid --net --mount --ipc --uts --fork",
	     run_unshare, NULL},
	};
	struct series big[] = {
	    {"(a) fork+exec, parent with 1 GiB touched", run_fork_exec, NULL},
	    {"(b) libahsandbox, parent with 1 GiB touched", run_sandbox, NULL},
	};
	int n = 500, opt;
	bool skip_big = false;
	char *mem;

	while ((opt = getopt(argc, argv, "n:s")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else
			skip_big = true;
	}
	if (optind >= argc || n < 1) {
		fprintf(stderr, "usage: spawn_bench [-n SPAWNS] [-s] FOLDER-WITH-first_byte\n");
		return 2;
	}
	dir = realpath(argv[optind], NULL);
	if (!dir)
		die(argv[optind]);
	snprintf(helper, sizeof(helper), "%s/first_byte", dir);
	peer_argvs();
	make_policy();
	signal(SIGPIPE, SIG_IGN);
	/* Warm-up: profile compile, page cache. */
	run_sandbox();
	run_bwrap();

	printf("| spawn → first byte | spawns | median ms | p99 ms |\n|---|---|---|---|\n");
	measure(first, 4, n);
	if (!skip_big) {
		mem = malloc(1UL << 30);
		if (!mem)
			die("malloc");
		/* Small pages, as a daemon's heap has: with huge pages fork copies little. */
		madvise(mem, 1UL << 30, MADV_NOHUGEPAGE);
		memset(mem, 1, 1UL << 30);
		measure(big, 2, n);
		free(mem);
	}
	sandbox_policy_free(policy);
	return 0;
}
