/* call.c: one request to the daemon, its JSON answer and the report of its failure, and
 * the small JSON readers every printer uses (see call.h). */
#include "call.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static bool answer_ok(const struct ctl_answer *a)
{
	return a->status >= 200 && a->status < 300 && !a->error[0];
}

int ctl_request(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
                bool no_auth, struct ctl_answer *a)
{
	struct ctl_http_request req = {.method = method, .path = path, .no_auth = no_auth};
	struct ctl_http_response resp;
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	if (body && !text)
		abort();
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	rc = ctl_http_request(ctx->http, &req, &resp, a->error, sizeof(a->error));
	free(text);
	if (rc)
		return -1;
	a->status = resp.status;
	if (resp.body_len)
		a->json = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (a->status < 200 || a->status > 299)
		ctl_format_http_error(resp.status, resp.body, resp.body_len, a->error,
		                      sizeof(a->error));
	else if (resp.body_len && !a->json)
		snprintf(a->error, sizeof(a->error),
		         "%s%s answered %d with a body that is not JSON", ctx->cfg.url.text, path,
		         resp.status);
	ctl_http_response_free(&resp);
	return answer_ok(a) ? 0 : -1;
}

void ctl_report(const struct ctl_ctx *ctx, const struct ctl_answer *a, bool ndjson)
{
	char hint[PATH_MAX + 128] = "";

	if (ctx->json && a->json && ndjson) {
		json_dumpf(a->json, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		fflush(stdout);
	} else if (ctx->json && a->json) {
		ctl_print_json(a->json, stdout);
	}
	if (a->status == 401 && ctx->cfg.token)
		snprintf(hint, sizeof(hint), " (token from %s)", ctx->cfg.token_source);
	else if (a->status == 401)
		snprintf(hint, sizeof(hint),
		         " (no token: %s; give --token, AGENTHOST_TOKEN or --state-dir)",
		         ctx->cfg.token_source);
	fprintf(stderr, "agentctl: %s%s\n", a->error, hint);
}

int ctl_call(struct ctl_ctx *ctx, const char *method, const char *path, json_t *body,
             struct ctl_answer *a)
{
	if (!ctl_request(ctx, method, path, body, false, a))
		return CTL_EXIT_OK;
	ctl_report(ctx, a, false);
	json_decref(a->json);
	a->json = NULL;
	return CTL_EXIT_FAIL;
}

int ctl_show(const struct ctl_ctx *ctx, struct ctl_answer *a, void (*print)(const json_t *))
{
	if (ctx->json && a->json)
		ctl_print_json(a->json, stdout);
	else if (!ctx->json)
		print(a->json);
	json_decref(a->json);
	a->json = NULL;
	return CTL_EXIT_OK;
}

int ctl_route(char *buf, size_t len, const char *base, const char *segment, const char *kind,
              const char *what)
{
	char escaped[CTL_SEGMENT_MAX * 3], msg[128];

	if (!*segment || strlen(segment) > CTL_SEGMENT_MAX) {
		snprintf(msg, sizeof(msg), "the %s %s %s", kind, what,
		         *segment ? "is too long" : "must not be empty");
		ctl_print_usage_error(msg);
		return CTL_EXIT_USAGE;
	}
	if (ctl_url_escape_segment(segment, escaped, sizeof(escaped))) {
		fprintf(
		    stderr,
		    "agentctl: there is no %s '%s': its %s cannot contain '/' or be '.' or '..'\n",
		    kind, segment, what);
		return CTL_EXIT_FAIL;
	}
	snprintf(buf, len, "%s/%s", base, escaped);
	return CTL_EXIT_OK;
}

const char *ctl_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

const char *ctl_time_of(const json_t *obj, const char *key, char *buf, size_t len)
{
	ctl_format_time(json_string_value(json_object_get(obj, key)), buf, len);
	return buf;
}

const char *ctl_join(const json_t *array, const char *sep, char *buf, size_t len)
{
	size_t used = 0, i;
	json_t *item;

	buf[0] = '\0';
	json_array_foreach(array, i, item)
	{
		if (json_is_string(item) && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? sep : "",
			                         json_string_value(item));
	}
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}
