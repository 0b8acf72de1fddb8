/* harness.c: the daemon of the host fuzz targets, its baseline, and one HTTP exchange
 * through the real transport. See harness.h. */
#include "harness.h"
#include "fake_agent.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "manifest.h"
#include "runs.h"
#include "session.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct harness H;

static const char *const agent_manifests[] = {
    "{\"manifest_version\": 1, \"name\": \"fz-sess\", \"version\": \"1.0.0\", \"description\": "
    "\"fuzz\","
    " \"entrypoint\": [\"./agent\"], \"modes\": [\"session\"],"
    " \"config\": [{\"name\": \"MODEL\"}, {\"name\": \"REGION\", \"description\": \"where\"},"
    "  {\"name\": \"API_KEY\", \"secret\": true}],"
    " \"session\": {\"max_queued_runs\": 3}}",
    "{\"manifest_version\": 1, \"name\": \"fz-inv\", \"version\": \"1.0.0\", \"description\": "
    "\"fuzz\","
    " \"entrypoint\": [\"./agent\"], \"modes\": [\"invoke\"],"
    " \"config\": [{\"name\": \"TOKEN\", \"required\": true, \"secret\": true}]}",
    "{\"manifest_version\": 1, \"name\": \"fz-pool\", \"version\": \"2.0.0\", \"description\": "
    "\"fuzz\","
    " \"entrypoint\": [\"./agent\"], \"modes\": [\"invoke\", \"session\"],"
    " \"invoke\": {\"isolation\": \"worker\", \"workers\": 2}}",
};
static const char *const agent_names[] = {"fz-sess", "fz-inv", "fz-pool"};
#define NAGENTS 3

/* The baseline rows, kept to put them back. */
static struct store_token base_tokens[3];
static struct store_session base_sessions[2];
static uint64_t base_tokens_fp, base_config_fp, base_session_fp[2];

/* ---- digests */

struct digest {
	uint64_t h;
};

static void mix(struct digest *d, const char *s)
{
	d->h ^= 0xff; /* separator, so that ("ab", "c") differs from ("a", "bc") */
	d->h *= 1099511628211u;
	for (; s && *s; s++) {
		d->h ^= (unsigned char)*s;
		d->h *= 1099511628211u;
	}
}

static void mix_int(struct digest *d, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	mix(d, buf);
}

static int mix_token(const struct store_token *t, void *ctx)
{
	mix(ctx, t->id);
	mix(ctx, t->name);
	mix_int(ctx, t->admin);
	mix_int(ctx, t->created_at);
	return 0;
}

static int mix_pair(const char *key, const char *value, void *ctx)
{
	mix(ctx, key);
	mix(ctx, value);
	return 0;
}

static int mix_session(const struct store_session *s, void *ctx)
{
	mix(ctx, s->id);
	mix(ctx, s->agent);
	mix(ctx, s->version);
	mix(ctx, s->owner);
	mix(ctx, s->state);
	mix(ctx, s->config);
	mix_int(ctx, s->created_at);
	mix_int(ctx, s->last_active_at);
	mix_int(ctx, s->runs);
	mix_int(ctx, s->last_seq);
	return 0;
}

static uint64_t tokens_fp(void)
{
	struct digest d = {14695981039346656037u};

	REQUIRE(store_token_list(H.d.store, mix_token, &d) == 0);
	return d.h;
}

static uint64_t config_fp(void)
{
	struct digest d = {14695981039346656037u};

	for (int i = 0; i < NAGENTS; i++) {
		mix(&d, agent_names[i]);
		REQUIRE(store_config_list(H.d.store, agent_names[i], mix_pair, &d) == 0);
	}
	return d.h;
}

/* One of the two sessions: its row, KV and events. */
static uint64_t session_fp(const char *id)
{
	struct digest d = {14695981039346656037u};
	struct store_session row = {0};
	int64_t first = 0;
	int rc = store_session_get(H.d.store, id, &row);

	REQUIRE(rc == 0 || rc == -ENOENT);
	if (rc == 0)
		mix_session(&row, &d);
	store_session_clear(&row);
	REQUIRE(store_kv_list(H.d.store, id, "", mix_pair, &d) == 0);
	REQUIRE(store_event_first_seq(H.d.store, id, &first) == 0);
	mix_int(&d, first);
	return d.h;
}

uint64_t harness_fingerprint(void)
{
	struct digest d = {14695981039346656037u};

	mix_int(&d, (int64_t)tokens_fp());
	mix_int(&d, (int64_t)config_fp());
	REQUIRE(store_session_list(H.d.store, NULL, mix_session, &d) == 0);
	mix_int(&d, (int64_t)session_fp(HARNESS_SESSION));
	mix_int(&d, (int64_t)session_fp(HARNESS_OTHER));
	return d.h;
}

/* ---- building the baseline */

static void install_agents(void)
{
	for (int i = 0; i < NAGENTS; i++) {
		char err[MANIFEST_ERR_MAX];
		struct manifest *m;
		if (manifest_parse(agent_manifests[i], strlen(agent_manifests[i]), "fuzz", &m, err,
		                   sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			REQUIRE(!"the harness's manifests are valid");
		}
		json_t *doc = manifest_to_json(m);
		struct store_agent row = {
		    .name = (char *)agent_names[i],
		    .version = m->version,
		    .manifest = json_dumps(doc, JSON_COMPACT),
		    .path = H.dir,
		    .digest = "0000000000000000000000000000000000000000000000000000000000000000",
		    .installed_at = store_now_ms(),
		};
		REQUIRE(store_agent_insert(H.d.store, &row) == 0);
		free(row.manifest);
		json_decref(doc);
		manifest_free(m);
	}
}

static void read_admin_secret(void)
{
	char *path = xasprintf("%s/admin.token", H.dir);
	FILE *f = fopen(path, "r");

	REQUIRE(f && fread(H.admin, 1, AUTH_SECRET_LEN, f) == AUTH_SECRET_LEN);
	fclose(f);
	free(path);
}

static void make_token(const char *name, char *secret, struct auth_identity *who,
                       struct store_token *row)
{
	REQUIRE(auth_token_create(H.d.store, name, secret, row) == 0);
	REQUIRE(auth_check(H.d.store, secret, who) == 0);
}

static int find_admin(const struct store_token *t, void *ctx)
{
	if (t->admin) {
		struct store_token *out = ctx;
		*out = *t;
		out->id = xstrdup(t->id);
		out->name = xstrdup(t->name);
	}
	return 0;
}

/* Appends the events of one past run, as session.c would have. */
static void put_events(const char *id, int64_t time)
{
	static const char *const types[] = {"session.created", "run.started", "run.completed"};

	for (int i = 0; i < 3; i++) {
		const char *run = i ? "r_00000000000000000000000000000001" : NULL;
		json_t *ev = run_event_json(i + 1, types[i], run, time,
		                            i == 2 ? json_pack("{s:s}", "output", "done") : NULL);
		char *body = json_dumps(ev, JSON_COMPACT);
		struct store_event row = {
		    .seq = i + 1, .type = types[i], .run = run, .time = time, .body = body};
		REQUIRE(store_event_append(H.d.store, id, &row) == 0);
		free(body);
		json_decref(ev);
	}
}

static void put_session(const struct store_session *row)
{
	REQUIRE(store_session_insert(H.d.store, row) == 0);
	if (strcmp(row->id, HARNESS_SESSION) == 0) {
		REQUIRE(store_kv_set(H.d.store, row->id, "greeting", "\"hello\"") == 0);
		REQUIRE(store_kv_set(H.d.store, row->id, "n", "1") == 0);
		put_events(row->id, row->created_at);
	}
}

static void put_config(void)
{
	REQUIRE(store_config_set(H.d.store, "fz-inv", "TOKEN", "s3cret") == 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_state_dir(void)
{
	store_close(H.d.store);
	nftw(H.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_init(void)
{
	char err[512];
	const char *tmp = getenv("TMPDIR");
	struct stat sb;

	if (H.d.store)
		return;
	log_set_level(LOG_ERROR);
	/* Memory-backed when possible: the store's writes are most of an input's time. */
	if (!tmp || !*tmp)
		tmp = stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
		                                                                  : "/tmp";
	snprintf(H.dir, sizeof(H.dir), "%s/agenthost-fuzz-XXXXXX", tmp);
	REQUIRE(mkdtemp(H.dir));
	atexit(remove_state_dir);
	H.d.state_dir = H.dir;
	H.d.cfg = (struct daemon_config){.listen_host = "127.0.0.1",
	                                 .state_dir = H.dir,
	                                 .max_body = HARNESS_MAX_BODY,
	                                 .max_sessions = 4,
	                                 .events_kept = 16,
	                                 .node_id = "0000",
	                                 .sessions_per_token = 1000,
	                                 .max_ws = 16};
	H.d.started_ms = store_now_ms();
	char *logs = xasprintf("%s/logs", H.dir);
	mkdir(logs, 0700);
	free(logs);
	char *db = xasprintf("%s/agenthost.db", H.dir);
	if (store_open(db, &H.d.store, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		REQUIRE(!"the store opens");
	}
	free(db);
	fake_lws_set_user(&H.d);

	REQUIRE(auth_init(H.d.store, H.dir, err, sizeof(err)) == 0);
	read_admin_secret();
	REQUIRE(auth_check(H.d.store, H.admin, &H.admin_id) == 0 && H.admin_id.admin);
	REQUIRE(store_token_list(H.d.store, find_admin, &base_tokens[0]) == 0);
	make_token("fuzz-client", H.client, &H.client_id, &base_tokens[1]);
	make_token("fuzz-other", H.other, &H.other_id, &base_tokens[2]);

	install_agents();
	put_config();
	int64_t now = store_now_ms();
	base_sessions[0] = (struct store_session){.id = HARNESS_SESSION,
	                                          .agent = "fz-sess",
	                                          .version = "1.0.0",
	                                          .owner = H.client_id.token_id,
	                                          .state = "hibernated",
	                                          .config = "{\"MODEL\":\"small\"}",
	                                          .created_at = now,
	                                          .last_active_at = now};
	base_sessions[1] = base_sessions[0];
	base_sessions[1].id = HARNESS_OTHER;
	base_sessions[1].owner = H.other_id.token_id;
	base_sessions[1].config = NULL;
	for (int i = 0; i < 2; i++)
		put_session(&base_sessions[i]);

	base_tokens_fp = tokens_fp();
	base_config_fp = config_fp();
	base_session_fp[0] = session_fp(HARNESS_SESSION);
	base_session_fp[1] = session_fp(HARNESS_OTHER);
}

/* ---- back to the baseline */

struct id_list {
	char ids[64][SESSION_ID_LEN + 1];
	int n;
};

static int collect_session(const struct store_session *s, void *ctx)
{
	struct id_list *l = ctx;

	if (l->n < 64)
		snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", s->id);
	return 0;
}

/* Destroys a session through the daemon (loading it if needed), then lets its agent end. */
static void destroy_session(const char *id)
{
	struct session *s;

	if (session_find(&H.d, id, &H.admin_id, &s) == 0)
		session_destroy(s);
	else
		store_session_delete(H.d.store, id); /* unloadable: the row alone */
	fake_agents_run();
}

static int collect_token(const struct store_token *t, void *ctx)
{
	struct id_list *l = ctx;

	if (l->n < 64)
		snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", t->id);
	return 0;
}

static void reset_tokens(void)
{
	struct id_list l = {.n = 0};

	REQUIRE(store_token_list(H.d.store, collect_token, &l) == 0);
	for (int i = 0; i < l.n; i++) {
		bool base = false;
		for (int j = 0; j < 3; j++)
			base |= strcmp(l.ids[i], base_tokens[j].id) == 0;
		if (!base)
			REQUIRE(store_token_delete(H.d.store, l.ids[i]) == 0);
	}
	for (int j = 0; j < 3; j++) {
		struct store_token row = {0};
		if (store_token_get(H.d.store, base_tokens[j].id, &row) == -ENOENT)
			REQUIRE(store_token_insert(H.d.store, &base_tokens[j]) == 0);
		store_token_clear(&row);
	}
}

static int drop_config(const char *key, const char *value, void *ctx)
{
	(void)value;
	json_array_append_new(ctx, json_string(key));
	return 0;
}

static void reset_config(void)
{
	for (int i = 0; i < NAGENTS; i++) {
		json_t *keys = json_array(), *key;
		size_t k;
		REQUIRE(store_config_list(H.d.store, agent_names[i], drop_config, keys) == 0);
		json_array_foreach(keys, k, key)
		{
			const char *name = json_string_value(key);
			REQUIRE(store_config_del(H.d.store, agent_names[i], name) == 0);
		}
		json_decref(keys);
	}
	put_config();
}

void harness_reset(void)
{
	struct id_list l = {.n = 0};

	fake_agents_run();
	REQUIRE(store_session_list(H.d.store, NULL, collect_session, &l) == 0);
	for (int i = 0; i < l.n; i++)
		if (strcmp(l.ids[i], HARNESS_SESSION) != 0 && strcmp(l.ids[i], HARNESS_OTHER) != 0)
			destroy_session(l.ids[i]);
	if (tokens_fp() != base_tokens_fp) {
		reset_tokens();
		REQUIRE(tokens_fp() == base_tokens_fp);
	}
	if (config_fp() != base_config_fp) {
		reset_config();
		REQUIRE(config_fp() == base_config_fp);
	}
	for (int i = 0; i < 2; i++) {
		if (session_fp(base_sessions[i].id) == base_session_fp[i])
			continue;
		destroy_session(base_sessions[i].id);
		put_session(&base_sessions[i]);
		REQUIRE(session_fp(base_sessions[i].id) == base_session_fp[i]);
	}
}

/* ---- placeholders */

char *harness_expand(const char *text, size_t len)
{
	static const struct {
		const char *name;
		const char *value;
	} subst[] = {{"{s}", HARNESS_SESSION},
	             {"{o}", HARNESS_OTHER},
	             {"{admin}", H.admin},
	             {"{client}", H.client},
	             {"{other}", H.other}};
	size_t n = strnlen(text, len), o = 0;
	char *out = xmalloc(n * 23 + 1); /* "{s}" (3 bytes) becomes 38, {admin} (7) 68 */

	for (size_t i = 0; i < n;) {
		size_t k;
		for (k = 0; k < sizeof(subst) / sizeof(subst[0]); k++) {
			size_t m = strlen(subst[k].name);
			if (n - i >= m && memcmp(text + i, subst[k].name, m) == 0) {
				size_t v = strlen(subst[k].value);
				memcpy(out + o, subst[k].value, v);
				o += v;
				i += m;
				break;
			}
		}
		if (k == sizeof(subst) / sizeof(subst[0]))
			out[o++] = text[i++];
	}
	out[o] = '\0';
	return out;
}

/* ---- one HTTP exchange */

/* Stands in for lws' writeable callbacks: as long as the daemon asks for them. */
static void serve(struct fake_conn *c, void *pss, bool *closed)
{
	const struct lws_protocols *proto = http_protocol();
	int rounds = 0;

	while (c->writable && !*closed && !c->killed) {
		REQUIRE(++rounds < 100000);
		c->writable = false;
		if (proto->callback(fake_wsi(c), LWS_CALLBACK_HTTP_WRITEABLE, pss, NULL, 0))
			*closed = true;
	}
}

static void set_header(struct fake_conn *c, char *line)
{
	char *value = strchr(line, ':');

	if (!value)
		return;
	*value++ = '\0';
	while (*value == ' ')
		value++;
	if (strcasecmp(line, "authorization") == 0)
		c->authorization = value;
	else if (strcasecmp(line, "content-type") == 0)
		c->content_type = value;
	else if (strcasecmp(line, "accept") == 0)
		c->accept = value;
	else if (strcasecmp(line, "last-event-id") == 0)
		c->last_event_id = value;
	else if (strcasecmp(line, "transfer-encoding") == 0)
		c->transfer_encoding = value;
}

void harness_http(struct fake_conn *c, const char *method, const char *target, const char *headers,
                  const void *body, size_t body_len, size_t chunk)
{
	const struct lws_protocols *proto = http_protocol();
	void *pss = xcalloc(1, proto->per_session_data_size);
	char *path = xstrdup(target), *query = strchr(path, '?'),
	     *hdrs = xstrdup(headers ? headers : "");
	char length[32];
	bool closed = false;

	*c = (struct fake_conn){.declared = -1, .fd = -1};
	c->method = fake_method(method);
	if (query) {
		*query++ = '\0';
		for (char *arg = strtok(query, "&"); arg && c->nargs < FAKE_MAX_ARGS;
		     arg = strtok(NULL, "&"))
			c->args[c->nargs++] = arg;
	}
	c->uri = path;
	for (char *line = strtok(hdrs, "\n"); line; line = strtok(NULL, "\n"))
		set_header(c, line);
	/* What a client such as curl sends: the length of the body, 0 for an empty POST; no
	 * length with Transfer-Encoding (its body is not sent: the daemon refuses it). */
	if (!c->transfer_encoding && (body_len > 0 || c->method == LWSHUMETH_POST ||
	                              c->method == LWSHUMETH_PUT || c->method == LWSHUMETH_PATCH)) {
		snprintf(length, sizeof(length), "%zu", body_len);
		c->content_length = length;
	}

	if (proto->callback(fake_wsi(c), LWS_CALLBACK_HTTP, pss, path, strlen(path)))
		closed = true;
	serve(c, pss, &closed);
	if (c->content_length) {
		/* lws reports the body in pieces, then its end (also for Content-Length: 0). */
		for (size_t off = 0; off < body_len && !closed;) {
			size_t n = chunk && chunk < body_len - off ? chunk : body_len - off;
			if (proto->callback(fake_wsi(c), LWS_CALLBACK_HTTP_BODY, pss,
			                    (char *)body + off, n))
				closed = true;
			off += n;
			serve(c, pss, &closed);
		}
		if (!closed &&
		    proto->callback(fake_wsi(c), LWS_CALLBACK_HTTP_BODY_COMPLETION, pss, NULL, 0))
			closed = true;
	}
	/* A deferred reply comes once the agents have answered. */
	fake_agents_run();
	serve(c, pss, &closed);
	/* The client hangs up: whatever the daemon still holds for it is let go. */
	proto->callback(fake_wsi(c), LWS_CALLBACK_CLOSED_HTTP, pss, NULL, 0);
	fake_agents_run();

	c->uri = NULL;
	c->nargs = 0;
	c->authorization = c->content_type = c->accept = c->last_event_id = c->transfer_encoding =
	    c->content_length = NULL;
	free(hdrs);
	free(path);
	free(pss);
}
