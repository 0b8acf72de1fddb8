/* check.c: what sandbox_spawn verifies before it starts anything, also offered alone as
 * sandbox_policy_check so that an install can reject a manifest early. The child binds the
 * host paths by name later, as the host uid the program runs as: see docs/sandbox.md for
 * why, and for what that asks of the folders on the way. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int sandbox__policy_validate(const struct sandbox_policy *p, char *err, size_t len)
{
	if (p->error)
		return sandbox__fail(err, len, -EINVAL, "policy", "%s", p->error);
	if (!p->argv)
		return sandbox__fail(err, len, -EINVAL, "policy", "no argv");
	if (!p->agent_dir)
		return sandbox__fail(err, len, -EINVAL, "policy", "no agent folder");
	if (geteuid() != 0 && p->host_ids_set &&
	    (p->host_uid != geteuid() || p->host_gid != getegid()))
		return sandbox__fail(err, len, -EPERM, "policy",
		                     "only root can choose the host ids a program runs as");
	return 0;
}

int sandbox__check_agent_dir(const struct sandbox_policy *p, char *err, size_t len)
{
	struct stat st;

	if (stat(p->agent_dir, &st) < 0)
		return sandbox__fail(err, len, -errno, "agent_dir", "%s", p->agent_dir);
	if (!S_ISDIR(st.st_mode))
		return sandbox__fail(err, len, -ENOTDIR, "agent_dir", "%s", p->agent_dir);
	return 0;
}

/* Each path must be a folder or a regular file; is_dir[i] says which. */
int sandbox__check_paths(const struct sandbox_policy *p, bool *is_dir, char *err, size_t len)
{
	for (size_t i = 0; i < p->paths_len; i++) {
		struct stat st;

		if (stat(p->paths[i].path, &st) < 0)
			return sandbox__fail(err, len, -errno, "paths", "%s", p->paths[i].path);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			return sandbox__fail(err, len, -EINVAL, "paths",
			                     "%s is neither a folder nor a file", p->paths[i].path);
		is_dir[i] = S_ISDIR(st.st_mode);
	}
	return 0;
}

int sandbox_policy_check(const struct sandbox_policy *p, char *err, size_t len)
{
	const struct sock_fprog *filter;
	bool *dirs;
	int rc = sandbox__policy_validate(p, err, len);

	if (rc == 0)
		rc = sandbox__seccomp_get(p->profile, p->network, p->extra_syscalls, &filter, err,
		                          len);
	if (rc == 0)
		rc = sandbox__check_agent_dir(p, err, len);
	if (rc < 0)
		return rc;
	dirs = sandbox__xcalloc(p->paths_len, sizeof(*dirs));
	rc = sandbox__check_paths(p, dirs, err, len);
	free(dirs);
	return rc;
}
