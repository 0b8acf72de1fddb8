/* daemon.h: the one object that ties the daemon's modules together, its configuration,
 * and its counters. main.c builds it; handlers reach it through req->daemon. */
#ifndef AGENTHOST_DAEMON_H
#define AGENTHOST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENTHOST_VERSION "0.1.0"

struct lws_context;
struct registry;
struct store;

struct daemon_config {
	const char *listen_host; /* "127.0.0.1" */
	int listen_port;         /* 8080; 0 picks a free port */
	const char *state_dir;
	const char *manifests_dir;  /* NULL: none */
	size_t max_body;            /* request body limit in bytes */
	int max_sessions;           /* live session processes */
	int64_t events_kept;        /* events kept per session (at least) */
	const char *node_id;        /* 4 hex digits, the start of every session id */
	int64_t sessions_per_token; /* sessions a client token may own */
	int64_t rate_limit;         /* requests per second per token; 0: no limit */
	int64_t max_ws;             /* open WebSocket connections */
};

struct daemon_metrics {
	uint64_t http_by_status[600];
	uint64_t installs_ok;
	uint64_t installs_failed;
	uint64_t spawns;
	uint64_t spawn_failures;
	uint64_t agent_ends[8]; /* by enum sandbox_reason */
	uint64_t invokes;
	uint64_t sessions_created;
	uint64_t kv_ops;
	int64_t ws_connections;           /* open now */
	uint64_t runs_by_status[3];       /* completed, failed, cancelled */
	uint64_t run_latency_buckets[16]; /* see api_system.c */
	double run_latency_sum;
};

struct daemon {
	struct daemon_config cfg;
	char *state_dir; /* absolute */
	int lock_fd;     /* flock on STATE/agenthostd.lock: one daemon per state dir */
	struct store *store;
	struct registry *registry;
	struct lws_context *lws;
	struct daemon_metrics metrics;
	int64_t started_ms;
};

#endif
