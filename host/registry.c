/* registry.c: the install transaction, uninstall, start-up sync and reconciliation of
 * STATE/agents with the store. See registry.h for the contract. */
#include "registry.h"
#include "fsutil.h"
#include "log.h"
#include "manifest.h"
#include "sandbox.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_TAIL 2048

struct registry {
	char *agents_dir;  /* STATE/agents */
	char *staging_dir; /* STATE/agents/.staging */
};

static char *version_dir(struct registry *reg, const char *name, const char *version)
{
	return xasprintf("%s/%s/%s", reg->agents_dir, name, version);
}

/* ---- start-up reconciliation */

struct row_check {
	struct registry *reg;
	struct store *st;
	char **stale; /* "name\0version" pairs to drop */
	size_t n_stale;
};

static int check_row_has_folder(const struct store_agent *a, void *ctx)
{
	struct row_check *rc = ctx;
	struct stat sb;

	if (stat(a->path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	rc->stale = xrealloc(rc->stale, (rc->n_stale + 1) * sizeof(char *));
	rc->stale[rc->n_stale++] = xasprintf("%s/%s", a->name, a->version);
	return 0;
}

/* Drops rows whose installed folder is gone (someone deleted it by hand). */
static int drop_rows_without_folder(struct registry *reg, struct store *st)
{
	struct row_check rc = {.reg = reg, .st = st};
	int err = store_agent_list(st, NULL, false, check_row_has_folder, &rc);

	for (size_t i = 0; i < rc.n_stale; i++) {
		char *slash = strchr(rc.stale[i], '/');
		*slash = '\0';
		log_warn("registry.row_dropped", "agent=%s version=%s reason=\"folder missing\"",
		         rc.stale[i], slash + 1);
		if (!err)
			err = store_agent_delete(st, rc.stale[i], slash + 1);
		free(rc.stale[i]);
	}
	free(rc.stale);
	return err;
}

/* Removes STATE/agents/NAME/VERSION folders the store does not know (an install that
 * crashed between rename and record), and empty NAME folders. */
static void drop_folders_without_row(struct registry *reg, struct store *st)
{
	DIR *top = opendir(reg->agents_dir);
	struct dirent *de;

	if (!top)
		return;
	while ((de = readdir(top))) {
		if (de->d_name[0] == '.')
			continue;
		char *name_dir = xasprintf("%s/%s", reg->agents_dir, de->d_name);
		DIR *versions = opendir(name_dir);
		struct dirent *ve;
		bool any = false;

		while (versions && (ve = readdir(versions))) {
			struct store_agent row = {0};
			if (ve->d_name[0] == '.')
				continue;
			if (store_agent_get(st, de->d_name, ve->d_name, &row) == 0) {
				store_agent_clear(&row);
				any = true;
				continue;
			}
			char *path = xasprintf("%s/%s", name_dir, ve->d_name);
			log_warn("registry.folder_dropped", "path=%s reason=\"not in the store\"",
			         path);
			fs_remove_tree(path);
			free(path);
		}
		if (versions)
			closedir(versions);
		if (!any)
			rmdir(name_dir);
		free(name_dir);
	}
	closedir(top);
}

int registry_open(const char *state_dir, struct store *st, struct registry **out, char *err,
                  size_t errlen)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));

	*out = NULL;
	reg->agents_dir = xasprintf("%s/agents", state_dir);
	reg->staging_dir = xasprintf("%s/.staging", reg->agents_dir);
	if (fs_mkdir_p(reg->staging_dir, 0755) < 0) {
		snprintf(err, errlen, "%s: %s", reg->staging_dir, strerror(errno));
		registry_close(reg);
		return -EIO;
	}
	fs_empty_dir(reg->staging_dir);
	if (drop_rows_without_folder(reg, st) < 0) {
		snprintf(err, errlen, "state store: %s", store_errmsg(st));
		registry_close(reg);
		return -EIO;
	}
	drop_folders_without_row(reg, st);
	*out = reg;
	return 0;
}

void registry_close(struct registry *reg)
{
	if (!reg)
		return;
	free(reg->agents_dir);
	free(reg->staging_dir);
	free(reg);
}

/* ---- the source folder */

struct source {
	char *dir;      /* realpath of the agent folder */
	char *manifest; /* dir + "/agent.json" */
};

static void source_clear(struct source *src)
{
	free(src->dir);
	free(src->manifest);
}

/* Resolves an install path (a folder or its agent.json) to the folder and manifest. */
static int source_resolve(const char *path, struct source *src, char *err, size_t errlen)
{
	struct stat sb;
	char *real;

	memset(src, 0, sizeof(*src));
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "%s: the path must be absolute", path ? path : "(none)");
		return -EINVAL;
	}
	real = realpath(path, NULL);
	if (!real || stat(real, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(real);
		return -EINVAL;
	}
	if (S_ISDIR(sb.st_mode)) {
		src->dir = real;
	} else if (S_ISREG(sb.st_mode) && strcmp(fs_basename(real), "agent.json") == 0) {
		*strrchr(real, '/') = '\0';
		src->dir = real[0] ? real : xstrdup("/");
		if (!real[0])
			free(real);
	} else {
		snprintf(err, errlen, "%s: expected an agent folder or its agent.json", path);
		free(real);
		return -EINVAL;
	}
	src->manifest = xasprintf("%s/agent.json", src->dir);
	if (access(src->manifest, R_OK) < 0) {
		snprintf(err, errlen, "%s: %s", src->manifest, strerror(errno));
		source_clear(src);
		return -EINVAL;
	}
	return 0;
}

/* ---- the install command */

struct command_result {
	struct sandbox_exit end;
	bool timed_out;
	char tail[OUTPUT_TAIL + 1]; /* last bytes of stdout+stderr */
};

static void keep_tail(struct command_result *res, size_t *len, const char *buf, size_t n)
{
	if (n >= OUTPUT_TAIL) {
		memcpy(res->tail, buf + n - OUTPUT_TAIL, OUTPUT_TAIL);
		*len = OUTPUT_TAIL;
	} else {
		size_t keep = *len + n > OUTPUT_TAIL ? OUTPUT_TAIL - n : *len;
		memmove(res->tail, res->tail + *len - keep, keep);
		memcpy(res->tail + keep, buf, n);
		*len = keep + n;
	}
	res->tail[*len] = '\0';
}

/* Drains the command's output until it closes or the deadline passes (then it is killed,
 * which closes the output too). */
static void collect_output(int fd, struct sandbox_child *child, int timeout_s,
                           struct command_result *res)
{
	time_t deadline = time(NULL) + timeout_s;
	size_t len = 0;
	char buf[4096];

	for (;;) {
		time_t left = deadline - time(NULL);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (left <= 0 && !res->timed_out) {
			res->timed_out = true;
			sandbox_child_kill(child);
		}
		int rc = poll(&pfd, 1, left > 0 ? (int)left * 1000 : 1000);
		if (rc <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		keep_tail(res, &len, buf, (size_t)n);
	}
}

/* The install command runs in the agent's sandbox (no network), with the staging copy
 * mounted writable at /agent. As root the sandboxed program is another uid, so the copy
 * is handed to that uid for the command and taken back after. */
static int run_install_command(const struct manifest *m, const char *copy,
                               struct command_result *res, char *err, size_t errlen)
{
	struct sandbox_policy *pol = sandbox_policy_from_manifest(m, copy);
	struct sandbox_child child = {0};
	struct sandbox_end end;
	bool root = geteuid() == 0;
	int pipefd[2], rc;

	memset(res, 0, sizeof(*res));
	sandbox_policy_set_argv(pol, (const char *const *)m->install.command);
	sandbox_policy_set_agent_dir(pol, copy, true);
	sandbox_policy_setenv(pol, "AGENTHOST_INSTALL", "1");
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "install command: pipe: %s", strerror(errno));
		sandbox_policy_free(pol);
		return -EIO;
	}
	sandbox_policy_set_output_fds(pol, pipefd[1], pipefd[1]);
	if (root && fs_chown_tree(copy, SANDBOX_ROOT_HOST_UID, SANDBOX_ROOT_HOST_GID) < 0) {
		snprintf(err, errlen, "install command: chown %s: %s", copy, strerror(errno));
		rc = -EIO;
		goto out;
	}
	rc = sandbox_spawn(pol, &child);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (rc < 0) {
		snprintf(err, errlen, "install command %s: %s", m->install.command[0],
		         child.message);
		rc = -EINVAL;
		goto out;
	}
	collect_output(pipefd[0], &child, REGISTRY_INSTALL_TIMEOUT_S, res);
	if (sandbox_child_wait(&child, 0, &end) == 1) {
		end.host_kill = res->timed_out ? SANDBOX_HOST_TIMEOUT : SANDBOX_HOST_NONE;
		res->end = sandbox_exit_reason(&end);
	}
	sandbox_child_close(&child);
out:
	if (root && fs_chown_tree(copy, 0, 0) < 0 && rc == 0) {
		snprintf(err, errlen, "install: chown %s back: %s", copy, strerror(errno));
		rc = -EIO;
	}
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	close(pipefd[0]);
	sandbox_policy_free(pol);
	return rc;
}

static int check_install_command(const struct manifest *m, const char *copy, char *err,
                                 size_t errlen)
{
	struct command_result res;
	int rc;

	if (!m->install.command)
		return 0;
	rc = run_install_command(m, copy, &res, err, errlen);
	if (rc < 0)
		return rc;
	if (res.end.reason == SANDBOX_EXITED && res.end.code == 0)
		return 0;
	if (res.end.reason == SANDBOX_EXITED)
		snprintf(err, errlen, "install command exited with status %d; output: %s",
		         res.end.code, res.tail);
	else if (res.end.reason == SANDBOX_TIMEOUT)
		snprintf(err, errlen, "install command timed out after %d s; output: %s",
		         REGISTRY_INSTALL_TIMEOUT_S, res.tail);
	else
		snprintf(err, errlen, "install command ended: %s (signal %d); output: %s",
		         sandbox_exit_reason_name(res.end.reason), res.end.signal, res.tail);
	return -EINVAL;
}

/* A relative entrypoint must name an executable file inside the installed copy. */
static int check_entrypoint(const struct manifest *m, const char *copy, char *err, size_t errlen)
{
	const char *arg0 = m->entrypoint[0];
	struct stat sb;

	if (arg0[0] == '/')
		return 0;
	char *path = xasprintf("%s/%s", copy, arg0);
	int ok = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0111);
	free(path);
	if (ok)
		return 0;
	snprintf(err, errlen, "entrypoint %s: not an executable file in the agent folder", arg0);
	return -EINVAL;
}

/* ---- install */

static int record(struct store *st, const struct manifest *m, const char *path, const char *digest,
                  bool replace, struct store_agent *out)
{
	json_t *doc = manifest_to_json(m);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	struct store_agent row = {
	    .name = m->name,
	    .version = m->version,
	    .manifest = text,
	    .path = (char *)path,
	    .digest = (char *)digest,
	    .installed_at = store_now_ms(),
	};
	int rc = replace ? store_agent_update(st, &row) : store_agent_insert(st, &row);

	json_decref(doc);
	free(text);
	if (rc == 0 && out)
		rc = store_agent_get(st, m->name, m->version, out);
	return rc;
}

/* Stages, builds and records an agent whose manifest is already loaded. */
static int install_manifest(struct registry *reg, struct store *st, const struct source *src,
                            const struct manifest *m, bool replace, struct store_agent *out,
                            char *err, size_t errlen)
{
	char digest[65];
	char *staging = xasprintf("%s/%s-XXXXXX", reg->staging_dir, m->name);
	char *final = version_dir(reg, m->name, m->version);
	char *name_dir = xasprintf("%s/%s", reg->agents_dir, m->name);
	int rc;

	if (!mkdtemp(staging)) {
		snprintf(err, errlen, "%s: %s", staging, strerror(errno));
		rc = -EIO;
		goto out;
	}
	rc = fs_copy_tree(src->dir, staging, digest, err, errlen);
	if (rc == 0)
		rc = check_install_command(m, staging, err, errlen);
	if (rc == 0)
		rc = check_entrypoint(m, staging, err, errlen);
	if (rc == 0 && fs_make_read_only(staging) < 0) {
		snprintf(err, errlen, "%s: making it read-only: %s", staging, strerror(errno));
		rc = -EIO;
	}
	if (rc == 0 && replace)
		fs_remove_tree(final);
	if (rc == 0 && (fs_mkdir_p(name_dir, 0755) < 0 || rename(staging, final) < 0)) {
		rc = (errno == EEXIST || errno == ENOTEMPTY) ? -EEXIST : -EIO;
		snprintf(err, errlen, rc == -EEXIST ? "agent %s %s is already installed" : "%s: %s",
		         rc == -EEXIST ? m->name : final,
		         rc == -EEXIST ? m->version : strerror(errno));
	}
	if (rc < 0) {
		fs_remove_tree(staging);
		goto out;
	}
	rc = record(st, m, final, digest, replace, out);
	if (rc < 0) {
		if (rc == -EEXIST)
			snprintf(err, errlen, "agent %s %s is already installed", m->name,
			         m->version);
		else
			snprintf(err, errlen, "state store: %s", store_errmsg(st));
		fs_remove_tree(final);
		rmdir(name_dir);
	}
out:
	free(staging);
	free(final);
	free(name_dir);
	return rc;
}

int registry_install(struct registry *reg, struct store *st, const char *path,
                     struct store_agent *out, char *err, size_t errlen)
{
	struct source src;
	struct manifest *m = NULL;
	struct store_agent existing = {0};
	int rc = source_resolve(path, &src, err, errlen);

	if (rc < 0)
		return rc;
	rc = manifest_load(src.manifest, &m, err, errlen);
	if (rc < 0) {
		rc = -EINVAL;
		goto out;
	}
	if (store_agent_get(st, m->name, m->version, &existing) == 0) {
		snprintf(err, errlen, "agent %s %s is already installed", m->name, m->version);
		store_agent_clear(&existing);
		rc = -EEXIST;
		goto out;
	}
	rc = install_manifest(reg, st, &src, m, false, out, err, errlen);
	if (rc == 0)
		log_info("registry.installed", "agent=%s version=%s path=%s", m->name, m->version,
		         src.dir);
out:
	manifest_free(m);
	source_clear(&src);
	return rc;
}

/* ---- uninstall */

struct session_ids {
	const char *agent;
	char **ids;
	size_t n;
};

static int collect_session(const struct store_session *s, void *ctx)
{
	struct session_ids *c = ctx;

	if (strcmp(s->agent, c->agent) != 0)
		return 0;
	c->ids = xrealloc(c->ids, (c->n + 1) * sizeof(char *));
	c->ids[c->n++] = xstrdup(s->id);
	return 0;
}

/* Forced uninstall: the agent's sessions go with it (their KV and events too). */
static int delete_sessions_of(struct store *st, const char *agent)
{
	struct session_ids c = {.agent = agent};
	int rc = store_session_list(st, NULL, collect_session, &c);

	for (size_t i = 0; i < c.n; i++) {
		if (rc == 0)
			rc = store_session_delete(st, c.ids[i]);
		free(c.ids[i]);
	}
	free(c.ids);
	return rc;
}

int registry_uninstall(struct registry *reg, struct store *st, const char *name,
                       const char *version, bool force, char *err, size_t errlen)
{
	struct store_agent row = {0};
	int64_t users = 0;
	int rc = store_agent_get(st, name, version, &row);

	if (rc == -ENOENT) {
		snprintf(err, errlen,
		         version ? "agent %s %s is not installed" : "agent %s is not installed",
		         name, version);
		return -ENOENT;
	}
	store_agent_clear(&row);
	if (rc < 0 || store_session_count_for_agent(st, name, &users) < 0)
		goto store_failed;
	if (users > 0 && !force) {
		snprintf(err, errlen,
		         "agent %s is used by %lld session(s); destroy them or uninstall with "
		         "force",
		         name, (long long)users);
		return -EBUSY;
	}
	/* Rows first: a crash before the folders go leaves folders without rows, which
	 * registry_open() removes; the reverse would leave rows pointing at nothing. */
	if (store_begin(st) < 0)
		goto store_failed;
	if (users > 0 && (rc = delete_sessions_of(st, name)) < 0)
		goto rollback;
	if ((rc = store_agent_delete(st, name, version)) < 0)
		goto rollback;
	if (store_commit(st) < 0)
		goto store_failed;

	char *path =
	    version ? version_dir(reg, name, version) : xasprintf("%s/%s", reg->agents_dir, name);
	fs_remove_tree(path);
	free(path);
	if (version) {
		char *name_dir = xasprintf("%s/%s", reg->agents_dir, name);
		rmdir(name_dir); /* only succeeds when no version is left */
		free(name_dir);
	}
	log_info("registry.uninstalled", "agent=%s version=%s force=%d sessions=%lld", name,
	         version ? version : "all", force, (long long)users);
	return 0;

rollback:
	store_rollback(st);
store_failed:
	snprintf(err, errlen, "state store: %s", store_errmsg(st));
	return -EIO;
}

/* ---- start-up sync */

static int sync_one(struct registry *reg, struct store *st, const char *dir)
{
	char err[REGISTRY_ERR_MAX], digest[65];
	struct source src;
	struct manifest *m = NULL;
	struct store_agent row = {0};
	int rc = source_resolve(dir, &src, err, sizeof(err));
	bool replace = false;

	if (rc == 0)
		rc = manifest_load(src.manifest, &m, err, sizeof(err));
	if (rc == 0)
		rc = fs_digest_tree(src.dir, digest, err, sizeof(err));
	if (rc == 0 && store_agent_get(st, m->name, m->version, &row) == 0) {
		int64_t users = 0;
		bool same = strcmp(row.digest, digest) == 0;

		store_agent_clear(&row);
		if (same) {
			log_debug("registry.up_to_date", "agent=%s version=%s", m->name,
			          m->version);
			goto out;
		}
		store_session_count_for_agent(st, m->name, &users);
		if (users > 0) {
			log_warn("registry.update_skipped",
			         "agent=%s version=%s reason=\"files changed but %lld session(s) "
			         "use it; bump the version\"",
			         m->name, m->version, (long long)users);
			goto out;
		}
		replace = true;
	}
	if (rc == 0)
		rc = install_manifest(reg, st, &src, m, replace, NULL, err, sizeof(err));
	if (rc == 0)
		log_info(replace ? "registry.updated" : "registry.installed",
		         "agent=%s version=%s path=%s", m->name, m->version, src.dir);
out:
	if (rc < 0) {
		char q[REGISTRY_ERR_MAX + 16];
		log_error("registry.install_failed", "path=%s error=%s", dir,
		          log_quote(err, q, sizeof(q)));
	}
	manifest_free(m);
	source_clear(&src);
	return rc;
}

int registry_sync_dir(struct registry *reg, struct store *st, const char *dir)
{
	struct dirent **entries;
	char *abs = realpath(dir, NULL);
	int failures = 0, n;

	if (!abs) {
		log_error("registry.sync_failed", "dir=%s error=\"%s\"", dir, strerror(errno));
		return 1;
	}
	n = scandir(abs, &entries, NULL, alphasort);
	if (n < 0) {
		log_error("registry.sync_failed", "dir=%s error=\"%s\"", abs, strerror(errno));
		free(abs);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char *sub = xasprintf("%s/%s/agent.json", abs, entries[i]->d_name);
		if (entries[i]->d_name[0] != '.' && access(sub, F_OK) == 0) {
			*strrchr(sub, '/') = '\0';
			if (sync_one(reg, st, sub) < 0)
				failures++;
		}
		free(sub);
		free(entries[i]);
	}
	free(entries);
	free(abs);
	return failures;
}

int registry_manifest(const struct store_agent *row, struct manifest **out, char *err,
                      size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loads(row->manifest, 0, &jerr);
	int rc;

	*out = NULL;
	if (!doc) {
		snprintf(err, errlen, "stored manifest of %s %s: %s", row->name, row->version,
		         jerr.text);
		return -EINVAL;
	}
	rc = manifest_from_json(doc, row->name, out, err, errlen);
	json_decref(doc);
	return rc < 0 ? -EINVAL : 0;
}
