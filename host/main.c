/* main.c: agenthostd — parses the command line, opens the state directory (one daemon per
 * directory), installs the agents of --manifests, then serves the API on libwebsockets
 * until SIGTERM or SIGINT, and shuts down cleanly. */
#include "auth.h"
#include "catalog.h"
#include "daemon.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "registry.h"
#include "sandbox.h"
#include "session.h"
#include "store.h"
#include "supervisor.h"
#include "util.h"
#include "worker.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_STATE_DIR "/var/lib/agenthost"
#define DEFAULT_MAX_BODY (2 * 1024 * 1024)
#define DEFAULT_MAX_SESSIONS 1024

/* The daemon's event loop is libev's, which lws joins as a "foreign" loop: poll(2), lws'
 * default, costs O(open sockets) per wake-up (FACTS.md: 23 µs → 5.5 ms with 10,000 idle
 * WebSockets), epoll through libev does not. Owning the loop also makes shutdown simple:
 * a libev signal watcher breaks it. */
static struct ev_loop *loop;
static ev_signal sigterm_watcher, sigint_watcher;

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: agenthostd [options]\n"
	    "\n"
	    "  --listen HOST:PORT   address to serve the API on (default 127.0.0.1:8080;\n"
	    "                       port 0 picks a free one, logged at start)\n"
	    "  --state-dir DIR      database, admin token, installed agents\n"
	    "                       (default " DEFAULT_STATE_DIR ")\n"
	    "  --manifests DIR      install or update every agent folder under DIR at start\n"
	    "  --max-body BYTES     request body limit (default %d)\n"
	    "  --max-sessions N     live session processes; past it the least recently used\n"
	    "                       idle one hibernates, or 503 if none is idle (default 1024)\n"
	    "  --events-kept N      events kept per session, at least 1000 (default 1000)\n"
	    "  --node-id HEX4       4 hex digits that start every session id (default 0000)\n"
	    "  --sessions-per-token N  sessions one client token may own (default 1000)\n"
	    "  --rate-limit N       requests per second per token, bursts of 2N; 0 is off\n"
	    "                       (default 0)\n"
	    "  --max-ws N           open WebSocket connections (default 10000)\n"
	    "  --log-level LEVEL    error, warn, info (default) or debug\n"
	    "  --help, --version\n",
	    DEFAULT_MAX_BODY);
}

static int parse_listen(const char *arg, struct daemon_config *cfg)
{
	static char host[256];
	const char *colon = strrchr(arg, ':');
	char *end;
	long port;

	if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	cfg->listen_host = host;
	cfg->listen_port = (int)port;
	return 0;
}

/* A whole number >= min for a flag; says what is wrong and returns -1 otherwise. */
static int number_arg(const char *flag, const char *arg, long long min, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || v < min) {
		fprintf(stderr, "agenthostd: %s %s: expected a whole number >= %lld\n", flag, arg,
		        min);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct daemon_config *cfg)
{
	static const struct option options[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"manifests", required_argument, NULL, 'm'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"max-sessions", required_argument, NULL, 'S'},
	    {"events-kept", required_argument, NULL, 'E'},
	    {"node-id", required_argument, NULL, 'N'},
	    {"sessions-per-token", required_argument, NULL, 'T'},
	    {"rate-limit", required_argument, NULL, 'R'},
	    {"max-ws", required_argument, NULL, 'W'},
	    {"log-level", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int opt, level;
	int64_t n;

	*cfg = (struct daemon_config){.listen_host = "127.0.0.1",
	                              .listen_port = 8080,
	                              .state_dir = DEFAULT_STATE_DIR,
	                              .max_body = DEFAULT_MAX_BODY,
	                              .max_sessions = DEFAULT_MAX_SESSIONS,
	                              .events_kept = 1000,
	                              .node_id = "0000",
	                              .sessions_per_token = 1000,
	                              .rate_limit = 0,
	                              .max_ws = 10000};
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_listen(optarg, cfg) < 0) {
				fprintf(stderr, "agenthostd: --listen %s: expected HOST:PORT\n",
				        optarg);
				return 2;
			}
			break;
		case 's':
			cfg->state_dir = optarg;
			break;
		case 'm':
			cfg->manifests_dir = optarg;
			break;
		case 'b':
			if (number_arg("--max-body", optarg, 1024, &n) < 0)
				return 2;
			cfg->max_body = (size_t)n;
			break;
		case 'S':
			if (number_arg("--max-sessions", optarg, 1, &n) < 0)
				return 2;
			cfg->max_sessions = (int)n;
			break;
		case 'E':
			if (number_arg("--events-kept", optarg, 1000, &cfg->events_kept) < 0)
				return 2;
			break;
		case 'T':
			if (number_arg("--sessions-per-token", optarg, 1,
			               &cfg->sessions_per_token) < 0)
				return 2;
			break;
		case 'R':
			if (number_arg("--rate-limit", optarg, 0, &cfg->rate_limit) < 0)
				return 2;
			break;
		case 'W':
			if (number_arg("--max-ws", optarg, 1, &cfg->max_ws) < 0)
				return 2;
			break;
		case 'N':
			if (strlen(optarg) != 4 || strspn(optarg, "0123456789abcdef") != 4) {
				fprintf(stderr,
				        "agenthostd: --node-id %s: expected 4 lower-case hex "
				        "digits\n",
				        optarg);
				return 2;
			}
			cfg->node_id = optarg;
			break;
		case 'v':
			level = log_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr,
				        "agenthostd: --log-level %s: expected error, warn, "
				        "info or debug\n",
				        optarg);
				return 2;
			}
			log_set_level((enum log_level)level);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("agenthostd %s\n", AGENTHOST_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "agenthostd: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* As root, agents run as nobody and their folders are under STATE: every folder above
 * it must let others through (x), or every spawn fails with "mount /agent: EACCES". */
static void warn_untraversable(const char *state_dir)
{
	char *path = xstrdup(state_dir);
	struct stat sb;
	char *slash;

	if (geteuid() != 0) {
		free(path);
		return;
	}
	while ((slash = strrchr(path, '/')) && slash != path) {
		*slash = '\0';
		if (stat(path, &sb) == 0 && !(sb.st_mode & S_IXOTH))
			log_warn("daemon.state_dir_unreachable",
			         "path=%s reason=\"agents run as another uid and cannot pass this "
			         "folder (mode %o): chmod o+x it\"",
			         path, (unsigned)(sb.st_mode & 07777));
	}
	free(path);
}

/* Creates the state directory (0700: it holds the admin token) and takes its lock. */
static int open_state_dir(struct daemon *d)
{
	char *lock;

	if (fs_mkdir_p(d->cfg.state_dir, 0700) < 0) {
		log_error("daemon.start_failed", "state_dir=%s error=\"%s\"", d->cfg.state_dir,
		          strerror(errno));
		return -1;
	}
	d->state_dir = realpath(d->cfg.state_dir, NULL);
	if (!d->state_dir)
		return -1;
	/* Agents run as another uid (nobody, when the daemon is root) and must reach their
	 * folder under STATE/agents: the state directory is traversable but not listable;
	 * what is secret in it (admin.token, the database) is 0600. */
	warn_untraversable(d->state_dir);
	if (chmod(d->state_dir, 0711) < 0)
		log_warn("daemon.state_dir_mode", "state_dir=%s error=\"%s\"", d->state_dir,
		         strerror(errno));
	lock = xasprintf("%s/agenthostd.lock", d->state_dir);
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("daemon.start_failed",
		          "state_dir=%s error=\"another agenthostd is using this state directory "
		          "(%s)\"",
		          d->state_dir, strerror(errno));
		free(lock);
		return -1;
	}
	free(lock);
	return 0;
}

static int open_store(struct daemon *d)
{
	char err[512];
	char *db = xasprintf("%s/agenthost.db", d->state_dir);
	/* Made 0600 before SQLite opens it: SQLite gives its -wal and -shm the same mode. */
	int fd = open(db, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int rc;

	if (fd >= 0) {
		fchmod(fd, 0600);
		close(fd);
	}
	rc = store_open(db, &d->store, err, sizeof(err));
	free(db);
	if (rc == 0)
		rc = auth_init(d->store, d->state_dir, err, sizeof(err));
	if (rc == 0)
		rc = registry_open(d->state_dir, d->store, &d->registry, err, sizeof(err));
	if (rc < 0) {
		char q[600];
		log_error("daemon.start_failed", "error=%s", log_quote(err, q, sizeof(q)));
	}
	return rc;
}

static void lws_log_bridge(int level, const char *line)
{
	char q[600], copy[512];

	snprintf(copy, sizeof(copy), "%s", line);
	copy[strcspn(copy, "\n")] = '\0';
	log_emit(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "msg=%s",
	         log_quote(copy, q, sizeof(q)));
}

static int start_server(struct daemon *d)
{
	struct lws_context_creation_info info;
	static const struct lws_protocols end = {0};
	static struct lws_protocols list[5];
	/* agenthost.v1 also serves upgrades that name no subprotocol. */
	static const struct lws_protocol_vhost_options ws_default = {NULL, NULL, "default", "1"};
	static const struct lws_protocol_vhost_options pvo = {NULL, &ws_default, "agenthost.v1",
	                                                      ""};

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
	list[0] = *http_protocol();
	list[1] = *worker_protocol();
	list[2] = *supervisor_protocol();
	list[3] = *ws_protocol();
	list[4] = end;

	memset(&info, 0, sizeof(info));
	info.port = d->cfg.listen_port;
	info.iface = d->cfg.listen_host;
	/* With IPv6 compiled in, lws listens on a v6 socket and silently ignores an IPv4 iface,
	 * which would expose the daemon on every interface. An IPv4 address gets a v4 socket. */
	struct in_addr v4;
	if (inet_pton(AF_INET, d->cfg.listen_host, &v4) == 1)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = list;
	info.pvo = &pvo;
	info.user = d;
	info.max_http_header_data = 8192;
	info.timeout_secs = 30;
	info.options |= LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = (void *[]){loop};
	d->lws = lws_create_context(&info);
	if (!d->lws) {
		log_error("daemon.start_failed", "error=\"cannot listen on %s:%d\"",
		          d->cfg.listen_host, d->cfg.listen_port);
		return -1;
	}
	struct lws_vhost *vh = lws_get_vhost_by_name(d->lws, "default");
	int port = vh ? lws_get_vhost_listen_port(vh) : d->cfg.listen_port;
	log_info("daemon.listening", "addr=%s:%d state_dir=%s version=%s", d->cfg.listen_host, port,
	         d->state_dir, AGENTHOST_VERSION);
	return 0;
}

static void on_stop_signal(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)revents;
	log_info("daemon.stopping", "signal=%d", w->signum);
	ev_break(l, EVBREAK_ALL);
}

static void install_signal_handlers(void)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&sigterm_watcher, on_stop_signal, SIGTERM);
	ev_signal_init(&sigint_watcher, on_stop_signal, SIGINT);
	ev_signal_start(loop, &sigterm_watcher);
	ev_signal_start(loop, &sigint_watcher);
}

static void shutdown_daemon(struct daemon *d)
{
	sessions_shutdown();
	supervisor_kill_all();
	worker_wait_all();
	if (d->lws) {
		lws_context_destroy(d->lws);
		/* lws closes its libev watchers asynchronously on a foreign loop. */
		for (int i = 0; i < 10; i++)
			ev_run(loop, EVRUN_NOWAIT);
	}
	catalog_free_all();
	registry_close(d->registry);
	store_close(d->store);
	if (loop)
		ev_loop_destroy(loop);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->state_dir);
}

int main(int argc, char **argv)
{
	struct daemon d = {.lock_fd = -1};
	int rc = parse_args(argc, argv, &d.cfg);

	if (rc)
		return rc;
	d.started_ms = store_now_ms();
	umask(022);
	/* Not ev_default_loop(): that one reaps every child on SIGCHLD, and the supervisor
	 * must reap its agents itself to learn how they ended. */
	loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!loop) {
		fprintf(stderr, "agenthostd: no libev event loop\n");
		return 1;
	}
	install_signal_handlers();
	if (open_state_dir(&d) < 0 || open_store(&d) < 0) {
		shutdown_daemon(&d);
		return 1;
	}
	log_info("sandbox.features", "summary=\"%s\"", sandbox_features()->summary);
	/* Cgroups of agents whose daemon was killed are empty and ownerless: remove them. */
	int swept = sandbox_cgroup_sweep();
	if (swept > 0)
		log_info("sandbox.cgroups_swept", "count=%d", swept);
	if (d.cfg.manifests_dir)
		registry_sync_dir(d.registry, d.store, d.cfg.manifests_dir);
	if (start_server(&d) < 0) {
		shutdown_daemon(&d);
		return 1;
	}
	sessions_init(&d);
	log_debug("daemon.event_loop", "backend=%u", ev_backend(loop));
	ev_run(loop, 0);
	shutdown_daemon(&d);
	log_info("daemon.stopped", "clean=1");
	return 0;
}
