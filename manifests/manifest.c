/* manifest.c: turns an agent.json document into a struct manifest with every default
 * filled, or into one error line naming the field and the rule it breaks. The rules are
 * those of agent.schema.json; tests/unit/manifests/schema_agree.py holds the two together.
 *
 * How it reads: each JSON object of the format is a table of fields (name, parser,
 * required, and for integers the place, default and bounds). check_object() walks a table
 * in a fixed order, so the first error reported is deterministic: unknown keys first (in
 * document order), then the table's fields in table order, array items by index. Parsers
 * write straight into the manifest being built, so on error manifest_free() releases
 * whatever was filled so far. Scalar defaults are set before parsing; pointer defaults
 * (strings, arrays, JSON values) are filled afterwards for what is still NULL. */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Limits of the format that are not per-field integers (docs/manifest.md lists them). */
#define NAME_MAX_CHARS 63
#define VERSION_MAX_CHARS 64
#define DESCRIPTION_MAX_CHARS 1024
#define MEDIA_TYPE_MAX_CHARS 255
#define ARGV_MAX_ITEMS 64
#define RESERVED_ENV_PREFIX "AGENTHOST_"

/* Calls the format forbids in allow_syscalls whatever the profile: each one either
 * escapes or weakens the sandbox (io_uring bypasses seccomp, the rest reach the kernel's
 * namespace, module, key, tracing and swap machinery). Same list as the schema's
 * $defs/never_allowed_syscall. */
/* clang-format off */
static const char *const never_allowed_syscalls[] = {
	"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace",
	"process_vm_readv", "process_vm_writev", "mount", "umount2",
	"pivot_root", "chroot", "unshare", "setns",
	"bpf", "perf_event_open", "keyctl", "add_key",
	"request_key", "userfaultfd", "init_module", "finit_module",
	"delete_module", "kexec_load", "kexec_file_load", "reboot",
	"swapon", "swapoff", "acct", "open_by_handle_at",
	"iopl", "ioperm",
};
/* clang-format on */

/* ---- allocation: failure aborts (manifest.h's contract) ---- */

static void *alloc_zeroed(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		abort();
	return p;
}

static char *dup_string(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* ---- error reporting ---- */

/* Where we are in the document ("sandbox.limits.memory_mb", "entrypoint[0]") and where
 * the one error line goes. */
struct ctx {
	const char *source;
	char *err;
	size_t errlen;
	char path[MANIFEST_ERR_MAX];
	size_t path_len;
};

/* The error is one line whatever the document holds (keys may contain newlines). */
static void make_one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void write_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void write_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	make_one_line(err);
}

static int fail(struct ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "SOURCE: PATH: RULE" (or "SOURCE: RULE" at the root) and returns -EINVAL. */
static int fail(struct ctx *ctx, const char *fmt, ...)
{
	char rule[MANIFEST_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	if (ctx->path_len)
		write_error(ctx->err, ctx->errlen, "%s: %s: %s", ctx->source, ctx->path, rule);
	else
		write_error(ctx->err, ctx->errlen, "%s: %s", ctx->source, rule);
	return -EINVAL;
}

/* Appends ".key" (or "key" at the root) to the path and returns the length to restore. A
 * path too long for the buffer is cut; the message stays one line either way. */
static size_t path_push_key(struct ctx *ctx, const char *key)
{
	size_t mark = ctx->path_len;
	int n = snprintf(ctx->path + mark, sizeof(ctx->path) - mark, "%s%s", mark ? "." : "", key);

	if (n > 0)
		ctx->path_len = strnlen(ctx->path, sizeof(ctx->path) - 1);
	return mark;
}

static size_t path_push_index(struct ctx *ctx, size_t index)
{
	size_t mark = ctx->path_len;
	int n = snprintf(ctx->path + mark, sizeof(ctx->path) - mark, "[%zu]", index);

	if (n > 0)
		ctx->path_len = strnlen(ctx->path, sizeof(ctx->path) - 1);
	return mark;
}

static void path_restore(struct ctx *ctx, size_t mark)
{
	ctx->path_len = mark;
	ctx->path[mark] = '\0';
}

/* ---- character-level rules (the schema's patterns, written out) ---- */

/* JSON Schema's minLength/maxLength count code points; jansson strings are valid UTF-8. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ */
static bool is_agent_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ */
static bool is_version_text(const char *s)
{
	if (!is_alnum(s[0]))
		return false;
	for (s++; *s; s++)
		if (!is_alnum(*s) && !strchr(".+_-", *s))
			return false;
	return true;
}

/* ^[A-Za-z_][A-Za-z0-9_]*$ */
static bool is_variable_name(const char *s)
{
	if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (; *s; s++)
		if (!is_alnum(*s) && *s != '_')
			return false;
	return true;
}

/* One side of ^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$ : stops at '/' or the end. */
static const char *skip_media_token(const char *s)
{
	while (*s && (is_lower_alnum(*s) || strchr("!#$&^_.+-", *s)))
		s++;
	return s;
}

static bool is_media_type(const char *s)
{
	const char *slash = skip_media_token(s);

	if (slash == s || *slash != '/')
		return false;
	const char *end = skip_media_token(slash + 1);
	return end != slash + 1 && *end == '\0';
}

/* ^[a-z0-9_]+$ */
static bool is_syscall_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_lower_alnum(*s) && *s != '_')
			return false;
	return true;
}

/* True when one "/"-separated segment is exactly "..": such a path could leave the agent
 * folder (relative) or dodge a prefix check (absolute). */
static bool has_dotdot_component(const char *path)
{
	for (const char *seg = path;; seg++) {
		size_t len = strcspn(seg, "/");

		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return true;
		seg += len;
		if (!*seg)
			return false;
	}
}

bool manifest_syscall_never_allowed(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(never_allowed_syscalls); i++)
		if (strcmp(name, never_allowed_syscalls[i]) == 0)
			return true;
	return false;
}

/* ---- typed JSON access ---- */

/* JSON Schema's "integer" is any number with a zero fractional part, so 512.0 counts; a
 * value beyond int64 is clamped so that the range check reports it. */
static bool json_to_integer(json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	double d = json_real_value(v);
	if (d != d)
		return false;
	if (d >= 9.2e18 || d <= -9.2e18) {
		*out = d > 0 ? INT64_MAX : INT64_MIN;
		return true;
	}
	*out = (int64_t)d;
	return (double)*out == d;
}

/* A JSON string usable as a C string (json_stringn can build one with a NUL inside). */
static int get_string(struct ctx *ctx, json_t *v, const char **out)
{
	if (!json_is_string(v))
		return fail(ctx, "must be a string");
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v))
		return fail(ctx, "must not contain a NUL character");
	return 0;
}

/* Index of v's string in the NULL-terminated choices, or -1 (also for a non-string). */
static int choice_index(json_t *v, const char *const *choices)
{
	const char *s = json_string_value(v);

	if (!s || strlen(s) != json_string_length(v))
		return -1;
	for (int i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0)
			return i;
	return -1;
}

static const char *const seccomp_choices[] = {"default", "python", NULL};
static const char *const path_mode_choices[] = {"ro", "rw", NULL};
static const char *const isolation_choices[] = {"process", "worker", NULL};
static const char *const dependency_type_choices[] = {"agent", NULL};

static char **field_string(void *target, size_t offset)
{
	return (char **)((char *)target + offset);
}

/* ---- field tables ---- */

struct field;
typedef int (*parse_fn)(struct ctx *ctx, json_t *value, void *target, const struct field *f);

/* One key of a JSON object. `offset` says where the parsed value goes inside the target
 * struct (for parsers shared by several fields); def/min/max are for parse_int. */
struct field {
	const char *name;
	parse_fn parse;
	bool required;
	size_t offset;
	int64_t def, min, max;
};

struct object_rule {
	const struct field *fields;
	size_t n;
	bool open; /* keys not in the table are allowed (metadata is free-form) */
};

#define OBJECT_RULE(table, is_open)                                                                \
	{                                                                                          \
		(table), ARRAY_LEN(table), (is_open)                                               \
	}

static const struct field *find_field(const struct object_rule *rule, const char *key)
{
	for (size_t i = 0; i < rule->n; i++)
		if (strcmp(rule->fields[i].name, key) == 0)
			return &rule->fields[i];
	return NULL;
}

static int check_unknown_keys(struct ctx *ctx, json_t *obj, const struct object_rule *rule)
{
	const char *key;
	json_t *v;

	if (rule->open)
		return 0;
	json_object_foreach(obj, key, v)
	{
		if (!find_field(rule, key)) {
			path_push_key(ctx, key);
			return fail(ctx, "unknown field");
		}
	}
	return 0;
}

static int check_object(struct ctx *ctx, json_t *obj, const struct object_rule *rule, void *target)
{
	int rc;

	if (!json_is_object(obj))
		return fail(ctx, "must be an object");
	rc = check_unknown_keys(ctx, obj, rule);
	for (size_t i = 0; !rc && i < rule->n; i++) {
		const struct field *f = &rule->fields[i];
		json_t *v = json_object_get(obj, f->name);
		size_t mark;

		if (!v && !f->required)
			continue;
		mark = path_push_key(ctx, f->name);
		rc = v ? f->parse(ctx, v, target, f) : fail(ctx, "required field missing");
		path_restore(ctx, mark);
	}
	return rc;
}

/* Runs check_object on every item of an array of objects. items/item_size give the
 * already allocated C array the items are parsed into (NULL, 0 to validate only);
 * after_item, when set, checks an item against the ones before it. */
static int check_object_items(struct ctx *ctx, json_t *arr, const struct object_rule *rule,
                              void *items, size_t item_size,
                              int (*after_item)(struct ctx *ctx, void *items, size_t index))
{
	int rc = 0;

	for (size_t i = 0; !rc && i < json_array_size(arr); i++) {
		void *item = items ? (char *)items + i * item_size : NULL;
		size_t mark = path_push_index(ctx, i);

		rc = check_object(ctx, json_array_get(arr, i), rule, item);
		if (!rc && after_item)
			rc = after_item(ctx, items, i);
		path_restore(ctx, mark);
	}
	return rc;
}

/* ---- arrays of strings ---- */

struct strv_rule {
	size_t min, max; /* item count */
	bool unique;
	const char *shape; /* the rule, when the value is not an array of min..max items */
	int (*check_item)(struct ctx *ctx, const char *s, size_t index);
};

/* Parses an array of strings into a NULL-terminated vector stored in *out at once, so a
 * later error leaves it for manifest_free. */
static int parse_strv(struct ctx *ctx, json_t *v, const struct strv_rule *rule, char ***out,
                      size_t *out_len)
{
	size_t n = json_array_size(v);
	int rc = 0;

	if (!json_is_array(v) || n < rule->min || n > rule->max)
		return fail(ctx, "%s", rule->shape);
	*out = alloc_zeroed(n + 1, sizeof(char *));
	for (size_t i = 0; !rc && i < n; i++) {
		size_t mark = path_push_index(ctx, i);
		const char *s = NULL;

		rc = get_string(ctx, json_array_get(v, i), &s);
		if (!rc && rule->check_item)
			rc = rule->check_item(ctx, s, i);
		for (size_t j = 0; !rc && rule->unique && j < i; j++)
			if (strcmp((*out)[j], s) == 0)
				rc = fail(ctx, "duplicate value \"%s\"", s);
		if (!rc)
			(*out)[i] = dup_string(s);
		path_restore(ctx, mark);
	}
	if (out_len)
		*out_len = rc ? 0 : n;
	return rc;
}

static int check_argv_item(struct ctx *ctx, const char *s, size_t index)
{
	(void)index;
	if (!*s)
		return fail(ctx, "must be a non-empty string");
	return 0;
}

/* argv[0] is relative to the agent folder or absolute; either way no ".." component. */
static int check_entrypoint_item(struct ctx *ctx, const char *s, size_t index)
{
	int rc = check_argv_item(ctx, s, index);

	if (!rc && index == 0 && has_dotdot_component(s))
		rc = fail(ctx, "must not contain a \"..\" component");
	return rc;
}

static int check_mode(struct ctx *ctx, const char *s, size_t index)
{
	(void)index;
	if (strcmp(s, "session") != 0 && strcmp(s, "invoke") != 0)
		return fail(ctx, "must be \"session\" or \"invoke\"");
	return 0;
}

static int check_media_type(struct ctx *ctx, const char *s, size_t index)
{
	(void)index;
	if (utf8_chars(s) > MEDIA_TYPE_MAX_CHARS)
		return fail(ctx, "must be at most %d characters long", MEDIA_TYPE_MAX_CHARS);
	if (!is_media_type(s))
		return fail(ctx, "must be a lower-case media type such as \"application/json\"");
	return 0;
}

static int check_syscall(struct ctx *ctx, const char *s, size_t index)
{
	(void)index;
	if (!is_syscall_name(s))
		return fail(ctx, "must be a syscall name (a-z, 0-9 and '_')");
	if (manifest_syscall_never_allowed(s))
		return fail(ctx, "\"%s\" is never allowed", s);
	return 0;
}

static const struct strv_rule entrypoint_rule = {
    .min = 1,
    .max = ARGV_MAX_ITEMS,
    .shape = "must be an array of 1 to 64 non-empty strings",
    .check_item = check_entrypoint_item,
};
static const struct strv_rule command_rule = {
    .min = 1,
    .max = ARGV_MAX_ITEMS,
    .shape = "must be an array of 1 to 64 non-empty strings",
    .check_item = check_argv_item,
};
static const struct strv_rule modes_rule = {
    .min = 1,
    .max = SIZE_MAX,
    .unique = true,
    .shape = "must be a non-empty array of \"session\" and \"invoke\"",
    .check_item = check_mode,
};
static const struct strv_rule media_types_rule = {
    .min = 1,
    .max = SIZE_MAX,
    .unique = true,
    .shape = "must be a non-empty array of media types",
    .check_item = check_media_type,
};
static const struct strv_rule syscalls_rule = {
    .max = SIZE_MAX,
    .unique = true,
    .shape = "must be an array of syscall names",
    .check_item = check_syscall,
};
static const struct strv_rule strings_rule = {
    .max = SIZE_MAX,
    .shape = "must be an array of strings",
};

/* ---- scalar parsers ---- */

static int parse_int(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	int64_t n;

	if (!json_to_integer(v, &n) || n < f->min)
		return fail(ctx, "must be an integer >= %" PRId64, f->min);
	if (n > f->max)
		return fail(ctx, "must be an integer <= %" PRId64, f->max);
	*(int64_t *)((char *)target + f->offset) = n;
	return 0;
}

static int parse_bool(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	if (!json_is_boolean(v))
		return fail(ctx, "must be true or false");
	*(bool *)((char *)target + f->offset) = json_is_true(v);
	return 0;
}

/* A string kept in metadata; only its type is checked (target may be NULL). */
static int parse_any_string(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s;

	(void)target, (void)f;
	return get_string(ctx, v, &s);
}

static int parse_nonempty_string(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	int rc = get_string(ctx, v, &s);

	(void)target, (void)f;
	if (!rc && !*s)
		rc = fail(ctx, "must be a non-empty string");
	return rc;
}

static int parse_string_list(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	char **strv = NULL;
	int rc = parse_strv(ctx, v, &strings_rule, &strv, NULL);

	(void)target, (void)f;
	strv_free(strv);
	return rc;
}

static int parse_manifest_version(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	int64_t n;

	(void)f;
	if (!json_to_integer(v, &n) || n != 1)
		return fail(ctx, "must be 1");
	((struct manifest *)target)->manifest_version = 1;
	return 0;
}

static int parse_agent_name(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	size_t chars;
	int rc = get_string(ctx, v, &s);

	if (rc)
		return rc;
	chars = utf8_chars(s);
	if (chars < 1 || chars > NAME_MAX_CHARS)
		return fail(ctx, "must be 1 to %d characters long", NAME_MAX_CHARS);
	if (!is_agent_name(s))
		return fail(ctx, "must contain only a-z, 0-9 and '-', and start and end with a "
		                 "letter or digit");
	*field_string(target, f->offset) = dup_string(s);
	return 0;
}

/* The version names a folder (STATE/agents/NAME/VERSION/), hence the tight alphabet. */
static int parse_version(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	size_t chars;
	int rc = get_string(ctx, v, &s);

	if (rc)
		return rc;
	chars = utf8_chars(s);
	if (chars < 1 || chars > VERSION_MAX_CHARS)
		return fail(ctx, "must be 1 to %d characters long", VERSION_MAX_CHARS);
	if (!is_version_text(s))
		return fail(ctx, "must start with a letter or digit and contain only letters, "
		                 "digits, '.', '+', '_' and '-'");
	if (strstr(s, ".."))
		return fail(ctx, "must not contain \"..\"");
	*field_string(target, f->offset) = dup_string(s);
	return 0;
}

static int parse_description(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	int rc = get_string(ctx, v, &s);

	if (rc)
		return rc;
	if (utf8_chars(s) > DESCRIPTION_MAX_CHARS)
		return fail(ctx, "must be at most %d characters long", DESCRIPTION_MAX_CHARS);
	*field_string(target, f->offset) = dup_string(s);
	return 0;
}

/* Environment variable names (env keys, config names): AGENTHOST_* belongs to the host,
 * which sets AGENTHOST_FD and friends and must not be overridden. */
static int check_variable_name(struct ctx *ctx, const char *s)
{
	if (!is_variable_name(s))
		return fail(ctx, "must be a variable name: letters, digits and '_', not starting "
		                 "with a digit");
	if (strncmp(s, RESERVED_ENV_PREFIX, strlen(RESERVED_ENV_PREFIX)) == 0)
		return fail(ctx, "the " RESERVED_ENV_PREFIX " prefix is reserved for the host");
	return 0;
}

static int parse_variable_name(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	int rc = get_string(ctx, v, &s);

	if (!rc)
		rc = check_variable_name(ctx, s);
	if (!rc)
		*field_string(target, f->offset) = dup_string(s);
	return rc;
}

/* ---- top-level fields ---- */

static int parse_entrypoint(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	return parse_strv(ctx, v, &entrypoint_rule, &m->entrypoint, &m->entrypoint_len);
}

static int parse_env(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;
	const char *key;
	json_t *value;
	int rc = 0;

	(void)f;
	if (!json_is_object(v))
		return fail(ctx, "must be an object of strings");
	m->env = alloc_zeroed(json_object_size(v), sizeof(*m->env));
	json_object_foreach(v, key, value)
	{
		size_t mark = path_push_key(ctx, key);
		const char *s = NULL;

		rc = check_variable_name(ctx, key);
		if (!rc)
			rc = get_string(ctx, value, &s);
		path_restore(ctx, mark);
		if (rc)
			return rc;
		m->env[m->env_len].key = dup_string(key);
		m->env[m->env_len].value = dup_string(s);
		m->env_len++;
	}
	return 0;
}

static int parse_modes(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;
	char **modes = NULL;
	int rc = parse_strv(ctx, v, &modes_rule, &modes, NULL);

	(void)f;
	m->mode_session = m->mode_invoke = false;
	for (size_t i = 0; !rc && modes[i]; i++) {
		if (strcmp(modes[i], "session") == 0)
			m->mode_session = true;
		else
			m->mode_invoke = true;
	}
	strv_free(modes);
	return rc;
}

static int parse_input_content_types(struct ctx *ctx, json_t *v, void *target,
                                     const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	return parse_strv(ctx, v, &media_types_rule, &m->input_content_types,
	                  &m->input_content_types_len);
}

static int parse_output_content_types(struct ctx *ctx, json_t *v, void *target,
                                      const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	return parse_strv(ctx, v, &media_types_rule, &m->output_content_types,
	                  &m->output_content_types_len);
}

static int parse_input_schema(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	if (!json_is_object(v) && !json_is_null(v))
		return fail(ctx, "must be an object (a JSON Schema) or null");
	m->input_schema = json_deep_copy(v);
	if (!m->input_schema)
		abort();
	return 0;
}

static const struct field config_fields[] = {
    {"name", parse_variable_name, true, offsetof(struct manifest_config, name), 0, 0, 0},
    {"description", parse_description, false, offsetof(struct manifest_config, description), 0, 0,
     0},
    {"required", parse_bool, false, offsetof(struct manifest_config, required), 0, 0, 0},
    {"secret", parse_bool, false, offsetof(struct manifest_config, secret), 0, 0, 0},
};
static const struct object_rule config_rule = OBJECT_RULE(config_fields, false);

/* Config names become environment variables and keys of PUT .../config: one each. */
static int config_after_item(struct ctx *ctx, void *items, size_t index)
{
	struct manifest_config *config = items;
	size_t mark;
	int rc = 0;

	if (!config[index].description)
		config[index].description = dup_string("");
	for (size_t j = 0; j < index; j++) {
		if (strcmp(config[j].name, config[index].name) == 0) {
			mark = path_push_key(ctx, "name");
			rc = fail(ctx, "duplicate name \"%s\"", config[index].name);
			path_restore(ctx, mark);
			break;
		}
	}
	return rc;
}

static int parse_config(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	if (!json_is_array(v))
		return fail(ctx, "must be an array");
	m->config_len = json_array_size(v);
	m->config = alloc_zeroed(m->config_len, sizeof(*m->config));
	return check_object_items(ctx, v, &config_rule, m->config, sizeof(*m->config),
	                          config_after_item);
}

static int parse_dependency_type(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	if (choice_index(v, dependency_type_choices) < 0)
		return fail(ctx, "must be \"agent\"");
	*field_string(target, f->offset) = dup_string("agent");
	return 0;
}

static const struct field dependency_fields[] = {
    {"type", parse_dependency_type, true, offsetof(struct manifest_dependency, type), 0, 0, 0},
    {"name", parse_agent_name, true, offsetof(struct manifest_dependency, name), 0, 0, 0},
};
static const struct object_rule dependency_rule = OBJECT_RULE(dependency_fields, false);

static int dependency_after_item(struct ctx *ctx, void *items, size_t index)
{
	struct manifest_dependency *deps = items;
	size_t mark;
	int rc = 0;

	for (size_t j = 0; j < index; j++) {
		if (strcmp(deps[j].name, deps[index].name) == 0) {
			mark = path_push_key(ctx, "name");
			rc = fail(ctx, "duplicate dependency \"%s\"", deps[index].name);
			path_restore(ctx, mark);
			break;
		}
	}
	return rc;
}

static int parse_dependencies(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	if (!json_is_array(v))
		return fail(ctx, "must be an array");
	m->dependencies_len = json_array_size(v);
	m->dependencies = alloc_zeroed(m->dependencies_len, sizeof(*m->dependencies));
	return check_object_items(ctx, v, &dependency_rule, m->dependencies,
	                          sizeof(*m->dependencies), dependency_after_item);
}

/* Skills are shaped like A2A AgentSkills, which carry more optional keys (examples,
 * inputModes, ...): the rule is open. */
static const struct field skill_fields[] = {
    {"id", parse_nonempty_string, true, 0, 0, 0, 0},
    {"name", parse_nonempty_string, true, 0, 0, 0, 0},
    {"description", parse_any_string, false, 0, 0, 0, 0},
    {"tags", parse_string_list, false, 0, 0, 0, 0},
};
static const struct object_rule skill_rule = OBJECT_RULE(skill_fields, true);

static int parse_skills(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)target, (void)f;
	if (!json_is_array(v))
		return fail(ctx, "must be an array");
	return check_object_items(ctx, v, &skill_rule, NULL, 0, NULL);
}

/* Metadata is descriptive and free-form: the known keys are type-checked and everything
 * is kept as given. */
static const struct field metadata_fields[] = {
    {"license", parse_any_string, false, 0, 0, 0, 0},
    {"author", parse_any_string, false, 0, 0, 0, 0},
    {"tags", parse_string_list, false, 0, 0, 0, 0},
    {"skills", parse_skills, false, 0, 0, 0, 0},
};
static const struct object_rule metadata_rule = OBJECT_RULE(metadata_fields, true);

static int parse_metadata(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;
	int rc = check_object(ctx, v, &metadata_rule, NULL);

	(void)f;
	if (rc)
		return rc;
	m->metadata = json_deep_copy(v);
	if (!m->metadata)
		abort();
	return 0;
}

/* ---- sandbox ---- */

static int parse_seccomp(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;
	int i = choice_index(v, seccomp_choices);

	(void)f;
	if (i < 0)
		return fail(ctx, "must be \"default\" or \"python\"");
	m->sandbox.seccomp = dup_string(seccomp_choices[i]);
	return 0;
}

static int parse_allow_syscalls(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	return parse_strv(ctx, v, &syscalls_rule, &m->sandbox.allow_syscalls,
	                  &m->sandbox.allow_syscalls_len);
}

static int parse_mount_path(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	const char *s = NULL;
	int rc = get_string(ctx, v, &s);

	if (rc)
		return rc;
	if (s[0] != '/')
		return fail(ctx, "must be an absolute path");
	if (has_dotdot_component(s))
		return fail(ctx, "must not contain a \"..\" component");
	*field_string(target, f->offset) = dup_string(s);
	return 0;
}

static int parse_path_mode(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	int i = choice_index(v, path_mode_choices);

	(void)f;
	if (i < 0)
		return fail(ctx, "must be \"ro\" or \"rw\"");
	((struct manifest_path *)target)->writable = i == 1;
	return 0;
}

static const struct field path_fields[] = {
    {"path", parse_mount_path, true, offsetof(struct manifest_path, path), 0, 0, 0},
    {"mode", parse_path_mode, false, 0, 0, 0, 0},
};
static const struct object_rule path_rule = OBJECT_RULE(path_fields, false);

static int parse_paths(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	if (!json_is_array(v))
		return fail(ctx, "must be an array");
	m->sandbox.paths_len = json_array_size(v);
	m->sandbox.paths = alloc_zeroed(m->sandbox.paths_len, sizeof(*m->sandbox.paths));
	return check_object_items(ctx, v, &path_rule, m->sandbox.paths, sizeof(*m->sandbox.paths),
	                          NULL);
}

#define INT_FIELD(name, member, def, min, max)                                                     \
	{                                                                                          \
		(name), parse_int, false, offsetof(struct manifest, member), (def), (min), (max)   \
	}

/* The resource limits: name, default, minimum, maximum. The maxima only catch typos and
 * absurd values (a terabyte of memory, a day per run); docs/manifest.md lists them. */
static const struct field limits_fields[] = {
    INT_FIELD("memory_mb", sandbox.limits.memory_mb, 256, 1, 1048576),
    INT_FIELD("cpu_seconds", sandbox.limits.cpu_seconds, 60, 1, 604800),
    INT_FIELD("processes", sandbox.limits.processes, 32, 1, 4096),
    INT_FIELD("open_files", sandbox.limits.open_files, 256, 1, 20000),
    INT_FIELD("file_size_mb", sandbox.limits.file_size_mb, 64, 1, 1048576),
    INT_FIELD("scratch_mb", sandbox.limits.scratch_mb, 64, 1, 1048576),
    INT_FIELD("run_timeout_s", sandbox.limits.run_timeout_s, 60, 1, 86400),
    INT_FIELD("output_bytes", sandbox.limits.output_bytes, 4194304, 1, 1073741824),
};
static const struct object_rule limits_rule = OBJECT_RULE(limits_fields, false);

static int parse_limits(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)f;
	return check_object(ctx, v, &limits_rule, target);
}

static const struct field sandbox_fields[] = {
    {"seccomp", parse_seccomp, false, 0, 0, 0, 0},
    {"allow_syscalls", parse_allow_syscalls, false, 0, 0, 0, 0},
    {"network", parse_bool, false, offsetof(struct manifest, sandbox.network), 0, 0, 0},
    {"paths", parse_paths, false, 0, 0, 0, 0},
    {"limits", parse_limits, false, 0, 0, 0, 0},
};
static const struct object_rule sandbox_rule = OBJECT_RULE(sandbox_fields, false);

static int parse_sandbox(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)f;
	return check_object(ctx, v, &sandbox_rule, target);
}

/* ---- session, invoke, install ---- */

static const struct field session_fields[] = {
    INT_FIELD("hibernate_after_s", session.hibernate_after_s, 300, 1, 2592000),
    INT_FIELD("expire_after_s", session.expire_after_s, 86400, 1, 31536000),
    INT_FIELD("max_queued_runs", session.max_queued_runs, 8, 0, 1024),
};
static const struct object_rule session_rule = OBJECT_RULE(session_fields, false);

static int parse_session(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)f;
	return check_object(ctx, v, &session_rule, target);
}

static int parse_isolation(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;
	int i = choice_index(v, isolation_choices);

	(void)f;
	if (i < 0)
		return fail(ctx, "must be \"process\" or \"worker\"");
	m->invoke.isolation = i == 1 ? MANIFEST_ISOLATION_WORKER : MANIFEST_ISOLATION_PROCESS;
	return 0;
}

static const struct field invoke_fields[] = {
    {"isolation", parse_isolation, false, 0, 0, 0, 0},
    INT_FIELD("workers", invoke.workers, 2, 1, 64),
};
static const struct object_rule invoke_rule = OBJECT_RULE(invoke_fields, false);

static int parse_invoke(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)f;
	return check_object(ctx, v, &invoke_rule, target);
}

static int parse_install_command(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	struct manifest *m = target;

	(void)f;
	return parse_strv(ctx, v, &command_rule, &m->install.command, &m->install.command_len);
}

static const struct field install_fields[] = {
    {"command", parse_install_command, true, 0, 0, 0, 0},
};
static const struct object_rule install_rule = OBJECT_RULE(install_fields, false);

/* null is accepted because manifest_to_json writes it for "no install step". */
static int parse_install(struct ctx *ctx, json_t *v, void *target, const struct field *f)
{
	(void)f;
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return fail(ctx, "must be an object or null");
	return check_object(ctx, v, &install_rule, target);
}

/* ---- the document ---- */

static const struct field manifest_fields[] = {
    {"manifest_version", parse_manifest_version, true, 0, 0, 0, 0},
    {"name", parse_agent_name, true, offsetof(struct manifest, name), 0, 0, 0},
    {"version", parse_version, true, offsetof(struct manifest, version), 0, 0, 0},
    {"description", parse_description, true, offsetof(struct manifest, description), 0, 0, 0},
    {"entrypoint", parse_entrypoint, true, 0, 0, 0, 0},
    {"env", parse_env, false, 0, 0, 0, 0},
    {"modes", parse_modes, false, 0, 0, 0, 0},
    {"input_content_types", parse_input_content_types, false, 0, 0, 0, 0},
    {"output_content_types", parse_output_content_types, false, 0, 0, 0, 0},
    {"input_schema", parse_input_schema, false, 0, 0, 0, 0},
    {"config", parse_config, false, 0, 0, 0, 0},
    {"dependencies", parse_dependencies, false, 0, 0, 0, 0},
    {"metadata", parse_metadata, false, 0, 0, 0, 0},
    {"sandbox", parse_sandbox, false, 0, 0, 0, 0},
    {"session", parse_session, false, 0, 0, 0, 0},
    {"invoke", parse_invoke, false, 0, 0, 0, 0},
    {"install", parse_install, false, 0, 0, 0, 0},
};
static const struct object_rule manifest_rule = OBJECT_RULE(manifest_fields, false);

/* The tables holding integer fields, for defaults and for manifest_to_json. */
static const struct object_rule *const int_rules[] = {&limits_rule, &session_rule, &invoke_rule};

static bool is_int_field(const struct field *f)
{
	return f->parse == parse_int;
}

static int64_t *int_slot(struct manifest *m, const struct field *f)
{
	return (int64_t *)((char *)m + f->offset);
}

static void set_scalar_defaults(struct manifest *m)
{
	for (size_t r = 0; r < ARRAY_LEN(int_rules); r++)
		for (size_t i = 0; i < int_rules[r]->n; i++)
			if (is_int_field(&int_rules[r]->fields[i]))
				*int_slot(m, &int_rules[r]->fields[i]) =
				    int_rules[r]->fields[i].def;
	m->mode_session = m->mode_invoke = true;
	m->sandbox.network = false;
	m->invoke.isolation = MANIFEST_ISOLATION_PROCESS;
}

static char **strv_of(const char *only, size_t *len)
{
	char **v = alloc_zeroed(only ? 2 : 1, sizeof(char *));

	if (only)
		v[0] = dup_string(only);
	*len = only ? 1 : 0;
	return v;
}

static void fill_pointer_defaults(struct manifest *m)
{
	if (!m->input_content_types)
		m->input_content_types = strv_of("application/json", &m->input_content_types_len);
	if (!m->output_content_types)
		m->output_content_types = strv_of("application/json", &m->output_content_types_len);
	if (!m->input_schema)
		m->input_schema = json_null();
	if (!m->metadata)
		m->metadata = json_object();
	if (!m->sandbox.seccomp)
		m->sandbox.seccomp = dup_string("default");
	if (!m->sandbox.allow_syscalls)
		m->sandbox.allow_syscalls = strv_of(NULL, &m->sandbox.allow_syscalls_len);
	if (!m->input_schema || !m->metadata)
		abort();
}

int manifest_from_json(json_t *doc, const char *source, struct manifest **out, char *err,
                       size_t errlen)
{
	struct ctx ctx = {.source = source ? source : "manifest", .err = err, .errlen = errlen};
	struct manifest *m;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!json_is_object(doc))
		return fail(&ctx, "must be a JSON object");
	m = alloc_zeroed(1, sizeof(*m));
	set_scalar_defaults(m);
	rc = check_object(&ctx, doc, &manifest_rule, m);
	if (rc) {
		manifest_free(m);
		return rc;
	}
	fill_pointer_defaults(m);
	*out = m;
	return 0;
}

int manifest_parse(const char *text, size_t len, const char *source, struct manifest **out,
                   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!source)
		source = "manifest";
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		write_error(err, errlen, "%s: invalid JSON at line %d column %d: %s", source,
		            jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	rc = manifest_from_json(doc, source, out, err, errlen);
	json_decref(doc);
	return rc;
}

/* Reads at most MANIFEST_MAX_BYTES + 1 bytes, so that a huge file (or a device) is refused
 * rather than read into memory. */
static int read_small_file(int fd, char **out, size_t *out_len)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		abort();
	for (;;) {
		if (len == cap) {
			if (cap > MANIFEST_MAX_BYTES)
				break;
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			free(buf);
			return -saved;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > MANIFEST_MAX_BYTES) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int manifest_load(const char *path, struct manifest **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int fd, rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		write_error(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	rc = read_small_file(fd, &text, &len);
	close(fd);
	if (rc == -EFBIG) {
		write_error(err, errlen, "%s: larger than %d bytes", path, MANIFEST_MAX_BYTES);
		return rc;
	}
	if (rc) {
		write_error(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	rc = manifest_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

/* ---- back to JSON ---- */

/* jansson reports allocation failure as NULL or -1; manifest.h promises an abort. */
static json_t *must(json_t *v)
{
	if (!v)
		abort();
	return v;
}

static void put(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_new(obj, key, must(value)))
		abort();
}

static void append(json_t *arr, json_t *value)
{
	if (json_array_append_new(arr, must(value)))
		abort();
}

static json_t *strv_to_json(char *const *v)
{
	json_t *arr = must(json_array());

	for (; v && *v; v++)
		append(arr, json_string(*v));
	return arr;
}

static void ints_to_json(json_t *obj, const struct object_rule *rule, const struct manifest *m)
{
	for (size_t i = 0; i < rule->n; i++)
		if (is_int_field(&rule->fields[i]))
			put(obj, rule->fields[i].name,
			    json_integer(*int_slot((struct manifest *)m, &rule->fields[i])));
}

static json_t *env_to_json(const struct manifest *m)
{
	json_t *obj = must(json_object());

	for (size_t i = 0; i < m->env_len; i++)
		put(obj, m->env[i].key, json_string(m->env[i].value));
	return obj;
}

static json_t *modes_to_json(const struct manifest *m)
{
	json_t *arr = must(json_array());

	if (m->mode_session)
		append(arr, json_string("session"));
	if (m->mode_invoke)
		append(arr, json_string("invoke"));
	return arr;
}

static json_t *config_to_json(const struct manifest *m)
{
	json_t *arr = must(json_array());

	for (size_t i = 0; i < m->config_len; i++)
		append(arr, json_pack("{s:s, s:s, s:b, s:b}", "name", m->config[i].name,
		                      "description", m->config[i].description, "required",
		                      m->config[i].required, "secret", m->config[i].secret));
	return arr;
}

static json_t *dependencies_to_json(const struct manifest *m)
{
	json_t *arr = must(json_array());

	for (size_t i = 0; i < m->dependencies_len; i++)
		append(arr, json_pack("{s:s, s:s}", "type", m->dependencies[i].type, "name",
		                      m->dependencies[i].name));
	return arr;
}

static json_t *paths_to_json(const struct manifest *m)
{
	json_t *arr = must(json_array());

	for (size_t i = 0; i < m->sandbox.paths_len; i++)
		append(arr, json_pack("{s:s, s:s}", "path", m->sandbox.paths[i].path, "mode",
		                      m->sandbox.paths[i].writable ? "rw" : "ro"));
	return arr;
}

static json_t *sandbox_to_json(const struct manifest *m)
{
	json_t *obj = must(json_object()), *limits = must(json_object());

	ints_to_json(limits, &limits_rule, m);
	put(obj, "seccomp", json_string(m->sandbox.seccomp));
	put(obj, "allow_syscalls", strv_to_json(m->sandbox.allow_syscalls));
	put(obj, "network", json_boolean(m->sandbox.network));
	put(obj, "paths", paths_to_json(m));
	put(obj, "limits", limits);
	return obj;
}

static json_t *session_to_json(const struct manifest *m)
{
	json_t *obj = must(json_object());

	ints_to_json(obj, &session_rule, m);
	return obj;
}

static json_t *invoke_to_json(const struct manifest *m)
{
	json_t *obj = must(json_object());

	put(obj, "isolation",
	    json_string(isolation_choices[m->invoke.isolation == MANIFEST_ISOLATION_WORKER]));
	ints_to_json(obj, &invoke_rule, m);
	return obj;
}

static json_t *install_to_json(const struct manifest *m)
{
	if (!m->install.command)
		return json_null();
	return json_pack("{s:o}", "command", strv_to_json(m->install.command));
}

/* Keys in the order of DESIGN §2, so dumps read like a hand-written manifest. */
json_t *manifest_to_json(const struct manifest *m)
{
	json_t *obj = must(json_object());

	put(obj, "manifest_version", json_integer(m->manifest_version));
	put(obj, "name", json_string(m->name));
	put(obj, "version", json_string(m->version));
	put(obj, "description", json_string(m->description));
	put(obj, "entrypoint", strv_to_json(m->entrypoint));
	put(obj, "env", env_to_json(m));
	put(obj, "modes", modes_to_json(m));
	put(obj, "input_content_types", strv_to_json(m->input_content_types));
	put(obj, "output_content_types", strv_to_json(m->output_content_types));
	put(obj, "input_schema", json_deep_copy(m->input_schema));
	put(obj, "config", config_to_json(m));
	put(obj, "dependencies", dependencies_to_json(m));
	put(obj, "metadata", json_deep_copy(m->metadata));
	put(obj, "sandbox", sandbox_to_json(m));
	put(obj, "session", session_to_json(m));
	put(obj, "invoke", invoke_to_json(m));
	put(obj, "install", install_to_json(m));
	return obj;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->version);
	free(m->description);
	strv_free(m->entrypoint);
	for (size_t i = 0; i < m->env_len; i++) {
		free(m->env[i].key);
		free(m->env[i].value);
	}
	free(m->env);
	strv_free(m->input_content_types);
	strv_free(m->output_content_types);
	json_decref(m->input_schema);
	for (size_t i = 0; i < m->config_len; i++) {
		free(m->config[i].name);
		free(m->config[i].description);
	}
	free(m->config);
	for (size_t i = 0; i < m->dependencies_len; i++) {
		free(m->dependencies[i].type);
		free(m->dependencies[i].name);
	}
	free(m->dependencies);
	json_decref(m->metadata);
	free(m->sandbox.seccomp);
	strv_free(m->sandbox.allow_syscalls);
	for (size_t i = 0; i < m->sandbox.paths_len; i++)
		free(m->sandbox.paths[i].path);
	free(m->sandbox.paths);
	strv_free(m->install.command);
	free(m);
}
