/* reason.c: why a sandboxed program ended, as exactly one reason. The inputs are what the
 * kernel says (wait status, the cgroup's OOM-kill counter, the CPU time used) and what the
 * host decided (its own kill reason); the rules and their order are in sandbox.h. */
#include "internal.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static const char *const reason_names[] = {
    [SANDBOX_EXITED] = "exited",
    [SANDBOX_VIOLATION] = "sandbox_violation",
    [SANDBOX_OOM] = "oom",
    [SANDBOX_CPU_LIMIT] = "cpu_limit",
    [SANDBOX_TIMEOUT] = "timeout",
    [SANDBOX_OUTPUT_LIMIT] = "output_limit",
    [SANDBOX_PROTOCOL_ERROR] = "protocol_error",
    [SANDBOX_KILLED] = "killed",
};

const char *sandbox_exit_reason_name(enum sandbox_reason reason)
{
	if ((unsigned)reason >= sizeof(reason_names) / sizeof(reason_names[0]))
		return "unknown";
	return reason_names[reason];
}

static enum sandbox_reason host_reason(enum sandbox_host_kill kill)
{
	switch (kill) {
	case SANDBOX_HOST_TIMEOUT:
		return SANDBOX_TIMEOUT;
	case SANDBOX_HOST_OUTPUT_LIMIT:
		return SANDBOX_OUTPUT_LIMIT;
	case SANDBOX_HOST_PROTOCOL_ERROR:
		return SANDBOX_PROTOCOL_ERROR;
	default:
		return SANDBOX_KILLED;
	}
}

/* RLIMIT_CPU's SIGKILL (soft = hard, see limits.c) is the CPU limit's when the program used
 * its budget. The kernel sends it when its own limit clock (the tick-accounted user + system
 * time) reaches the limit; sandbox_child_wait reads that clock before reaping and puts the
 * larger of it and wait4's precise time into cpu_ms, so a program the limit killed has
 * cpu_ms >= the budget. (wait4's time alone fell to 0.70-0.80 s at a 1 s limit on a busy
 * CPU: 1 kill in 10 to 20 was reported killed with the 3/4 threshold.) The threshold stays
 * only as a tolerance for a kernel whose limit clock could not be read. A SIGKILL from elsewhere (the OOM killer, the host) is told apart
 * before this rule. */
static bool cpu_limit_hit(const struct sandbox_end *end, int sig)
{
	if (sig == SIGXCPU)
		return true;
	return sig == SIGKILL && end->cpu_limit_s && end->cpu_ms * 4 >= end->cpu_limit_s * 3000;
}

struct sandbox_exit sandbox_exit_reason(const struct sandbox_end *end)
{
	struct sandbox_exit e = {.reason = SANDBOX_KILLED, .code = -1, .signal = 0, .syscall = -1};
	int sig = WIFSIGNALED(end->status) ? WTERMSIG(end->status) : 0;

	if (WIFEXITED(end->status))
		e.code = WEXITSTATUS(end->status);
	e.signal = sig;
	if (sig == SIGSYS) {
		e.reason = SANDBOX_VIOLATION;
		e.syscall = end->syscall;
	} else if (sig == SIGKILL && end->oom_kills > 0)
		e.reason = SANDBOX_OOM;
	else if (end->host_kill != SANDBOX_HOST_NONE)
		e.reason = host_reason(end->host_kill);
	else if (cpu_limit_hit(end, sig))
		e.reason = SANDBOX_CPU_LIMIT;
	else if (WIFEXITED(end->status))
		e.reason = SANDBOX_EXITED;
	return e;
}

int sandbox_syscall_name(int nr, char *buf, size_t len)
{
	char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;

	if (!name)
		return -ENOENT;
	snprintf(buf, len, "%s", name);
	free(name);
	return 0;
}
