/* frame_test.c: unit tests of protocol/frame.c: the reader against split and packed input,
 * the cap, bad bytes and EOF; the writer; and the frame table in both directions. */
#include "check.h"
#include "frame.h"

#include <stdlib.h>
#include <string.h>

/* What a reader reported, as text: one "frame <json>" or "error <code> line <n>" per
 * callback, so that whole runs can be compared with one strcmp. */
struct log {
	char text[65536];
	size_t len;
	int frames, errors;
	int stop_after; /* return 1 after this many callbacks; 0: never */
	char last_error[FRAME_ERROR_TEXT];
};

static void log_add(struct log *l, const char *s)
{
	size_t n = strlen(s);

	if (l->len + n + 1 < sizeof(l->text)) {
		memcpy(l->text + l->len, s, n);
		l->len += n;
		l->text[l->len++] = '\n';
		l->text[l->len] = '\0';
	}
}

static int on_frame(void *ctx, json_t *frame, const struct frame_error *err)
{
	struct log *l = ctx;
	char line[512];

	if (frame) {
		char *s = json_dumps(frame, JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(line, sizeof(line), "frame %s", s);
		free(s);
		l->frames++;
	} else {
		snprintf(line, sizeof(line), "error %d line %lu", err->code, err->line);
		snprintf(l->last_error, sizeof(l->last_error), "%s", err->text);
		l->errors++;
	}
	log_add(l, line);
	return l->stop_after && l->frames + l->errors >= l->stop_after;
}

/* Feeds the whole of s at once into a fresh reader with the given cap. */
static void feed_whole(const char *s, size_t len, size_t cap, struct log *l)
{
	struct frame_reader r;

	memset(l, 0, sizeof(*l));
	frame_reader_init(&r, cap);
	CHECK_INT(frame_reader_feed(&r, s, len, on_frame, l), 0);
	frame_reader_free(&r);
}

static const char stream[] =
    "{\"t\":\"hello\",\"n\":1}\n"
    "{\"t\":\"run\",\"run\":\"r_1\",\"input\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}\r\n"
    "not json\n"
    "{\"t\": \"a\\nb\", \"x\": [1, 2, {\"y\": null}]}\n"
    "[1]\n"
    "{\"t\":\"x\"}\n";

static void test_split_at_every_byte(void)
{
	size_t len = strlen(stream);
	struct log whole, split;
	bool all_same = true;

	feed_whole(stream, len, 1024, &whole);
	CHECK_INT(whole.frames, 4);
	CHECK_INT(whole.errors, 2);
	CHECK(strstr(whole.text, "error -3 line 3") != NULL);
	CHECK(strstr(whole.text, "error -4 line 5") != NULL);
	CHECK(strstr(whole.text, "\"input\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"") ||
	      strstr(whole.text, "\"input\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\""));

	/* Two reads, split at every position, including inside "\r\n" and inside UTF-8. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct frame_reader r;

		memset(&split, 0, sizeof(split));
		frame_reader_init(&r, 1024);
		frame_reader_feed(&r, stream, cut, on_frame, &split);
		frame_reader_feed(&r, stream + cut, len - cut, on_frame, &split);
		if (strcmp(split.text, whole.text) != 0 || frame_reader_eof(&r, NULL) != 0)
			all_same = false;
		frame_reader_free(&r);
	}
	CHECK(all_same);

	/* One byte per read. */
	{
		struct frame_reader r;

		memset(&split, 0, sizeof(split));
		frame_reader_init(&r, 1024);
		for (size_t i = 0; i < len; i++)
			frame_reader_feed(&r, stream + i, 1, on_frame, &split);
		CHECK_STR(split.text, whole.text);
		CHECK_INT(frame_reader_eof(&r, NULL), 0);
		frame_reader_free(&r);
	}
}

static void test_many_frames_in_one_read(void)
{
	static char buf[200000];
	struct frame_reader r;
	struct log *l = calloc(1, sizeof(*l));
	size_t len = 0;

	for (int i = 0; i < 5000; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "{\"t\":\"event\",\"i\":%d}\n", i);
	frame_reader_init(&r, 64);
	CHECK_INT(frame_reader_feed(&r, buf, len, on_frame, l), 0);
	CHECK_INT(l->frames, 5000);
	CHECK_INT(l->errors, 0);
	/* Whole lines are parsed in place: nothing was buffered. */
	CHECK(r.buf == NULL);
	CHECK_INT(r.line, 5000);
	frame_reader_free(&r);
	free(l);
}

static void test_line_over_cap(void)
{
	struct frame_reader r;
	struct log l;
	char big[64];

	/* Exactly the cap passes, one more byte fails; "\r\n" does not count. */
	feed_whole("{\"t\":\"abcdefgh\"}\n", 17, 16, &l);
	CHECK_INT(l.frames, 1);
	feed_whole("{\"t\":\"abcdefgh\"}\r\n", 18, 16, &l);
	CHECK_INT(l.frames, 1);
	feed_whole("{\"t\":\"abcdefghi\"}\n", 18, 16, &l);
	CHECK_INT(l.frames, 0);
	CHECK_STR(l.text, "error -1 line 1\n");
	CHECK_STR(l.last_error, "line 1: frame longer than 16 bytes");

	/* Reported as soon as the line passes the cap, before its end arrives; the buffer
	 * never holds more than cap + 1 bytes; the stream goes on after the long line. */
	memset(&l, 0, sizeof(l));
	frame_reader_init(&r, 16);
	frame_reader_feed(&r, "{\"t\":\"x\"}\n{\"t\":\"", 16, on_frame, &l);
	CHECK_INT(l.frames, 1);
	CHECK(r.size <= 17);
	frame_reader_feed(&r, "abcdefghij", 10, on_frame, &l);
	CHECK_INT(l.errors, 0);
	frame_reader_feed(&r, "k", 1, on_frame, &l);
	CHECK_INT(l.errors, 1);
	CHECK(strstr(l.text, "error -1 line 2") != NULL);
	CHECK(r.len == 0);
	memset(big, 'z', sizeof(big));
	for (int i = 0; i < 1000; i++)
		frame_reader_feed(&r, big, sizeof(big), on_frame, &l);
	CHECK(r.len == 0);
	CHECK_INT(l.errors, 1);
	CHECK_INT(frame_reader_eof(&r, NULL), FRAME_ETRUNCATED);
	frame_reader_feed(&r, "zz\"}\n{\"t\":\"y\"}\n", 15, on_frame, &l);
	CHECK_INT(l.frames, 2);
	CHECK(strstr(l.text, "frame {\"t\":\"y\"}") != NULL);
	CHECK_INT(r.line, 3);
	frame_reader_free(&r);

	/* A cap-sized frame whose "\r" comes in one read and "\n" in the next. */
	memset(&l, 0, sizeof(l));
	frame_reader_init(&r, 16);
	frame_reader_feed(&r, "{\"t\":\"abcdefgh\"}\r", 17, on_frame, &l);
	CHECK_INT(l.errors, 0);
	frame_reader_feed(&r, "\n", 1, on_frame, &l);
	CHECK_INT(l.frames, 1);
	/* ... and one whose byte after the cap is not "\r". */
	frame_reader_feed(&r, "{\"t\":\"abcdefgh\"}x", 17, on_frame, &l);
	CHECK_INT(l.errors, 1);
	frame_reader_free(&r);
}

static void expect_error(const char *line, size_t len, int code, const char *text)
{
	struct log l;

	feed_whole(line, len, 1024, &l);
	CHECK_INT(l.frames, 0);
	CHECK_INT(l.errors, 1);
	if (text && !strstr(l.last_error, text)) {
		fprintf(stderr, "expected \"%s\" in \"%s\"\n", text, l.last_error);
		CHECK(!"error text");
	}
	{
		char want[32];

		snprintf(want, sizeof(want), "error %d line 1", code);
		CHECK(strncmp(l.text, want, strlen(want)) == 0);
	}
}

#define EXPECT_ERROR(s, code, text) expect_error(s, sizeof(s) - 1, code, text)

static void test_bad_lines(void)
{
	struct log l;

	EXPECT_ERROR("{\"t\":\"\xc0\x80\"}\n", FRAME_EUTF8, "line 1: invalid UTF-8 at byte 6");
	EXPECT_ERROR("{\"t\":\"\xed\xa0\x80\"}\n", FRAME_EUTF8, "(0xed)");     /* surrogate */
	EXPECT_ERROR("{\"t\":\"\xf4\x90\x80\x80\"}\n", FRAME_EUTF8, NULL);     /* > U+10FFFF */
	EXPECT_ERROR("{\"t\":\"\xe2\x82\"}\n", FRAME_EUTF8, NULL);             /* cut short */
	EXPECT_ERROR("{\"t\":\"\x80\"}\n", FRAME_EUTF8, NULL);                 /* lone tail */
	EXPECT_ERROR("{\"t\":\"\xf8\x88\x80\x80\x80\"}\n", FRAME_EUTF8, NULL); /* 5 bytes */
	EXPECT_ERROR("{\"t\":\"x\"\xff}\n", FRAME_EUTF8, NULL);
	EXPECT_ERROR("{\"t\":\"x\"\n", FRAME_EJSON, "line 1: invalid JSON at byte");
	EXPECT_ERROR("\n", FRAME_EJSON, "empty line");
	EXPECT_ERROR("\r\n", FRAME_EJSON, "empty line");
	EXPECT_ERROR("{\"t\":\"x\"} {\"t\":\"y\"}\n", FRAME_EJSON, NULL);
	EXPECT_ERROR("{\"t\":\"x\",\"t\":\"y\"}\n", FRAME_EJSON, "duplicate");
	EXPECT_ERROR("{\"t\":\"a\\u0000b\"}\n", FRAME_EJSON, NULL);
	EXPECT_ERROR("{\"t\":\"x\",\"n\":123456789012345678901234567890}\n", FRAME_EJSON, NULL);
	EXPECT_ERROR("[{\"t\":\"x\"}]\n", FRAME_ENOTOBJECT, "not a JSON object");
	EXPECT_ERROR("\"t\"\n", FRAME_ENOTOBJECT, NULL);
	EXPECT_ERROR("{}\n", FRAME_ETYPE, "no field \"t\"");
	EXPECT_ERROR("{\"t\":1}\n", FRAME_ETYPE, "must be a string");
	EXPECT_ERROR("{\"t\":null}\n", FRAME_ETYPE, NULL);

	/* Valid multi-byte UTF-8 of every length passes, and so does NUL-free JSON text with
	 * a bare "\r" inside. */
	feed_whole("{\"t\":\"\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}\n", 22, 64,
	           &l);
	CHECK_INT(l.frames, 1);
	feed_whole("{\"t\":\r\"x\"}\n", 11, 64, &l);
	CHECK_INT(l.frames, 1);

	/* The line number counts every line, good or bad. */
	feed_whole("{\"t\":\"a\"}\nbad\n{\"t\":\"b\"}\n[]\n", 27, 64, &l);
	CHECK_STR(l.text,
	          "frame {\"t\":\"a\"}\nerror -3 line 2\nframe {\"t\":\"b\"}\nerror -4 line 4\n");
}

static void test_eof(void)
{
	struct frame_reader r;
	struct frame_error err;
	struct log l;

	memset(&l, 0, sizeof(l));
	frame_reader_init(&r, 64);
	CHECK_INT(frame_reader_eof(&r, &err), 0);
	frame_reader_feed(&r, "{\"t\":\"a\"}\n{\"t\":\"b\"", 18, on_frame, &l);
	CHECK_INT(l.frames, 1);
	CHECK_INT(frame_reader_eof(&r, &err), FRAME_ETRUNCATED);
	CHECK_INT(err.code, FRAME_ETRUNCATED);
	CHECK_INT(err.line, 2);
	CHECK_STR(err.text, "line 2: stream ended inside a frame (8 bytes without \"\\n\")");
	/* A complete-looking object is still not a frame without its "\n". */
	frame_reader_feed(&r, "}", 1, on_frame, &l);
	CHECK_INT(frame_reader_eof(&r, NULL), FRAME_ETRUNCATED);
	frame_reader_feed(&r, "\n", 1, on_frame, &l);
	CHECK_INT(frame_reader_eof(&r, NULL), 0);
	CHECK_INT(l.frames, 2);
	frame_reader_free(&r);
}

static void test_handler_stops(void)
{
	struct frame_reader r;
	struct log l;

	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	frame_reader_init(&r, 64);
	CHECK_INT(frame_reader_feed(&r, "{\"t\":\"a\"}\n{\"t\":\"b\"}\n", 20, on_frame, &l), 1);
	CHECK_INT(l.frames, 1);
	CHECK_INT(frame_reader_feed(&r, "{\"t\":\"c\"}\n", 10, on_frame, &l), FRAME_ESTOPPED);
	CHECK_INT(l.frames, 1);
	frame_reader_reset(&r);
	l.stop_after = 0;
	CHECK_INT(frame_reader_feed(&r, "{\"t\":\"d\"}\n", 10, on_frame, &l), 0);
	CHECK_STR(l.text, "frame {\"t\":\"a\"}\nframe {\"t\":\"d\"}\n");
	frame_reader_free(&r);
	CHECK_STR(frame_strerror(FRAME_ESTOPPED), "reader stopped by its handler");
	CHECK_STR(frame_strerror(-100), "unknown error");
}

static void test_encode(void)
{
	json_t *f = json_pack("{s:s, s:s, s:[i, f, b, n]}", "t", "event", "s",
	                      "a\nb\r\"c\" \xc3\xa9", "data", 1, 2.5, 1);
	struct frame_reader r;
	struct log l;
	char *line;
	size_t len;

	CHECK_INT(frame_encode(f, 0, &line, &len), 0);
	CHECK(line != NULL);
	CHECK_INT(len, strlen(line));
	CHECK(line[len - 1] == '\n');
	CHECK(memchr(line, '\n', len - 1) == NULL);
	/* It reads back as the same frame. */
	memset(&l, 0, sizeof(l));
	frame_reader_init(&r, 1024);
	frame_reader_feed(&r, line, len, on_frame, &l);
	CHECK_INT(l.frames, 1);
	frame_reader_free(&r);
	{
		json_t *back = json_loadb(line, len - 1, 0, NULL);

		CHECK(json_equal(back, f));
		json_decref(back);
	}
	/* The cap applies to the text without "\n". */
	free(line);
	CHECK_INT(frame_encode(f, len - 1, &line, &len), 0);
	free(line);
	CHECK_INT(frame_encode(f, len - 2, &line, &len), FRAME_ETOOLONG);
	CHECK(line == NULL);
	json_decref(f);

	f = json_array();
	CHECK_INT(frame_encode(f, 0, &line, &len), FRAME_ENOTOBJECT);
	json_decref(f);
	f = json_pack("{s:i}", "t", 1);
	CHECK_INT(frame_encode(f, 0, &line, &len), FRAME_ETYPE);
	json_decref(f);
}

/* Validates the JSON text s in direction dir; returns the result, and the error text in
 * last_text. */
static char last_text[FRAME_ERROR_TEXT];

static int validate(const char *s, enum frame_direction dir)
{
	struct frame_error err = {0};
	json_error_t jerr;
	json_t *f = json_loads(s, JSON_DECODE_ANY, &jerr);
	int rc;

	if (!f) {
		fprintf(stderr, "bad test JSON: %s: %s\n", s, jerr.text);
		return -1000;
	}
	rc = frame_validate(f, dir, &err);
	snprintf(last_text, sizeof(last_text), "%s", rc < 0 ? err.text : "");
	json_decref(f);
	return rc;
}

#define VALID(s, dir, kind) CHECK_INT(validate(s, dir), kind)
#define INVALID(s, dir, text)                                                                      \
	do {                                                                                       \
		CHECK(validate(s, dir) < 0);                                                       \
		CHECK_STR(last_text, text);                                                        \
	} while (0)

/* One good example of every frame. */
static const struct {
	const char *json;
	enum frame_direction dir;
	enum frame_kind kind;
} good[] = {
    {"{\"t\":\"hello\",\"protocol\":1,\"agent\":\"echo\",\"version\":\"1.0.0\",\"mode\":"
     "\"session\","
     "\"session\":\"s_1\",\"resumed\":false,\"config\":{\"K\":\"v\"},\"max_frame_bytes\":4096}",
     FRAME_TO_AGENT, FRAME_HELLO},
    {"{\"t\":\"run\",\"run\":\"r_1\",\"input\":null}", FRAME_TO_AGENT, FRAME_RUN},
    {"{\"t\":\"cancel\",\"run\":\"r_1\"}", FRAME_TO_AGENT, FRAME_CANCEL},
    {"{\"t\":\"destroy\"}", FRAME_TO_AGENT, FRAME_DESTROY},
    {"{\"t\":\"kv.result\",\"req\":1,\"ok\":true,\"value\":{\"a\":1}}", FRAME_TO_AGENT,
     FRAME_KV_RESULT},
    {"{\"t\":\"ready\"}", FRAME_TO_HOST, FRAME_READY},
    {"{\"t\":\"event\",\"run\":\"r_1\",\"data\":{\"word\":\"hi\"}}", FRAME_TO_HOST, FRAME_EVENT},
    {"{\"t\":\"done\",\"run\":\"r_1\",\"output\":\"hi\"}", FRAME_TO_HOST, FRAME_DONE},
    {"{\"t\":\"error\",\"run\":\"r_1\",\"code\":\"cancelled\",\"message\":\"\"}", FRAME_TO_HOST,
     FRAME_ERROR},
    {"{\"t\":\"kv.get\",\"req\":9007199254740991,\"key\":\"k\"}", FRAME_TO_HOST, FRAME_KV_GET},
    {"{\"t\":\"kv.set\",\"req\":2,\"key\":\"k\",\"value\":null}", FRAME_TO_HOST, FRAME_KV_SET},
    {"{\"t\":\"kv.del\",\"req\":3,\"key\":\"k\"}", FRAME_TO_HOST, FRAME_KV_DEL},
    {"{\"t\":\"kv.list\",\"req\":4,\"prefix\":\"\"}", FRAME_TO_HOST, FRAME_KV_LIST},
    {"{\"t\":\"log\",\"level\":\"warn\",\"msg\":\"m\"}", FRAME_TO_HOST, FRAME_LOG},
};

/* Removing any one field a good frame carries must be refused, unless it is optional. */
static void check_every_field_required(const char *s, enum frame_direction dir)
{
	json_t *f = json_loads(s, 0, NULL);
	const char *key;
	json_t *value;

	json_object_foreach(f, key, value)
	{
		json_t *copy = json_deep_copy(f);
		bool optional = strcmp(key, "max_frame_bytes") == 0 ||
		                (strcmp(key, "value") == 0 && strstr(s, "kv.result"));
		struct frame_error err;
		int rc;

		json_object_del(copy, key);
		rc = frame_validate(copy, dir, &err);
		if (optional) {
			CHECK(rc >= 0);
		} else if (rc >= 0) {
			fprintf(stderr, "%s: accepted without \"%s\"\n", s, key);
			CHECK(!"required field");
		}
		json_decref(copy);
	}
	json_decref(f);
}

static void test_validate_good(void)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		enum frame_direction other =
		    good[i].dir == FRAME_TO_HOST ? FRAME_TO_AGENT : FRAME_TO_HOST;

		VALID(good[i].json, good[i].dir, good[i].kind);
		CHECK_INT(validate(good[i].json, other), FRAME_EUNKNOWN);
		check_every_field_required(good[i].json, good[i].dir);
		CHECK(frame_kind_name(good[i].kind) != NULL);
	}
	CHECK(frame_kind_name(FRAME_KIND_COUNT) == NULL);
	CHECK_STR(frame_kind_name(FRAME_KV_RESULT), "kv.result");
	/* Unknown fields are allowed. */
	VALID("{\"t\":\"ready\",\"extra\":[1]}", FRAME_TO_HOST, FRAME_READY);
	VALID(
	    "{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":\"1\",\"mode\":\"invoke\","
	    "\"session\":null,\"resumed\":false,\"config\":{}}",
	    FRAME_TO_AGENT, FRAME_HELLO);
	VALID("{\"t\":\"kv.result\",\"req\":1,\"ok\":false,\"error\":{\"code\":\"no_kv\","
	      "\"message\":\"m\"}}",
	      FRAME_TO_AGENT, FRAME_KV_RESULT);
	VALID("{\"t\":\"kv.result\",\"req\":1,\"ok\":true}", FRAME_TO_AGENT, FRAME_KV_RESULT);
}

static void test_validate_bad(void)
{
	INVALID("[]", FRAME_TO_HOST, "frame is not a JSON object");
	INVALID("{\"run\":\"r\"}", FRAME_TO_HOST, "frame has no string field \"t\"");
	INVALID("{\"t\":\"nope\"}", FRAME_TO_HOST, "unknown frame \"nope\" from the agent");
	INVALID("{\"t\":\"a\\nb\"}", FRAME_TO_AGENT, "unknown frame \"a?b\" from the host");
	INVALID("{\"t\":\"done\",\"output\":1}", FRAME_TO_HOST,
	        "frame \"done\": field \"run\" is missing");
	INVALID("{\"t\":\"done\",\"run\":7,\"output\":1}", FRAME_TO_HOST,
	        "frame \"done\": field \"run\" must be a non-empty string");
	INVALID("{\"t\":\"done\",\"run\":\"\",\"output\":1}", FRAME_TO_HOST,
	        "frame \"done\": field \"run\" must be a non-empty string");
	INVALID("{\"t\":\"kv.set\",\"req\":\"1\",\"key\":\"k\",\"value\":1}", FRAME_TO_HOST,
	        "frame \"kv.set\": field \"req\" must be an integer from 1 to 2^53-1");
	INVALID("{\"t\":\"kv.set\",\"req\":0,\"key\":\"k\",\"value\":1}", FRAME_TO_HOST,
	        "frame \"kv.set\": field \"req\" must be an integer from 1 to 2^53-1");
	INVALID("{\"t\":\"kv.get\",\"req\":9007199254740992,\"key\":\"k\"}", FRAME_TO_HOST,
	        "frame \"kv.get\": field \"req\" must be an integer from 1 to 2^53-1");
	INVALID("{\"t\":\"kv.get\",\"req\":1.0,\"key\":\"k\"}", FRAME_TO_HOST,
	        "frame \"kv.get\": field \"req\" must be an integer from 1 to 2^53-1");
	INVALID("{\"t\":\"kv.get\",\"req\":1,\"key\":\"\"}", FRAME_TO_HOST,
	        "frame \"kv.get\": field \"key\" must be a non-empty string");
	INVALID("{\"t\":\"kv.list\",\"req\":1,\"prefix\":null}", FRAME_TO_HOST,
	        "frame \"kv.list\": field \"prefix\" must be a string");
	INVALID(
	    "{\"t\":\"log\",\"level\":\"loud\",\"msg\":\"m\"}", FRAME_TO_HOST,
	    "frame \"log\": field \"level\" must be \"debug\", \"info\", \"warn\" or \"error\"");
	INVALID("{\"t\":\"error\",\"run\":\"r\",\"code\":\"\",\"message\":\"m\"}", FRAME_TO_HOST,
	        "frame \"error\": field \"code\" must be a non-empty string");
	INVALID("{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":\"1\",\"mode\":\"x\","
	        "\"session\":null,\"resumed\":false,\"config\":{}}",
	        FRAME_TO_AGENT,
	        "frame \"hello\": field \"mode\" must be \"session\" or \"invoke\"");
	INVALID(
	    "{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":\"1\",\"mode\":"
	    "\"session\","
	    "\"session\":null,\"resumed\":false,\"config\":{}}",
	    FRAME_TO_AGENT,
	    "frame \"hello\": field \"session\" must be a non-empty string in mode \"session\"");
	INVALID(
	    "{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":\"1\",\"mode\":\"invoke\","
	    "\"session\":\"s\",\"resumed\":false,\"config\":{}}",
	    FRAME_TO_AGENT, "frame \"hello\": field \"session\" must be null in mode \"invoke\"");
	INVALID(
	    "{\"t\":\"hello\",\"protocol\":0,\"agent\":\"a\",\"version\":\"1\",\"mode\":\"invoke\","
	    "\"session\":null,\"resumed\":false,\"config\":{}}",
	    FRAME_TO_AGENT, "frame \"hello\": field \"protocol\" must be an integer >= 1");
	INVALID(
	    "{\"t\":\"hello\",\"protocol\":1,\"agent\":\"a\",\"version\":\"1\",\"mode\":\"invoke\","
	    "\"session\":null,\"resumed\":false,\"config\":{\"K\":1}}",
	    FRAME_TO_AGENT, "frame \"hello\": field \"config\" must map names to strings");
	INVALID(
	    "{\"t\":\"kv.result\",\"req\":1,\"ok\":false}", FRAME_TO_AGENT,
	    "frame \"kv.result\": field \"error\" must be {\"code\": ..., \"message\": ...} when "
	    "ok is false");
	INVALID("{\"t\":\"kv.result\",\"req\":1,\"ok\":false,\"value\":1,\"error\":{\"code\":\"c\","
	        "\"message\":\"m\"}}",
	        FRAME_TO_AGENT,
	        "frame \"kv.result\": field \"value\" must be absent when ok is false");
	INVALID("{\"t\":\"kv.result\",\"req\":1,\"ok\":true,\"error\":{}}", FRAME_TO_AGENT,
	        "frame \"kv.result\": field \"error\" must be absent when ok is true");
	INVALID("{\"t\":\"kv.result\",\"req\":1,\"ok\":1}", FRAME_TO_AGENT,
	        "frame \"kv.result\": field \"ok\" must be a boolean");
}

int main(void)
{
	test_split_at_every_byte();
	test_many_frames_in_one_read();
	test_line_over_cap();
	test_bad_lines();
	test_eof();
	test_handler_stops();
	test_encode();
	test_validate_good();
	test_validate_bad();
	return check_summary();
}
