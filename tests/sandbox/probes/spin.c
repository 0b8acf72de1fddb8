/* spin MODE: "cpu" burns CPU and "sleep" blocks, each for at most 60 s, so only a sandbox limit
 * (RLIMIT_CPU or the host's wall-clock timeout) ends them early; reaching the bound prints
 * "bound reached" and exits 0, which a test reads as "the limit did not work". */
#include "probe.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BOUND_SECONDS 60

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	time_t start = time(NULL);

	probe_init();
	if (strcmp(mode, "cpu") == 0) {
		volatile unsigned long n = 0;

		probe_note("spinning", "1");
		while (time(NULL) - start < BOUND_SECONDS)
			for (int i = 0; i < 1000000; i++)
				n++;
	} else if (strcmp(mode, "sleep") == 0) {
		probe_note("sleeping", "1");
		while (time(NULL) - start < BOUND_SECONDS)
			sleep(1);
	} else {
		fprintf(stderr, "usage: spin cpu|sleep\n");
		return 2;
	}
	probe_note("bound reached", "%d", BOUND_SECONDS);
	return 0;
}
