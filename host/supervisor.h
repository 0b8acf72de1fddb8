/* supervisor.h: one running agent process, seen from the event loop. It spawns the
 * agent through libahsandbox, adopts the host end of its protocol socket and one pipe
 * carrying its stdout+stderr into the lws loop (two fds per agent: the daemon must fit
 * 8,000 live agents under a 20,000 fd limit), reads and validates its frames, queues frames
 * to it, enforces the output cap and timeouts, and reports how it ended.
 *
 * DESIGN: the end of an agent is noticed by EOF, not by a pidfd or SIGCHLD. When the
 * agent (pid 1 of its pid namespace) dies, the kernel kills the rest of its tree, so both
 * fds reach EOF; the supervisor then reaps it with WNOHANG, retrying on a short timer in
 * the moment between the fds closing and the zombie appearing. An agent that closes its
 * protocol socket but lives on has broken the protocol and is killed.
 *
 * Everything here runs on the event loop thread. Every frame the agent sends is hostile
 * until validated: malformed, oversized or unexpected frames end that agent with
 * protocol_error, never the daemon. */
#ifndef AGENTHOST_SUPERVISOR_H
#define AGENTHOST_SUPERVISOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

struct daemon;
struct manifest;
struct lws_protocols;
struct agent_proc;

/* What to start. Every pointer is borrowed for the duration of supervisor_spawn. */
struct agent_proc_spec {
	const struct manifest *manifest;
	const char *agent_dir; /* the installed copy */
	const char *mode;      /* "session" or "invoke" */
	const char *session;   /* session id, or NULL */
	bool resumed;
	json_t *config; /* object of config values for hello.config and the env; may be NULL */
};

/* The owner's callbacks. owner is the pointer given to supervisor_spawn. */
struct agent_proc_ops {
	/* The agent answered hello with ready. */
	void (*ready)(struct agent_proc *p, void *owner);
	/* A valid agent→host frame other than ready: event, done, error, kv.*, log. frame is
	 * borrowed; kind is an enum frame_kind. Returning nonzero ends the agent with
	 * protocol_error (the owner judged the frame out of order). */
	int (*frame)(struct agent_proc *p, int kind, json_t *frame, void *owner);
	/* Bytes the agent wrote on stdout or stderr (counted against output_bytes; may be
	 * NULL to drop them). */
	void (*output)(struct agent_proc *p, const char *data, size_t len, void *owner);
	/* The agent ended; every frame it sent was delivered first. why->reason is the precise
	 * reason, detail a short text ("" when none). p is freed when this returns. */
	void (*ended)(struct agent_proc *p, const struct sandbox_exit *why, const char *detail,
	              void *owner);
};

/* Spawns an agent and sends it hello. Returns 0 and *out, or a negative code with the
 * cause in err (nothing is left running). ops is borrowed and must outlive the agent. */
int supervisor_spawn(struct daemon *d, const struct agent_proc_spec *spec,
                     const struct agent_proc_ops *ops, void *owner, struct agent_proc **out,
                     char *err, size_t errlen);

/* Queues a host→agent frame (borrowed). An agent that leaves more than the queue cap
 * unread is ended with protocol_error. Returns 0, or -EPIPE once the agent is ending. */
int agent_proc_send(struct agent_proc *p, json_t *frame);

/* Ends the agent now: SIGKILL, then the ended callback with the reason that why maps to
 * (SANDBOX_HOST_OTHER → killed). detail is copied. Safe to call more than once. */
void agent_proc_kill(struct agent_proc *p, enum sandbox_host_kill why, const char *detail);

/* Ends an agent whose work is done (a stateless call answered): killed at once, and
 * reported to the owner as usual, but not counted as a kill in the metrics. */
void agent_proc_retire(struct agent_proc *p);

/* Arms (ms > 0) or disarms (ms == 0) the agent's one timer: when it fires, the agent is
 * killed with why. Used for the hello timeout, run timeouts and destroy grace periods. */
void agent_proc_set_timer(struct agent_proc *p, int64_t ms, enum sandbox_host_kill why,
                          const char *detail);

/* Starts counting output against output_bytes afresh (at each run). */
void agent_proc_reset_output(struct agent_proc *p);

pid_t agent_proc_pid(const struct agent_proc *p);
/* The owner pointer may change hands (a worker moving between calls). */
void agent_proc_set_owner(struct agent_proc *p, void *owner);

/* Kills every agent (daemon shutdown) and waits for them. */
void supervisor_kill_all(void);

/* Number of agent processes alive now. */
int supervisor_live_count(void);

/* The lws protocol that carries agent fds. */
const struct lws_protocols *supervisor_protocol(void);

#endif
