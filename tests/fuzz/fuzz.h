/* fuzz.h: what every fuzz target shares. REQUIRE states an invariant of the code under
 * test; when it does not hold it prints which one and traps, a crash libFuzzer records
 * (and the replay driver reports) like any other. */
#ifndef AGENTHOST_FUZZ_H
#define AGENTHOST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

/* The libFuzzer entry points each target defines; Initialize is optional. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
