/* harness.h: a daemon for the fuzz targets of host/ (api, ws, kv): the real modules over a
 * real store in a temporary state directory, with fake_lws standing for the sockets and
 * fake_agent for the agent processes. It holds a fixed baseline that every input starts
 * from (harness_reset), so that an input does the same thing whenever it is run:
 *
 *   tokens    admin, client, other (secrets in H; "{admin}", "{client}", "{other}")
 *   agents    fz-sess (session mode; config MODEL, REGION, secret API_KEY),
 *             fz-inv (invoke, process isolation; required secret TOKEN, set),
 *             fz-pool (invoke, worker isolation, 2 workers)
 *   sessions  HARNESS_SESSION of fz-sess, owned by client ("{s}"), hibernated, with KV
 *             "greeting" = "hello" and "n" = 1 and the events of one run (seq 1 to 3);
 *             HARNESS_OTHER of fz-sess owned by other ("{o}")
 *
 * max_sessions is 4 and max_body 4096 bytes, small enough for fuzzed inputs to reach. */
#ifndef AGENTHOST_FUZZ_HARNESS_H
#define AGENTHOST_FUZZ_HARNESS_H

#include "auth.h"
#include "daemon.h"
#include "fake_lws.h"

#include <stddef.h>
#include <stdint.h>

#define HARNESS_SESSION "s_0000cccccccccccccccccccccccccccccccc"
#define HARNESS_OTHER "s_0000dddddddddddddddddddddddddddddddd"
#define HARNESS_MAX_BODY 4096

struct harness {
	struct daemon d;
	char dir[64];
	char admin[AUTH_SECRET_LEN + 1], client[AUTH_SECRET_LEN + 1], other[AUTH_SECRET_LEN + 1];
	struct auth_identity admin_id, client_id, other_id;
};

extern struct harness H;

/* Builds the daemon and its baseline once per process; later calls do nothing. The state
 * directory is removed at exit. */
void harness_init(void);

/* Puts the state back to the baseline: sessions other than the two are destroyed, the two
 * are restored if anything about them changed, tokens and config likewise. Loaded sessions
 * and live fake agents are ended through the daemon's own paths. */
void harness_reset(void);

/* A digest of everything a client can change: tokens, sessions, the KV of the two
 * sessions, the config of every agent. Equal digests: nothing a client sees changed. */
uint64_t harness_fingerprint(void);

/* text (len bytes, may hold NULs) with the placeholders {s}, {o}, {admin}, {client} and
 * {other} expanded, as a new NUL-terminated string (caller frees; a NUL in text ends it). */
char *harness_expand(const char *text, size_t len);

/* One HTTP request through the real transport (http_protocol()'s callback) and router,
 * with the fake agents run until everything is at rest. The request line is
 * "METHOD TARGET"; headers (may be NULL) are "Name: value" lines; the body has body_len
 * bytes. The body goes in chunks of chunk bytes (0: whole). The caller reads the reply
 * from c and frees it with fake_conn_clear. */
struct fake_conn;
void harness_http(struct fake_conn *c, const char *method, const char *target, const char *headers,
                  const void *body, size_t body_len, size_t chunk);

#endif
