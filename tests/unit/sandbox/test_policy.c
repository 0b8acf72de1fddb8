/* test_policy.c: the policy builder rejects what can never be right, keeps the first error,
 * and sandbox_policy_check / sandbox_spawn name the step that refuses a policy. */
#include "check.h"
#include "sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const true_argv[] = {"/bin/true", NULL};

static struct sandbox_policy *valid_policy(void)
{
	struct sandbox_policy *p = sandbox_policy_new();

	sandbox_policy_set_argv(p, true_argv);
	sandbox_policy_set_agent_dir(p, "/usr", false);
	return p;
}

static void test_setter_errors(void)
{
	struct sandbox_policy *p = sandbox_policy_new();
	const char *const empty[] = {"", NULL};
	const char *const bad_env[] = {"NOEQUALS", NULL};
	struct sandbox_limits l = {.memory_mb = 1, .scratch_mb = 0};

	CHECK(sandbox_policy_error(p) == NULL);
	CHECK_INT(sandbox_policy_set_argv(p, NULL), -EINVAL);
	CHECK_INT(sandbox_policy_set_argv(p, empty), -EINVAL);
	CHECK_INT(sandbox_policy_set_agent_dir(p, "relative", false), -EINVAL);
	CHECK_INT(sandbox_policy_set_cwd(p, "agent"), -EINVAL);
	CHECK_INT(sandbox_policy_set_env(p, bad_env), -EINVAL);
	CHECK_INT(sandbox_policy_setenv(p, "A=B", "x"), -EINVAL);
	CHECK_INT(sandbox_policy_set_limits(p, &l), -EINVAL);
	CHECK_INT(sandbox_policy_set_seccomp(p, "", NULL), -EINVAL);
	/* The first error is the one kept. */
	CHECK(sandbox_policy_error(p) != NULL);
	CHECK(strstr(sandbox_policy_error(p), "argv") != NULL);
	sandbox_policy_free(p);
}

static void test_reserved_paths(void)
{
	static const char *const refused[] = {"/",           "/proc",  "/proc/1",  "/dev/null",
	                                      "/scratch",    "/tmp/x", "/agent/a", "relative",
	                                      "/usr/../etc", "/usr/.."};
	static const char *const accepted[] = {"/usr/share/zoneinfo", "/procfs", "/devices",
	                                       "/etc/ssl/certs/"};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct sandbox_policy *p = sandbox_policy_new();

		CHECK_INT(sandbox_policy_add_path(p, refused[i], false), -EINVAL);
		sandbox_policy_free(p);
	}
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		struct sandbox_policy *p = sandbox_policy_new();

		CHECK_INT(sandbox_policy_add_path(p, accepted[i], true), 0);
		CHECK(sandbox_policy_error(p) == NULL);
		sandbox_policy_free(p);
	}
}

static void test_env_replace(void)
{
	struct sandbox_policy *p = sandbox_policy_new();
	const char *const env[] = {"A=1", "B=2", "A=3", NULL};

	CHECK_INT(sandbox_policy_set_env(p, env), 0);
	CHECK_INT(sandbox_policy_setenv(p, "B", "4"), 0);
	CHECK(sandbox_policy_error(p) == NULL);
	sandbox_policy_free(p);
}

static void expect_check(struct sandbox_policy *p, int rc, const char *prefix)
{
	char err[256] = "";

	CHECK_INT(sandbox_policy_check(p, err, sizeof(err)), rc);
	if (strncmp(err, prefix, strlen(prefix)) != 0) {
		fprintf(stderr, "message \"%s\" does not start with \"%s\"\n", err, prefix);
		CHECK(!"message prefix");
	}
}

static void test_check_names_step(void)
{
	struct sandbox_policy *p = valid_policy();
	const char *const never[] = {"ptrace", NULL};
	const char *const filtered[] = {"socket", NULL};
	const char *const unknown[] = {"no_such_call", NULL};
	const char *const fine[] = {"memfd_create", NULL};

	expect_check(p, 0, "");
	sandbox_policy_set_agent_dir(p, "/nonexistent/agent", false);
	expect_check(p, -ENOENT, "agent_dir: No such file or directory (/nonexistent/agent)");
	sandbox_policy_set_agent_dir(p, "/etc/hostname", false);
	expect_check(p, -ENOTDIR, "agent_dir: ");
	sandbox_policy_set_agent_dir(p, "/usr", false);
	sandbox_policy_set_seccomp(p, "default", never);
	expect_check(p, -EPERM,
	             "seccomp: Operation not permitted (syscall ptrace is never allowed)");
	sandbox_policy_set_seccomp(p, "default", filtered);
	expect_check(p, -EPERM, "seccomp: Operation not permitted (syscall socket is only");
	sandbox_policy_set_seccomp(p, "default", unknown);
	expect_check(p, -EINVAL, "seccomp: Invalid argument (unknown syscall no_such_call)");
	sandbox_policy_set_seccomp(p, "nosuchprofile", NULL);
	expect_check(p, -ENOENT, "seccomp: ");
	sandbox_policy_set_seccomp(p, "python", fine);
	expect_check(p, 0, "");
	sandbox_policy_add_path(p, "/nonexistent/path", false);
	expect_check(p, -ENOENT, "paths: ");
	sandbox_policy_free(p);

	p = sandbox_policy_new();
	sandbox_policy_set_agent_dir(p, "/usr", false);
	expect_check(p, -EINVAL, "policy: ");
	sandbox_policy_free(p);
}

static void test_spawn_refuses_bad_policy(void)
{
	struct sandbox_policy *p = valid_policy();
	struct sandbox_child c;

	sandbox_policy_set_cwd(p, "relative");
	CHECK_INT(sandbox_spawn(p, &c), -EINVAL);
	CHECK_STR(c.failed_step, "policy");
	CHECK(c.pid == -1 && c.pidfd == -1 && c.sock == -1 && c.out == -1 && c.err == -1);
	sandbox_child_close(&c);
	sandbox_policy_free(p);
}

static void test_host_ids_need_root(void)
{
	struct sandbox_policy *p = valid_policy();
	char err[256];

	sandbox_policy_set_host_ids(p, geteuid() + 1, getegid());
	if (geteuid() == 0)
		CHECK_INT(sandbox_policy_check(p, err, sizeof(err)), 0);
	else
		CHECK_INT(sandbox_policy_check(p, err, sizeof(err)), -EPERM);
	sandbox_policy_free(p);
}

int main(void)
{
	test_setter_errors();
	test_reserved_paths();
	test_env_replace();
	test_check_names_step();
	test_spawn_refuses_bad_policy();
	test_host_ids_need_root();
	return check_summary();
}
