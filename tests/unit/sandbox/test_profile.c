/* test_profile.c: seccomp profiles are parsed as their format says, refuse the never-allowed
 * calls, compile, and the compiled filter behaves: 32-bit argument compares (high bits can
 * neither smuggle a denied value in nor break an allowed one), clone3 -> ENOSYS, foreign
 * ABIs and anything unlisted kill the whole process. The filters are loaded in forked
 * children, never in the test itself. */
#include "check.h"
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/seccomp.h>
#include <unistd.h>

static void test_parse(void)
{
	struct sandbox_profile p;
	char err[256];
	const char *text = "# comment\n"
	                   "read\n"
	                   "\n"
	                   "socket a0==AF_UNIX   # trailing comment\n"
	                   "socket a0==AF_INET network\n"
	                   "clone a0&0x7e020000==0\n"
	                   "clone3 errno=ENOSYS\n"
	                   "foo a1&CLONE_NEWNS|CLONE_NEWPID==0 a2==3\n";

	CHECK_INT(sandbox__profile_parse(text, "t", &p, err, sizeof(err)), 0);
	CHECK_INT(p.len, 6);
	CHECK_STR(p.rules[0].name, "read");
	CHECK_INT(p.rules[0].ncond, 0);
	CHECK_INT(p.rules[1].cond[0].arg, 0);
	CHECK_INT(p.rules[1].cond[0].value, AF_UNIX);
	CHECK_INT(p.rules[1].cond[0].mask, 0xffffffffu);
	CHECK(!p.rules[1].network_only && p.rules[2].network_only);
	CHECK_INT(p.rules[3].cond[0].mask, 0x7e020000);
	CHECK_INT(p.rules[4].errno_value, ENOSYS);
	CHECK_INT(p.rules[5].ncond, 2);
	CHECK_INT(p.rules[5].cond[0].arg, 1);
	CHECK_INT(p.rules[5].cond[0].mask, 0x20020000);
	CHECK_INT(p.rules[5].cond[1].value, 3);
	sandbox__profile_free(&p);
}

static void expect_parse_error(const char *text, int rc, const char *needle)
{
	struct sandbox_profile p;
	char err[256] = "";

	CHECK_INT(sandbox__profile_parse(text, "t.txt", &p, err, sizeof(err)), rc);
	if (!strstr(err, needle)) {
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, needle);
		CHECK(!"error text");
	}
}

static void test_parse_errors(void)
{
	expect_parse_error("read\nwrite x\n", -EINVAL, "t.txt:2: bad token \"x\"");
	expect_parse_error("socket a0==AF_BOGUS\n", -EINVAL, "bad token");
	expect_parse_error("socket a9==1\n", -EINVAL, "bad token");
	expect_parse_error("clone3 errno=EWHAT\n", -EINVAL, "bad token");
	expect_parse_error("read\n\nptrace\n", -EPERM, "t.txt:3: syscall ptrace is never allowed");
	expect_parse_error("io_uring_setup a0==1\n", -EPERM, "never allowed");
	expect_parse_error("@include nothing\n", -ENOENT, "unknown built-in profile");
	expect_parse_error("@include\n", -EINVAL, "@include takes one");
}

static void test_builtins_compile(void)
{
	static const char *const names[] = {"default", "python"};

	for (size_t i = 0; i < 2; i++) {
		for (int net = 0; net < 2; net++) {
			const struct sock_fprog *prog, *again;
			char err[256] = "";

			CHECK_INT(
			    sandbox__seccomp_get(names[i], net, NULL, &prog, err, sizeof(err)), 0);
			CHECK(prog && prog->len > 10);
			/* Cached: the same program comes back. */
			CHECK_INT(
			    sandbox__seccomp_get(names[i], net, NULL, &again, err, sizeof(err)), 0);
			CHECK(prog == again);
		}
	}
	CHECK(sandbox__profile_builtin("default") != NULL);
	CHECK(sandbox__profile_builtin("nope") == NULL);
}

/* ---- behaviour of a compiled filter ---- */

enum act {
	SOCKET_INET_HIGH,
	SOCKET_UNIX_HIGH,
	SOCKET_INET,
	CLONE3,
	CLONE_NEWUSER_FLAG,
	I386_GETPID,
	X32_GETPID,
	UNLISTED,
	IOCTL_TIOCSTI,
	PERSONALITY_ODD
};

/* In a forked child: load the filter, do one act, exit 0 if the call returned (the errno in
 * the exit code for checks), or die by the filter. */
static int run_in_filter(const struct sock_fprog *prog, enum act act)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		long r = 0;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
			_exit(100);
		switch (act) {
		case SOCKET_INET_HIGH:
			r = syscall(SYS_socket, (1UL << 32) | AF_INET, SOCK_STREAM, 0);
			break;
		case SOCKET_UNIX_HIGH:
			r = syscall(SYS_socket, (1UL << 32) | AF_UNIX, SOCK_STREAM, 0);
			break;
		case SOCKET_INET:
			r = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
			break;
		case CLONE3:
			r = syscall(SYS_clone3, NULL, 0);
			_exit(r < 0 && errno == ENOSYS ? 38 : 101);
		case CLONE_NEWUSER_FLAG:
			r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
			break;
		case I386_GETPID:
			__asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");
			break;
		case X32_GETPID:
			r = syscall(0x40000000 | SYS_getpid);
			break;
		case UNLISTED:
			r = syscall(SYS_mount, "x", "y", "z", 0, 0);
			break;
		case IOCTL_TIOCSTI:
			r = syscall(SYS_ioctl, 0, 0x5412, "x");
			break;
		case PERSONALITY_ODD:
			r = syscall(SYS_personality, 0x0040000);
			break;
		}
		_exit(r < 0 ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	return status;
}

static void test_filter_behaviour(void)
{
	const struct sock_fprog *prog, *net;
	char err[256];

	CHECK_INT(sandbox__seccomp_get("default", false, NULL, &prog, err, sizeof(err)), 0);
	CHECK_INT(sandbox__seccomp_get("default", true, NULL, &net, err, sizeof(err)), 0);

	CHECK(WIFSIGNALED(run_in_filter(prog, SOCKET_INET_HIGH)));
	CHECK_INT(WTERMSIG(run_in_filter(prog, SOCKET_INET_HIGH)), SIGSYS);
	CHECK(WIFEXITED(run_in_filter(prog, SOCKET_UNIX_HIGH)));
	CHECK_INT(WEXITSTATUS(run_in_filter(prog, SOCKET_UNIX_HIGH)), 0);
	CHECK_INT(WTERMSIG(run_in_filter(prog, SOCKET_INET)), SIGSYS);
	CHECK(WIFEXITED(run_in_filter(net, SOCKET_INET)));
	CHECK_INT(WEXITSTATUS(run_in_filter(prog, CLONE3)), 38);
	CHECK_INT(WTERMSIG(run_in_filter(prog, CLONE_NEWUSER_FLAG)), SIGSYS);
	CHECK_INT(WTERMSIG(run_in_filter(prog, I386_GETPID)), SIGSYS);
	CHECK_INT(WTERMSIG(run_in_filter(prog, X32_GETPID)), SIGSYS);
	CHECK_INT(WTERMSIG(run_in_filter(prog, UNLISTED)), SIGSYS);
	CHECK_INT(WTERMSIG(run_in_filter(prog, IOCTL_TIOCSTI)), SIGSYS);
	CHECK_INT(WTERMSIG(run_in_filter(prog, PERSONALITY_ODD)), SIGSYS);
}

static void test_extra_syscalls(void)
{
	char *const extra[] = {"memfd_create", NULL};
	char *const bad[] = {"kcmp", NULL};
	const struct sock_fprog *prog;
	char err[256] = "";

	CHECK_INT(sandbox__seccomp_get("default", false, extra, &prog, err, sizeof(err)), 0);
	CHECK_INT(sandbox__seccomp_get("default", false, bad, &prog, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "kcmp is never allowed") != NULL);
}

int main(void)
{
	test_parse();
	test_parse_errors();
	test_builtins_compile();
	test_filter_behaviour();
	test_extra_syscalls();
	return check_summary();
}
