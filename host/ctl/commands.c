/* commands.c: agentctl's commands, one exec function each, and the table that names them
 * (see commands.h). A command builds its route, calls the daemon through call(), and
 * prints the answer: a table for people, the daemon's own JSON with --json. */
#include "commands.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"
#include "input.h"
#include "output.h"
#include "sse.h"

#define MESSAGE_MAX 1024
#define SEGMENT_MAX 512

/* What one call to the daemon gave. */
struct answer {
	int status;              /* HTTP status; 0 when there was no response */
	json_t *json;            /* owned: the body, NULL when empty */
	char error[MESSAGE_MAX]; /* the one-line message of a failure, "" on success */
};

static bool answer_ok(const struct answer *a)
{
	return a->status >= 200 && a->status < 300 && !a->error[0];
}

/* Sends method path with body (borrowed, NULL for none) and fills *a. Returns 0 for a 2xx
 * answer whose body is JSON or empty, else -1 with a->error set. Prints nothing. */
static int request(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
                   bool no_auth, struct answer *a)
{
	struct ctl_http_request req = {.method = method, .path = path, .no_auth = no_auth};
	struct ctl_http_response resp;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	if (body && !text)
		abort();
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	rc = ctl_http_request(ctx->http, &req, &resp, a->error, sizeof(a->error));
	free(text);
	if (rc)
		return -1;
	a->status = resp.status;
	if (resp.body_len)
		a->json = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (a->status < 200 || a->status > 299)
		ctl_format_http_error(resp.status, resp.body, resp.body_len, a->error,
		                      sizeof(a->error));
	else if (resp.body_len && !a->json)
		snprintf(a->error, sizeof(a->error),
		         "%s%s answered %d with a body that is not JSON", ctx->cfg.url.text, path,
		         resp.status);
	ctl_http_response_free(&resp);
	return answer_ok(a) ? 0 : -1;
}

/* Prints the failure of a: one line on stderr; with --json the daemon's error body on
 * stdout too, so that a script can read its code (on one line when ndjson: the output of
 * a streamed call is one JSON value per line). A 401 says where the token came from. */
static void report_as(const struct ctl_ctx *ctx, const struct answer *a, bool ndjson)
{
	char hint[PATH_MAX + 128] = "";

	if (ctx->json && a->json && ndjson) {
		json_dumpf(a->json, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		fflush(stdout);
	} else if (ctx->json && a->json) {
		ctl_print_json(a->json, stdout);
	}
	if (a->status == 401 && ctx->cfg.token)
		snprintf(hint, sizeof(hint), " (token from %s)", ctx->cfg.token_source);
	else if (a->status == 401)
		snprintf(hint, sizeof(hint),
		         " (no token: %s; give --token, AGENTHOST_TOKEN or --state-dir)",
		         ctx->cfg.token_source);
	fprintf(stderr, "agentctl: %s%s\n", a->error, hint);
}

static void report(const struct ctl_ctx *ctx, const struct answer *a)
{
	report_as(ctx, a, false);
}

/* request() that reports its failure. Returns CTL_EXIT_OK or CTL_EXIT_FAIL; on failure
 * a->json is already freed. */
static int call(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
                struct answer *a)
{
	if (!request(ctx, method, path, body, false, a))
		return CTL_EXIT_OK;
	report(ctx, a);
	json_decref(a->json);
	a->json = NULL;
	return CTL_EXIT_FAIL;
}

/* The end of every command: the JSON with --json (nothing for an empty answer), else
 * the command's own printer. Frees a->json. */
static int show(const struct ctl_ctx *ctx, struct answer *a, void (*print)(const json_t *))
{
	if (ctx->json && a->json)
		ctl_print_json(a->json, stdout);
	else if (!ctx->json)
		print(a->json);
	json_decref(a->json);
	return CTL_EXIT_OK;
}

/* "/v1/agents/" + the escaped name into buf. Returns CTL_EXIT_OK, or the exit status
 * after printing why the name is not sent: an empty or absurdly long one is a usage error;
 * one with '/', or "." or "..", cannot exist, and since servers (lws among them) decode
 * %2F and fold dot segments before routing, no escaping keeps it from naming another
 * route ("../tokens/ID"), so it is answered here as a name that does not exist. */
static int route(char *buf, size_t len, const char *base, const char *segment, const char *kind,
                 const char *what)
{
	char escaped[SEGMENT_MAX * 3], msg[128];

	if (!*segment || strlen(segment) > SEGMENT_MAX) {
		snprintf(msg, sizeof(msg), "the %s %s %s", kind, what,
		         *segment ? "is too long" : "must not be empty");
		ctl_print_usage_error(msg);
		return CTL_EXIT_USAGE;
	}
	if (ctl_url_escape_segment(segment, escaped, sizeof(escaped))) {
		fprintf(
		    stderr,
		    "agentctl: there is no %s '%s': its %s cannot contain '/' or be '.' or '..'\n",
		    kind, segment, what);
		return CTL_EXIT_FAIL;
	}
	snprintf(buf, len, "%s/%s", base, escaped);
	return CTL_EXIT_OK;
}

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

/* The strings of a JSON array joined by sep into buf; "-" for none. */
static const char *join(const json_t *array, const char *sep, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *item;

	buf[0] = '\0';
	json_array_foreach(array, i, item)
	{
		if (json_is_string(item) && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? sep : "",
			                         json_string_value(item));
	}
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}

/* Appends w to buf as a shell would need it typed: quoted unless it is plain. */
static size_t append_word(char *buf, size_t len, size_t used, const char *w)
{
	static const char plain_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                  "0123456789_./=:,+@%-";
	bool plain = *w && strspn(w, plain_chars) == strlen(w);

	if (used && used < len)
		buf[used++] = ' ';
	if (!plain && used < len)
		buf[used++] = '\'';
	for (; *w && used < len; w++) {
		/* A quote inside single quotes is written '\'' */
		if (*w == '\'' && used + 4 < len) {
			memcpy(buf + used, "'\\''", 4);
			used += 4;
		} else {
			buf[used++] = *w;
		}
	}
	if (!plain && used < len)
		buf[used++] = '\'';
	return used;
}

/* An argv (entrypoint, install command) as one shell-like line; "-" for none. */
static const char *join_argv(const json_t *array, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *item;

	json_array_foreach(array, i, item)
	{
		if (json_is_string(item))
			used = append_word(buf, len - 1, used, json_string_value(item));
	}
	buf[used] = '\0';
	if (!used)
		snprintf(buf, len, "-");
	return buf;
}

static const char *time_of(const json_t *obj, const char *key, char *buf, size_t len)
{
	ctl_format_time(json_string_value(json_object_get(obj, key)), buf, len);
	return buf;
}

/* --- install, uninstall ----------------------------------------------------------- */

static void print_installed(const json_t *agent)
{
	printf("installed %s %s (%s)\n", str(agent, "name"), str(agent, "version"),
	       str(agent, "path"));
}

static int cmd_install(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[PATH_MAX];
	struct answer a;
	json_t *body;
	int rc;

	/* The daemon reads the path itself, from its own working folder: make it absolute. */
	if (!realpath(args->argv[0], path)) {
		fprintf(stderr, "agentctl: install: %s: %s\n", args->argv[0], strerror(errno));
		return CTL_EXIT_FAIL;
	}
	body = json_pack("{s:s}", "path", path);
	rc = call(ctx, "POST", "/v1/agents", body, &a);
	json_decref(body);
	return rc ? rc : show(ctx, &a, print_installed);
}

static int cmd_uninstall(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[SEGMENT_MAX * 3 + 64];
	struct answer a;
	int rc;

	if ((rc = route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if (ctl_args_option(args, "force"))
		strcat(path, "?force=true");
	if (call(ctx, "DELETE", path, NULL, &a))
		return CTL_EXIT_FAIL;
	if (!ctx->json)
		printf("uninstalled %s\n", args->argv[0]);
	json_decref(a.json);
	return CTL_EXIT_OK;
}

/* --- agents, agent ----------------------------------------------------------------- */

static void print_agents(const json_t *root)
{
	static const char *const headers[] = {"NAME", "VERSION", "MODES", "INSTALLED",
	                                      "DESCRIPTION"};
	json_t *list = json_object_get(root, "agents"), *agent;
	struct ctl_table *t;
	size_t i;

	if (!json_array_size(list)) {
		printf("no agents installed\n");
		return;
	}
	t = ctl_table_new(5, headers);
	json_array_foreach(list, i, agent)
	{
		char modes[64], installed[48];
		const char *row[] = {
		    str(agent, "name"), str(agent, "version"),
		    join(json_object_get(agent, "modes"), ",", modes, sizeof(modes)),
		    time_of(agent, "installed_at", installed, sizeof(installed)),
		    str(agent, "description")};

		ctl_table_add_row(t, row);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

static int cmd_agents(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct answer a;

	(void)args;
	if (call(ctx, "GET", "/v1/agents", NULL, &a))
		return CTL_EXIT_FAIL;
	return show(ctx, &a, print_agents);
}

static json_int_t num(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* "GREETING (required, secret), NAME": the config keys an operator may set. */
static const char *describe_config(const json_t *config, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *c;

	snprintf(buf, len, "-");
	json_array_foreach(config, i, c)
	{
		bool req = json_is_true(json_object_get(c, "required"));
		bool secret = json_is_true(json_object_get(c, "secret"));

		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s%s%s",
			                         used ? ", " : "", str(c, "name"),
			                         req || secret ? " (" : "", req ? "required" : "",
			                         req && secret ? ", " : "",
			                         secret ? "secret)"
			                         : req  ? ")"
			                                : "");
	}
	return buf;
}

static const char *describe_dependencies(const json_t *deps, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *d;

	snprintf(buf, len, "-");
	json_array_foreach(deps, i, d)
	{
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s %s",
			                         used ? ", " : "", str(d, "type"), str(d, "name"));
	}
	return buf;
}

static const char *describe_sandbox(const json_t *sandbox, char *buf, size_t len)
{
	char paths[512];
	const json_t *p;
	size_t used = 0, i;

	paths[0] = '\0';
	json_array_foreach(json_object_get(sandbox, "paths"), i, p)
	{
		if (used < sizeof(paths))
			used += (size_t)snprintf(paths + used, sizeof(paths) - used, "%s%s (%s)",
			                         used ? ", " : "", str(p, "path"), str(p, "mode"));
	}
	snprintf(buf, len, "seccomp %s, network %s%s%s", str(sandbox, "seccomp"),
	         json_is_true(json_object_get(sandbox, "network")) ? "on" : "off",
	         paths[0] ? ", paths " : "", paths);
	if (json_array_size(json_object_get(sandbox, "allow_syscalls"))) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, ", also allows ");
		n = strlen(buf);
		join(json_object_get(sandbox, "allow_syscalls"), ",", buf + n, len - n);
	}
	return buf;
}

static const char *describe_limits(const json_t *l, char *buf, size_t len)
{
	snprintf(buf, len,
	         "memory %" JSON_INTEGER_FORMAT " MB, cpu %" JSON_INTEGER_FORMAT
	         " s, processes %" JSON_INTEGER_FORMAT ", open files %" JSON_INTEGER_FORMAT
	         ", file size %" JSON_INTEGER_FORMAT " MB, scratch %" JSON_INTEGER_FORMAT
	         " MB, run timeout %" JSON_INTEGER_FORMAT " s, output %" JSON_INTEGER_FORMAT
	         " bytes",
	         num(l, "memory_mb"), num(l, "cpu_seconds"), num(l, "processes"),
	         num(l, "open_files"), num(l, "file_size_mb"), num(l, "scratch_mb"),
	         num(l, "run_timeout_s"), num(l, "output_bytes"));
	return buf;
}

static const char *describe_session(const json_t *s, char *buf, size_t len)
{
	snprintf(buf, len,
	         "hibernate after %" JSON_INTEGER_FORMAT " s, expire after %" JSON_INTEGER_FORMAT
	         " s, at most %" JSON_INTEGER_FORMAT " queued runs",
	         num(s, "hibernate_after_s"), num(s, "expire_after_s"), num(s, "max_queued_runs"));
	return buf;
}

static const char *describe_invoke(const json_t *inv, char *buf, size_t len)
{
	snprintf(buf, len, "%s isolation, %" JSON_INTEGER_FORMAT " workers", str(inv, "isolation"),
	         num(inv, "workers"));
	return buf;
}

/* "license MIT, author X, tags a,b": the metadata worth a glance. */
static const char *describe_metadata(const json_t *meta, char *buf, size_t len)
{
	char tags[256];

	snprintf(buf, len, "license %s, author %s, tags %s", str(meta, "license"),
	         str(meta, "author"), join(json_object_get(meta, "tags"), ",", tags, sizeof(tags)));
	return buf;
}

typedef const char *(*describe_fn)(const json_t *field, char *buf, size_t len);

static const char *describe_list(const json_t *a, char *buf, size_t len)
{
	return join(a, ", ", buf, len);
}

/* The manifest's main fields, each only when the daemon sent it (in the table's order). */
static void add_manifest_rows(struct ctl_table *t, const json_t *m)
{
	static const struct {
		const char *label, *field, *subfield; /* subfield: m.field.subfield */
		describe_fn describe;
	} rows[] = {
	    {"entrypoint", "entrypoint", NULL, join_argv},
	    {"input types", "input_content_types", NULL, describe_list},
	    {"output types", "output_content_types", NULL, describe_list},
	    {"config", "config", NULL, describe_config},
	    {"dependencies", "dependencies", NULL, describe_dependencies},
	    {"sandbox", "sandbox", NULL, describe_sandbox},
	    {"limits", "sandbox", "limits", describe_limits},
	    {"session", "session", NULL, describe_session},
	    {"invoke", "invoke", NULL, describe_invoke},
	    {"install command", "install", "command", join_argv},
	    {"metadata", "metadata", NULL, describe_metadata},
	};
	char buf[1024];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const json_t *v = json_object_get(m, rows[i].field);

		if (rows[i].subfield)
			v = json_object_get(v, rows[i].subfield);
		/* JSON null ("install": null) is "not there" too. */
		if (!v || json_is_null(v) || (json_is_object(v) && !json_object_size(v)))
			continue;
		ctl_table_add_kv(t, rows[i].label, rows[i].describe(v, buf, sizeof(buf)));
	}
}

static void print_agent(const json_t *agent)
{
	struct ctl_table *t = ctl_table_new(2, NULL);
	char buf[1024], installed[48];

	ctl_table_add_kv(t, "name", str(agent, "name"));
	ctl_table_add_kv(t, "version", str(agent, "version"));
	ctl_table_add_kv(t, "versions",
	                 join(json_object_get(agent, "versions"), ", ", buf, sizeof(buf)));
	ctl_table_add_kv(t, "description", str(agent, "description"));
	ctl_table_add_kv(t, "modes", join(json_object_get(agent, "modes"), ", ", buf, sizeof(buf)));
	ctl_table_add_kv(t, "installed",
	                 time_of(agent, "installed_at", installed, sizeof(installed)));
	ctl_table_add_kv(t, "path", str(agent, "path"));
	ctl_table_add_kv(t, "digest", str(agent, "digest"));
	add_manifest_rows(t, json_object_get(agent, "manifest"));
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
}

static int cmd_agent(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[SEGMENT_MAX * 3 + 64];
	struct answer a;
	int rc;

	if ((rc = route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if (call(ctx, "GET", path, NULL, &a))
		return CTL_EXIT_FAIL;
	return show(ctx, &a, print_agent);
}

/* --- token create, list, revoke ---------------------------------------------------- */

static void print_token_created(const json_t *token)
{
	struct ctl_table *t = ctl_table_new(2, NULL);

	ctl_table_add_kv(t, "id", str(token, "id"));
	ctl_table_add_kv(t, "name", str(token, "name"));
	ctl_table_add_kv(t, "token", str(token, "token"));
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
	fflush(stdout);
	fprintf(stderr, "note: save the token now: it is shown only this once (the daemon "
	                "keeps only its hash)\n");
}

static int cmd_token_create(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	json_t *body = json_pack("{s:s}", "name", args->argv[0]);
	struct answer a;
	int rc;

	rc = call(ctx, "POST", "/v1/tokens", body, &a);
	json_decref(body);
	return rc ? rc : show(ctx, &a, print_token_created);
}

static void print_tokens(const json_t *root)
{
	static const char *const headers[] = {"ID", "NAME", "ADMIN", "CREATED"};
	json_t *list = json_object_get(root, "tokens"), *token;
	struct ctl_table *t = ctl_table_new(4, headers);
	size_t i;

	json_array_foreach(list, i, token)
	{
		char created[48];
		const char *row[] = {str(token, "id"), str(token, "name"),
		                     json_is_true(json_object_get(token, "admin")) ? "yes" : "no",
		                     time_of(token, "created_at", created, sizeof(created))};

		ctl_table_add_row(t, row);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

static int cmd_token_list(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct answer a;

	(void)args;
	if (call(ctx, "GET", "/v1/tokens", NULL, &a))
		return CTL_EXIT_FAIL;
	return show(ctx, &a, print_tokens);
}

static int cmd_token_revoke(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[SEGMENT_MAX * 3 + 64];
	struct answer a;
	int rc;

	if ((rc = route(path, sizeof(path), "/v1/tokens", args->argv[0], "token", "ID")))
		return rc;
	if (call(ctx, "DELETE", path, NULL, &a))
		return CTL_EXIT_FAIL;
	if (!ctx->json)
		printf("revoked token %s\n", args->argv[0]);
	json_decref(a.json);
	return CTL_EXIT_OK;
}

/* --- status ------------------------------------------------------------------------ */

/* What `status` found out; the counts are -1 when unknown. */
struct status {
	bool reachable, healthy;
	const char *health; /* "ok", or the /healthz failure */
	char version[64];
	const char *token_kind; /* "admin", "client", "none", "rejected", "unknown" */
	char token_note[MESSAGE_MAX + PATH_MAX];
	json_int_t agents, tokens;
	char error[MESSAGE_MAX];
};

static void probe_health(struct ctl_ctx *ctx, struct status *st)
{
	struct answer a;

	if (request(ctx, "GET", "/healthz", NULL, true, &a)) {
		st->reachable = a.status != 0;
		snprintf(st->error, sizeof(st->error), "%s", a.error);
		json_decref(a.json);
		return;
	}
	st->reachable = st->healthy = true;
	snprintf(st->version, sizeof(st->version), "%s", str(a.json, "version"));
	json_decref(a.json);
}

static json_int_t count(const json_t *root, const char *key)
{
	return (json_int_t)json_array_size(json_object_get(root, key));
}

/* The agents count tells whether the token works; the tokens count whether it is admin. */
static void probe_token(struct ctl_ctx *ctx, struct status *st)
{
	struct answer a;

	st->token_kind = ctx->cfg.token ? "unknown" : "none";
	snprintf(st->token_note, sizeof(st->token_note), "%s", ctx->cfg.token_source);
	if (request(ctx, "GET", "/v1/agents", NULL, false, &a)) {
		if (a.status == 401 && ctx->cfg.token)
			st->token_kind = "rejected";
		if (ctx->cfg.token || a.status != 401)
			snprintf(st->token_note, sizeof(st->token_note), "%s", a.error);
		json_decref(a.json);
		return;
	}
	st->agents = count(a.json, "agents");
	json_decref(a.json);
	if (request(ctx, "GET", "/v1/tokens", NULL, false, &a)) {
		st->token_kind = a.status == 403 ? "client" : "unknown";
	} else {
		st->token_kind = "admin";
		st->tokens = count(a.json, "tokens");
	}
	json_decref(a.json);
}

static void print_status_json(const struct ctl_ctx *ctx, const struct status *st)
{
	json_t *root =
	    json_pack("{s:s, s:b}", "url", ctx->cfg.url.text, "reachable", st->reachable);

	if (st->error[0])
		json_object_set_new(root, "error", json_string(st->error));
	if (st->healthy) {
		json_object_set_new(root, "status", json_string("ok"));
		json_object_set_new(root, "version", json_string(st->version));
		json_object_set_new(root, "token", json_string(st->token_kind));
		json_object_set_new(root, "agents",
		                    st->agents >= 0 ? json_integer(st->agents) : json_null());
		json_object_set_new(root, "tokens",
		                    st->tokens >= 0 ? json_integer(st->tokens) : json_null());
	}
	ctl_print_json(root, stdout);
	json_decref(root);
}

static const char *count_text(json_int_t n, const char *unknown, char *buf, size_t len)
{
	if (n < 0)
		return unknown;
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, n);
	return buf;
}

static void print_status(const struct ctl_ctx *ctx, const struct status *st)
{
	struct ctl_table *t = ctl_table_new(2, NULL);
	bool known = !strcmp(st->token_kind, "admin") || !strcmp(st->token_kind, "client");
	char buf[MESSAGE_MAX + PATH_MAX + 64], n1[32], n2[32];

	ctl_table_add_kv(t, "daemon", ctx->cfg.url.text);
	/* Why it is not reachable is the error line on stderr. */
	ctl_table_add_kv(t, "reachable", st->reachable ? "yes" : "no");
	if (st->reachable)
		ctl_table_add_kv(t, "health", st->healthy ? "ok" : st->error);
	if (st->healthy) {
		ctl_table_add_kv(t, "version", st->version);
		snprintf(buf, sizeof(buf), "%s (%s%s)", st->token_kind, known ? "from " : "",
		         st->token_note);
		ctl_table_add_kv(t, "token", buf);
		ctl_table_add_kv(t, "agents", count_text(st->agents, "-", n1, sizeof(n1)));
		ctl_table_add_kv(
		    t, "tokens",
		    count_text(st->tokens,
		               strcmp(st->token_kind, "client") ? "-" : "- (needs the admin token)",
		               n2, sizeof(n2)));
	}
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
}

static int cmd_status(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct status st = {.agents = -1, .tokens = -1, .token_kind = "unknown"};

	(void)args;
	probe_health(ctx, &st);
	if (st.healthy)
		probe_token(ctx, &st);
	if (ctx->json)
		print_status_json(ctx, &st);
	else
		print_status(ctx, &st);
	if (!st.healthy) {
		fprintf(stderr, "agentctl: %s\n", st.error);
		return CTL_EXIT_FAIL;
	}
	/* A daemon that answers but refuses the token we hold is not a working setup. */
	if (!strcmp(st.token_kind, "rejected")) {
		fprintf(stderr, "agentctl: %s (token from %s)\n", st.token_note,
		        ctx->cfg.token_source);
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

/* --- invoke ------------------------------------------------------------------------ */

/* Set by Ctrl-C while a call streams; the HTTP client then closes the connection. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* The call's input, from its argument or stdin (see input.h). Returns CTL_EXIT_OK with
 * *input set (a new reference), or the exit status after printing why not. */
static int read_input(const struct ctl_args *args, json_t **input)
{
	const char *arg = args->argc > 1 ? args->argv[1] : NULL;
	char err[MESSAGE_MAX], msg[MESSAGE_MAX + 64], *text = NULL;
	size_t len = 0;
	int rc;

	switch (ctl_input_source(arg, isatty(STDIN_FILENO))) {
	case CTL_INPUT_NONE:
		*input = json_null();
		return CTL_EXIT_OK;
	case CTL_INPUT_STDIN:
		if (ctl_input_read(STDIN_FILENO, CTL_INPUT_MAX, &text, &len, err, sizeof(err))) {
			fprintf(stderr, "agentctl: %s: %s\n", args->command->name, err);
			return CTL_EXIT_FAIL;
		}
		break;
	case CTL_INPUT_ARG:
		len = strlen(arg);
		break;
	}
	rc = ctl_input_parse(text ? text : arg, len, input, err, sizeof(err));
	free(text);
	if (!rc)
		return CTL_EXIT_OK;
	snprintf(msg, sizeof(msg), "%s: %s", args->command->name, err);
	ctl_print_usage_error(msg);
	return CTL_EXIT_USAGE;
}

/* A streamed call: the SSE parser hands each event to the printer. */
struct stream {
	struct ctl_sse_parser *sse;
	struct ctl_events events;
	int sse_rc; /* the parser's last answer: 0 on, 1 the run ended, -1 a bad event */
};

static int stream_event(const struct ctl_sse_event *e, void *user)
{
	struct stream *s = user;

	return ctl_events_add(&s->events, e->type, e->data, e->data_len);
}

static int stream_chunk(const char *data, size_t len, void *user)
{
	struct stream *s = user;

	s->sse_rc = ctl_sse_feed(s->sse, data, len);
	return s->sse_rc != 0;
}

/* The exit status of a streamed call that got a whole answer, after printing what went
 * wrong: the daemon's refusal, the run's failure, or a stream that ended too soon. */
static int stream_outcome(const struct ctl_ctx *ctx, const struct stream *s, const char *path,
                          const struct ctl_http_response *resp)
{
	struct answer a = {.status = resp->status};
	char why[MESSAGE_MAX + CTL_URL_PREFIX_MAX + 64];

	if (resp->status < 200 || resp->status > 299) {
		a.json = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
		ctl_format_http_error(resp->status, resp->body, resp->body_len, a.error,
		                      sizeof(a.error));
		report_as(ctx, &a, true);
		json_decref(a.json);
		return CTL_EXIT_FAIL;
	}
	if (s->events.end == CTL_RUN_COMPLETED)
		return CTL_EXIT_OK;
	if (s->events.error[0])
		snprintf(why, sizeof(why), "%s", s->events.error);
	else if (s->sse_rc < 0)
		snprintf(why, sizeof(why), "%s%s sent an event larger than 64 MiB",
		         ctx->cfg.url.text, path);
	else if (strncmp(resp->content_type, "text/event-stream", 17))
		snprintf(why, sizeof(why), "%s%s answered %d %s, not an event stream",
		         ctx->cfg.url.text, path, resp->status,
		         resp->content_type[0] ? resp->content_type : "without a content type");
	else
		snprintf(why, sizeof(why), "%s%s closed the stream before the run ended",
		         ctx->cfg.url.text, path);
	fprintf(stderr, "agentctl: %s\n", why);
	return CTL_EXIT_FAIL;
}

/* POSTs {"input": input} to path asking for an event stream, prints the events as they
 * come, and returns the exit status: 0 the run completed, 1 it did not (or the daemon
 * refused, or the network failed), 130 Ctrl-C. */
static int stream_call(struct ctl_ctx *ctx, const char *path, json_t *input)
{
	struct stream s = {0};
	struct ctl_http_request req = {.method = "POST",
	                               .path = path,
	                               .accept = "text/event-stream",
	                               .on_chunk = stream_chunk,
	                               .user = &s,
	                               .stop = &interrupted};
	struct ctl_http_response resp;
	struct sigaction sa = {.sa_handler = on_interrupt}, old;
	json_t *body = json_pack("{s:O}", "input", input);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char err[MESSAGE_MAX];
	int rc;

	if (!text)
		abort();
	json_decref(body);
	req.body = text;
	req.body_len = strlen(text);
	s.sse = ctl_sse_new(stream_event, &s, 0);
	ctl_events_init(&s.events, stdout, ctx->json, isatty(STDOUT_FILENO));
	/* No SA_RESTART: Ctrl-C ends the client's poll at once. */
	interrupted = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	rc = ctl_http_request(ctx->http, &req, &resp, err, sizeof(err));
	sigaction(SIGINT, &old, NULL);
	free(text);
	ctl_sse_free(s.sse);
	ctl_events_end_line(&s.events);
	if (rc && interrupted) {
		fprintf(stderr, "agentctl: interrupted: the connection is closed, so the daemon "
		                "ends the call\n");
		return CTL_EXIT_INTERRUPTED;
	}
	if (rc) {
		fprintf(stderr, "agentctl: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	rc = stream_outcome(ctx, &s, path, &resp);
	ctl_http_response_free(&resp);
	return rc;
}

static int cmd_invoke(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[SEGMENT_MAX * 3 + 64];
	json_t *input;
	int rc;

	if ((rc = route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if ((rc = read_input(args, &input)))
		return rc;
	strcat(path, "/invoke");
	rc = stream_call(ctx, path, input);
	json_decref(input);
	return rc;
}

/* --- the table --------------------------------------------------------------------- */

static const struct ctl_option uninstall_options[] = {
    {"force", NULL, "destroy the sessions that use the agent first"},
    {NULL, NULL, NULL},
};

/* Later commands of DESIGN §7 (create, sessions, session, run, attach, cancel, destroy,
 * state, logs, config) are added here as they come; --help lists this table. */
const struct ctl_command ctl_commands[] = {
    {"install", "PATH", "install the agent in folder PATH (or PATH/agent.json)",
     "Validates the agent's manifest, copies its folder into the daemon's state folder,\n"
     "runs its install command and records it. PATH is made absolute here (the daemon\n"
     "reads it). Prints the name, version and installed copy; with --json, the agent\n"
     "as 'agentctl agent --json' shows it. Needs the admin token.",
     1, 1, NULL, cmd_install},
    {"uninstall", "NAME [--force]", "remove every version of agent NAME",
     "Refused (409) while sessions use the agent, unless --force, which destroys them\n"
     "first. Prints 'uninstalled NAME'. Needs the admin token.",
     1, 1, uninstall_options, cmd_uninstall},
    {"agents", "", "list the installed agents",
     "Prints one line per agent (its current version): NAME, VERSION, MODES, INSTALLED\n"
     "(UTC) and DESCRIPTION. Never starts an agent.",
     0, 0, NULL, cmd_agents},
    {"agent", "NAME", "show one installed agent and its manifest",
     "Prints 'key: value' lines: name, current version, every installed version,\n"
     "description, modes, install time, installed path, digest, then the manifest's main\n"
     "fields (entrypoint, content types, config, dependencies, sandbox, limits, session,\n"
     "invoke, install command). --json prints the whole answer, normalized manifest included.",
     1, 1, NULL, cmd_agent},
    {"invoke", "AGENT [JSON|-]", "call agent AGENT once, statelessly; stream its events",
     "Sends {\"input\": JSON} to AGENT as a stateless call and prints its events as they\n"
     "come: 'run.started RUN', each piece of output the agent emits (text as it is, other\n"
     "values as lines of JSON), then the final output. A failed or cancelled run prints\n"
     "'run failed: CODE: MESSAGE' on stderr and exits 1. --json prints every event as one\n"
     "line of JSON instead.\n"
     "The input is the JSON argument; '-' (or no argument while stdin is not a terminal)\n"
     "reads it from stdin. Text that does not start like JSON ({ [ \" - or a digit) is\n"
     "sent as a string (hello -> \"hello\"); nothing at all is null; invalid JSON is a\n"
     "usage error. Ctrl-C closes the connection, which ends the call, and exits 130.",
     1, 2, NULL, cmd_invoke},
    {"token create", "NAME", "create a client token named NAME",
     "Prints the new token's id, name and secret. The secret is shown only this once:\n"
     "the daemon keeps only its hash. Needs the admin token.",
     1, 1, NULL, cmd_token_create},
    {"token list", "", "list the tokens (never their secrets)",
     "Prints ID, NAME, ADMIN and CREATED (UTC) for every token. Needs the admin token.", 0, 0, NULL,
     cmd_token_list},
    {"token revoke", "ID", "revoke the token ID",
     "The token stops working at once. The admin token cannot be revoked (rotate it by\n"
     "stopping the daemon and deleting STATE/admin.token). Prints 'revoked token ID'.",
     1, 1, NULL, cmd_token_revoke},
    {"status", "", "check the daemon: reachable, version, token, counts",
     "Asks /healthz (no token needed), then counts agents (any token) and tokens (admin\n"
     "token). Prints daemon, reachable, health, version, token (admin, client, none or\n"
     "rejected, and where it came from), agents, tokens. Exit status 1 if the daemon\n"
     "cannot be reached or is not healthy, or refuses the token given.",
     0, 0, NULL, cmd_status},
};

const size_t ctl_commands_len = sizeof(ctl_commands) / sizeof(ctl_commands[0]);
