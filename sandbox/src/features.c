/* features.c: sandbox_features(), what this machine and process give the sandbox, probed
 * once so that the daemon can say at start-up what it has and what it lacks. */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sandbox_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static int probe_child(void *arg)
{
	(void)arg;
	_exit(0);
}

/* A child in a new user namespace that exits at once. */
static bool user_namespaces_work(void)
{
	const size_t size = 64 * 1024;
	char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	int status = -1;
	pid_t pid;

	if (stack == MAP_FAILED)
		return false;
	pid = clone(probe_child, stack + size, CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | SIGCHLD,
	            NULL);
	if (pid > 0)
		waitpid(pid, &status, 0);
	munmap(stack, size);
	return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void probe(void)
{
	features.root = geteuid() == 0;
	features.user_namespaces = user_namespaces_work();
	features.cgroup_memory = sandbox__cgroup_available("memory");
	features.cgroup_pids = sandbox__cgroup_available("pids");
	snprintf(features.summary, sizeof(features.summary),
	         "user namespaces: %s; cgroup memory: %s; cgroup pids: %s; running as %s",
	         features.user_namespaces ? "yes" : "NO (sandbox unavailable)",
	         features.cgroup_memory ? "yes"
	                                : "no (RLIMIT_AS/RLIMIT_DATA instead, no oom reason)",
	         features.cgroup_pids ? "yes" : "no (RLIMIT_NPROC only)",
	         features.root ? "root (programs run as the policy's host ids)"
	                       : "an ordinary user (programs run as this user)");
}

const struct sandbox_features *sandbox_features(void)
{
	pthread_once(&features_once, probe);
	return &features;
}
