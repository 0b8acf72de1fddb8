/* runs.h: what a run is, whoever runs it (a stateless call now, a session's run later):
 * its record (id, status, output or error, times), its JSON, the events it produces in the
 * shape of DESIGN §5, their SSE form, its metrics, and a short memory of finished calls. */
#ifndef AGENTHOST_RUNS_H
#define AGENTHOST_RUNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;

#define RUN_ID_LEN 34 /* "r_" + 32 hex */
#define RUNS_REMEMBER_MINUTES 10
#define RUNS_REMEMBER_MAX 1024

struct run_record {
	char id[RUN_ID_LEN + 1];
	const char *status; /* "queued", "running", "completed", "failed", "cancelled" (static) */
	json_t *output;     /* owned, or NULL */
	json_t *error;      /* owned {"code", "message"}, or NULL */
	int64_t created_at, started_at, finished_at; /* ms; 0 = not yet */
};

/* A new record with a fresh random id, "queued". */
void run_record_init(struct run_record *r);
void run_record_start(struct run_record *r);
/* Ends the run; output and error are stolen (either may be NULL). */
void run_record_finish(struct run_record *r, const char *status, json_t *output, json_t *error);
bool run_record_finished(const struct run_record *r);
void run_record_clear(struct run_record *r);

/* {"id", "status", "output"?, "error"?, "started_at", "finished_at"} (new reference). */
json_t *run_record_json(const struct run_record *r);
/* Just {"output"} or {"error"} of a finished run, for its last event (new reference). */
json_t *run_result_fields(const struct run_record *r);

/* "run.completed", "run.failed" or "run.cancelled" for a final status. */
const char *run_terminal_type(const char *status);

/* An event {"seq", "type", "run"?, "time", ...extra} (extra stolen, may be NULL). */
json_t *run_event_json(int64_t seq, const char *type, const char *run, int64_t time_ms,
                       json_t *extra);
/* The SSE form "id: SEQ\nevent: TYPE\ndata: JSON\n\n" (malloc'd). */
char *runs_sse_format(int64_t seq, const char *type, const json_t *event);

/* Counts a finished run in the daemon's metrics (status, latency histogram). */
void runs_account(struct daemon *d, const struct run_record *r);
/* Remembers a finished stateless call's JSON (of agent) for RUNS_REMEMBER_MINUTES. */
void runs_remember(const struct run_record *r, const char *agent);
/* The remembered JSON of a call to agent (new reference), or NULL. */
json_t *runs_recall(const char *id, const char *agent);

/* The latency histogram's upper bounds in seconds (RUNS_BUCKETS of them, then +Inf). */
#define RUNS_BUCKETS 12
extern const double runs_bucket_bounds[RUNS_BUCKETS];

#endif
