/* api_fuzz.c: libFuzzer target for the client API: host/http.c (request, body collection,
 * dispatch, reply), host/api.c (router, auth, content type) and every route's handler
 * (api_*.c, invoke.c) down to the sessions and the store, through the harness daemon
 * (tests/fuzz/host). The input is a small HTTP request:
 *
 *   METHOD TARGET          e.g. POST /v1/agents/fz-sess/sessions?wait=false
 *   Name: value            headers: Authorization, Content-Type, Accept, Last-Event-ID,
 *   ...                      Transfer-Encoding (Content-Length is the body's)
 *                          an empty line
 *   BODY                   the rest, delivered in chunks
 *
 * with the harness's placeholders ({s}, {client}, ...) expanded in the target and headers.
 * Every request must get exactly one complete reply whose length matches its header; a
 * JSON reply must parse, and an error reply must be {"error": {"code", "message"}}; no
 * input may cause a 500; and a refused request (4xx, 503) must change nothing a client
 * can see (harness_fingerprint). Each input starts from the harness baseline. */
#include "fake_lws.h"
#include "fuzz.h"
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct request {
	char *method, *target, *headers;
	const uint8_t *body;
	size_t body_len;
};

/* Splits the input; false when there is no request line. */
static bool parse_input(const uint8_t *data, size_t size, struct request *rq)
{
	const uint8_t *nl = memchr(data, '\n', size), *end = data + size, *p;
	char *line, *space;

	if (!nl)
		return false;
	line = harness_expand((const char *)data, (size_t)(nl - data));
	space = strchr(line, ' ');
	if (!space || !space[1]) {
		free(line);
		return false;
	}
	*space = '\0';
	rq->method = line;
	rq->target = space + 1;
	/* Headers end at the first empty line. */
	for (p = nl + 1; p < end && *p != '\n';) {
		const uint8_t *next = memchr(p, '\n', (size_t)(end - p));
		p = next ? next + 1 : end;
	}
	rq->headers = harness_expand((const char *)nl + 1, (size_t)(p - nl - 1));
	rq->body = p < end ? p + 1 : end;
	rq->body_len = (size_t)(end - rq->body);
	return true;
}

static void check_error_body(json_t *doc)
{
	json_t *error = json_object_get(doc, "error");

	REQUIRE(json_object_size(doc) == 1 && json_object_size(error) == 2);
	REQUIRE(json_is_string(json_object_get(error, "code")));
	REQUIRE(json_is_string(json_object_get(error, "message")));
}

static void check_reply(const struct fake_conn *c, uint64_t before)
{
	REQUIRE(c->headers_done); /* every request is answered */
	if (c->declared >= 0) {
		REQUIRE((size_t)c->declared == c->body_len);
		REQUIRE(c->final_written || c->declared == 0);
	}
	REQUIRE(c->status != 500);
	if (strcmp(c->type, "application/json") == 0) {
		json_error_t jerr;
		json_t *doc = json_loadb(c->body, c->body_len, 0, &jerr);
		if (!doc)
			fprintf(stderr, "reply is not JSON: %s: %.200s\n", jerr.text, c->body);
		REQUIRE(doc && json_is_object(doc));
		if (c->status >= 400)
			check_error_body(doc);
		json_decref(doc);
	}
	if (c->status >= 400)
		REQUIRE(harness_fingerprint() == before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request rq;
	struct fake_conn c;
	uint64_t before;

	harness_init();
	harness_reset();
	if (!parse_input(data, size, &rq))
		return 0;
	before = harness_fingerprint();
	harness_http(&c, rq.method, rq.target, rq.headers, rq.body, rq.body_len, 1 + size % 61);
	if (getenv("FUZZ_VERBOSE")) /* to see what the seeds do */
		fprintf(stderr, "%s %.60s -> %u %s %.300s\n", rq.method, rq.target, c.status,
		        c.type, c.body ? c.body : "");
	check_reply(&c, before);
	fake_conn_clear(&c);
	free(rq.method);
	free(rq.headers);
	return 0;
}
