/* frame_fuzz.c: libFuzzer target for protocol/frame.c. The first two input bytes choose the
 * reader's cap and the size of the reads; the rest is the stream. It checks that chunked
 * and whole feeding report the same frames and errors, that the buffer stays within the
 * cap, that every frame validates without crashing, and that every frame survives an
 * encode/parse round trip. Any broken invariant traps. */
#include "frame.h"
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct transcript {
	char *text;
	size_t len, size;
	size_t cap; /* the reader's cap, for the round trip */
};

static void transcript_add(struct transcript *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->size) {
		t->size = (t->len + n + 1) * 2;
		t->text = realloc(t->text, t->size);
		REQUIRE(t->text);
	}
	memcpy(t->text + t->len, s, n);
	t->len += n;
	t->text[t->len++] = '\n';
}

static int on_roundtrip(void *ctx, json_t *frame, const struct frame_error *err)
{
	json_t *original = ctx;

	REQUIRE(frame && !err);
	REQUIRE(json_equal(frame, original));
	return 0;
}

/* Encoding a frame and reading it back gives the same frame, on exactly one line. */
static void check_roundtrip(json_t *frame)
{
	struct frame_reader r;
	char *line;
	size_t len;

	REQUIRE(frame_encode(frame, 0, &line, &len) == 0);
	REQUIRE(len > 0 && line[len - 1] == '\n' && !memchr(line, '\n', len - 1));
	frame_reader_init(&r, len);
	REQUIRE(frame_reader_feed(&r, line, len, on_roundtrip, frame) == 0);
	REQUIRE(r.line == 1 && frame_reader_eof(&r, NULL) == 0);
	frame_reader_free(&r);
	free(line);
}

static int on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	struct transcript *t = ctx;
	char head[64];
	int n;

	if (!frame) {
		REQUIRE(err && err->code < 0 && err->line > 0 &&
		        strlen(err->text) < FRAME_ERROR_TEXT);
		n = snprintf(head, sizeof(head), "error %d line %lu", err->code, err->line);
		transcript_add(t, head, n);
		return 0;
	}
	{
		char *s = json_dumps(frame, JSON_COMPACT | JSON_SORT_KEYS);
		struct frame_error verr;

		REQUIRE(s && json_is_string(json_object_get(frame, "t")));
		transcript_add(t, s, strlen(s));
		free(s);
		REQUIRE(frame_validate(frame, FRAME_TO_HOST, &verr) < FRAME_KIND_COUNT);
		REQUIRE(frame_validate(frame, FRAME_TO_AGENT, &verr) < FRAME_KIND_COUNT);
	}
	check_roundtrip(frame);
	return 0;
}

/* Feeds the stream in reads of step, step + 1, step + 2, ... bytes (wrapping), checking the
 * memory bound after each. */
static int feed_chunked(struct frame_reader *r, const uint8_t *p, size_t size, size_t step,
                        struct transcript *t)
{
	size_t i = 0, n = step;

	while (i < size) {
		if (n > size - i)
			n = size - i;
		REQUIRE(frame_reader_feed(r, p + i, n, on_frame, t) == 0);
		REQUIRE(r->size <= r->max_frame + 1);
		REQUIRE(r->len <= r->max_frame + 1);
		i += n;
		n = 1 + (n + 1) % (step * 2 + 1);
	}
	return frame_reader_eof(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript whole = {0}, chunked = {0};
	struct frame_reader a, b;
	size_t cap, step;
	int eof_a, eof_b;

	if (size < 2)
		return 0;
	cap = 1 + (size_t)data[0] * 4;
	step = 1 + data[1] % 32;
	data += 2;
	size -= 2;

	frame_reader_init(&a, cap);
	REQUIRE(frame_reader_feed(&a, data, size, on_frame, &whole) == 0);
	eof_a = frame_reader_eof(&a, NULL);
	frame_reader_init(&b, cap);
	eof_b = feed_chunked(&b, data, size, step, &chunked);

	REQUIRE(eof_a == eof_b);
	REQUIRE(a.line == b.line);
	REQUIRE(whole.len == chunked.len);
	REQUIRE(whole.len == 0 || memcmp(whole.text, chunked.text, whole.len) == 0);

	frame_reader_free(&a);
	frame_reader_free(&b);
	free(whole.text);
	free(chunked.text);
	return 0;
}
