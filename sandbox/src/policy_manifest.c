/* policy_manifest.c: sandbox_policy_from_manifest, the one place that knows how the
 * manifest's sandbox section maps onto a policy. */
#include "internal.h"
#include "manifest.h"

static uint64_t limit_value(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

static void set_limits(struct sandbox_policy *p, const struct manifest_limits *ml)
{
	struct sandbox_limits l = {
	    .memory_mb = limit_value(ml->memory_mb),
	    .cpu_seconds = limit_value(ml->cpu_seconds),
	    .processes = limit_value(ml->processes),
	    .open_files = limit_value(ml->open_files),
	    .file_size_mb = limit_value(ml->file_size_mb),
	    .scratch_mb =
	        ml->scratch_mb > 0 ? (uint64_t)ml->scratch_mb : SANDBOX_DEFAULT_SCRATCH_MB,
	};

	sandbox_policy_set_limits(p, &l);
}

struct sandbox_policy *sandbox_policy_from_manifest(const struct manifest *m, const char *agent_dir)
{
	struct sandbox_policy *p = sandbox_policy_new();

	sandbox_policy_set_argv(p, (const char *const *)m->entrypoint);
	for (size_t i = 0; i < m->env_len; i++)
		sandbox_policy_setenv(p, m->env[i].key, m->env[i].value);
	sandbox_policy_set_agent_dir(p, agent_dir, false);
	sandbox_policy_set_cwd(p, "/agent");
	for (size_t i = 0; i < m->sandbox.paths_len; i++)
		sandbox_policy_add_path(p, m->sandbox.paths[i].path, m->sandbox.paths[i].writable);
	set_limits(p, &m->sandbox.limits);
	sandbox_policy_set_network(p, m->sandbox.network);
	sandbox_policy_set_seccomp(p, m->sandbox.seccomp ? m->sandbox.seccomp : "default",
	                           (const char *const *)m->sandbox.allow_syscalls);
	return p;
}
