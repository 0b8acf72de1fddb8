/* kv.h: the two KEY [VALUE] commands, `state ID [KEY [VALUE]]` (a session's key-value
 * state) and `config AGENT [KEY [VALUE]]` (the operator's config of an agent), which read
 * all keys, read one, set one or, with --delete, delete one. The rule that picks the action
 * is pure (tests/unit/host/ctl/ctl_sessions_test.c). */
#ifndef AGENTHOST_CTL_KV_H
#define AGENTHOST_CTL_KV_H

#include <stddef.h>

#include "commands.h"

enum ctl_kv_action {
	CTL_KV_LIST,   /* no KEY: every key and value */
	CTL_KV_GET,    /* KEY: its value */
	CTL_KV_SET,    /* KEY VALUE */
	CTL_KV_DELETE, /* KEY --delete */
};

/* The action of args (borrowed): from its arguments after the first and --delete. Returns
 * 0 with *action set, or -1 with one line in err: --delete without a KEY, or with a VALUE
 * ("state: --delete takes a KEY and no VALUE (usage: agentctl state ID [KEY [VALUE]])"). */
int ctl_kv_action(const struct ctl_args *args, enum ctl_kv_action *action, char *err,
                  size_t errlen);

/* Each returns an enum ctl_exit (see args.h). */
int ctl_cmd_state(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_config(struct ctl_ctx *ctx, const struct ctl_args *args);

#endif
