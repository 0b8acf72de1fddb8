/* fsutil.c: the registry's tree walks. Everything works on directory fds (openat and
 * friends) with O_NOFOLLOW, so a link swapped in during the walk is never followed. */
#include "fsutil.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
	EVP_MD_CTX *md;
	long long bytes;
	long entries;
	char *err;
	size_t errlen;
	const char *root; /* for messages */
};

const char *fs_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char *copy = xstrdup(path);

	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			free(copy);
			return -errno;
		}
		*p = '/';
	}
	free(copy);
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Lexically resolves a relative link target against the link's folder (rel_dir, relative
 * to the root) and tells whether it stays inside the root. */
static bool link_stays_inside(const char *rel_dir, const char *target)
{
	int depth = 0;
	char *copy;

	if (target[0] == '/')
		return false;
	for (const char *p = rel_dir; *p; p++)
		if (*p == '/')
			depth++;
	if (rel_dir[0])
		depth++;
	copy = xstrdup(target);
	for (char *save, *part = strtok_r(copy, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (strcmp(part, "..") == 0)
			depth--;
		else if (strcmp(part, ".") != 0)
			depth++;
		if (depth < 0)
			break;
	}
	free(copy);
	return depth >= 0;
}

static void hash_str(struct walk *w, const char *s)
{
	EVP_DigestUpdate(w->md, s, strlen(s) + 1);
}

static int walk_fail(struct walk *w, int rc, const char *rel, const char *why)
{
	snprintf(w->err, w->errlen, "%s/%s: %s", w->root, rel, why);
	return rc;
}

static int copy_file(struct walk *w, int sfd, int dfd, const char *name, const char *rel,
                     mode_t mode)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int out = -1, rc = 0;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return walk_fail(w, -EIO, rel, strerror(errno));
	if (dfd >= 0) {
		out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		             (mode & 0111) ? 0755 : 0644);
		if (out < 0) {
			close(in);
			return walk_fail(w, -EIO, rel, strerror(errno));
		}
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		w->bytes += n;
		if (w->bytes > FS_TREE_MAX_BYTES) {
			rc = walk_fail(w, -EINVAL, rel, "the agent folder is larger than 1 GiB");
			break;
		}
		EVP_DigestUpdate(w->md, buf, (size_t)n);
		if (out >= 0 && write(out, buf, (size_t)n) != n) {
			rc = walk_fail(w, -EIO, rel, strerror(errno));
			break;
		}
	}
	if (n < 0 && rc == 0)
		rc = walk_fail(w, -EIO, rel, strerror(errno));
	close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static int walk_dir(struct walk *w, int sfd, int dfd, const char *rel, int depth);

static int walk_entry(struct walk *w, int sfd, int dfd, const char *name, const char *rel_dir,
                      int depth)
{
	char rel[4096], target[4096];
	struct stat sb;
	ssize_t n;

	snprintf(rel, sizeof(rel), "%s%s%s", rel_dir, rel_dir[0] ? "/" : "", name);
	if (++w->entries > FS_TREE_MAX_ENTRIES)
		return walk_fail(w, -EINVAL, rel, "the agent folder has over 100000 entries");
	if (fstatat(sfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return walk_fail(w, -EIO, rel, strerror(errno));
	hash_str(w, rel);
	if (S_ISDIR(sb.st_mode)) {
		hash_str(w, "d");
		int sub = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int dsub = -1, rc;
		if (sub < 0)
			return walk_fail(w, -EIO, rel, strerror(errno));
		if (dfd >= 0 &&
		    (mkdirat(dfd, name, 0755) < 0 ||
		     (dsub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)) {
			close(sub);
			return walk_fail(w, -EIO, rel, strerror(errno));
		}
		rc = walk_dir(w, sub, dsub, rel, depth + 1);
		close(sub);
		if (dsub >= 0)
			close(dsub);
		return rc;
	}
	if (S_ISLNK(sb.st_mode)) {
		n = readlinkat(sfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return walk_fail(w, -EIO, rel, strerror(errno));
		target[n] = '\0';
		if (!link_stays_inside(rel_dir, target))
			return walk_fail(w, -EINVAL, rel,
			                 "symlink points outside the agent folder");
		hash_str(w, "l");
		hash_str(w, target);
		if (dfd >= 0 && symlinkat(target, dfd, name) < 0)
			return walk_fail(w, -EIO, rel, strerror(errno));
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return walk_fail(w, -EINVAL, rel, "not a regular file, folder or symlink");
	hash_str(w, (sb.st_mode & 0111) ? "x" : "f");
	return copy_file(w, sfd, dfd, name, rel, sb.st_mode);
}

static int walk_dir(struct walk *w, int sfd, int dfd, const char *rel, int depth)
{
	struct dirent **entries;
	int n, rc = 0, fd;

	if (depth > FS_TREE_MAX_DEPTH)
		return walk_fail(w, -EINVAL, rel, "folders nested over 64 deep");
	/* scandir wants a path; /proc/self/fd/N names this fd without following links. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sfd);
	fd = sfd;
	n = scandir(path, &entries, NULL, alphasort);
	if (n < 0)
		return walk_fail(w, -EIO, rel, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *name = entries[i]->d_name;
		if (rc == 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
			rc = walk_entry(w, fd, dfd, name, rel, depth);
		free(entries[i]);
	}
	free(entries);
	return rc;
}

static int walk_tree(const char *src, const char *dst, char digest[65], char *err, size_t errlen)
{
	struct walk w = {.md = EVP_MD_CTX_new(), .err = err, .errlen = errlen, .root = src};
	unsigned char raw[32];
	unsigned int rawlen = sizeof(raw);
	int sfd, dfd = -1, rc;

	if (!w.md || !EVP_DigestInit_ex(w.md, EVP_sha256(), NULL))
		abort();
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		EVP_MD_CTX_free(w.md);
		return -EINVAL;
	}
	if (dst && (dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		close(sfd);
		EVP_MD_CTX_free(w.md);
		return -EIO;
	}
	rc = walk_dir(&w, sfd, dfd, "", 0);
	close(sfd);
	if (dfd >= 0)
		close(dfd);
	EVP_DigestFinal_ex(w.md, raw, &rawlen);
	EVP_MD_CTX_free(w.md);
	hex_encode(raw, sizeof(raw), digest);
	return rc;
}

int fs_copy_tree(const char *src, const char *dst, char digest[65], char *err, size_t errlen)
{
	return walk_tree(src, dst, digest, err, errlen);
}

int fs_digest_tree(const char *src, char digest[65], char *err, size_t errlen)
{
	return walk_tree(src, NULL, digest, err, errlen);
}

/* Applies fn to every entry below dirfd (depth first), then to dirfd's own entry. */
static int make_read_only_at(int dirfd)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat sb;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd, de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0 && (rc = make_read_only_at(sub)) < 0)
				break;
			if (fchmodat(dirfd, de->d_name, 0555, 0) < 0)
				rc = -errno;
		} else if (S_ISREG(sb.st_mode)) {
			if (fchmodat(dirfd, de->d_name, (sb.st_mode & 0111) ? 0555 : 0444, 0) < 0)
				rc = -errno;
		}
	}
	closedir(d);
	return rc;
}

static int chown_at(int dirfd, uid_t uid, gid_t gid)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && rc == 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fchownat(dirfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			break;
		}
		int sub =
		    openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			rc = chown_at(sub, uid, gid);
	}
	closedir(d);
	return rc;
}

int fs_chown_tree(const char *path, uid_t uid, gid_t gid)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fchown(fd, uid, gid) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return chown_at(fd, uid, gid);
}

int fs_make_read_only(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = make_read_only_at(fd);
	if (rc == 0 && chmod(path, 0555) < 0)
		rc = -errno;
	return rc;
}

/* Removes everything inside the folder open at dirfd (closes it). */
static int empty_at(int dirfd)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	fchmod(dirfd, 0700); /* read-only folders must be writable to be emptied */
	d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			continue;
		int sub =
		    openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			empty_at(sub);
		if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

void fs_empty_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;

	if (fd < 0)
		return;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return;
	}
	empty_at(fd); /* makes it writable to empty it, and closes fd */
	chmod(dir, sb.st_mode & 07777);
}

int fs_remove_tree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return unlink(path) < 0 ? -errno : 0;
	}
	empty_at(fd);
	return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}
