/* ctl_url_test.c: parsing of agentctl's --url and escaping of path segments
 * (host/ctl/url.c). */
#include "check.h"
#include "url.h"

static char err[256];

static void test_good_urls(void)
{
	struct ctl_url u;

	CHECK_INT(ctl_url_parse("http://127.0.0.1:8080", &u, err, sizeof(err)), 0);
	CHECK(!u.tls);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_INT(u.port, 8080);
	CHECK_STR(u.prefix, "");
	CHECK_STR(u.host_header, "127.0.0.1:8080");
	CHECK_STR(u.text, "http://127.0.0.1:8080");

	CHECK_INT(ctl_url_parse("https://example.com", &u, err, sizeof(err)), 0);
	CHECK(u.tls);
	CHECK_INT(u.port, 443);
	CHECK_STR(u.host_header, "example.com");
	CHECK_STR(u.text, "https://example.com");

	/* No scheme: http. The default port is not repeated in Host. */
	CHECK_INT(ctl_url_parse("localhost:9000", &u, err, sizeof(err)), 0);
	CHECK(!u.tls);
	CHECK_STR(u.host, "localhost");
	CHECK_INT(u.port, 9000);
	CHECK_INT(ctl_url_parse("http://h:80/", &u, err, sizeof(err)), 0);
	CHECK_STR(u.host_header, "h");
	CHECK_STR(u.text, "http://h");
	CHECK_STR(u.prefix, "");

	/* IPv6 in brackets, and a path prefix (a daemon behind a proxy) without its '/'. */
	CHECK_INT(ctl_url_parse("http://[::1]:18080/agenthost//", &u, err, sizeof(err)), 0);
	CHECK_STR(u.host, "::1");
	CHECK_INT(u.port, 18080);
	CHECK_STR(u.host_header, "[::1]:18080");
	CHECK_STR(u.prefix, "/agenthost");
	CHECK_STR(u.text, "http://[::1]:18080/agenthost");
	CHECK_INT(ctl_url_parse("https://[fe80::1]", &u, err, sizeof(err)), 0);
	CHECK_INT(u.port, 443);
	CHECK_STR(u.host_header, "[fe80::1]");
	CHECK_INT(ctl_url_parse("http://h:65535", &u, err, sizeof(err)), 0);
	CHECK_INT(u.port, 65535);
}

static void bad(const char *url, const char *why)
{
	struct ctl_url u;

	err[0] = '\0';
	CHECK_INT(ctl_url_parse(url, &u, err, sizeof(err)), -1);
	CHECK_STR(err, why);
}

static void test_bad_urls(void)
{
	bad("", "the URL is empty");
	bad("ftp://h", "the scheme must be http or https");
	bad("ws://h", "the scheme must be http or https");
	bad("http://", "the host is missing");
	bad("http://:8080", "the host is missing");
	bad("http://h:0", "the port must be a number from 1 to 65535");
	bad("http://h:65536", "the port must be a number from 1 to 65535");
	bad("http://h:", "the port must be a number from 1 to 65535");
	bad("http://h:80a", "the port must be a number from 1 to 65535");
	bad("http://h:-1", "the port must be a number from 1 to 65535");
	bad("http://user:pw@h", "user info is not allowed in the URL (use --token)");
	bad("http://h/x?token=1", "a query or fragment is not allowed in the URL");
	bad("http://h#x", "a query or fragment is not allowed in the URL");
	bad("http://[::1", "missing ']' after the IPv6 address");
	bad("http://[::1]x", "unexpected text after ']'");
	bad("http://h x", "the URL contains white space");
	CHECK_INT(ctl_url_parse(NULL, &(struct ctl_url){0}, err, sizeof(err)), -1);
}

static void escaped(const char *segment, const char *want)
{
	char out[64];

	CHECK_INT(ctl_url_escape_segment(segment, out, sizeof(out)), 0);
	CHECK_STR(out, want);
}

static void test_escape(void)
{
	char small[4];

	escaped("echo", "echo");
	escaped("t_9b3b-x.y~z", "t_9b3b-x.y~z");
	escaped("a b?c%d#", "a%20b%3Fc%25d%23");
	escaped("\xc3\xa9", "%C3%A9");
	escaped("...", "...");
	escaped(".x", ".x");
	/* What no escaping keeps from naming another route is refused. */
	CHECK_INT(ctl_url_escape_segment("", small, sizeof(small)), -1);
	CHECK_INT(ctl_url_escape_segment(".", small, sizeof(small)), -1);
	CHECK_INT(ctl_url_escape_segment("..", small, sizeof(small)), -1);
	CHECK_INT(ctl_url_escape_segment("a/b", small, sizeof(small)), -1);
	CHECK_INT(ctl_url_escape_segment("../tokens/t_1", small, sizeof(small)), -1);
	/* Too small a buffer is an error, never a cut name. */
	CHECK_INT(ctl_url_escape_segment("abc", small, sizeof(small)), 0);
	CHECK_STR(small, "abc");
	CHECK_INT(ctl_url_escape_segment("abcd", small, sizeof(small)), -1);
	CHECK_INT(ctl_url_escape_segment("a b", small, sizeof(small)), -1);
}

int main(void)
{
	test_good_urls();
	test_bad_urls();
	test_escape();
	return check_summary();
}
