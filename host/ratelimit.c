/* ratelimit.c: token buckets in a small open-addressed table keyed by token id. A token
 * not seen for a while is overwritten by another: it then starts with a full bucket,
 * which errs on the side of serving. */
#include "ratelimit.h"
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SLOTS 1024

static struct bucket {
	char token_id[AUTH_ID_LEN + 1];
	double tokens;
	int64_t last_us;
} buckets[SLOTS];

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct bucket *bucket_of(const char *token_id, double burst)
{
	unsigned h = 2166136261u;
	struct bucket *b;

	for (const char *p = token_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	b = &buckets[h % SLOTS];
	if (strcmp(b->token_id, token_id) != 0) {
		snprintf(b->token_id, sizeof(b->token_id), "%s", token_id);
		b->tokens = burst;
		b->last_us = now_us();
	}
	return b;
}

bool ratelimit_allow(const char *token_id, int64_t rate)
{
	double burst = 2.0 * (double)rate;
	struct bucket *b;
	int64_t now;

	if (rate <= 0)
		return true;
	b = bucket_of(token_id, burst);
	now = now_us();
	b->tokens += (double)(now - b->last_us) * (double)rate / 1e6;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_us = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
