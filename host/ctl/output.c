/* output.c: agentctl's tables, time stamps, error lines and JSON printing (see output.h). */
#include "output.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct ctl_table {
	size_t ncols;
	bool has_header;
	char **cells; /* rows * ncols, row-major; row 0 is the header when there is one */
	size_t rows, cap;
};

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		abort();
	return p;
}

/* A copy of s with control characters shown as '?'. */
static char *clean_cell(const char *s)
{
	char *copy = strdup(s ? s : "");

	if (!copy)
		abort();
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return copy;
}

static void append_row(struct ctl_table *t, const char *const *cells)
{
	if (t->rows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof(char *));
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->rows * t->ncols + c] = clean_cell(cells[c]);
	t->rows++;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		abort();
	t->ncols = ncols;
	if (headers) {
		t->has_header = true;
		append_row(t, headers);
	}
	return t;
}

void ctl_table_add_row(struct ctl_table *t, const char *const *cells)
{
	append_row(t, cells);
}

void ctl_table_add_kv(struct ctl_table *t, const char *key, const char *value)
{
	char label[128];
	const char *cells[2] = {label, value};

	snprintf(label, sizeof(label), "%s:", key);
	append_row(t, cells);
}

size_t ctl_table_rows(const struct ctl_table *t)
{
	return t->rows - (t->has_header ? 1 : 0);
}

/* Characters, not bytes: UTF-8 continuation bytes do not take a column. */
static size_t text_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Byte length of the first `chars` characters of s. */
static size_t prefix_bytes(const char *s, size_t chars)
{
	size_t i = 0;

	while (s[i] && chars) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

struct strbuf {
	char *data;
	size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void sb_pad(struct strbuf *b, size_t n)
{
	while (n--)
		sb_add(b, " ", 1);
}

/* The last cell of a line whose other columns took `used` characters. */
static void add_last_cell(struct strbuf *b, const char *cell, size_t used, size_t max_width)
{
	size_t width = text_width(cell), room;

	if (!max_width || used + width <= max_width) {
		sb_add(b, cell, strlen(cell));
		return;
	}
	room = max_width > used + 3 ? max_width - used - 3 : 0;
	sb_add(b, cell, prefix_bytes(cell, room));
	sb_add(b, "...", 3);
}

static void trim_trailing_spaces(struct strbuf *b)
{
	while (b->len && b->data[b->len - 1] == ' ')
		b->data[--b->len] = '\0';
}

char *ctl_table_format(const struct ctl_table *t, size_t max_width)
{
	size_t *widths = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	struct strbuf b = {0};

	if (!widths)
		abort();
	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);

			widths[c] = w > widths[c] ? w : widths[c];
		}
	sb_add(&b, "", 0);
	for (size_t r = 0; r < t->rows; r++) {
		size_t used = 0;

		for (size_t c = 0; c + 1 < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			sb_add(&b, cell, strlen(cell));
			sb_pad(&b, widths[c] - text_width(cell) + 2);
			used += widths[c] + 2;
		}
		if (t->ncols)
			add_last_cell(&b, t->cells[r * t->ncols + t->ncols - 1], used, max_width);
		trim_trailing_spaces(&b);
		sb_add(&b, "\n", 1);
	}
	free(widths);
	return b.data;
}

void ctl_table_print(const struct ctl_table *t, FILE *out, bool fit)
{
	struct winsize ws;
	size_t width = 0;
	char *text;

	if (fit && isatty(fileno(out)) && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		width = ws.ws_col;
	text = ctl_table_format(t, width);
	fputs(text, out);
	free(text);
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void ctl_format_time(const char *rfc3339, char *out, size_t outlen)
{
	const char *dot;
	size_t digits;

	if (!rfc3339) {
		snprintf(out, outlen, "-");
		return;
	}
	dot = strchr(rfc3339, '.');
	digits = dot ? strspn(dot + 1, "0123456789") : 0;
	if (!dot || !digits || strcmp(dot + 1 + digits, "Z") != 0) {
		snprintf(out, outlen, "%s", rfc3339);
		return;
	}
	snprintf(out, outlen, "%.*sZ", (int)(dot - rfc3339), rfc3339);
}

/* Writes c into esc (8 bytes) as itself or as an escape; returns its length. */
static size_t escape_char(unsigned char c, char *esc)
{
	switch (c) {
	case '\n':
		return (size_t)snprintf(esc, 8, "\\n");
	case '\t':
		return (size_t)snprintf(esc, 8, "\\t");
	case '\r':
		return (size_t)snprintf(esc, 8, "\\r");
	default:
		if (c < 0x20 || c == 0x7f)
			return (size_t)snprintf(esc, 8, "\\x%02x", c);
		esc[0] = (char)c;
		return 1;
	}
}

void ctl_format_one_line(const char *text, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < len; i++) {
		char esc[8];
		size_t elen = escape_char((unsigned char)text[i], esc);

		if (n + elen + 1 > outlen)
			break;
		memcpy(out + n, esc, elen);
		n += elen;
	}
	out[n] = '\0';
}

static const char *reason_phrase(int status)
{
	static const struct {
		int status;
		const char *phrase;
	} phrases[] = {
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {409, "Conflict"},
	    {413, "Payload Too Large"},
	    {415, "Unsupported Media Type"},
	    {422, "Unprocessable Entity"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
		if (phrases[i].status == status)
			return phrases[i].phrase;
	return "HTTP error";
}

/* The length of text without its trailing white space (an install command's output
 * ends with a newline that would otherwise print as "\n"). */
static size_t trimmed_length(const char *text, size_t len)
{
	while (len && strchr(" \t\r\n", text[len - 1]))
		len--;
	return len;
}

/* {"error": {"code": C, "message": M}} → "STATUS C: M"; returns -1 for any other body. */
static int format_error_body(int status, const char *body, size_t len, char *out, size_t outlen)
{
	json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *error = json_object_get(root, "error");
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *message = json_string_value(json_object_get(error, "message"));
	int n;

	if (!code || !message) {
		json_decref(root);
		return -1;
	}
	n = snprintf(out, outlen, "%d %s: ", status, code);
	if (n > 0 && (size_t)n < outlen)
		ctl_format_one_line(message, trimmed_length(message, strlen(message)), out + n,
		                    outlen - (size_t)n);
	json_decref(root);
	return 0;
}

void ctl_format_http_error(int status, const char *body, size_t len, char *out, size_t outlen)
{
	int n;

	if (!format_error_body(status, body, len, out, outlen))
		return;
	n = snprintf(out, outlen, "%d %s", status, reason_phrase(status));
	len = body ? trimmed_length(body, len) : 0;
	if (!len || n < 0 || (size_t)n + 2 >= outlen)
		return;
	/* A non-JSON body (a proxy's page, say) is cut: the start is what says what failed. */
	n += snprintf(out + n, outlen - (size_t)n, ": ");
	ctl_format_one_line(body, len < 200 ? len : 200, out + n, outlen - (size_t)n);
}

void ctl_print_usage_error(const char *message)
{
	fprintf(stderr, "agentctl: %s; see 'agentctl --help'\n", message);
}

void ctl_print_json(const json_t *value, FILE *out)
{
	json_dumpf(value, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
}
