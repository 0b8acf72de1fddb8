/* config.c: resolution of agentctl's URL, token and timeout (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An environment variable, with "" taken as unset (a cleared export is no value). */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

const char *ctl_config_state_dir(const struct ctl_args *args)
{
	if (args->state_dir)
		return args->state_dir;
	if (env("AGENTHOST_STATE_DIR"))
		return env("AGENTHOST_STATE_DIR");
	if (access("var/admin.token", F_OK) == 0)
		return "./var";
	return CTL_DEFAULT_STATE_DIR;
}

static int resolve_url(const struct ctl_args *args, struct ctl_config *cfg, char *err,
                       size_t errlen)
{
	const char *text = CTL_DEFAULT_URL;
	char why[256];

	cfg->url_source = "default";
	if (args->url) {
		text = args->url;
		cfg->url_source = "--url";
	} else if (env("AGENTHOST_URL")) {
		text = env("AGENTHOST_URL");
		cfg->url_source = "AGENTHOST_URL";
	}
	if (ctl_url_parse(text, &cfg->url, why, sizeof(why))) {
		snprintf(err, errlen, "invalid URL '%s' (%s): %s", text, cfg->url_source, why);
		return -1;
	}
	return 0;
}

/* The first line of the file, without surrounding white space; NULL with the reason in
 * cfg->token_source when it cannot be had. */
static char *read_token_file(const char *path, struct ctl_config *cfg)
{
	char line[4096];
	FILE *f = fopen(path, "re");
	char *start = line, *end;

	if (!f) {
		snprintf(cfg->token_source, sizeof(cfg->token_source), "cannot read %s: %s", path,
		         strerror(errno));
		return NULL;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strcspn(start, " \t\r\n");
	*end = '\0';
	if (!*start) {
		snprintf(cfg->token_source, sizeof(cfg->token_source), "%s is empty", path);
		return NULL;
	}
	snprintf(cfg->token_source, sizeof(cfg->token_source), "%s", path);
	return strdup(start);
}

/* A token goes into a header line: a control character would end it and start another,
 * and a huge one would be cut. Neither is a token the daemon made. */
static int check_token(const char *token, const char *source, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)token; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "the token from %s contains control characters",
			         source);
			return -1;
		}
	}
	if (strlen(token) > CTL_TOKEN_MAX) {
		snprintf(err, errlen, "the token from %s is longer than %d characters", source,
		         CTL_TOKEN_MAX);
		return -1;
	}
	return 0;
}

static int resolve_token(const struct ctl_args *args, struct ctl_config *cfg, char *err,
                         size_t errlen)
{
	char path[PATH_MAX];

	if (args->token) {
		if (!*args->token) {
			snprintf(err, errlen, "--token is empty");
			return -1;
		}
		cfg->token = strdup(args->token);
		snprintf(cfg->token_source, sizeof(cfg->token_source), "--token");
	} else if (env("AGENTHOST_TOKEN")) {
		cfg->token = strdup(env("AGENTHOST_TOKEN"));
		snprintf(cfg->token_source, sizeof(cfg->token_source), "AGENTHOST_TOKEN");
	} else {
		snprintf(path, sizeof(path), "%s/admin.token", ctl_config_state_dir(args));
		cfg->token = read_token_file(path, cfg);
		return cfg->token ? check_token(cfg->token, path, err, errlen) : 0;
	}
	if (!cfg->token)
		abort();
	return check_token(cfg->token, cfg->token_source, err, errlen);
}

static int resolve_timeout(const struct ctl_args *args, struct ctl_config *cfg, char *err,
                           size_t errlen)
{
	char *end;
	long value;

	cfg->timeout_s = CTL_DEFAULT_TIMEOUT_S;
	if (!args->timeout)
		return 0;
	errno = 0;
	value = strtol(args->timeout, &end, 10);
	if (errno || end == args->timeout || *end || value < 0 || value > 86400 * 7) {
		snprintf(err, errlen,
		         "--timeout must be a number of seconds (0 for none), not '%s'",
		         args->timeout);
		return -1;
	}
	cfg->timeout_s = (int)value;
	return 0;
}

int ctl_config_resolve(const struct ctl_args *args, struct ctl_config *cfg, char *err,
                       size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (resolve_url(args, cfg, err, errlen) || resolve_timeout(args, cfg, err, errlen) ||
	    resolve_token(args, cfg, err, errlen)) {
		ctl_config_free(cfg);
		return -1;
	}
	return 0;
}

void ctl_config_free(struct ctl_config *cfg)
{
	free(cfg->token);
	cfg->token = NULL;
}
