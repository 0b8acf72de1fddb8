/* agent_config.h: operator-supplied configuration of agents (DESIGN §2, "config"). Values
 * are strings kept in the store by agent name; they reach the agent as environment
 * variables and in hello.config. A secret's value is never returned by any route or log. */
#ifndef AGENTHOST_AGENT_CONFIG_H
#define AGENTHOST_AGENT_CONFIG_H

#include <jansson.h>
#include <stddef.h>

struct manifest;
struct store;

/* The configuration an agent process gets: the operator's values, overlaid with given
 * (a session create body's "config", borrowed, may be NULL: only declared, non-secret,
 * string values). Returns a new object, or NULL with *status (400 or 422), *code and
 * message set when a key is undeclared, secret, not a string, or required and unset. */
json_t *agent_config_build(struct store *st, const struct manifest *m, json_t *given,
                           const char **code, char *message, size_t msglen, int *status);

/* The operator's values as the API shows them: secrets as "(secret)" (new reference). */
json_t *agent_config_public(struct store *st, const struct manifest *m);

#endif
