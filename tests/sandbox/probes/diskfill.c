/* diskfill MODE ...: fills the writable scratch ("fill PATH MAX_MB"), grows one file past
 * RLIMIT_FSIZE ("bigfile PATH MAX_MB", "sparse PATH"), creates empty files ("inodes DIR MAX"),
 * or opens files until RLIMIT_NOFILE ("fds MAX"). Each reports how far it got and the errno
 * that stopped it. SIGXFSZ is ignored so the size limit shows as EFBIG. */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static int write_until_error(const char *path, long max_mb)
{
	static char buf[CHUNK];
	long long written = 0, limit = (long long)max_mb * 1024 * 1024;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (probe_report("open", fd) < 0)
		return 1;
	memset(buf, 'F', sizeof(buf));
	while (written < limit) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n < 0) {
			probe_report("write", -1);
			break;
		}
		written += n;
		if (n < (ssize_t)sizeof(buf)) {
			probe_note("short write", "%zd", n);
		}
	}
	probe_note("written_kb", "%lld", written / 1024);
	close(fd);
	return 0;
}

static int sparse_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (probe_report("open", fd) < 0)
		return 1;
	probe_report("pwrite(offset 1 GiB)", pwrite(fd, "x", 1, 1L << 30));
	probe_report("ftruncate(1 GiB)", ftruncate(fd, 1L << 30));
	close(fd);
	return 0;
}

static int make_inodes(const char *dir, long max)
{
	char path[4096];
	long made = 0;

	while (made < max) {
		snprintf(path, sizeof(path), "%s/i%ld", dir, made);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			probe_report("open", -1);
			break;
		}
		close(fd);
		made++;
	}
	probe_note("files created", "%ld", made);
	return 0;
}

static int open_fds(long max)
{
	long opened = 0;

	while (opened < max) {
		if (open("/dev/null", O_RDONLY) < 0) {
			probe_report("open", -1);
			break;
		}
		opened++;
	}
	probe_note("fds opened", "%ld", opened);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	probe_init();
	signal(SIGXFSZ, SIG_IGN);
	if ((strcmp(mode, "fill") == 0 || strcmp(mode, "bigfile") == 0) && argc == 4)
		return write_until_error(argv[2], (long)probe_parse_ll(argv[3]));
	if (strcmp(mode, "sparse") == 0 && argc == 3)
		return sparse_write(argv[2]);
	if (strcmp(mode, "inodes") == 0 && argc == 4)
		return make_inodes(argv[2], (long)probe_parse_ll(argv[3]));
	if (strcmp(mode, "fds") == 0 && argc == 3)
		return open_fds((long)probe_parse_ll(argv[2]));
	fprintf(stderr, "usage: diskfill fill|bigfile PATH MAX_MB | sparse PATH | inodes DIR MAX | "
	                "fds MAX\n");
	return 2;
}
