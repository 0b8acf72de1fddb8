/* internal.h: what the files of libahsandbox share and the public header hides: the policy
 * object, the spawn plan the parent prepares for the child, and the internal functions
 * (double-underscore names, libuv style). */
#ifndef AGENTHOST_SANDBOX_INTERNAL_H
#define AGENTHOST_SANDBOX_INTERNAL_H

#include "sandbox.h"

#include <linux/filter.h>
#include <stdarg.h>
#include <sys/resource.h>

#define SANDBOX_ERR_MAX 256

struct sandbox_path {
	char *path;
	bool writable;
};

struct sandbox_policy {
	char **argv; /* NULL-terminated */
	char **env;  /* "KEY=VALUE", NULL-terminated, never NULL */
	size_t env_len;
	char *agent_dir;
	bool agent_writable;
	char *cwd;
	struct sandbox_path *paths;
	size_t paths_len;
	struct sandbox_limits limits;
	bool network;
	char *profile;
	char **extra_syscalls; /* NULL-terminated, never NULL */
	int out_fd, err_fd;    /* borrowed, -1 = pipe */
	bool host_ids_set;
	uid_t host_uid;
	gid_t host_gid;
	char *error; /* first setter error, or NULL */
};

/* ---- errors ---- */

/* Formats "step: strerror(-rc)" or "step: strerror(-rc) (detail)" into buf. Returns rc. */
int sandbox__fail(char *buf, size_t len, int rc, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- allocation (abort on failure) ---- */
void *sandbox__xmalloc(size_t n);
void *sandbox__xcalloc(size_t n, size_t size);
void *sandbox__xrealloc(void *p, size_t n);
char *sandbox__xstrdup(const char *s);
char *sandbox__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char **sandbox__strv_dup(const char *const *v);
void sandbox__strv_free(char **v);

/* ---- machine facts (host.c) ---- */
struct sandbox_host {
	int cap_last_cap;
	/* /bin, /sbin, /lib, /lib32, /lib64, /libx32 as the host has them */
	struct {
		const char *name; /* "bin" */
		const char *path; /* "/bin" */
		char *link;       /* symlink target, or NULL */
		bool dir;         /* a real folder: bind it read-only */
	} top[6];
	char *localtime_link; /* target of /etc/localtime when it is a symlink */
	bool localtime_file;
};
const struct sandbox_host *sandbox__host(void);

/* ---- seccomp (profile.c, seccomp.c) ---- */

/* One rule of a profile: allow `name` (or return errno_value) when every condition holds.
 * Conditions compare the low 32 bits of an argument: (arg & mask) == value. */
struct sandbox_rule_cond {
	unsigned arg;
	uint32_t mask;
	uint32_t value;
};
struct sandbox_rule {
	char *name;
	int errno_value; /* 0 = allow */
	bool network_only;
	size_t ncond;
	struct sandbox_rule_cond cond[3];
};
struct sandbox_profile {
	struct sandbox_rule *rules;
	size_t len;
};

/* Parses a profile by name ("default", "python": built in) or by path. 0 or -errno, with a
 * message naming the file and line. */
int sandbox__profile_load(const char *name, struct sandbox_profile *out, char *err, size_t len);
int sandbox__profile_parse(const char *text, const char *source, struct sandbox_profile *out,
                           char *err, size_t len);
void sandbox__profile_free(struct sandbox_profile *p);

/* The embedded text of a built-in profile, or NULL. */
const char *sandbox__profile_builtin(const char *name);

/* Is the name on the never-allowed list? */
bool sandbox__syscall_forbidden(const char *name);

/* Returns the compiled BPF for (profile, network, extra syscalls); cached for the life of
 * the process, so the returned program must not be freed. 0 or -errno with a message. */
int sandbox__seccomp_get(const char *profile, bool network, char *const *extra,
                         const struct sock_fprog **out, char *err, size_t len);

/* Compiles without the cache (tests, tools). *out owns filter (free it). */
int sandbox__seccomp_compile(const struct sandbox_profile *profile, bool network,
                             char *const *extra, struct sock_fprog *out, char *err, size_t len);

/* ---- checks before a spawn (check.c) ---- */
int sandbox__policy_validate(const struct sandbox_policy *p, char *err, size_t len);
int sandbox__check_agent_dir(const struct sandbox_policy *p, char *err, size_t len);
int sandbox__check_paths(const struct sandbox_policy *p, bool *is_dir, char *err, size_t len);

/* ---- the denied syscall of a seccomp kill (violation.c) ---- */
void sandbox__violations_watch(void);
int sandbox__violation_syscall(pid_t pid);

/* ---- cgroups (cgroup.c) ---- */
bool sandbox__cgroup_available(const char *controller);
int sandbox__cgroup_create(const struct sandbox_limits *limits, struct sandbox_cgroup **out,
                           int procs_fds[2], char *err, size_t len);
uint64_t sandbox__cgroup_oom_kills(const struct sandbox_cgroup *cg);
void sandbox__cgroup_remove(struct sandbox_cgroup *cg);

/* ---- the plan: everything the child needs, prepared by the parent (plan.c) ----
 *
 * The child shares the parent's memory (clone with CLONE_VM | CLONE_VFORK), so it reads
 * the plan in place and must not allocate: every string and buffer is ready before clone. */

enum mount_op_kind {
	OP_CREATE,   /* create the mount point target: a folder (is_dir) or an empty file */
	OP_TMPFS,    /* tmpfs at target with data options */
	OP_BIND,     /* bind source (a host path under /oldroot) at target, then set attrs */
	OP_DEVICE,   /* bind a host device node (no nodev, no exec) */
	OP_SYMLINK,  /* symlink source -> target */
	OP_FILE,     /* create target with data as content (may be "") */
	OP_PROC,     /* fresh procfs, only the process folders */
	OP_READONLY, /* make target's mount read-only (not recursive), after filling it */
};

struct mount_op {
	enum mount_op_kind kind;
	const char *source;
	const char *target;  /* relative to the new root (the cwd): "usr", "etc/passwd" */
	const char *data;    /* tmpfs options, file content */
	unsigned long flags; /* MS_* for tmpfs and proc */
	unsigned attrs;      /* MOUNT_ATTR_* to set on a bind, recursively */
	bool is_dir;         /* OP_CREATE, OP_BIND: a folder, else a file */
	const char *absent;  /* OP_PROC: a path that must not exist afterwards (read back) */
	const char *step;    /* e.g. "mount /usr" */
};

enum { PLAN_MAX_RLIMITS = 8, PLAN_MAX_EXEC = 16 };

struct plan {
	/* identity */
	char uid_map[64], gid_map[64];
	int cgroup_fds[2];

	/* filesystem */
	struct mount_op *ops;
	size_t nops, ops_cap;
	const char *cwd;

	/* fds the child moves to 1, 2 and 3 */
	int out_fd, err_fd, sock_fd;

	struct {
		int resource;
		struct rlimit value;
	} rlimits[PLAN_MAX_RLIMITS];
	size_t nrlimits;

	int cap_last_cap;
	const struct sock_fprog *filter;
	char *const *argv;
	char *const *envp;
	char *exec_paths[PLAN_MAX_EXEC]; /* candidates for argv[0], NULL-terminated */

	const char *hostname;
	char **owned; /* strings and arrays plan_free releases */
	size_t nowned;

	/* written by the child when a step fails */
	const char *fail_step;
	const char *fail_detail;
	int fail_errno;
};

/* Builds the plan of a spawn; path_is_dir says which extra paths are folders. Never fails
 * (allocation aborts). */
void sandbox__plan_build(const struct sandbox_policy *p, struct plan *plan, const bool *path_is_dir,
                         uid_t host_uid, gid_t host_gid, bool cgroup_memory);
/* Keeps s (allocated) until plan_free; returns it. */
char *sandbox__plan_own(struct plan *plan, char *s);
void sandbox__plan_free(struct plan *plan);

/* The child (child.c). Never returns; _exit(127) after recording a failure in plan. */
int sandbox__child_main(void *plan);

/* Child-side step helpers, each returning 0 or -errno and setting plan->fail_detail. */
int sandbox__mounts_new_root(struct plan *plan);
int sandbox__mounts_apply(struct plan *plan);
int sandbox__mounts_old_root(struct plan *plan);
int sandbox__limits_apply(struct plan *plan);
void sandbox__limits_plan(const struct sandbox_limits *l, bool cgroup_memory, struct plan *plan);
int sandbox__privileges_drop(struct plan *plan);
int sandbox__no_new_privs(struct plan *plan);
int sandbox__userns_enter(struct plan *plan);

/* Parent-side: switch the calling thread's ids for clone (root only); see userns.c. */
struct sandbox_saved_ids {
	bool switched;
	int dumpable;
	uid_t euid;
	gid_t egid;
	int ngroups;
	gid_t groups[64];
};
int sandbox__userns_switch(bool as_root, uid_t uid, gid_t gid, struct sandbox_saved_ids *saved);
void sandbox__userns_restore(struct sandbox_saved_ids *saved);

#endif
