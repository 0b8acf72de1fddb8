/* cgroup.c: one memory and one pids cgroup per sandbox, where the kernel lets us make them.
 * This machine has cgroup v1 `memory` and `pids` hierarchies; each sandbox gets
 * <hierarchy>/<our own group>/agenthost/<pid>-<n>, below the daemon's own group so that
 * the limits of whatever runs the daemon still apply. We only ever touch groups we made,
 * and remove them after the program has been reaped. Without a writable hierarchy (an
 * ordinary user) limits fall back to rlimits, and sandbox_features() says so. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { CG_MEMORY, CG_PIDS, CG_COUNT };
static const char *const controllers[CG_COUNT] = {"memory", "pids"};

struct sandbox_cgroup {
	char *dir[CG_COUNT]; /* NULL for a controller not used */
	char name[64];
};

/* Per controller: our parent folder (".../agenthost"), or NULL when not writable. */
static char *parent_dir[CG_COUNT];
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static atomic_uint sequence;

/* Our own group in a v1 hierarchy, from /proc/self/cgroup ("4:memory:/a/b"). */
static char *own_group(const char *controller)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512], *found = NULL;

	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		/* The controller list may name several: "cpu,cpuacct". */
		for (char *save = NULL, *c = strtok_r(ctl + 1, ",", &save); c;
		     c = strtok_r(NULL, ",", &save))
			if (strcmp(c, controller) == 0)
				found = sandbox__xstrdup(path);
	}
	fclose(f);
	return found;
}

static void probe_controller(int i)
{
	char *own = own_group(controllers[i]);
	char *dir;

	if (!own)
		return;
	dir = sandbox__xasprintf("/sys/fs/cgroup/%s%s%sagenthost", controllers[i], own,
	                         own[strlen(own) - 1] == '/' ? "" : "/");
	free(own);
	if ((mkdir(dir, 0755) == 0 || errno == EEXIST) && access(dir, W_OK) == 0)
		parent_dir[i] = dir;
	else
		free(dir);
}

static void probe(void)
{
	for (int i = 0; i < CG_COUNT; i++)
		probe_controller(i);
}

bool sandbox__cgroup_available(const char *controller)
{
	pthread_once(&probe_once, probe);
	for (int i = 0; i < CG_COUNT; i++)
		if (strcmp(controllers[i], controller) == 0)
			return parent_dir[i] != NULL;
	return false;
}

static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	int fd, rc = 0;
	size_t n = strlen(value);

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		rc = -errno;
	close(fd);
	return rc;
}

static int read_u64(const char *dir, const char *file, const char *key, uint64_t *out)
{
	char path[PATH_MAX], line[256];
	size_t klen = key ? strlen(key) : 0;
	FILE *f;
	int rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (rc < 0 && fgets(line, sizeof(line), f)) {
		if (key && (strncmp(line, key, klen) != 0 || line[klen] != ' '))
			continue;
		const char *v = line + klen + strspn(line + klen, " ");

		*out = strncmp(v, "max", 3) == 0 ? UINT64_MAX : strtoull(v, NULL, 10);
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* Writes a limit and reads it back (the kernel rounds memory limits to pages). */
static int set_limit(const char *dir, const char *file, uint64_t value, uint64_t granule)
{
	char buf[32];
	uint64_t back;
	int rc;

	snprintf(buf, sizeof(buf), "%" PRIu64, value);
	rc = write_file(dir, file, buf);
	if (rc == 0)
		rc = read_u64(dir, file, NULL, &back);
	if (rc == 0 && (back > value || value - back >= granule))
		rc = -EIO;
	return rc;
}

static int setup_memory(const char *dir, uint64_t mb)
{
	uint64_t bytes = mb << 20;
	char path[PATH_MAX];
	int rc = set_limit(dir, "memory.limit_in_bytes", bytes, 4096);

	if (rc < 0)
		return rc;
	/* With swap accounting, cap memory+swap too, or the program could swap past it. */
	snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", dir);
	if (access(path, F_OK) == 0)
		rc = set_limit(dir, "memory.memsw.limit_in_bytes", bytes, 4096);
	return rc;
}

/* "<pid>-<n>", unused in every hierarchy we will create it in. A name can be taken by a
 * group left behind by an earlier process with our pid that was SIGKILLed: not ours to
 * remove, so skip to the next number. */
static void choose_name(struct sandbox_cgroup *cg, const uint64_t *want)
{
	for (int tries = 0; tries < 1000; tries++) {
		bool taken = false;

		snprintf(cg->name, sizeof(cg->name), "%d-%u", (int)getpid(),
		         atomic_fetch_add(&sequence, 1));
		for (int i = 0; i < CG_COUNT && !taken; i++) {
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%s", parent_dir[i] ? parent_dir[i] : "",
			         cg->name);
			taken = want[i] && parent_dir[i] && access(path, F_OK) == 0;
		}
		if (!taken)
			return;
	}
}

static int make_group(struct sandbox_cgroup *cg, int i, uint64_t limit, int *procs_fd)
{
	char path[PATH_MAX];
	int rc;

	cg->dir[i] = sandbox__xasprintf("%s/%s", parent_dir[i], cg->name);
	if (mkdir(cg->dir[i], 0755) < 0) {
		rc = -errno;
		free(cg->dir[i]);
		cg->dir[i] = NULL;
		return rc;
	}
	rc = i == CG_MEMORY ? setup_memory(cg->dir[i], limit)
	                    : set_limit(cg->dir[i], "pids.max", limit, 1);
	if (rc < 0)
		return rc;
	/* The child joins by writing "0" (itself) here. Opened now, by the parent: cgroup
	 * checks the opener's credentials, and the child no longer has the right ones. `tasks`
	 * (this thread) rather than `cgroup.procs` (the thread group): the child is a single
	 * thread, and moving one thread skips the global threadgroup lock, whose write side
	 * waits for an RCU grace period: 8 ms per spawn here, against 0.02 ms. */
	snprintf(path, sizeof(path), "%s/tasks", cg->dir[i]);
	*procs_fd = open(path, O_WRONLY | O_CLOEXEC);
	return *procs_fd < 0 ? -errno : 0;
}

int sandbox__cgroup_create(const struct sandbox_limits *limits, struct sandbox_cgroup **out,
                           int procs_fds[2], char *err, size_t len)
{
	uint64_t want[CG_COUNT] = {limits->memory_mb, limits->processes};
	struct sandbox_cgroup *cg;
	int rc = 0;

	procs_fds[0] = procs_fds[1] = -1;
	*out = NULL;
	pthread_once(&probe_once, probe);
	if (!(want[CG_MEMORY] && parent_dir[CG_MEMORY]) && !(want[CG_PIDS] && parent_dir[CG_PIDS]))
		return 0;
	cg = sandbox__xcalloc(1, sizeof(*cg));
	choose_name(cg, want);
	for (int i = 0; i < CG_COUNT && rc == 0; i++) {
		if (want[i] && parent_dir[i])
			rc = make_group(cg, i, want[i], &procs_fds[i]);
		if (rc < 0)
			sandbox__fail(err, len, rc, "cgroup", "%s/%s/%s", parent_dir[i], cg->name,
			              controllers[i]);
	}
	if (rc < 0) {
		for (int i = 0; i < CG_COUNT; i++)
			if (procs_fds[i] >= 0)
				close(procs_fds[i]);
		procs_fds[0] = procs_fds[1] = -1;
		sandbox__cgroup_remove(cg);
		return rc;
	}
	*out = cg;
	return 0;
}

uint64_t sandbox__cgroup_oom_kills(const struct sandbox_cgroup *cg)
{
	uint64_t n = 0;

	if (cg && cg->dir[CG_MEMORY] &&
	    read_u64(cg->dir[CG_MEMORY], "memory.oom_control", "oom_kill", &n) < 0)
		n = 0;
	return n;
}

/* The program is reaped, and with it (pid 1 of its namespace) every process it had; the
 * kernel may still hold the group busy for a moment, so retry briefly. */
static void remove_dir(const char *dir)
{
	struct timespec pause = {0, 1000000};

	for (int tries = 0; tries < 200; tries++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY)
			return;
		nanosleep(&pause, NULL);
	}
}

void sandbox__cgroup_remove(struct sandbox_cgroup *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < CG_COUNT; i++) {
		if (cg->dir[i])
			remove_dir(cg->dir[i]);
		free(cg->dir[i]);
	}
	free(cg);
}

/* A name of ours ("<pid>-<n>") whose creator is dead. */
static bool stale_name(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);

	if (end == name || *end != '-' || pid <= 0)
		return false;
	strtoul(end + 1, &end, 10);
	return *end == '\0' && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int sandbox_cgroup_sweep(void)
{
	int removed = 0;

	pthread_once(&probe_once, probe);
	for (int i = 0; i < CG_COUNT; i++) {
		DIR *d = parent_dir[i] ? opendir(parent_dir[i]) : NULL;
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[PATH_MAX];

			if (e->d_type != DT_DIR || !stale_name(e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", parent_dir[i], e->d_name);
			/* rmdir removes only an empty group: one with processes stays. */
			if (rmdir(path) == 0)
				removed++;
		}
		if (d)
			closedir(d);
	}
	return removed;
}
