/* spawn.c: sandbox_spawn and the life of a sandboxed child (wait, kill, close).
 *
 * DESIGN. A daemon with a large address space pays milliseconds for every fork() (page
 * tables are copied). So the child is made like posix_spawn makes it: clone() with
 * CLONE_VM | CLONE_VFORK on a small stack of its own, which copies nothing; the parent
 * thread sleeps until the child has exec'd or exited. All the namespaces come with the same
 * clone (user, pid, mount, ipc, uts, and net unless the policy has network), so the program
 * is a direct child of the caller: its exit status arrives by wait4/pidfd as for any child.
 * Everything the child needs is prepared first (plan.c); while it runs the child only reads
 * that plan, and reports a failed step by writing (step, errno) into it before _exit(127).
 * With CLONE_VFORK the parent reads that report only after the child is gone, so shared
 * memory does what a close-on-exec pipe does elsewhere, at no cost. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's stack: the pipeline needs a few KiB; sanitizer builds need more. */
#define CHILD_STACK_SIZE (1024 * 1024)

struct spawn {
	const struct sandbox_policy *p;
	struct plan plan;
	bool *path_dirs;
	int procs_fds[2];
	int sock[2]; /* [0] host end, [1] the child's */
	int out[2];  /* pipe: [0] read end (host), [1] write end (child) */
	int err[2];
	bool root;
	uid_t host_uid;
	gid_t host_gid;
	struct sandbox_cgroup *cgroup;
};

static void child_reset(struct sandbox_child *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->pidfd = c->sock = c->out = c->err = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* A pipe for one output stream, unless the policy gave an fd for it. */
static int make_output(int given, int pipefd[2])
{
	if (given >= 0) {
		pipefd[0] = -1;
		pipefd[1] = given;
		return 0;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	return set_nonblock(pipefd[0]);
}

static int make_channels(struct spawn *s, struct sandbox_child *out)
{
	int rc = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sock) < 0 ||
	    set_nonblock(s->sock[0]) < 0)
		rc = sandbox__fail(out->message, sizeof(out->message), -errno, "socketpair", NULL);
	if (rc == 0 && (rc = make_output(s->p->out_fd, s->out)) < 0)
		sandbox__fail(out->message, sizeof(out->message), rc, "pipes", "stdout");
	if (rc == 0 && (rc = make_output(s->p->err_fd, s->err)) < 0)
		sandbox__fail(out->message, sizeof(out->message), rc, "pipes", "stderr");
	return rc;
}

static void choose_ids(struct spawn *s)
{
	const struct sandbox_policy *p = s->p;

	s->root = geteuid() == 0;
	if (s->root) {
		s->host_uid = p->host_ids_set ? p->host_uid : SANDBOX_ROOT_HOST_UID;
		s->host_gid = p->host_ids_set ? p->host_gid : SANDBOX_ROOT_HOST_GID;
	} else {
		s->host_uid = geteuid();
		s->host_gid = getegid();
	}
}

/* Everything before clone: checks, fds, cgroups and the plan. */
static int prepare(struct spawn *s, struct sandbox_child *out)
{
	char *msg = out->message;
	size_t len = sizeof(out->message);
	const struct sock_fprog *filter;
	int rc;

	sandbox__violations_watch();
	rc = sandbox__policy_validate(s->p, msg, len);
	if (rc == 0)
		rc = sandbox__seccomp_get(s->p->profile, s->p->network, s->p->extra_syscalls,
		                          &filter, msg, len);
	if (rc == 0)
		rc = sandbox__check_agent_dir(s->p, msg, len);
	if (rc == 0)
		rc = sandbox__check_paths(s->p, s->path_dirs, msg, len);
	if (rc == 0)
		rc = sandbox__cgroup_create(&s->p->limits, &s->cgroup, s->procs_fds, msg, len);
	if (rc == 0)
		rc = make_channels(s, out);
	if (rc < 0)
		return rc;
	choose_ids(s);
	sandbox__plan_build(s->p, &s->plan, s->path_dirs, s->host_uid, s->host_gid,
	                    s->procs_fds[0] >= 0);
	s->plan.filter = filter;
	s->plan.cgroup_fds[0] = s->procs_fds[0];
	s->plan.cgroup_fds[1] = s->procs_fds[1];
	s->plan.out_fd = s->out[1];
	s->plan.err_fd = s->err[1];
	s->plan.sock_fd = s->sock[1];
	return 0;
}

static int clone_flags(const struct sandbox_policy *p)
{
	return CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS |
	       CLONE_NEWIPC | CLONE_NEWUTS | (p->network ? 0 : CLONE_NEWNET) | SIGCHLD;
}

/* clone() itself. Signals stay blocked across it so that no handler of ours runs in the
 * child; the child resets them all before it unblocks. */
static int launch(struct spawn *s, struct sandbox_child *out)
{
	struct sandbox_saved_ids ids;
	const char *step;
	sigset_t all, old;
	char *stack;
	int rc, pidfd = -1;
	pid_t pid = -1;

	stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (stack == MAP_FAILED)
		return sandbox__fail(out->message, sizeof(out->message), -errno, "clone",
		                     "child stack");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	step = "host_ids";
	rc = sandbox__userns_switch(s->root, s->host_uid, s->host_gid, &ids);
	if (rc == 0) {
		step = "clone";
		pid = clone(sandbox__child_main, stack + CHILD_STACK_SIZE, clone_flags(s->p),
		            &s->plan, &pidfd);
		/* Only a failed clone leaves errno meaningful: a child shares our errno. */
		rc = pid < 0 ? -errno : 0;
	}
	sandbox__userns_restore(&ids);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, CHILD_STACK_SIZE);
	if (rc < 0)
		return sandbox__fail(out->message, sizeof(out->message), rc, step, NULL);
	out->pid = pid;
	out->pidfd = pidfd;
	return 0;
}

/* The child recorded a failed step and exited: reap it and say what failed. */
static int child_failed(struct spawn *s, struct sandbox_child *out)
{
	struct plan *plan = &s->plan;

	waitpid(out->pid, NULL, 0);
	close_fd(&out->pidfd);
	out->pid = -1;
	snprintf(out->failed_step, sizeof(out->failed_step), "%s", plan->fail_step);
	if (plan->fail_detail)
		return sandbox__fail(out->message, sizeof(out->message), -plan->fail_errno,
		                     plan->fail_step, "%s", plan->fail_detail);
	return sandbox__fail(out->message, sizeof(out->message), -plan->fail_errno, plan->fail_step,
	                     NULL);
}

static void release(struct spawn *s)
{
	free(s->path_dirs);
	close_fd(&s->procs_fds[0]);
	close_fd(&s->procs_fds[1]);
	close_fd(&s->sock[1]);
	/* Fds the policy lent stay open. */
	if (s->out[1] != s->p->out_fd)
		close_fd(&s->out[1]);
	if (s->err[1] != s->p->err_fd)
		close_fd(&s->err[1]);
	sandbox__plan_free(&s->plan);
}

/* The failed step's name from a message "STEP: ...". */
static void name_step(struct sandbox_child *out)
{
	if (!out->failed_step[0])
		snprintf(out->failed_step, sizeof(out->failed_step), "%.*s",
		         (int)strcspn(out->message, ":"), out->message);
}

static void fail_cleanup(struct spawn *s, struct sandbox_child *out)
{
	close_fd(&s->sock[0]);
	close_fd(&s->out[0]);
	close_fd(&s->err[0]);
	sandbox__cgroup_remove(s->cgroup);
	s->cgroup = NULL;
	name_step(out);
}

int sandbox_spawn(const struct sandbox_policy *p, struct sandbox_child *out)
{
	struct spawn s = {
	    .p = p,
	    .procs_fds = {-1, -1},
	    .sock = {-1, -1},
	    .out = {-1, -1},
	    .err = {-1, -1},
	};
	int rc;

	child_reset(out);
	s.path_dirs = sandbox__xcalloc(p->paths_len, sizeof(bool));
	rc = prepare(&s, out);
	if (rc == 0)
		rc = launch(&s, out);
	if (rc == 0 && s.plan.fail_step)
		rc = child_failed(&s, out);
	release(&s);
	if (rc < 0) {
		fail_cleanup(&s, out);
		return rc;
	}
	if (out->pidfd >= 0)
		set_nonblock(out->pidfd);
	out->sock = s.sock[0];
	out->out = s.out[0];
	out->err = s.err[0];
	out->cgroup = s.cgroup;
	out->cpu_limit_s = p->limits.cpu_seconds;
	return 0;
}

int sandbox_child_kill(const struct sandbox_child *c)
{
	if (c->pid <= 0 || c->reaped)
		return -ESRCH;
	if (c->pidfd >= 0)
		return syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) < 0 ? -errno : 0;
	return kill(c->pid, SIGKILL) < 0 ? -errno : 0;
}

/* The kernel's RLIMIT_CPU clock of a process: its CPUCLOCK_PROF posix clock (user + system
 * time as the scheduler tick accounts it, unscaled), addressed by pid as the kernel encodes
 * it (include/linux/posix-timers.h: ~pid << 3 | CPUCLOCK_PROF). The kernel compares exactly
 * this clock with the limit and sends SIGKILL once it is >= the limit. wait4's rusage and
 * /proc/PID/stat cannot stand in for it: both scale the tick counts to the precise runtime,
 * which stays far behind the ticks when the CPU is shared (killed at a 1 s limit on this
 * 2-core machine with two busy processes beside it, 40 runs: PROF 1.000-1.004 s, rusage
 * down to 0.80 s, stat to 0.79 s). Readable until the process is reaped (a zombie keeps its
 * threads' times).
 * Returns the time in ms, or -1. */
#define PROCESS_PROF_CLOCK(pid) ((clockid_t)((~(unsigned)(pid)) << 3) | 0 /* CPUCLOCK_PROF */)

static int64_t limit_clock_ms(pid_t pid)
{
	struct timespec t;

	if (clock_gettime(PROCESS_PROF_CLOCK(pid), &t) < 0)
		return -1;
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int sandbox_child_wait(struct sandbox_child *c, int options, struct sandbox_end *end)
{
	struct rusage ru;
	siginfo_t si;
	int64_t limit_ms;
	uint64_t cpu_ms;
	int status;
	pid_t r;

	if (c->pid <= 0 || c->reaped)
		return -ECHILD;
	/* First wait without reaping, so that the exited program's CPU-limit clock can still be
	 * read; then reap (which no longer blocks). */
	memset(&si, 0, sizeof(si));
	do
		r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT | (options & WNOHANG));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (si.si_pid == 0)
		return 0; /* WNOHANG: still running */
	limit_ms = limit_clock_ms(c->pid);
	do
		r = wait4(c->pid, &status, 0, &ru);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -errno : -ECHILD;
	c->reaped = true;
	/* cpu_ms is the larger of the two readings of user + system time: the precise one
	 * (rusage) and the kernel's limit clock, so that a program the CPU limit killed always
	 * shows at least its budget (sandbox_exit_reason's cpu_limit rule). */
	cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	if (limit_ms > 0 && (uint64_t)limit_ms > cpu_ms)
		cpu_ms = (uint64_t)limit_ms;
	*end = (struct sandbox_end){
	    .status = status,
	    .oom_kills = sandbox__cgroup_oom_kills(c->cgroup),
	    .cpu_ms = cpu_ms,
	    .cpu_limit_s = c->cpu_limit_s,
	    .host_kill = SANDBOX_HOST_NONE,
	    .syscall = -1,
	};
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		end->syscall = sandbox__violation_syscall(c->pid);
	return 1;
}

void sandbox_child_close(struct sandbox_child *c)
{
	struct sandbox_end end;

	if (c->pid > 0 && !c->reaped) {
		sandbox_child_kill(c);
		sandbox_child_wait(c, 0, &end);
	}
	close_fd(&c->pidfd);
	close_fd(&c->sock);
	close_fd(&c->out);
	close_fd(&c->err);
	sandbox__cgroup_remove(c->cgroup);
	c->cgroup = NULL;
}
