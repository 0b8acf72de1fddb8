/* call.h: what every command does with the daemon: build a route from what the user typed,
 * make one request, read its JSON answer, and on failure print the one-line error (and,
 * with --json, the daemon's error body). Shared by the command files (commands.c,
 * sessions.c, attach.c); the HTTP itself is client.c's. */
#ifndef AGENTHOST_CTL_CALL_H
#define AGENTHOST_CTL_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "commands.h"

#define CTL_MESSAGE_MAX 1024
#define CTL_SEGMENT_MAX 512
/* Room for a route with up to two escaped segments and a suffix. */
#define CTL_PATH_MAX (CTL_SEGMENT_MAX * 6 + 128)

/* What one call to the daemon gave. */
struct ctl_answer {
	int status;                  /* HTTP status; 0 when there was no response */
	json_t *json;                /* owned: the body, NULL when empty */
	char error[CTL_MESSAGE_MAX]; /* the one-line message of a failure, "" on success */
};

/* Sends method path with body (borrowed, NULL for none) and fills *a. Returns 0 for a 2xx
 * answer whose body is JSON or empty, else -1 with a->error set. Prints nothing. no_auth:
 * send no token (open routes). The caller frees a->json in both cases. */
int ctl_request(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
                bool no_auth, struct ctl_answer *a);

/* Prints the failure of a: one line on stderr; with --json the daemon's error body on
 * stdout too, so that a script can read its code (on one line when ndjson: the output of
 * a streamed call is one JSON value per line). A 401 says where the token came from. */
void ctl_report(const struct ctl_ctx *ctx, const struct ctl_answer *a, bool ndjson);

/* ctl_request() that reports its failure. Returns CTL_EXIT_OK, or CTL_EXIT_FAIL with
 * a->json already freed. */
int ctl_call(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
             struct ctl_answer *a);

/* The end of most commands: the JSON with --json (nothing for an empty answer), else
 * print(a->json). Frees a->json. Returns CTL_EXIT_OK. */
int ctl_show(const struct ctl_ctx *ctx, struct ctl_answer *a, void (*print)(const json_t *));

/* base + "/" + the escaped segment into buf (len bytes). Returns CTL_EXIT_OK, or the exit
 * status after printing why the segment is not sent: an empty or absurdly long one is a
 * usage error; one with '/', or "." or "..", cannot exist, and since servers (lws among
 * them) decode %2F and fold dot segments before routing, no escaping keeps it from naming
 * another route ("../tokens/ID"), so it is answered here as a name that does not exist.
 * kind and what name it in messages ("agent", "name": "there is no agent 'x': its name
 * ..."). */
int ctl_route(char *buf, size_t len, const char *base, const char *segment, const char *kind,
              const char *what);

/* obj[key] as a string; "-" when it is missing or not a string. */
const char *ctl_str(const json_t *obj, const char *key);

/* obj[key], an RFC 3339 time, without its milliseconds (ctl_format_time) into buf. */
const char *ctl_time_of(const json_t *obj, const char *key, char *buf, size_t len);

/* The strings of a JSON array joined by sep into buf; "-" for none. */
const char *ctl_join(const json_t *array, const char *sep, char *buf, size_t len);

#endif
