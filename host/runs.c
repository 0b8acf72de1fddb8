/* runs.c: run records, run events and their SSE form, run metrics, and the bounded memory
 * of finished stateless calls (a ring: the oldest is forgotten first). */
#include "runs.h"
#include "daemon.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

const double runs_bucket_bounds[RUNS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,   0.25,   0.5,   1,    5,     30};

void run_record_init(struct run_record *r)
{
	memset(r, 0, sizeof(*r));
	random_id("r_", 16, r->id, sizeof(r->id));
	r->status = "queued";
	r->created_at = store_now_ms();
}

void run_record_start(struct run_record *r)
{
	r->status = "running";
	r->started_at = store_now_ms();
}

void run_record_finish(struct run_record *r, const char *status, json_t *output, json_t *error)
{
	r->status = status;
	r->output = output;
	r->error = error;
	r->finished_at = store_now_ms();
	if (!r->started_at)
		r->started_at = r->finished_at;
}

bool run_record_finished(const struct run_record *r)
{
	return r->finished_at != 0;
}

void run_record_clear(struct run_record *r)
{
	json_decref(r->output);
	json_decref(r->error);
	r->output = r->error = NULL;
}

static void set_time(json_t *obj, const char *key, int64_t ms)
{
	char at[32];

	if (ms)
		json_object_set_new(obj, key, json_string(time_rfc3339(ms, at, sizeof(at))));
}

json_t *run_result_fields(const struct run_record *r)
{
	json_t *out = json_object();

	if (r->output)
		json_object_set(out, "output", r->output);
	else if (strcmp(r->status, "completed") == 0)
		json_object_set_new(out, "output", json_null());
	if (r->error)
		json_object_set(out, "error", r->error);
	return out;
}

json_t *run_record_json(const struct run_record *r)
{
	json_t *out = json_pack("{s:s, s:s}", "id", r->id, "status", r->status);
	json_t *result = run_result_fields(r);

	json_object_update(out, result);
	json_decref(result);
	set_time(out, "created_at", r->created_at);
	set_time(out, "started_at", r->started_at);
	set_time(out, "finished_at", r->finished_at);
	return out;
}

const char *run_terminal_type(const char *status)
{
	if (strcmp(status, "completed") == 0)
		return "run.completed";
	if (strcmp(status, "cancelled") == 0)
		return "run.cancelled";
	return "run.failed";
}

json_t *run_event_json(int64_t seq, const char *type, const char *run, int64_t time_ms,
                       json_t *extra)
{
	char at[32];
	json_t *ev = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)seq, "type", type, "time",
	                       time_rfc3339(time_ms, at, sizeof(at)));

	if (run)
		json_object_set_new(ev, "run", json_string(run));
	if (extra) {
		json_object_update(ev, extra);
		json_decref(extra);
	}
	return ev;
}

char *runs_sse_format(int64_t seq, const char *type, const json_t *event)
{
	char *data = json_dumps(event, JSON_COMPACT);
	char *text = xasprintf("id: %lld\nevent: %s\ndata: %s\n\n", (long long)seq, type, data);

	free(data);
	return text;
}

void runs_account(struct daemon *d, const struct run_record *r)
{
	double secs = (double)(r->finished_at - r->started_at) / 1000.0;
	int i;

	if (strcmp(r->status, "completed") == 0)
		d->metrics.runs_by_status[0]++;
	else if (strcmp(r->status, "cancelled") == 0)
		d->metrics.runs_by_status[2]++;
	else
		d->metrics.runs_by_status[1]++;
	for (i = 0; i < RUNS_BUCKETS && secs > runs_bucket_bounds[i]; i++)
		;
	d->metrics.run_latency_buckets[i]++;
	d->metrics.run_latency_sum += secs;
}

/* ---- the memory of finished calls */

struct remembered {
	char id[RUN_ID_LEN + 1];
	char agent[64];
	int64_t at;
	json_t *run;
};

static struct remembered ring[RUNS_REMEMBER_MAX];
static unsigned ring_next;

void runs_remember(const struct run_record *r, const char *agent)
{
	struct remembered *slot = &ring[ring_next++ % RUNS_REMEMBER_MAX];

	json_decref(slot->run);
	snprintf(slot->id, sizeof(slot->id), "%s", r->id);
	snprintf(slot->agent, sizeof(slot->agent), "%s", agent);
	slot->at = store_now_ms();
	slot->run = run_record_json(r);
}

json_t *runs_recall(const char *id, const char *agent)
{
	int64_t oldest = store_now_ms() - (int64_t)RUNS_REMEMBER_MINUTES * 60 * 1000;

	for (unsigned i = 0; i < RUNS_REMEMBER_MAX; i++)
		if (ring[i].run && ring[i].at >= oldest && strcmp(ring[i].id, id) == 0 &&
		    strcmp(ring[i].agent, agent) == 0)
			return json_incref(ring[i].run);
	return NULL;
}
