/* membomb [MAX_MB]: maps and touches memory 1 MiB at a time, reporting every 16 MiB, until the
 * sandbox stops it (OOM kill under a memory cgroup, ENOMEM under RLIMIT_AS) or MAX_MB is reached
 * (the bound that makes it safe to run outside a sandbox). */
#include "probe.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define MIB (1024L * 1024L)

int main(int argc, char **argv)
{
	long max_mb = argc > 1 ? (long)probe_parse_ll(argv[1]) : 1L << 20;
	long mb = 0;

	probe_init();
	while (mb < max_mb) {
		char *p =
		    mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			probe_report("mmap", -1);
			break;
		}
		memset(p, 0xa5, MIB);
		mb++;
		if (mb % 16 == 0)
			probe_note("touched_mb", "%ld", mb);
	}
	probe_note("final_mb", "%ld", mb);
	return 0;
}
