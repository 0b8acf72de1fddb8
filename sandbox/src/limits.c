/* limits.c: the rlimits of a sandboxed program. Memory goes to the cgroup where there is
 * one (an address-space rlimit would also count reservations that are never touched); only
 * without it does RLIMIT_AS/RLIMIT_DATA stand in. RLIMIT_CPU's soft and hard limits are
 * equal: the kernel then sends SIGKILL at the limit (at the soft limit it would send SIGXCPU,
 * which the program, pid 1 of its namespace, ignores unless it handles it), so the budget is
 * exactly cpu_seconds.
 * RLIMIT_NPROC is counted per user namespace, so it limits this sandbox alone. */
#include "internal.h"

#include <errno.h>
#include <sys/resource.h>

static void add(struct plan *plan, int resource, rlim_t soft, rlim_t hard)
{
	plan->rlimits[plan->nrlimits].resource = resource;
	plan->rlimits[plan->nrlimits].value = (struct rlimit){soft, hard};
	plan->nrlimits++;
}

void sandbox__limits_plan(const struct sandbox_limits *l, bool cgroup_memory, struct plan *plan)
{
	plan->nrlimits = 0;
	add(plan, RLIMIT_CORE, 0, 0);
	if (l->memory_mb && !cgroup_memory) {
		add(plan, RLIMIT_AS, l->memory_mb << 20, l->memory_mb << 20);
		add(plan, RLIMIT_DATA, l->memory_mb << 20, l->memory_mb << 20);
	}
	if (l->cpu_seconds)
		add(plan, RLIMIT_CPU, l->cpu_seconds, l->cpu_seconds);
	if (l->processes)
		add(plan, RLIMIT_NPROC, l->processes, l->processes);
	if (l->open_files)
		add(plan, RLIMIT_NOFILE, l->open_files, l->open_files);
	if (l->file_size_mb)
		add(plan, RLIMIT_FSIZE, l->file_size_mb << 20, l->file_size_mb << 20);
}

int sandbox__limits_apply(struct plan *plan)
{
	static const char *const names[] = {
	    [RLIMIT_CORE] = "RLIMIT_CORE",   [RLIMIT_AS] = "RLIMIT_AS",
	    [RLIMIT_DATA] = "RLIMIT_DATA",   [RLIMIT_CPU] = "RLIMIT_CPU",
	    [RLIMIT_NPROC] = "RLIMIT_NPROC", [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
	    [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
	};

	for (size_t i = 0; i < plan->nrlimits; i++) {
		int res = plan->rlimits[i].resource;
		struct rlimit back;

		plan->fail_detail = names[res];
		if (setrlimit(res, &plan->rlimits[i].value) < 0 || getrlimit(res, &back) < 0)
			return -errno;
		if (back.rlim_cur != plan->rlimits[i].value.rlim_cur ||
		    back.rlim_max != plan->rlimits[i].value.rlim_max)
			return -EPERM;
	}
	plan->fail_detail = NULL;
	return 0;
}
