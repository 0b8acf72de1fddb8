/* slow: an example agent in C that takes its time. A run streams a counter, {"n": 1},
 * {"n": 2}, ..., one event per 100 ms for input.seconds seconds (default 5), then ends
 * with {"n": LAST}. It honours cancel within about 10 ms by ending the run as "cancelled".
 * The cancel and timeout tests use it. */
#include <agent.h>

#include <time.h>

#define DEFAULT_SECONDS 5.0
#define MAX_SECONDS 86400.0
#define TICK_MS 100
#define POLL_MS 10 /* how often a tick checks for a cancel */

/* Sleeps one tick, looking for a cancel every POLL_MS. Returns true if the run was
 * cancelled. */
static bool tick_or_cancel(struct agent *agent, const char *run)
{
	const struct timespec slice = {.tv_nsec = POLL_MS * 1000000L};

	for (int waited = 0; waited < TICK_MS; waited += POLL_MS) {
		if (agent_cancelled(agent, run))
			return true;
		nanosleep(&slice, NULL);
	}
	return agent_cancelled(agent, run);
}

static void slow_run(struct agent *agent, const char *run, json_t *input, void *user)
{
	json_t *given = json_object_get(input, "seconds");
	double seconds = json_is_number(given) ? json_number_value(given) : DEFAULT_SECONDS;
	long ticks, n;

	(void)user;
	if (!(seconds >= 0 && seconds <= MAX_SECONDS)) {
		agent_fail(agent, run, "invalid_input",
		           "\"seconds\" must be a number from 0 to 86400");
		return;
	}
	ticks = (long)(seconds * (1000 / TICK_MS) + 0.5);
	for (n = 1; n <= ticks; n++) {
		if (tick_or_cancel(agent, run)) {
			agent_fail(agent, run, "cancelled", "cancelled by the client");
			return;
		}
		if (agent_emit(agent, run, json_pack("{s:I}", "n", (json_int_t)n)) < 0)
			return;
	}
	agent_done(agent, run, json_pack("{s:I}", "n", (json_int_t)ticks));
}

int main(int argc, char **argv)
{
	const struct agent_callbacks callbacks = {.run = slow_run};

	return agent_main(argc, argv, &callbacks, NULL);
}
