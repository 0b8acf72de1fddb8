/* commands.c: agentctl's commands, one exec function each, and the table that names them
 * (see commands.h). A command builds its route, calls the daemon through ctl_call(), and
 * prints the answer: a table for people, the daemon's own JSON with --json. The session
 * commands are in sessions.c, attach in attach.c. */
#include "commands.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "call.h"
#include "kv.h"
#include "output.h"
#include "sessions.h"
#include "stream.h"

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

/* --- install, uninstall ----------------------------------------------------------- */

static void print_installed(const json_t *agent)
{
	printf("installed %s %s (%s)\n", ctl_str(agent, "name"), ctl_str(agent, "version"),
	       ctl_str(agent, "path"));
}

static int cmd_install(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[PATH_MAX];
	struct ctl_answer a;
	json_t *body;
	int rc;

	/* The daemon reads the path itself, from its own working folder: make it absolute. */
	if (!realpath(args->argv[0], path)) {
		fprintf(stderr, "agentctl: install: %s: %s\n", args->argv[0], strerror(errno));
		return CTL_EXIT_FAIL;
	}
	body = json_pack("{s:s}", "path", path);
	rc = ctl_call(ctx, "POST", "/v1/agents", body, &a);
	json_decref(body);
	return rc ? rc : ctl_show(ctx, &a, print_installed);
}

static int cmd_uninstall(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;
	int rc;

	if ((rc = ctl_route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if (ctl_args_option(args, "force"))
		strcat(path, "?force=true");
	if (ctl_call(ctx, "DELETE", path, NULL, &a))
		return CTL_EXIT_FAIL;
	if (!ctx->json)
		printf("uninstalled %s\n", args->argv[0]);
	json_decref(a.json);
	return CTL_EXIT_OK;
}

/* --- backup ------------------------------------------------------------------------ */

static void print_backup(const json_t *root)
{
	printf("backed up to %s (%" JSON_INTEGER_FORMAT " bytes in %" JSON_INTEGER_FORMAT " ms)\n",
	       ctl_str(root, "path"), json_integer_value(json_object_get(root, "bytes")),
	       json_integer_value(json_object_get(root, "took_ms")));
}

/* FILE made absolute without requiring it to exist (it must not): a relative one is
 * joined to its folder's realpath when that folder exists here, else to the working
 * folder; the daemon reports a folder it cannot use. */
static int backup_path(const char *file, char *out, size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(file, '/');
	int n;

	if (file[0] == '/') {
		n = snprintf(out, len, "%s", file);
	} else {
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) : 1,
		         slash ? file : ".");
		if (realpath(dir, real))
			n = snprintf(out, len, "%s/%s", strcmp(real, "/") ? real : "",
			             slash ? slash + 1 : file);
		else if (getcwd(real, sizeof(real)))
			n = snprintf(out, len, "%s/%s", real, file);
		else
			return -1;
	}
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int cmd_backup(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[PATH_MAX];
	struct ctl_answer a;
	json_t *body;
	int rc;

	/* The daemon writes the file itself, from its own working folder. */
	if (backup_path(args->argv[0], path, sizeof(path)) < 0) {
		fprintf(stderr, "agentctl: backup: %s: %s\n", args->argv[0], strerror(errno));
		return CTL_EXIT_FAIL;
	}
	body = json_pack("{s:s}", "path", path);
	rc = ctl_call(ctx, "POST", "/v1/backup", body, &a);
	json_decref(body);
	return rc ? rc : ctl_show(ctx, &a, print_backup);
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
		    ctl_str(agent, "name"), ctl_str(agent, "version"),
		    ctl_join(json_object_get(agent, "modes"), ",", modes, sizeof(modes)),
		    ctl_time_of(agent, "installed_at", installed, sizeof(installed)),
		    ctl_str(agent, "description")};

		ctl_table_add_row(t, row);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

static int cmd_agents(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct ctl_answer a;

	(void)args;
	if (ctl_call(ctx, "GET", "/v1/agents", NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_agents);
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
			                         used ? ", " : "", ctl_str(c, "name"),
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
			used +=
			    (size_t)snprintf(buf + used, len - used, "%s%s %s", used ? ", " : "",
			                     ctl_str(d, "type"), ctl_str(d, "name"));
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
			                         used ? ", " : "", ctl_str(p, "path"),
			                         ctl_str(p, "mode"));
	}
	snprintf(buf, len, "seccomp %s, network %s%s%s", ctl_str(sandbox, "seccomp"),
	         json_is_true(json_object_get(sandbox, "network")) ? "on" : "off",
	         paths[0] ? ", paths " : "", paths);
	if (json_array_size(json_object_get(sandbox, "allow_syscalls"))) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, ", also allows ");
		n = strlen(buf);
		ctl_join(json_object_get(sandbox, "allow_syscalls"), ",", buf + n, len - n);
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
	snprintf(buf, len, "%s isolation, %" JSON_INTEGER_FORMAT " workers",
	         ctl_str(inv, "isolation"), num(inv, "workers"));
	return buf;
}

/* "license MIT, author X, tags a,b": the metadata worth a glance. */
static const char *describe_metadata(const json_t *meta, char *buf, size_t len)
{
	char tags[256];

	snprintf(buf, len, "license %s, author %s, tags %s", ctl_str(meta, "license"),
	         ctl_str(meta, "author"),
	         ctl_join(json_object_get(meta, "tags"), ",", tags, sizeof(tags)));
	return buf;
}

typedef const char *(*describe_fn)(const json_t *field, char *buf, size_t len);

static const char *describe_list(const json_t *a, char *buf, size_t len)
{
	return ctl_join(a, ", ", buf, len);
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

	ctl_table_add_kv(t, "name", ctl_str(agent, "name"));
	ctl_table_add_kv(t, "version", ctl_str(agent, "version"));
	ctl_table_add_kv(t, "versions",
	                 ctl_join(json_object_get(agent, "versions"), ", ", buf, sizeof(buf)));
	ctl_table_add_kv(t, "description", ctl_str(agent, "description"));
	ctl_table_add_kv(t, "modes",
	                 ctl_join(json_object_get(agent, "modes"), ", ", buf, sizeof(buf)));
	ctl_table_add_kv(t, "installed",
	                 ctl_time_of(agent, "installed_at", installed, sizeof(installed)));
	ctl_table_add_kv(t, "path", ctl_str(agent, "path"));
	ctl_table_add_kv(t, "digest", ctl_str(agent, "digest"));
	add_manifest_rows(t, json_object_get(agent, "manifest"));
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
}

static int cmd_agent(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;
	int rc;

	if ((rc = ctl_route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if (ctl_call(ctx, "GET", path, NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_agent);
}

/* --- token create, list, revoke ---------------------------------------------------- */

static void print_token_created(const json_t *token)
{
	struct ctl_table *t = ctl_table_new(2, NULL);

	ctl_table_add_kv(t, "id", ctl_str(token, "id"));
	ctl_table_add_kv(t, "name", ctl_str(token, "name"));
	ctl_table_add_kv(t, "token", ctl_str(token, "token"));
	ctl_table_print(t, stdout, false);
	ctl_table_free(t);
	fflush(stdout);
	fprintf(stderr, "note: save the token now: it is shown only this once (the daemon "
	                "keeps only its hash)\n");
}

static int cmd_token_create(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	json_t *body = json_pack("{s:s}", "name", args->argv[0]);
	struct ctl_answer a;
	int rc;

	rc = ctl_call(ctx, "POST", "/v1/tokens", body, &a);
	json_decref(body);
	return rc ? rc : ctl_show(ctx, &a, print_token_created);
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
		const char *row[] = {ctl_str(token, "id"), ctl_str(token, "name"),
		                     json_is_true(json_object_get(token, "admin")) ? "yes" : "no",
		                     ctl_time_of(token, "created_at", created, sizeof(created))};

		ctl_table_add_row(t, row);
	}
	ctl_table_print(t, stdout, true);
	ctl_table_free(t);
}

static int cmd_token_list(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	struct ctl_answer a;

	(void)args;
	if (ctl_call(ctx, "GET", "/v1/tokens", NULL, &a))
		return CTL_EXIT_FAIL;
	return ctl_show(ctx, &a, print_tokens);
}

static int cmd_token_revoke(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	struct ctl_answer a;
	int rc;

	if ((rc = ctl_route(path, sizeof(path), "/v1/tokens", args->argv[0], "token", "ID")))
		return rc;
	if (ctl_call(ctx, "DELETE", path, NULL, &a))
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
	char token_note[CTL_MESSAGE_MAX + PATH_MAX];
	json_int_t agents, tokens;
	char error[CTL_MESSAGE_MAX];
};

static void probe_health(struct ctl_ctx *ctx, struct status *st)
{
	struct ctl_answer a;

	if (ctl_request(ctx, "GET", "/healthz", NULL, true, &a)) {
		st->reachable = a.status != 0;
		snprintf(st->error, sizeof(st->error), "%s", a.error);
		json_decref(a.json);
		return;
	}
	st->reachable = st->healthy = true;
	snprintf(st->version, sizeof(st->version), "%s", ctl_str(a.json, "version"));
	json_decref(a.json);
}

static json_int_t count(const json_t *root, const char *key)
{
	return (json_int_t)json_array_size(json_object_get(root, key));
}

/* The agents count tells whether the token works; the tokens count whether it is admin. */
static void probe_token(struct ctl_ctx *ctx, struct status *st)
{
	struct ctl_answer a;

	st->token_kind = ctx->cfg.token ? "unknown" : "none";
	snprintf(st->token_note, sizeof(st->token_note), "%s", ctx->cfg.token_source);
	if (ctl_request(ctx, "GET", "/v1/agents", NULL, false, &a)) {
		if (a.status == 401 && ctx->cfg.token)
			st->token_kind = "rejected";
		if (ctx->cfg.token || a.status != 401)
			snprintf(st->token_note, sizeof(st->token_note), "%s", a.error);
		json_decref(a.json);
		return;
	}
	st->agents = count(a.json, "agents");
	json_decref(a.json);
	if (ctl_request(ctx, "GET", "/v1/tokens", NULL, false, &a)) {
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
	char buf[CTL_MESSAGE_MAX + PATH_MAX + 64], n1[32], n2[32];

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

static int cmd_invoke(struct ctl_ctx *ctx, const struct ctl_args *args)
{
	char path[CTL_PATH_MAX];
	json_t *input;
	int rc;

	if ((rc = ctl_route(path, sizeof(path), "/v1/agents", args->argv[0], "agent", "name")))
		return rc;
	if ((rc = ctl_read_input(args, 1, &input)))
		return rc;
	strcat(path, "/invoke");
	rc = ctl_stream_run(ctx, path, input, NULL);
	json_decref(input);
	return rc;
}

/* --- the table --------------------------------------------------------------------- */

static const struct ctl_option uninstall_options[] = {
    {"force", NULL, "destroy the sessions that use the agent first"},
    {NULL, NULL, NULL},
};

static const struct ctl_option create_options[] = {
    {"config", "KEY=VALUE", "a config value of this session (may be given several times)"},
    {NULL, NULL, NULL},
};

static const struct ctl_option sessions_options[] = {
    {"all", NULL, "every client's sessions (needs the admin token)"},
    {NULL, NULL, NULL},
};

static const struct ctl_option attach_options[] = {
    {"after", "SEQ", "print the session's events after SEQ (default 0: all the log holds)"},
    {NULL, NULL, NULL},
};

static const struct ctl_option kv_options[] = {
    {"delete", NULL, "delete KEY"},
    {NULL, NULL, NULL},
};

static const struct ctl_option logs_options[] = {
    {"bytes", "N", "the last N bytes (default 65536; the daemon keeps at most 1 MiB)"},
    {NULL, NULL, NULL},
};

/* The commands of DESIGN §7; --help lists this table, in this order. */
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
    {"config", "AGENT [KEY [VALUE]] [--delete]", "show or set the operator's config of agent AGENT",
     "Without KEY, prints every config value set for AGENT (KEY, VALUE; a secret shows as\n"
     "'(secret)'); with KEY, its value alone. KEY VALUE sets it (a string, taken as it is);\n"
     "KEY --delete unsets it. Values reach the agent's new processes as environment\n"
     "variables; a session's own --config (create) overrides them. Needs the admin token.",
     1, 3, kv_options, ctl_cmd_config},
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
    {"create", "AGENT [--config KEY=VALUE]...", "start a session of agent AGENT",
     "Spawns the agent and waits for it to be ready, then prints the new session's ID alone\n"
     "on its line (ID=$(agentctl create counter) keeps it); --json prints the session.\n"
     "--config KEY=VALUE (several may be given) sets a config value the manifest declares\n"
     "(not a secret one) for this session only.",
     1, 1, create_options, ctl_cmd_create},
    {"sessions", "[--all]", "list your sessions",
     "Prints ID, AGENT, VERSION, STATE, RUNS and LAST ACTIVE (UTC) for each session of the\n"
     "token; --all lists every client's (admin token).",
     0, 0, sessions_options, ctl_cmd_sessions},
    {"session", "ID", "show one session",
     "Prints 'key: value' lines: id, agent, version, state (ready, running, hibernated,\n"
     "crashed, failed), runs, queued runs, active run, last seq (of its event log), created\n"
     "and last active (UTC).",
     1, 1, NULL, ctl_cmd_session},
    {"run", "ID [JSON|-]", "run session ID once; stream the run's events",
     "Sends {\"input\": JSON} as a run of session ID (queued behind its other runs) and\n"
     "prints its events as 'agentctl invoke' does: 'run.started RUN', the pieces of output,\n"
     "then the final output. A failed or cancelled run prints 'run failed: CODE: MESSAGE' on\n"
     "stderr and exits 1. --json prints every event as one line of JSON. The input follows\n"
     "invoke's rules ('-' or a pipe: stdin; plain text: a string). Ctrl-C asks the daemon\n"
     "to cancel the run and exits 130 (a session's run does not end with its client).",
     1, 2, NULL, ctl_cmd_run},
    {"attach", "ID [--after SEQ]", "work in session ID interactively, over WebSocket",
     "Each line typed (or piped) is a run's input, sent when the previous one has ended\n"
     "(JSON, or text sent as a string; blank lines are skipped); the session's events print\n"
     "as they stream, as 'agentctl run' prints them, from the first the log holds (or after\n"
     "--after SEQ). Ctrl-C cancels the run in progress; a second Ctrl-C detaches (exit 130).\n"
     "End of input (Ctrl-D) detaches once the runs it started have ended, and exits 0: the\n"
     "session lives on. A dropped connection is made again (for about 26 s) and resumed\n"
     "after the last event printed. Exit 1 if the session does not exist or the token is\n"
     "refused.",
     1, 1, attach_options, ctl_cmd_attach},
    {"cancel", "ID RUN", "cancel run RUN of session ID",
     "A queued run ends 'cancelled' at once; a running one once its agent stopped (it is\n"
     "killed after 5 s). Prints 'cancelling run RUN'.",
     2, 2, NULL, ctl_cmd_cancel},
    {"destroy", "ID", "destroy session ID",
     "Stops its agent and deletes its state, events, runs and logs; the ID is then unknown.\n"
     "Prints 'destroyed ID'.",
     1, 1, NULL, ctl_cmd_destroy},
    {"state", "ID [KEY [VALUE]] [--delete]", "show or set session ID's key-value state",
     "Without KEY, prints every key and its value (compact JSON); with KEY, its value alone\n"
     "(a string as it is, anything else as JSON). KEY VALUE sets it: VALUE is taken as\n"
     "run inputs are (JSON, or text as a string; '-' reads stdin). KEY --delete deletes\n"
     "it. Prints 'set KEY' or 'deleted KEY'.",
     1, 3, kv_options, ctl_cmd_state},
    {"logs", "ID [--bytes N]", "print what session ID's agent wrote to stdout and stderr",
     "Prints the end of the agent's log (the last 64 KiB, or --bytes N) as it is, raw.", 1, 1,
     logs_options, ctl_cmd_logs},
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
    {"backup", "FILE", "copy the daemon's database, live, into the new file FILE",
     "Asks the daemon for an online backup of its SQLite database (sessions, their state,\n"
     "events and runs, agents, tokens, config): a consistent copy as of one moment, taken\n"
     "while the daemon goes on serving. FILE must not exist; it is written by the daemon,\n"
     "on its machine (a relative FILE is made absolute here), mode 0600. Prints the file,\n"
     "its size and how long the copy took; --json the daemon's answer. Installed agents'\n"
     "folders (STATE/agents) are not in it: see docs/operations.md. Needs the admin token.",
     1, 1, NULL, cmd_backup},
    {"status", "", "check the daemon: reachable, version, token, counts",
     "Asks /healthz (no token needed), then counts agents (any token) and tokens (admin\n"
     "token). Prints daemon, reachable, health, version, token (admin, client, none or\n"
     "rejected, and where it came from), agents, tokens. Exit status 1 if the daemon\n"
     "cannot be reached or is not healthy, or refuses the token given.",
     0, 0, NULL, cmd_status},
};

const size_t ctl_commands_len = sizeof(ctl_commands) / sizeof(ctl_commands[0]);
