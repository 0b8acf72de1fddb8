/* ratelimit.h: a token bucket per API token (--rate-limit N: N requests per second, bursts
 * of 2N), checked by the router after authentication, so one client cannot take the
 * daemon from the others. Loop thread only. */
#ifndef AGENTHOST_RATELIMIT_H
#define AGENTHOST_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* True if token_id may make one more request now (and counts it). rate 0: always. */
bool ratelimit_allow(const char *token_id, int64_t rate);

#endif
