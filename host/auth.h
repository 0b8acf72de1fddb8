/* auth.h: bearer tokens. Secrets are "aht_" + 64 hex characters of getrandom(2); the
 * store keeps only their SHA-256, so a stolen database reveals no usable token. The admin
 * token lives in STATE/admin.token (mode 0600) and is made at first start. */
#ifndef AGENTHOST_AUTH_H
#define AGENTHOST_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define AUTH_SECRET_LEN 68 /* "aht_" + 64 hex */
#define AUTH_ID_LEN 19     /* "t_" + 16 hex */

struct auth_identity {
	char token_id[AUTH_ID_LEN + 1];
	bool admin;
};

/* Makes sure STATE/admin.token exists (creating it 0600 if not) and that the store knows
 * its hash as the one admin token (replacing an older admin row if the file was rotated).
 * Returns 0, or a negative code with the cause in err. */
int auth_init(struct store *st, const char *state_dir, char *err, size_t errlen);

/* Looks up a presented secret (borrowed; may be NULL). 0 and *who filled when it is a
 * live token; -EACCES otherwise; -EIO if the store failed. */
int auth_check(struct store *st, const char *secret, struct auth_identity *who);

/* Forgets a revoked token's cached lookup (call after deleting it from the store). */
void auth_forget(const char *token_id);

/* Extracts the secret from an "Authorization" header value ("Bearer SECRET"); returns a
 * pointer into header or NULL when the scheme is not Bearer. */
const char *auth_bearer(const char *header);

/* Creates a client token named name. Writes the secret (shown once) into
 * secret[AUTH_SECRET_LEN + 1] and the stored row into *row (caller clears it).
 * Returns 0 or a store error. */
int auth_token_create(struct store *st, const char *name, char *secret, struct store_token *row);

#endif
