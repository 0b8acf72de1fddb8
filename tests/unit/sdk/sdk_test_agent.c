/* sdk_test_agent.c: an agent built on the C SDK for sdk_test. input.op picks what a run
 * does, so that one binary covers every SDK call and every way a run can end. */
#include <agent.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct state {
	int cancels; /* calls of the cancel callback */
};

static int test_create(struct agent *agent, json_t *hello, void *user)
{
	(void)hello;
	(void)user;
	return agent_config(agent, "FAIL_CREATE") ? -1 : 0;
}

static void test_cancel(struct agent *agent, const char *run, void *user)
{
	struct state *state = user;

	(void)agent;
	(void)run;
	state->cancels++;
}

/* Every KV call once, the results as {"step": rc or value, ...}. */
static void op_kv(struct agent *agent, const char *run)
{
	json_t *out = json_object(), *value, *keys;

	json_object_set_new(out, "set_a", json_integer(agent_kv_set(agent, "a", json_integer(1))));
	json_object_set_new(out, "set_b",
	                    json_integer(agent_kv_set(agent, "b", json_pack("{s:[i]}", "x", 1))));
	json_object_set_new(out, "set_ab", json_integer(agent_kv_set(agent, "ab", NULL)));
	if (agent_kv_get(agent, "b", &value) == 0)
		json_object_set_new(out, "get_b", value);
	json_object_set_new(out, "get_missing", json_integer(agent_kv_get(agent, "zz", &value)));
	json_object_set_new(out, "missing_value_null", json_boolean(value == NULL));
	if (agent_kv_list(agent, "", &keys) == 0)
		json_object_set_new(out, "list_all", keys);
	if (agent_kv_list(agent, "a", &keys) == 0)
		json_object_set_new(out, "list_a", keys);
	json_object_set_new(out, "del_a", json_integer(agent_kv_del(agent, "a")));
	json_object_set_new(out, "del_a_again", json_integer(agent_kv_del(agent, "a")));
	json_object_set_new(out, "get_empty_key", json_integer(agent_kv_get(agent, "", &value)));
	json_object_set_new(out, "refused",
	                    json_integer(agent_kv_set(agent, "refuse", json_true())));
	json_object_set_new(out, "refused_msg", json_string(agent_errmsg(agent)));
	agent_done(agent, run, out);
}

/* A KV call during which the host cancels the run; the run then just returns. */
static void op_kv_cancel(struct agent *agent, const char *run, struct state *state)
{
	json_t *value = NULL;
	int rc = agent_kv_get(agent, "k", &value);

	json_decref(value);
	agent_log(agent, AGENT_LOG_INFO, "rc=%d cancelled=%d cancels=%d", rc,
	          agent_cancelled(agent, run), state->cancels);
}

static void op_spin(struct agent *agent, const char *run)
{
	const struct timespec ms = {.tv_nsec = 1000000};

	agent_emit(agent, run, json_string("spinning"));
	while (!agent_cancelled(agent, run))
		nanosleep(&ms, NULL);
}

/* Polls from its first step on (no emit first): a cancel that came with the run frame must
 * be seen at once. Logs how often the cancel callback ran. */
static void op_spin_count(struct agent *agent, const char *run, struct state *state)
{
	const struct timespec ms = {.tv_nsec = 1000000};

	while (!agent_cancelled(agent, run))
		nanosleep(&ms, NULL);
	agent_log(agent, AGENT_LOG_INFO, "cancels=%d", state->cancels);
}

/* A long input and a long KV value (both over the SDK's 64 KiB read size): their lengths. */
static void op_long(struct agent *agent, const char *run, json_t *input)
{
	json_t *value = NULL;
	int rc = agent_kv_get(agent, "big", &value);

	agent_done(agent, run,
	           json_pack("{s:i, s:I, s:I}", "rc", rc, "input_len",
	                     (json_int_t)json_string_length(json_object_get(input, "text")),
	                     "value_len", (json_int_t)json_string_length(value)));
	json_decref(value);
}

static void op_big(struct agent *agent, const char *run)
{
	char *s = malloc(1001);
	int rc;

	memset(s, 'x', 1000);
	s[1000] = '\0';
	rc = agent_emit(agent, run, json_string(s));
	free(s);
	agent_done(agent, run, json_pack("{s:i, s:s}", "rc", rc, "msg", agent_errmsg(agent)));
}

static void test_run(struct agent *agent, const char *run, json_t *input, void *user)
{
	const char *op = json_string_value(json_object_get(input, "op"));
	json_t *value = NULL;

	if (!op)
		op = "";
	if (strcmp(op, "kv") == 0) {
		op_kv(agent, run);
	} else if (strcmp(op, "kv_cancel") == 0) {
		op_kv_cancel(agent, run, user);
	} else if (strcmp(op, "nokv") == 0) {
		int rc = agent_kv_get(agent, "a", &value);

		agent_done(agent, run,
		           json_pack("{s:i, s:s}", "rc", rc, "msg", agent_errmsg(agent)));
	} else if (strcmp(op, "log") == 0) {
		agent_log(agent, AGENT_LOG_WARN, "n=%d %s", 42, "\xff");
		agent_done(agent, run, NULL);
	} else if (strcmp(op, "big") == 0) {
		op_big(agent, run);
	} else if (strcmp(op, "spin") == 0) {
		op_spin(agent, run);
	} else if (strcmp(op, "spin_count") == 0) {
		op_spin_count(agent, run, user);
	} else if (strcmp(op, "long") == 0) {
		op_long(agent, run, input);
	} else if (strcmp(op, "wrongrun") == 0) {
		int emit_rc = agent_emit(agent, "r_other", json_true()), again, fail;

		agent_done(agent, run, json_pack("{s:i}", "rc", emit_rc));
		again = agent_done(agent, run, NULL);
		fail = agent_fail(agent, run, "x", "y");
		agent_log(agent, AGENT_LOG_INFO, "again=%d fail=%d", again, fail);
	} else if (strcmp(op, "fail") == 0) {
		agent_fail(agent, run, NULL, NULL);
	}
	/* Anything else returns without ending the run. */
}

int main(int argc, char **argv)
{
	struct state state = {0};
	const struct agent_callbacks callbacks = {
	    .create = test_create, .run = test_run, .cancel = test_cancel};

	return agent_main(argc, argv, &callbacks, &state);
}
