/* log.c: logfmt lines on stderr, one write(2) per line so lines from threads never mix. */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static enum log_level current_level = LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= current_level;
}

void log_emit(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[2048], ts[32];
	struct timeval tv;
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	time_rfc3339((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s ", ts, level_names[level], event);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}

const char *log_quote(const char *s, char *buf, unsigned len)
{
	unsigned o = 0;

	if (len < 3)
		return "\"\"";
	buf[o++] = '"';
	for (; s && *s && o + 3 < len; s++) {
		if (*s == '"' || *s == '\\') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
