/* output.h: how agentctl prints: aligned tables, "key: value" blocks, pretty JSON and the
 * one-line error of a failed request. The formatting functions are pure (they return
 * strings) so tests/unit/host/ctl can check them; the print functions only add a FILE. */
#ifndef AGENTHOST_CTL_OUTPUT_H
#define AGENTHOST_CTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A table of text cells. Columns are two spaces apart, each as wide as its widest cell
 * (counted in UTF-8 characters); the last column is not padded. */
struct ctl_table;

/* A new table of ncols columns. headers (borrowed, copied) is NULL for a table without a
 * header line, such as a "key: value" block. Never NULL: allocation failure aborts. */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);

/* Appends a row of ncols cells (borrowed, copied; a NULL cell prints as ""). Control
 * characters in cells are shown as '?' so that a cell cannot break the layout. */
void ctl_table_add_row(struct ctl_table *t, const char *const *cells);

/* Appends the two-column row "key:" value. */
void ctl_table_add_kv(struct ctl_table *t, const char *key, const char *value);

size_t ctl_table_rows(const struct ctl_table *t);

/* The table as text, every line ended by '\n'. With max_width > 0, lines longer than that
 * have their last column cut, ending with "..." (the other columns are kept whole).
 * Returns a new string the caller frees. */
char *ctl_table_format(const struct ctl_table *t, size_t max_width);

/* Prints the table to out. With fit, and out a terminal, lines are cut to its width
 * (lists); without, nothing is cut ("key: value" blocks, help). */
void ctl_table_print(const struct ctl_table *t, FILE *out, bool fit);

/* Frees t and its cells. NULL is fine. */
void ctl_table_free(struct ctl_table *t);

/* "2026-11-21T23:59:00.123Z" → "2026-11-21T23:59:00Z" (tables need no milliseconds). Any
 * other text is copied as it is; NULL gives "-". Writes at most outlen bytes into out. */
void ctl_format_time(const char *rfc3339, char *out, size_t outlen);

/* The message of a failed request, for "agentctl: <message>": from an error body
 * {"error": {"code", "message"}} it is "409 conflict: agent echo 1.0.0 is already
 * installed"; from any other body "502 Bad Gateway: <its start>". Newlines, tabs and
 * other control characters are written as \n, \t, \xNN so that it stays one line.
 * body (len bytes, borrowed) may be NULL. Writes at most outlen bytes into out. */
void ctl_format_http_error(int status, const char *body, size_t len, char *out, size_t outlen);

/* Copies text into out as one line: control characters escaped as above. */
void ctl_format_one_line(const char *text, size_t len, char *out, size_t outlen);

/* Prints "agentctl: <message>; see 'agentctl --help'" to stderr: a usage error, in one
 * line like every error (DESIGN §7). */
void ctl_print_usage_error(const char *message);

/* Prints a JSON value (borrowed) indented by two, keys in the daemon's order, then '\n'. */
void ctl_print_json(const json_t *value, FILE *out);

#endif
