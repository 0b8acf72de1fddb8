/* fake_lws.c: the libwebsockets calls of host/http.c and host/ws.c, answered from a
 * struct fake_conn (see fake_lws.h). Each __wrap_X replaces X for the daemon's code in the
 * targets linked with --wrap=X; return values follow lws 4.1's documentation. */
#include "fake_lws.h"
#include "fuzz.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

static void *user;

struct lws *fake_wsi(struct fake_conn *c)
{
	return (struct lws *)c;
}

static struct fake_conn *conn(const struct lws *wsi)
{
	REQUIRE(wsi != NULL); /* the daemon must never call lws on a request whose client left */
	return (struct fake_conn *)wsi;
}

void fake_lws_set_user(void *u)
{
	user = u;
}

void fake_conn_clear(struct fake_conn *c)
{
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
}

int fake_method(const char *text)
{
	static const struct {
		const char *name;
		int method;
	} methods[] = {{"GET", LWSHUMETH_GET},        {"POST", LWSHUMETH_POST},
	               {"PUT", LWSHUMETH_PUT},        {"DELETE", LWSHUMETH_DELETE},
	               {"PATCH", LWSHUMETH_PATCH},    {"HEAD", LWSHUMETH_HEAD},
	               {"OPTIONS", LWSHUMETH_OPTIONS}};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(text, methods[i].name) == 0)
			return methods[i].method;
	return LWSHUMETH_CONNECT;
}

/* ---- the request */

static const char *header(struct fake_conn *c, enum lws_token_indexes h)
{
	switch (h) {
	case WSI_TOKEN_GET_URI:
		return c->method == LWSHUMETH_GET ? c->uri : NULL;
	case WSI_TOKEN_POST_URI:
		return c->method == LWSHUMETH_POST ? c->uri : NULL;
	case WSI_TOKEN_HTTP_AUTHORIZATION:
		return c->authorization;
	case WSI_TOKEN_HTTP_CONTENT_TYPE:
		return c->content_type;
	case WSI_TOKEN_HTTP_ACCEPT:
		return c->accept;
	case WSI_TOKEN_HTTP_CONTENT_LENGTH:
		return c->content_length;
	case WSI_TOKEN_HTTP_TRANSFER_ENCODING:
		return c->transfer_encoding;
	case WSI_TOKEN_UPGRADE:
		return c->upgrade;
	default:
		return NULL;
	}
}

/* Copies value into dest of len bytes as lws does: -1 if it does not fit with its NUL. */
static int copy_out(char *dest, int len, const char *value)
{
	size_t n = value ? strlen(value) : 0;

	if (len <= 0 || n + 1 > (size_t)len)
		return -1;
	memcpy(dest, value ? value : "", n + 1);
	return (int)n;
}

int __wrap_lws_http_get_uri_and_method(struct lws *wsi, char **puri_ptr, int *puri_len);
int __wrap_lws_http_get_uri_and_method(struct lws *wsi, char **puri_ptr, int *puri_len)
{
	struct fake_conn *c = conn(wsi);

	*puri_ptr = (char *)c->uri;
	*puri_len = (int)strlen(c->uri);
	return c->method;
}

int __wrap_lws_hdr_total_length(struct lws *wsi, enum lws_token_indexes h);
int __wrap_lws_hdr_total_length(struct lws *wsi, enum lws_token_indexes h)
{
	const char *v = header(conn(wsi), h);

	return v ? (int)strlen(v) : 0;
}

int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h);
int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h)
{
	return copy_out(dest, len, header(conn(wsi), h));
}

int __wrap_lws_hdr_copy_fragment(struct lws *wsi, char *dest, int len, enum lws_token_indexes h,
                                 int frag_idx);
int __wrap_lws_hdr_copy_fragment(struct lws *wsi, char *dest, int len, enum lws_token_indexes h,
                                 int frag_idx)
{
	struct fake_conn *c = conn(wsi);

	if (h != WSI_TOKEN_HTTP_URI_ARGS || frag_idx < 0 || frag_idx >= c->nargs)
		return -1;
	return copy_out(dest, len, c->args[frag_idx]);
}

/* The only custom header the daemon reads is Last-Event-ID. */
static const char *custom(struct fake_conn *c, const char *name, int nlen)
{
	return nlen == 14 && strncasecmp(name, "last-event-id:", 14) == 0 ? c->last_event_id : NULL;
}

int __wrap_lws_hdr_custom_length(struct lws *wsi, const char *name, int nlen);
int __wrap_lws_hdr_custom_length(struct lws *wsi, const char *name, int nlen)
{
	const char *v = custom(conn(wsi), name, nlen);

	return v ? (int)strlen(v) : -1;
}

int __wrap_lws_hdr_custom_copy(struct lws *wsi, char *dst, int len, const char *name, int nlen);
int __wrap_lws_hdr_custom_copy(struct lws *wsi, char *dst, int len, const char *name, int nlen)
{
	const char *v = custom(conn(wsi), name, nlen);

	return v ? copy_out(dst, len, v) : -1;
}

struct lws_context *__wrap_lws_get_context(const struct lws *wsi);
struct lws_context *__wrap_lws_get_context(const struct lws *wsi)
{
	(void)conn(wsi);
	return (struct lws_context *)&user;
}

void *__wrap_lws_context_user(struct lws_context *context);
void *__wrap_lws_context_user(struct lws_context *context)
{
	REQUIRE(context == (struct lws_context *)&user);
	return user;
}

lws_sockfd_type __wrap_lws_get_socket_fd(struct lws *wsi);
lws_sockfd_type __wrap_lws_get_socket_fd(struct lws *wsi)
{
	return conn(wsi)->fd;
}

int __wrap_lws_frame_is_binary(struct lws *wsi);
int __wrap_lws_frame_is_binary(struct lws *wsi)
{
	return conn(wsi)->binary;
}

int __wrap_lws_is_final_fragment(struct lws *wsi);
int __wrap_lws_is_final_fragment(struct lws *wsi)
{
	return conn(wsi)->final;
}

size_t __wrap_lws_remaining_packet_payload(struct lws *wsi);
size_t __wrap_lws_remaining_packet_payload(struct lws *wsi)
{
	(void)conn(wsi);
	return 0; /* fragments are delivered whole */
}

/* ---- what the daemon asks of the connection */

int __wrap_lws_callback_on_writable(struct lws *wsi);
int __wrap_lws_callback_on_writable(struct lws *wsi)
{
	conn(wsi)->writable = true;
	return 1;
}

void __wrap_lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs);
void __wrap_lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs)
{
	(void)reason;
	if (secs == LWS_TO_KILL_ASYNC || secs == LWS_TO_KILL_SYNC)
		conn(wsi)->killed = true;
}

void __wrap_lws_set_timer_usecs(struct lws *wsi, lws_usec_t usecs);
void __wrap_lws_set_timer_usecs(struct lws *wsi, lws_usec_t usecs)
{
	conn(wsi)->timer = usecs != LWS_SET_TIMER_USEC_CANCEL;
}

void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf,
                             size_t len);
void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf,
                             size_t len)
{
	(void)buf;
	REQUIRE(len <= 123);
	conn(wsi)->close_status = (int)status;
}

int __wrap_lws_http_transaction_completed(struct lws *wsi);
int __wrap_lws_http_transaction_completed(struct lws *wsi)
{
	conn(wsi)->completed = true;
	return 0; /* keep-alive */
}

int __wrap_lws_callback_http_dummy(struct lws *wsi, enum lws_callback_reasons reason, void *user_,
                                   void *in, size_t len);
int __wrap_lws_callback_http_dummy(struct lws *wsi, enum lws_callback_reasons reason, void *user_,
                                   void *in, size_t len)
{
	(void)wsi, (void)reason, (void)user_, (void)in, (void)len;
	return 0;
}

/* ---- what the daemon writes */

int __wrap_lws_add_http_common_headers(struct lws *wsi, unsigned int code, const char *content_type,
                                       lws_filepos_t content_len, unsigned char **p,
                                       unsigned char *end);
int __wrap_lws_add_http_common_headers(struct lws *wsi, unsigned int code, const char *content_type,
                                       lws_filepos_t content_len, unsigned char **p,
                                       unsigned char *end)
{
	struct fake_conn *c = conn(wsi);

	REQUIRE(*p < end);
	REQUIRE(code >= 100 && code < 600);
	c->header_calls++;
	c->status = code;
	snprintf(c->type, sizeof(c->type), "%s", content_type ? content_type : "");
	c->declared = content_len == LWS_ILLEGAL_HTTP_CONTENT_LEN ? -1 : (int64_t)content_len;
	return 0;
}

int __wrap_lws_add_http_header_by_name(struct lws *wsi, const unsigned char *name,
                                       const unsigned char *value, int length, unsigned char **p,
                                       unsigned char *end);
int __wrap_lws_add_http_header_by_name(struct lws *wsi, const unsigned char *name,
                                       const unsigned char *value, int length, unsigned char **p,
                                       unsigned char *end)
{
	REQUIRE(conn(wsi)->header_calls == 1);
	REQUIRE(name[strlen((const char *)name) - 1] == ':');
	REQUIRE(length >= 0 && memchr(value, '\n', (size_t)length) == NULL);
	REQUIRE(*p < end);
	return 0;
}

int __wrap_lws_add_http_header_by_token(struct lws *wsi, enum lws_token_indexes token,
                                        const unsigned char *value, int length, unsigned char **p,
                                        unsigned char *end);
int __wrap_lws_add_http_header_by_token(struct lws *wsi, enum lws_token_indexes token,
                                        const unsigned char *value, int length, unsigned char **p,
                                        unsigned char *end)
{
	(void)token;
	REQUIRE(conn(wsi)->header_calls == 1);
	REQUIRE(length >= 0 && memchr(value, '\n', (size_t)length) == NULL);
	REQUIRE(*p < end);
	return 0;
}

int __wrap_lws_finalize_write_http_header(struct lws *wsi, unsigned char *start, unsigned char **p,
                                          unsigned char *end);
int __wrap_lws_finalize_write_http_header(struct lws *wsi, unsigned char *start, unsigned char **p,
                                          unsigned char *end)
{
	struct fake_conn *c = conn(wsi);

	(void)start, (void)p, (void)end;
	REQUIRE(c->header_calls == 1 && !c->headers_done);
	c->headers_done = true;
	return 0;
}

int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len,
                     enum lws_write_protocol protocol);
int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len,
                     enum lws_write_protocol protocol)
{
	struct fake_conn *c = conn(wsi);

	switch ((int)protocol) {
	case LWS_WRITE_HTTP:
	case LWS_WRITE_HTTP_FINAL:
		REQUIRE(c->headers_done && !c->final_written);
		c->body = realloc(c->body, c->body_len + len + 1);
		REQUIRE(c->body);
		memcpy(c->body + c->body_len, buf, len);
		c->body_len += len;
		c->body[c->body_len] = '\0';
		c->final_written = protocol == LWS_WRITE_HTTP_FINAL;
		return (int)len;
	case LWS_WRITE_TEXT:
		REQUIRE(len > 0);
		if (c->on_message)
			c->on_message(c, (const char *)buf, len);
		return (int)len;
	default:
		REQUIRE(!"a write of another kind");
		return -1;
	}
}
