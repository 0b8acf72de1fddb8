/* agent.h: the C SDK for agenthost agents (libagentsdk). An agent fills a struct of
 * callbacks and hands it to agent_main(), which speaks the host protocol on the socket the
 * host passed (docs/protocol.md) and calls back for each session event; the agent answers
 * with the agent_* calls below. docs/sdk-c.md has a complete agent and the model.
 *
 * Ownership, everywhere in this header: a json_t * passed TO an agent_* call is taken over
 * by the call (as json_object_set_new does), on success and on failure alike; a json_t *
 * passed to a callback is borrowed for the duration of the call (json_incref to keep it); a
 * json_t * an agent_* call hands back is a new reference the caller must json_decref. Strings
 * are borrowed both ways. Every call must be made from the thread agent_main() runs on. */
#ifndef AGENTHOST_AGENT_H
#define AGENTHOST_AGENT_H

#include <jansson.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One agent process's connection to the host. Created and owned by agent_main(); valid
 * from the create callback until agent_main() returns. */
struct agent;

/* Error codes, all negative; agent_strerror() names each one. */
enum agent_errcode {
	AGENT_EINVAL = -1,    /* bad argument, or that run is not the active run */
	AGENT_EIO = -2,       /* the host connection broke (the process should end) */
	AGENT_ETOOBIG = -3,   /* the frame would exceed the host's size cap; nothing sent */
	AGENT_ENOTFOUND = -4, /* no such key */
	AGENT_ENOKV = -5,     /* no key-value state here (mode "invoke") */
	AGENT_EHOST = -6,     /* the host refused the request: see agent_errmsg() */
};

enum agent_log_level {
	AGENT_LOG_DEBUG,
	AGENT_LOG_INFO,
	AGENT_LOG_WARN,
	AGENT_LOG_ERROR,
};

/* Every callback may be NULL. user is agent_main()'s last argument. */
struct agent_callbacks {
	/* Once, when the host says hello, before the agent is ready for runs. hello is the
	 * host's frame (borrowed): "agent", "version", "mode" ("session" or "invoke"),
	 * "session" (the session ID, or null), "resumed" (true after hibernation or a
	 * crash), "config". KV calls already work here. Return 0 to become ready; any other
	 * value makes agent_main() return 1 without ever being ready. */
	int (*create)(struct agent *agent, json_t *hello, void *user);

	/* One run; runs never overlap. run (the run ID) and input are borrowed. End the run
	 * with exactly one agent_done() or agent_fail() before returning; if the callback
	 * returns without either, the SDK ends it: as failed with code "cancelled" if it was
	 * cancelled, else as failed with code "agent_error". NULL: every run fails with
	 * "not_implemented". */
	void (*run)(struct agent *agent, const char *run, json_t *input, void *user);

	/* The host asked to cancel the active run (run borrowed). Called from inside the
	 * agent_* call that read the request (agent_cancelled(), a KV call), so it runs on the
	 * run's thread while the run callback is on the stack: set a flag, do not block or call
	 * the KV functions. The
	 * run ends only when the run callback ends it. Cancels of runs that already ended are
	 * dropped. */
	void (*cancel)(struct agent *agent, const char *run, void *user);

	/* The process is going away: the host sent destroy or closed the connection. Free
	 * what create made. The session's KV state is not affected. */
	void (*destroy)(struct agent *agent, void *user);
};

/* Runs the agent: reads the host socket from AGENTHOST_FD (default 3), calls back until the
 * host destroys the agent or hangs up, then returns the process exit status: 0 after
 * destroy or a clean hang-up, 1 if create failed, the host broke the protocol or the
 * connection failed (a message on stderr says which). cb and user are borrowed and must
 * outlive the call. argc and argv are reserved; pass main's. */
int agent_main(int argc, char **argv, const struct agent_callbacks *cb, void *user);

/* Streams a piece of the run's output to its clients (an "event" frame). Takes data (any
 * JSON; NULL means null). run must be the active run. Returns 0 or a negative code. */
int agent_emit(struct agent *agent, const char *run, json_t *data);

/* Ends the run successfully with output (taken; NULL means null). Returns 0 or a negative
 * code; after AGENT_ETOOBIG the run is still active and may be ended another way. */
int agent_done(struct agent *agent, const char *run, json_t *output);

/* Ends the run as failed. code is a short machine-readable word (NULL: "agent_error");
 * "cancelled" means the run honoured a cancel. message (NULL: "") is for humans. */
int agent_fail(struct agent *agent, const char *run, const char *code, const char *message);

/* Whether the host asked to cancel run. Reads what the host sent meanwhile without
 * blocking, so a long run that calls it between steps sees a cancel promptly; also true
 * once the host has hung up or sent destroy, and for a run that is not the active one. */
bool agent_cancelled(struct agent *agent, const char *run);

/* The session's key-value state, stored by the host (mode "session" only; AGENT_ENOKV in
 * mode "invoke"). Each call waits for the host's answer; frames that arrive meanwhile are
 * kept for later, and a cancel of the active run is applied at once. Keys are non-empty
 * strings; values any JSON.
 *
 * agent_kv_get: 0 and *value = a new reference, or AGENT_ENOTFOUND and *value = NULL.
 * agent_kv_set: takes value (NULL means null); 0 once the host has stored it.
 * agent_kv_del: 0 if the key was removed, AGENT_ENOTFOUND if there was none.
 * agent_kv_list: 0 and *keys = a new array of the keys starting with prefix ("" for all),
 *   in byte order. */
int agent_kv_get(struct agent *agent, const char *key, json_t **value);
int agent_kv_set(struct agent *agent, const char *key, json_t *value);
int agent_kv_del(struct agent *agent, const char *key);
int agent_kv_list(struct agent *agent, const char *prefix, json_t **keys);

/* Writes one line to the session's log through the host (printf format). Returns 0 or a
 * negative code. stderr also reaches the session's log, unstructured. */
int agent_log(struct agent *agent, enum agent_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A config value from hello (borrowed, valid until agent_main() returns), or NULL. */
const char *agent_config(struct agent *agent, const char *name);

/* Why the last failed agent_* call failed, e.g. "kv.set: too_large: value over 1 MiB" for
 * AGENT_EHOST (borrowed, valid until the next call); "" if no call has failed. */
const char *agent_errmsg(struct agent *agent);

/* A static description of an error code. */
const char *agent_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
