/* ctl_config_test.c: where agentctl takes its URL, token and timeout from
 * (host/ctl/config.c): options before the environment before the admin token file, and
 * the state folder search (--state-dir, AGENTHOST_STATE_DIR, ./var, /var/lib/agenthost). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static char err[512];
static char tmp[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void clear_env(void)
{
	unsetenv("AGENTHOST_URL");
	unsetenv("AGENTHOST_TOKEN");
	unsetenv("AGENTHOST_STATE_DIR");
}

static void test_url(void)
{
	struct ctl_args a = {0};
	struct ctl_config c;

	clear_env();
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.url.text, "http://127.0.0.1:8080");
	CHECK_STR(c.url_source, "default");
	ctl_config_free(&c);

	setenv("AGENTHOST_URL", "http://env:1", 1);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.url.text, "http://env:1");
	CHECK_STR(c.url_source, "AGENTHOST_URL");
	ctl_config_free(&c);

	a.url = "http://opt:2";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.url.text, "http://opt:2");
	CHECK_STR(c.url_source, "--url");
	ctl_config_free(&c);

	/* An empty variable is no value. */
	a.url = NULL;
	setenv("AGENTHOST_URL", "", 1);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.url_source, "default");
	ctl_config_free(&c);

	setenv("AGENTHOST_URL", "ftp://x", 1);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "invalid URL 'ftp://x' (AGENTHOST_URL): the scheme must be http or https");
	clear_env();
}

static void test_timeout(void)
{
	struct ctl_args a = {0};
	struct ctl_config c;

	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_INT(c.timeout_s, CTL_DEFAULT_TIMEOUT_S);
	ctl_config_free(&c);
	a.timeout = "0";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_INT(c.timeout_s, 0);
	ctl_config_free(&c);
	a.timeout = "15";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_INT(c.timeout_s, 15);
	ctl_config_free(&c);
	a.timeout = "5s";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "--timeout must be a number of seconds (0 for none), not '5s'");
	a.timeout = "-1";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	a.timeout = "";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
}

static void test_token_order(void)
{
	struct ctl_args a = {0};
	struct ctl_config c;
	char dir[128], path[160];

	clear_env();
	snprintf(dir, sizeof(dir), "%s/state", tmp);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	write_file(path, "  aht_file \n second line\n");

	a.state_dir = dir;
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.token, "aht_file");
	CHECK_STR(c.token_source, path);
	ctl_config_free(&c);

	setenv("AGENTHOST_TOKEN", "aht_env", 1);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.token, "aht_env");
	CHECK_STR(c.token_source, "AGENTHOST_TOKEN");
	ctl_config_free(&c);

	a.token = "aht_opt";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.token, "aht_opt");
	CHECK_STR(c.token_source, "--token");
	ctl_config_free(&c);

	a.token = "";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "--token is empty");
	/* A token cannot smuggle a header line in. */
	a.token = "aht_x\r\nX-Admin: yes";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "the token from --token contains control characters");
	a.token = NULL;
	setenv("AGENTHOST_TOKEN", "aht\tx", 1);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "the token from AGENTHOST_TOKEN contains control characters");
	{
		char big[CTL_TOKEN_MAX + 2];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		a.token = big;
		CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), -1);
		CHECK_STR(err, "the token from --token is longer than 512 characters");
		big[CTL_TOKEN_MAX] = '\0';
		CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
		ctl_config_free(&c);
	}
	clear_env();
}

static void test_state_dir(void)
{
	struct ctl_args a = {0};
	struct ctl_config c;
	char env_dir[128], path[160], want[200], cwd[256];

	clear_env();
	snprintf(env_dir, sizeof(env_dir), "%s/envstate", tmp);
	mkdir(env_dir, 0700);
	snprintf(path, sizeof(path), "%s/admin.token", env_dir);
	write_file(path, "aht_envdir\n");
	setenv("AGENTHOST_STATE_DIR", env_dir, 1);
	CHECK_STR(ctl_config_state_dir(&a), env_dir);
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.token, "aht_envdir");
	ctl_config_free(&c);
	a.state_dir = "/elsewhere";
	CHECK_STR(ctl_config_state_dir(&a), "/elsewhere");
	a.state_dir = NULL;
	unsetenv("AGENTHOST_STATE_DIR");

	/* ./var only when ./var/admin.token is there (a daemon run from the source tree). */
	if (!getcwd(cwd, sizeof(cwd)) || chdir(tmp)) {
		CHECK(0);
		return;
	}
	CHECK_STR(ctl_config_state_dir(&a), CTL_DEFAULT_STATE_DIR);
	mkdir("var", 0700);
	CHECK_STR(ctl_config_state_dir(&a), CTL_DEFAULT_STATE_DIR);
	write_file("var/admin.token", "aht_var\n");
	CHECK_STR(ctl_config_state_dir(&a), "./var");
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK_STR(c.token, "aht_var");
	CHECK_STR(c.token_source, "./var/admin.token");
	ctl_config_free(&c);

	/* No token is not an error here: the reason is kept for the daemon's 401. */
	write_file("var/admin.token", "\n");
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK(c.token == NULL);
	CHECK_STR(c.token_source, "./var/admin.token is empty");
	ctl_config_free(&c);
	a.state_dir = "missing";
	CHECK_INT(ctl_config_resolve(&a, &c, err, sizeof(err)), 0);
	CHECK(c.token == NULL);
	snprintf(want, sizeof(want), "cannot read missing/admin.token: No such file or directory");
	CHECK_STR(c.token_source, want);
	ctl_config_free(&c);
	CHECK_INT(chdir(cwd), 0);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ctl_config_test.XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_url();
	test_timeout();
	test_token_order();
	test_state_dir();
	/* The folder holds only what this test wrote. */
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return check_summary();
}
