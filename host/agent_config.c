/* agent_config.c: building an agent's configuration from the operator's values and a
 * session's own, and showing it without its secrets. */
#include "agent_config.h"
#include "manifest.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

static int add_value(const char *key, const char *value, void *ctx)
{
	json_object_set_new(ctx, key, json_string(value));
	return 0;
}

static const struct manifest_config *declared(const struct manifest *m, const char *key)
{
	for (size_t i = 0; i < m->config_len; i++)
		if (strcmp(m->config[i].name, key) == 0)
			return &m->config[i];
	return NULL;
}

static json_t *refuse(json_t *config, int status, int *out_status, const char **code,
                      const char *code_text)
{
	json_decref(config);
	*out_status = status;
	*code = code_text;
	return NULL;
}

json_t *agent_config_build(struct store *st, const struct manifest *m, json_t *given,
                           const char **code, char *message, size_t msglen, int *status)
{
	json_t *config = json_object(), *value;
	const char *key;

	store_config_list(st, m->name, add_value, config);
	json_object_foreach(given, key, value)
	{
		const struct manifest_config *item = declared(m, key);
		if (!item || item->secret || !json_is_string(value)) {
			snprintf(message, msglen,
			         !item ? "config %s is not declared by agent %s"
			         : item->secret
			             ? "config %s of agent %s is secret: only the operator "
			               "sets it (agentctl config)"
			             : "config %s of agent %s must be a string",
			         key, m->name);
			return refuse(config, 400, status, code, "bad_request");
		}
		json_object_set(config, key, value);
	}
	for (size_t i = 0; i < m->config_len; i++) {
		if (m->config[i].required && !json_object_get(config, m->config[i].name)) {
			snprintf(message, msglen, "config %s of agent %s is required and not set",
			         m->config[i].name, m->name);
			return refuse(config, 422, status, code, "invalid_input");
		}
	}
	return config;
}

json_t *agent_config_public(struct store *st, const struct manifest *m)
{
	json_t *config = json_object(), *value;
	const char *key;
	void *tmp;

	store_config_list(st, m->name, add_value, config);
	json_object_foreach_safe(config, tmp, key, value)
	{
		const struct manifest_config *item = declared(m, key);
		if (item && item->secret)
			json_object_set_new(config, key, json_string("(secret)"));
	}
	return config;
}
