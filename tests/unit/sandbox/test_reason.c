/* test_reason.c: the exit-reason table. Every row is one way a program can end and the one
 * reason it must get. */
#include "check.h"
#include "sandbox.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* Wait statuses as the kernel builds them. */
#define EXITED(code) ((code) << 8)
#define SIGNALED(sig) (sig)

struct row {
	const char *what;
	struct sandbox_end end;
	enum sandbox_reason reason;
	int code, signal;
};

static const struct row rows[] = {
    {"exit 0", {EXITED(0), 0, 10, 60, SANDBOX_HOST_NONE, -1}, SANDBOX_EXITED, 0, 0},
    {"exit 3", {EXITED(3), 0, 10, 60, SANDBOX_HOST_NONE, -1}, SANDBOX_EXITED, 3, 0},
    {"seccomp kill",
     {SIGNALED(SIGSYS), 0, 10, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_VIOLATION,
     -1,
     SIGSYS},
    {"violation beats a host kill",
     {SIGNALED(SIGSYS), 0, 0, 60, SANDBOX_HOST_TIMEOUT, -1},
     SANDBOX_VIOLATION,
     -1,
     SIGSYS},
    {"oom", {SIGNALED(SIGKILL), 1, 10, 60, SANDBOX_HOST_NONE, -1}, SANDBOX_OOM, -1, SIGKILL},
    {"oom beats timeout",
     {SIGNALED(SIGKILL), 2, 10, 60, SANDBOX_HOST_TIMEOUT, -1},
     SANDBOX_OOM,
     -1,
     SIGKILL},
    {"oom count but exited", {EXITED(0), 1, 10, 60, SANDBOX_HOST_NONE, -1}, SANDBOX_EXITED, 0, 0},
    {"timeout",
     {SIGNALED(SIGKILL), 0, 10, 60, SANDBOX_HOST_TIMEOUT, -1},
     SANDBOX_TIMEOUT,
     -1,
     SIGKILL},
    {"timeout that raced an exit",
     {EXITED(0), 0, 10, 60, SANDBOX_HOST_TIMEOUT, -1},
     SANDBOX_TIMEOUT,
     0,
     0},
    {"output limit",
     {SIGNALED(SIGKILL), 0, 10, 60, SANDBOX_HOST_OUTPUT_LIMIT, -1},
     SANDBOX_OUTPUT_LIMIT,
     -1,
     SIGKILL},
    {"protocol error",
     {SIGNALED(SIGKILL), 0, 10, 60, SANDBOX_HOST_PROTOCOL_ERROR, -1},
     SANDBOX_PROTOCOL_ERROR,
     -1,
     SIGKILL},
    {"other host kill",
     {SIGNALED(SIGKILL), 0, 10, 60, SANDBOX_HOST_OTHER, -1},
     SANDBOX_KILLED,
     -1,
     SIGKILL},
    {"SIGXCPU",
     {SIGNALED(SIGXCPU), 0, 60000, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_CPU_LIMIT,
     -1,
     SIGXCPU},
    {"SIGKILL at the hard CPU limit",
     {SIGNALED(SIGKILL), 0, 61000, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_CPU_LIMIT,
     -1,
     SIGKILL},
    {"SIGKILL at 0.9 of the CPU limit (the limit clock is tick-sampled)",
     {SIGNALED(SIGKILL), 0, 900, 1, SANDBOX_HOST_NONE, -1},
     SANDBOX_CPU_LIMIT,
     -1,
     SIGKILL},
    {"SIGKILL below the CPU limit",
     {SIGNALED(SIGKILL), 0, 1000, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_KILLED,
     -1,
     SIGKILL},
    {"SIGKILL without a CPU limit",
     {SIGNALED(SIGKILL), 0, 99000, 0, SANDBOX_HOST_NONE, -1},
     SANDBOX_KILLED,
     -1,
     SIGKILL},
    {"segfault",
     {SIGNALED(SIGSEGV), 0, 10, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_KILLED,
     -1,
     SIGSEGV},
    {"abort",
     {SIGNALED(SIGABRT) | 0x80, 0, 10, 60, SANDBOX_HOST_NONE, -1},
     SANDBOX_KILLED,
     -1,
     SIGABRT},
};

static void test_rows(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sandbox_exit e = sandbox_exit_reason(&rows[i].end);

		if (e.reason != rows[i].reason || e.code != rows[i].code ||
		    e.signal != rows[i].signal)
			fprintf(stderr, "row \"%s\": got %s code %d signal %d\n", rows[i].what,
			        sandbox_exit_reason_name(e.reason), e.code, e.signal);
		CHECK_INT(e.reason, rows[i].reason);
		CHECK_INT(e.code, rows[i].code);
		CHECK_INT(e.signal, rows[i].signal);
		CHECK_INT(e.syscall, -1);
	}
}

/* The denied syscall, when the library could learn it, goes with a violation only. */
static void test_syscall(void)
{
	struct sandbox_end violation = {SIGNALED(SIGSYS), 0, 10, 60, SANDBOX_HOST_NONE, 101};
	struct sandbox_end killed = {SIGNALED(SIGKILL), 0, 10, 60, SANDBOX_HOST_NONE, 101};
	char name[32];

	CHECK_INT(sandbox_exit_reason(&violation).syscall, 101);
	CHECK_INT(sandbox_exit_reason(&killed).syscall, -1);
	CHECK_INT(sandbox_syscall_name(101, name, sizeof(name)), 0);
	CHECK_STR(name, "ptrace");
	CHECK_INT(sandbox_syscall_name(-1, name, sizeof(name)), -ENOENT);
}

static void test_names(void)
{
	static const char *const names[] = {
	    "exited",       "sandbox_violation", "oom",   "cpu_limit", "timeout",
	    "output_limit", "protocol_error",    "killed"};

	for (int r = SANDBOX_EXITED; r <= SANDBOX_KILLED; r++)
		CHECK_STR(sandbox_exit_reason_name((enum sandbox_reason)r), names[r]);
	CHECK_STR(sandbox_exit_reason_name((enum sandbox_reason)99), "unknown");
}

int main(void)
{
	test_rows();
	test_syscall();
	test_names();
	return check_summary();
}
