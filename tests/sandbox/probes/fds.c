/* fds [MAX]: probes every descriptor from 0 to MAX (default 1024) and prints what each open one
 * is, so a test can check nothing but 0-2 and the protocol socket 3 leaked in. */
#include "probe.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int max = argc > 1 ? (int)probe_parse_ll(argv[1]) : 1024;
	long open_count = 0;

	probe_init();
	for (int fd = 0; fd <= max; fd++) {
		char link[64], target[512] = "?";
		ssize_t n;

		if (fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 1] = '\0';
		printf("fd %d = %s\n", fd, target);
		open_count++;
	}
	probe_note("open fds", "%ld", open_count);
	return 0;
}
