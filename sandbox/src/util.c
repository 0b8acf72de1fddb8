/* util.c: the small helpers every file of libahsandbox uses: aborting allocation, string
 * vectors and the "step: strerror: detail" error messages. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(void)
{
	fputs("libahsandbox: out of memory\n", stderr);
	abort();
}

void *sandbox__xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *sandbox__xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *sandbox__xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

char *sandbox__xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		out_of_memory();
	return d;
}

char *sandbox__xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory();
	va_end(ap);
	return s;
}

char **sandbox__strv_dup(const char *const *v)
{
	size_t n = 0;
	char **d;

	while (v && v[n])
		n++;
	d = sandbox__xcalloc(n + 1, sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = sandbox__xstrdup(v[i]);
	return d;
}

void sandbox__strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* "step: strerror" or "step: strerror (detail)": the line starts the same whatever the
 * detail, so that a reader (or a test) can rely on the first two parts. */
int sandbox__fail(char *buf, size_t len, int rc, const char *step, const char *fmt, ...)
{
	char detail[SANDBOX_ERR_MAX] = "";

	if (!buf || !len)
		return rc;
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (detail[0])
		snprintf(buf, len, "%s: %s (%s)", step, strerror(-rc), detail);
	else
		snprintf(buf, len, "%s: %s", step, strerror(-rc));
	return rc;
}
