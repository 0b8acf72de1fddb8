/* policy.c: the policy builder (sandbox_policy_new, the setters, sandbox_policy_free).
 * Setters only copy and check what can never be right; everything that depends on the
 * machine is checked at spawn time (check.c). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the first setter error; later ones would only be consequences of it. */
static int policy_reject(struct sandbox_policy *p, const char *what, const char *why)
{
	if (!p->error)
		p->error = sandbox__xasprintf("%s: %s", what, why);
	return -EINVAL;
}

static bool is_absolute(const char *path)
{
	return path && path[0] == '/';
}

struct sandbox_policy *sandbox_policy_new(void)
{
	struct sandbox_policy *p = sandbox__xcalloc(1, sizeof(*p));

	p->env = sandbox__xcalloc(1, sizeof(char *));
	p->cwd = sandbox__xstrdup("/agent");
	p->profile = sandbox__xstrdup("default");
	p->extra_syscalls = sandbox__xcalloc(1, sizeof(char *));
	p->out_fd = -1;
	p->err_fd = -1;
	p->limits = (struct sandbox_limits){
	    .memory_mb = SANDBOX_DEFAULT_MEMORY_MB,
	    .cpu_seconds = SANDBOX_DEFAULT_CPU_SECONDS,
	    .processes = SANDBOX_DEFAULT_PROCESSES,
	    .open_files = SANDBOX_DEFAULT_OPEN_FILES,
	    .file_size_mb = SANDBOX_DEFAULT_FILE_SIZE_MB,
	    .scratch_mb = SANDBOX_DEFAULT_SCRATCH_MB,
	};
	return p;
}

void sandbox_policy_free(struct sandbox_policy *p)
{
	if (!p)
		return;
	sandbox__strv_free(p->argv);
	sandbox__strv_free(p->env);
	free(p->agent_dir);
	free(p->cwd);
	for (size_t i = 0; i < p->paths_len; i++)
		free(p->paths[i].path);
	free(p->paths);
	free(p->profile);
	sandbox__strv_free(p->extra_syscalls);
	free(p->error);
	free(p);
}

const char *sandbox_policy_error(const struct sandbox_policy *p)
{
	return p->error;
}

int sandbox_policy_set_argv(struct sandbox_policy *p, const char *const *argv)
{
	if (!argv || !argv[0] || !argv[0][0])
		return policy_reject(p, "argv", "must have a non-empty argv[0]");
	sandbox__strv_free(p->argv);
	p->argv = sandbox__strv_dup(argv);
	return 0;
}

/* Index of the variable named by the first keylen bytes of key, or env_len. */
static size_t env_find(const struct sandbox_policy *p, const char *key, size_t keylen)
{
	for (size_t i = 0; i < p->env_len; i++)
		if (strncmp(p->env[i], key, keylen) == 0 && p->env[i][keylen] == '=')
			return i;
	return p->env_len;
}

/* Adds or replaces "KEY=VALUE" (taken over, already allocated). */
static void env_put(struct sandbox_policy *p, char *entry)
{
	size_t i = env_find(p, entry, strcspn(entry, "="));

	if (i < p->env_len) {
		free(p->env[i]);
		p->env[i] = entry;
		return;
	}
	p->env = sandbox__xrealloc(p->env, (p->env_len + 2) * sizeof(char *));
	p->env[p->env_len++] = entry;
	p->env[p->env_len] = NULL;
}

int sandbox_policy_set_env(struct sandbox_policy *p, const char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strchr(envp[i], '=') || envp[i][0] == '=')
			return policy_reject(p, "env", "entries must be KEY=VALUE");
	sandbox__strv_free(p->env);
	p->env = sandbox__xcalloc(1, sizeof(char *));
	p->env_len = 0;
	for (size_t i = 0; envp && envp[i]; i++)
		env_put(p, sandbox__xstrdup(envp[i]));
	return 0;
}

int sandbox_policy_setenv(struct sandbox_policy *p, const char *key, const char *value)
{
	if (!key || !key[0] || strchr(key, '=') || !value)
		return policy_reject(p, "env", "key must be non-empty without '='");
	env_put(p, sandbox__xasprintf("%s=%s", key, value));
	return 0;
}

int sandbox_policy_set_agent_dir(struct sandbox_policy *p, const char *host_path, bool writable)
{
	if (!is_absolute(host_path))
		return policy_reject(p, "agent_dir", "must be an absolute host path");
	free(p->agent_dir);
	p->agent_dir = sandbox__xstrdup(host_path);
	p->agent_writable = writable;
	return 0;
}

int sandbox_policy_set_cwd(struct sandbox_policy *p, const char *path)
{
	if (!is_absolute(path))
		return policy_reject(p, "cwd", "must be an absolute path inside the sandbox");
	free(p->cwd);
	p->cwd = sandbox__xstrdup(path);
	return 0;
}

/* Is path equal to or below prefix? */
static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool path_reserved(const char *path)
{
	static const char *const reserved[] = {"/proc", "/dev", "/scratch", "/tmp", "/agent"};

	if (strcmp(path, "/") == 0 || strstr(path, "/../") || strstr(path, "/./"))
		return true;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (path_under(path, reserved[i]))
			return true;
	return false;
}

int sandbox_policy_add_path(struct sandbox_policy *p, const char *host_path, bool writable)
{
	size_t len;

	if (!is_absolute(host_path))
		return policy_reject(p, "paths", "must be absolute host paths");
	len = strlen(host_path);
	if (path_reserved(host_path) || (len >= 3 && strcmp(host_path + len - 3, "/..") == 0))
		return policy_reject(
		    p, host_path, "is /, under /proc, /dev, /scratch, /tmp or /agent, or has ..");
	p->paths = sandbox__xrealloc(p->paths, (p->paths_len + 1) * sizeof(*p->paths));
	p->paths[p->paths_len].path = sandbox__xstrdup(host_path);
	/* A trailing slash would make two spellings of one mount point. */
	while (len > 1 && p->paths[p->paths_len].path[len - 1] == '/')
		p->paths[p->paths_len].path[--len] = '\0';
	p->paths[p->paths_len].writable = writable;
	p->paths_len++;
	return 0;
}

int sandbox_policy_set_limits(struct sandbox_policy *p, const struct sandbox_limits *limits)
{
	if (!limits || limits->scratch_mb == 0)
		return policy_reject(p, "limits", "scratch_mb must be >= 1");
	if (limits->memory_mb > (UINT64_MAX >> 20) || limits->file_size_mb > (UINT64_MAX >> 20) ||
	    limits->scratch_mb > (UINT64_MAX >> 20))
		return policy_reject(p, "limits", "value too large");
	p->limits = *limits;
	return 0;
}

void sandbox_policy_get_limits(const struct sandbox_policy *p, struct sandbox_limits *out)
{
	*out = p->limits;
}

int sandbox_policy_set_network(struct sandbox_policy *p, bool network)
{
	p->network = network;
	return 0;
}

int sandbox_policy_set_seccomp(struct sandbox_policy *p, const char *profile,
                               const char *const *extra_syscalls)
{
	if (!profile || !profile[0])
		return policy_reject(p, "seccomp", "profile name is empty");
	for (size_t i = 0; extra_syscalls && extra_syscalls[i]; i++)
		if (!extra_syscalls[i][0])
			return policy_reject(p, "seccomp", "empty syscall name");
	free(p->profile);
	p->profile = sandbox__xstrdup(profile);
	sandbox__strv_free(p->extra_syscalls);
	p->extra_syscalls = sandbox__strv_dup(extra_syscalls);
	return 0;
}

int sandbox_policy_set_output_fds(struct sandbox_policy *p, int out_fd, int err_fd)
{
	if (out_fd < -1 || err_fd < -1)
		return policy_reject(p, "output_fds", "must be fds or -1");
	p->out_fd = out_fd;
	p->err_fd = err_fd;
	return 0;
}

int sandbox_policy_set_host_ids(struct sandbox_policy *p, uid_t uid, gid_t gid)
{
	if (uid == (uid_t)-1 || gid == (gid_t)-1)
		return policy_reject(p, "host_ids", "must be real ids");
	p->host_ids_set = true;
	p->host_uid = uid;
	p->host_gid = gid;
	return 0;
}
