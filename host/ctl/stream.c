/* stream.c: a run streamed over SSE and printed as it goes (see stream.h). */
#include "stream.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "events.h"
#include "input.h"
#include "output.h"
#include "sse.h"

/* Set by Ctrl-C while a call streams; the HTTP client then closes the connection. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

int ctl_read_input(const struct ctl_args *args, int index, json_t **input)
{
	const char *arg = args->argc > index ? args->argv[index] : NULL;
	char err[CTL_MESSAGE_MAX], msg[CTL_MESSAGE_MAX + 64], *text = NULL;
	size_t len = 0;
	int rc;

	switch (ctl_input_source(arg, isatty(STDIN_FILENO))) {
	case CTL_INPUT_NONE:
		*input = json_null();
		return CTL_EXIT_OK;
	case CTL_INPUT_STDIN:
		if (ctl_input_read(STDIN_FILENO, CTL_INPUT_MAX, &text, &len, err, sizeof(err))) {
			fprintf(stderr, "agentctl: %s: %s\n", args->command->name, err);
			return CTL_EXIT_FAIL;
		}
		break;
	case CTL_INPUT_ARG:
		len = strlen(arg);
		break;
	}
	rc = ctl_input_parse(text ? text : arg, len, input, err, sizeof(err));
	free(text);
	if (!rc)
		return CTL_EXIT_OK;
	snprintf(msg, sizeof(msg), "%s: %s", args->command->name, err);
	ctl_print_usage_error(msg);
	return CTL_EXIT_USAGE;
}

/* A streamed call: the SSE parser hands each event to the printer. */
struct stream {
	struct ctl_sse_parser *sse;
	struct ctl_events events;
	int sse_rc; /* the parser's last answer: 0 on, 1 the run ended, -1 a bad event */
};

static int stream_event(const struct ctl_sse_event *e, void *user)
{
	struct stream *s = user;

	return ctl_events_add(&s->events, e->type, e->data, e->data_len);
}

static int stream_chunk(const char *data, size_t len, void *user)
{
	struct stream *s = user;

	s->sse_rc = ctl_sse_feed(s->sse, data, len);
	return s->sse_rc != 0;
}

/* The exit status of a streamed call that got a whole answer, after printing what went
 * wrong: the daemon's refusal, the run's failure, or a stream that ended too soon. */
static int stream_outcome(const struct ctl_ctx *ctx, const struct stream *s, const char *path,
                          const struct ctl_http_response *resp)
{
	struct ctl_answer a = {.status = resp->status};
	char why[CTL_MESSAGE_MAX + CTL_URL_PREFIX_MAX + 64];

	if (resp->status < 200 || resp->status > 299) {
		a.json = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
		ctl_format_http_error(resp->status, resp->body, resp->body_len, a.error,
		                      sizeof(a.error));
		ctl_report(ctx, &a, true);
		json_decref(a.json);
		return CTL_EXIT_FAIL;
	}
	if (s->events.end == CTL_RUN_COMPLETED)
		return CTL_EXIT_OK;
	if (s->events.error[0])
		snprintf(why, sizeof(why), "%s", s->events.error);
	else if (s->sse_rc < 0)
		snprintf(why, sizeof(why), "%s%s sent an event larger than 64 MiB",
		         ctx->cfg.url.text, path);
	else if (strncmp(resp->content_type, "text/event-stream", 17))
		snprintf(why, sizeof(why), "%s%s answered %d %s, not an event stream",
		         ctx->cfg.url.text, path, resp->status,
		         resp->content_type[0] ? resp->content_type : "without a content type");
	else
		snprintf(why, sizeof(why), "%s%s closed the stream before the run ended",
		         ctx->cfg.url.text, path);
	fprintf(stderr, "agentctl: %s\n", why);
	return CTL_EXIT_FAIL;
}

/* After Ctrl-C stopped a session's run: a session's run does not end with its client, so
 * ask the daemon to cancel it, and say what became of it. Returns CTL_EXIT_INTERRUPTED. */
static int cancel_interrupted(struct ctl_ctx *ctx, const char *session, const char *run)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;

	if (!run[0]) {
		fprintf(stderr,
		        "agentctl: interrupted before the run started: it stays queued in the "
		        "session\n");
		return CTL_EXIT_INTERRUPTED;
	}
	snprintf(path, sizeof(path), "%s/runs/%s/cancel", session, run);
	if (!ctl_request(ctx, "POST", path, NULL, false, &a))
		fprintf(stderr, "agentctl: interrupted: run %s is being cancelled\n", run);
	else if (a.status == 404)
		fprintf(stderr, "agentctl: interrupted: run %s had already ended\n", run);
	else
		fprintf(stderr, "agentctl: interrupted, but run %s could not be cancelled: %s\n",
		        run, a.error);
	json_decref(a.json);
	return CTL_EXIT_INTERRUPTED;
}

int ctl_stream_run(struct ctl_ctx *ctx, const char *path, json_t *input, const char *session)
{
	struct stream s = {0};
	struct ctl_http_request req = {.method = "POST",
	                               .path = path,
	                               .accept = "text/event-stream",
	                               .on_chunk = stream_chunk,
	                               .user = &s,
	                               .stop = &interrupted};
	struct ctl_http_response resp;
	struct sigaction sa = {.sa_handler = on_interrupt}, old;
	json_t *body = json_pack("{s:O}", "input", input);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char err[CTL_MESSAGE_MAX];
	int rc;

	if (!text)
		abort();
	json_decref(body);
	req.body = text;
	req.body_len = strlen(text);
	s.sse = ctl_sse_new(stream_event, &s, 0);
	ctl_events_init(&s.events, stdout, ctx->json, isatty(STDOUT_FILENO));
	/* No SA_RESTART: Ctrl-C ends the client's poll at once. */
	interrupted = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	rc = ctl_http_request(ctx->http, &req, &resp, err, sizeof(err));
	sigaction(SIGINT, &old, NULL);
	free(text);
	ctl_sse_free(s.sse);
	ctl_events_end_line(&s.events);
	if (rc && interrupted && session)
		return cancel_interrupted(ctx, session, s.events.run);
	if (rc && interrupted) {
		fprintf(stderr, "agentctl: interrupted: the connection is closed, so the daemon "
		                "ends the call\n");
		return CTL_EXIT_INTERRUPTED;
	}
	if (rc) {
		fprintf(stderr, "agentctl: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	rc = stream_outcome(ctx, &s, path, &resp);
	ctl_http_response_free(&resp);
	return rc;
}
