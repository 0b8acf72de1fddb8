/* kv.c: `state` and `config` (see kv.h). state's values are JSON (VALUE is parsed like a
 * run's input); config's are strings (VALUE is taken as it is), as the daemon has them. */
#include "kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "events.h"
#include "output.h"
#include "stream.h"

int ctl_kv_action(const struct ctl_args *args, enum ctl_kv_action *action, char *err, size_t errlen)
{
	bool del = ctl_args_option(args, "delete") != NULL;

	if (del && args->argc != 2) {
		snprintf(err, errlen,
		         "%s: --delete takes a KEY and no VALUE (usage: agentctl %s %s)",
		         args->command->name, args->command->name, args->command->usage);
		return -1;
	}
	if (del)
		*action = CTL_KV_DELETE;
	else
		*action = args->argc == 1 ? CTL_KV_LIST : args->argc == 2 ? CTL_KV_GET : CTL_KV_SET;
	return 0;
}

/* Prints one value as `run` prints an output: a string as it is, else compact JSON. */
static void print_value(const json_t *value)
{
	struct ctl_events ev;

	ctl_events_init(&ev, stdout, false, isatty(STDOUT_FILENO));
	ctl_events_print_value(&ev, value);
}

/* A KEY VALUE table of an object's members, values as compact JSON or, when strings and
 * raw_strings, as they are. */
static void print_members(const json_t *obj, bool raw_strings)
{
	static const char *const headers[] = {"KEY", "VALUE"};
	struct ctl_table *t = ctl_table_new(2, headers);
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)obj, key, value)
	{
		char *text = raw_strings && json_is_string(value)
		                 ? strdup(json_string_value(value))
		                 : json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		const char *row[] = {key, text};

		ctl_table_add_row(t, row);
		free(text);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

static int print_action(const char *verb, const char *key)
{
	printf("%s %s\n", verb, key);
	return CTL_EXIT_OK;
}

/* --- state ------------------------------------------------------------------------- */

static void print_state(const json_t *root)
{
	const json_t *state = json_object_get(root, "state");

	if (!json_object_size(state))
		printf("no state\n");
	else
		print_members(state, false);
}

static void print_state_value(const json_t *kv)
{
	print_value(json_object_get(kv, "value"));
}

static void print_state_set(const json_t *kv)
{
	print_action("set", ctl_str(kv, "key"));
}

int ctl_cmd_state(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char session[CTL_PATH_MAX], path[CTL_PATH_MAX * 2], err[CTL_MESSAGE_MAX];
	enum ctl_kv_action action;
	struct ctl_answer a;
	json_t *value;
	int rc;

	if (ctl_kv_action(args, &action, err, sizeof(err))) {
		ctl_print_usage_error(err);
		return CTL_EXIT_USAGE;
	}
	if ((rc = ctl_route(session, sizeof(session), "/v1/sessions", args->argv[0], "session",
	                    "ID")))
		return rc;
	if (action == CTL_KV_LIST) {
		snprintf(path, sizeof(path), "%s/state", session);
		return ctl_call(ctx, "GET", path, NULL, &a) ? CTL_EXIT_FAIL
		                                            : ctl_show(ctx, &a, print_state);
	}
	if ((rc = ctl_route(path, sizeof(path), strcat(session, "/state"), args->argv[1], "key",
	                    "name")))
		return rc;
	switch (action) {
	case CTL_KV_GET:
		return ctl_call(ctx, "GET", path, NULL, &a) ? CTL_EXIT_FAIL
		                                            : ctl_show(ctx, &a, print_state_value);
	case CTL_KV_SET:
		if ((rc = ctl_read_input(args, 2, &value)))
			return rc;
		rc = ctl_call(ctx, "PUT", path, value, &a);
		json_decref(value);
		return rc ? rc : ctl_show(ctx, &a, print_state_set);
	default:
		if (ctl_call(ctx, "DELETE", path, NULL, &a))
			return CTL_EXIT_FAIL;
		json_decref(a.json);
		return ctx->json ? CTL_EXIT_OK : print_action("deleted", args->argv[1]);
	}
}

/* --- config ------------------------------------------------------------------------ */

static void print_config(const json_t *root)
{
	const json_t *config = json_object_get(root, "config");

	if (!json_object_size(config))
		printf("no config set\n");
	else
		print_members(config, true);
}

/* config AGENT KEY: the daemon sends every key set; this picks one. */
static int show_config_key(const struct ctl_ctx *ctx, struct ctl_answer *a, const char *agent,
                           const char *key)
{
	json_t *value = json_object_get(json_object_get(a->json, "config"), key);

	if (!value) {
		fprintf(stderr, "agentctl: agent %s has no value set for config %s\n", agent, key);
		json_decref(a->json);
		return CTL_EXIT_FAIL;
	}
	if (ctx->json) {
		json_t *kv = json_pack("{s:s, s:O}", "key", key, "value", value);

		ctl_print_json(kv, stdout);
		json_decref(kv);
	} else {
		print_value(value);
	}
	json_decref(a->json);
	return CTL_EXIT_OK;
}

int ctl_cmd_config(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX], err[CTL_MESSAGE_MAX];
	enum ctl_kv_action action;
	struct ctl_answer a;
	json_t *body;
	int rc;

	if (ctl_kv_action(args, &action, err, sizeof(err))) {
		ctl_print_usage_error(err);
		return CTL_EXIT_USAGE;
	}
	if ((rc = ctl_route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	strcat(path, "/config");
	if (action == CTL_KV_LIST || action == CTL_KV_GET) {
		if (ctl_call(ctx, "GET", path, NULL, &a))
			return CTL_EXIT_FAIL;
		return action == CTL_KV_LIST
		           ? ctl_show(ctx, &a, print_config)
		           : show_config_key(ctx, &a, args->argv[0], args->argv[1]);
	}
	/* A value is a string, or null to unset it. */
	body = json_object();
	if (json_object_set_new(body, args->argv[1],
	                        action == CTL_KV_SET ? json_string(args->argv[2]) : json_null())) {
		json_decref(body);
		fprintf(stderr, "agentctl: config: the KEY and VALUE must be UTF-8 text\n");
		return CTL_EXIT_FAIL;
	}
	rc = ctl_call(ctx, "PUT", path, body, &a);
	json_decref(body);
	if (rc)
		return rc;
	if (ctx->json)
		return ctl_show(ctx, &a, print_config);
	json_decref(a.json);
	return print_action(action == CTL_KV_SET ? "set" : "deleted", args->argv[1]);
}
