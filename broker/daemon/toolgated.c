/*
 * toolgated: start-up and shut-down.  Parses flags (and --config), loads
 * and checks every key and certificate before anything listens (exit 2
 * with one line naming the file on any problem), migrates the database,
 * then runs one event base + evhttp + SQLite connection per thread, each
 * with its own SO_REUSEPORT listener.  The main thread only waits for
 * signals: SIGTERM/SIGINT stop the loops after in-flight requests.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "clock.h"
#include "jose.h"
#include "log.h"
#include "mcp.h"
#include "server.h"
#include "store.h"

#define PRUNE_INTERVAL_S 60

static struct broker	 broker;

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_exit(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fprintf(stderr, "toolgated: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: toolgated --listen HOST:PORT --db PATH "
	    "--ca FILE --cert FILE --key FILE --grant-key FILE [--crl FILE] "
	    "[--audience NAME] [--threads N] [--config FILE] "
	    "[--log-level debug|info|warn|error]\n");
	exit(2);
}

static void __attribute__((noreturn))
startup_exit(const char *msg)
{
	fprintf(stderr, "toolgated: %s\n", msg);
	exit(2);
}

struct options {
	const char	*listen, *db, *ca, *cert, *key, *grant_key, *crl;
	const char	*audience, *threads, *config, *log_level;
	/* --config only: hardening and durability knobs (proto/config.md) */
	const char	*synchronous, *max_connections, *idle_timeout;
	const char	*request_timeout, *rate_limit, *rate_burst;
	char		*config_text;	/* owns the values read from --config */
	struct mcp_conf	 mcp;		/* mcp-* lines (mcp_config.c) */
};

#define CONFIG_MAX	(64 * 1024)

/* Settings that exist only in the --config file, not as flags. */
static const struct {
	const char	*name;
	size_t		 off;
} config_only[] = {
	{ "synchronous",	offsetof(struct options, synchronous) },
	{ "max-connections",	offsetof(struct options, max_connections) },
	{ "idle-timeout",	offsetof(struct options, idle_timeout) },
	{ "request-timeout",	offsetof(struct options, request_timeout) },
	{ "rate-limit",		offsetof(struct options, rate_limit) },
	{ "rate-burst",		offsetof(struct options, rate_burst) },
};

static const struct option longopts[] = {
	{ "listen",	required_argument, NULL, 'l' },
	{ "db",		required_argument, NULL, 'd' },
	{ "ca",		required_argument, NULL, 'a' },
	{ "cert",	required_argument, NULL, 'c' },
	{ "key",	required_argument, NULL, 'k' },
	{ "grant-key",	required_argument, NULL, 'g' },
	{ "crl",	required_argument, NULL, 'r' },
	{ "audience",	required_argument, NULL, 'u' },
	{ "threads",	required_argument, NULL, 't' },
	{ "config",	required_argument, NULL, 'f' },
	{ "log-level",	required_argument, NULL, 'v' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Set an option by its long name; command-line values win over --config
 * values, so a config value only fills what is still unset. */
static int
options_set(struct options *o, int opt, const char *val, int from_config)
{
	const char	**slot;

	switch (opt) {
	case 'l': slot = &o->listen; break;
	case 'd': slot = &o->db; break;
	case 'a': slot = &o->ca; break;
	case 'c': slot = &o->cert; break;
	case 'k': slot = &o->key; break;
	case 'g': slot = &o->grant_key; break;
	case 'r': slot = &o->crl; break;
	case 'u': slot = &o->audience; break;
	case 't': slot = &o->threads; break;
	case 'v': slot = &o->log_level; break;
	default: return (-1);
	}
	if (!from_config || *slot == NULL)
		*slot = val;
	return (0);
}

static int
options_config_only(struct options *o, const char *name, const char *val)
{
	size_t	 i;

	for (i = 0; i < sizeof(config_only) / sizeof(config_only[0]); i++)
		if (strcmp(config_only[i].name, name) == 0) {
			*(const char **)((char *)o + config_only[i].off) = val;
			return (1);
		}
	return (0);
}

/* --config FILE: "name = value" lines with the long flag names; '#'
 * starts a comment.  The file is read whole into o->config_text and the
 * values point into it, so they live as long as the options. */
static void
options_config(struct options *o, const char *path)
{
	FILE			*f;
	char			*line, *next, *name, *val, *end;
	const struct option	*lo;
	size_t			 n;
	int			 lineno = 0;

	if ((f = fopen(path, "r")) == NULL)
		usage_exit("cannot read config file %s", path);
	if ((o->config_text = calloc(1, CONFIG_MAX + 1)) == NULL)
		usage_exit("%s", "out of memory");
	n = fread(o->config_text, 1, CONFIG_MAX + 1, f);
	fclose(f);
	if (n > CONFIG_MAX)
		usage_exit("config file %s is larger than 64 KiB", path);
	for (line = o->config_text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line[strcspn(line, "#\r")] = '\0';
		name = line + strspn(line, " \t");
		if (*name == '\0')
			continue;
		if ((val = strchr(name, '=')) == NULL)
			usage_exit("%s:%d: not \"name = value\"", path, lineno);
		for (end = val; end > name && (end[-1] == ' ' ||
		    end[-1] == '\t'); end--)
			;
		*end = '\0';
		val++;
		val += strspn(val, " \t");
		for (end = val + strlen(val); end > val && (end[-1] == ' ' ||
		    end[-1] == '\t'); end--)
			;
		*end = '\0';
		if (options_config_only(o, name, val) ||
		    mcp_config_line(&o->mcp, name, val, path, lineno))
			continue;
		for (lo = longopts; lo->name != NULL; lo++)
			if (strcmp(lo->name, name) == 0)
				break;
		if (lo->name == NULL || options_set(o, lo->val, val, 1) == -1)
			usage_exit("%s:%d: unknown setting %s", path, lineno,
			    name);
	}
}

static void
options_parse(int argc, char **argv, struct options *o)
{
	int	 ch;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (ch == 'h')
			usage_exit("%s", "help");
		if (ch == 'f') {
			o->config = optarg;
			continue;
		}
		if (ch == '?' || ch == ':' || options_set(o, ch, optarg, 0))
			usage_exit("unknown or incomplete flag: %s",
			    argv[optind - 1]);
	}
	if (optind < argc)
		usage_exit("unexpected argument: %s", argv[optind]);
	if (o->config != NULL)
		options_config(o, o->config);
}

/* A config number in [min, max], or def when unset; exit 2 otherwise. */
static long
options_number(const char *name, const char *v, long def, long min, long max)
{
	char	*end;
	long	 n;

	if (v == NULL)
		return (def);
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < min || n > max)
		usage_exit("config %s must be a number in %ld..%ld, not %s",
		    name, min, max, v);
	return (n);
}

static void
options_limits(const struct options *o, struct broker *b)
{
	struct limits	*l = &b->limits;

	l->max_connections = (int)options_number("max-connections",
	    o->max_connections, 10000, 1, 1000000);
	l->max_conns_per_thread = (l->max_connections + b->nworkers - 1) /
	    b->nworkers;
	l->idle_timeout = (int)options_number("idle-timeout", o->idle_timeout,
	    30, 1, 3600);
	l->request_timeout = (int)options_number("request-timeout",
	    o->request_timeout, 30, 1, 3600);
	l->rate = (uint32_t)options_number("rate-limit", o->rate_limit, 1000,
	    0, 10000000);
	l->burst = (uint32_t)options_number("rate-burst", o->rate_burst,
	    2 * (long)l->rate, 0, 20000000);
}

static void
options_apply(const struct options *o, struct broker *b)
{
	enum log_level	 lvl = LOG_LVL_INFO;
	char		*colon, *end;
	long		 port, n;

	if (o->log_level && log_level_parse(o->log_level, &lvl) == -1)
		usage_exit("--log-level must be debug, info, warn or error, "
		    "not %s", o->log_level);
	log_init(lvl, "toolgated");
	if (!o->listen || !o->db || !o->ca || !o->cert || !o->key ||
	    !o->grant_key)
		usage_exit("%s", "missing a required flag");
	colon = strrchr(o->listen, ':');
	if (colon == NULL || colon == o->listen)
		usage_exit("--listen must be HOST:PORT, not %s", o->listen);
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		usage_exit("--listen port must be 1..65535: %s", o->listen);
	b->listen_host = strndup(o->listen, (size_t)(colon - o->listen));
	b->listen_port = (int)port;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (o->threads != NULL) {
		n = strtol(o->threads, &end, 10);
		if (*end != '\0' || n < 1 || n > SERVER_MAX_THREADS)
			usage_exit("--threads must be 1..64, not %s",
			    o->threads);
	}
	b->nworkers = n < 1 ? 1 : (n > SERVER_MAX_THREADS ?
	    SERVER_MAX_THREADS : (int)n);
	b->db_path = o->db;
	b->synchronous_full = 1;
	if (o->synchronous != NULL) {
		if (strcmp(o->synchronous, "normal") == 0)
			b->synchronous_full = 0;
		else if (strcmp(o->synchronous, "full") != 0)
			usage_exit("synchronous must be full or normal, not %s",
			    o->synchronous);
	}
	b->audience = o->audience ? o->audience : INTENT_DEFAULT_AUDIENCE;
	b->tls.ca = o->ca;
	b->tls.cert = o->cert;
	b->tls.key = o->key;
	b->tls.crl = o->crl;
	options_limits(o, b);
}

/* Private keys readable by group or others are refused (httpd's
 * check_file_secrecy): a key that leaked once is not a key. */
static void
check_secrecy(const char *path)
{
	struct stat	 st;
	char		 msg[600];

	if (stat(path, &st) == -1) {
		snprintf(msg, sizeof(msg), "%s: cannot read key: %s", path,
		    strerror(errno));
		startup_exit(msg);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(msg, sizeof(msg), "%s: private key is accessible by "
		    "group or others (mode %04o): chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		startup_exit(msg);
	}
}

static void
broker_load_keys(struct broker *b, const char *grant_key_path)
{
	char		 err[512], msg[600];
	const char	*why = NULL;
	EVP_PKEY	*gk;

	check_secrecy(b->tls.key);
	check_secrecy(grant_key_path);
	if ((b->refuse_ctx = tls_refusing_ctx()) == NULL ||
	    (b->rl = ratelimit_new(b->limits.rate, b->limits.burst)) == NULL)
		startup_exit("cannot set up connection limits");

	if ((b->ssl_ctx = tls_server_ctx(&b->tls, err, sizeof(err))) == NULL)
		startup_exit(err);
	if ((gk = jose_load_private_key(grant_key_path, &why)) == NULL ||
	    grant_signer_init(&b->grant, gk, &why) == -1) {
		snprintf(msg, sizeof(msg), "%s: %s", grant_key_path,
		    why ? why : "cannot load grant key");
		startup_exit(msg);
	}
}

/* SIGTERM: leave the loop once every decision this thread queued has
 * been committed and answered. */
static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct timeval	 again = { 0, 10000 };

	if (w->inflight > 0)
		event_add(w->stop_ev, &again);
	else
		event_base_loopexit(w->base, NULL);
}

static void
worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	if (w->idx == 0)
		approvals_sweep(w);
	wait_tick(w);
}

static void
worker_prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	if (db_begin(w->db) == 0 &&
	    (store_jti_prune(w->db, clock_now()) == -1 ||
	    db_commit(w->db) == -1))
		db_rollback(w->db);
}

static int
worker_listen(struct worker *w, struct sockaddr *sa, socklen_t salen)
{
	struct evconnlistener	*l;
	int			 one = 1;

	l = evconnlistener_new_bind(w->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	    LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC, 1024, sa,
	    (int)salen);
	if (l == NULL)
		return (-1);
	/* Accepted sockets inherit it: without it, a response written as
	 * two TLS records waits for the client's delayed ACK (40 ms). */
	if (setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof(one)) == -1)
		log_warn("%s: TCP_NODELAY", __func__);
	if (evhttp_bind_listener(w->http, l) == NULL) {
		evconnlistener_free(l);
		return (-1);
	}
	return (0);
}

/* epoll with libevent's changelist: the read/write toggles evhttp makes
 * around every request are folded into one epoll_ctl per loop pass
 * instead of one syscall each. */
static struct event_base *
worker_base_new(void)
{
	struct event_config	*cfg = event_config_new();
	struct event_base	*base;

	if (cfg == NULL)
		return (NULL);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return (base);
}

static void
worker_init(struct broker *b, int idx, struct sockaddr *sa, socklen_t salen)
{
	struct worker	*w = &b->workers[idx];
	struct timeval	 prune = { PRUNE_INTERVAL_S, 0 }, tick = { 1, 0 };
	char		 err[512], msg[700];

	w->idx = idx;
	w->broker = b;
	if ((w->db = db_open(b->db_path, err, sizeof(err))) == NULL)
		startup_exit(err);
	if ((w->base = worker_base_new()) == NULL ||
	    (w->http = evhttp_new(w->base)) == NULL ||
	    (w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w)) ==
	    NULL ||
	    (w->prune_ev = event_new(w->base, -1, EV_PERSIST,
	    worker_prune_cb, w)) == NULL ||
	    (w->tick_ev = event_new(w->base, -1, EV_PERSIST,
	    worker_tick_cb, w)) == NULL || wait_init(w) == -1 ||
	    commit_worker_init(w) == -1)
		startup_exit("cannot create the event loop");
	ks_cache_init(&w->ks);
	event_add(w->tick_ev, &tick);
	http_setup(w);
	if (worker_listen(w, sa, salen) == -1) {
		snprintf(msg, sizeof(msg), "cannot listen on %s:%d: %s",
		    b->listen_host, b->listen_port, strerror(errno));
		startup_exit(msg);
	}
	if (idx == 0)
		event_add(w->prune_ev, &prune);
	if (api_policy_refresh(w) == -1)
		startup_exit("the stored policy cannot be loaded");
}

/* The commit thread's own connection and policy snapshot. */
static void
commit_init(struct broker *b)
{
	struct worker	*ctx = &b->commit_ctx;
	char		 err[512];

	ctx->idx = -1;
	ctx->broker = b;
	if ((ctx->db = db_open(b->db_path, err, sizeof(err))) == NULL)
		startup_exit(err);
	if (!b->synchronous_full && db_set_synchronous(ctx->db, 0) == -1)
		startup_exit("cannot set synchronous = NORMAL");
	ks_cache_init(&ctx->ks);
	if (api_policy_refresh(ctx) == -1)
		startup_exit("the stored policy cannot be loaded");
	if (commit_start(b) == -1)
		startup_exit("cannot start the commit thread");
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	event_base_dispatch(w->base);
	return (NULL);
}

static void
worker_free(struct worker *w)
{
	wait_deinit(w);
	commit_worker_deinit(w);
	if (w->tick_ev != NULL)
		event_free(w->tick_ev);
	ks_cache_clear(&w->ks);
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->prune_ev != NULL)
		event_free(w->prune_ev);
	if (w->base != NULL)
		event_base_free(w->base);
	policy_free(w->policy);
	db_close(w->db);
}

static void
broker_resolve(struct broker *b, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct evutil_addrinfo	 hints, *res = NULL;
	char			 port[8], msg[512];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", b->listen_port);
	if (evutil_getaddrinfo(b->listen_host, port, &hints, &res) != 0 ||
	    res == NULL) {
		snprintf(msg, sizeof(msg), "--listen: cannot resolve %s",
		    b->listen_host);
		startup_exit(msg);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (socklen_t)res->ai_addrlen;
	evutil_freeaddrinfo(res);
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/*
 * SIGHUP: rebuild the TLS context from the same files (certificate, key,
 * CA, CRL) and swap it in for new connections; established connections
 * keep theirs.  On any error the old context stays.  The context before
 * the old one is freed: SSL objects hold their own reference, and a
 * worker that loaded the old pointer just now still finds it alive.
 */
static void
broker_reload_tls(struct broker *b)
{
	SSL_CTX	*fresh, *old;
	char	 err[512];

	if ((fresh = tls_server_ctx(&b->tls, err, sizeof(err))) == NULL) {
		log_warnx("SIGHUP: TLS reload failed, keeping the old "
		    "certificates: %s", err);
		return;
	}
	old = __atomic_exchange_n(&b->ssl_ctx, fresh, __ATOMIC_ACQ_REL);
	SSL_CTX_free(b->retired_ctx);
	b->retired_ctx = old;
	log_info("SIGHUP: TLS certificates and CRL reloaded");
}

/* The signals the main thread takes with sigwait.  Blocked in main before
 * any thread exists, so every thread inherits the mask and none of them
 * can be killed by a SIGHUP or SIGTERM meant for sigwait. */
static void
signals_blocked(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

static int
broker_run(struct broker *b)
{
	sigset_t	 set;
	int		 i, sig;

	signals_blocked(&set);
	for (i = 0; i < b->nworkers; i++)
		if (pthread_create(&b->workers[i].thread, NULL, worker_main,
		    &b->workers[i]) != 0)
			fatalx("cannot start thread %d", i);
	log_info("listening on %s:%d", b->listen_host, b->listen_port);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			broker_reload_tls(b);
			continue;
		}
		break;
	}
	log_info("signal %d: finishing in-flight requests", sig);
	for (i = 0; i < b->nworkers; i++)
		event_active(b->workers[i].stop_ev, 0, 0);
	for (i = 0; i < b->nworkers; i++)
		pthread_join(b->workers[i].thread, NULL);
	return (0);
}

int
main(int argc, char **argv)
{
	struct options		 o;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	sigset_t		 set;
	int			 i;

	signals_blocked(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	setvbuf(stderr, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* Keep freed heap: returning it to the kernel after every request
	 * (madvise) and faulting it back in cost more than the memory. */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	options_parse(argc, argv, &o);
	options_apply(&o, &broker);
	if (evthread_use_pthreads() == -1 || conn_init() == -1)
		fatalx("cannot initialise threads");
	event_set_log_callback(libevent_log);
	json_object_seed(0);
	broker_load_keys(&broker, o.grant_key);
	broker_resolve(&broker, &ss, &sslen);
	for (i = 0; i < broker.nworkers; i++)
		worker_init(&broker, i, (struct sockaddr *)&ss, sslen);
	commit_init(&broker);
	mcp_config_finish(&o.mcp);
	if (mcp_start(&broker, &o.mcp) == -1)
		startup_exit("cannot start the MCP gateway (see the line "
		    "above)");
	broker_run(&broker);
	mcp_stop(&broker);
	commit_stop(&broker);
	for (i = 0; i < broker.nworkers; i++)
		worker_free(&broker.workers[i]);
	policy_free(broker.commit_ctx.policy);
	ks_cache_clear(&broker.commit_ctx.ks);
	db_close(broker.commit_ctx.db);
	SSL_CTX_free(broker.ssl_ctx);
	SSL_CTX_free(broker.retired_ctx);
	SSL_CTX_free(broker.refuse_ctx);
	ratelimit_free(broker.rl);
	grant_signer_deinit(&broker.grant);
	mcp_config_free(&o.mcp);
	free(o.config_text);
	free((char *)broker.listen_host);
	log_info("stopped");
	return (0);
}
