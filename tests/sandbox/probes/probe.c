/* Output and parsing helpers shared by every hostile-agent probe (see probe.h). */
#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void probe_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
}

const char *probe_errname(int err)
{
	static char buf[32];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

long probe_report(const char *what, long ret)
{
	int err = errno;

	if (ret < 0)
		printf("%s = -1 %s\n", what, probe_errname(err));
	else
		printf("%s = %ld\n", what, ret);
	fflush(stdout);
	errno = err;
	return ret;
}

void probe_report_errno(const char *what, int err)
{
	if (err)
		printf("%s = -1 %s\n", what, probe_errname(err));
	else
		printf("%s = 0\n", what);
	fflush(stdout);
}

void probe_note(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%s = ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

long long probe_parse_ll(const char *text)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 0);
	if (errno || end == text || *end) {
		fprintf(stderr, "probe: not a number: %s\n", text);
		exit(2);
	}
	return v;
}

bool probe_status_field(const char *path, const char *key, char *out, unsigned long outlen)
{
	char line[512];
	size_t klen = strlen(key);
	bool found = false;
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			char *v = line + klen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, outlen, "%s", v);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}
