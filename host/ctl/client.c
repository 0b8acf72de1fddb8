/* client.c: the blocking HTTP client of agentctl over the libwebsockets client API (see
 * client.h). One lws context per client, created at the first request; each request is
 * one connection (we send "connection: close"), driven by a `struct transfer` that the lws
 * callback reaches through the wsi's opaque user data. */
#include "client.h"

#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 10
/* The probe after a failed connect only has to tell why; lws has waited already. */
#define PROBE_TIMEOUT_MS 3000
/* lws has no "never" for its timeouts: a week stands for it (--timeout 0). */
#define NO_LWS_LIMIT_S (7u * 24 * 3600)
#define WRITE_CHUNK 4096
#define READ_CHUNK 4096
/* How often a request with a stop flag looks at it, should a signal miss the poll. */
#define STOP_CHECK_US (100 * LWS_US_PER_MS)
/* A daemon answer larger than this is a bug or an attack, not something to print. */
#define MAX_BODY (64u << 20)

struct ctl_http_client {
	struct ctl_url url;
	char *token;
	int timeout_s;
	bool verbose;
	struct lws_context *context; /* NULL until the first request */
};

/* One request in flight. Lives on ctl_http_request's stack; the wsi points to it until
 * the wsi is destroyed or ctl_http_request detaches it. */
struct transfer {
	const struct ctl_http_client *client;
	const struct ctl_http_request *req;
	struct ctl_http_response *resp;
	struct lws *wsi; /* NULL once lws destroyed it */
	size_t sent;     /* body bytes written */
	size_t cap;      /* bytes allocated for resp->body */
	bool done;       /* stop servicing: complete, failed or timed out */
	bool complete;   /* a whole response came (or on_chunk stopped it) */
	bool timed_out;
	bool connected;   /* TCP (and TLS) were up: a failure now is not "cannot reach" */
	bool headers;     /* the status line and headers came */
	bool ours;        /* agentctl, not the peer, ended it (reason says why) */
	bool streamed;    /* a piece of a streamed body went to on_chunk */
	char reason[160]; /* why it failed, from lws, when it did */
	lws_sorted_usec_list_t sul_timeout;
	lws_sorted_usec_list_t sul_stop; /* looks at req->stop */
};

static void finish(struct transfer *t)
{
	t->done = true;
	if (t->wsi)
		lws_cancel_service(lws_get_context(t->wsi));
}

/* Ends the transfer without a response; the first reason given is the one kept. */
static void fail(struct transfer *t, const char *reason)
{
	if (!t->reason[0])
		snprintf(t->reason, sizeof(t->reason), "%s", reason);
	finish(t);
}

/* Ends the transfer for a reason of ours, not the peer's. */
static void give_up(struct transfer *t, const char *reason)
{
	t->ours = !t->reason[0];
	fail(t, reason);
}

static bool streaming(const struct transfer *t)
{
	return t->req->on_chunk && t->resp->status >= 200 && t->resp->status < 300;
}

static int collect(struct transfer *t, const char *data, size_t len)
{
	struct ctl_http_response *r = t->resp;

	if (r->body_len + len > MAX_BODY) {
		give_up(t, "the answer is larger than 64 MiB");
		return -1;
	}
	if (r->body_len + len + 1 > t->cap) {
		t->cap = (r->body_len + len + 1) * 2;
		r->body = realloc(r->body, t->cap);
		if (!r->body)
			abort();
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static void on_timeout(lws_sorted_usec_list_t *sul);

/* A piece of the body: to the caller's callback when streaming, else into the response.
 * A stream's timeout starts again with each piece. */
static int receive(struct transfer *t, const char *data, size_t len)
{
	if (!streaming(t))
		return collect(t, data, len);
	t->streamed = true;
	if (t->client->timeout_s > 0)
		lws_sul_schedule(t->client->context, 0, &t->sul_timeout, on_timeout,
		                 (lws_usec_t)t->client->timeout_s * LWS_US_PER_SEC);
	if (t->req->on_chunk(data, len, t->req->user)) {
		t->complete = true;
		finish(t);
	}
	return 0;
}

static int add_header(struct lws *wsi, enum lws_token_indexes token, const char *value,
                      unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_token(wsi, token, (const unsigned char *)value,
	                                    (int)strlen(value), p, end);
}

/* Authorization, Accept, and for a body its type and length; then ask to write it. */
static int append_headers(struct transfer *t, struct lws *wsi, unsigned char **p,
                          unsigned char *end)
{
	const struct ctl_http_request *req = t->req;
	char value[1024], length[24];
	bool has_body = req->body && req->body_len;

	if (t->client->token && !req->no_auth) {
		snprintf(value, sizeof(value), "Bearer %s", t->client->token);
		if (add_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, value, p, end))
			return -1;
	}
	if (add_header(wsi, WSI_TOKEN_HTTP_ACCEPT, req->accept ? req->accept : "application/json",
	               p, end))
		return -1;
	if (has_body &&
	    add_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
	               req->content_type ? req->content_type : "application/json", p, end))
		return -1;
	/* POST and PUT say their length even when empty, or a server waits for a body. */
	if (has_body || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) {
		snprintf(length, sizeof(length), "%zu", has_body ? req->body_len : 0);
		if (add_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, length, p, end))
			return -1;
	}
	if (has_body) {
		lws_client_http_body_pending(wsi, 1);
		lws_callback_on_writable(wsi);
	}
	return 0;
}

/* Writes the next piece of the body; the last one is LWS_WRITE_HTTP_FINAL. */
static int write_body(struct transfer *t, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + WRITE_CHUNK];
	size_t left = t->req->body ? t->req->body_len - t->sent : 0;
	size_t n = left < WRITE_CHUNK ? left : WRITE_CHUNK;
	bool last = n == left;

	if (!left)
		return 0;
	memcpy(buf + LWS_PRE, t->req->body + t->sent, n);
	if (last)
		lws_client_http_body_pending(wsi, 0);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
	    (int)n) {
		give_up(t, "sending the request failed");
		return -1;
	}
	t->sent += n;
	if (!last)
		lws_callback_on_writable(wsi);
	return 0;
}

static void headers_received(struct transfer *t, struct lws *wsi)
{
	struct ctl_http_response *r = t->resp;

	t->headers = true;
	r->status = (int)lws_http_client_http_response(wsi);
	if (lws_hdr_copy(wsi, r->content_type, sizeof(r->content_type),
	                 WSI_TOKEN_HTTP_CONTENT_TYPE) < 0)
		r->content_type[0] = '\0';
	if (t->client->verbose)
		fprintf(stderr, "agentctl: < %d %s\n", r->status, r->content_type);
	/* These have no body, whatever the headers say: nothing more to wait for. */
	if (r->status == 204 || r->status == 304) {
		t->complete = true;
		finish(t);
	}
}

/* Reads what lws has of the body; it comes back through RECEIVE_CLIENT_HTTP_READ. */
static int read_body(struct lws *wsi)
{
	char buf[LWS_PRE + READ_CHUNK], *p = buf + LWS_PRE;
	int len = READ_CHUNK;

	return lws_http_client_read(wsi, &p, &len) < 0 ? -1 : 0;
}

static void connection_closed(struct transfer *t)
{
	if (!t->done)
		fail(t, "closed");
}

/* lws' own words for a refused certificate are "SSL err 1: error:00000001"; OpenSSL
 * knows the reason ("self-signed certificate"), so keep it. ok is OpenSSL's verdict. */
static void cert_checked(struct transfer *t, void *x509_store_ctx, size_t ok)
{
	char reason[160];

	if (ok)
		return;
	snprintf(reason, sizeof(reason), "the daemon's TLS certificate is not trusted: %s",
	         X509_verify_cert_error_string(X509_STORE_CTX_get_error(x509_store_ctx)));
	fail(t, reason);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct transfer *t = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	if (!t)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fail(t, in && *(const char *)in ? (const char *)in : "the connection failed");
		return 0;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		t->connected = true;
		return append_headers(t, wsi, (unsigned char **)in, *(unsigned char **)in + len);
	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		return write_body(t, wsi);
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		headers_received(t, wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		return t->done ? 0 : receive(t, in, len);
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return read_body(wsi);
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		t->complete = true;
		finish(t);
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		connection_closed(t);
		return 0;
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		cert_checked(t, user, len);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		t->wsi = NULL;
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
    {"agentctl-http", http_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct ctl_http_client *ctl_http_client_new(const struct ctl_url *url, const char *token,
                                            int timeout_s, bool verbose)
{
	struct ctl_http_client *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->url = *url;
	if (token && !(c->token = strdup(token)))
		abort();
	c->timeout_s = timeout_s;
	c->verbose = verbose;
	return c;
}

static int create_context(struct ctl_http_client *c, char *err, size_t errlen)
{
	struct lws_context_creation_info info;

	/* lws logs to stderr on its own; agentctl's stderr is for its one error line. */
	lws_set_log_level(c->verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.connect_timeout_secs = CONNECT_TIMEOUT_S;
	/* lws gives the daemon timeout_secs (default 5) to start answering a request; an
	 * install whose command builds the agent takes longer. The whole request is bounded by
	 * our own timer instead (--timeout), so lws' limit only has to be longer than it. */
	info.timeout_secs = c->timeout_s > 0 ? (unsigned int)c->timeout_s + 5 : NO_LWS_LIMIT_S;
	/* One connection at a time: no fd table sized for the ulimit. */
	info.fd_limit_per_thread = 8;
	if (c->url.tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	c->context = lws_create_context(&info);
	if (!c->context) {
		snprintf(err, errlen, "cannot start the libwebsockets client");
		return -1;
	}
	return 0;
}

/* Bounded wait for a plain connect(): the probe below must not hang either. */
static int connect_within(int fd, const struct sockaddr *addr, socklen_t addrlen, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t elen = sizeof(int);
	int e = 0;

	if (connect(fd, addr, addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	if (poll(&pfd, 1, ms) <= 0)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen))
		return errno;
	return e;
}

/* lws reports a failed connect as "Unable to connect" (and not at all when connect()
 * fails at once), never with the errno. One plain connect() to the same place, after the
 * fact, recovers the reason a user can act on, such as "Connection refused". Returns 0 if
 * that connect worked (then the failure was past TCP, and lws' words are kept). */
static int probe_connect(const struct ctl_url *url, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char port[8];
	int rc, e = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", url->port);
	rc = getaddrinfo(url->host, port, &hints, &res);
	if (rc) {
		snprintf(why, whylen, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);

		if (fd < 0) {
			e = errno;
			continue;
		}
		e = connect_within(fd, ai->ai_addr, ai->ai_addrlen, PROBE_TIMEOUT_MS);
		close(fd);
		if (!e)
			break;
	}
	freeaddrinfo(res);
	if (!e)
		return 0;
	snprintf(why, whylen, "%s", strerror(e));
	return -1;
}

static void on_timeout(lws_sorted_usec_list_t *sul)
{
	struct transfer *t = lws_container_of(sul, struct transfer, sul_timeout);

	t->timed_out = true;
	finish(t);
}

static bool stop_asked(const struct transfer *t)
{
	return t->req->stop && *t->req->stop;
}

static void on_stop_check(lws_sorted_usec_list_t *sul)
{
	struct transfer *t = lws_container_of(sul, struct transfer, sul_stop);

	if (stop_asked(t))
		give_up(t, "interrupted");
	else
		lws_sul_schedule(t->client->context, 0, &t->sul_stop, on_stop_check, STOP_CHECK_US);
}

static struct lws *start(struct ctl_http_client *c, struct transfer *t)
{
	struct lws_client_connect_info i;
	char path[CTL_URL_PREFIX_MAX + 1024];

	snprintf(path, sizeof(path), "%s%s", c->url.prefix, t->req->path);
	memset(&i, 0, sizeof(i));
	i.context = c->context;
	i.address = c->url.host;
	i.port = c->url.port;
	i.host = c->url.host_header;
	i.path = path;
	i.method = t->req->method;
	i.protocol = protocols[0].name;
	i.opaque_user_data = t;
	if (c->url.tls) {
		i.ssl_connection = LCCSCF_USE_SSL;
		/* HTTP/1.1 keeps one code path for plain and TLS daemons. */
		i.alpn = "http/1.1";
	}
	if (c->verbose)
		fprintf(stderr, "agentctl: > %s %s%s\n", t->req->method, c->url.text, t->req->path);
	return lws_client_connect_via_info(&i);
}

/* Why there is no response, in one line, into err. */
static void describe_failure(const struct ctl_http_client *c, const struct transfer *t, char *err,
                             size_t errlen)
{
	char why[160];

	if (t->timed_out && t->streamed) {
		snprintf(err, errlen, "%s sent nothing more for %d s", c->url.text, c->timeout_s);
	} else if (t->timed_out) {
		snprintf(err, errlen, "%s did not answer within %d s", c->url.text, c->timeout_s);
	} else if (t->ours) {
		snprintf(err, errlen, "%s: %s", c->url.text, t->reason);
	} else if (t->connected && !t->headers) {
		snprintf(err, errlen, "%s closed the connection without answering (%s)",
		         c->url.text, t->reason[0] ? t->reason : "no reason given");
	} else if (t->connected) {
		snprintf(err, errlen, "%s broke the connection before the whole answer came (%s)",
		         c->url.text, t->reason[0] ? t->reason : "no reason given");
	} else if (probe_connect(&c->url, why, sizeof(why))) {
		snprintf(err, errlen, "cannot reach %s: %s", c->url.text, why);
	} else {
		snprintf(err, errlen, "cannot reach %s: %s", c->url.text,
		         t->reason[0] ? t->reason : "the connection failed");
	}
}

/* Runs the loop until the transfer is over, then makes sure the wsi no longer points
 * at t, which is about to go out of scope. */
static void service(struct ctl_http_client *c, struct transfer *t)
{
	int n = 0;

	if (c->timeout_s > 0)
		lws_sul_schedule(c->context, 0, &t->sul_timeout, on_timeout,
		                 (lws_usec_t)c->timeout_s * LWS_US_PER_SEC);
	if (t->req->stop)
		lws_sul_schedule(c->context, 0, &t->sul_stop, on_stop_check, STOP_CHECK_US);
	while (!t->done && n >= 0) {
		n = lws_service(c->context, 0);
		/* A signal ends the poll early (EINTR): no need to wait for the next check. */
		if (!t->done && stop_asked(t))
			give_up(t, "interrupted");
	}
	lws_sul_cancel(&t->sul_timeout);
	lws_sul_cancel(&t->sul_stop);
	if (t->wsi)
		lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	if (t->wsi)
		lws_set_opaque_user_data(t->wsi, NULL);
}

int ctl_http_request(struct ctl_http_client *c, const struct ctl_http_request *req,
                     struct ctl_http_response *resp, char *err, size_t errlen)
{
	struct transfer t;

	memset(resp, 0, sizeof(*resp));
	memset(&t, 0, sizeof(t));
	t.client = c;
	t.req = req;
	t.resp = resp;
	if (!c->context && create_context(c, err, errlen))
		return -1;
	t.wsi = start(c, &t);
	if (t.wsi)
		service(c, &t);
	if (t.complete)
		return 0;
	describe_failure(c, &t, err, errlen);
	ctl_http_response_free(resp);
	return -1;
}

void ctl_http_response_free(struct ctl_http_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

void ctl_http_client_free(struct ctl_http_client *c)
{
	if (!c)
		return;
	if (c->context)
		lws_context_destroy(c->context);
	free(c->token);
	free(c);
}
