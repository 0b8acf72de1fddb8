/* counter: an example session agent in C. Each run adds one to the integer kept under the
 * key "count" in the session's key-value state, streams one event {"count": N} and ends
 * with N as its output. The count lives in the host's state, not in the process, so it
 * survives hibernation, crashes and daemon restarts. */
#include <agent.h>

#include <limits.h>

#define COUNT_KEY "count"

static void count_run(struct agent *agent, const char *run, json_t *input, void *user)
{
	json_t *stored = NULL;
	json_int_t n = 0;
	int rc;

	(void)input; /* any input counts as one run */
	(void)user;
	rc = agent_kv_get(agent, COUNT_KEY, &stored);
	if (rc == AGENT_ENOKV) {
		agent_fail(agent, run, "no_state", "counter needs a session (mode \"session\")");
		return;
	}
	if (rc < 0 && rc != AGENT_ENOTFOUND) {
		agent_fail(agent, run, "state_failed", agent_errmsg(agent));
		return;
	}
	if (stored) {
		/* A client may have written the key through /v1/sessions/{id}/state/count. */
		if (!json_is_integer(stored) || json_integer_value(stored) < 0 ||
		    json_integer_value(stored) == LLONG_MAX) {
			json_decref(stored);
			agent_fail(agent, run, "bad_state",
			           "state key \"count\" must be a non-negative integer");
			return;
		}
		n = json_integer_value(stored);
		json_decref(stored);
	}
	n++;
	if (agent_kv_set(agent, COUNT_KEY, json_integer(n)) < 0) {
		agent_fail(agent, run, "state_failed", agent_errmsg(agent));
		return;
	}
	if (agent_emit(agent, run, json_pack("{s:I}", "count", n)) < 0)
		return; /* the host is gone; nothing more to say */
	agent_done(agent, run, json_integer(n));
}

int main(int argc, char **argv)
{
	const struct agent_callbacks callbacks = {.run = count_run};

	return agent_main(argc, argv, &callbacks, NULL);
}
