/* manifest_fuzz.c: libFuzzer target for manifests/manifest.c. The input is an agent.json.
 * A refusal must be -EINVAL with one line of error that names the source and fits any
 * buffer; an accepted manifest must have the guarantees manifest.h states (entrypoint and
 * lists NULL-terminated, paths absolute without "..", no never-allowed syscall), and its
 * normalized JSON must give back an equal manifest, from the JSON tree and from its text. */
#include "fuzz.h"
#include "manifest.h"

#include <errno.h>
#include <string.h>

/* The error contract of manifest_parse, for a buffer of errlen bytes. */
static void check_refusal(int rc, const struct manifest *m, const char *err, size_t errlen)
{
	size_t len = strnlen(err, errlen);

	REQUIRE(rc == -EINVAL);
	REQUIRE(m == NULL);
	REQUIRE(len < errlen);
	REQUIRE(len > 0 && !memchr(err, '\n', len));
	REQUIRE(strncmp(err, "agent.json", errlen - 1 < 10 ? errlen - 1 : 10) == 0);
}

static void check_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		REQUIRE(v[i] != NULL);
	REQUIRE(v[n] == NULL);
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return true;
	return false;
}

static void check_accepted(const struct manifest *m)
{
	REQUIRE(m->name && m->name[0] && m->version && m->version[0] && m->description);
	REQUIRE(m->entrypoint_len >= 1);
	check_strv(m->entrypoint, m->entrypoint_len);
	check_strv(m->input_content_types, m->input_content_types_len);
	check_strv(m->output_content_types, m->output_content_types_len);
	check_strv(m->sandbox.allow_syscalls, m->sandbox.allow_syscalls_len);
	REQUIRE(m->mode_session || m->mode_invoke);
	REQUIRE(m->input_schema && m->metadata && json_is_object(m->metadata));
	for (size_t i = 0; i < m->sandbox.allow_syscalls_len; i++)
		REQUIRE(!manifest_syscall_never_allowed(m->sandbox.allow_syscalls[i]));
	for (size_t i = 0; i < m->sandbox.paths_len; i++) {
		REQUIRE(m->sandbox.paths[i].path[0] == '/');
		REQUIRE(!has_dotdot(m->sandbox.paths[i].path));
	}
	for (size_t i = 0; i < m->config_len; i++)
		REQUIRE(m->config[i].name && m->config[i].description);
	REQUIRE(m->sandbox.limits.memory_mb >= 1 && m->sandbox.limits.run_timeout_s >= 1);
	REQUIRE(m->invoke.workers >= 1 && m->session.max_queued_runs >= 0);
	if (m->install.command)
		check_strv(m->install.command, m->install.command_len);
}

/* normalize(m) is a fixed point: parsing it (tree or text) gives it back. */
static void check_round_trip(const struct manifest *m)
{
	char err[MANIFEST_ERR_MAX];
	struct manifest *again = NULL;
	json_t *doc = manifest_to_json(m), *doc2;
	char *text;

	REQUIRE(doc);
	REQUIRE(manifest_from_json(doc, "agent.json", &again, err, sizeof(err)) == 0);
	doc2 = manifest_to_json(again);
	REQUIRE(json_equal(doc, doc2));
	json_decref(doc2);
	manifest_free(again);

	text = json_dumps(doc, JSON_COMPACT);
	REQUIRE(text);
	REQUIRE(manifest_parse(text, strlen(text), "agent.json", &again, err, sizeof(err)) == 0);
	doc2 = manifest_to_json(again);
	REQUIRE(json_equal(doc, doc2));
	json_decref(doc2);
	manifest_free(again);
	free(text);
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[MANIFEST_ERR_MAX], small[12];
	struct manifest *m = NULL;
	int rc = manifest_parse((const char *)data, size, "agent.json", &m, err, sizeof(err));

	if (rc < 0) {
		check_refusal(rc, m, err, sizeof(err));
		/* The same refusal into a buffer too small for it: cut, still terminated. */
		rc = manifest_parse((const char *)data, size, "agent.json", &m, small,
		                    sizeof(small));
		check_refusal(rc, m, small, sizeof(small));
		return 0;
	}
	REQUIRE(rc == 0 && m);
	check_accepted(m);
	check_round_trip(m);
	manifest_free(m);
	return 0;
}
