/* sessions.c: the session commands of agentctl (see sessions.h): create a session, list
 * and show sessions, run in one with its events streamed, cancel a run, destroy a session,
 * read its agent's log. Routes and their answers are docs/http.md's "Sessions". */
#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "output.h"
#include "stream.h"

/* "/v1/sessions/ID" into path, or the exit status after printing why not (see ctl_route). */
static int session_route(char *path, size_t len, const char *id)
{
	return ctl_route(path, len, "/v1/sessions", id, "session", "ID");
}

static const char *integer_of(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

/* --- create ------------------------------------------------------------------------ */

int ctl_create_config(const struct ctl_args *args, json_t **config, char *err, size_t errlen)
{
	const char *pair;

	*config = NULL;
	for (int i = 0; (pair = ctl_args_option_nth(args, "config", i)); i++) {
		const char *eq = strchr(pair, '=');
		json_t *value;

		if (!eq || eq == pair) {
			snprintf(err, errlen, "%s: --config wants KEY=VALUE, not '%s'",
			         args->command->name, pair);
			json_decref(*config);
			*config = NULL;
			return -1;
		}
		value = json_string(eq + 1);
		if (!value) {
			snprintf(err, errlen, "%s: --config %.*s: the value is not UTF-8 text",
			         args->command->name, (int)(eq - pair), pair);
			json_decref(*config);
			*config = NULL;
			return -1;
		}
		if (!*config)
			*config = json_object();
		json_object_setn_new_nocheck(*config, pair, (size_t)(eq - pair), value);
	}
	return 0;
}

static void print_created(const json_t *session)
{
	/* The ID alone on its line, so that ID=$(agentctl create AGENT) works. */
	printf("%s\n", ctl_str(session, "id"));
}

int ctl_cmd_create(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX], err[CTL_MESSAGE_MAX];
	struct ctl_answer a;
	json_t *config, *body = NULL;
	int rc;

	if ((rc = ctl_route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if (ctl_create_config(args, &config, err, sizeof(err))) {
		ctl_print_usage_error(err);
		return CTL_EXIT_USAGE;
	}
	if (config)
		body = json_pack("{s:o}", "config", config);
	strcat(path, "/sessions");
	rc = ctl_call(ctx, "POST", path, body, &a);
	json_decref(body);
	return rc ? rc : ctl_show(ctx, &a, print_created);
}

/* --- sessions, session ------------------------------------------------------------- */

static void print_sessions(const json_t *root)
{
	static const char *const headers[] = {"ID",    "AGENT", "VERSION",
	                                      "STATE", "RUNS",  "LAST ACTIVE"};
	json_t *list = json_object_get(root, "sessions"), *s;
	struct ctl_table *t;
	size_t i;

	if (!json_array_size(list)) {
		printf("no sessions\n");
		return;
	}
	t = ctl_table_new(6, headers);
	json_array_foreach(list, i, s)
	{
		char runs[32], active[48];
		const char *row[] = {ctl_str(s, "id"),
		                     ctl_str(s, "agent"),
		                     ctl_str(s, "version"),
		                     ctl_str(s, "state"),
		                     integer_of(s, "runs", runs, sizeof(runs)),
		                     ctl_time_of(s, "last_active_at", active, sizeof(active))};

		ctl_table_add_row(t, row);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

int ctl_cmd_sessions(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct ctl_answer a;
	bool all = ctl_args_option(args, "all") != NULL;

	if (ctl_call(ctx, "GET", all ? "/v1/sessions?all=true" : "/v1/sessions", NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_sessions);
}

static void print_session(const json_t *s)
{
	struct ctl_table *t = ctl_table_new(2, NULL);
	char runs[32], queued[32], seq[32], created[48], active[48];
	const char *active_run = json_string_value(json_object_get(s, "active_run"));

	ctl_table_add_kv(t, "id", ctl_str(s, "id"));
	ctl_table_add_kv(t, "agent", ctl_str(s, "agent"));
	ctl_table_add_kv(t, "version", ctl_str(s, "version"));
	ctl_table_add_kv(t, "state", ctl_str(s, "state"));
	ctl_table_add_kv(t, "runs", integer_of(s, "runs", runs, sizeof(runs)));
	ctl_table_add_kv(t, "queued runs", integer_of(s, "queued_runs", queued, sizeof(queued)));
	ctl_table_add_kv(t, "active run", active_run ? active_run : "-");
	ctl_table_add_kv(t, "last seq", integer_of(s, "last_seq", seq, sizeof(seq)));
	ctl_table_add_kv(t, "created", ctl_time_of(s, "created_at", created, sizeof(created)));
	ctl_table_add_kv(t, "last active",
	                 ctl_time_of(s, "last_active_at", active, sizeof(active)));
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
}

int ctl_cmd_session(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;
	int rc;

	if ((rc = session_route(path, sizeof(path), args->argv[0])))
		return rc;
	if (ctl_call(ctx, "GET", path, NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_session);
}

/* --- run, cancel, destroy ---------------------------------------------------------- */

int ctl_cmd_run(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char session[CTL_PATH_MAX], path[CTL_PATH_MAX + 8];
	json_t *input;
	int rc;

	if ((rc = session_route(session, sizeof(session), args->argv[0])))
		return rc;
	if ((rc = ctl_read_input(args, 1, &input)))
		return rc;
	snprintf(path, sizeof(path), "%s/runs", session);
	rc = ctl_stream_run(ctx, path, input, session);
	json_decref(input);
	return rc;
}

/* The run ends "cancelled" soon: queued at once, running once its agent stopped. */
static void print_cancelling(const json_t *answer)
{
	printf("cancelling run %s\n", ctl_str(answer, "id"));
}

int ctl_cmd_cancel(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char session[CTL_PATH_MAX], path[CTL_PATH_MAX * 2];
	struct ctl_answer a;
	int rc;

	if ((rc = session_route(session, sizeof(session), args->argv[0])))
		return rc;
	if ((rc = ctl_route(path, sizeof(path), strcat(session, "/runs"), args->argv[1], "run",
	                    "ID")))
		return rc;
	strcat(path, "/cancel");
	if (ctl_call(ctx, "POST", path, NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_cancelling);
}

int ctl_cmd_destroy(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;
	int rc;

	if ((rc = session_route(path, sizeof(path), args->argv[0])))
		return rc;
	if (ctl_call(ctx, "DELETE", path, NULL, &a))
		return CTL_EXIT_FAIL;
	if (!ctx->json)
		printf("destroyed %s\n", args->argv[0]);
	json_decref(a.json);
	return CTL_EXIT_OK;
}

/* --- logs -------------------------------------------------------------------------- */

/* --bytes N: a positive integer, sent as ?bytes=N (the daemon caps it at 1 MiB). */
static int bytes_query(const struct ctl_args *args, char *buf, size_t len)
{
	const char *bytes = ctl_args_option(args, "bytes");
	char msg[128];

	buf[0] = '\0';
	if (!bytes)
		return CTL_EXIT_OK;
	if (!*bytes || strspn(bytes, "0123456789") != strlen(bytes) || strlen(bytes) > 9 ||
	    !strtol(bytes, NULL, 10)) {
		snprintf(msg, sizeof(msg),
		         "logs: --bytes wants a positive number of bytes, not '%.32s'", bytes);
		ctl_print_usage_error(msg);
		return CTL_EXIT_USAGE;
	}
	snprintf(buf, len, "?bytes=%s", bytes);
	return CTL_EXIT_OK;
}

int ctl_cmd_logs(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX + 32], query[24];
	struct ctl_http_request req = {.method = "GET", .path = path, .accept = "text/plain"};
	struct ctl_http_response resp;
	struct ctl_answer a = {0};
	int rc;

	if ((rc = session_route(path, sizeof(path), args->argv[0])) ||
	    (rc = bytes_query(args, query, sizeof(query))))
		return rc;
	strcat(path, "/logs");
	strcat(path, query);
	if (ctl_http_request(ctx->http, &req, &resp, a.error, sizeof(a.error))) {
		fprintf(stderr, "agentctl: %s\n", a.error);
		return CTL_EXIT_FAIL;
	}
	if (resp.status < 200 || resp.status > 299) {
		a.status = resp.status;
		a.json = resp.body_len ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
		ctl_format_http_error(resp.status, resp.body, resp.body_len, a.error,
		                      sizeof(a.error));
		ctl_report(ctx, &a, false);
		json_decref(a.json);
		ctl_http_response_free(&resp);
		return CTL_EXIT_FAIL;
	}
	/* The agent's own bytes, as it wrote them: this is its log, not a table. */
	if (resp.body_len)
		fwrite(resp.body, 1, resp.body_len, stdout);
	ctl_http_response_free(&resp);
	if (fflush(stdout)) {
		perror("agentctl: logs: cannot write the output");
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}
