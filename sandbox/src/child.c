/* child.c: the sandbox pipeline, run by the child between clone() and execve(). One ordered
 * table of named steps (bubblewrap style); each checks its calls and reads back its effect
 * where it can. The first failure records (step, detail, errno) in the plan, which the
 * parent shares until exec, and the child exits with 127: nothing is skipped or worked
 * around. docs/sandbox.md gives the reason for every step and for the order.
 *
 * The child runs on its own stack in the parent's memory (CLONE_VM | CLONE_VFORK; the
 * parent sleeps until exec or exit). It must not allocate, take locks or touch the parent's
 * state: it only reads the plan, which the parent prepared. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Signal handlers of the daemon would run in our shared memory: every signal goes back to
 * its default (they stay blocked, as the parent blocked them, until the mask step). */
static int step_signals(struct plan *plan)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	(void)plan;
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for glibc's internal ones */
	return 0;
}

/* Joins the memory and pids groups through fds the parent opened, before anything else can
 * allocate or fork: "0" means the writing process. */
static int step_cgroup(struct plan *plan)
{
	for (int i = 0; i < 2; i++)
		if (plan->cgroup_fds[i] >= 0 && write(plan->cgroup_fds[i], "0", 1) != 1)
			return -errno;
	return 0;
}

static int step_user_namespace(struct plan *plan)
{
	return sandbox__userns_enter(plan);
}

/* After the id change (which would reset it). The parent is asleep in clone until exec, so
 * it cannot have died before this point without killing us too... except by SIGKILL, which
 * the read-back of our parent cannot detect across the pid namespace; see docs. */
static int step_pdeathsig(struct plan *plan)
{
	int sig = 0;

	(void)plan;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) < 0)
		return -errno;
	return sig == SIGKILL ? 0 : -EPERM;
}

/* Now that we are in our cgroups, a cgroup namespace hides the host's cgroup layout. */
static int step_cgroup_namespace(struct plan *plan)
{
	(void)plan;
	return unshare(CLONE_NEWCGROUP) < 0 ? -errno : 0;
}

static int step_hostname(struct plan *plan)
{
	return sethostname(plan->hostname, strlen(plan->hostname)) < 0 ? -errno : 0;
}

static int step_new_root(struct plan *plan)
{
	return sandbox__mounts_new_root(plan);
}

static int step_mounts(struct plan *plan)
{
	return sandbox__mounts_apply(plan);
}

static int step_old_root(struct plan *plan)
{
	return sandbox__mounts_old_root(plan);
}

static int step_cwd(struct plan *plan)
{
	return chdir(plan->cwd) < 0 ? -errno : 0;
}

/* Moves the pipes and the socket to 1, 2, 3 and /dev/null to 0. Each is first dup'ed above
 * 3, so that a source fd that already is 0..3 cannot be overwritten before it is used. */
static int step_stdio(struct plan *plan)
{
	int src[4] = {-1, plan->out_fd, plan->err_fd, plan->sock_fd};

	plan->fail_detail = "/dev/null";
	src[0] = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (src[0] < 0)
		return -errno;
	plan->fail_detail = "dup";
	for (int i = 0; i < 4; i++) {
		src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 4);
		if (src[i] < 0)
			return -errno;
	}
	for (int i = 0; i < 4; i++)
		if (dup2(src[i], i) < 0) /* dup2 clears close-on-exec */
			return -errno;
	plan->fail_detail = NULL;
	return 0;
}

static int step_close_fds(struct plan *plan)
{
	(void)plan;
	if (close_range(4, ~0U, 0) < 0)
		return -errno;
	return fcntl(4, F_GETFD) < 0 && errno == EBADF ? 0 : -EPERM;
}

static int step_setsid(struct plan *plan)
{
	(void)plan;
	if (setsid() < 0)
		return -errno;
	return getsid(0) == getpid() ? 0 : -EPERM;
}

static int step_rlimits(struct plan *plan)
{
	return sandbox__limits_apply(plan);
}

static int step_capabilities(struct plan *plan)
{
	return sandbox__privileges_drop(plan);
}

static int step_no_new_privs(struct plan *plan)
{
	return sandbox__no_new_privs(plan);
}

/* The program starts with nothing blocked. Before the filter: rt_sigprocmask need not be
 * in it. */
static int step_signal_mask(struct plan *plan)
{
	sigset_t none;

	(void)plan;
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? -errno : 0;
}

/* Last before exec, so that none of the steps above needs to be in any profile. No read-back:
 * the filter may not allow prctl(PR_GET_SECCOMP); the kernel's 0 is the proof. */
static int step_seccomp(struct plan *plan)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, plan->filter) < 0)
		return -errno;
	return 0;
}

/* Tries each candidate like execvp; the error kept is EACCES if one said so, else the
 * last. */
static int step_exec(struct plan *plan)
{
	int rc = -ENOENT;

	for (int i = 0; plan->exec_paths[i]; i++) {
		execve(plan->exec_paths[i], plan->argv, plan->envp);
		if (rc != -EACCES)
			rc = -errno;
	}
	plan->fail_detail = plan->argv[0];
	return rc;
}

struct step {
	const char *name;
	int (*run)(struct plan *plan);
};

static const struct step steps[] = {
    {"signals", step_signals},
    {"cgroup", step_cgroup},
    {"user_namespace", step_user_namespace},
    {"pdeathsig", step_pdeathsig},
    {"cgroup_namespace", step_cgroup_namespace},
    {"hostname", step_hostname},
    {"new_root", step_new_root},
    {"mounts", step_mounts},
    {"old_root", step_old_root},
    {"cwd", step_cwd},
    {"stdio", step_stdio},
    {"close_fds", step_close_fds},
    {"setsid", step_setsid},
    {"rlimits", step_rlimits},
    {"capabilities", step_capabilities},
    {"no_new_privs", step_no_new_privs},
    {"signal_mask", step_signal_mask},
    {"seccomp", step_seccomp},
    {"exec", step_exec},
};

int sandbox__child_main(void *arg)
{
	struct plan *plan = arg;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc;

		plan->fail_detail = NULL;
		rc = steps[i].run(plan);
		if (rc < 0) {
			/* A step may have named a finer one (a mount's "mount /agent"). */
			if (!plan->fail_step)
				plan->fail_step = steps[i].name;
			plan->fail_errno = -rc;
			break;
		}
	}
	_exit(127);
}
