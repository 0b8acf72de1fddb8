/* host.c: facts about this machine that every spawn needs, read once per process: how the
 * host lays out /bin, /lib* (folders or symlinks into /usr), /etc/localtime, and the
 * highest capability number. */
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sandbox_host host;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static char *read_link(const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return sandbox__xstrdup(buf);
}

static int read_cap_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int v = 40; /* CAP_CHECKPOINT_RESTORE, the last one of Linux 6.x */

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 40;
		fclose(f);
	}
	return v;
}

static void host_probe(void)
{
	static const char *const tops[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
	struct stat st;

	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		char *path = sandbox__xasprintf("/%s", tops[i]);

		host.top[i].name = tops[i];
		host.top[i].path = path;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode))
			host.top[i].link = read_link(path);
		else if (S_ISDIR(st.st_mode))
			host.top[i].dir = true;
	}
	if (lstat("/etc/localtime", &st) == 0) {
		if (S_ISLNK(st.st_mode))
			host.localtime_link = read_link("/etc/localtime");
		else if (S_ISREG(st.st_mode))
			host.localtime_file = true;
	}
	host.cap_last_cap = read_cap_last_cap();
}

const struct sandbox_host *sandbox__host(void)
{
	pthread_once(&host_once, host_probe);
	return &host;
}
