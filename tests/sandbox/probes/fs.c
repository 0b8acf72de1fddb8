/* fs OP ARGS: one filesystem attempt per run, printed as "OP(PATH) = RESULT". Reading secrets
 * (read, find, ls), writing outside the scratch folder (create, write, mkdir, chmod, unlink,
 * symlink-write, hardlink, rename, symlink-race), /proc tricks (openw, exe-write, exe-write-all,
 * kallsyms, pids) and mountinfo for diagnostics. */
#include "probe.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char what[4200];

/* Formats "OP(PATH)" without disturbing errno, which the caller is about to report. */
static const char *label(const char *op, const char *path)
{
	int err = errno;

	snprintf(what, sizeof(what), "%s(%s)", op, path);
	errno = err;
	return what;
}

/* Reports the result RET of a one-call operation; always "succeeds" as a probe. */
static int simple(const char *op, const char *path, long ret)
{
	probe_report(label(op, path), ret);
	return 0;
}

/* Reads PATH and prints its size and the first line (for secrets that must stay unseen). */
static int op_read(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (probe_report(label("open", path), fd) < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (total == 0) {
			buf[strcspn(buf, "\n")] = '\0';
			for (char *c = buf; *c; c++)
				if (!isprint((unsigned char)*c))
					*c = '.';
			probe_note("first line", "%.200s", buf);
		}
		total += n;
	}
	probe_report(label("read", path), n < 0 ? -1 : (long)total);
	close(fd);
	return 0;
}

/* Reports whether NEEDLE occurs in PATH (for secrets that must not be there). */
static int op_find(const char *path, const char *needle)
{
	static char buf[1 << 20];
	size_t total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (probe_report(label("open", path), fd) < 0)
		return 0;
	while (total < sizeof(buf) - 1 && (n = read(fd, buf + total, sizeof(buf) - 1 - total)) > 0)
		total += (size_t)n;
	close(fd);
	probe_note(label("found", needle), "%s",
	           memmem(buf, total, needle, strlen(needle)) ? "yes" : "no");
	return 0;
}

/* Opens PATH for writing and closes it without writing a byte: for files where a write would
 * be harmful (/proc/sysrq-trigger, core_pattern) even the open must fail. */
static int op_openw(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	probe_report(label("open-write", path), fd);
	if (fd >= 0)
		close(fd);
	return 0;
}

static int op_ls(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	long n = 0;

	if (!d) {
		probe_report(label("opendir", path), -1);
		return 0;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	probe_note(label("entries", path), "%ld", n);
	closedir(d);
	return 0;
}

static int write_open(const char *op, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0755);

	if (probe_report(label(op, path), fd) >= 0) {
		probe_report("write", write(fd, "#", 1));
		close(fd);
	}
	return 0;
}

/* /proc/kallsyms with kptr_restrict=0 shows real kernel addresses to anyone who can read it. */
static int op_kallsyms(void)
{
	char line[512];
	long lines = 0, nonzero = 0;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f) {
		probe_report("open(/proc/kallsyms)", -1);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (strtoull(line, NULL, 16) != 0)
			nonzero++;
	}
	fclose(f);
	probe_note("kallsyms lines", "%ld", lines);
	probe_note("kallsyms nonzero addresses", "%ld", nonzero);
	return 0;
}

static int op_pids(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char list[4096] = "";
	size_t used = 0;

	if (!d) {
		probe_report("opendir(/proc)", -1);
		return 0;
	}
	while ((e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0]) && used + 16 < sizeof(list))
			used +=
			    (size_t)snprintf(list + used, sizeof(list) - used, "%s ", e->d_name);
	closedir(d);
	probe_note("pids", "%s", list);
	return 0;
}

/* Tries to open the executable of every visible process for writing: a host binary reachable
 * through /proc/PID/exe (runc's CVE-2019-5736) would be overwritten this way. */
static int op_exe_write_all(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long tried = 0, opened = 0;

	if (!d) {
		probe_report("opendir(/proc)", -1);
		return 0;
	}
	while ((e = readdir(d))) {
		char path[300];
		int fd;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", e->d_name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		probe_report(label("open-write", path), fd);
		tried++;
		if (fd >= 0) {
			opened++;
			close(fd);
		}
	}
	closedir(d);
	probe_note("exe opened for writing", "%ld of %ld", opened, tried);
	return 0;
}

static int op_mountinfo(void)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f) {
		probe_report("open(/proc/self/mountinfo)", -1);
		return 0;
	}
	while (fgets(line, sizeof(line), f))
		printf("mount %s", line);
	fclose(f);
	return 0;
}

static const char *race_link;
static const char *race_targets[2];
static atomic_bool race_stop;

/* Flips race_link between a harmless target and the forbidden one as fast as it can. */
static void *race_flipper(void *arg)
{
	char tmp[4200];
	unsigned i = 0;

	(void)arg;
	snprintf(tmp, sizeof(tmp), "%s.tmp", race_link);
	while (!atomic_load(&race_stop)) {
		unlink(tmp);
		if (symlink(race_targets[i++ & 1], tmp) == 0)
			rename(tmp, race_link);
	}
	return NULL;
}

/* Opens LINK for writing 2000 times while it flips to TARGET; a sandbox hole would let one
 * open land on TARGET. Prints how many opens succeeded and whether TARGET now exists. */
static int op_symlink_race(const char *link, const char *harmless, const char *target)
{
	pthread_t t;
	long opened = 0, last_err = 0;
	struct stat st;

	race_link = link;
	race_targets[0] = harmless;
	race_targets[1] = target;
	if (symlink(harmless, link) != 0) {
		probe_report(label("symlink", link), -1);
		return 0;
	}
	pthread_create(&t, NULL, race_flipper, NULL);
	for (int i = 0; i < 2000; i++) {
		int fd = open(link, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			opened++;
			if (write(fd, "r", 1) < 0)
				last_err = errno;
			close(fd);
		} else if (errno != ENOENT) {
			last_err = errno;
		}
	}
	atomic_store(&race_stop, true);
	pthread_join(t, NULL);
	probe_note("race opens succeeded", "%ld", opened);
	probe_note("race last error", "%s", last_err ? probe_errname((int)last_err) : "none");
	probe_report(label("stat", target), stat(target, &st));
	return 0;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	const char *a = argc > 2 ? argv[2] : NULL;
	const char *b = argc > 3 ? argv[3] : NULL;

	probe_init();
	if (strcmp(op, "read") == 0 && a)
		return op_read(a);
	if (strcmp(op, "find") == 0 && a && b)
		return op_find(a, b);
	if (strcmp(op, "openw") == 0 && a)
		return op_openw(a);
	if (strcmp(op, "ls") == 0 && a)
		return op_ls(a);
	if (strcmp(op, "create") == 0 && a)
		return write_open("create", a, O_WRONLY | O_CREAT | O_TRUNC);
	if (strcmp(op, "write") == 0 && a)
		return write_open("open-write", a, O_WRONLY);
	if (strcmp(op, "rdwr") == 0 && a)
		return write_open("open-rdwr", a, O_RDWR);
	if (strcmp(op, "mkdir") == 0 && a)
		return simple("mkdir", a, mkdir(a, 0755));
	if (strcmp(op, "chmod") == 0 && a)
		return simple("chmod", a, chmod(a, 04755));
	if (strcmp(op, "unlink") == 0 && a)
		return simple("unlink", a, unlink(a));
	if (strcmp(op, "symlink-write") == 0 && a && b) {
		probe_report(label("symlink", b), symlink(a, b));
		return write_open("create", b, O_WRONLY | O_CREAT | O_TRUNC);
	}
	if (strcmp(op, "hardlink") == 0 && a && b)
		return simple("link", b, link(a, b));
	if (strcmp(op, "rename") == 0 && a && b)
		return simple("rename", b, rename(a, b));
	if (strcmp(op, "symlink-race") == 0 && a && b && argc > 4)
		return op_symlink_race(a, b, argv[4]);
	if (strcmp(op, "exe-write") == 0)
		return write_open("open-write", "/proc/self/exe", O_WRONLY);
	if (strcmp(op, "exe-write-all") == 0)
		return op_exe_write_all();
	if (strcmp(op, "kallsyms") == 0)
		return op_kallsyms();
	if (strcmp(op, "pids") == 0)
		return op_pids();
	if (strcmp(op, "mountinfo") == 0)
		return op_mountinfo();
	fprintf(stderr, "usage: fs OP ARGS (see the file's first comment)\n");
	return 2;
}
