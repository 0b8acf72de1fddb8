/* agentctl.c: main() of the admin CLI: parse the line, answer --help and --version, find
 * the daemon and the token, run the command, exit with its status (0 ok, 1 the daemon or
 * the network failed, 2 usage). Everything else lives in the files this one calls. */
#include <signal.h>
#include <stdio.h>

#include "args.h"
#include "commands.h"
#include "config.h"
#include "help.h"
#include "output.h"

#ifndef AGENTHOST_VERSION
#define AGENTHOST_VERSION "unknown"
#endif

/* --help and --version need neither the daemon nor a token. Returns 1 if it answered. */
static int answer_locally(const struct ctl_args *args)
{
	if (args->help && args->command)
		ctl_help_command(stdout, args->command);
	else if (args->help && args->group)
		ctl_help_group(stdout, ctl_commands, ctl_commands_len, args->group);
	else if (args->help)
		ctl_help_main(stdout, ctl_commands, ctl_commands_len);
	else if (args->version)
		printf("agentctl %s\n", AGENTHOST_VERSION);
	else
		return 0;
	return 1;
}

static int run(const struct ctl_args *args)
{
	struct ctl_ctx ctx = {.json = args->json, .verbose = args->verbose};
	char err[1024];
	int rc;

	if (ctl_config_resolve(args, &ctx.cfg, err, sizeof(err))) {
		ctl_print_usage_error(err);
		return CTL_EXIT_USAGE;
	}
	ctx.http =
	    ctl_http_client_new(&ctx.cfg.url, ctx.cfg.token, ctx.cfg.timeout_s, args->verbose);
	rc = args->command->exec(&ctx, args);
	ctl_http_client_free(ctx.http);
	ctl_config_free(&ctx.cfg);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl_args args;
	char err[512];

	/* A daemon that hangs up mid-request must give an error line, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (ctl_args_parse(argc, argv, ctl_commands, ctl_commands_len, &args, err, sizeof(err))) {
		ctl_print_usage_error(err);
		return CTL_EXIT_USAGE;
	}
	if (answer_locally(&args))
		return CTL_EXIT_OK;
	return run(&args);
}
