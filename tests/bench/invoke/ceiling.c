/* ceiling.c: the invoke benchmark's ceiling. A minimal libwebsockets HTTP server (the same
 * lws as the daemon, one thread, the default event loop, HTTP/1.1 keep-alive) that answers
 * every request, after reading its body, with a 200 JSON answer shaped and sized like
 * agenthost's run result: {"id":"r_<32 hex>","status":"completed","output":"hello big world",
 * "created_at":...,"started_at":...,"finished_at":...}. No agent, no auth, no parsing: what
 * the daemon's invoke route costs on top of lws is measured against this.
 *
 * usage: invoke_ceiling PORT   (listens on 127.0.0.1; stops on SIGTERM or SIGINT) */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stopping;
static struct lws_context *context;
static unsigned long long served;

/* The answer, after LWS_PRE bytes of room. Returns its length. */
static size_t make_answer(unsigned char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%03dZ", stamp, (int)(ts.tv_nsec / 1000000));
	return (size_t)snprintf((char *)out, cap,
	                        "{\"id\":\"r_%032llx\",\"status\":\"completed\","
	                        "\"output\":\"hello big world\",\"created_at\":\"%s\","
	                        "\"started_at\":\"%s\",\"finished_at\":\"%s\"}",
	                        served, when, when, when);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	unsigned char head[LWS_PRE + 512], body[LWS_PRE + 512];
	unsigned char *start = head + LWS_PRE, *p = start, *end = head + sizeof(head) - 1;
	size_t n;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		/* A body follows (POST): answer when it is complete; no body: answer now. */
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		return 0; /* read and dropped */
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		n = make_answer(body + LWS_PRE, sizeof(body) - LWS_PRE);
		if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json", n, &p,
		                                end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		if (lws_write(wsi, body + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) != (int)n)
			return -1;
		served++;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
    {.name = "http", .callback = callback},
    {0},
};

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	if (context)
		lws_cancel_service(context);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct sigaction sa = {.sa_handler = on_signal};

	if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: invoke_ceiling PORT\n");
		return 2;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = atoi(argv[1]);
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.timeout_secs = 30;
	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "invoke_ceiling: cannot listen on 127.0.0.1:%s\n", argv[1]);
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stopping)
		if (lws_service(context, 0) < 0)
			break;
	lws_context_destroy(context);
	fprintf(stderr, "invoke_ceiling: %llu answers\n", served);
	return 0;
}
