/* kvwriter: the sessions benchmark's key-value agent. Each run takes {"n": N} and makes N
 * agent_kv_set calls, one after the other, each returning only once the host has committed
 * the write (docs/protocol.md); the keys cycle over "k0".."k255" and every value is a
 * 200-byte JSON string that holds the write's number. The run's output is
 * {"written": N, "last": "<the last value>"} so the client can check that every write was
 * acknowledged, and read one back through GET /v1/sessions/{id}/state/{key}. */
#include <agent.h>

#include <stdio.h>
#include <string.h>

#define KEYS 256
#define VALUE_LEN 200

static void kv_run(struct agent *agent, const char *run, json_t *input, void *user)
{
	json_int_t n = json_integer_value(json_object_get(input, "n"));
	char key[16], value[VALUE_LEN + 1];

	(void)user;
	if (n < 1) {
		agent_fail(agent, run, "bad_input", "input must be {\"n\": N} with N >= 1");
		return;
	}
	memset(value, 'v', VALUE_LEN);
	value[VALUE_LEN] = '\0';
	for (json_int_t i = 0; i < n; i++) {
		int len = snprintf(value, sizeof(value), "write %lld of %lld ", (long long)i + 1,
		                   (long long)n);
		value[len] = 'v'; /* keep the 200 bytes: the padding goes on after the number */
		snprintf(key, sizeof(key), "k%d", (int)(i % KEYS));
		if (agent_kv_set(agent, key, json_string(value)) < 0) {
			agent_fail(agent, run, "kv_failed", agent_errmsg(agent));
			return;
		}
	}
	agent_done(agent, run, json_pack("{s:I, s:s}", "written", n, "last", value));
}

int main(int argc, char **argv)
{
	const struct agent_callbacks callbacks = {.run = kv_run};

	return agent_main(argc, argv, &callbacks, NULL);
}
