/* userns.c: who the sandboxed program is. Inside its user namespace it is uid/gid 1000
 * (SANDBOX_UID/GID) with no capabilities; on the host it is the daemon's own ids (ordinary
 * user) or SANDBOX_ROOT_HOST_UID/GID (root), never host root.
 *
 * The child writes its own uid_map and gid_map, mapping 1000 to its own effective ids: the
 * one mapping the kernel lets a process write for itself without privilege in the parent
 * namespace. That keeps the parent out of the loop, which clone(CLONE_VFORK) requires (the
 * parent sleeps until exec). For a root daemon the child's effective ids must therefore
 * already be the target ids at clone time: the spawning thread switches its own effective
 * uid/gid and drops its supplementary groups with raw syscalls (which, unlike glibc's
 * wrappers, change this thread only), clones, and switches back. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- parent side ---- */

/* The child writes /proc/self/uid_map, which the kernel gives to root when the process's
 * memory (shared with us until exec) is non-dumpable; changing euid makes it so. So the
 * spawning process is dumpable for the moment of the clone, and back as it was after. */
static void make_dumpable(void)
{
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

int sandbox__userns_switch(bool as_root, uid_t uid, gid_t gid, struct sandbox_saved_ids *saved)
{
	saved->switched = false;
	saved->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (!as_root) {
		make_dumpable();
		return 0;
	}
	saved->euid = geteuid();
	saved->egid = getegid();
	saved->ngroups = getgroups(sizeof(saved->groups) / sizeof(saved->groups[0]), saved->groups);
	if (saved->ngroups < 0)
		return -errno;
	/* Order matters: groups and gid need CAP_SETGID, which the uid change takes away. */
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		return -errno;
	saved->switched = true;
	if (syscall(SYS_setresgid, -1, gid, -1) < 0 || syscall(SYS_setresuid, -1, uid, -1) < 0) {
		int rc = -errno;

		sandbox__userns_restore(saved);
		return rc;
	}
	make_dumpable();
	return 0;
}

/* The thread's real and saved uid stayed 0, so effective capabilities come back with
 * euid 0. */
void sandbox__userns_restore(struct sandbox_saved_ids *saved)
{
	if (saved->switched && (syscall(SYS_setresuid, -1, saved->euid, -1) < 0 ||
	                        syscall(SYS_setresgid, -1, saved->egid, -1) < 0 ||
	                        syscall(SYS_setgroups, saved->ngroups, saved->groups) < 0))
		abort(); /* a daemon left with the wrong ids must not go on */
	saved->switched = false;
	if (saved->dumpable >= 0 && saved->dumpable != prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
		prctl(PR_SET_DUMPABLE, saved->dumpable, 0, 0, 0);
}

/* ---- child side ---- */

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n, len = (ssize_t)strlen(text);

	if (fd < 0)
		return -errno;
	n = write(fd, text, (size_t)len);
	if (n != len) {
		int rc = n < 0 ? -errno : -EIO;

		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

static int check_ids(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (r != SANDBOX_UID || e != SANDBOX_UID || s != SANDBOX_UID || rg != SANDBOX_GID ||
	    eg != SANDBOX_GID || sg != SANDBOX_GID)
		return -EPERM;
	return 0;
}

int sandbox__userns_enter(struct plan *plan)
{
	int rc;

	plan->fail_detail = "setgroups";
	rc = write_proc("/proc/self/setgroups", "deny");
	if (rc < 0)
		return rc;
	plan->fail_detail = "gid_map";
	rc = write_proc("/proc/self/gid_map", plan->gid_map);
	if (rc < 0)
		return rc;
	plan->fail_detail = "uid_map";
	rc = write_proc("/proc/self/uid_map", plan->uid_map);
	if (rc < 0)
		return rc;
	/* The root path cloned with real and saved ids of 0, unmapped here: make all three
	 * the mapped id so nothing of host root stays with the process. Capabilities in this
	 * namespace survive (its root uid is not mapped), and are dropped later. */
	plan->fail_detail = "setresgid/setresuid";
	if (syscall(SYS_setresgid, SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0 ||
	    syscall(SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0)
		return -errno;
	plan->fail_detail = "ids read back";
	return check_ids();
}
