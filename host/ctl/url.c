/* url.c: parsing of the daemon URL and escaping of path segments for agentctl (see url.h).
 * Hand-written rather than lws_parse_uri() because that one edits its input in place and
 * accepts anything; agentctl wants a precise one-line complaint about a mistyped --url. */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

/* Splits "scheme://rest" into tls and rest; no scheme means http. */
static int parse_scheme(const char *text, struct ctl_url *out, const char **rest, char *err,
                        size_t errlen)
{
	const char *sep = strstr(text, "://");

	if (!sep) {
		out->tls = false;
		*rest = text;
		return 0;
	}
	if ((size_t)(sep - text) == 4 && strncmp(text, "http", 4) == 0)
		out->tls = false;
	else if ((size_t)(sep - text) == 5 && strncmp(text, "https", 5) == 0)
		out->tls = true;
	else
		return fail(err, errlen, "the scheme must be http or https");
	*rest = sep + 3;
	return 0;
}

static int parse_port(const char *digits, size_t len, int *port, char *err, size_t errlen)
{
	long value = 0;

	if (len == 0 || len > 5)
		return fail(err, errlen, "the port must be a number from 1 to 65535");
	for (size_t i = 0; i < len; i++) {
		if (digits[i] < '0' || digits[i] > '9')
			return fail(err, errlen, "the port must be a number from 1 to 65535");
		value = value * 10 + (digits[i] - '0');
	}
	if (value < 1 || value > 65535)
		return fail(err, errlen, "the port must be a number from 1 to 65535");
	*port = (int)value;
	return 0;
}

/* Parses "host[:port]" or "[v6]:port" (authority, len bytes) into host and port. */
static int parse_authority(const char *auth, size_t len, struct ctl_url *out, char *err,
                           size_t errlen)
{
	const char *host = auth, *colon = NULL;
	size_t host_len;

	if (memchr(auth, '@', len))
		return fail(err, errlen, "user info is not allowed in the URL (use --token)");
	if (len && auth[0] == '[') {
		const char *close = memchr(auth, ']', len);

		if (!close)
			return fail(err, errlen, "missing ']' after the IPv6 address");
		host = auth + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < auth + len) {
			if (close[1] != ':')
				return fail(err, errlen, "unexpected text after ']'");
			colon = close + 1;
		}
	} else {
		colon = memchr(auth, ':', len);
		host_len = colon ? (size_t)(colon - auth) : len;
	}
	if (host_len == 0)
		return fail(err, errlen, "the host is missing");
	if (host_len >= sizeof(out->host))
		return fail(err, errlen, "the host name is too long");
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = out->tls ? 443 : 80;
	if (colon &&
	    parse_port(colon + 1, (size_t)(auth + len - colon - 1), &out->port, err, errlen))
		return -1;
	return 0;
}

/* Keeps the path as the prefix of every route, without trailing slashes. */
static int parse_prefix(const char *path, struct ctl_url *out, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if (strpbrk(path, "?#"))
		return fail(err, errlen, "a query or fragment is not allowed in the URL");
	while (len && path[len - 1] == '/')
		len--;
	if (len >= sizeof(out->prefix))
		return fail(err, errlen, "the URL path is too long");
	memcpy(out->prefix, path, len);
	out->prefix[len] = '\0';
	return 0;
}

static void fill_derived(struct ctl_url *out)
{
	bool v6 = strchr(out->host, ':') != NULL;
	bool default_port = out->port == (out->tls ? 443 : 80);
	char port[8] = "";

	if (!default_port)
		snprintf(port, sizeof(port), ":%d", out->port);
	snprintf(out->host_header, sizeof(out->host_header), "%s%s%s%s", v6 ? "[" : "", out->host,
	         v6 ? "]" : "", port);
	snprintf(out->text, sizeof(out->text), "%s://%s%s", out->tls ? "https" : "http",
	         out->host_header, out->prefix);
}

int ctl_url_parse(const char *text, struct ctl_url *out, char *err, size_t errlen)
{
	const char *rest, *slash;

	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return fail(err, errlen, "the URL is empty");
	if (strpbrk(text, " \t\r\n"))
		return fail(err, errlen, "the URL contains white space");
	if (parse_scheme(text, out, &rest, err, errlen))
		return -1;
	/* The authority ends where the path, query or fragment starts. */
	slash = rest + strcspn(rest, "/?#");
	if (parse_authority(rest, (size_t)(slash - rest), out, err, errlen))
		return -1;
	if (parse_prefix(slash, out, err, errlen))
		return -1;
	fill_derived(out);
	return 0;
}

/* RFC 3986 unreserved characters pass as they are; everything else is %XX. */
static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int ctl_url_escape_segment(const char *segment, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	/* Servers (lws among them) decode %2F and %2E before they route and fold "." and
	 * "..", so no escape keeps these from naming another route: they are refused. */
	if (!*segment || strchr(segment, '/') || !strcmp(segment, ".") || !strcmp(segment, ".."))
		return -1;
	for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
		size_t need = unreserved(*p) ? 1 : 3;

		if (n + need >= outlen)
			return -1;
		if (need == 1) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= outlen)
		return -1;
	out[n] = '\0';
	return 0;
}
