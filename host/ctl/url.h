/* url.h: the daemon address agentctl talks to (--url, AGENTHOST_URL), parsed once into the
 * pieces the HTTP client needs, and the escaping of user-typed path segments. Pure: no I/O. */
#ifndef AGENTHOST_CTL_URL_H
#define AGENTHOST_CTL_URL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_URL_HOST_MAX 256
#define CTL_URL_PREFIX_MAX 512

struct ctl_url {
	bool tls;                    /* https */
	char host[CTL_URL_HOST_MAX]; /* name or address, IPv6 without brackets */
	int port;                    /* 1..65535; 80 or 443 when the URL gives none */
	char
	    host_header[CTL_URL_HOST_MAX + 8]; /* what Host: carries: "[::1]:8080", "example.com" */
	char prefix[CTL_URL_PREFIX_MAX]; /* path before /v1 or /healthz, no trailing '/'; "" */
	char text[CTL_URL_HOST_MAX + CTL_URL_PREFIX_MAX + 16]; /* normalized URL, for messages */
};

/* Parses "http[s]://host[:port][/prefix]"; a URL without a scheme is taken as http. User
 * info, queries and fragments are refused (a token belongs in --token, not the URL).
 * Returns 0 and fills *out, or -1 with one line in err saying what is wrong. text and err
 * are borrowed. */
int ctl_url_parse(const char *text, struct ctl_url *out, char *err, size_t errlen);

/* Percent-encodes one path segment (an agent name, a token ID) so that '?', '#', '%' and
 * the like typed by a user cannot change which route is asked for. Writes a NUL-terminated
 * string into out. Returns 0, or -1 if the segment is "", "." or "..", or holds a '/'
 * (which no escaping keeps from changing the route: servers decode before routing), or
 * out (outlen bytes) is too small. */
int ctl_url_escape_segment(const char *segment, char *out, size_t outlen);

#endif
