/* ctl_input_test.c: where the input of `agentctl invoke` comes from and which JSON a text
 * becomes (host/ctl/input.c): JSON as it is, other text as a string, empty as null, and
 * usage errors that name the line and column; and the lines attach takes from stdin. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "input.h"

static char err[512];

/* The compact JSON of text's input, or "ERROR: <message>". */
static const char *input_of(const char *text, size_t len)
{
	static char out[1024];
	json_t *v = NULL;
	char *dump;

	err[0] = '\0';
	if (ctl_input_parse(text, len, &v, err, sizeof(err))) {
		CHECK(v == NULL);
		snprintf(out, sizeof(out), "ERROR: %s", err);
		return out;
	}
	dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	snprintf(out, sizeof(out), "%s", dump ? dump : "(dump failed)");
	free(dump);
	json_decref(v);
	return out;
}

#define INPUT(text) input_of(text, strlen(text))

static void test_source(void)
{
	CHECK_INT(ctl_input_source("{}", false), CTL_INPUT_ARG);
	CHECK_INT(ctl_input_source("{}", true), CTL_INPUT_ARG);
	CHECK_INT(ctl_input_source("-", true), CTL_INPUT_STDIN);
	CHECK_INT(ctl_input_source("-", false), CTL_INPUT_STDIN);
	CHECK_INT(ctl_input_source("--", false), CTL_INPUT_ARG);
	CHECK_INT(ctl_input_source(NULL, false), CTL_INPUT_STDIN);
	CHECK_INT(ctl_input_source(NULL, true), CTL_INPUT_NONE);
}

static void test_json(void)
{
	CHECK_STR(INPUT("\"hello big world\""), "\"hello big world\"");
	CHECK_STR(INPUT("{\"b\": 1, \"a\": [true, null]}"), "{\"b\":1,\"a\":[true,null]}");
	CHECK_STR(INPUT("  [1, 2]\n"), "[1,2]");
	CHECK_STR(INPUT("-1.5"), "-1.5");
	CHECK_STR(INPUT("42"), "42");
	CHECK_STR(INPUT("true"), "true");
	CHECK_STR(INPUT("false"), "false");
	CHECK_STR(INPUT("null"), "null");
	CHECK_STR(INPUT("\"\\u00e9\""), "\"\xc3\xa9\"");
}

static void test_text_becomes_a_string(void)
{
	CHECK_STR(INPUT("hello"), "\"hello\"");
	CHECK_STR(INPUT("hello big world"), "\"hello big world\"");
	/* The line ends at the end go (as `echo hi | agentctl invoke echo`), nothing else. */
	CHECK_STR(INPUT("hello\n"), "\"hello\"");
	CHECK_STR(INPUT("two\nlines\r\n\n"), "\"two\\nlines\"");
	CHECK_STR(INPUT("  padded  "), "\"  padded  \"");
	/* Almost JSON, but not starting like it: text. */
	CHECK_STR(INPUT("true story"), "\"true story\"");
	CHECK_STR(INPUT("nul"), "\"nul\"");
	CHECK_STR(INPUT("'single'"), "\"'single'\"");
	CHECK_STR(INPUT("\xc3\xa9t\xc3\xa9"), "\"\xc3\xa9t\xc3\xa9\"");
}

static void test_empty_is_null(void)
{
	CHECK_STR(INPUT(""), "null");
	CHECK_STR(INPUT(" \n\t\r\n"), "null");
}

static void test_errors(void)
{
	/* Starts like JSON: must be JSON, and the error says where it breaks. */
	CHECK_STR(INPUT("{\"a\":"), "ERROR: the input is not valid JSON: line 1, column 5: "
	                            "unexpected token near end of file");
	CHECK_STR(INPUT("{\n\"a\" 1}"),
	          "ERROR: the input is not valid JSON: line 2, column 5: ':' expected near '1'");
	CHECK_STR(INPUT("3 apples"), "ERROR: the input is not valid JSON: line 1, column 8: "
	                             "end of file expected near 'apples'");
	CHECK_STR(
	    INPUT("[1,]"),
	    "ERROR: the input is not valid JSON: line 1, column 4: unexpected token near ']'");
	CHECK_STR(INPUT("\"unterminated"), "ERROR: the input is not valid JSON: line 1, column "
	                                   "13: premature end of input near '\"unterminated'");
	CHECK_STR(INPUT("{\"a\": 1, \"a\": 2}"), "ERROR: the input is not valid JSON: line 1, "
	                                         "column 12: duplicate object key near '\"a\"'");
	CHECK_STR(INPUT("  -x"), "ERROR: the input is not valid JSON: line 1, column 3: invalid "
	                         "token near '-'");
	/* Text must be UTF-8 and hold no NUL. */
	CHECK_STR(INPUT("caf\xe9"), "ERROR: the input is neither JSON nor UTF-8 text");
	CHECK_STR(input_of("a\0b", 3), "ERROR: the input holds a NUL byte");
}

static void test_read(void)
{
	int fds[2];
	char *text = NULL;
	size_t len = 0;

	CHECK_INT(pipe(fds), 0);
	CHECK_INT(write(fds[1], "{\"a\": 1}\n", 9), 9);
	close(fds[1]);
	CHECK_INT(ctl_input_read(fds[0], 100, &text, &len, err, sizeof(err)), 0);
	close(fds[0]);
	CHECK_INT(len, 9);
	CHECK_STR(text, "{\"a\": 1}\n");
	free(text);

	/* Nothing at all: an empty text (which is null). */
	CHECK_INT(pipe(fds), 0);
	close(fds[1]);
	CHECK_INT(ctl_input_read(fds[0], 100, &text, &len, err, sizeof(err)), 0);
	close(fds[0]);
	CHECK_INT(len, 0);
	CHECK_STR(text, "");
	free(text);

	/* More than the limit is refused. */
	CHECK_INT(pipe(fds), 0);
	CHECK_INT(write(fds[1], "0123456789", 10), 10);
	close(fds[1]);
	CHECK_INT(ctl_input_read(fds[0], 9, &text, &len, err, sizeof(err)), -1);
	close(fds[0]);
	CHECK_STR(err, "the input on stdin is larger than 9 bytes");

	CHECK_INT(ctl_input_read(-1, 9, &text, &len, err, sizeof(err)), -1);
	CHECK_STR(err, "cannot read the input from stdin: Bad file descriptor");
}

/* The next line of l as a string, "(none)" when there is none. */
static const char *next_line(struct ctl_lines *l, bool eof)
{
	static char out[256];
	size_t len;
	const char *line = ctl_lines_next(l, eof, &len);

	if (!line)
		return "(none)";
	snprintf(out, sizeof(out), "%.*s", (int)len, line);
	return out;
}

#define FEED(l, text) ctl_lines_feed(l, text, strlen(text))

static void test_lines(void)
{
	struct ctl_lines l;

	ctl_lines_init(&l, 16);
	CHECK_STR(next_line(&l, false), "(none)");
	CHECK_STR(next_line(&l, true), "(none)");
	/* Lines cut anywhere by the reads come out whole, without their line ends. */
	CHECK_INT(FEED(&l, "\"a\"\n\"b"), 0);
	CHECK(ctl_lines_ready(&l));
	CHECK_STR(next_line(&l, false), "\"a\"");
	CHECK(!ctl_lines_ready(&l));
	CHECK_STR(next_line(&l, false), "(none)");
	CHECK_INT(FEED(&l, "\"\r\n\nhello world\n"), 0);
	CHECK_STR(next_line(&l, false), "\"b\"");
	CHECK_STR(next_line(&l, false), "");
	CHECK_STR(next_line(&l, false), "hello world");
	CHECK_STR(next_line(&l, false), "(none)");
	/* The last line needs no line end once the input has ended. */
	CHECK_INT(FEED(&l, "last"), 0);
	CHECK(!ctl_lines_ready(&l));
	CHECK_STR(next_line(&l, false), "(none)");
	CHECK_STR(next_line(&l, true), "last");
	CHECK_STR(next_line(&l, true), "(none)");
	/* More than max bytes without a line end is refused, and dropped. */
	CHECK_INT(FEED(&l, "0123456789"), 0);
	CHECK_INT(FEED(&l, "0123456789"), -1);
	CHECK_STR(next_line(&l, true), "(none)");
	/* A long read is fine as long as its unfinished tail is short. */
	CHECK_INT(FEED(&l, "0123456789abcdefghij\nxy"), 0);
	CHECK_STR(next_line(&l, false), "0123456789abcdefghij");
	CHECK_STR(next_line(&l, true), "xy");
	ctl_lines_free(&l);
}

int main(void)
{
	test_source();
	test_json();
	test_text_becomes_a_string();
	test_empty_is_null();
	test_errors();
	test_read();
	test_lines();
	return check_summary();
}
