/* attach.c: `agentctl attach ID` (see attach.h). One libwebsockets client context holds
 * the WebSocket to the daemon and standard input, adopted as a raw file, so that one poll
 * waits for both. What to print and when a line may be sent are watch.c's rules; this
 * file moves the bytes, connects (and reconnects, with backoff) and answers Ctrl-C. lws
 * callbacks only record what happened; the loop in ctl_cmd_attach does the rest between
 * two lws_service() calls, where a blocking HTTP request (the check before a connection,
 * a run's result after a reconnect) does not re-enter lws. */
#include "attach.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "input.h"
#include "output.h"
#include "watch.h"

#define PROTOCOL "agenthost.v1"
#define READ_CHUNK 65536
/* A message from the daemon larger than this is a bug or an attack, not an event. */
#define RX_MAX (64u << 20)
/* How often the loop wakes to look at Ctrl-C, should a signal miss the poll. */
#define TICK_US (100 * LWS_US_PER_MS)
/* A detach waits this long for the close handshake, then goes anyway. */
#define CLOSE_GRACE_US (2 * LWS_US_PER_SEC)

/* Backoff between two connection attempts after a drop: about 26 s in all, long enough
 * for a daemon to restart, short enough that a daemon that is gone is reported. */
static const unsigned retry_ms[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000};
#define RETRIES ((int)(sizeof(retry_ms) / sizeof(retry_ms[0])))

/* lws pings an idle connection, and gives up on one whose pings go unanswered: a daemon
 * that vanished without a close (a network gone) is then noticed and reconnected. */
static const lws_retry_bo_t idle_policy = {.secs_since_valid_ping = 30,
                                           .secs_since_valid_hangup = 45};

/* A message waiting for the WebSocket to be writable. */
struct out_msg {
	struct out_msg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE bytes, then len bytes of JSON */
};

struct attach {
	struct ctl_ctx *ctx;
	char session[CTL_PATH_MAX]; /* "/v1/sessions/ID", escaped */
	struct lws_context *lws;
	struct lws *ws; /* the WebSocket; NULL when there is none */
	struct lws *in; /* standard input; NULL once it ended */
	struct ctl_watch watch;

	struct ctl_lines lines;
	bool eof;         /* standard input ended */
	bool reading;     /* POLLIN is wanted on standard input */
	unsigned line_no; /* lines taken so far: a run's ref is "line N" */

	struct out_msg *q_head, *q_tail;
	char *rx; /* a message being assembled from its fragments */
	size_t rx_len;
	bool rx_too_big;

	bool open;                 /* the WebSocket is up */
	int tries;                 /* failed connection attempts since the last success */
	bool announced;            /* the drop was announced on stderr */
	bool retry_due;            /* the backoff passed: connect again */
	int64_t last_seq;          /* the session's, from the check before the connection */
	char why[CTL_MESSAGE_MAX]; /* why the last connection failed or dropped */

	bool detaching; /* closing on purpose */
	bool done;
	int exit_code;
	lws_sorted_usec_list_t sul_retry, sul_tick, sul_grace;
};

/* Ctrl-C presses not handled yet by the loop. */
static volatile sig_atomic_t interrupts;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupts++;
}

static struct attach *attach_of(struct lws *wsi)
{
	return wsi ? lws_context_user(lws_get_context(wsi)) : NULL;
}

__attribute__((format(printf, 2, 3))) static void say(struct attach *a, const char *fmt, ...)
{
	char line[CTL_MESSAGE_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_events_end_line(&a->watch.events);
	fprintf(stderr, "agentctl: %s\n", line);
}

static void finish(struct attach *a, int exit_code)
{
	a->done = true;
	a->exit_code = exit_code;
	lws_cancel_service(a->lws);
}

/* --- sending ------------------------------------------------------------------------ */

static void queue(struct attach *a, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	struct out_msg *m = text ? malloc(sizeof(*m) + LWS_PRE + len) : NULL;

	if (!m)
		abort();
	json_decref(msg);
	m->next = NULL;
	m->len = len;
	memcpy(m->data + LWS_PRE, text, len);
	free(text);
	if (a->q_tail)
		a->q_tail->next = m;
	else
		a->q_head = m;
	a->q_tail = m;
	if (a->ws && a->open)
		lws_callback_on_writable(a->ws);
}

/* What was not sent on a connection that dropped is not sent on the next: watch.c has
 * already taken a run that was sent as maybe lost, and must not see it run twice. */
static void drop_queue(struct attach *a)
{
	while (a->q_head) {
		struct out_msg *next = a->q_head->next;

		free(a->q_head);
		a->q_head = next;
	}
	a->q_tail = NULL;
}

static void queue_all(struct attach *a, json_t *array)
{
	size_t i;
	json_t *msg;

	json_array_foreach(array, i, msg) queue(a, json_incref(msg));
	json_decref(array);
}

/* Returns what the WRITEABLE callback returns: -1 closes the connection. */
static int write_next(struct attach *a, struct lws *wsi)
{
	struct out_msg *m = a->q_head;
	int n;

	if (!m) {
		if (!a->detaching)
			return 0;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	a->q_head = m->next;
	if (!a->q_head)
		a->q_tail = NULL;
	n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
	free(m);
	if (n < 0)
		return -1;
	if (a->q_head || a->detaching)
		lws_callback_on_writable(wsi);
	return 0;
}

/* --- ending ------------------------------------------------------------------------- */

static void on_grace(lws_sorted_usec_list_t *sul)
{
	struct attach *a = lws_container_of(sul, struct attach, sul_grace);

	finish(a, a->exit_code);
}

/* Closes the connection (once what is queued is sent) and ends with exit_code. */
static void detach(struct attach *a, int exit_code)
{
	if (a->detaching)
		return;
	a->detaching = true;
	a->exit_code = exit_code;
	if (!a->ws || !a->open) {
		finish(a, exit_code);
		return;
	}
	lws_callback_on_writable(a->ws);
	lws_sul_schedule(a->lws, 0, &a->sul_grace, on_grace, CLOSE_GRACE_US);
}

/* --- receiving ---------------------------------------------------------------------- */

static void deliver(struct attach *a)
{
	json_t *send = NULL;

	if (ctl_watch_receive(&a->watch, a->rx, a->rx_len, &send)) {
		say(a, "%s", a->watch.error);
		finish(a, CTL_EXIT_FAIL);
	}
	if (send)
		queue(a, send);
}

static void receive(struct attach *a, struct lws *wsi, const void *in, size_t len)
{
	if (!a->rx_too_big && a->rx_len + len > RX_MAX) {
		a->rx_too_big = true;
		free(a->rx);
		a->rx = NULL;
		a->rx_len = 0;
	}
	if (!a->rx_too_big) {
		a->rx = realloc(a->rx, a->rx_len + len + 1);
		if (!a->rx)
			abort();
		memcpy(a->rx + a->rx_len, in, len);
		a->rx_len += len;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return;
	if (a->rx_too_big)
		say(a, "the daemon sent a message larger than 64 MiB; it is skipped");
	else
		deliver(a);
	free(a->rx);
	a->rx = NULL;
	a->rx_len = 0;
	a->rx_too_big = false;
}

/* --- connecting --------------------------------------------------------------------- */

static void on_retry(lws_sorted_usec_list_t *sul)
{
	struct attach *a = lws_container_of(sul, struct attach, sul_retry);

	a->retry_due = true;
}

/* A connection attempt failed, or the connection dropped: try again after the backoff,
 * or give up once the tries are used up. The first connection is not retried: a daemon
 * or session that is not there is reported at once. */
static void connection_lost(struct attach *a)
{
	a->open = false;
	drop_queue(a);
	if (a->done)
		return;
	if (a->detaching) {
		finish(a, a->exit_code);
		return;
	}
	if (!a->watch.connections) {
		say(a, "%s%s/ws: the WebSocket could not be opened: %s", a->ctx->cfg.url.text,
		    a->session, a->why);
		finish(a, CTL_EXIT_FAIL);
		return;
	}
	if (a->tries >= RETRIES) {
		say(a, "gave up reconnecting after %d tries: %s", a->tries, a->why);
		finish(a, CTL_EXIT_FAIL);
		return;
	}
	if (!a->announced)
		say(a, "lost the connection to %s (%s); reconnecting", a->ctx->cfg.url.text,
		    a->why);
	a->announced = true;
	lws_sul_schedule(a->lws, 0, &a->sul_retry, on_retry,
	                 (lws_usec_t)retry_ms[a->tries++] * LWS_US_PER_MS);
}

/* Asks for the session over HTTP first: a session that is gone or a token refused then
 * comes with the daemon's own words (a refused WebSocket upgrade carries none), and a
 * daemon that is down with the reason ("Connection refused"). Returns 0 when the session
 * is there, with its last seq in a->last_seq: the replay on the connection is over once
 * that event is printed. */
static int check_session(struct attach *a)
{
	struct ctl_answer ans;
	int rc = ctl_request(a->ctx, "GET", a->session, NULL, false, &ans);

	if (rc && (ans.status == 0 || ans.status >= 500) && a->watch.connections) {
		snprintf(a->why, sizeof(a->why), "%s", ans.error);
		connection_lost(a); /* a daemon restarting: try again */
	} else if (rc) {
		ctl_report(a->ctx, &ans, true);
		finish(a, CTL_EXIT_FAIL);
	} else {
		a->last_seq = json_integer_value(json_object_get(ans.json, "last_seq"));
		/* --after past the log's end would hide the events still to come. */
		if (!a->watch.connections && a->watch.last_seq > a->last_seq)
			a->watch.last_seq = a->last_seq;
	}
	json_decref(ans.json);
	return rc;
}

static void connect_ws(struct attach *a)
{
	const struct ctl_url *url = &a->ctx->cfg.url;
	struct lws_client_connect_info i;
	char path[CTL_URL_PREFIX_MAX + CTL_PATH_MAX + 8];

	if (check_session(a))
		return;
	snprintf(path, sizeof(path), "%s%s/ws", url->prefix, a->session);
	memset(&i, 0, sizeof(i));
	i.context = a->lws;
	i.address = url->host;
	i.port = url->port;
	i.host = url->host_header;
	i.origin = url->host_header;
	i.path = path;
	i.protocol = PROTOCOL;
	i.pwsi = &a->ws;
	i.retry_and_idle_policy = &idle_policy;
	if (url->tls) {
		i.ssl_connection = LCCSCF_USE_SSL;
		i.alpn = "http/1.1";
	}
	if (lws_client_connect_via_info(&i))
		return;
	a->ws = NULL;
	if (!a->why[0])
		snprintf(a->why, sizeof(a->why), "the connection could not be started");
	connection_lost(a);
}

/* The resume goes first on a connection: the daemon starts delivering with the first
 * message it reads, from the seq a resume names or else from the end of its log. A cancel
 * asked while the connection was down follows it. */
static void connected(struct attach *a)
{
	json_t *send = json_array();
	struct out_msg *waiting = a->q_head, *waiting_tail = a->q_tail;

	a->q_head = a->q_tail = NULL;
	a->open = true;
	a->tries = 0;
	a->why[0] = '\0';
	if (a->announced)
		say(a, "reconnected; resuming after event %lld", (long long)a->watch.last_seq);
	a->announced = false;
	ctl_watch_connected(&a->watch, send, a->last_seq);
	queue_all(a, send);
	if (waiting) {
		a->q_tail->next = waiting;
		a->q_tail = waiting_tail;
	}
}

/* The token goes in the upgrade's Authorization header, not in the URL (?access_token=
 * is for browsers, which cannot set headers): URLs end up in logs. */
static int add_token(struct attach *a, struct lws *wsi, unsigned char **p, unsigned char *end)
{
	char value[CTL_TOKEN_MAX + 16];

	if (!a->ctx->cfg.token)
		return 0;
	snprintf(value, sizeof(value), "Bearer %s", a->ctx->cfg.token);
	return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
	                                    (const unsigned char *)value, (int)strlen(value), p,
	                                    end);
}

/* Why the connection could not be made. A refused upgrade ("HS: ws upgrade response not
 * 101" in lws' words) is said with its status (503 when the daemon is at --max-ws). */
static void upgrade_failed(struct attach *a, struct lws *wsi, const char *reason)
{
	unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;

	if (!reason || !*reason)
		reason = "the connection failed";
	if (status && status != 101)
		snprintf(a->why, sizeof(a->why), "the daemon answered %u to the upgrade (%s)", status,
		         reason);
	else
		snprintf(a->why, sizeof(a->why), "%s", reason);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
	struct attach *a = attach_of(wsi);

	(void)user;
	if (!a)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return add_token(a, wsi, (unsigned char **)in, *(unsigned char **)in + len);
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		connected(a);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		receive(a, wsi, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return write_next(a, wsi);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		upgrade_failed(a, wsi, in);
		a->ws = NULL;
		connection_lost(a);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!a->why[0])
			snprintf(a->why, sizeof(a->why), "the connection was closed");
		a->ws = NULL;
		connection_lost(a);
		return 0;
	default:
		return 0;
	}
}

/* --- standard input ----------------------------------------------------------------- */

/* POLLIN on standard input only while no whole line waits: a long input is read as it is
 * needed, not into memory at once. */
static void want_input(struct attach *a, bool want)
{
	if (!a->in || want == a->reading)
		return;
	a->reading = want;
	lws_rx_flow_control(a->in, (want ? 1 : 0) | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static int read_input(struct attach *a)
{
	char buf[READ_CHUNK];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		say(a, "attach: cannot read standard input: %s", strerror(errno));
	if (n <= 0) {
		a->eof = true;
		return -1; /* closes it: RAW_CLOSE_FILE */
	}
	if (ctl_lines_feed(&a->lines, buf, (size_t)n)) {
		say(a, "attach: line %u of the input is longer than %u bytes", a->line_no + 1,
		    CTL_INPUT_MAX);
		detach(a, CTL_EXIT_FAIL);
	}
	return 0;
}

static int stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct attach *a = attach_of(wsi);

	(void)user, (void)in, (void)len;
	if (!a)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		return read_input(a);
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		a->in = NULL;
		a->eof = true;
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL, ws_callback, 0, 65536, 0, NULL, 0},
    {"agentctl-stdin", stdin_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void adopt_stdin(struct attach *a)
{
	lws_sock_file_fd_type fd = {.filefd = STDIN_FILENO};
	struct lws_vhost *vh = lws_get_vhost_by_name(a->lws, "default");

	a->in =
	    vh ? lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "agentctl-stdin", NULL)
	       : NULL;
	a->reading = a->in != NULL;
	a->eof = a->in == NULL;
}

/* --- the loop ----------------------------------------------------------------------- */

/* One line of input: blank lines are skipped; one that is not valid JSON is reported and
 * skipped (the session goes on); any other is sent as a run. */
static void send_line(struct attach *a, const char *line, size_t len)
{
	char ref[CTL_WATCH_REF_MAX], err[CTL_MESSAGE_MAX];
	json_t *input;

	a->line_no++;
	if (strspn(line, " \t\r") >= len)
		return;
	if (ctl_input_parse(line, len, &input, err, sizeof(err))) {
		say(a, "attach: line %u: %s; skipped", a->line_no, err);
		return;
	}
	snprintf(ref, sizeof(ref), "line %u", a->line_no);
	queue(a, ctl_watch_run(&a->watch, input, ref));
	json_decref(input);
}

/* Sends the next line when the session is ready for it; detaches at the end of input once
 * our runs have ended. */
static void pump(struct attach *a)
{
	while (a->open && !a->detaching && !a->done && ctl_watch_ready(&a->watch)) {
		size_t len;
		const char *line = ctl_lines_next(&a->lines, a->eof, &len);

		if (!line) {
			if (a->eof)
				detach(a, CTL_EXIT_OK);
			break;
		}
		send_line(a, line, len);
	}
	want_input(a, !ctl_lines_ready(&a->lines));
}

static void handle_interrupts(struct attach *a, sig_atomic_t *handled)
{
	while (*handled != interrupts && !a->detaching) {
		bool now;
		json_t *cancel = ctl_watch_interrupt(&a->watch, &now);

		(*handled)++;
		if (cancel)
			queue(a, cancel);
		if (now) {
			say(a, "interrupted: detached; the session and its runs go on");
			detach(a, CTL_EXIT_INTERRUPTED);
		}
	}
}

/* After a reconnect, a run that is still ours may have been failed by a daemon restart
 * without an event: its result says. */
static void check_run(struct attach *a)
{
	char path[CTL_PATH_MAX + 128];
	struct ctl_answer ans;

	snprintf(path, sizeof(path), "%s/runs/%s", a->session, a->watch.run);
	if (ctl_request(a->ctx, "GET", path, NULL, false, &ans) == 0 &&
	    ctl_watch_run_result(&a->watch, ans.json)) {
		say(a, "%s", a->watch.error);
		finish(a, CTL_EXIT_FAIL);
	}
	a->watch.check_run = false;
	json_decref(ans.json);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct attach *a = lws_container_of(sul, struct attach, sul_tick);

	lws_sul_schedule(a->lws, 0, &a->sul_tick, on_tick, TICK_US);
}

static int create_context(struct attach *a)
{
	struct lws_context_creation_info info;

	lws_set_log_level(a->ctx->verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = a;
	info.connect_timeout_secs = 10;
	info.fd_limit_per_thread = 16;
	if (a->ctx->cfg.url.tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	a->lws = lws_create_context(&info);
	if (!a->lws) {
		fprintf(stderr, "agentctl: cannot start the libwebsockets client\n");
		return -1;
	}
	return 0;
}

/* --after SEQ: a number >= 0. */
static int parse_after(const struct ctl_args *args, int64_t *after)
{
	const char *text = ctl_args_option(args, "after");
	char *end;
	long long n;

	*after = 0;
	if (!text)
		return 0;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (!*text || *end || errno || n < 0 || !(text[0] >= '0' && text[0] <= '9')) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "attach: --after wants an event seq (0 or more), not '%.32s'", text);
		ctl_print_usage_error(msg);
		return -1;
	}
	*after = n;
	return 0;
}

static void run_loop(struct attach *a)
{
	sig_atomic_t handled = 0;
	struct sigaction sa = {.sa_handler = on_interrupt}, old;

	/* No SA_RESTART: Ctrl-C ends the poll at once. */
	interrupts = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	lws_sul_schedule(a->lws, 0, &a->sul_tick, on_tick, TICK_US);
	connect_ws(a);
	while (!a->done) {
		handle_interrupts(a, &handled);
		if (a->retry_due && !a->detaching) {
			a->retry_due = false;
			connect_ws(a);
		}
		if (a->watch.check_run && !a->done)
			check_run(a);
		pump(a);
		if (!a->done && lws_service(a->lws, 0) < 0) {
			say(a, "attach: the libwebsockets loop failed");
			finish(a, CTL_EXIT_FAIL);
		}
	}
	sigaction(SIGINT, &old, NULL);
}

int ctl_cmd_attach(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct attach a;
	int64_t after;
	int rc;

	memset(&a, 0, sizeof(a));
	a.ctx = ctx;
	if ((rc = ctl_route(a.session, sizeof(a.session), "/v1/sessions", args->argv[0], "session",
	                    "ID")))
		return rc;
	if (parse_after(args, &after))
		return CTL_EXIT_USAGE;
	if (create_context(&a))
		return CTL_EXIT_FAIL;
	ctl_watch_init(&a.watch, stdout, stderr, ctx->json, isatty(STDOUT_FILENO), after);
	ctl_lines_init(&a.lines, CTL_INPUT_MAX);
	adopt_stdin(&a);
	run_loop(&a);
	ctl_events_end_line(&a.watch.events);
	lws_sul_cancel(&a.sul_tick);
	lws_sul_cancel(&a.sul_retry);
	lws_sul_cancel(&a.sul_grace);
	lws_context_destroy(a.lws);
	drop_queue(&a);
	free(a.rx);
	ctl_lines_free(&a.lines);
	return a.exit_code;
}
