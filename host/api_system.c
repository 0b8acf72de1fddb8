/* api_system.c: the open routes, /healthz and /metrics (Prometheus text format). */
#include "api.h"
#include "daemon.h"
#include "runs.h"
#include "sandbox.h"
#include "store.h"
#include "supervisor.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void api_healthz(struct http_request *req)
{
	http_reply_json(req, 200,
	                json_pack("{s:s, s:s}", "status", "ok", "version", AGENTHOST_VERSION));
}

/* A growing text buffer for the exposition format. */
struct text {
	char *data;
	size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t)n + 1;
		t->data = xrealloc(t->data, t->cap);
	}
	t->len += (size_t)n;
}

static void metric_header(struct text *t, const char *name, const char *type, const char *help)
{
	text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct agent_count {
	int64_t names, versions;
};

static int count_agent(const struct store_agent *a, void *ctx)
{
	struct agent_count *c = ctx;

	c->versions++;
	c->names += a->current;
	return 0;
}

static int count_token(const struct store_token *t, void *ctx)
{
	(void)t;
	(*(int64_t *)ctx)++;
	return 0;
}

static int add_session_state(const char *state, int64_t count, void *ctx)
{
	text_add(ctx, "agenthost_sessions{state=\"%s\"} %lld\n", state, (long long)count);
	return 0;
}

static void render_agent_metrics(struct text *t, struct daemon *d)
{
	static const char *const statuses[] = {"completed", "failed", "cancelled"};
	uint64_t cumulative = 0, total = 0;

	metric_header(t, "agenthost_agent_processes", "gauge", "Agent processes alive.");
	text_add(t, "agenthost_agent_processes %d\n", supervisor_live_count());
	metric_header(t, "agenthost_spawns_total", "counter", "Agent processes started.");
	text_add(t, "agenthost_spawns_total{result=\"ok\"} %llu\n",
	         (unsigned long long)d->metrics.spawns);
	text_add(t, "agenthost_spawns_total{result=\"failed\"} %llu\n",
	         (unsigned long long)d->metrics.spawn_failures);
	metric_header(t, "agenthost_agent_ends_total", "counter",
	              "Agent processes ended, by reason (sandbox kills among them).");
	for (int r = SANDBOX_EXITED; r <= SANDBOX_KILLED; r++)
		text_add(t, "agenthost_agent_ends_total{reason=\"%s\"} %llu\n",
		         sandbox_exit_reason_name((enum sandbox_reason)r),
		         (unsigned long long)d->metrics.agent_ends[r]);
	metric_header(t, "agenthost_ws_connections", "gauge", "WebSocket connections open.");
	text_add(t, "agenthost_ws_connections %lld\n", (long long)d->metrics.ws_connections);
	metric_header(t, "agenthost_sessions_created_total", "counter", "Sessions created.");
	text_add(t, "agenthost_sessions_created_total %llu\n",
	         (unsigned long long)d->metrics.sessions_created);
	metric_header(t, "agenthost_kv_ops_total", "counter", "Key-value requests of agents.");
	text_add(t, "agenthost_kv_ops_total %llu\n", (unsigned long long)d->metrics.kv_ops);
	metric_header(t, "agenthost_invokes_total", "counter", "Stateless calls received.");
	text_add(t, "agenthost_invokes_total %llu\n", (unsigned long long)d->metrics.invokes);
	metric_header(t, "agenthost_runs_total", "counter", "Runs finished, by status.");
	for (int i = 0; i < 3; i++)
		text_add(t, "agenthost_runs_total{status=\"%s\"} %llu\n", statuses[i],
		         (unsigned long long)d->metrics.runs_by_status[i]);
	metric_header(t, "agenthost_run_duration_seconds", "histogram",
	              "Run latency from the run frame to its last event.");
	for (int i = 0; i <= RUNS_BUCKETS; i++) {
		cumulative += d->metrics.run_latency_buckets[i];
		if (i < RUNS_BUCKETS)
			text_add(t, "agenthost_run_duration_seconds_bucket{le=\"%g\"} %llu\n",
			         runs_bucket_bounds[i], (unsigned long long)cumulative);
	}
	total = cumulative;
	text_add(t, "agenthost_run_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	         (unsigned long long)total);
	text_add(t, "agenthost_run_duration_seconds_sum %g\n", d->metrics.run_latency_sum);
	text_add(t, "agenthost_run_duration_seconds_count %llu\n", (unsigned long long)total);
}

void api_metrics(struct http_request *req)
{
	struct daemon *d = req->daemon;
	struct text t = {.data = xmalloc(4096), .cap = 4096};
	struct agent_count agents = {0};
	int64_t tokens = 0;

	metric_header(&t, "agenthost_http_requests_total", "counter",
	              "HTTP requests answered, by status.");
	for (int s = 100; s < 600; s++)
		if (d->metrics.http_by_status[s])
			text_add(&t, "agenthost_http_requests_total{status=\"%d\"} %llu\n", s,
			         (unsigned long long)d->metrics.http_by_status[s]);
	if (store_agent_list(d->store, NULL, false, count_agent, &agents) < 0 ||
	    store_token_list(d->store, count_token, &tokens) < 0) {
		free(t.data);
		api_store_failed(req);
		return;
	}
	metric_header(&t, "agenthost_agents_installed", "gauge", "Installed agents (names).");
	text_add(&t, "agenthost_agents_installed %lld\n", (long long)agents.names);
	metric_header(&t, "agenthost_agent_versions_installed", "gauge",
	              "Installed (name, version) pairs.");
	text_add(&t, "agenthost_agent_versions_installed %lld\n", (long long)agents.versions);
	metric_header(&t, "agenthost_installs_total", "counter", "Installs since start.");
	text_add(&t, "agenthost_installs_total{result=\"ok\"} %llu\n",
	         (unsigned long long)d->metrics.installs_ok);
	text_add(&t, "agenthost_installs_total{result=\"failed\"} %llu\n",
	         (unsigned long long)d->metrics.installs_failed);
	metric_header(&t, "agenthost_sessions", "gauge", "Sessions by state.");
	store_session_count_by_state(d->store, add_session_state, &t);
	render_agent_metrics(&t, d);
	metric_header(&t, "agenthost_tokens", "gauge", "Client and admin tokens.");
	text_add(&t, "agenthost_tokens %lld\n", (long long)tokens);
	metric_header(&t, "agenthost_uptime_seconds", "gauge", "Seconds since the daemon started.");
	text_add(&t, "agenthost_uptime_seconds %lld\n",
	         (long long)((store_now_ms() - d->started_ms) / 1000));
	http_reply_text(req, 200, "text/plain; version=0.0.4", t.data, t.len);
	free(t.data);
}
