/* registry_test.c: the install transaction, uninstall, start-up sync and reconciliation,
 * on a temporary state directory with agent folders made by the test. */
#include "check.h"
#include "fsutil.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/agenthost-registry-test-XXXXXX";
static char *state_dir, *src_dir;
static struct store *st;
static struct registry *reg;
static char err[REGISTRY_ERR_MAX];

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Makes SRC/name with an agent.json (extra is spliced into the manifest) and a run.sh. */
static char *make_agent(const char *name, const char *version, const char *extra)
{
	char *dir = xasprintf("%s/%s-%s", src_dir, name, version);
	char *manifest = xasprintf("%s/agent.json", dir);
	char *script = xasprintf("%s/run.sh", dir);
	char *text = xasprintf("{\"manifest_version\": 1, \"name\": \"%s\", \"version\": \"%s\", "
	                       "\"description\": \"test agent\", \"entrypoint\": [\"./run.sh\"]%s}",
	                       name, version, extra);

	mkdir(dir, 0755);
	write_file(manifest, text, 0644);
	write_file(script, "#!/bin/sh\necho hi\n", 0755);
	free(manifest);
	free(script);
	free(text);
	return dir;
}

static bool exists(const char *fmt, const char *a, const char *b)
{
	char *path = xasprintf(fmt, state_dir, a, b);
	bool ok = access(path, F_OK) == 0;

	free(path);
	return ok;
}

static int count_entries(const char *path)
{
	char *cmd = xasprintf("ls -A %s | wc -l", path);
	FILE *p = popen(cmd, "r");
	int n = -1;

	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	free(cmd);
	return n;
}

static void test_install_and_show(void)
{
	char *dir = make_agent("alpha", "1.0.0",
	                       ", \"install\": {\"command\": [\"/bin/sh\", "
	                       "\"-c\", \"echo built > built.txt\"]}");
	struct store_agent row = {0};
	struct stat sb;

	CHECK_INT(registry_install(reg, st, dir, &row, err, sizeof(err)), 0);
	CHECK_STR(row.name, "alpha");
	CHECK_STR(row.version, "1.0.0");
	CHECK(row.current);
	CHECK(row.digest && strlen(row.digest) == 64);
	CHECK(row.manifest && strstr(row.manifest, "\"memory_mb\":256")); /* defaults filled */
	CHECK(exists("%s/agents/%s/%s/built.txt", "alpha", "1.0.0"));
	CHECK(stat(row.path, &sb) == 0 && (sb.st_mode & 0222) == 0);
	char *script = xasprintf("%s/run.sh", row.path);
	CHECK(stat(script, &sb) == 0 && (sb.st_mode & 0777) == 0555);
	free(script);
	store_agent_clear(&row);

	/* The same version again is a conflict and changes nothing. */
	CHECK_INT(registry_install(reg, st, dir, &row, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "alpha 1.0.0 is already installed") != NULL);

	/* Installing through the agent.json path works too, for a new version. */
	char *v2 = make_agent("alpha", "2.0.0", "");
	char *v2_manifest = xasprintf("%s/agent.json", v2);
	CHECK_INT(registry_install(reg, st, v2_manifest, &row, err, sizeof(err)), 0);
	CHECK(row.current);
	store_agent_clear(&row);
	CHECK_INT(store_agent_get(st, "alpha", NULL, &row), 0);
	CHECK_STR(row.version, "2.0.0");
	store_agent_clear(&row);
	free(v2_manifest);
	free(v2);
	free(dir);
}

/* A failed install leaves no folder, no staging leftover and no row. */
static void expect_clean_failure(const char *dir, const char *name, const char *needle)
{
	struct store_agent row = {0};
	char *staging = xasprintf("%s/agents/.staging", state_dir);

	CHECK_INT(registry_install(reg, st, dir, &row, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "  error was: %s (wanted %s)\n", err, needle);
	CHECK(strstr(err, needle) != NULL);
	CHECK(!exists("%s/agents/%s%s", name, ""));
	CHECK_INT(store_agent_get(st, name, NULL, &row), -ENOENT);
	CHECK_INT(count_entries(staging), 0);
	free(staging);
}

static void test_failures_leave_nothing(void)
{
	char *dir;

	dir = make_agent("failing", "1.0.0",
	                 ", \"install\": {\"command\": [\"/bin/sh\", \"-c\", "
	                 "\"echo nope >&2; exit 3\"]}");
	expect_clean_failure(dir, "failing", "exited with status 3; output: nope");
	free(dir);

	dir = make_agent("typo", "1.0.0", ", \"sandbox\": {\"netwrok\": true}");
	expect_clean_failure(dir, "typo", "sandbox.netwrok");
	free(dir);

	dir = make_agent("escape", "1.0.0", "");
	char *link = xasprintf("%s/etc", dir);
	CHECK_INT(symlink("../../../../etc", link), 0);
	expect_clean_failure(dir, "escape", "symlink points outside the agent folder");
	unlink(link);
	CHECK_INT(symlink("/etc", link), 0);
	expect_clean_failure(dir, "escape", "symlink points outside the agent folder");
	free(link);
	free(dir);

	dir = make_agent("noentry", "1.0.0", "");
	char *script = xasprintf("%s/run.sh", dir);
	unlink(script);
	expect_clean_failure(dir, "noentry", "entrypoint ./run.sh");
	free(script);
	free(dir);

	expect_clean_failure("relative/path", "relative", "must be absolute");
	char *missing = xasprintf("%s/does-not-exist", src_dir);
	expect_clean_failure(missing, "does-not-exist", "No such file");
	free(missing);
}

static void test_inner_symlink_is_kept(void)
{
	char *dir = make_agent("linked", "1.0.0", "");
	char *link = xasprintf("%s/alias.sh", dir);
	struct store_agent row = {0};

	CHECK_INT(symlink("run.sh", link), 0);
	CHECK_INT(registry_install(reg, st, dir, &row, err, sizeof(err)), 0);
	CHECK(exists("%s/agents/%s/%s/alias.sh", "linked", "1.0.0"));
	store_agent_clear(&row);
	free(link);
	free(dir);
}

static void test_uninstall(void)
{
	CHECK_INT(registry_uninstall(reg, st, "nobody", NULL, false, err, sizeof(err)), -ENOENT);

	/* A session using the agent blocks uninstall unless forced. */
	struct store_session s = {.id = "s_1",
	                          .agent = "alpha",
	                          .version = "2.0.0",
	                          .owner = "t_x",
	                          .state = "hibernated",
	                          .created_at = 1,
	                          .last_active_at = 1};
	CHECK_INT(store_session_insert(st, &s), 0);
	CHECK_INT(registry_uninstall(reg, st, "alpha", NULL, false, err, sizeof(err)), -EBUSY);
	CHECK(exists("%s/agents/%s/%s", "alpha", "2.0.0"));
	CHECK_INT(registry_uninstall(reg, st, "alpha", NULL, true, err, sizeof(err)), 0);
	CHECK(!exists("%s/agents/%s%s", "alpha", ""));
	struct store_session gone = {0};
	CHECK_INT(store_session_get(st, "s_1", &gone), -ENOENT);
}

static void test_sync_dir(void)
{
	char *dir = xasprintf("%s/sync", src_dir);
	char *saved = src_dir;
	struct store_agent row = {0};
	char first[65];

	mkdir(dir, 0755);
	src_dir = dir;
	free(make_agent("beta", "1.0.0", ""));
	free(make_agent("gamma", "1.0.0", ", \"bogus\": 1")); /* fails, others go on */
	src_dir = saved;

	CHECK_INT(registry_sync_dir(reg, st, dir), 1);
	CHECK_INT(store_agent_get(st, "beta", "1.0.0", &row), 0);
	snprintf(first, sizeof(first), "%s", row.digest);
	int64_t installed_at = row.installed_at;
	store_agent_clear(&row);

	/* Unchanged files: left alone. */
	CHECK_INT(registry_sync_dir(reg, st, dir), 1);
	CHECK_INT(store_agent_get(st, "beta", "1.0.0", &row), 0);
	CHECK_INT(row.installed_at, installed_at);
	store_agent_clear(&row);

	/* Changed files, same version, no session: reinstalled in place. */
	char *script = xasprintf("%s/beta-1.0.0/run.sh", dir);
	write_file(script, "#!/bin/sh\necho changed\n", 0755);
	CHECK_INT(registry_sync_dir(reg, st, dir), 1);
	CHECK_INT(store_agent_get(st, "beta", "1.0.0", &row), 0);
	CHECK(strcmp(row.digest, first) != 0);
	store_agent_clear(&row);
	free(script);
	free(dir);
}

static void test_reconcile_on_open(void)
{
	struct store_agent row = {0};
	char *orphan = xasprintf("%s/agents/orphan/1.0.0", state_dir);
	char *leftover = xasprintf("%s/agents/.staging/x-123", state_dir);

	/* A folder without a row, a staging leftover, and a row whose folder went. */
	CHECK_INT(fs_mkdir_p(orphan, 0755), 0);
	CHECK_INT(fs_mkdir_p(leftover, 0755), 0);
	CHECK_INT(store_agent_get(st, "linked", "1.0.0", &row), 0);
	CHECK_INT(fs_remove_tree(row.path), 0);
	store_agent_clear(&row);

	registry_close(reg);
	CHECK_INT(registry_open(state_dir, st, &reg, err, sizeof(err)), 0);
	CHECK(access(orphan, F_OK) < 0);
	CHECK(access(leftover, F_OK) < 0);
	CHECK_INT(store_agent_get(st, "linked", "1.0.0", &row), -ENOENT);
	CHECK_INT(store_agent_get(st, "beta", "1.0.0", &row), 0); /* untouched */
	store_agent_clear(&row);
	free(orphan);
	free(leftover);
}

int main(void)
{
	char *db;

	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(root, 0711); /* install commands run as nobody when the test is root */
	state_dir = xasprintf("%s/state", root);
	src_dir = xasprintf("%s/src", root);
	mkdir(state_dir, 0711);
	mkdir(src_dir, 0755);
	db = xasprintf("%s/agenthost.db", state_dir);
	if (store_open(db, &st, err, sizeof(err)) < 0 ||
	    registry_open(state_dir, st, &reg, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}

	test_install_and_show();
	test_failures_leave_nothing();
	test_inner_symlink_is_kept();
	test_uninstall();
	test_sync_dir();
	test_reconcile_on_open();

	registry_close(reg);
	store_close(st);
	fs_remove_tree(root);
	free(db);
	free(state_dir);
	free(src_dir);
	return check_summary();
}
