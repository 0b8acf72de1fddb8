/* frame.c: the protocol's line reader, line writer and frame table (see frame.h). The reader
 * parses complete lines straight from the caller's buffer and copies only an incomplete
 * last line, so a read of many whole frames costs no copy and an idle reader holds nothing
 * large. */
#include "frame.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A buffer larger than this is freed once its line is done, so that thousands of idle
 * readers do not each keep the memory of the longest line they ever saw. */
#define KEEP_BUFFER_BYTES 4096

static void *frame_realloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fputs("agenthost: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void set_error(struct frame_error *err, int code, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct frame_error *err, int code, unsigned long line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!err)
		return;
	err->code = code;
	err->line = line;
	if (line)
		n = snprintf(err->text, sizeof(err->text), "line %lu: ", line);
	va_start(ap, fmt);
	vsnprintf(err->text + n, sizeof(err->text) - n, fmt, ap);
	va_end(ap);
}

const char *frame_strerror(int code)
{
	switch (code) {
	case 0:
		return "no error";
	case FRAME_ETOOLONG:
		return "line over the frame size cap";
	case FRAME_EUTF8:
		return "invalid UTF-8";
	case FRAME_EJSON:
		return "invalid JSON";
	case FRAME_ENOTOBJECT:
		return "frame is not a JSON object";
	case FRAME_ETYPE:
		return "frame has no string \"t\"";
	case FRAME_ETRUNCATED:
		return "stream ended inside a frame";
	case FRAME_EUNKNOWN:
		return "unknown frame type";
	case FRAME_EFIELD:
		return "missing or invalid field";
	case FRAME_ESTOPPED:
		return "reader stopped by its handler";
	}
	return "unknown error";
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Returns the offset of the first byte that does not start a well-formed UTF-8 sequence
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or n. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		else
			return i;
		/* The second byte's range is what excludes overlongs, surrogates and > U+10FFFF. */
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k < len; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return i;
		i += len;
	}
	return n;
}

/* ---- Reading ---------------------------------------------------------------------------- */

void frame_reader_init(struct frame_reader *r, size_t max_frame_bytes)
{
	memset(r, 0, sizeof(*r));
	if (max_frame_bytes < 1)
		max_frame_bytes = 1;
	/* Keeps max_frame + 1 (room for a "\r") from overflowing. */
	if (max_frame_bytes > SIZE_MAX / 2)
		max_frame_bytes = SIZE_MAX / 2;
	r->max_frame = max_frame_bytes;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->size = 0;
}

void frame_reader_reset(struct frame_reader *r)
{
	frame_reader_free(r);
	r->skipping = false;
	r->stopped = false;
}

/* Empties the buffer after a line, freeing it if it grew large. */
static void release_line(struct frame_reader *r)
{
	r->len = 0;
	if (r->size > KEEP_BUFFER_BYTES)
		frame_reader_free(r);
}

static void append(struct frame_reader *r, const char *p, size_t n)
{
	size_t need = r->len + n;

	if (need > r->size) {
		size_t size = r->size ? r->size * 2 : 256;

		if (size > r->max_frame + 1)
			size = r->max_frame + 1;
		if (size < need)
			size = need;
		r->buf = frame_realloc(r->buf, size);
		r->size = size;
	}
	memcpy(r->buf + r->len, p, n);
	r->len = need;
}

/* Parses one complete line (without its "\n" and "\r") and hands the result to handler. */
static int deliver(struct frame_reader *r, const char *text, size_t n, frame_handler handler,
                   void *ctx)
{
	struct frame_error err;
	json_error_t jerr;
	json_t *frame, *t;
	size_t bad;
	int rc;

	if (n == 0) {
		set_error(&err, FRAME_EJSON, r->line, "invalid JSON: empty line");
		return handler(ctx, NULL, &err);
	}
	bad = utf8_invalid_at((const unsigned char *)text, n);
	if (bad < n) {
		set_error(&err, FRAME_EUTF8, r->line, "invalid UTF-8 at byte %zu (0x%02x)", bad,
		          (unsigned char)text[bad]);
		return handler(ctx, NULL, &err);
	}
	/* Duplicate keys are refused: a hostile sender must not get one reading past a check
	 * that saw the other. */
	frame = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!frame) {
		set_error(&err, FRAME_EJSON, r->line, "invalid JSON at byte %d: %s", jerr.position,
		          jerr.text);
		return handler(ctx, NULL, &err);
	}
	t = json_object_get(frame, "t");
	if (!json_is_object(frame))
		set_error(&err, FRAME_ENOTOBJECT, r->line, "frame is not a JSON object");
	else if (!t)
		set_error(&err, FRAME_ETYPE, r->line, "frame has no field \"t\"");
	else if (!json_is_string(t))
		set_error(&err, FRAME_ETYPE, r->line, "field \"t\" must be a string");
	else
		err.code = 0;
	rc = err.code ? handler(ctx, NULL, &err) : handler(ctx, frame, NULL);
	json_decref(frame);
	return rc;
}

static int too_long(struct frame_reader *r, unsigned long line, frame_handler handler, void *ctx)
{
	struct frame_error err;

	set_error(&err, FRAME_ETOOLONG, line, "frame longer than %zu bytes", r->max_frame);
	return handler(ctx, NULL, &err);
}

/* The line ends in p[chunk] == '\n'; its first r->len bytes are buffered. */
static int end_line(struct frame_reader *r, const char *p, size_t chunk, frame_handler handler,
                    void *ctx)
{
	size_t n = r->len + chunk;
	char last = chunk ? p[chunk - 1] : (r->len ? r->buf[r->len - 1] : 0);
	const char *text = p;
	int rc;

	r->line++;
	if (n > 0 && last == '\r')
		n--;
	if (n > r->max_frame) {
		release_line(r);
		return too_long(r, r->line, handler, ctx);
	}
	if (r->len) {
		append(r, p, chunk);
		text = r->buf;
	}
	rc = deliver(r, text, n, handler, ctx);
	release_line(r);
	return rc;
}

/* p[0 .. chunk) starts or continues a line whose "\n" has not come yet. */
static int keep_partial(struct frame_reader *r, const char *p, size_t chunk, frame_handler handler,
                        void *ctx)
{
	size_t n = r->len + chunk;

	/* max_frame + 1 bytes may still be a full frame followed by the "\r" of a "\r\n". */
	if (n > r->max_frame + 1 || (n == r->max_frame + 1 && p[chunk - 1] != '\r')) {
		release_line(r);
		r->skipping = true;
		return too_long(r, r->line + 1, handler, ctx);
	}
	append(r, p, chunk);
	return 0;
}

int frame_reader_feed(struct frame_reader *r, const void *buf, size_t len, frame_handler handler,
                      void *ctx)
{
	const char *p = buf;

	if (r->stopped)
		return FRAME_ESTOPPED;
	while (len > 0) {
		const char *nl = memchr(p, '\n', len);
		size_t chunk = nl ? (size_t)(nl - p) : len;
		int rc = 0;

		if (r->skipping) {
			if (nl) {
				r->skipping = false;
				r->line++;
			}
		} else if (nl) {
			rc = end_line(r, p, chunk, handler, ctx);
		} else {
			rc = keep_partial(r, p, chunk, handler, ctx);
		}
		if (rc) {
			r->stopped = true;
			return rc;
		}
		if (nl)
			chunk++;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

int frame_reader_eof(const struct frame_reader *r, struct frame_error *err)
{
	if (r->skipping) {
		set_error(err, FRAME_ETRUNCATED, r->line + 1,
		          "stream ended inside a frame longer than %zu bytes", r->max_frame);
		return FRAME_ETRUNCATED;
	}
	if (r->len) {
		set_error(err, FRAME_ETRUNCATED, r->line + 1,
		          "stream ended inside a frame (%zu bytes without \"\\n\")", r->len);
		return FRAME_ETRUNCATED;
	}
	return 0;
}

/* ---- Writing ---------------------------------------------------------------------------- */

struct line_buffer {
	char *data;
	size_t len, size, max; /* max 0: no cap */
	bool over;
};

static int line_buffer_add(const char *s, size_t n, void *data)
{
	struct line_buffer *b = data;

	if (b->max && b->len + n > b->max) {
		b->over = true;
		return -1;
	}
	if (b->len + n + 2 > b->size) { /* + 2: the "\n" and the NUL */
		size_t size = b->size ? b->size * 2 : 256;

		while (size < b->len + n + 2)
			size *= 2;
		b->data = frame_realloc(b->data, size);
		b->size = size;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	return 0;
}

int frame_encode(const json_t *frame, size_t max_frame_bytes, char **line, size_t *len)
{
	struct line_buffer b = {.max = max_frame_bytes};

	*line = NULL;
	*len = 0;
	if (!json_is_object(frame))
		return FRAME_ENOTOBJECT;
	if (!json_is_string(json_object_get(frame, "t")))
		return FRAME_ETYPE;
	/* Compact output escapes every control character, so the text holds no "\n". */
	if (json_dump_callback(frame, line_buffer_add, &b, JSON_COMPACT) != 0) {
		free(b.data);
		return b.over ? FRAME_ETOOLONG : FRAME_EJSON;
	}
	line_buffer_add("", 0, &b); /* makes room for the "\n" even for an empty text */
	b.data[b.len++] = '\n';
	b.data[b.len] = '\0';
	*line = b.data;
	*len = b.len;
	return 0;
}

/* ---- Frame types ------------------------------------------------------------------------ */

enum field_type {
	FIELD_STRING,         /* any string */
	FIELD_NAME,           /* a non-empty string */
	FIELD_REQ,            /* an integer in 1 .. FRAME_REQ_MAX */
	FIELD_COUNT,          /* an integer >= 1 */
	FIELD_BOOL,           /* true or false */
	FIELD_OBJECT,         /* a JSON object */
	FIELD_STRING_OR_NULL, /* a string or null */
	FIELD_ANY,            /* any JSON value, null included */
};

struct field_rule {
	const char *name; /* NULL ends the list */
	enum field_type type;
	bool optional;
};

#define FIELDS_MAX 9

struct frame_rule {
	const char *t;
	enum frame_direction dir;
	struct field_rule fields[FIELDS_MAX];
	/* Rules across fields, or on values, that the types above cannot say; or NULL. */
	int (*check)(const json_t *frame, struct frame_error *err);
};

static int check_hello(const json_t *frame, struct frame_error *err);
static int check_kv_result(const json_t *frame, struct frame_error *err);
static int check_log(const json_t *frame, struct frame_error *err);

#define FIELD(n, ty)                                                                               \
	{                                                                                          \
		.name = (n), .type = (ty), .optional = false                                       \
	}
#define OPTIONAL(n, ty)                                                                            \
	{                                                                                          \
		.name = (n), .type = (ty), .optional = true                                        \
	}

/* The protocol, frame by frame; docs/protocol.md is this table in prose. */
static const struct frame_rule frame_rules[FRAME_KIND_COUNT] = {
    [FRAME_HELLO] = {.t = "hello",
                     .dir = FRAME_TO_AGENT,
                     .fields = {FIELD("protocol", FIELD_COUNT), FIELD("agent", FIELD_NAME),
                                FIELD("version", FIELD_NAME), FIELD("mode", FIELD_NAME),
                                FIELD("session", FIELD_STRING_OR_NULL),
                                FIELD("resumed", FIELD_BOOL), FIELD("config", FIELD_OBJECT),
                                OPTIONAL("max_frame_bytes", FIELD_COUNT)},
                     .check = check_hello},
    [FRAME_RUN] = {.t = "run",
                   .dir = FRAME_TO_AGENT,
                   .fields = {FIELD("run", FIELD_NAME), FIELD("input", FIELD_ANY)}},
    [FRAME_CANCEL] = {.t = "cancel", .dir = FRAME_TO_AGENT, .fields = {FIELD("run", FIELD_NAME)}},
    [FRAME_DESTROY] = {.t = "destroy", .dir = FRAME_TO_AGENT},
    [FRAME_KV_RESULT] = {.t = "kv.result",
                         .dir = FRAME_TO_AGENT,
                         .fields = {FIELD("req", FIELD_REQ), FIELD("ok", FIELD_BOOL),
                                    OPTIONAL("value", FIELD_ANY), OPTIONAL("error", FIELD_OBJECT)},
                         .check = check_kv_result},
    [FRAME_READY] = {.t = "ready", .dir = FRAME_TO_HOST},
    [FRAME_EVENT] = {.t = "event",
                     .dir = FRAME_TO_HOST,
                     .fields = {FIELD("run", FIELD_NAME), FIELD("data", FIELD_ANY)}},
    [FRAME_DONE] = {.t = "done",
                    .dir = FRAME_TO_HOST,
                    .fields = {FIELD("run", FIELD_NAME), FIELD("output", FIELD_ANY)}},
    [FRAME_ERROR] = {.t = "error",
                     .dir = FRAME_TO_HOST,
                     .fields = {FIELD("run", FIELD_NAME), FIELD("code", FIELD_NAME),
                                FIELD("message", FIELD_STRING)}},
    [FRAME_KV_GET] = {.t = "kv.get",
                      .dir = FRAME_TO_HOST,
                      .fields = {FIELD("req", FIELD_REQ), FIELD("key", FIELD_NAME)}},
    [FRAME_KV_SET] = {.t = "kv.set",
                      .dir = FRAME_TO_HOST,
                      .fields = {FIELD("req", FIELD_REQ), FIELD("key", FIELD_NAME),
                                 FIELD("value", FIELD_ANY)}},
    [FRAME_KV_DEL] = {.t = "kv.del",
                      .dir = FRAME_TO_HOST,
                      .fields = {FIELD("req", FIELD_REQ), FIELD("key", FIELD_NAME)}},
    [FRAME_KV_LIST] = {.t = "kv.list",
                       .dir = FRAME_TO_HOST,
                       .fields = {FIELD("req", FIELD_REQ), FIELD("prefix", FIELD_STRING)}},
    [FRAME_LOG] = {.t = "log",
                   .dir = FRAME_TO_HOST,
                   .fields = {FIELD("level", FIELD_NAME), FIELD("msg", FIELD_STRING)},
                   .check = check_log},
};

const char *frame_kind_name(enum frame_kind kind)
{
	if ((unsigned)kind >= FRAME_KIND_COUNT)
		return NULL;
	return frame_rules[kind].t;
}

static const char *field_type_text(enum field_type type)
{
	switch (type) {
	case FIELD_STRING:
		return "a string";
	case FIELD_NAME:
		return "a non-empty string";
	case FIELD_REQ:
		return "an integer from 1 to 2^53-1";
	case FIELD_COUNT:
		return "an integer >= 1";
	case FIELD_BOOL:
		return "a boolean";
	case FIELD_OBJECT:
		return "an object";
	case FIELD_STRING_OR_NULL:
		return "a string or null";
	case FIELD_ANY:
		break;
	}
	return "a JSON value";
}

static bool field_type_ok(const json_t *v, enum field_type type)
{
	switch (type) {
	case FIELD_STRING:
		return json_is_string(v);
	case FIELD_NAME:
		return json_is_string(v) && json_string_length(v) > 0;
	case FIELD_REQ:
		return json_is_integer(v) && json_integer_value(v) >= 1 &&
		       json_integer_value(v) <= FRAME_REQ_MAX;
	case FIELD_COUNT:
		return json_is_integer(v) && json_integer_value(v) >= 1;
	case FIELD_BOOL:
		return json_is_boolean(v);
	case FIELD_OBJECT:
		return json_is_object(v);
	case FIELD_STRING_OR_NULL:
		return json_is_string(v) || json_is_null(v);
	case FIELD_ANY:
		return true;
	}
	return false;
}

static int field_error(struct frame_error *err, const char *t, const char *field, const char *must)
{
	set_error(err, FRAME_EFIELD, 0, "frame \"%s\": field \"%s\" %s", t, field, must);
	return FRAME_EFIELD;
}

static bool string_is(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static int check_hello(const json_t *frame, struct frame_error *err)
{
	const json_t *mode = json_object_get(frame, "mode");
	const json_t *session = json_object_get(frame, "session");
	const char *key;
	json_t *value;

	if (string_is(mode, "session")) {
		if (!json_is_string(session) || json_string_length(session) == 0)
			return field_error(err, "hello", "session",
			                   "must be a non-empty string in mode \"session\"");
	} else if (string_is(mode, "invoke")) {
		if (!json_is_null(session))
			return field_error(err, "hello", "session",
			                   "must be null in mode \"invoke\"");
	} else {
		return field_error(err, "hello", "mode", "must be \"session\" or \"invoke\"");
	}
	/* Config values are environment variable values: strings. */
	json_object_foreach(
	    (json_t *)json_object_get(frame, "config"), key,
	    value) if (!json_is_string(value)) return field_error(err, "hello", "config",
	                                                          "must map names to strings");
	return 0;
}

static int check_kv_result(const json_t *frame, struct frame_error *err)
{
	const json_t *error = json_object_get(frame, "error");

	if (json_is_true(json_object_get(frame, "ok"))) {
		if (error)
			return field_error(err, "kv.result", "error",
			                   "must be absent when ok is true");
		return 0;
	}
	if (json_object_get(frame, "value"))
		return field_error(err, "kv.result", "value", "must be absent when ok is false");
	if (!error || !field_type_ok(json_object_get(error, "code"), FIELD_NAME) ||
	    !json_is_string(json_object_get(error, "message")))
		return field_error(err, "kv.result", "error",
		                   "must be {\"code\": ..., \"message\": ...} when ok is false");
	return 0;
}

static int check_log(const json_t *frame, struct frame_error *err)
{
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	const json_t *level = json_object_get(frame, "level");

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (string_is(level, levels[i]))
			return 0;
	return field_error(err, "log", "level",
	                   "must be \"debug\", \"info\", \"warn\" or \"error\"");
}

static int check_fields(const json_t *frame, const struct frame_rule *rule, struct frame_error *err)
{
	for (const struct field_rule *f = rule->fields; f < rule->fields + FIELDS_MAX && f->name;
	     f++) {
		const json_t *v = json_object_get(frame, f->name);
		char must[64];

		if (!v && f->optional)
			continue;
		if (!v)
			return field_error(err, rule->t, f->name, "is missing");
		if (!field_type_ok(v, f->type)) {
			snprintf(must, sizeof(must), "must be %s", field_type_text(f->type));
			return field_error(err, rule->t, f->name, must);
		}
	}
	return rule->check ? rule->check(frame, err) : 0;
}

/* Copies the sender's text s into out, truncated and with control characters replaced, so
 * that an error message stays one readable line. */
static const char *printable(const char *s, char *out, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[i] = '\0';
	return out;
}

int frame_validate(const json_t *frame, enum frame_direction dir, struct frame_error *err)
{
	const json_t *t = json_object_get(frame, "t");
	char name[48];
	int rc;

	if (!json_is_object(frame)) {
		set_error(err, FRAME_ENOTOBJECT, 0, "frame is not a JSON object");
		return FRAME_ENOTOBJECT;
	}
	if (!json_is_string(t)) {
		set_error(err, FRAME_ETYPE, 0, "frame has no string field \"t\"");
		return FRAME_ETYPE;
	}
	for (int kind = 0; kind < FRAME_KIND_COUNT; kind++) {
		const struct frame_rule *rule = &frame_rules[kind];

		if (rule->dir != dir || strcmp(rule->t, json_string_value(t)) != 0)
			continue;
		rc = check_fields(frame, rule, err);
		return rc ? rc : kind;
	}
	set_error(err, FRAME_EUNKNOWN, 0, "unknown frame \"%s\" from the %s",
	          printable(json_string_value(t), name, sizeof(name)),
	          dir == FRAME_TO_HOST ? "agent" : "host");
	return FRAME_EUNKNOWN;
}
