/* privileges.c: the child gives up every privilege before the seccomp filter and exec:
 * securebits locked so that no uid change or exec can bring capabilities back, the
 * bounding and ambient sets emptied, effective/permitted/inheritable cleared (all read
 * back); and sets no_new_privs, which the seccomp filter needs. The capabilities dropped here are
 * only those of the child's own user namespace; it never had any on the host. */
#include "internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int drop_bounding(struct plan *plan)
{
	plan->fail_detail = "bounding set";
	for (int cap = 0; cap <= plan->cap_last_cap; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			return -EPERM;
	}
	return 0;
}

static int clear_sets(struct plan *plan)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0, 0, 0}};

	plan->fail_detail = "ambient set";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	plan->fail_detail = "capset";
	if (syscall(SYS_capset, &hdr, data) < 0 || syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return -EPERM;
	return 0;
}

int sandbox__privileges_drop(struct plan *plan)
{
	const int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
	                 SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
	                 SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	int rc;

	plan->fail_detail = "securebits";
	if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != bits)
		return -EPERM;
	rc = drop_bounding(plan);
	if (rc == 0)
		rc = clear_sets(plan);
	if (rc == 0)
		plan->fail_detail = NULL;
	return rc;
}

int sandbox__no_new_privs(struct plan *plan)
{
	(void)plan;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : -EPERM;
}
