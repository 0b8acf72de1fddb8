/* sessions.h: the session commands of DESIGN §7 — create, sessions, session, run, cancel,
 * destroy, logs — as exec functions for the command table (commands.c), and the pure rule
 * of create's --config options (tests/unit/host/ctl/ctl_sessions_test.c). The KEY [VALUE]
 * commands (state, config) are kv.h's; attach is attach.h's. */
#ifndef AGENTHOST_CTL_SESSIONS_H
#define AGENTHOST_CTL_SESSIONS_H

#include <jansson.h>
#include <stddef.h>

#include "commands.h"

/* Each returns an enum ctl_exit (see args.h). */
int ctl_cmd_create(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_sessions(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_session(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_run(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_cancel(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_destroy(struct ctl_ctx *ctx, const struct ctl_args *args);
int ctl_cmd_logs(struct ctl_ctx *ctx, const struct ctl_args *args);

/* The {"KEY": "VALUE", ...} of create's --config KEY=VALUE options, in the order given (a
 * key given twice keeps its last value). Returns 0 with *config set: a new object, or NULL
 * when no --config was given; or -1 with one line in err for a word without '=' or with
 * an empty KEY ("create: --config wants KEY=VALUE, not 'x'"). args is borrowed. */
int ctl_create_config(const struct ctl_args *args, json_t **config, char *err, size_t errlen);

#endif
