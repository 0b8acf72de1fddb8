/* exec PATH [ARGS]: execve of a program the sandbox should not contain (a host path that is
 * not mounted); prints the errno when it fails, else the program runs in its place. */
#include "probe.h"

#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char what[4200];

	probe_init();
	if (argc < 2) {
		fprintf(stderr, "usage: exec PATH [ARGS]\n");
		return 2;
	}
	snprintf(what, sizeof(what), "execve(%s)", argv[1]);
	execv(argv[1], argv + 1);
	probe_report(what, -1);
	return 0;
}
