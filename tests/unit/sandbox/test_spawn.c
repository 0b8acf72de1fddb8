/* test_spawn.c: real spawns. /bin/true exits 0; a child's bytes on fd 3 reach the host end
 * of the protocol socket; stdout and stderr arrive on their pipes; the environment is only
 * what the policy says plus the library's three; a failing step is named (agent folder,
 * cwd, exec); a killed program and everything it started are gone; cgroups are removed; the
 * CPU limit's kill is cpu_limit also on a shared CPU. */
#include "check.h"
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char agent_dir[] = "/tmp/ahsandbox-unit-XXXXXX";

static struct sandbox_policy *sh_policy(const char *script)
{
	const char *const argv[] = {"/bin/sh", "-c", script, NULL};
	struct sandbox_policy *p = sandbox_policy_new();

	sandbox_policy_set_argv(p, argv);
	sandbox_policy_set_agent_dir(p, agent_dir, false);
	return p;
}

/* Reads fd until EOF (or 1 s of silence) into buf; returns the length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&pfd, 1, 5000) <= 0)
			break;
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

/* Spawns, waits, and returns the end; out/err/sock text into the given buffers. */
static int run(struct sandbox_policy *p, struct sandbox_end *end, char *out, char *sock)
{
	struct sandbox_child c;
	char buf[4096];
	int rc = sandbox_spawn(p, &c);

	if (rc < 0) {
		fprintf(stderr, "spawn: %s\n", c.message);
		return rc;
	}
	CHECK(c.pid > 0 && c.pidfd >= 0 && c.sock >= 0 && c.out >= 0 && c.err >= 0);
	CHECK(fcntl(c.sock, F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(c.sock, F_GETFD) & FD_CLOEXEC);
	read_all(c.out, out ? out : buf, sizeof(buf));
	read_all(c.sock, sock ? sock : buf, sizeof(buf));
	CHECK_INT(sandbox_child_wait(&c, 0, end), 1);
	sandbox_child_close(&c);
	return 0;
}

static void test_true(void)
{
	const char *const argv[] = {"/bin/true", NULL};
	struct sandbox_policy *p = sandbox_policy_new();
	struct sandbox_end end;
	struct sandbox_exit e;

	sandbox_policy_set_argv(p, argv);
	sandbox_policy_set_agent_dir(p, agent_dir, false);
	CHECK_INT(run(p, &end, NULL, NULL), 0);
	e = sandbox_exit_reason(&end);
	CHECK_INT(e.reason, SANDBOX_EXITED);
	CHECK_INT(e.code, 0);
	sandbox_policy_free(p);
}

static void test_protocol_socket(void)
{
	struct sandbox_policy *p = sh_policy("printf 'hello' >&$AGENTHOST_FD; echo out; exit 7");
	struct sandbox_end end;
	char out[4096], sock[4096];

	CHECK_INT(run(p, &end, out, sock), 0);
	CHECK_STR(sock, "hello");
	CHECK_STR(out, "out\n");
	CHECK_INT(sandbox_exit_reason(&end).code, 7);
	sandbox_policy_free(p);
}

static void test_environment(void)
{
	struct sandbox_policy *p = sh_policy("env | sort");
	const char *const env[] = {"KEEP=1", "HOME=/elsewhere", NULL};
	struct sandbox_end end;
	char out[4096];

	setenv("AHSANDBOX_UNIT_LEAK", "secret", 1);
	sandbox_policy_set_env(p, env);
	CHECK_INT(run(p, &end, out, NULL), 0);
	/* dash adds PWD itself. */
	CHECK_STR(out, "AGENTHOST_FD=3\nHOME=/scratch\nKEEP=1\nPWD=/agent\nTMPDIR=/scratch\n");
	sandbox_policy_free(p);
}

static void test_posture(void)
{
	struct sandbox_policy *p = sh_policy(
	    "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status;"
	    " ls /proc/kallsyms 2>&1 >/dev/null | wc -l; touch /usr/x 2>/dev/null || echo ro;"
	    " touch /scratch/x && echo scratch; echo $$");
	struct sandbox_end end;
	char out[4096];

	CHECK_INT(run(p, &end, out, NULL), 0);
	CHECK_STR(out, "1000\n1000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
	               "NoNewPrivs:\t1\nSeccomp:\t2\n1\nro\nscratch\n1\n");
	sandbox_policy_free(p);
}

static void expect_step(struct sandbox_policy *p, const char *step, int rc)
{
	struct sandbox_child c;

	CHECK_INT(sandbox_spawn(p, &c), rc);
	CHECK_STR(c.failed_step, step);
	CHECK(strncmp(c.message, step, strlen(step)) == 0);
	CHECK(c.pid == -1 && c.sock == -1);
	sandbox_child_close(&c);
}

static void test_failed_steps(void)
{
	struct sandbox_policy *p = sh_policy("true");
	const char *const missing[] = {"/agent/missing", NULL};
	const char *const bare[] = {"no-such-command", NULL};

	sandbox_policy_set_agent_dir(p, "/nonexistent/agent", false);
	expect_step(p, "agent_dir", -ENOENT);
	sandbox_policy_set_agent_dir(p, agent_dir, false);
	sandbox_policy_set_cwd(p, "/nowhere");
	expect_step(p, "cwd", -ENOENT);
	sandbox_policy_set_cwd(p, "/agent");
	sandbox_policy_set_argv(p, missing);
	expect_step(p, "exec", -ENOENT);
	sandbox_policy_set_argv(p, bare);
	expect_step(p, "exec", -ENOENT);
	sandbox_policy_free(p);
}

/* The program is pid 1 of its namespace: killing it takes its whole tree along. */
static void test_kill_tree(void)
{
	struct sandbox_policy *p = sh_policy("sleep 100 & sleep 100 & echo started; wait");
	struct sandbox_child c;
	struct sandbox_end end;
	char out[64];

	CHECK_INT(sandbox_spawn(p, &c), 0);
	read_all(c.out, out, 9);
	CHECK_STR(out, "started\n");
	CHECK_INT(sandbox_child_wait(&c, WNOHANG, &end), 0);
	CHECK_INT(sandbox_child_kill(&c), 0);
	CHECK_INT(sandbox_child_wait(&c, 0, &end), 1);
	CHECK_INT(sandbox_exit_reason(&end).reason, SANDBOX_KILLED);
	CHECK_INT(sandbox_exit_reason(&end).signal, SIGKILL);
	/* The sleepers held the stdout pipe: EOF means they are gone. */
	CHECK_INT(read_all(c.out, out, sizeof(out)), 0);
	sandbox_child_close(&c);
	sandbox_policy_free(p);
}

static void test_output_fds(void)
{
	struct sandbox_policy *p = sh_policy("echo to-out; echo to-err >&2");
	struct sandbox_child c;
	struct sandbox_end end;
	int fds[2];
	char buf[64];

	CHECK_INT(pipe(fds), 0);
	sandbox_policy_set_output_fds(p, fds[1], fds[1]);
	CHECK_INT(sandbox_spawn(p, &c), 0);
	CHECK(c.out == -1 && c.err == -1);
	CHECK_INT(sandbox_child_wait(&c, 0, &end), 1);
	sandbox_child_close(&c);
	close(fds[1]); /* still ours: the library only lent it to the child */
	read_all(fds[0], buf, sizeof(buf));
	CHECK_STR(buf, "to-out\nto-err\n");
	close(fds[0]);
	sandbox_policy_free(p);
}

/* With cgroups, a memory bomb is an oom, and the group is gone after close. */
static void test_oom(void)
{
	struct sandbox_policy *p = sh_policy("x=a; while :; do x=$x$x; done");
	struct sandbox_limits l;
	struct sandbox_end end;

	if (!sandbox_features()->cgroup_memory) {
		printf("skip oom: %s\n", sandbox_features()->summary);
		sandbox_policy_free(p);
		return;
	}
	sandbox_policy_get_limits(p, &l);
	l.memory_mb = 32;
	sandbox_policy_set_limits(p, &l);
	CHECK_INT(run(p, &end, NULL, NULL), 0);
	CHECK_INT(sandbox_exit_reason(&end).reason, SANDBOX_OOM);
	sandbox_policy_free(p);
}

/* Busy host processes, so that the CPU is shared while a program spends its CPU budget. */
static void start_load(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			volatile unsigned long x = 0;

			for (;;)
				x++;
		}
	}
}

static void stop_load(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
}

/* RLIMIT_CPU's kill is cpu_limit even when the CPU is shared. The kernel's limit clock (tick
 * based) then runs well ahead of wait4's precise time: a spinner killed at 1 s showed as
 * little as 0.70 s there, and was reported as killed. cpu_ms must show at least the budget
 * whenever the limit killed it; a short program's cpu_ms stays small. */
static void test_cpu_limit_under_load(void)
{
	struct sandbox_policy *p = sh_policy("while :; do :; done");
	struct sandbox_limits l;
	struct sandbox_end end;
	pid_t load[2];

	sandbox_policy_get_limits(p, &l);
	l.cpu_seconds = 1;
	sandbox_policy_set_limits(p, &l);
	start_load(load, 2);
	for (int i = 0; i < 3; i++) {
		struct sandbox_exit e;

		CHECK_INT(run(p, &end, NULL, NULL), 0);
		e = sandbox_exit_reason(&end);
		if (e.reason != SANDBOX_CPU_LIMIT || end.cpu_ms < 1000)
			fprintf(stderr, "cpu spin %d: %s signal %d cpu_ms %llu\n", i,
			        sandbox_exit_reason_name(e.reason), e.signal,
			        (unsigned long long)end.cpu_ms);
		CHECK_INT(e.reason, SANDBOX_CPU_LIMIT);
		CHECK_INT(e.signal, SIGKILL);
		CHECK(end.cpu_ms >= 1000);
		CHECK_INT(end.cpu_limit_s, 1);
	}
	stop_load(load, 2);
	sandbox_policy_free(p);

	p = sh_policy("exit 0");
	CHECK_INT(run(p, &end, NULL, NULL), 0);
	CHECK_INT(sandbox_exit_reason(&end).reason, SANDBOX_EXITED);
	CHECK(end.cpu_ms < 500);
	sandbox_policy_free(p);
}

/* The sweep removes empty groups of dead creators and nothing else. */
static void test_cgroup_sweep(void)
{
	char own[4096], dead[4096], *parent = NULL;
	struct sandbox_policy *p = sh_policy("sleep 5");
	struct sandbox_child c;
	struct sandbox_end end;
	pid_t gone = fork();

	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	if (!sandbox_features()->cgroup_pids) {
		printf("skip sweep: no pids cgroup\n");
		sandbox_policy_free(p);
		return;
	}
	/* Find our pids parent folder through a real spawn's group. */
	CHECK_INT(sandbox_spawn(p, &c), 0);
	if (c.cgroup) {
		FILE *f;
		char line[512];
		snprintf(own, sizeof(own), "/proc/%d/cgroup", (int)c.pid);
		f = fopen(own, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, ":pids:")) {
				line[strcspn(line, "\n")] = '\0';
				*strrchr(line, '/') = '\0';
				parent = strdup(strchr(strchr(line, ':') + 1, ':') + 1);
			}
		if (f)
			fclose(f);
	}
	sandbox_child_kill(&c);
	sandbox_child_wait(&c, 0, &end);
	sandbox_child_close(&c);
	CHECK(parent != NULL);
	if (parent) {
		snprintf(own, sizeof(own), "/sys/fs/cgroup/pids%s/%d-99999", parent, (int)getpid());
		snprintf(dead, sizeof(dead), "/sys/fs/cgroup/pids%s/%d-99999", parent, (int)gone);
		CHECK_INT(mkdir(own, 0755), 0);
		CHECK_INT(mkdir(dead, 0755), 0);
		CHECK(sandbox_cgroup_sweep() >= 1);
		CHECK_INT(access(dead, F_OK), -1);
		CHECK_INT(access(own, F_OK), 0);
		rmdir(own);
		rmdir(dead);
	}
	free(parent);
	sandbox_policy_free(p);
}

int main(void)
{
	if (!mkdtemp(agent_dir) || chmod(agent_dir, 0755) < 0) {
		perror("mkdtemp");
		return 1;
	}
	printf("%s\n", sandbox_features()->summary);
	test_true();
	test_protocol_socket();
	test_environment();
	test_posture();
	test_failed_steps();
	test_kill_tree();
	test_output_fds();
	test_oom();
	test_cpu_limit_under_load();
	test_cgroup_sweep();
	rmdir(agent_dir);
	return check_summary();
}
