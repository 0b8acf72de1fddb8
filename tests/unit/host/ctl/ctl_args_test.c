/* ctl_args_test.c: agentctl's command-line rules (host/ctl/args.c): options anywhere,
 * commands and groups from the table, arity, and the exact one-line errors. */
#include <stdarg.h>

#include "args.h"
#include "check.h"
#include "commands.h"

static char err[512];

/* Parses the words given (NULL-terminated) against table. */
static int parse_in(const struct ctl_command *table, size_t n, struct ctl_args *a, ...)
{
	char *argv[32] = {"agentctl"};
	int argc = 1;
	va_list ap;
	char *w;

	va_start(ap, a);
	while ((w = va_arg(ap, char *)) && argc < 31)
		argv[argc++] = w;
	va_end(ap);
	err[0] = '\0';
	return ctl_args_parse(argc, argv, table, n, a, err, sizeof(err));
}

#define PARSE(a, ...) parse_in(ctl_commands, ctl_commands_len, a, __VA_ARGS__, (char *)NULL)
#define PARSE_NOTHING(a) parse_in(ctl_commands, ctl_commands_len, a, (char *)NULL)

static const char *name_of(const struct ctl_args *a)
{
	return a->command ? a->command->name : "(none)";
}

static void test_plain_command(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "agents"), 0);
	CHECK_STR(name_of(&a), "agents");
	CHECK_INT(a.argc, 0);
	CHECK(!a.json && !a.help && !a.version && !a.url && !a.token);

	CHECK_INT(PARSE(&a, "agent", "echo"), 0);
	CHECK_STR(name_of(&a), "agent");
	CHECK_INT(a.argc, 1);
	CHECK_STR(a.argv[0], "echo");
}

static void test_global_options_anywhere(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "--json", "agents"), 0);
	CHECK(a.json);
	CHECK_INT(PARSE(&a, "agents", "--json"), 0);
	CHECK(a.json);
	CHECK_INT(PARSE(&a, "--url", "http://x:1", "agent", "echo", "--token", "T"), 0);
	CHECK_STR(a.url, "http://x:1");
	CHECK_STR(a.token, "T");
	CHECK_STR(a.argv[0], "echo");
	CHECK_INT(PARSE(&a, "agents", "--url=http://y", "--state-dir=/s", "--timeout", "5"), 0);
	CHECK_STR(a.url, "http://y");
	CHECK_STR(a.state_dir, "/s");
	CHECK_STR(a.timeout, "5");
	CHECK_INT(PARSE(&a, "token", "create", "ci", "--verbose"), 0);
	CHECK(a.verbose);
	CHECK_STR(name_of(&a), "token create");
	CHECK_STR(a.argv[0], "ci");
	/* A value that looks like an option is still the value. */
	CHECK_INT(PARSE(&a, "--token", "--json", "agents"), 0);
	CHECK_STR(a.token, "--json");
	CHECK(!a.json);
}

static void test_command_options(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "uninstall", "echo", "--force"), 0);
	CHECK_STR(ctl_args_option(&a, "force"), "");
	CHECK_INT(PARSE(&a, "--force", "uninstall", "echo"), 0);
	CHECK_STR(ctl_args_option(&a, "force"), "");
	CHECK_STR(a.argv[0], "echo");
	CHECK_INT(PARSE(&a, "uninstall", "echo"), 0);
	CHECK(ctl_args_option(&a, "force") == NULL);
	CHECK(ctl_args_option(&a, "nonsense") == NULL);

	CHECK_INT(PARSE(&a, "uninstall", "echo", "--force=yes"), -1);
	CHECK_STR(err, "option --force takes no value");
	CHECK_INT(PARSE(&a, "agents", "--force"), -1);
	CHECK_STR(err, "agents: unknown option --force");
	CHECK_INT(PARSE(&a, "--bogus", "agents"), -1);
	CHECK_STR(err, "agents: unknown option --bogus");
	CHECK_INT(PARSE(&a, "--json=1", "agents"), -1);
	CHECK_STR(err, "option --json takes no value");
}

/* A table with an option that takes a value, as later commands will have. */
static const struct ctl_option run_options[] = {
    {"wait", "SECONDS", "how long"},
    {"quiet", NULL, "less"},
    {NULL, NULL, NULL},
};
static const struct ctl_command run_table[] = {
    {"run", "ID [JSON]", "run", "runs", 1, 2, run_options, NULL},
    {"state", "ID [KEY [VALUE]]", "state", "state", 1, 3, NULL, NULL},
};
#define RUN_PARSE(a, ...) parse_in(run_table, 2, a, __VA_ARGS__, (char *)NULL)

static void test_option_values(void)
{
	struct ctl_args a;

	CHECK_INT(RUN_PARSE(&a, "--wait", "5", "run", "s_1"), 0);
	CHECK_STR(ctl_args_option(&a, "wait"), "5");
	CHECK_INT(a.argc, 1);
	CHECK_STR(a.argv[0], "s_1");
	CHECK_INT(RUN_PARSE(&a, "run", "s_1", "--wait=7", "{}", "--quiet"), 0);
	CHECK_STR(ctl_args_option(&a, "wait"), "7");
	CHECK_STR(ctl_args_option(&a, "quiet"), "");
	CHECK_STR(a.argv[1], "{}");
	CHECK_INT(RUN_PARSE(&a, "run", "s_1", "--wait"), -1);
	CHECK_STR(err, "option --wait needs a value");
	CHECK_INT(RUN_PARSE(&a, "state", "s_1", "--wait", "3"), -1);
	CHECK_STR(err, "state: unknown option --wait");
	/* "-" is an argument (stdin), and "--" ends the options. */
	CHECK_INT(RUN_PARSE(&a, "run", "s_1", "-"), 0);
	CHECK_STR(a.argv[1], "-");
	CHECK_INT(RUN_PARSE(&a, "state", "s_1", "--", "--key", "-v"), 0);
	CHECK_INT(a.argc, 3);
	CHECK_STR(a.argv[1], "--key");
	CHECK_STR(a.argv[2], "-v");
	CHECK_INT(RUN_PARSE(&a, "state"), -1);
	CHECK_STR(err, "state: missing argument ID (usage: agentctl state ID [KEY [VALUE]])");
}

static void test_arity(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "agent"), -1);
	CHECK_STR(err, "agent: missing argument NAME (usage: agentctl agent NAME)");
	CHECK_INT(PARSE(&a, "uninstall"), -1);
	CHECK_STR(err,
	          "uninstall: missing argument NAME (usage: agentctl uninstall NAME [--force])");
	CHECK_INT(PARSE(&a, "agent", "a", "b"), -1);
	CHECK_STR(err, "agent: too many arguments (usage: agentctl agent NAME)");
	CHECK_INT(PARSE(&a, "agents", "x"), -1);
	CHECK_STR(err, "agents: too many arguments (usage: agentctl agents)");
	CHECK_INT(PARSE(&a, "token", "revoke"), -1);
	CHECK_STR(err, "token revoke: missing argument ID (usage: agentctl token revoke ID)");
	CHECK_INT(PARSE(&a, "agent", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"), -1);
	CHECK_STR(err, "too many arguments");
}

static void test_unknown_and_missing(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE_NOTHING(&a), -1);
	CHECK_STR(err, "missing command");
	CHECK_INT(PARSE(&a, "--json"), -1);
	CHECK_STR(err, "missing command");
	CHECK_INT(PARSE(&a, "instal", "x"), -1);
	CHECK_STR(err, "unknown command 'instal'");
	CHECK_INT(PARSE(&a, "-x", "agents"), -1);
	CHECK_STR(err, "unknown option '-x'");
	CHECK_INT(PARSE(&a, "--url"), -1);
	CHECK_STR(err, "option --url needs a value");
	CHECK_INT(PARSE(&a, "--force"), -1);
	CHECK_STR(err, "unknown option --force");
	CHECK_INT(PARSE(&a, "token"), -1);
	CHECK_STR(err, "token: missing subcommand (create, list, revoke)");
	CHECK_INT(PARSE(&a, "token", "frob"), -1);
	CHECK_STR(err, "token: unknown subcommand 'frob' (create, list, revoke)");
	/* A group's verb alone is not the group's command: "create" is the session one. */
	CHECK_INT(PARSE(&a, "revoke", "x"), -1);
	CHECK_STR(err, "unknown command 'revoke'");
	CHECK_INT(PARSE(&a, "create", "x"), 0);
	CHECK_STR(name_of(&a), "create");
}

static void test_help_and_version(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "--help"), 0);
	CHECK(a.help && !a.command);
	CHECK_INT(PARSE(&a, "-h"), 0);
	CHECK(a.help);
	CHECK_INT(PARSE(&a, "help"), 0);
	CHECK(a.help && !a.command);
	/* Help is never a usage error, whatever the arguments. */
	CHECK_INT(PARSE(&a, "agent", "--help"), 0);
	CHECK(a.help);
	CHECK_STR(name_of(&a), "agent");
	CHECK_INT(PARSE(&a, "help", "agent"), 0);
	CHECK(a.help);
	CHECK_STR(name_of(&a), "agent");
	CHECK_INT(PARSE(&a, "--help", "token", "create"), 0);
	CHECK_STR(name_of(&a), "token create");
	CHECK_INT(PARSE(&a, "token", "--help"), 0);
	CHECK(a.help && !a.command);
	CHECK_STR(a.group, "token");
	CHECK_INT(PARSE(&a, "--version"), 0);
	CHECK(a.version && !a.command);
	CHECK_INT(PARSE(&a, "help", "nope"), -1);
	CHECK_STR(err, "unknown command 'nope'");
}

/* invoke AGENT [JSON|-]: the input is one word, whatever it looks like. */
static void test_invoke(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "invoke", "echo"), 0);
	CHECK_STR(name_of(&a), "invoke");
	CHECK_INT(a.argc, 1);
	CHECK_INT(PARSE(&a, "invoke", "echo", "{\"a\": [1, 2]}", "--json"), 0);
	CHECK_INT(a.argc, 2);
	CHECK_STR(a.argv[1], "{\"a\": [1, 2]}");
	CHECK(a.json);
	CHECK_INT(PARSE(&a, "invoke", "echo", "-"), 0);
	CHECK_STR(a.argv[1], "-");
	/* A negative number is JSON, not an option; "--" lets any word through. */
	CHECK_INT(PARSE(&a, "invoke", "calc", "-1.5"), 0);
	CHECK_STR(a.argv[1], "-1.5");
	CHECK_INT(PARSE(&a, "invoke", "echo", "--", "--json"), 0);
	CHECK_STR(a.argv[1], "--json");
	CHECK(!a.json);
	CHECK_INT(PARSE(&a, "invoke", "echo", "-x"), -1);
	CHECK_STR(err, "unknown option '-x'");
	CHECK_INT(PARSE(&a, "invoke"), -1);
	CHECK_STR(err, "invoke: missing argument AGENT (usage: agentctl invoke AGENT [JSON|-])");
	CHECK_INT(PARSE(&a, "invoke", "echo", "1", "2"), -1);
	CHECK_STR(err, "invoke: too many arguments (usage: agentctl invoke AGENT [JSON|-])");
}

/* An option given several times: the last is its value, and each can be had in turn. */
static void test_repeated_options(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "create", "counter", "--config", "A=1", "--json", "--config=B=2=3"), 0);
	CHECK_STR(name_of(&a), "create");
	CHECK_INT(a.argc, 1);
	CHECK(a.json);
	CHECK_STR(ctl_args_option(&a, "config"), "B=2=3");
	CHECK_STR(ctl_args_option_nth(&a, "config", 0), "A=1");
	CHECK_STR(ctl_args_option_nth(&a, "config", 1), "B=2=3");
	CHECK(ctl_args_option_nth(&a, "config", 2) == NULL);
	CHECK(ctl_args_option_nth(&a, "nonsense", 0) == NULL);
	CHECK_INT(PARSE(&a, "create", "counter"), 0);
	CHECK(ctl_args_option_nth(&a, "config", 0) == NULL);
	CHECK_INT(PARSE(&a, "create", "counter", "--config"), -1);
	CHECK_STR(err, "option --config needs a value");
	/* Up to CTL_MAX_GIVEN option words on a line. */
	{
		char *argv[3 + 2 * (CTL_MAX_GIVEN + 1)] = {"agentctl", "create"};
		int argc = 2;

		for (int i = 0; i < CTL_MAX_GIVEN; i++) {
			argv[argc++] = "--config";
			argv[argc++] = "K=V";
		}
		argv[argc++] = "counter";
		CHECK_INT(ctl_args_parse(argc, argv, ctl_commands, ctl_commands_len, &a, err,
		                         sizeof(err)),
		          0);
		CHECK_STR(ctl_args_option_nth(&a, "config", CTL_MAX_GIVEN - 1), "K=V");
		argv[argc - 1] = "--config";
		argv[argc++] = "K=V";
		argv[argc++] = "counter";
		CHECK_INT(ctl_args_parse(argc, argv, ctl_commands, ctl_commands_len, &a, err,
		                         sizeof(err)),
		          -1);
		CHECK_STR(err, "too many options");
	}
}

/* The session commands of DESIGN §7: their arity, options and one-line errors. */
static void test_session_commands(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "sessions", "--all"), 0);
	CHECK_STR(ctl_args_option(&a, "all"), "");
	CHECK_INT(PARSE(&a, "sessions", "--all=1"), -1);
	CHECK_STR(err, "option --all takes no value");
	CHECK_INT(PARSE(&a, "session"), -1);
	CHECK_STR(err, "session: missing argument ID (usage: agentctl session ID)");
	CHECK_INT(PARSE(&a, "run", "s_1", "{}"), 0);
	CHECK_STR(name_of(&a), "run");
	CHECK_STR(a.argv[1], "{}");
	CHECK_INT(PARSE(&a, "run", "s_1", "-5"), 0);
	CHECK_STR(a.argv[1], "-5");
	CHECK_INT(PARSE(&a, "run", "s_1", "1", "2"), -1);
	CHECK_STR(err, "run: too many arguments (usage: agentctl run ID [JSON|-])");
	CHECK_INT(PARSE(&a, "cancel", "s_1"), -1);
	CHECK_STR(err, "cancel: missing argument RUN (usage: agentctl cancel ID RUN)");
	CHECK_INT(PARSE(&a, "destroy", "s_1", "s_2"), -1);
	CHECK_STR(err, "destroy: too many arguments (usage: agentctl destroy ID)");
	CHECK_INT(PARSE(&a, "state", "s_1", "k", "--delete"), 0);
	CHECK_STR(ctl_args_option(&a, "delete"), "");
	CHECK_INT(PARSE(&a, "state", "s_1", "k", "v", "w"), -1);
	CHECK_STR(err, "state: too many arguments (usage: agentctl state ID [KEY [VALUE]] "
	               "[--delete])");
	CHECK_INT(PARSE(&a, "state", "s_1", "k", "--", "--delete"), 0);
	CHECK_STR(a.argv[2], "--delete");
	CHECK(ctl_args_option(&a, "delete") == NULL);
	CHECK_INT(PARSE(&a, "logs", "s_1", "--bytes", "100"), 0);
	CHECK_STR(ctl_args_option(&a, "bytes"), "100");
	CHECK_INT(PARSE(&a, "attach", "s_1", "--after=7"), 0);
	CHECK_STR(ctl_args_option(&a, "after"), "7");
	CHECK_INT(PARSE(&a, "attach"), -1);
	CHECK_STR(err, "attach: missing argument ID (usage: agentctl attach ID [--after SEQ])");
	CHECK_INT(PARSE(&a, "attach", "s_1", "--all"), -1);
	CHECK_STR(err, "attach: unknown option --all");
	CHECK_INT(PARSE(&a, "config", "echo", "K", "V"), 0);
	CHECK_STR(name_of(&a), "config");
	CHECK_INT(a.argc, 3);
	CHECK_INT(PARSE(&a, "config"), -1);
	CHECK_STR(err, "config: missing argument AGENT (usage: agentctl config AGENT [KEY [VALUE]] "
	               "[--delete])");
}

/* The table itself: what the parser and --help rely on. */
static void test_table(void)
{
	for (size_t i = 0; i < ctl_commands_len; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		int nopts = 0;

		CHECK(c->name && c->usage && c->summary && c->help && c->exec);
		CHECK(c->min_args <= c->max_args && c->max_args <= CTL_MAX_ARGS);
		for (const struct ctl_option *o = c->options; o && o->name; o++)
			nopts++;
		CHECK(nopts <= CTL_MAX_OPTIONS);
		for (size_t j = i + 1; j < ctl_commands_len; j++)
			CHECK(strcmp(c->name, ctl_commands[j].name) != 0);
	}
	CHECK(ctl_args_is_group(ctl_commands, ctl_commands_len, "token"));
	CHECK(!ctl_args_is_group(ctl_commands, ctl_commands_len, "tok"));
	CHECK(!ctl_args_is_group(ctl_commands, ctl_commands_len, "agents"));
}

int main(void)
{
	test_plain_command();
	test_global_options_anywhere();
	test_command_options();
	test_option_values();
	test_arity();
	test_unknown_and_missing();
	test_help_and_version();
	test_invoke();
	test_repeated_options();
	test_session_commands();
	test_table();
	return check_summary();
}
