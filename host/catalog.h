/* catalog.h: the parsed manifest of each agent's current version, kept in memory so
 * that a stateless call or a session create does not read and validate the stored
 * manifest again (measured: a third of a worker-isolated call's daemon time). The store
 * stays the truth: an entry is dropped whenever the agent is installed or uninstalled. */
#ifndef AGENTHOST_CATALOG_H
#define AGENTHOST_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct manifest;
struct store;

struct catalog_entry {
	char *name;
	char *version;
	char *path; /* the installed copy */
	struct manifest *manifest;
	struct catalog_entry *next;
};

/* The current version of name, loaded on first use. Returns 0 and a borrowed entry valid
 * until the next catalog_forget of that name; -ENOENT when not installed; -EIO/-EINVAL
 * with err filled when the store or the stored manifest fails. */
int catalog_current(struct store *st, const char *name, const struct catalog_entry **out, char *err,
                    size_t errlen);

/* Drops the cached entry of name (after an install or uninstall). Entries handed out before
 * stay valid until catalog_collect() frees them. */
void catalog_forget(const char *name);

/* Frees every entry (at shutdown). */
void catalog_free_all(void);

#endif
