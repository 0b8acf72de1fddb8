/* config.h: where agentctl's daemon URL, token and timeout come from (DESIGN §7): the
 * command line first, then the environment, then the admin token file of a state folder. */
#ifndef AGENTHOST_CTL_CONFIG_H
#define AGENTHOST_CTL_CONFIG_H

#include <limits.h>

#include "args.h"
#include "url.h"

#define CTL_DEFAULT_URL "http://127.0.0.1:8080"
#define CTL_DEFAULT_STATE_DIR "/var/lib/agenthost"
#define CTL_DEFAULT_TIMEOUT_S 300
#define CTL_TOKEN_MAX 512

struct ctl_config {
	struct ctl_url url;
	const char *url_source; /* "--url", "AGENTHOST_URL" or "default"; static */
	char *token;            /* owned; NULL when none was found */
	/* Where the token came from ("--token", "AGENTHOST_TOKEN", a file path), or, when
	 * there is none, why ("cannot read /var/lib/agenthost/admin.token: Permission
	 * denied"): added to a 401 message so the user sees what was tried. */
	char token_source[PATH_MAX + 64];
	int timeout_s; /* 0: no limit */
};

/* Fills *cfg from args (borrowed) and the environment. A missing token is not an error
 * here (open routes need none; the daemon's 401 says so for the others). Returns 0, or -1
 * with one line in err for a usage error: a malformed URL or timeout, an empty --token, a
 * token with control characters or longer than CTL_TOKEN_MAX.
 * On success the caller frees with ctl_config_free. */
int ctl_config_resolve(const struct ctl_args *args, struct ctl_config *cfg, char *err,
                       size_t errlen);

/* The state folder whose admin.token is read: --state-dir, $AGENTHOST_STATE_DIR, ./var
 * when ./var/admin.token exists (a daemon run from the source tree), else
 * /var/lib/agenthost. Returns args' string, the environment's, or a static one. */
const char *ctl_config_state_dir(const struct ctl_args *args);

/* Frees what cfg owns (not cfg). */
void ctl_config_free(struct ctl_config *cfg);

#endif
