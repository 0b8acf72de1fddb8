/* ws_echo.c: the WebSocket benchmark's ceiling. A bare libwebsockets 4.1 WebSocket server on
 * the daemon's event loop choice (lws joins a libev loop it does not own, a "foreign" loop
 * made with ev_loop_new(), as host/main.c does) with no agent, no auth and no parsing: every
 * whole text message is answered with one message shaped and sized like the daemon's
 * run.completed event for the benchmark's input:
 * {"seq":N,"type":"run.completed","time":"...","run":"r_<32 hex>","output":"hello big world"}.
 * It serves the subprotocol agenthost.v1 (and upgrades that name none) on any path.
 *
 * usage: ws_echo PORT   (listens on 127.0.0.1; stops on SIGTERM or SIGINT) */
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pss {
	unsigned owed; /* answers to write */
};

static unsigned long long answered;

/* The answer after LWS_PRE bytes of room; returns its length. */
static size_t make_answer(unsigned char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return (size_t)snprintf((char *)out, cap,
	                        "{\"seq\":%llu,\"type\":\"run.completed\",\"time\":\"%s.%03dZ\","
	                        "\"run\":\"r_%032llx\",\"output\":\"hello big world\"}",
	                        answered + 1, stamp, (int)(ts.tv_nsec / 1000000), answered + 1);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct pss *pss = user;
	unsigned char buf[LWS_PRE + 256];
	size_t n;

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
			pss->owed++;
			lws_callback_on_writable(wsi);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!pss->owed)
			return 0;
		n = make_answer(buf + LWS_PRE, sizeof(buf) - LWS_PRE);
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) != (int)n)
			return -1;
		answered++;
		if (--pss->owed)
			lws_callback_on_writable(wsi);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
    {.name = "agenthost.v1",
     .callback = callback,
     .per_session_data_size = sizeof(struct pss),
     .rx_buffer_size = 65536},
    {0},
};

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct lws_context *context;
	struct ev_loop *loop;
	ev_signal sigterm_watcher, sigint_watcher;
	static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", "1"};
	static const struct lws_protocol_vhost_options pvo = {NULL, &pvo_default, "agenthost.v1",
	                                                      ""};

	if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: ws_echo PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!loop) {
		fprintf(stderr, "ws_echo: no libev event loop\n");
		return 1;
	}
	ev_signal_init(&sigterm_watcher, on_stop_signal, SIGTERM);
	ev_signal_init(&sigint_watcher, on_stop_signal, SIGINT);
	ev_signal_start(loop, &sigterm_watcher);
	ev_signal_start(loop, &sigint_watcher);

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = atoi(argv[1]);
	info.iface = "127.0.0.1";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = (void *[]){loop};
	info.protocols = protocols;
	info.pvo = &pvo;
	info.timeout_secs = 30;
	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "ws_echo: cannot listen on 127.0.0.1:%s\n", argv[1]);
		return 1;
	}
	fprintf(stderr, "ws_echo: libev backend %s\n",
	        ev_backend(loop) == EVBACKEND_EPOLL ? "epoll" : "other than epoll");
	ev_run(loop, 0);
	lws_context_destroy(context);
	for (int i = 0; i < 10; i++) /* lws closes its watchers on a foreign loop later */
		ev_run(loop, EVRUN_NOWAIT);
	ev_loop_destroy(loop);
	fprintf(stderr, "ws_echo: %llu answers\n", answered);
	return 0;
}
