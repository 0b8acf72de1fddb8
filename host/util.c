/* util.c: allocation, time formatting, randomness and hashing shared by the host modules. */
#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void out_of_memory(void)
{
	fputs("agenthost: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		out_of_memory();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory();
	va_end(ap);
	return s;
}

char *time_rfc3339(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}

void random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "agenthost: getrandom: %s\n", strerror(errno));
			abort();
		}
		p += got;
		n -= (size_t)got;
	}
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void random_id(const char *prefix, size_t nbytes, char *out, size_t outlen)
{
	unsigned char raw[64];
	char hex[129];

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	random_bytes(raw, nbytes);
	hex_encode(raw, nbytes, hex);
	snprintf(out, outlen, "%s%s", prefix, hex);
}

void sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int outlen = 32;

	if (!EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL))
		abort();
}

/* Length of the valid UTF-8 sequence at p, or 0 (overlongs, surrogates and code points
 * above U+10FFFF are invalid, as in RFC 3629). */
static size_t utf8_sequence(const unsigned char *p)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	bool valid = true;

	while (*p) {
		size_t n = utf8_sequence(p);
		if (n == 0) {
			*p++ = '?';
			valid = false;
		} else {
			p += n;
		}
	}
	return valid;
}
