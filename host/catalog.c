/* catalog.c: a short list of parsed current manifests (agents are few). Forgotten entries
 * are kept until shutdown, since callers may still hold them; an install or uninstall
 * forgets one entry, so this grows only with installs. */
#include "catalog.h"
#include "manifest.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct catalog_entry *entries;   /* current */
static struct catalog_entry *forgotten; /* replaced: freed at shutdown */

int catalog_current(struct store *st, const char *name, const struct catalog_entry **out, char *err,
                    size_t errlen)
{
	struct store_agent row = {0};
	struct catalog_entry *e;
	struct manifest *m;
	int rc;

	for (e = entries; e; e = e->next) {
		if (strcmp(e->name, name) == 0) {
			*out = e;
			return 0;
		}
	}
	rc = store_agent_get(st, name, NULL, &row);
	if (rc < 0) {
		if (rc != -ENOENT)
			snprintf(err, errlen, "state store: %s", store_errmsg(st));
		return rc == -ENOENT ? -ENOENT : -EIO;
	}
	rc = registry_manifest(&row, &m, err, errlen);
	if (rc < 0) {
		store_agent_clear(&row);
		return rc;
	}
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(row.name);
	e->version = xstrdup(row.version);
	e->path = xstrdup(row.path);
	e->manifest = m;
	e->next = entries;
	entries = e;
	store_agent_clear(&row);
	*out = e;
	return 0;
}

void catalog_forget(const char *name)
{
	for (struct catalog_entry **p = &entries; *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			struct catalog_entry *e = *p;
			*p = e->next;
			e->next = forgotten;
			forgotten = e;
			return;
		}
	}
}

static void free_list(struct catalog_entry *e)
{
	while (e) {
		struct catalog_entry *next = e->next;
		free(e->name);
		free(e->version);
		free(e->path);
		manifest_free(e->manifest);
		free(e);
		e = next;
	}
}

void catalog_free_all(void)
{
	free_list(entries);
	free_list(forgotten);
	entries = forgotten = NULL;
}
