/* kill MODE [PID]: tries to kill what lies outside the sandbox — "pid PID" (a host pid the test
 * passes), "parent" (getppid()), "all" (kill(-1, SIGKILL)) — then prints "alive" so a test sees
 * the probe itself went on. Never run "all" outside a sandbox. */
#include "probe.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	probe_init();
	if (strcmp(mode, "pid") == 0 && argc == 3) {
		probe_report("kill(PID,SIGKILL)", kill((pid_t)probe_parse_ll(argv[2]), SIGKILL));
	} else if (strcmp(mode, "parent") == 0) {
		pid_t parent = getppid();

		probe_note("getppid", "%d", (int)parent);
		/* The parent of a pid namespace's init is outside it: getppid() is 0 there, and
		 * kill(0) would only hit our own process group, so only signal a real pid. */
		if (parent > 0)
			probe_report("kill(getppid(),SIGKILL)", kill(parent, SIGKILL));
	} else if (strcmp(mode, "all") == 0) {
		probe_report("kill(-1,SIGKILL)", kill(-1, SIGKILL));
	} else {
		fprintf(stderr, "usage: kill pid PID | parent | all\n");
		return 2;
	}
	probe_note("alive", "1");
	return 0;
}
