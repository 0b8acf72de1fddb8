/* input.c: where the input of a call comes from and what JSON it is (see input.h). */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536

enum ctl_input_source ctl_input_source(const char *arg, bool stdin_is_tty)
{
	if (arg)
		return strcmp(arg, "-") ? CTL_INPUT_ARG : CTL_INPUT_STDIN;
	return stdin_is_tty ? CTL_INPUT_NONE : CTL_INPUT_STDIN;
}

static bool json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether the text's first non-blank character can only open a JSON value. */
static bool starts_like_json(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len && json_space(text[i]))
		i++;
	return i < len && (strchr("{[\"-", text[i]) || (text[i] >= '0' && text[i] <= '9'));
}

static bool only_space(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!json_space(text[i]))
			return false;
	return true;
}

/* The text as a JSON string, without its trailing line ends. */
static int wrap_as_string(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	*out = json_stringn(text, len);
	if (!*out) {
		snprintf(err, errlen, "the input is neither JSON nor UTF-8 text");
		return -1;
	}
	return 0;
}

int ctl_input_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;

	*out = NULL;
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "the input holds a NUL byte");
		return -1;
	}
	if (only_space(text, len)) {
		*out = json_null();
		return 0;
	}
	*out = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (*out)
		return 0;
	if (!starts_like_json(text, len))
		return wrap_as_string(text, len, out, err, errlen);
	snprintf(err, errlen, "the input is not valid JSON: line %d, column %d: %s", jerr.line,
	         jerr.column, jerr.text);
	return -1;
}

int ctl_input_read(int fd, size_t max, char **text, size_t *len, char *err, size_t errlen)
{
	size_t cap = READ_CHUNK, used = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		abort();
	for (;;) {
		ssize_t n;

		if (used == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				abort();
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read the input from stdin: %s",
			         strerror(errno));
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			snprintf(err, errlen, "the input on stdin is larger than %zu bytes", max);
			free(buf);
			return -1;
		}
	}
	buf[used] = '\0';
	*text = buf;
	*len = used;
	return 0;
}

void ctl_lines_init(struct ctl_lines *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
}

int ctl_lines_feed(struct ctl_lines *l, const char *data, size_t n)
{
	const char *tail = memrchr(data, '\n', n);
	size_t tail_len = tail ? n - (size_t)(tail - data) - 1 : l->len - l->start + n;

	if (tail_len > l->max) {
		l->start = l->len = 0;
		return -1;
	}
	if (l->start) {
		/* Drop what was taken before growing. */
		memmove(l->buf, l->buf + l->start, l->len - l->start);
		l->len -= l->start;
		l->start = 0;
	}
	if (l->len + n > l->cap) {
		l->cap = (l->len + n) * 2;
		l->buf = realloc(l->buf, l->cap);
		if (!l->buf)
			abort();
	}
	memcpy(l->buf + l->len, data, n);
	l->len += n;
	return 0;
}

bool ctl_lines_ready(const struct ctl_lines *l)
{
	return l->len > l->start && memchr(l->buf + l->start, '\n', l->len - l->start);
}

const char *ctl_lines_next(struct ctl_lines *l, bool eof, size_t *len)
{
	char *line = l->buf + l->start, *nl;
	size_t avail = l->len - l->start;

	if (!avail)
		return NULL;
	nl = memchr(line, '\n', avail);
	if (!nl && !eof)
		return NULL;
	*len = nl ? (size_t)(nl - line) : avail;
	l->start += nl ? *len + 1 : avail;
	if (*len && line[*len - 1] == '\r')
		(*len)--;
	return line;
}

void ctl_lines_free(struct ctl_lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}
