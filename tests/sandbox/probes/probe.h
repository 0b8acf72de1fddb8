/* Shared output helpers for the hostile-agent probes: every attempt prints one
 * machine-readable line "WHAT = VALUE" or "WHAT = -1 ERRNAME" on stdout, flushed at once,
 * so the test driver still sees every line printed before a seccomp kill. */
#ifndef PROBE_H
#define PROBE_H

#include <stdbool.h>

/* Makes stdout line-buffered and stderr unbuffered; call first in main. */
void probe_init(void);

/* Prints "WHAT = RET" when RET >= 0, else "WHAT = -1 ERRNAME" with the current errno.
 * Returns RET unchanged so calls can be wrapped. */
long probe_report(const char *what, long ret);

/* Like probe_report but with an explicit errno value (for calls returning -errno). */
void probe_report_errno(const char *what, int err);

/* Prints "WHAT = TEXT" verbatim (for values that are not syscall results). */
void probe_note(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Name of an errno value ("EPERM"), or its number as text for unnamed ones. */
const char *probe_errname(int err);

/* Parses a decimal or 0x-prefixed integer argument; exits with status 2 on junk. */
long long probe_parse_ll(const char *text);

/* Reads the value of one "Key:\tvalue" line of a /proc status file into OUT (trimmed).
 * Returns true if the key was found. */
bool probe_status_field(const char *path, const char *key, char *out, unsigned long outlen);

#endif
