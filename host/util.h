/* util.h: the few helpers every host module needs: allocation that aborts on failure
 * (the daemon has no sane way on without memory), RFC 3339 time, random identifiers and
 * SHA-256 hex. */
#ifndef AGENTHOST_UTIL_H
#define AGENTHOST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats ms since the epoch as "2026-11-21T23:59:00.123Z" into buf (>= 32 bytes). */
char *time_rfc3339(int64_t ms, char *buf, size_t len);

/* Fills buf with n bytes from getrandom(2); aborts if the kernel cannot supply them. */
void random_bytes(void *buf, size_t n);
/* Writes prefix followed by the hex of nbytes random bytes into out (caller sizes it:
 * strlen(prefix) + 2 * nbytes + 1). */
void random_id(const char *prefix, size_t nbytes, char *out, size_t outlen);

/* Hex encoding of n bytes into out (2n + 1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Replaces every byte of s that is not part of a valid UTF-8 sequence with '?', in
 * place, so text from outside can go into JSON. Returns true if s was valid already. */
bool utf8_sanitize(char *s);

/* SHA-256 of data into out[32]. */
void sha256(const void *data, size_t len, unsigned char out[32]);

#endif
