/* plan.c: the parent turns a policy into a plan: the exact list of mounts, the id maps, the
 * rlimits, argv, the final environment and the exec candidates. The child (which shares
 * our memory until exec and must not allocate) only walks it. The resulting layout:
 *
 *   /            tmpfs, read-only after setup
 *   /usr         host /usr, read-only       /bin /sbin /lib* as the host has them
 *   /etc         passwd, group, nsswitch.conf, hosts, ld.so.cache, localtime
 *                (+ resolv.conf, real hosts, ssl/certs with network)
 *   /agent       the agent folder, read-only (writable for install commands)
 *   /dev         null zero full random urandom, fd/stdin/stdout/stderr links
 *   /proc        the sandbox's own processes only (subset=pid)
 *   /scratch     size-capped tmpfs, HOME and TMPDIR; /tmp links to it
 *   extra paths  at their host paths */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

/* Mount attributes every bind gets. */
#define BIND_ATTRS (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)

static const char etc_passwd[] = "root:x:0:0:root:/:/usr/sbin/nologin\n"
                                 "agent:x:1000:1000:agent:/scratch:/usr/sbin/nologin\n"
                                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char etc_group[] = "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n";
static const char etc_nsswitch[] = "passwd: files\ngroup: files\nshadow: files\n"
                                   "hosts: files dns\nnetworks: files\nprotocols: files\n"
                                   "services: files\n";
static const char etc_hosts[] = "127.0.0.1 localhost\n::1 localhost\n";

char *sandbox__plan_own(struct plan *plan, char *s)
{
	plan->owned = sandbox__xrealloc(plan->owned, (plan->nowned + 1) * sizeof(char *));
	plan->owned[plan->nowned++] = s;
	return s;
}

static struct mount_op *op_add(struct plan *plan, enum mount_op_kind kind, const char *target)
{
	struct mount_op *op;

	if (plan->nops == plan->ops_cap) {
		plan->ops_cap = plan->ops_cap ? plan->ops_cap * 2 : 64;
		plan->ops = sandbox__xrealloc(plan->ops, plan->ops_cap * sizeof(*plan->ops));
	}
	op = &plan->ops[plan->nops++];
	*op = (struct mount_op){.kind = kind, .target = target};
	op->step = sandbox__plan_own(plan, sandbox__xasprintf("mount /%s", target));
	return op;
}

/* Where a host path is seen from the child during the mounts step: under /oldroot, with
 * symlinks resolved here (an absolute link would otherwise resolve in the new root). */
static const char *host_source(struct plan *plan, const char *path)
{
	char *real = realpath(path, NULL);
	char *s = sandbox__xasprintf("/oldroot%s", real ? real : path);

	free(real);
	return sandbox__plan_own(plan, s);
}

/* Binds the host path source at target. */
static void op_bind(struct plan *plan, const char *source, const char *target, bool dir,
                    unsigned attrs)
{
	struct mount_op *op;

	op_add(plan, OP_CREATE, target)->is_dir = dir;
	op = op_add(plan, OP_BIND, target);
	op->source = host_source(plan, source);
	op->is_dir = dir;
	op->attrs = attrs;
}

static void op_file(struct plan *plan, const char *target, const char *content)
{
	op_add(plan, OP_FILE, target)->data = content;
}

static void op_symlink(struct plan *plan, const char *link, const char *target)
{
	op_add(plan, OP_SYMLINK, target)->source = link;
}

static void plan_system(struct plan *plan)
{
	const struct sandbox_host *host = sandbox__host();

	op_bind(plan, "/usr", "usr", true, BIND_ATTRS | MOUNT_ATTR_RDONLY);
	for (size_t i = 0; i < sizeof(host->top) / sizeof(host->top[0]); i++) {
		if (host->top[i].link)
			op_symlink(plan, host->top[i].link, host->top[i].name);
		else if (host->top[i].dir)
			op_bind(plan, host->top[i].path, host->top[i].name, true,
			        BIND_ATTRS | MOUNT_ATTR_RDONLY);
	}
}

static void plan_etc(struct plan *plan, bool network)
{
	const struct sandbox_host *host = sandbox__host();

	op_add(plan, OP_CREATE, "etc")->is_dir = true;
	op_file(plan, "etc/passwd", etc_passwd);
	op_file(plan, "etc/group", etc_group);
	op_file(plan, "etc/nsswitch.conf", etc_nsswitch);
	op_bind(plan, "/etc/ld.so.cache", "etc/ld.so.cache", false, BIND_ATTRS | MOUNT_ATTR_RDONLY);
	if (host->localtime_link)
		op_symlink(plan, host->localtime_link, "etc/localtime");
	else if (host->localtime_file)
		op_bind(plan, "/etc/localtime", "etc/localtime", false,
		        BIND_ATTRS | MOUNT_ATTR_RDONLY);
	if (!network) {
		op_file(plan, "etc/hosts", etc_hosts);
		return;
	}
	op_bind(plan, "/etc/resolv.conf", "etc/resolv.conf", false, BIND_ATTRS | MOUNT_ATTR_RDONLY);
	op_bind(plan, "/etc/hosts", "etc/hosts", false, BIND_ATTRS | MOUNT_ATTR_RDONLY);
	op_add(plan, OP_CREATE, "etc/ssl")->is_dir = true;
	op_bind(plan, "/etc/ssl/certs", "etc/ssl/certs", true, BIND_ATTRS | MOUNT_ATTR_RDONLY);
}

/* Every folder on the way to a path mount point (inside the tmpfs root they do not exist;
 * inside a bind such as /usr they do, and mkdir is then a no-op). */
static void plan_parents(struct plan *plan, const char *rel)
{
	for (const char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
		char *dir = sandbox__plan_own(plan, strndup(rel, (size_t)(slash - rel)));

		if (!dir)
			abort();
		op_add(plan, OP_CREATE, dir)->is_dir = true;
	}
}

static int path_compare(const void *a, const void *b)
{
	const struct sandbox_path *const *x = a, *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

/* Paths in sorted order, so that a folder is mounted before anything inside it. */
static void plan_paths(struct plan *plan, const struct sandbox_policy *p, const bool *is_dir)
{
	const struct sandbox_path **sorted = sandbox__xcalloc(p->paths_len, sizeof(*sorted));

	for (size_t i = 0; i < p->paths_len; i++)
		sorted[i] = &p->paths[i];
	qsort(sorted, p->paths_len, sizeof(*sorted), path_compare);
	for (size_t i = 0; i < p->paths_len; i++) {
		size_t idx = (size_t)(sorted[i] - p->paths);
		const char *rel = sorted[i]->path + 1;
		unsigned attrs = BIND_ATTRS | (sorted[i]->writable ? 0 : MOUNT_ATTR_RDONLY);

		plan_parents(plan, rel);
		op_bind(plan, sorted[i]->path, rel, is_dir[idx], attrs);
	}
	free(sorted);
}

static void plan_dev(struct plan *plan)
{
	static const char *const devices[] = {"null", "zero", "full", "random", "urandom"};
	static const char *const links[][2] = {{"/proc/self/fd", "dev/fd"},
	                                       {"/proc/self/fd/0", "dev/stdin"},
	                                       {"/proc/self/fd/1", "dev/stdout"},
	                                       {"/proc/self/fd/2", "dev/stderr"}};
	struct mount_op *op;

	op_add(plan, OP_CREATE, "dev")->is_dir = true;
	op = op_add(plan, OP_TMPFS, "dev");
	op->data = "mode=0755,size=64k,nr_inodes=64";
	op->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		const char *target =
		    sandbox__plan_own(plan, sandbox__xasprintf("dev/%s", devices[i]));

		op_add(plan, OP_CREATE, target)->is_dir = false;
		op = op_add(plan, OP_DEVICE, target);
		op->source = sandbox__plan_own(plan, sandbox__xasprintf("/oldroot/%s", target));
		op->attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		op_symlink(plan, links[i][0], links[i][1]);
	op_add(plan, OP_READONLY, "dev");
}

static void plan_proc_scratch(struct plan *plan, uint64_t scratch_mb)
{
	struct mount_op *op;

	op_add(plan, OP_CREATE, "proc")->is_dir = true;
	op = op_add(plan, OP_PROC, "proc");
	op->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	/* Only the process folders: no kallsyms (kptr_restrict is 0 here), kcore, sysrq,
	 * sys/ or the host's keys and timers. */
	op->data = "subset=pid";
	op->absent = "proc/kallsyms";

	op_add(plan, OP_CREATE, "scratch")->is_dir = true;
	op = op_add(plan, OP_TMPFS, "scratch");
	op->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	op->data = sandbox__plan_own(
	    plan, sandbox__xasprintf("mode=0700,uid=%d,gid=%d,size=%llum,nr_inodes=%llu",
	                             SANDBOX_UID, SANDBOX_GID, (unsigned long long)scratch_mb,
	                             (unsigned long long)(scratch_mb * 256 + 1024)));
	op_symlink(plan, "/scratch", "tmp");
}

/* The policy's env with the three variables the library owns put last. */
static void plan_env(struct plan *plan, const struct sandbox_policy *p)
{
	static const char *const own[] = {"AGENTHOST_FD=3", "HOME=/scratch", "TMPDIR=/scratch"};
	char **env = sandbox__xcalloc(p->env_len + 4, sizeof(char *));
	size_t n = 0;

	for (size_t i = 0; i < p->env_len; i++) {
		bool replaced = false;

		for (size_t j = 0; j < 3; j++)
			replaced |= strncmp(p->env[i], own[j], strcspn(own[j], "=") + 1) == 0;
		if (!replaced)
			env[n++] = p->env[i];
	}
	for (size_t j = 0; j < 3; j++)
		env[n++] = (char *)own[j];
	plan->envp = (char *const *)sandbox__plan_own(plan, (char *)env);
}

/* argv[0] with a slash is used as is; a bare name is tried in each PATH folder. */
static void plan_exec(struct plan *plan, const struct sandbox_policy *p)
{
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	size_t n = 0;

	plan->argv = p->argv;
	if (strchr(p->argv[0], '/')) {
		plan->exec_paths[0] = p->argv[0];
		plan->exec_paths[1] = NULL;
		return;
	}
	for (size_t i = 0; i < p->env_len; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			path = p->env[i] + 5;
	while (*path && n < PLAN_MAX_EXEC - 1) {
		size_t len = strcspn(path, ":");

		if (len)
			plan->exec_paths[n++] = sandbox__plan_own(
			    plan, sandbox__xasprintf("%.*s/%s", (int)len, path, p->argv[0]));
		path += len + (path[len] == ':');
	}
	plan->exec_paths[n] = NULL;
}

void sandbox__plan_build(const struct sandbox_policy *p, struct plan *plan, const bool *path_is_dir,
                         uid_t host_uid, gid_t host_gid, bool cgroup_memory)
{
	snprintf(plan->uid_map, sizeof(plan->uid_map), "%d %u 1\n", SANDBOX_UID,
	         (unsigned)host_uid);
	snprintf(plan->gid_map, sizeof(plan->gid_map), "%d %u 1\n", SANDBOX_GID,
	         (unsigned)host_gid);
	plan->hostname = "sandbox";
	plan->cwd = p->cwd;

	plan_system(plan);
	plan_etc(plan, p->network);
	op_bind(plan, p->agent_dir, "agent", true,
	        BIND_ATTRS | (p->agent_writable ? 0 : MOUNT_ATTR_RDONLY));
	plan_paths(plan, p, path_is_dir);
	plan_dev(plan);
	plan_proc_scratch(plan, p->limits.scratch_mb);

	sandbox__limits_plan(&p->limits, cgroup_memory, plan);
	plan->cap_last_cap = sandbox__host()->cap_last_cap;
	plan_env(plan, p);
	plan_exec(plan, p);
}

void sandbox__plan_free(struct plan *plan)
{
	for (size_t i = 0; i < plan->nowned; i++)
		free(plan->owned[i]);
	free(plan->owned);
	plan->owned = NULL;
	plan->nowned = 0;
	free(plan->ops);
	plan->ops = NULL;
	plan->nops = plan->ops_cap = 0;
}
