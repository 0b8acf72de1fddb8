/* registry.h: installing and uninstalling agents. An install is one transaction over the
 * file system and the store: validate the manifest, copy the folder into a staging area
 * (rejecting links that leave it and special files, hashing what it copies), run the
 * manifest's install command in the copy, make the copy read-only, rename it to
 * STATE/agents/NAME/VERSION and record it. Any failure removes what was made; a crash in
 * the middle leaves only what registry_open() cleans up at the next start.
 *
 * Every call does file-system work and may run a command: call it off the event loop
 * (a worker thread with its own store connection) except at start-up. */
#ifndef AGENTHOST_REGISTRY_H
#define AGENTHOST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define REGISTRY_ERR_MAX 1024
#define REGISTRY_INSTALL_TIMEOUT_S 300

struct registry;

/* Opens the registry rooted at state_dir/agents (created if needed) and reconciles it
 * with the store: staging leftovers and folders without a row are removed, rows without
 * a folder are dropped (each logged). Returns 0 or a negative code with err filled. */
int registry_open(const char *state_dir, struct store *st, struct registry **out, char *err,
                  size_t errlen);
void registry_close(struct registry *reg);

/* Installs the agent at path (absolute; a folder or its agent.json). On success fills
 * *out (caller clears it with store_agent_clear). Errors, with the cause in err:
 *   -EINVAL  the request's content is wrong (path, manifest, links, install command)
 *   -EEXIST  that name and version is installed already
 *   -EIO     the daemon's own file system or store failed */
int registry_install(struct registry *reg, struct store *st, const char *path,
                     struct store_agent *out, char *err, size_t errlen);

/* Removes every version of name (version NULL) or one version. -ENOENT if not installed;
 * -EBUSY while sessions use the agent unless force, which deletes those sessions. */
int registry_uninstall(struct registry *reg, struct store *st, const char *name,
                       const char *version, bool force, char *err, size_t errlen);

/* Installs or updates every agent folder directly under dir (each with an agent.json):
 * a new (name, version) is installed; one installed from identical files is left alone;
 * one whose files changed is reinstalled unless sessions use it. Each outcome and each
 * failure is logged; returns the number of failures (start-up goes on regardless). */
int registry_sync_dir(struct registry *reg, struct store *st, const char *dir);

/* The manifest of an installed row, parsed (cheap; no file access). Returns 0 and *out
 * (caller frees with manifest_free), or -EINVAL with err. */
struct manifest;
int registry_manifest(const struct store_agent *row, struct manifest **out, char *err,
                      size_t errlen);

#endif
