/* fake_agent.h: test doubles of the supervisor (host/supervisor.h) and of the worker
 * threads (host/worker.h), linked with --wrap like fake_lws. supervisor_spawn starts no
 * process: it makes a fake agent that records the owner's callbacks and the frames sent to
 * it, checks each against the protocol table (frame_validate, FRAME_TO_AGENT), and, when
 * fake_agents_run() is called, answers like the echo example: ready after hello, "done"
 * with the run's input as output, "error" after cancel, exit after destroy. A fuzz target
 * can also speak for an agent itself (fake_agent_send) and read what it was sent
 * (fake_agent_take). Kills and retirements end the agent on the next fake_agents_run(), as
 * the real supervisor reports an end only from the event loop.
 *
 * worker_submit always fails (-EAGAIN) so installs and uninstalls, which would touch the
 * file system, are refused with the daemon's own 503 path. */
#ifndef AGENTHOST_FAKE_AGENT_H
#define AGENTHOST_FAKE_AGENT_H

#include <jansson.h>
#include <stdbool.h>

struct fake_agent;

/* Runs every fake agent until none has anything left to do. */
void fake_agents_run(void);

/* The live fake agent whose owner is owner (a struct session *, ...), or NULL. */
struct fake_agent *fake_agent_of(const void *owner);

/* Sends frame (borrowed) from agent a to the host: checked with frame_validate
 * (FRAME_TO_HOST) and handed to the owner as the supervisor would; a frame the supervisor
 * would refuse ends the agent with protocol_error instead. Returns the frame's kind, or -1
 * when it was refused. */
int fake_agent_send(struct fake_agent *a, json_t *frame);

/* The oldest frame sent to a that is of type t (new reference, removed), or NULL. */
json_t *fake_agent_take(struct fake_agent *a, const char *t);

/* Number of fake agents not yet ended. */
int fake_agents_live(void);

/* When set, supervisor_spawn fails as if the sandbox could not start the agent. */
extern bool fake_spawn_fails;

#endif
