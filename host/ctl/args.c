/* args.c: agentctl's command-line parser (see args.h). Two steps: a scan that sorts the
 * words into options and positionals, then the command lookup, which decides which of the
 * options are the command's own and whether the positionals fit its usage. */
#include "args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct ctl_option ctl_global_options[] = {
    {"url", "URL", "daemon URL (default $AGENTHOST_URL, else http://127.0.0.1:8080)"},
    {"token", "TOKEN", "bearer token (default $AGENTHOST_TOKEN, else STATE/admin.token)"},
    {"state-dir", "DIR",
     "where admin.token is (default $AGENTHOST_STATE_DIR, ./var, /var/lib/agenthost)"},
    {"timeout", "SECONDS", "give up on a request after this long (default 300; 0: never)"},
    {"json", NULL, "print the daemon's JSON (pretty) instead of tables"},
    {"verbose", NULL, "show libwebsockets' own log lines on stderr"},
    {"help", NULL, "show this help, or a command's with COMMAND --help"},
    {"version", NULL, "print agentctl's version"},
    {NULL, NULL, NULL},
};

/* An option word seen before the command was known. */
struct raw_option {
	const char *name; /* points into argv, after "--"; name_len bytes long */
	size_t name_len;
	const char *value; /* NULL for none */
	bool inline_value; /* given as --name=value */
};

struct scan {
	const char *pos[CTL_MAX_ARGS + 2]; /* the command (and verb) and its arguments */
	int npos;
	struct raw_option opts[CTL_MAX_GIVEN];
	int nopts;
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncmp(name, want, len) == 0;
}

static const struct ctl_option *find_option(const struct ctl_option *opts, const char *name,
                                            size_t len)
{
	for (; opts && opts->name; opts++)
		if (name_is(name, len, opts->name))
			return opts;
	return NULL;
}

/* Whether any command's option of that name takes a value: the scan has to know it to
 * read "--opt VALUE" before it knows which command the line is for. */
static bool command_option_takes_value(const struct ctl_command *table, size_t n, const char *name,
                                       size_t len)
{
	for (size_t i = 0; i < n; i++) {
		const struct ctl_option *o = find_option(table[i].options, name, len);

		if (o && o->value)
			return true;
	}
	return false;
}

static void set_global(struct ctl_args *out, const char *name, const char *value)
{
	if (!strcmp(name, "url"))
		out->url = value;
	else if (!strcmp(name, "token"))
		out->token = value;
	else if (!strcmp(name, "state-dir"))
		out->state_dir = value;
	else if (!strcmp(name, "timeout"))
		out->timeout = value;
	else if (!strcmp(name, "json"))
		out->json = true;
	else if (!strcmp(name, "verbose"))
		out->verbose = true;
	else if (!strcmp(name, "help"))
		out->help = true;
	else if (!strcmp(name, "version"))
		out->version = true;
}

/* Reads one "--name[=value]" word (and its value word if it takes one) at argv[*i]. */
static int scan_option(int argc, char **argv, int *i, const struct ctl_command *table, size_t n,
                       struct ctl_args *out, struct scan *s, char *err, size_t errlen)
{
	const char *word = argv[*i], *name = word + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct ctl_option *g = find_option(ctl_global_options, name, len);
	bool takes_value = g ? g->value != NULL : command_option_takes_value(table, n, name, len);
	const char *value = eq ? eq + 1 : NULL;

	if (!takes_value && eq && g)
		return fail(err, errlen, "option --%.*s takes no value", (int)len, name);
	if (takes_value && !eq) {
		if (*i + 1 >= argc)
			return fail(err, errlen, "option --%.*s needs a value", (int)len, name);
		value = argv[++*i];
	}
	if (g) {
		char gname[32];

		snprintf(gname, sizeof(gname), "%.*s", (int)len, name);
		set_global(out, gname, value);
		return 0;
	}
	if (s->nopts == CTL_MAX_GIVEN)
		return fail(err, errlen, "too many options");
	s->opts[s->nopts++] = (struct raw_option){name, len, value, eq != NULL};
	return 0;
}

static int scan_words(int argc, char **argv, const struct ctl_command *table, size_t n,
                      struct ctl_args *out, struct scan *s, char *err, size_t errlen)
{
	bool options_ended = false;

	for (int i = 1; i < argc; i++) {
		const char *word = argv[i];

		if (!options_ended && !strcmp(word, "--")) {
			options_ended = true;
		} else if (!options_ended && !strcmp(word, "-h")) {
			out->help = true;
		} else if (!options_ended && word[0] == '-' && word[1] == '-') {
			if (scan_option(argc, argv, &i, table, n, out, s, err, errlen))
				return -1;
		} else if (!options_ended && word[0] == '-' && word[1] &&
		           !(word[1] >= '0' && word[1] <= '9')) {
			/* "-1" is no option but a negative number: JSON input to `invoke`. */
			return fail(err, errlen, "unknown option '%s'", word);
		} else {
			if (s->npos == (int)(sizeof(s->pos) / sizeof(s->pos[0])))
				return fail(err, errlen, "too many arguments");
			s->pos[s->npos++] = word;
		}
	}
	return 0;
}

/* Whether entry is `word` alone, or the group `word` with verb `verb`. */
static int match_command(const struct ctl_command *c, const char *word, const char *verb)
{
	const char *space = strchr(c->name, ' ');

	if (!space)
		return strcmp(c->name, word) == 0 ? 1 : 0;
	if (strlen(word) != (size_t)(space - c->name) || strncmp(c->name, word, strlen(word)))
		return 0;
	return verb && strcmp(space + 1, verb) == 0 ? 2 : 0;
}

bool ctl_args_is_group(const struct ctl_command *table, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (!strncmp(table[i].name, name, len) && table[i].name[len] == ' ')
			return true;
	return false;
}

/* "create, list, revoke": the verbs of a group, for its error messages. */
static void group_verbs(const struct ctl_command *table, size_t n, const char *group, char *buf,
                        size_t buflen)
{
	size_t len = strlen(group), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < buflen; i++)
		if (!strncmp(table[i].name, group, len) && table[i].name[len] == ' ')
			used += (size_t)snprintf(buf + used, buflen - used, "%s%s",
			                         used ? ", " : "", table[i].name + len + 1);
}

static int group_error(const struct ctl_command *table, size_t n, const struct scan *s, char *err,
                       size_t errlen)
{
	char verbs[128];

	group_verbs(table, n, s->pos[0], verbs, sizeof(verbs));
	if (s->npos == 1)
		return fail(err, errlen, "%s: missing subcommand (%s)", s->pos[0], verbs);
	return fail(err, errlen, "%s: unknown subcommand '%s' (%s)", s->pos[0], s->pos[1], verbs);
}

/* Finds the command of the positional words; sets *used to the words its name took. */
static int find_command(const struct ctl_command *table, size_t n, const struct scan *s,
                        struct ctl_args *out, int *used, char *err, size_t errlen)
{
	const char *verb = s->npos > 1 ? s->pos[1] : NULL;

	for (size_t i = 0; i < n; i++) {
		int m = match_command(&table[i], s->pos[0], verb);

		if (m) {
			out->command = &table[i];
			*used = m;
			return 0;
		}
	}
	if (!ctl_args_is_group(table, n, s->pos[0]))
		return fail(err, errlen, "unknown command '%s'", s->pos[0]);
	if (out->help && s->npos == 1) {
		out->group = s->pos[0];
		return 0;
	}
	return group_error(table, n, s, err, errlen);
}

static int assign_options(const struct scan *s, struct ctl_args *out, char *err, size_t errlen)
{
	const struct ctl_command *c = out->command;

	for (int i = 0; i < s->nopts; i++) {
		const struct raw_option *r = &s->opts[i];
		const struct ctl_option *o = find_option(c->options, r->name, r->name_len);

		if (!o)
			return fail(err, errlen, "%s: unknown option --%.*s", c->name,
			            (int)r->name_len, r->name);
		if (!o->value && r->inline_value)
			return fail(err, errlen, "option --%s takes no value", o->name);
		out->option_values[o - c->options] = o->value ? r->value : "";
		out->given[out->ngiven].index = (int)(o - c->options);
		out->given[out->ngiven++].value = o->value ? r->value : "";
	}
	return 0;
}

/* The i-th required argument's name in a usage string ("NAME [--force]" → NAME). */
static void usage_arg_name(const char *usage, int index, char *buf, size_t buflen)
{
	const char *p = usage;

	snprintf(buf, buflen, "ARG");
	while (*p) {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len && *p != '[' && *p != '-' && index-- == 0) {
			snprintf(buf, buflen, "%.*s", (int)len, p);
			return;
		}
		p += len;
	}
}

static int check_arity(const struct ctl_command *c, int nargs, char *err, size_t errlen)
{
	char name[64];

	if (nargs > c->max_args)
		return fail(err, errlen, "%s: too many arguments (usage: agentctl %s%s%s)", c->name,
		            c->name, *c->usage ? " " : "", c->usage);
	if (nargs < c->min_args) {
		usage_arg_name(c->usage, nargs, name, sizeof(name));
		return fail(err, errlen, "%s: missing argument %s (usage: agentctl %s %s)", c->name,
		            name, c->name, c->usage);
	}
	return 0;
}

/* `agentctl help [CMD]` is `agentctl [CMD] --help`: drop the word, keep the meaning. */
static void take_help_word(struct scan *s, struct ctl_args *out)
{
	if (!s->npos || strcmp(s->pos[0], "help"))
		return;
	out->help = true;
	memmove(s->pos, s->pos + 1, sizeof(s->pos[0]) * (size_t)(s->npos - 1));
	s->npos--;
}

int ctl_args_parse(int argc, char **argv, const struct ctl_command *table, size_t n,
                   struct ctl_args *out, char *err, size_t errlen)
{
	struct scan s = {0};
	int used = 0, nargs;

	memset(out, 0, sizeof(*out));
	if (scan_words(argc, argv, table, n, out, &s, err, errlen))
		return -1;
	take_help_word(&s, out);
	if (!s.npos) {
		if (s.nopts)
			return fail(err, errlen, "unknown option --%.*s", (int)s.opts[0].name_len,
			            s.opts[0].name);
		if (!out->help && !out->version)
			return fail(err, errlen, "missing command");
		return 0;
	}
	if (find_command(table, n, &s, out, &used, err, errlen))
		return -1;
	if (!out->command)
		return 0;
	if (assign_options(&s, out, err, errlen))
		return -1;
	nargs = s.npos - used;
	for (int i = 0; i < nargs && i < CTL_MAX_ARGS; i++)
		out->argv[out->argc++] = s.pos[used + i];
	if (out->help)
		return 0;
	return check_arity(out->command, nargs, err, errlen);
}

const char *ctl_args_option(const struct ctl_args *args, const char *name)
{
	const struct ctl_option *o;

	if (!args->command || !args->command->options)
		return NULL;
	o = find_option(args->command->options, name, strlen(name));
	return o ? args->option_values[o - args->command->options] : NULL;
}

const char *ctl_args_option_nth(const struct ctl_args *args, const char *name, int n)
{
	const struct ctl_option *o;

	if (!args->command || !args->command->options)
		return NULL;
	o = find_option(args->command->options, name, strlen(name));
	for (int i = 0; o && i < args->ngiven; i++)
		if (args->given[i].index == o - args->command->options && n-- == 0)
			return args->given[i].value;
	return NULL;
}
