/* exec PATH [ARGS]: execve of a program the sandbox should not contain (a host path that is
 * not mounted); prints the errno when it fails, else the program runs in its place.
 * exec --copy SRC DST [ARGS]: first copies SRC to DST with mode 0755 — a binary the agent
 * brings in itself, e.g. into its writable scratch folder — then executes DST. */
#include "probe.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Copies src to dst (created 0755); returns 0 or -1 after printing what failed. */
static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	ssize_t n;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (probe_report("open(SRC)", in) < 0 || probe_report("create(DST)", out) < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return (int)probe_report("write(DST)", -1);
	close(in);
	close(out);
	return (int)probe_report("copy", n < 0 ? -1 : 0);
}

int main(int argc, char **argv)
{
	char what[4200];
	int first = 1;

	probe_init();
	if (argc > 3 && strcmp(argv[1], "--copy") == 0) {
		if (copy_file(argv[2], argv[3]) < 0)
			return 0;
		first = 3;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: exec PATH [ARGS] | exec --copy SRC DST [ARGS]\n");
		return 2;
	}
	snprintf(what, sizeof(what), "execve(%s)", argv[first]);
	execv(argv[first], argv + first);
	probe_report(what, -1);
	return 0;
}
