/* try-syscall NAME...: performs one raw system call per NAME and prints its result, or dies
 * from the sandbox's SIGSYS. Arguments are chosen so that, outside a sandbox, each call either
 * succeeds harmlessly or fails on a bad fd/pointer/path (EBADF, EFAULT, ENOENT, EINVAL): the
 * difference between "the kernel looked at it" and "the filter stopped it" is what tests see. */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A pointer the kernel refuses with EFAULT. */
#define BAD_PTR ((void *)1)
/* A path that exists nowhere, for calls that resolve a path first. */
#define NO_PATH "/nonexistent-ahsbx-probe"

struct try_call {
	const char *name;
	long (*run)(void);
};

static long try_ptrace(void)
{
	return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
}

static long try_process_vm_readv(void)
{
	char src[8] = "secret", dst[8];
	struct iovec local = {dst, sizeof(dst)}, remote = {src, sizeof(src)};

	return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
}

static long try_process_vm_writev(void)
{
	char src[8] = "payload", dst[8];
	struct iovec local = {src, sizeof(src)}, remote = {dst, sizeof(dst)};

	return syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0);
}

static long try_pidfd_getfd(void)
{
	return syscall(SYS_pidfd_getfd, -1, 0, 0);
}

static long try_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 1, 1);
}

static long try_mount(void)
{
	return syscall(SYS_mount, "none", NO_PATH, "tmpfs", 0, NULL);
}

static long try_umount2(void)
{
	return syscall(SYS_umount2, NO_PATH, 0);
}

static long try_pivot_root(void)
{
	return syscall(SYS_pivot_root, NO_PATH, NO_PATH);
}

static long try_chroot(void)
{
	return syscall(SYS_chroot, NO_PATH);
}

static long try_unshare(void)
{
	return syscall(SYS_unshare, CLONE_NEWUSER);
}

static long try_unshare_mount(void)
{
	return syscall(SYS_unshare, CLONE_NEWNS);
}

static long try_setns(void)
{
	return syscall(SYS_setns, -1, 0);
}

/* A fork-like raw clone with FLAGS; the child leaves at once, the parent reaps it. */
static long clone_with(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid > 0 ? 0 : pid;
}

static long try_clone_newuser(void)
{
	return clone_with(CLONE_NEWUSER);
}

static long try_clone_newns(void)
{
	return clone_with(CLONE_NEWNS);
}

static long try_clone_newnet(void)
{
	return clone_with(CLONE_NEWNET);
}

static long try_clone_newpid(void)
{
	return clone_with(CLONE_NEWPID);
}

static long try_clone_plain(void)
{
	return clone_with(0);
}

static long try_clone3(void)
{
	return syscall(SYS_clone3, NULL, (size_t)88);
}

static long try_keyctl(void)
{
	return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
}

static long try_add_key(void)
{
	return syscall(SYS_add_key, "user", "ahsbx-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
}

static long try_request_key(void)
{
	return syscall(SYS_request_key, "user", "ahsbx-probe-none", NULL, 0);
}

static long try_bpf(void)
{
	return syscall(SYS_bpf, 9999, NULL, 0);
}

static long try_perf_event_open(void)
{
	return syscall(SYS_perf_event_open, BAD_PTR, 0, -1, -1, 0);
}

static long try_userfaultfd(void)
{
	return syscall(SYS_userfaultfd, O_CLOEXEC);
}

static long try_kexec_load(void)
{
	return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
}

static long try_kexec_file_load(void)
{
	return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0);
}

static long try_init_module(void)
{
	return syscall(SYS_init_module, BAD_PTR, 16, "");
}

static long try_finit_module(void)
{
	return syscall(SYS_finit_module, -1, "", 0);
}

static long try_delete_module(void)
{
	return syscall(SYS_delete_module, "ahsbx_probe_none", O_NONBLOCK);
}

static long try_reboot(void)
{
	return syscall(SYS_reboot, 0xdead, 0xbeef, 0, NULL);
}

static long try_swapon(void)
{
	return syscall(SYS_swapon, NO_PATH, 0);
}

static long try_swapoff(void)
{
	return syscall(SYS_swapoff, NO_PATH);
}

static long try_acct(void)
{
	return syscall(SYS_acct, NO_PATH);
}

static long try_settimeofday(void)
{
	return syscall(SYS_settimeofday, BAD_PTR, NULL);
}

static long try_clock_settime(void)
{
	return syscall(SYS_clock_settime, CLOCK_REALTIME, BAD_PTR);
}

static long try_iopl(void)
{
	return syscall(SYS_iopl, 4);
}

static long try_ioperm(void)
{
	return syscall(SYS_ioperm, 0x10000UL, 8UL, 1);
}

static long try_open_by_handle_at(void)
{
	return syscall(SYS_open_by_handle_at, -1, BAD_PTR, O_RDONLY);
}

static long try_personality(void)
{
	return syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE);
}

static long try_personality_exec(void)
{
	return syscall(SYS_personality, PER_LINUX | READ_IMPLIES_EXEC);
}

static long try_io_uring_setup(void)
{
	struct io_uring_params params;

	memset(&params, 0, sizeof(params));
	return syscall(SYS_io_uring_setup, 1, &params);
}

static long try_io_uring_enter(void)
{
	return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
}

static long try_io_uring_register(void)
{
	return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
}

/* The kernel reads a socket family as int: 0x100000002 is AF_INET to it. A filter comparing
 * all 64 bits against a denylist would let it through. */
static long try_socket_hibit_inet(void)
{
	return syscall(SYS_socket, 0x100000002UL, (unsigned long)SOCK_STREAM, 0UL);
}

static long try_socket_hibit_inet6(void)
{
	return syscall(SYS_socket, 0x10000000aUL, (unsigned long)SOCK_DGRAM, 0UL);
}

static long try_socket_hibit_netlink(void)
{
	return syscall(SYS_socket, 0xffffffff00000010UL, (unsigned long)SOCK_RAW, 0UL);
}

static long try_ioctl_tiocsti(void)
{
	char c = 'x';

	return syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, &c);
}

/* The kernel reads an ioctl request as unsigned int (CVE-2019-10063 in flatpak). */
static long try_ioctl_tiocsti_hibit(void)
{
	char c = 'x';

	return syscall(SYS_ioctl, -1, (0x123UL << 32) | (unsigned long)TIOCSTI, &c);
}

static long try_ioctl_tioclinux(void)
{
	char c = 6;

	return syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX, &c);
}

static long try_fsopen(void)
{
	return syscall(SYS_fsopen, "tmpfs", 0);
}

static long try_open_tree(void)
{
	return syscall(SYS_open_tree, AT_FDCWD, NO_PATH, 0);
}

static long try_move_mount(void)
{
	return syscall(SYS_move_mount, -1, "", -1, "", 0);
}

static long try_syslog(void)
{
	return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
}

static long try_modify_ldt(void)
{
	char buf[16];

	return syscall(SYS_modify_ldt, 0, buf, sizeof(buf));
}

/* Control: an ordinary call every profile allows, so a test can tell the probe runs. */
static long try_getpid(void)
{
	return syscall(SYS_getpid);
}

static const struct try_call calls[] = {
    {"ptrace", try_ptrace},
    {"process_vm_readv", try_process_vm_readv},
    {"process_vm_writev", try_process_vm_writev},
    {"pidfd_getfd", try_pidfd_getfd},
    {"kcmp", try_kcmp},
    {"mount", try_mount},
    {"umount2", try_umount2},
    {"pivot_root", try_pivot_root},
    {"chroot", try_chroot},
    {"unshare", try_unshare},
    {"unshare-mount", try_unshare_mount},
    {"setns", try_setns},
    {"clone-newuser", try_clone_newuser},
    {"clone-newns", try_clone_newns},
    {"clone-newnet", try_clone_newnet},
    {"clone-newpid", try_clone_newpid},
    {"clone-plain", try_clone_plain},
    {"clone3", try_clone3},
    {"keyctl", try_keyctl},
    {"add_key", try_add_key},
    {"request_key", try_request_key},
    {"bpf", try_bpf},
    {"perf_event_open", try_perf_event_open},
    {"userfaultfd", try_userfaultfd},
    {"kexec_load", try_kexec_load},
    {"kexec_file_load", try_kexec_file_load},
    {"init_module", try_init_module},
    {"finit_module", try_finit_module},
    {"delete_module", try_delete_module},
    {"reboot", try_reboot},
    {"swapon", try_swapon},
    {"swapoff", try_swapoff},
    {"acct", try_acct},
    {"settimeofday", try_settimeofday},
    {"clock_settime", try_clock_settime},
    {"iopl", try_iopl},
    {"ioperm", try_ioperm},
    {"open_by_handle_at", try_open_by_handle_at},
    {"personality", try_personality},
    {"personality-exec", try_personality_exec},
    {"io_uring_setup", try_io_uring_setup},
    {"io_uring_enter", try_io_uring_enter},
    {"io_uring_register", try_io_uring_register},
    {"socket-hibit-inet", try_socket_hibit_inet},
    {"socket-hibit-inet6", try_socket_hibit_inet6},
    {"socket-hibit-netlink", try_socket_hibit_netlink},
    {"ioctl-tiocsti", try_ioctl_tiocsti},
    {"ioctl-tiocsti-hibit", try_ioctl_tiocsti_hibit},
    {"ioctl-tioclinux", try_ioctl_tioclinux},
    {"fsopen", try_fsopen},
    {"open_tree", try_open_tree},
    {"move_mount", try_move_mount},
    {"syslog", try_syslog},
    {"modify_ldt", try_modify_ldt},
    {"getpid", try_getpid},
};

int main(int argc, char **argv)
{
	probe_init();
	if (argc < 2) {
		fprintf(stderr, "usage: try-syscall NAME... | --list\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const struct try_call *call = NULL;

		if (strcmp(argv[i], "--list") == 0) {
			for (size_t j = 0; j < sizeof(calls) / sizeof(calls[0]); j++)
				puts(calls[j].name);
			continue;
		}
		for (size_t j = 0; j < sizeof(calls) / sizeof(calls[0]); j++)
			if (strcmp(calls[j].name, argv[i]) == 0)
				call = &calls[j];
		if (!call) {
			fprintf(stderr, "try-syscall: unknown call %s\n", argv[i]);
			return 2;
		}
		/* Announced first, so a kill is pinned to this call even when the sandbox
		 * cannot name the syscall that tripped it. */
		printf("calling %s\n", call->name);
		fflush(stdout);
		errno = 0;
		probe_report(call->name, call->run());
	}
	return 0;
}
