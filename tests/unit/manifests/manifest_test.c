/* manifest_test: the table-driven test of the manifest parser. Every fixture in
 * tests/fixtures/manifests/valid/ must parse, carry every default and round-trip through
 * manifest_to_json; every one in invalid/ must fail with exactly the line of its .expect
 * file. Fixtures whose values matter have a check function in valid_checks[]; the API edges
 * a file cannot express (load errors, NUL bytes, tiny buffers) follow at the end. */
#include "check.h"
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SOURCE "agent.json"

static const char *fixtures;

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void fixture_path(char *out, size_t outlen, const char *kind, const char *name,
                         const char *ext)
{
	snprintf(out, outlen, "%s/%s/%s%s", fixtures, kind, name, ext);
}

static struct manifest *parse_fixture(const char *kind, const char *name, int *rc, char *err)
{
	char path[4096];
	struct manifest *m = (struct manifest *)&m; /* not NULL: the parser must clear it */
	size_t len;
	char *text;

	fixture_path(path, sizeof(path), kind, name, ".json");
	text = read_text(path, &len);
	CHECK(text != NULL);
	if (!text) {
		*rc = -ENOENT;
		return NULL;
	}
	*rc = manifest_parse(text, len, SOURCE, &m, err, MANIFEST_ERR_MAX);
	free(text);
	return m;
}

/* ---- checks shared by every valid fixture ---- */

static const char *const normalized_keys[] = {
    "manifest_version",
    "name",
    "version",
    "description",
    "entrypoint",
    "env",
    "modes",
    "input_content_types",
    "output_content_types",
    "input_schema",
    "config",
    "dependencies",
    "metadata",
    "sandbox",
    "session",
    "invoke",
    "install",
};

static void check_normalized_shape(json_t *doc)
{
	CHECK_INT(json_object_size(doc), ARRAY_LEN(normalized_keys));
	for (size_t i = 0; i < ARRAY_LEN(normalized_keys); i++)
		CHECK(json_object_get(doc, normalized_keys[i]) != NULL);
	CHECK_INT(json_object_size(json_object_get(json_object_get(doc, "sandbox"), "limits")), 8);
	CHECK_INT(json_object_size(json_object_get(doc, "session")), 3);
	CHECK_INT(json_object_size(json_object_get(doc, "invoke")), 2);
}

static void check_vectors_terminated(const struct manifest *m)
{
	CHECK(m->entrypoint_len >= 1 && m->entrypoint[m->entrypoint_len] == NULL);
	CHECK(m->input_content_types[m->input_content_types_len] == NULL);
	CHECK(m->output_content_types[m->output_content_types_len] == NULL);
	CHECK(m->sandbox.allow_syscalls[m->sandbox.allow_syscalls_len] == NULL);
	CHECK(!m->install.command || m->install.command[m->install.command_len] == NULL);
	CHECK(m->input_schema != NULL && m->metadata != NULL && m->sandbox.seccomp != NULL);
	for (size_t i = 0; i < m->config_len; i++)
		CHECK(m->config[i].description != NULL);
}

/* manifest_to_json → manifest_from_json → manifest_to_json gives the same document, and
 * so does going through text (what the registry stores). */
static void check_round_trip(const struct manifest *m)
{
	char err[MANIFEST_ERR_MAX] = "";
	struct manifest *again = NULL, *from_text = NULL;
	json_t *doc = manifest_to_json(m), *doc2;
	char *text;

	check_normalized_shape(doc);
	CHECK_INT(manifest_from_json(doc, "normalized", &again, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "round trip: %s\n", err);
	if (again) {
		doc2 = manifest_to_json(again);
		CHECK(json_equal(doc, doc2));
		json_decref(doc2);
	}
	text = json_dumps(doc, JSON_COMPACT);
	CHECK_INT(manifest_parse(text, strlen(text), "normalized", &from_text, err, sizeof(err)),
	          0);
	if (from_text) {
		doc2 = manifest_to_json(from_text);
		CHECK(json_equal(doc, doc2));
		json_decref(doc2);
	}
	free(text);
	manifest_free(again);
	manifest_free(from_text);
	json_decref(doc);
}

/* ---- per-fixture checks ---- */

static void check_default_limits(const struct manifest *m)
{
	CHECK_INT(m->sandbox.limits.memory_mb, 256);
	CHECK_INT(m->sandbox.limits.cpu_seconds, 60);
	CHECK_INT(m->sandbox.limits.processes, 32);
	CHECK_INT(m->sandbox.limits.open_files, 256);
	CHECK_INT(m->sandbox.limits.file_size_mb, 64);
	CHECK_INT(m->sandbox.limits.scratch_mb, 64);
	CHECK_INT(m->sandbox.limits.run_timeout_s, 60);
	CHECK_INT(m->sandbox.limits.output_bytes, 4194304);
}

static void check_minimal(const struct manifest *m)
{
	CHECK_INT(m->manifest_version, 1);
	CHECK_STR(m->name, "fx");
	CHECK_STR(m->version, "1.0.0");
	CHECK_STR(m->description, "A fixture agent");
	CHECK_INT(m->entrypoint_len, 1);
	CHECK_STR(m->entrypoint[0], "./agent");
	CHECK(m->env == NULL && m->env_len == 0);
	CHECK(m->mode_session && m->mode_invoke);
	CHECK_INT(m->input_content_types_len, 1);
	CHECK_STR(m->input_content_types[0], "application/json");
	CHECK_INT(m->output_content_types_len, 1);
	CHECK_STR(m->output_content_types[0], "application/json");
	CHECK(json_is_null(m->input_schema));
	CHECK(m->config_len == 0 && m->dependencies_len == 0);
	CHECK(json_is_object(m->metadata) && json_object_size(m->metadata) == 0);
	CHECK_STR(m->sandbox.seccomp, "default");
	CHECK_INT(m->sandbox.allow_syscalls_len, 0);
	CHECK(m->sandbox.allow_syscalls != NULL && m->sandbox.allow_syscalls[0] == NULL);
	CHECK(!m->sandbox.network);
	CHECK_INT(m->sandbox.paths_len, 0);
	check_default_limits(m);
	CHECK_INT(m->session.hibernate_after_s, 300);
	CHECK_INT(m->session.expire_after_s, 86400);
	CHECK_INT(m->session.max_queued_runs, 8);
	CHECK_INT(m->invoke.isolation, MANIFEST_ISOLATION_PROCESS);
	CHECK_INT(m->invoke.workers, 2);
	CHECK(m->install.command == NULL && m->install.command_len == 0);
}

/* full.json gives every field, in the normalized order: normalizing changes nothing. */
static void check_full(const struct manifest *m)
{
	char path[4096];
	json_t *given, *normalized = manifest_to_json(m);

	fixture_path(path, sizeof(path), "valid", "full", ".json");
	given = json_load_file(path, 0, NULL);
	CHECK(given != NULL && json_equal(given, normalized));
	CHECK(m->config[0].required && m->config[0].secret && !m->config[1].secret);
	CHECK(m->sandbox.paths[1].writable && !m->sandbox.paths[0].writable);
	CHECK_INT(m->invoke.isolation, MANIFEST_ISOLATION_WORKER);
	json_decref(given);
	json_decref(normalized);
}

static void check_design_example(const struct manifest *m)
{
	CHECK_STR(m->name, "counter");
	CHECK_INT(m->env_len, 1);
	CHECK_STR(m->env[0].key, "LOG_LEVEL");
	CHECK_STR(m->env[0].value, "info");
	CHECK_STR(m->config[0].name, "GREETING");
	CHECK_STR(m->dependencies[0].type, "agent");
	CHECK_STR(m->dependencies[0].name, "echo");
	CHECK_STR(m->sandbox.paths[0].path, "/usr/share/zoneinfo");
	check_default_limits(m); /* the example spells out the defaults, scratch_mb aside */
	CHECK_INT(m->install.command_len, 1);
	CHECK_STR(m->install.command[0], "make");
}

static void check_entrypoint_absolute(const struct manifest *m)
{
	CHECK_INT(m->entrypoint_len, 3);
	CHECK_STR(m->entrypoint[0], "/usr/bin/python3");
	CHECK_STR(m->entrypoint[2], "agent.py");
}

static void check_modes_invoke_only(const struct manifest *m)
{
	CHECK(!m->mode_session && m->mode_invoke);
}

static void check_modes_reversed(const struct manifest *m)
{
	json_t *doc = manifest_to_json(m), *modes = json_object_get(doc, "modes");

	CHECK(m->mode_session && m->mode_invoke);
	CHECK_STR(json_string_value(json_array_get(modes, 0)), "session");
	json_decref(doc);
}

static void check_env_names(const struct manifest *m)
{
	CHECK_INT(m->env_len, 5);
	CHECK_STR(m->env[0].key, "A");
	CHECK_STR(m->env[1].value, "");
	CHECK_STR(m->env[2].key, "agenthost_lower");
	CHECK_STR(m->env[4].key, "X_AGENTHOST_Y");
}

static void check_config_defaults(const struct manifest *m)
{
	CHECK_INT(m->config_len, 2);
	CHECK_STR(m->config[0].name, "TOKEN");
	CHECK_STR(m->config[0].description, "");
	CHECK(!m->config[0].required && !m->config[0].secret);
	CHECK(m->config[1].secret && !m->config[1].required);
}

static void check_input_schema_null(const struct manifest *m)
{
	CHECK(json_is_null(m->input_schema));
	CHECK(m->install.command == NULL);
}

static void check_limits_real_integer(const struct manifest *m)
{
	CHECK_INT(m->sandbox.limits.memory_mb, 512);
	CHECK_INT(m->sandbox.limits.output_bytes, 1000);
	CHECK_INT(m->sandbox.limits.open_files, 256);
}

static void check_limits_max(const struct manifest *m)
{
	CHECK_INT(m->sandbox.limits.memory_mb, 1048576);
	CHECK_INT(m->sandbox.limits.open_files, 20000);
	CHECK_INT(m->sandbox.limits.output_bytes, 1073741824);
}

static void check_sandbox_python_network(const struct manifest *m)
{
	CHECK_STR(m->sandbox.seccomp, "python");
	CHECK(m->sandbox.network);
	CHECK_INT(m->sandbox.allow_syscalls_len, 1);
	CHECK_STR(m->sandbox.allow_syscalls[0], "memfd_create");
	CHECK_INT(m->sandbox.paths_len, 2);
	CHECK(m->sandbox.paths[0].writable && !m->sandbox.paths[1].writable);
}

static void check_session_bounds(const struct manifest *m)
{
	CHECK_INT(m->session.hibernate_after_s, 1);
	CHECK_INT(m->session.expire_after_s, 31536000);
	CHECK_INT(m->session.max_queued_runs, 0);
}

static void check_invoke_worker(const struct manifest *m)
{
	CHECK_INT(m->invoke.isolation, MANIFEST_ISOLATION_WORKER);
	CHECK_INT(m->invoke.workers, 64);
}

static void check_install_command(const struct manifest *m)
{
	CHECK_INT(m->install.command_len, 3);
	CHECK_STR(m->install.command[2], "make && make check");
}

static void check_metadata_free_form(const struct manifest *m)
{
	CHECK(json_object_get(m->metadata, "x-custom") != NULL);
	CHECK_INT(json_array_size(json_object_get(m->metadata, "skills")), 1);
}

static struct valid_check {
	const char *fixture;
	void (*check)(const struct manifest *m);
	bool seen;
} valid_checks[] = {
    {"minimal", check_minimal, false},
    {"full", check_full, false},
    {"design-example", check_design_example, false},
    {"entrypoint-absolute", check_entrypoint_absolute, false},
    {"modes-invoke-only", check_modes_invoke_only, false},
    {"modes-reversed", check_modes_reversed, false},
    {"env-names", check_env_names, false},
    {"config-defaults", check_config_defaults, false},
    {"input-schema-null", check_input_schema_null, false},
    {"limits-real-integer", check_limits_real_integer, false},
    {"limits-max", check_limits_max, false},
    {"sandbox-python-network", check_sandbox_python_network, false},
    {"session-bounds", check_session_bounds, false},
    {"invoke-worker-64", check_invoke_worker, false},
    {"install-command", check_install_command, false},
    {"metadata-free-form", check_metadata_free_form, false},
};

static void run_valid_check(const char *name, const struct manifest *m)
{
	for (size_t i = 0; i < ARRAY_LEN(valid_checks); i++) {
		if (strcmp(valid_checks[i].fixture, name) == 0) {
			valid_checks[i].check(m);
			valid_checks[i].seen = true;
		}
	}
}

/* ---- the fixture walk ---- */

static void test_valid(const char *name)
{
	char err[MANIFEST_ERR_MAX] = "";
	int rc;
	struct manifest *m = parse_fixture("valid", name, &rc, err);

	CHECK_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "valid/%s.json: %s\n", name, err);
		return;
	}
	check_vectors_terminated(m);
	check_round_trip(m);
	run_valid_check(name, m);
	manifest_free(m);
}

static void test_invalid(const char *name)
{
	char err[MANIFEST_ERR_MAX] = "", path[4096];
	char *expect;
	int rc;
	struct manifest *m = parse_fixture("invalid", name, &rc, err);

	CHECK_INT(rc, -EINVAL);
	CHECK(m == NULL);
	manifest_free(m);
	CHECK(strchr(err, '\n') == NULL);
	fixture_path(path, sizeof(path), "invalid", name, ".expect");
	expect = read_text(path, NULL);
	CHECK(expect != NULL); /* every invalid fixture says which error it expects */
	if (!expect)
		return;
	expect[strcspn(expect, "\n")] = '\0';
	if (strcmp(err, expect) != 0)
		fprintf(stderr, "invalid/%s.json:\n  expected: %s\n  got:      %s\n", name, expect,
		        err);
	CHECK_STR(err, expect);
	free(expect);
}

static int is_json_file(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return len > 5 && strcmp(d->d_name + len - 5, ".json") == 0;
}

/* Runs test on every .json file of fixtures/KIND, in name order; returns how many. */
static int walk_fixtures(const char *kind, void (*test)(const char *name))
{
	char dir[4096], name[256];
	struct dirent **list;
	int n;

	snprintf(dir, sizeof(dir), "%s/%s", fixtures, kind);
	n = scandir(dir, &list, is_json_file, alphasort);
	CHECK(n > 0);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(list[i]->d_name) - 5),
		         list[i]->d_name);
		test(name);
		free(list[i]);
	}
	if (n > 0)
		free(list);
	return n < 0 ? 0 : n;
}

/* ---- API edges ---- */

static void test_load_errors(void)
{
	char err[MANIFEST_ERR_MAX] = "", path[4096];
	struct manifest *m = NULL;
	char tmp[] = "/tmp/manifest_test_XXXXXX";
	int fd;

	CHECK_INT(manifest_load("/nonexistent/agent.json", &m, err, sizeof(err)), -ENOENT);
	CHECK(m == NULL);
	CHECK_STR(err, "/nonexistent/agent.json: cannot open: No such file or directory");

	/* The file's path is the source of its messages. */
	fixture_path(path, sizeof(path), "invalid", "name-uppercase", ".json");
	CHECK_INT(manifest_load(path, &m, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, ": name: ") != NULL);

	fixture_path(path, sizeof(path), "valid", "minimal", ".json");
	CHECK_INT(manifest_load(path, &m, err, sizeof(err)), 0);
	CHECK(m != NULL);
	manifest_free(m);

	/* A file over MANIFEST_MAX_BYTES is refused before parsing. */
	fd = mkstemp(tmp);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(ftruncate(fd, MANIFEST_MAX_BYTES + 1), 0);
	close(fd);
	CHECK_INT(manifest_load(tmp, &m, err, sizeof(err)), -EFBIG);
	CHECK(m == NULL && strstr(err, "larger than 1048576 bytes") != NULL);
	unlink(tmp);
}

static json_t *minimal_doc(void)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:[s]}", "manifest_version", 1, "name", "fx",
	                 "version", "1.0.0", "description", "d", "entrypoint", "./agent");
}

static void test_from_json_edges(void)
{
	char err[MANIFEST_ERR_MAX] = "";
	struct manifest *m = NULL;
	json_t *doc;

	CHECK_INT(manifest_from_json(NULL, "x", &m, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "x: must be a JSON object");

	/* jansson can hold a string with a NUL inside; a C string cannot. */
	doc = minimal_doc();
	json_object_set_new(doc, "name", json_stringn("fx\0evil", 7));
	CHECK_INT(manifest_from_json(doc, "x", &m, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "x: name: must not contain a NUL character");
	json_decref(doc);

	/* The manifest owns copies: the document may go away first. */
	doc = minimal_doc();
	json_object_set_new(doc, "input_schema", json_pack("{s:s}", "type", "object"));
	json_object_set_new(doc, "metadata", json_pack("{s:s}", "license", "MIT"));
	CHECK_INT(manifest_from_json(doc, "x", &m, err, sizeof(err)), 0);
	json_decref(doc);
	CHECK_STR(json_string_value(json_object_get(m->input_schema, "type")), "object");
	CHECK_STR(json_string_value(json_object_get(m->metadata, "license")), "MIT");
	manifest_free(m);
	manifest_free(NULL);
}

static void test_error_buffers(void)
{
	static const char bad[] = "{\"manifest_version\": 2}";
	char small[16], err[MANIFEST_ERR_MAX], again[MANIFEST_ERR_MAX];
	struct manifest *m = NULL;
	json_t *doc;
	char *text, key[2001];

	CHECK_INT(manifest_parse(bad, strlen(bad), SOURCE, &m, small, sizeof(small)), -EINVAL);
	CHECK_INT(strlen(small), sizeof(small) - 1);
	CHECK_INT(manifest_parse(bad, strlen(bad), SOURCE, &m, NULL, 0), -EINVAL);

	/* Same input, same first error. */
	manifest_parse(bad, strlen(bad), SOURCE, &m, err, sizeof(err));
	manifest_parse(bad, strlen(bad), SOURCE, &m, again, sizeof(again));
	CHECK_STR(err, again);

	/* A key longer than the error buffer still gives one terminated line. */
	memset(key, 'K', sizeof(key) - 1);
	key[0] = '-';
	key[sizeof(key) - 1] = '\0';
	doc = minimal_doc();
	json_object_set_new(doc, "env", json_pack("{s:s}", key, "v"));
	text = json_dumps(doc, 0);
	CHECK_INT(manifest_parse(text, strlen(text), SOURCE, &m, err, sizeof(err)), -EINVAL);
	CHECK(strlen(err) < sizeof(err) && strchr(err, '\n') == NULL);
	CHECK(strncmp(err, "agent.json: env.-KKK", 20) == 0);
	free(text);
	json_decref(doc);
}

static void test_never_allowed(void)
{
	CHECK(manifest_syscall_never_allowed("ptrace"));
	CHECK(manifest_syscall_never_allowed("io_uring_setup"));
	CHECK(manifest_syscall_never_allowed("ioperm"));
	CHECK(!manifest_syscall_never_allowed("read"));
	CHECK(!manifest_syscall_never_allowed("ptrace2"));
}

int main(int argc, char **argv)
{
	int valid, invalid;

	if (argc != 2) {
		fprintf(stderr, "usage: manifest_test FIXTURES_DIR\n");
		return 2;
	}
	fixtures = argv[1];
	valid = walk_fixtures("valid", test_valid);
	invalid = walk_fixtures("invalid", test_invalid);
	printf("%d valid and %d invalid fixtures\n", valid, invalid);
	CHECK(valid + invalid >= 40);
	for (size_t i = 0; i < ARRAY_LEN(valid_checks); i++) {
		if (!valid_checks[i].seen)
			fprintf(stderr, "no fixture valid/%s.json\n", valid_checks[i].fixture);
		CHECK(valid_checks[i].seen);
	}
	test_load_errors();
	test_from_json_edges();
	test_error_buffers();
	test_never_allowed();
	return check_summary();
}
