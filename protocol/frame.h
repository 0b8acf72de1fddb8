/* frame.h: framing and frame types of the host <-> agent protocol (docs/protocol.md), shared
 * by the daemon and the C SDK. A frame is one JSON object on one line, with a string "t".
 * The reader turns bytes from non-blocking reads into parsed frames using memory bounded
 * by its cap; frame_validate checks a frame's type and fields against the protocol table. */
#ifndef AGENTHOST_FRAME_H
#define AGENTHOST_FRAME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Error codes, all negative. frame_strerror() names each one. */
enum frame_errcode {
	FRAME_ETOOLONG = -1,   /* a line passed the cap before its "\n" */
	FRAME_EUTF8 = -2,      /* a line is not valid UTF-8 */
	FRAME_EJSON = -3,      /* a line is not one JSON value */
	FRAME_ENOTOBJECT = -4, /* the JSON value is not an object */
	FRAME_ETYPE = -5,      /* "t" is missing or not a string */
	FRAME_ETRUNCATED = -6, /* the stream ended inside a frame */
	FRAME_EUNKNOWN = -7,   /* "t" names no frame of that direction */
	FRAME_EFIELD = -8,     /* a field is missing, of the wrong type, or out of range */
	FRAME_ESTOPPED = -9,   /* the reader was stopped by its handler and not reset */
};

#define FRAME_ERROR_TEXT 200

/* An error with enough context to log it as is, e.g.
 * "line 3: invalid JSON at byte 17: unexpected newline". */
struct frame_error {
	int code;                    /* one of enum frame_errcode */
	unsigned long line;          /* 1-based line of the stream; 0 from frame_validate */
	char text[FRAME_ERROR_TEXT]; /* NUL-terminated, one line */
};

/* Returns a static description of an error code ("line over the frame size cap", ...). */
const char *frame_strerror(int code);

/* ---- Reading ---------------------------------------------------------------------------- */

/* Called once per complete line, in stream order. Exactly one of frame and err is non-NULL:
 * frame is a parsed object with a string "t", borrowed (valid during the call; json_incref
 * it to keep it); err describes why that line is not a frame. Return 0 to go on; any other
 * value stops frame_reader_feed at once, which then returns that value. */
typedef int (*frame_handler)(void *ctx, json_t *frame, const struct frame_error *err);

/* One direction of one stream. The fields are private; the struct is public only so that
 * it can be embedded. It holds at most one incomplete line, and never more than
 * max_frame_bytes + 1 bytes of it. */
struct frame_reader {
	char *buf;          /* the incomplete line so far, or NULL */
	size_t len, size;   /* bytes held in buf, bytes allocated */
	size_t max_frame;   /* cap on one frame, without its "\n" or "\r\n" */
	unsigned long line; /* lines completed so far */
	bool skipping;      /* dropping the rest of a line that passed the cap */
	bool stopped;       /* a handler returned nonzero */
};

/* Prepares r for a new stream whose frames are at most max_frame_bytes long (not counting
 * the line terminator; must be at least 1). Allocates nothing. */
void frame_reader_init(struct frame_reader *r, size_t max_frame_bytes);

/* Feeds len bytes read from the stream (buf is borrowed). Calls handler for every line
 * the bytes complete, and keeps an incomplete last line for the next call. A line that
 * grows past the cap is reported (FRAME_ETOOLONG) as soon as it does, without waiting for
 * its end, and its remaining bytes are dropped up to its "\n". A bad line (bad UTF-8, bad
 * JSON, not an object, no string "t") is reported and the stream goes on with the next
 * line; callers that treat errors as fatal return nonzero from the handler.
 *
 * Returns 0 once every byte was consumed, or the handler's nonzero value. After a nonzero
 * value the rest of buf is lost, so the reader refuses more input (FRAME_ESTOPPED, handler
 * not called) until frame_reader_reset(). */
int frame_reader_feed(struct frame_reader *r, const void *buf, size_t len, frame_handler handler,
                      void *ctx);

/* To call when the stream has ended. Returns 0 if it ended at a frame boundary, or
 * FRAME_ETRUNCATED (with err filled if err is not NULL) if bytes after the last "\n" were
 * left, even if they would parse: a frame is complete only with its "\n". */
int frame_reader_eof(const struct frame_reader *r, struct frame_error *err);

/* Forgets any incomplete line and a stop; keeps the cap and the line count. */
void frame_reader_reset(struct frame_reader *r);

/* Frees the buffer. r may be initialised again afterwards. */
void frame_reader_free(struct frame_reader *r);

/* ---- Writing ---------------------------------------------------------------------------- */

/* Encodes frame (borrowed) as one compact line ending in "\n". frame must be an object with
 * a string "t"; it is not otherwise validated. On success returns 0 and sets *line to a
 * malloc'd buffer (caller frees; NUL-terminated after the "\n") and *len to its length
 * including the "\n". Returns FRAME_ENOTOBJECT or FRAME_ETYPE for a frame that is not one,
 * FRAME_ETOOLONG if the text without "\n" would exceed max_frame_bytes (0: no cap), or
 * FRAME_EJSON if jansson cannot encode it. *line is NULL on error. */
int frame_encode(const json_t *frame, size_t max_frame_bytes, char **line, size_t *len);

/* ---- Frame types ------------------------------------------------------------------------ */

enum frame_direction {
	FRAME_TO_AGENT, /* written by the host, read by the agent */
	FRAME_TO_HOST,  /* written by the agent, read by the host */
};

enum frame_kind {
	/* host -> agent */
	FRAME_HELLO,
	FRAME_RUN,
	FRAME_CANCEL,
	FRAME_DESTROY,
	FRAME_KV_RESULT,
	/* agent -> host */
	FRAME_READY,
	FRAME_EVENT,
	FRAME_DONE,
	FRAME_ERROR,
	FRAME_KV_GET,
	FRAME_KV_SET,
	FRAME_KV_DEL,
	FRAME_KV_LIST,
	FRAME_LOG,
	FRAME_KIND_COUNT
};

/* The largest "req" a frame may carry: 2^53 - 1, exact in every JSON implementation. */
#define FRAME_REQ_MAX 9007199254740991LL

/* Checks frame (borrowed) against the table of frames that may travel in direction dir:
 * its "t", every required field and the type and range of every known field (docs/
 * protocol.md lists them). Fields the table does not know are allowed. Returns the frame's
 * kind (>= 0), or FRAME_ENOTOBJECT, FRAME_ETYPE, FRAME_EUNKNOWN or FRAME_EFIELD with err
 * (if not NULL) naming the frame and the field, e.g.
 * "frame \"done\": field \"run\" must be a non-empty string". */
int frame_validate(const json_t *frame, enum frame_direction dir, struct frame_error *err);

/* The "t" of a kind ("kv.result"), or NULL for a value out of range. */
const char *frame_kind_name(enum frame_kind kind);

#endif
