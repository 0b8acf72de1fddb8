/* check.h: the few assertion macros the C unit tests share. A failed CHECK prints the
 * file, line and expression and marks the test failed; the test keeps going so one run
 * shows every failure. main() ends with `return check_summary();`, which prints the
 * plain closing line "N passed, N failed". */
#ifndef AGENTHOST_CHECK_H
#define AGENTHOST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(expr)                                                                        \
	do {                                                                               \
		if (expr) {                                                                \
			check_passed++;                                                    \
		} else {                                                                   \
			check_failed++;                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
				#expr);                                                    \
		}                                                                          \
	} while (0)

#define CHECK_INT(a, b)                                                                    \
	do {                                                                               \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
		if (check_a_ == check_b_) {                                                \
			check_passed++;                                                    \
		} else {                                                                   \
			check_failed++;                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",  \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);           \
		}                                                                          \
	} while (0)

#define CHECK_STR(a, b)                                                                    \
	do {                                                                               \
		const char *check_a_ = (a), *check_b_ = (b);                               \
		if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {             \
			check_passed++;                                                    \
		} else {                                                                   \
			check_failed++;                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
				__FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",  \
				check_b_ ? check_b_ : "(null)");                             \
		}                                                                          \
	} while (0)

static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
