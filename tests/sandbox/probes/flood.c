/* flood FD [MAX_MB]: writes 64 KiB blocks to FD (1 stdout, 2 stderr, 3 the protocol socket)
 * as fast as it can, up to MAX_MB (default 1024), so the host's output cap must end it. */
#include "probe.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static char buf[64 * 1024];
	int fd;
	long long max, written = 0;

	probe_init();
	if (argc < 2) {
		fprintf(stderr, "usage: flood FD [MAX_MB]\n");
		return 2;
	}
	fd = (int)probe_parse_ll(argv[1]);
	max = (argc > 2 ? probe_parse_ll(argv[2]) : 1024) * 1024 * 1024;
	memset(buf, 'A', sizeof(buf));
	for (size_t i = 63; i < sizeof(buf); i += 64)
		buf[i] = '\n';
	while (written < max) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n < 0) {
			perror("flood: write");
			return 1;
		}
		written += n;
	}
	fprintf(stderr, "flood: bound reached after %lld bytes\n", written);
	return 0;
}
