/* ctl_sessions_test.c: the argument rules of agentctl's session commands: create's
 * --config KEY=VALUE options (host/ctl/sessions.c) and the action of the KEY [VALUE]
 * commands state and config, with --delete (host/ctl/kv.c). */
#include <stdarg.h>
#include <stdlib.h>

#include "check.h"
#include "commands.h"
#include "kv.h"
#include "sessions.h"

static char err[512];

static int parse(struct ctl_args *a, ...)
{
	char *argv[32] = {"agentctl"};
	int argc = 1;
	va_list ap;
	char *w;

	va_start(ap, a);
	while ((w = va_arg(ap, char *)) && argc < 31)
		argv[argc++] = w;
	va_end(ap);
	return ctl_args_parse(argc, argv, ctl_commands, ctl_commands_len, a, err, sizeof(err));
}

#define PARSE(a, ...) parse(a, __VA_ARGS__, (char *)NULL)

/* create's config as compact JSON, "(none)", or "ERROR: <message>". */
static const char *config_of(const struct ctl_args *a)
{
	static char out[512];
	json_t *config = NULL;
	char *text;

	err[0] = '\0';
	if (ctl_create_config(a, &config, err, sizeof(err))) {
		CHECK(config == NULL);
		snprintf(out, sizeof(out), "ERROR: %s", err);
		return out;
	}
	if (!config)
		return "(none)";
	text = json_dumps(config, JSON_COMPACT | JSON_PRESERVE_ORDER);
	snprintf(out, sizeof(out), "%s", text);
	free(text);
	json_decref(config);
	return out;
}

static void test_create_config(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "create", "echo"), 0);
	CHECK_STR(config_of(&a), "(none)");
	CHECK_INT(PARSE(&a, "create", "echo", "--config", "GREETING=hi there", "--config", "N=1"),
	          0);
	CHECK_STR(config_of(&a), "{\"GREETING\":\"hi there\",\"N\":\"1\"}");
	/* The first '=' splits; the value may hold more, or be empty; the last of a key wins. */
	CHECK_INT(
	    PARSE(&a, "create", "echo", "--config=URL=a=b", "--config", "E=", "--config", "URL=c"),
	    0);
	CHECK_STR(config_of(&a), "{\"URL\":\"c\",\"E\":\"\"}");
	CHECK_INT(PARSE(&a, "create", "echo", "--config", "A=1", "--config", "nokey"), 0);
	CHECK_STR(config_of(&a), "ERROR: create: --config wants KEY=VALUE, not 'nokey'");
	CHECK_INT(PARSE(&a, "create", "echo", "--config", "=v"), 0);
	CHECK_STR(config_of(&a), "ERROR: create: --config wants KEY=VALUE, not '=v'");
	CHECK_INT(PARSE(&a, "create", "echo", "--config", "K=\xff"), 0);
	CHECK_STR(config_of(&a), "ERROR: create: --config K: the value is not UTF-8 text");
}

/* The action of state/config, or -1 with err. */
static int action_of(struct ctl_args *a)
{
	enum ctl_kv_action act = (enum ctl_kv_action) - 1;

	err[0] = '\0';
	return ctl_kv_action(a, &act, err, sizeof(err)) ? -1 : (int)act;
}

static void test_kv_action(void)
{
	struct ctl_args a;

	CHECK_INT(PARSE(&a, "state", "s_1"), 0);
	CHECK_INT(action_of(&a), CTL_KV_LIST);
	CHECK_INT(PARSE(&a, "state", "s_1", "count"), 0);
	CHECK_INT(action_of(&a), CTL_KV_GET);
	CHECK_INT(PARSE(&a, "state", "s_1", "count", "5"), 0);
	CHECK_INT(action_of(&a), CTL_KV_SET);
	CHECK_INT(PARSE(&a, "state", "s_1", "count", "--delete"), 0);
	CHECK_INT(action_of(&a), CTL_KV_DELETE);
	CHECK_INT(PARSE(&a, "--delete", "state", "s_1", "count"), 0);
	CHECK_INT(action_of(&a), CTL_KV_DELETE);
	CHECK_INT(PARSE(&a, "state", "s_1", "--delete"), 0);
	CHECK_INT(action_of(&a), -1);
	CHECK_STR(err, "state: --delete takes a KEY and no VALUE (usage: agentctl state ID [KEY "
	               "[VALUE]] [--delete])");
	CHECK_INT(PARSE(&a, "state", "s_1", "k", "v", "--delete"), 0);
	CHECK_INT(action_of(&a), -1);
	/* A VALUE that looks like the option is a VALUE after "--". */
	CHECK_INT(PARSE(&a, "state", "s_1", "k", "--", "--delete"), 0);
	CHECK_INT(action_of(&a), CTL_KV_SET);

	CHECK_INT(PARSE(&a, "config", "echo"), 0);
	CHECK_INT(action_of(&a), CTL_KV_LIST);
	CHECK_INT(PARSE(&a, "config", "echo", "GREETING", "hi"), 0);
	CHECK_INT(action_of(&a), CTL_KV_SET);
	CHECK_INT(PARSE(&a, "config", "echo", "--delete"), 0);
	CHECK_INT(action_of(&a), -1);
	CHECK_STR(err, "config: --delete takes a KEY and no VALUE (usage: agentctl config AGENT "
	               "[KEY [VALUE]] [--delete])");
}

int main(void)
{
	test_create_config();
	test_kv_action();
	return check_summary();
}
