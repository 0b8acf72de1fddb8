/* input.h: the input of a run or a stateless call as agentctl takes it: a JSON argument,
 * "-" for standard input, or standard input when there is no argument and it is not a
 * terminal. The text is parsed here, before anything is sent, so that a typo is a usage
 * error naming its line and column rather than a 400 from the daemon. The rules are pure
 * functions (tests/unit/host/ctl/ctl_input_test.c); only ctl_input_read does I/O. */
#ifndef AGENTHOST_CTL_INPUT_H
#define AGENTHOST_CTL_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Standard input beyond this is refused: it would not fit a request body anyway. */
#define CTL_INPUT_MAX (64u << 20)

enum ctl_input_source {
	CTL_INPUT_ARG,   /* the argument is the text */
	CTL_INPUT_STDIN, /* read standard input to its end */
	CTL_INPUT_NONE,  /* no input: null (as when a request body leaves "input" out) */
};

/* Where the input comes from: arg is the optional argument (NULL when not given), "-"
 * meaning standard input; without one, standard input when it is not a terminal (a pipe,
 * a file, /dev/null), else none. */
enum ctl_input_source ctl_input_source(const char *arg, bool stdin_is_tty);

/* The JSON value of a text (len bytes, borrowed). Returns 0 with *out set (a new
 * reference), or -1 with one line in err. The rules:
 * - empty, or only white space: null;
 * - a text that starts like JSON (after white space: '{', '[', '"', '-' or a digit) must
 *   be one JSON value, else the error names the line and column: "the input is not
 *   valid JSON: line 1, column 6: unexpected token near end of file";
 * - true, false and null are themselves;
 * - any other text (a word, a sentence) is a JSON string of that text, without the line
 *   ends at its end ("hello\n" is "hello"), as `attach` takes a line;
 * - text that is not UTF-8, or holds a NUL byte, is refused. */
int ctl_input_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen);

/* Lines as they come in (attach reads one run's input per line of stdin): bytes are fed
 * as they are read, complete lines taken out one by one. */
struct ctl_lines {
	char *buf;    /* owned */
	size_t start; /* buf[start..len) is not taken yet */
	size_t len, cap;
	size_t max; /* a line longer than this is an error */
};

/* Starts with no bytes; lines of at most max bytes. */
void ctl_lines_init(struct ctl_lines *l, size_t max);

/* Appends n bytes of data (borrowed). Returns 0, or -1 when more than max bytes came
 * without a line end (then every byte not taken yet is dropped). */
int ctl_lines_feed(struct ctl_lines *l, const char *data, size_t n);

/* The next complete line, without its "\n" (or "\r\n"); at eof also the last one, which
 * had no line end. Returns a pointer into l (valid until the next call on l) with *len
 * set, or NULL when there is none (yet). */
const char *ctl_lines_next(struct ctl_lines *l, bool eof, size_t *len);

/* Whether a complete line is waiting (reading more can wait). */
bool ctl_lines_ready(const struct ctl_lines *l);

/* Frees what l owns. */
void ctl_lines_free(struct ctl_lines *l);

/* Reads fd to its end into a new buffer (*text, NUL-terminated, *len bytes; free it).
 * Returns 0, or -1 with one line in err (a read error, or more than max bytes). */
int ctl_input_read(int fd, size_t max, char **text, size_t *len, char *err, size_t errlen);

#endif
