/* mounts.c: the child's filesystem steps, in three parts. new_root: make every mount
 * private, mount a tmpfs over /tmp (seen only in the child's own mount namespace) and
 * pivot into it, the host's root now under /oldroot. mounts: walk the plan's list, binding
 * host paths from /oldroot/... into the new root. old_root: detach /oldroot and make the
 * new root read-only. Every mount is read back with statfs; a mount that does not carry the
 * flags asked for fails its step. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NEW_ROOT "/tmp"

/* The ST_* flags statfs must show for MOUNT_ATTR_* attributes or MS_* flags. */
static unsigned long st_from_attrs(unsigned attrs)
{
	return (attrs & MOUNT_ATTR_RDONLY ? ST_RDONLY : 0) |
	       (attrs & MOUNT_ATTR_NOSUID ? ST_NOSUID : 0) |
	       (attrs & MOUNT_ATTR_NODEV ? ST_NODEV : 0) |
	       (attrs & MOUNT_ATTR_NOEXEC ? ST_NOEXEC : 0);
}

static unsigned long st_from_ms(unsigned long flags)
{
	return (flags & MS_RDONLY ? ST_RDONLY : 0) | (flags & MS_NOSUID ? ST_NOSUID : 0) |
	       (flags & MS_NODEV ? ST_NODEV : 0) | (flags & MS_NOEXEC ? ST_NOEXEC : 0);
}

static int read_back(const char *target, unsigned long want)
{
	struct statfs st;

	if (statfs(target, &st) < 0)
		return -errno;
	return ((unsigned long)st.f_flags & want) == want ? 0 : -EPERM;
}

static int set_attrs(const char *target, unsigned attrs, unsigned flags)
{
	struct mount_attr attr = {.attr_set = attrs};

	if (syscall(SYS_mount_setattr, AT_FDCWD, target, flags, &attr, sizeof(attr)) < 0)
		return -errno;
	return read_back(target, st_from_attrs(attrs));
}

static int create_point(const struct mount_op *op)
{
	int rc = op->is_dir ? mkdir(op->target, 0755) : mknod(op->target, S_IFREG | 0444, 0);

	/* It exists when it lies inside an earlier bind (/usr/share/...): mount over it. */
	return rc < 0 && errno != EEXIST ? -errno : 0;
}

static int write_file(const struct mount_op *op)
{
	int fd = open(op->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0444);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (op->data[len])
		len++;
	n = write(fd, op->data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

static int bind_op(const struct mount_op *op, unsigned long ms_flags, unsigned at_flags)
{
	if (mount(op->source, op->target, NULL, MS_BIND | ms_flags, NULL) < 0)
		return -errno;
	return set_attrs(op->target, op->attrs, at_flags);
}

static int mount_fs(const struct mount_op *op, const char *type)
{
	if (mount(type, op->target, type, op->flags, op->data) < 0)
		return -errno;
	return read_back(op->target, st_from_ms(op->flags));
}

static int mount_proc(const struct mount_op *op)
{
	int rc = mount_fs(op, "proc");

	if (rc == 0 && faccessat(AT_FDCWD, op->absent, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		rc = -EPERM; /* the mask did not take */
	return rc;
}

static int apply_op(const struct mount_op *op)
{
	switch (op->kind) {
	case OP_CREATE:
		return create_point(op);
	case OP_TMPFS:
		return mount_fs(op, "tmpfs");
	case OP_BIND:
		/* Recursive both ways: no submount of a read-only tree stays writable. */
		return bind_op(op, MS_REC, AT_RECURSIVE);
	case OP_DEVICE:
		return bind_op(op, 0, 0);
	case OP_SYMLINK:
		return symlink(op->source, op->target) < 0 ? -errno : 0;
	case OP_FILE:
		return write_file(op);
	case OP_PROC:
		return mount_proc(op);
	case OP_READONLY:
		return set_attrs(op->target, MOUNT_ATTR_RDONLY, 0);
	}
	return -EINVAL;
}

/* After this the host's root is at /oldroot and ours (an empty tmpfs) is "/". */
int sandbox__mounts_new_root(struct plan *plan)
{
	/* Nothing we mount may propagate back to the host. */
	plan->fail_detail = "make / private";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	plan->fail_detail = "tmpfs";
	if (mount("tmpfs", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV,
	          "mode=0755,size=1m,nr_inodes=512") < 0)
		return -errno;
	plan->fail_detail = "pivot_root";
	if (mkdir(NEW_ROOT "/oldroot", 0700) < 0 ||
	    syscall(SYS_pivot_root, NEW_ROOT, NEW_ROOT "/oldroot") < 0 || chdir("/") < 0)
		return -errno;
	plan->fail_detail = NULL;
	return 0;
}

int sandbox__mounts_apply(struct plan *plan)
{
	for (size_t i = 0; i < plan->nops; i++) {
		int rc = apply_op(&plan->ops[i]);

		if (rc < 0) {
			plan->fail_step = plan->ops[i].step;
			return rc;
		}
	}
	return 0;
}

/* Detaching the old root leaves nothing of the host reachable but what was bound in. */
int sandbox__mounts_old_root(struct plan *plan)
{
	plan->fail_detail = "detach /oldroot";
	if (umount2("/oldroot", MNT_DETACH) < 0 || rmdir("/oldroot") < 0)
		return -errno;
	plan->fail_detail = "read-only root";
	return set_attrs("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0);
}
