/* manifest.h: the agent manifest (agent.json) as a typed struct, with its parser and
 * validator. The rules are the ones of manifests/agent.schema.json; the C validator and
 * the schema must give the same verdict on every manifest (tests/unit/manifests checks it).
 * Documented field by field in docs/manifest.md. */
#ifndef AGENTHOST_MANIFEST_H
#define AGENTHOST_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_ERR_MAX 512

/* manifest_load refuses files larger than this with -EFBIG (an agent.json is a few
 * kilobytes; the limit keeps a stray huge file out of memory). */
#define MANIFEST_MAX_BYTES (1024 * 1024)

enum manifest_isolation { MANIFEST_ISOLATION_PROCESS, MANIFEST_ISOLATION_WORKER };

struct manifest_env {
	char *key;
	char *value;
};

struct manifest_path {
	char *path;    /* absolute host path, no ".." component */
	bool writable; /* mode "rw" */
};

struct manifest_config {
	char *name;
	char *description; /* "" when absent */
	bool required;
	bool secret;
};

struct manifest_dependency {
	char *type; /* "agent" */
	char *name;
};

struct manifest_limits {
	int64_t memory_mb;
	int64_t cpu_seconds;
	int64_t processes;
	int64_t open_files;
	int64_t file_size_mb;
	int64_t scratch_mb;
	int64_t run_timeout_s;
	int64_t output_bytes;
};

/* Every field is filled: absent ones carry their documented default. */
struct manifest {
	int manifest_version;
	char *name;
	char *version;
	char *description;

	char **entrypoint; /* argv, NULL-terminated; entrypoint_len excludes the NULL */
	size_t entrypoint_len;

	struct manifest_env *env;
	size_t env_len;

	bool mode_session;
	bool mode_invoke;

	char **input_content_types; /* NULL-terminated */
	size_t input_content_types_len;
	char **output_content_types; /* NULL-terminated */
	size_t output_content_types_len;
	json_t *input_schema; /* owned; JSON null when absent */

	struct manifest_config *config;
	size_t config_len;
	struct manifest_dependency *dependencies;
	size_t dependencies_len;
	json_t *metadata; /* owned; {} when absent */

	struct {
		char *seccomp;         /* profile name: "default" or "python" */
		char **allow_syscalls; /* NULL-terminated */
		size_t allow_syscalls_len;
		bool network;
		struct manifest_path *paths;
		size_t paths_len;
		struct manifest_limits limits;
	} sandbox;

	struct {
		int64_t hibernate_after_s;
		int64_t expire_after_s;
		int64_t max_queued_runs;
	} session;

	struct {
		enum manifest_isolation isolation;
		int64_t workers;
	} invoke;

	struct {
		char **command; /* argv, NULL-terminated; NULL when there is no install step */
		size_t command_len;
	} install;
};

/* Parses and validates a manifest already in memory. `source` names it in error
 * messages (usually the file path). On success returns 0 and *out owns a new manifest
 * (free with manifest_free). On failure returns a negative errno-style code (-EINVAL for
 * a rule broken, -ENOMEM never: allocation failure aborts), sets *out to NULL, and writes
 * one line to err such as
 *   "agent.json: sandbox.limits.memory_mb: must be an integer >= 1".
 * The field path uses dots and [i] for array elements; the unknown-field rule names
 * the field ("agent.json: sandbox.netwrok: unknown field"). */
int manifest_parse(const char *text, size_t len, const char *source, struct manifest **out,
		   char *err, size_t errlen);

/* Same, from a file. A missing or unreadable file is -ENOENT/-EACCES etc. with the
 * path and strerror in err. */
int manifest_load(const char *path, struct manifest **out, char *err, size_t errlen);

/* Validates an already-parsed JSON document (borrowed). Same contract as manifest_parse. */
int manifest_from_json(json_t *doc, const char *source, struct manifest **out, char *err,
		       size_t errlen);

/* The normalized manifest, every default filled in, as a new JSON object (caller owns the
 * reference). manifest_from_json(manifest_to_json(m)) gives back an equal manifest. */
json_t *manifest_to_json(const struct manifest *m);

/* Frees m and everything it owns. NULL is fine. */
void manifest_free(struct manifest *m);

/* True if `name` (borrowed) is one of the syscalls sandbox.allow_syscalls may never name
 * (io_uring_*, ptrace, mount, unshare, setns, bpf, module and key calls, ...), so the
 * sandbox can refuse them from the same list. */
bool manifest_syscall_never_allowed(const char *name);

#endif
