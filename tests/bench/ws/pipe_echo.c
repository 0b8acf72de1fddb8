/* pipe_echo.c: the echo agent's logic over a pipe, for the Node forwarder of the WebSocket
 * benchmark (node/forwarder.js starts one per connection). It reads one JSON message a line
 * on stdin, {"type":"run","input":ANY,"ref"?:"..."}, and writes the run's events a line each
 * on stdout, each with its own write() as the agent SDK writes each frame, shaped like
 * agenthost's session events: run.started (with the ref), one run.output {"word"} per word
 * of a string input (examples/echo/echo.c's split), run.completed with the input as output.
 * A line that is not a run gets {"type":"error",...}. Exits at end of input. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long seq, runs;

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Writes {"seq","type","time","run"?, ...extra} and a newline; takes extra. */
static void emit(const char *type, const char *run, json_t *extra)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], when[40];
	json_t *ev = json_object();

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%03dZ", stamp, (int)(ts.tv_nsec / 1000000));
	json_object_set_new(ev, "seq", json_integer((json_int_t)++seq));
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "time", json_string(when));
	if (run)
		json_object_set_new(ev, "run", json_string(run));
	if (extra)
		json_object_update(ev, extra);
	json_decref(extra);
	char *text = json_dumps(ev, JSON_COMPACT);
	size_t len = strlen(text);
	text = realloc(text, len + 2);
	if (!text)
		abort();
	text[len] = '\n';
	for (size_t off = 0; off <= len;) {
		ssize_t w = write(1, text + off, len + 1 - off);
		if (w <= 0)
			exit(0); /* the host is gone */
		off += (size_t)w;
	}
	free(text);
	json_decref(ev);
}

static void run(json_t *msg)
{
	json_t *input = json_object_get(msg, "input"), *ref = json_object_get(msg, "ref");
	char id[40];

	if (!input)
		input = json_null();
	snprintf(id, sizeof(id), "r_%032llx", ++runs);
	emit("run.started", id, json_is_string(ref) ? json_pack("{s:O}", "ref", ref) : NULL);
	if (json_is_string(input)) {
		const char *s = json_string_value(input);
		size_t len = json_string_length(input), i = 0;
		while (i < len) {
			while (i < len && is_space(s[i]))
				i++;
			size_t start = i;
			while (i < len && !is_space(s[i]))
				i++;
			if (i > start)
				emit("run.output", id,
				     json_pack("{s:{s:s%}}", "data", "word", s + start, i - start));
		}
	}
	emit("run.completed", id, json_pack("{s:O}", "output", input));
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		json_error_t err;
		json_t *msg = json_loadb(line, (size_t)n, 0, &err);
		const char *type = json_string_value(json_object_get(msg, "type"));

		if (type && strcmp(type, "run") == 0)
			run(msg);
		else
			emit("error", NULL,
			     json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
			               msg ? "only runs are served" : err.text));
		json_decref(msg);
	}
	free(line);
	return 0;
}
