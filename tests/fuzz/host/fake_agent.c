/* fake_agent.c: the supervisor and worker doubles of fake_agent.h. fake_agent_send
 * mirrors the dispatch of host/supervisor.c (on_frame): the same checks, in the same
 * order, on a frame that has already been read off the socket. */
#include "fake_agent.h"
#include "frame.h"
#include "fuzz.h"
#include "supervisor.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fake_agent {
	const struct agent_proc_ops *ops;
	void *owner;
	bool ready;
	bool ending; /* ended is due */
	struct sandbox_exit why;
	char detail[200];
	json_t *inbox; /* frames the host sent, oldest first */
	struct fake_agent *next;
};

bool fake_spawn_fails;
static struct fake_agent *agents;

static struct fake_agent *agent(struct agent_proc *p)
{
	REQUIRE(p != NULL);
	return (struct fake_agent *)p;
}

/* Ends a on the next fake_agents_run, as the supervisor reports ends from the loop. */
static void end_agent(struct fake_agent *a, enum sandbox_reason reason, int signal,
                      const char *detail)
{
	if (a->ending)
		return;
	a->ending = true;
	a->why = (struct sandbox_exit){
	    .reason = reason, .code = signal ? -1 : 0, .signal = signal, .syscall = -1};
	snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
}

/* ---- the supervisor's API */

int __wrap_supervisor_spawn(struct daemon *d, const struct agent_proc_spec *spec,
                            const struct agent_proc_ops *ops, void *owner, struct agent_proc **out,
                            char *err, size_t errlen);
int __wrap_supervisor_spawn(struct daemon *d, const struct agent_proc_spec *spec,
                            const struct agent_proc_ops *ops, void *owner, struct agent_proc **out,
                            char *err, size_t errlen)
{
	struct fake_agent *a, **tail;

	(void)d;
	REQUIRE(spec->manifest && spec->agent_dir && spec->mode && ops && ops->ended);
	REQUIRE(!spec->config || json_is_object(spec->config));
	if (fake_spawn_fails) {
		snprintf(err, errlen, "sandbox: the agent could not be started (fuzz)");
		return -EAGAIN;
	}
	a = calloc(1, sizeof(*a));
	REQUIRE(a);
	a->ops = ops;
	a->owner = owner;
	a->inbox = json_array();
	for (tail = &agents; *tail; tail = &(*tail)->next)
		;
	*tail = a;
	*out = (struct agent_proc *)a;
	return 0;
}

int __wrap_agent_proc_send(struct agent_proc *p, json_t *frame);
int __wrap_agent_proc_send(struct agent_proc *p, json_t *frame)
{
	struct fake_agent *a = agent(p);
	struct frame_error err;
	char *line;
	size_t len;

	if (a->ending)
		return -EPIPE;
	if (frame_validate(frame, FRAME_TO_AGENT, &err) < 0) {
		fprintf(stderr, "host sent an invalid frame: %s\n", err.text);
		REQUIRE(!"every frame the host sends validates");
	}
	REQUIRE(frame_encode(frame, 0, &line, &len) == 0);
	free(line);
	json_array_append(a->inbox, frame);
	return 0;
}

void __wrap_agent_proc_kill(struct agent_proc *p, enum sandbox_host_kill why, const char *detail);
void __wrap_agent_proc_kill(struct agent_proc *p, enum sandbox_host_kill why, const char *detail)
{
	static const enum sandbox_reason reasons[] = {
	    [SANDBOX_HOST_NONE] = SANDBOX_KILLED,
	    [SANDBOX_HOST_TIMEOUT] = SANDBOX_TIMEOUT,
	    [SANDBOX_HOST_OUTPUT_LIMIT] = SANDBOX_OUTPUT_LIMIT,
	    [SANDBOX_HOST_PROTOCOL_ERROR] = SANDBOX_PROTOCOL_ERROR,
	    [SANDBOX_HOST_OTHER] = SANDBOX_KILLED,
	};

	REQUIRE((unsigned)why <= SANDBOX_HOST_OTHER);
	end_agent(agent(p), reasons[why], 9, detail);
}

void __wrap_agent_proc_retire(struct agent_proc *p);
void __wrap_agent_proc_retire(struct agent_proc *p)
{
	end_agent(agent(p), SANDBOX_KILLED, 9, "");
}

void __wrap_agent_proc_set_timer(struct agent_proc *p, int64_t ms, enum sandbox_host_kill why,
                                 const char *detail);
void __wrap_agent_proc_set_timer(struct agent_proc *p, int64_t ms, enum sandbox_host_kill why,
                                 const char *detail)
{
	(void)agent(p), (void)why, (void)detail;
	REQUIRE(ms >= 0); /* timers never fire here: fake agents always answer */
}

void __wrap_agent_proc_reset_output(struct agent_proc *p);
void __wrap_agent_proc_reset_output(struct agent_proc *p)
{
	(void)agent(p);
}

void __wrap_agent_proc_set_owner(struct agent_proc *p, void *owner);
void __wrap_agent_proc_set_owner(struct agent_proc *p, void *owner)
{
	agent(p)->owner = owner;
}

pid_t __wrap_agent_proc_pid(const struct agent_proc *p);
pid_t __wrap_agent_proc_pid(const struct agent_proc *p)
{
	(void)p;
	return 4242;
}

int __wrap_worker_submit(struct lws_context *lws, worker_fn work, worker_fn done, void *arg);
int __wrap_worker_submit(struct lws_context *lws, worker_fn work, worker_fn done, void *arg)
{
	(void)lws, (void)work, (void)done, (void)arg;
	return -EAGAIN;
}

/* ---- the agent's side */

static bool is_kv(int kind)
{
	return kind == FRAME_KV_GET || kind == FRAME_KV_SET || kind == FRAME_KV_DEL ||
	       kind == FRAME_KV_LIST;
}

int fake_agent_send(struct fake_agent *a, json_t *frame)
{
	struct frame_error err;
	int kind;

	if (a->ending)
		return -1;
	kind = frame_validate(frame, FRAME_TO_HOST, &err);
	if (kind < 0) {
		end_agent(a, SANDBOX_PROTOCOL_ERROR, 9, err.text);
		return -1;
	}
	if (kind == FRAME_LOG)
		return kind;
	if (kind == FRAME_READY) {
		if (a->ready) {
			end_agent(a, SANDBOX_PROTOCOL_ERROR, 9, "a second \"ready\"");
			return -1;
		}
		a->ready = true;
		if (a->ops->ready)
			a->ops->ready((struct agent_proc *)a, a->owner);
		return kind;
	}
	if (!a->ready && !is_kv(kind)) {
		end_agent(a, SANDBOX_PROTOCOL_ERROR, 9, "frame before \"ready\"");
		return -1;
	}
	if (a->ops->frame && a->ops->frame((struct agent_proc *)a, kind, frame, a->owner) != 0) {
		end_agent(a, SANDBOX_PROTOCOL_ERROR, 9, "unexpected frame");
		return -1;
	}
	return kind;
}

static const char *type_of(json_t *frame)
{
	return json_string_value(json_object_get(frame, "t"));
}

json_t *fake_agent_take(struct fake_agent *a, const char *t)
{
	for (size_t i = 0; i < json_array_size(a->inbox); i++) {
		json_t *frame = json_array_get(a->inbox, i);
		if (strcmp(type_of(frame), t) == 0) {
			json_incref(frame);
			json_array_remove(a->inbox, i);
			return frame;
		}
	}
	return NULL;
}

/* Index of a queued cancel of run, or -1. */
static int cancel_of(struct fake_agent *a, const char *run)
{
	for (size_t i = 0; i < json_array_size(a->inbox); i++) {
		json_t *frame = json_array_get(a->inbox, i);
		if (strcmp(type_of(frame), "cancel") == 0 &&
		    strcmp(json_string_value(json_object_get(frame, "run")), run) == 0)
			return (int)i;
	}
	return -1;
}

/* Answers the oldest frame that needs an answer, like examples/echo. kv.result frames are
 * left for the target. Returns whether it did anything. */
static bool answer_one(struct fake_agent *a)
{
	for (size_t i = 0; i < json_array_size(a->inbox); i++) {
		json_t *frame = json_incref(json_array_get(a->inbox, i)), *reply = NULL;
		const char *t = type_of(frame),
		           *run = json_string_value(json_object_get(frame, "run"));

		if (strcmp(t, "kv.result") == 0) {
			json_decref(frame);
			continue;
		}
		json_array_remove(a->inbox, i);
		if (strcmp(t, "run") == 0) {
			int cancel = cancel_of(a, run);
			if (cancel >= 0) {
				json_array_remove(a->inbox, (size_t)cancel);
				reply = json_pack("{s:s, s:s, s:s, s:s}", "t", "error", "run", run,
				                  "code", "cancelled", "message", "cancelled");
			} else {
				reply = json_pack("{s:s, s:s, s:O}", "t", "done", "run", run,
				                  "output", json_object_get(frame, "input"));
			}
		} else if (strcmp(t, "destroy") == 0) {
			end_agent(a, SANDBOX_EXITED, 0, "");
		} /* a cancel of a run already answered is ignored, as the SDK does */
		if (reply) {
			fake_agent_send(a, reply);
			json_decref(reply);
		}
		json_decref(frame);
		return true;
	}
	return false;
}

/* One step of some agent: an end, a ready, or an answer. */
static bool step(void)
{
	for (struct fake_agent **ap = &agents; *ap; ap = &(*ap)->next) {
		struct fake_agent *a = *ap;

		if (a->ending) {
			*ap = a->next;
			a->ops->ended((struct agent_proc *)a, &a->why, a->detail, a->owner);
			json_decref(a->inbox);
			free(a);
			return true;
		}
		if (!a->ready) {
			json_t *ready = json_pack("{s:s}", "t", "ready");
			fake_agent_send(a, ready);
			json_decref(ready);
			return true;
		}
		if (answer_one(a))
			return true;
	}
	return false;
}

void fake_agents_run(void)
{
	int steps = 0;

	while (step())
		REQUIRE(++steps < 100000); /* agents and host must come to rest */
}

struct fake_agent *fake_agent_of(const void *owner)
{
	for (struct fake_agent *a = agents; a; a = a->next)
		if (a->owner == owner && !a->ending)
			return a;
	return NULL;
}

int fake_agents_live(void)
{
	int n = 0;

	for (struct fake_agent *a = agents; a; a = a->next)
		n++;
	return n;
}
