/* violation.c: names the syscall that got a program killed by seccomp, where the kernel's
 * record of the kill can be read. SECCOMP_RET_KILL_* actions are audited; with no audit
 * daemon attached the record lands in the kernel log as
 *   audit: type=1326 ... pid=HOSTPID ... arch=c000003e syscall=NR ...
 * Reading /dev/kmsg needs root (or kernel.dmesg_restrict=0), so this is best effort: the
 * process keeps one fd on the log, opened at its end by the first spawn and read
 * incrementally when a program dies of SIGSYS; the last records seen are kept by pid.
 * Anything missing (no permission, auditd takes the records, rate limits) means "unknown",
 * never a guess. docs/sandbox.md explains why not a seccomp listener instead. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECENT 64
/* kauditd hands records to the log from its own thread: allow it this long. */
#define RECORD_WAIT_MS 5

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int kmsg_fd = -2; /* -2: not tried yet, -1: unavailable */
static struct {
	pid_t pid;
	int nr;
} recent[RECENT];
static unsigned recent_next;

void sandbox__violations_watch(void)
{
	pthread_mutex_lock(&lock);
	if (kmsg_fd == -2) {
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (kmsg_fd >= 0 && lseek(kmsg_fd, 0, SEEK_END) < 0) {
			close(kmsg_fd);
			kmsg_fd = -1;
		}
	}
	pthread_mutex_unlock(&lock);
}

/* The number after " key=" in rec, in the given base, or -1. */
static long field(const char *rec, const char *key, int base)
{
	const char *at = strstr(rec, key);
	char *end;
	long v;

	if (!at)
		return -1;
	v = strtol(at + strlen(key), &end, base);
	return end == at + strlen(key) ? -1 : v;
}

/* Keeps native-ABI records only: a foreign-ABI kill has no name in our tables and needs
 * none (the architecture check killed it). */
static void parse(const char *rec)
{
	long pid, arch, nr;

	if (!strstr(rec, "type=1326"))
		return;
	pid = field(rec, " pid=", 10);
	arch = field(rec, " arch=", 16);
	nr = field(rec, " syscall=", 10);
	if (pid <= 0 || nr < 0 || arch != AUDIT_ARCH_X86_64)
		return;
	recent[recent_next % RECENT].pid = (pid_t)pid;
	recent[recent_next % RECENT].nr = (int)nr;
	recent_next++;
}

static void drain(void)
{
	char rec[2048];

	for (;;) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE)
			continue; /* records overwritten before we read them */
		if (n <= 0)
			return;
		rec[n] = '\0';
		parse(rec);
	}
}

static int lookup(pid_t pid)
{
	for (unsigned i = 0; i < RECENT; i++)
		if (recent[i].pid == pid)
			return recent[i].nr;
	return -1;
}

int sandbox__violation_syscall(pid_t pid)
{
	struct timespec start, now;
	int nr = -1;

	pthread_mutex_lock(&lock);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (kmsg_fd >= 0) {
		struct pollfd pfd = {kmsg_fd, POLLIN, 0};
		long waited;

		drain();
		nr = lookup(pid);
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (nr >= 0 || waited >= RECORD_WAIT_MS)
			break;
		poll(&pfd, 1, (int)(RECORD_WAIT_MS - waited));
	}
	pthread_mutex_unlock(&lock);
	return nr;
}
