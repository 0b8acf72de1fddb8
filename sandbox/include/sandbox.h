/* sandbox.h: libahsandbox, which runs one program inside an isolated, limited and
 * seccomp-filtered process (DESIGN.md §3). The caller builds a policy, spawns it, watches
 * the child's fds, waits for it and asks why it ended. The layout inside the sandbox, every
 * step and every decision are in docs/sandbox.md.
 *
 * Errors are negative errno values. Functions that can fail for a reason worth a sentence
 * also leave a one-line message naming the failed step ("mount /agent: No such file or
 * directory"). Allocation failure aborts. */
#ifndef AGENTHOST_SANDBOX_H
#define AGENTHOST_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct manifest;

/* Inside its user namespace the program runs as this uid and gid, without capabilities. */
#define SANDBOX_UID 1000
#define SANDBOX_GID 1000
/* The protocol socket's fd number in the child (AGENTHOST_FD). */
#define SANDBOX_PROTOCOL_FD 3
/* When the daemon runs as root, the host uid and gid the sandboxed program is (nobody). */
#define SANDBOX_ROOT_HOST_UID 65534
#define SANDBOX_ROOT_HOST_GID 65534

/* Limits a new policy starts with; the same values as the manifest defaults. */
#define SANDBOX_DEFAULT_MEMORY_MB 256
#define SANDBOX_DEFAULT_CPU_SECONDS 60
#define SANDBOX_DEFAULT_PROCESSES 32
#define SANDBOX_DEFAULT_OPEN_FILES 256
#define SANDBOX_DEFAULT_FILE_SIZE_MB 64
#define SANDBOX_DEFAULT_SCRATCH_MB 64

/* Resource limits. 0 means "no limit" for every field but scratch_mb, which must be >= 1. */
struct sandbox_limits {
	uint64_t memory_mb;    /* cgroup memory (+swap) limit; RLIMIT_AS/DATA without cgroups */
	uint64_t cpu_seconds;  /* RLIMIT_CPU, soft = hard: SIGKILL at the limit */
	uint64_t processes;    /* cgroup pids.max and RLIMIT_NPROC (threads count too) */
	uint64_t open_files;   /* RLIMIT_NOFILE */
	uint64_t file_size_mb; /* RLIMIT_FSIZE */
	uint64_t scratch_mb;   /* size of the tmpfs at /scratch (HOME, TMPDIR) */
};

/* ------------------------------------------------------------------------------------ */
/* Policy: a builder over an opaque object (new -> set... -> spawn -> free).
 *
 * Every setter copies what it is given; the caller keeps ownership of its arguments. A
 * setter returns 0, or -EINVAL for an argument that can never be right (NULL, empty, a
 * relative path where an absolute one is needed); the first such error is also kept in the
 * policy, sandbox_policy_error() returns its message, and sandbox_spawn() refuses the
 * policy with it. Everything that depends on the machine (does the folder exist, is the
 * syscall name known) is checked by sandbox_policy_check() and sandbox_spawn(). */
struct sandbox_policy;

/* A new policy with the defaults: no argv (must be set), no agent folder (must be set),
 * cwd "/agent", no env, no extra paths, the SANDBOX_DEFAULT_* limits, no network, seccomp
 * profile "default", stdout/stderr to pipes. Never NULL. Free with sandbox_policy_free. */
struct sandbox_policy *sandbox_policy_new(void);

/* Frees p and everything it owns. NULL is fine. */
void sandbox_policy_free(struct sandbox_policy *p);

/* The first setter error kept in p, or NULL. The string belongs to p. */
const char *sandbox_policy_error(const struct sandbox_policy *p);

/* argv of the program, NULL-terminated, argv[0] non-empty. argv[0] is a path inside the
 * sandbox: absolute, relative to the cwd ("./agent"), or a bare name looked up in the PATH
 * of the policy's env (default "/usr/local/bin:/usr/bin:/bin"). */
int sandbox_policy_set_argv(struct sandbox_policy *p, const char *const *argv);

/* The complete environment, "KEY=VALUE" strings, NULL-terminated. Replaces any earlier
 * one. The library adds exactly three variables, which win over the caller's:
 * AGENTHOST_FD=3, HOME=/scratch and TMPDIR=/scratch. Nothing of the host leaks in. */
int sandbox_policy_set_env(struct sandbox_policy *p, const char *const *envp);

/* Adds or replaces one variable (key without '='). */
int sandbox_policy_setenv(struct sandbox_policy *p, const char *key, const char *value);

/* The agent's folder on the host, mounted at /agent: read-only, or writable for install
 * commands. A writable folder must be writable by the host uid the program runs as (see
 * sandbox_policy_set_host_ids): the daemon chowns an install copy to it. */
int sandbox_policy_set_agent_dir(struct sandbox_policy *p, const char *host_path, bool writable);

/* Working folder inside the sandbox (absolute). Default "/agent". */
int sandbox_policy_set_cwd(struct sandbox_policy *p, const char *path);

/* One more host path (absolute, folder or file), mounted at the same path inside,
 * read-only or writable. Refused: "/", and anything under /proc, /dev, /scratch, /tmp or
 * /agent, which the sandbox owns. */
int sandbox_policy_add_path(struct sandbox_policy *p, const char *host_path, bool writable);

/* Replaces all limits (copied). */
int sandbox_policy_set_limits(struct sandbox_policy *p, const struct sandbox_limits *limits);

/* The limits now in p (for callers that change one field). */
void sandbox_policy_get_limits(const struct sandbox_policy *p, struct sandbox_limits *out);

/* With network the program shares the host's network namespace and may create AF_INET,
 * AF_INET6 and NETLINK_ROUTE sockets; /etc/resolv.conf, /etc/hosts and /etc/ssl/certs are
 * mounted. Without (the default) it gets its own empty network namespace and AF_UNIX only. */
int sandbox_policy_set_network(struct sandbox_policy *p, bool network);

/* The seccomp profile: "default", "python" (built into the library from
 * sandbox/profiles/), or a path to a profile file (contains a '/'), plus extra syscall
 * names to allow (NULL-terminated, may be NULL). A name on the never-allowed list
 * (ptrace, mount, io_uring_setup, ...) makes sandbox_policy_check and sandbox_spawn fail
 * with "seccomp: syscall NAME is never allowed". */
int sandbox_policy_set_seccomp(struct sandbox_policy *p, const char *profile,
                               const char *const *extra_syscalls);

/* By default stdout and stderr of the program are pipes whose read ends sandbox_spawn
 * returns. Given fds (borrowed; >= 0) are used instead, e.g. a log file or the write end of
 * one pipe for both, which saves the daemon fds; the returned out/err are then -1. -1 for
 * one of them keeps its pipe. */
int sandbox_policy_set_output_fds(struct sandbox_policy *p, int out_fd, int err_fd);

/* Only when the calling process is root: the host uid/gid the program runs as (default
 * SANDBOX_ROOT_HOST_UID/GID). Not root: the program always runs as the caller's own uid and
 * gid, and a different choice makes sandbox_spawn fail with -EPERM. */
int sandbox_policy_set_host_ids(struct sandbox_policy *p, uid_t uid, gid_t gid);

/* A policy for the manifest's entrypoint with its sandbox section, env and limits.
 * agent_dir (host path, borrowed) is mounted read-only at /agent and is the cwd. Neither
 * argument is kept. Never NULL; errors show in sandbox_policy_error / at spawn. The caller
 * adds config values and AGENTHOST_* variables with sandbox_policy_setenv, and for an
 * install command replaces argv and makes the folder writable. */
struct sandbox_policy *sandbox_policy_from_manifest(const struct manifest *m,
                                                    const char *agent_dir);

/* Checks what sandbox_spawn would check before starting anything: setter errors, the
 * agent folder and paths exist, the seccomp profile compiles (and is cached). Returns 0 or
 * a negative errno with a message in err ("seccomp: syscall ptrace is never allowed"). */
int sandbox_policy_check(const struct sandbox_policy *p, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Spawning */

struct sandbox_cgroup;

/* A running sandboxed program. All fds are the caller's, O_CLOEXEC | O_NONBLOCK. */
struct sandbox_child {
	pid_t pid; /* host pid; the program is pid 1 of its own pid namespace */
	int pidfd; /* becomes readable when the program has exited */
	int sock;  /* host end of the protocol socket (AF_UNIX stream; fd 3 in the child) */
	int out;   /* read end of the program's stdout, or -1 (sandbox_policy_set_output_fds) */
	int err;   /* read end of its stderr, or -1 */
	/* On spawn failure: the failed step's name and a one-line "STEP: strerror" message. */
	char failed_step[64];
	char message[256];

	/* Library-private. */
	uint64_t cpu_limit_s;
	struct sandbox_cgroup *cgroup;
	bool reaped;
};

/* Starts the policy's program in a new sandbox. p is borrowed and may be reused for more
 * spawns (profiles are compiled once per process). On success returns 0 and fills *out; the
 * caller then owns its fds and must end with sandbox_child_wait + sandbox_child_close. On
 * failure returns a negative errno, nothing is left running or open, out->failed_step names
 * the step ("policy", "agent_dir", "cgroup", "clone", or a step inside the child such as
 * "user_namespace", "new_root", "mount /agent", "seccomp", "exec") and out->message says
 * "STEP: strerror" or "STEP: strerror (detail)". A failed step is never skipped or worked
 * around.
 *
 * Stdin is /dev/null. Signals: the program starts with default dispositions and an empty
 * mask; it dies with SIGKILL when the thread that spawned it exits (PR_SET_PDEATHSIG), so
 * spawn from a thread that lives as long as the program should.
 *
 * Thread-safety: different threads may spawn concurrently with different or the same
 * policy. As root, the calling thread briefly switches its own effective ids to the host
 * ids (raw syscalls, this thread only) around clone(); see docs/sandbox.md. */
int sandbox_spawn(const struct sandbox_policy *p, struct sandbox_child *out);

/* SIGKILL to the program (and so to everything in its pid namespace). 0 or -errno. */
int sandbox_child_kill(const struct sandbox_child *c);

/* How a program ended, as reported by the kernel and the host. */
enum sandbox_host_kill {
	SANDBOX_HOST_NONE = 0,       /* the host did not end it */
	SANDBOX_HOST_TIMEOUT,        /* wall-clock run timeout */
	SANDBOX_HOST_OUTPUT_LIMIT,   /* wrote more than output_bytes */
	SANDBOX_HOST_PROTOCOL_ERROR, /* broke the host<->agent protocol */
	SANDBOX_HOST_OTHER,          /* any other host decision (shutdown, destroy) */
};

struct sandbox_end {
	int status;         /* wait status (WIFEXITED...) */
	uint64_t oom_kills; /* cgroup memory oom_kill counter; 0 without cgroups */
	uint64_t cpu_ms;    /* user + system CPU time of the program */
	uint64_t cpu_limit_s;
	enum sandbox_host_kill host_kill; /* filled by the caller */
	int syscall; /* for a SIGSYS death, the denied syscall (x86_64 number) when the
	              * kernel's audit record of it could be read (root, no auditd), else -1 */
};

/* Reaps the program. options is 0 (block) or WNOHANG. Returns 1 and fills *end (status,
 * oom_kills, cpu_ms, cpu_limit_s, syscall; host_kill = SANDBOX_HOST_NONE) once it has
 * exited, 0 with
 * WNOHANG while it runs, or a negative errno. The caller must not reap this pid otherwise
 * (no waitpid(-1) elsewhere): the CPU time and OOM count are read here. */
int sandbox_child_wait(struct sandbox_child *c, int options, struct sandbox_end *end);

/* Closes every fd left in c and removes its cgroups. A program still running is killed and
 * reaped first. c may then be reused. Safe on a zeroed or failed-spawn child. */
void sandbox_child_close(struct sandbox_child *c);

/* ------------------------------------------------------------------------------------ */
/* Exit reasons */

enum sandbox_reason {
	SANDBOX_EXITED = 0,     /* exited by itself; code = exit code */
	SANDBOX_VIOLATION,      /* killed by seccomp (SIGSYS) */
	SANDBOX_OOM,            /* killed by the cgroup OOM killer */
	SANDBOX_CPU_LIMIT,      /* RLIMIT_CPU: SIGKILL at the limit (or SIGXCPU) */
	SANDBOX_TIMEOUT,        /* host wall clock */
	SANDBOX_OUTPUT_LIMIT,   /* host output cap */
	SANDBOX_PROTOCOL_ERROR, /* host protocol check */
	SANDBOX_KILLED,         /* any other signal, or another host decision */
};

struct sandbox_exit {
	enum sandbox_reason reason;
	int code;    /* exit code for SANDBOX_EXITED, else -1 */
	int signal;  /* the killing signal, or 0 when the program exited */
	int syscall; /* the denied syscall for SANDBOX_VIOLATION when known, else -1 */
};

/* Exactly one reason for an end, by these rules in this order:
 *   SIGSYS -> sandbox_violation; SIGKILL with oom_kills > 0 -> oom;
 *   host_kill set -> timeout / output_limit / protocol_error / killed;
 *   SIGXCPU, or SIGKILL with cpu_ms >= 3/4 of cpu_limit_s (the kernel's limit clock is
 *   tick-sampled and runs ahead of cpu_ms) -> cpu_limit;
 *   a normal exit -> exited; any other signal -> killed. */
struct sandbox_exit sandbox_exit_reason(const struct sandbox_end *end);

/* The name of an x86_64 syscall number ("ptrace") into buf. 0, or -ENOENT. */
int sandbox_syscall_name(int nr, char *buf, size_t len);

/* "exited", "sandbox_violation", "oom", "cpu_limit", "timeout", "output_limit",
 * "protocol_error", "killed" (static strings; "unknown" for a bad value). */
const char *sandbox_exit_reason_name(enum sandbox_reason reason);

/* ------------------------------------------------------------------------------------ */
/* Machine facts */

/* What this machine and process give the sandbox, probed once and cached. The daemon logs
 * `summary` at start-up so that a missing feature is said, not pretended. */
struct sandbox_features {
	bool user_namespaces; /* a test clone(CLONE_NEWUSER) worked */
	bool cgroup_memory;   /* a writable cgroup v1 memory hierarchy for our children */
	bool cgroup_pids;     /* same for pids */
	bool root;            /* running as root: programs run as the host ids of the policy */
	char summary[256];    /* one line, e.g. "user namespaces: yes; cgroup memory: yes ..." */
};
const struct sandbox_features *sandbox_features(void);

/* Removes the empty cgroups that processes using this library left behind when they were
 * SIGKILLed (names "<pid>-<n>" under our agenthost/ folders, whose pid no longer exists).
 * The daemon calls it once at start-up. Returns how many it removed. */
int sandbox_cgroup_sweep(void);

#endif
