/* fsutil.h: file-tree operations of the registry: copying an agent folder while hashing
 * it and refusing what must not be installed, making a tree read-only, removing it. */
#ifndef AGENTHOST_FSUTIL_H
#define AGENTHOST_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* An agent folder may hold at most this much. */
#define FS_TREE_MAX_BYTES (1LL << 30)
#define FS_TREE_MAX_ENTRIES 100000
#define FS_TREE_MAX_DEPTH 64

/* Copies the tree at src into the existing empty folder dst and writes the hex SHA-256
 * of its names, types, modes' executable bits and contents to digest[65]. Refuses, with
 * -EINVAL and the offending path in err: symlinks that are absolute or lead outside src,
 * special files (devices, fifos, sockets), and trees over the limits above. Other
 * failures are -EIO. */
int fs_copy_tree(const char *src, const char *dst, char digest[65], char *err, size_t errlen);

/* The same walk and digest as fs_copy_tree, copying nothing. */
int fs_digest_tree(const char *src, char digest[65], char *err, size_t errlen);

/* Clears every write bit in the tree (files 0444 or 0555, folders 0555). -errno. */
int fs_make_read_only(const char *path);

/* lchown of every entry of the tree. -errno. */
int fs_chown_tree(const char *path, uid_t uid, gid_t gid);

/* Removes a tree even where it is read-only; a missing path is fine. -errno. */
int fs_remove_tree(const char *path);

/* Removes everything inside dir, keeping dir. */
void fs_empty_dir(const char *dir);

/* mkdir -p. -errno with errno set. */
int fs_mkdir_p(const char *path, mode_t mode);

/* The part of path after its last '/' (borrowed). */
const char *fs_basename(const char *path);

#endif
