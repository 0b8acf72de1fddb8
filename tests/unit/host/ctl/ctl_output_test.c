/* ctl_output_test.c: agentctl's table layout, time stamps and one-line error messages
 * (host/ctl/output.c). */
#include <stdlib.h>

#include "check.h"
#include "output.h"

/* Formats t at max_width, compares with want, frees t. */
static void table_is(struct ctl_table *t, size_t max_width, const char *want)
{
	char *text = ctl_table_format(t, max_width);

	CHECK_STR(text, want);
	free(text);
	ctl_table_free(t);
}

static struct ctl_table *agents_table(void)
{
	static const char *const headers[] = {"NAME", "VERSION", "DESCRIPTION"};
	static const char *const row1[] = {"echo", "1.0.0", "Echoes its input"};
	static const char *const row2[] = {"counter-long", "10.2.3", "Counts"};
	struct ctl_table *t = ctl_table_new(3, headers);

	ctl_table_add_row(t, row1);
	ctl_table_add_row(t, row2);
	return t;
}

static void test_alignment(void)
{
	struct ctl_table *t = agents_table();

	CHECK_INT(ctl_table_rows(t), 2);
	table_is(t, 0,
	         "NAME          VERSION  DESCRIPTION\n"
	         "echo          1.0.0    Echoes its input\n"
	         "counter-long  10.2.3   Counts\n");
	/* Wide enough: nothing cut. */
	table_is(agents_table(), 40,
	         "NAME          VERSION  DESCRIPTION\n"
	         "echo          1.0.0    Echoes its input\n"
	         "counter-long  10.2.3   Counts\n");
	/* Only the last column is cut, and says so. */
	table_is(agents_table(), 34,
	         "NAME          VERSION  DESCRIPTION\n"
	         "echo          1.0.0    Echoes i...\n"
	         "counter-long  10.2.3   Counts\n");
	/* Narrower than the other columns: they stay whole. */
	table_is(agents_table(), 10,
	         "NAME          VERSION  ...\n"
	         "echo          1.0.0    ...\n"
	         "counter-long  10.2.3   ...\n");
}

static void test_cells(void)
{
	static const char *const headers[] = {"A", "B"};
	const char *utf8[] = {"\xc3\xa9t\xc3\xa9", "x"};     /* "été": 3 columns, 5 bytes */
	const char *hostile[] = {"a\nb\tc\x1b[31m", "\x7f"}; /* cannot break the layout */
	const char *empty_last[] = {"long-cell", ""};
	const char *nulls[] = {NULL, NULL};
	struct ctl_table *t = ctl_table_new(2, headers);

	ctl_table_add_row(t, utf8);
	ctl_table_add_row(t, hostile);
	ctl_table_add_row(t, empty_last);
	ctl_table_add_row(t, nulls);
	table_is(t, 0,
	         "A           B\n"
	         "\xc3\xa9t\xc3\xa9         x\n"
	         "a?b?c?[31m  ?\n"
	         "long-cell\n"
	         "\n");
	/* Cutting counts characters, never splits one. */
	t = ctl_table_new(1, NULL);
	ctl_table_add_row(t, (const char *[]){"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"});
	table_is(t, 4, "\xc3\xa9...\n");
}

static void test_key_value(void)
{
	struct ctl_table *t = ctl_table_new(2, NULL);

	ctl_table_add_kv(t, "name", "echo");
	ctl_table_add_kv(t, "description", "Echoes");
	CHECK_INT(ctl_table_rows(t), 2);
	table_is(t, 0,
	         "name:         echo\n"
	         "description:  Echoes\n");
	table_is(ctl_table_new(2, NULL), 0, "");
}

static void time_is(const char *in, const char *want)
{
	char out[48];

	ctl_format_time(in, out, sizeof(out));
	CHECK_STR(out, want);
}

static void test_time(void)
{
	time_is("2026-11-21T23:59:00.123Z", "2026-11-21T23:59:00Z");
	time_is("2026-11-21T23:59:00.1Z", "2026-11-21T23:59:00Z");
	time_is("2026-11-21T23:59:00Z", "2026-11-21T23:59:00Z");
	time_is("2026-11-21T23:59:00.123+01:00", "2026-11-21T23:59:00.123+01:00");
	time_is("2026-11-21T23:59:00.Z", "2026-11-21T23:59:00.Z");
	time_is("soon", "soon");
	time_is(NULL, "-");
}

static void error_is(int status, const char *body, const char *want)
{
	char out[512];

	ctl_format_http_error(status, body, body ? strlen(body) : 0, out, sizeof(out));
	CHECK_STR(out, want);
}

static void test_http_errors(void)
{
	char long_body[400], small[16];

	error_is(409,
	         "{\"error\": {\"code\": \"conflict\", \"message\": \"agent echo 1.0.0 is "
	         "already installed\"}}",
	         "409 conflict: agent echo 1.0.0 is already installed");
	/* One line, whatever the message holds; a trailing newline is dropped. */
	error_is(422,
	         "{\"error\":{\"code\":\"invalid_input\",\"message\":\"install failed:\\nline "
	         "1\\n\\tline 2\\n\"}}",
	         "422 invalid_input: install failed:\\nline 1\\n\\tline 2");
	error_is(401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad \\u0001 token\"}}",
	         "401 unauthorized: bad \\x01 token");
	/* Not our error shape: the status, its phrase and the start of the body. */
	error_is(502, "<html>Bad gateway\r\n</html>\n",
	         "502 Bad Gateway: <html>Bad gateway\\r\\n</html>");
	error_is(503, "", "503 Service Unavailable");
	error_is(500, NULL, "500 Internal Server Error");
	error_is(418, "{\"error\": \"teapot\"}", "418 HTTP error: {\"error\": \"teapot\"}");
	error_is(404, "{\"error\":{\"code\":\"not_found\"}}",
	         "404 Not Found: {\"error\":{\"code\":\"not_found\"}}");
	memset(long_body, 'x', sizeof(long_body) - 1);
	long_body[sizeof(long_body) - 1] = '\0';
	{
		char out[512];

		ctl_format_http_error(500, long_body, strlen(long_body), out, sizeof(out));
		CHECK_INT(strlen(out), strlen("500 Internal Server Error: ") + 200);
	}
	/* A small buffer is filled, never overrun. */
	ctl_format_http_error(409, "{\"error\":{\"code\":\"conflict\",\"message\":\"abcdefghij\"}}",
	                      52, small, sizeof(small));
	CHECK_INT(strlen(small), sizeof(small) - 1);
}

static void test_one_line(void)
{
	char out[16];

	ctl_format_one_line("a\nb", 3, out, sizeof(out));
	CHECK_STR(out, "a\\nb");
	/* An escape is never cut in half. */
	ctl_format_one_line("abcdefghijklm\n", 14, out, sizeof(out));
	CHECK_STR(out, "abcdefghijklm\\n");
	ctl_format_one_line("abcdefghijklmn\n", 15, out, sizeof(out));
	CHECK_STR(out, "abcdefghijklmn");
}

int main(void)
{
	test_alignment();
	test_cells();
	test_key_value();
	test_time();
	test_http_errors();
	test_one_line();
	return check_summary();
}
