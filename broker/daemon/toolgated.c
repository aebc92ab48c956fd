/*
 * toolgated: start-up and shut-down.  Parses flags (and --config), loads
 * and checks every key and certificate before anything listens (exit 2
 * with one line naming the file on any problem), migrates the database,
 * binds the one listening socket (exit 2 when the address is in use: no
 * SO_REUSEPORT, so a second broker cannot share the port), warns about
 * what an operator must know at start (no policy, kill switches engaged),
 * then runs one event base + evhttp + database connection per thread,
 * all accepting on that socket (and, on a shared PostgreSQL database, a
 * thread that hears the other brokers: watch.c).  The main thread only
 * waits for signals: SIGHUP reloads TLS and the grant keys,
 * SIGTERM/SIGINT stop the loops after in-flight requests.
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

#include "approvals.h"
#include "broker.h"
#include "clock.h"
#include "conn.h"
#include "file.h"
#include "http.h"
#include "jose.h"
#include "log.h"
#include "mcp.h"
#include "store.h"
#include "trust.h"
#include "version.h"

#define PRUNE_INTERVAL_S 60

static struct broker	 broker;

static const char help_text[] =
"usage: toolgated --listen HOST:PORT --db PATH --ca FILE --cert FILE\n"
"                 --key FILE --grant-key FILE --audit-key FILE [options]\n"
"\n"
"The toolgate broker: decides AI agents' tool-call intents over mutual TLS.\n"
"\n"
"required (as flags or in --config):\n"
"  --listen HOST:PORT   address to listen on; in use already: exit 2\n"
"  --db PATH|URI        SQLite database file, created and migrated at\n"
"                       start; or a PostgreSQL URI (postgresql://...),\n"
"                       which any number of brokers may share\n"
"  --ca FILE            CA certificates (PEM) client certificates must\n"
"                       chain to\n"
"  --cert FILE          the broker's certificate chain (PEM)\n"
"  --key FILE           its private key (PEM, mode 0600)\n"
"  --grant-key FILE     EC P-256 key (PEM, mode 0600) that signs grants\n"
"                       and audit checkpoints; more than once to rotate:\n"
"                       the first signs, all verify and are in /v1/jwks\n"
"  --audit-key FILE     the audit key (mode 0600): lines of 64 hex digits\n"
"                       (openssl rand -hex 32); the first tags audit\n"
"                       records, every line verifies them\n"
"\n"
"options:\n"
"  --audit-anchor FILE  where the broker keeps the newest audit record it\n"
"                       verified, outside the database (default: the\n"
"                       --db path with .anchor appended; none for a\n"
"                       PostgreSQL URI: give each broker its own)\n"
"  --crl FILE           CRLs (PEM) of the CAs in --ca: revoked certificates\n"
"                       are refused, also on open connections after SIGHUP\n"
"  --audience NAME      the aud intents must name (default toolgate)\n"
"  --threads N          worker threads, 1..64 (default: one per CPU)\n"
"  --config FILE        \"name = value\" settings: any flag above by its\n"
"                       long name, and the limits of proto/config.md\n"
"  --log-level LEVEL    debug, info (default), warn or error\n"
"  --log-format FORMAT  text (default; RFC 3339 time first) or json (one\n"
"                       object per line)\n"
"  --version            print the version and exit\n"
"  -h, --help           show this help and exit\n"
"\n"
"Logs go to stderr; \"listening on HOST:PORT\" once ready.  SIGHUP reloads\n"
"the certificate, key, CA and CRL and closes connections whose certificate\n"
"is no longer trusted, and reloads the grant keys (the --grant-key files,\n"
"or the grant-key lines of --config read again); SIGTERM finishes\n"
"in-flight requests and exits 0.\n"
"Exit 2: a bad flag or setting, an unusable file or key, or the address in\n"
"use.  Documentation: README.md, proto/config.md, proto/identities.md.\n";

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_exit(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fprintf(stderr, "toolgated: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void __attribute__((noreturn))
startup_exit(const char *msg)
{
	fprintf(stderr, "toolgated: %s\n", msg);
	exit(2);
}

struct options {
	const char	*listen, *db, *ca, *cert, *key, *crl;
	const char	*audit_key, *audit_anchor;
	const char	*audience, *threads, *config, *log_level, *log_format;
	/* --grant-key, more than once; on the command line they replace
	 * every grant-key line of --config */
	const char	*grant_keys[GRANT_KEYS_MAX];
	size_t		 n_grant_keys;
	int		 grant_keys_cli;	/* given as flags */
	int		 grant_keys_over;	/* more than GRANT_KEYS_MAX */
	/* --config only: hardening and durability knobs (proto/config.md) */
	const char	*synchronous, *max_connections, *idle_timeout;
	const char	*request_timeout, *rate_limit, *rate_burst;
	const char	*max_conn_age, *grant_window, *max_waits;
	const char	*notify_retry_for, *notify_timeout, *notify_queue_max;
	const char	*checkpoint_every;
	char		*config_text;	/* owns the values read from --config */
	struct mcp_conf	 mcp;		/* mcp-* lines (mcp_config.c) */
	/* SIGHUP's second read, for the grant keys only: the notify and
	 * mcp-* lines were taken at start and are skipped */
	int		 rereading;
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
	{ "max-connection-age",	offsetof(struct options, max_conn_age) },
	{ "grant-window",	offsetof(struct options, grant_window) },
	{ "max-waits-per-identity", offsetof(struct options, max_waits) },
	{ "notify-retry-for",	offsetof(struct options, notify_retry_for) },
	{ "notify-timeout",	offsetof(struct options, notify_timeout) },
	{ "notify-queue-max",	offsetof(struct options, notify_queue_max) },
	{ "checkpoint-every",	offsetof(struct options, checkpoint_every) },
};

static const struct option longopts[] = {
	{ "listen",	required_argument, NULL, 'l' },
	{ "db",		required_argument, NULL, 'd' },
	{ "ca",		required_argument, NULL, 'a' },
	{ "cert",	required_argument, NULL, 'c' },
	{ "key",	required_argument, NULL, 'k' },
	{ "grant-key",	required_argument, NULL, 'g' },
	{ "audit-key",	required_argument, NULL, 'A' },
	{ "audit-anchor", required_argument, NULL, 'N' },
	{ "crl",	required_argument, NULL, 'r' },
	{ "audience",	required_argument, NULL, 'u' },
	{ "threads",	required_argument, NULL, 't' },
	{ "config",	required_argument, NULL, 'f' },
	{ "log-level",	required_argument, NULL, 'v' },
	{ "log-format",	required_argument, NULL, 'F' },
	{ "version",	no_argument,	   NULL, 'V' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* One more grant key: the first given signs.  Flags replace the file's
 * lines (command-line values win), in the order given. */
static void
options_grant_key(struct options *o, const char *val, int from_config)
{
	if (from_config && o->grant_keys_cli)
		return;
	if (!from_config)
		o->grant_keys_cli = 1;
	if (o->n_grant_keys == GRANT_KEYS_MAX)
		o->grant_keys_over = 1;
	else
		o->grant_keys[o->n_grant_keys++] = val;
}

/* Set an option by its long name; command-line values win over --config
 * values, so a config value only fills what is still unset. */
static int
options_set(struct options *o, int opt, const char *val, int from_config)
{
	const char	**slot;

	if (opt == 'g') {
		options_grant_key(o, val, from_config);
		return (0);
	}
	switch (opt) {
	case 'l': slot = &o->listen; break;
	case 'd': slot = &o->db; break;
	case 'a': slot = &o->ca; break;
	case 'c': slot = &o->cert; break;
	case 'k': slot = &o->key; break;
	case 'A': slot = &o->audit_key; break;
	case 'N': slot = &o->audit_anchor; break;
	case 'r': slot = &o->crl; break;
	case 'u': slot = &o->audience; break;
	case 't': slot = &o->threads; break;
	case 'v': slot = &o->log_level; break;
	case 'F': slot = &o->log_format; break;
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
 * values point into it, so they live as long as the options.  0, or -1
 * with one line in err (nothing exits here: SIGHUP reads the file again
 * for its grant keys, and a bad file must not stop the broker). */
static int
config_read(struct options *o, const char *path, char *err, size_t errlen)
{
	FILE			*f;
	char			*line, *next, *name, *val, *end;
	const struct option	*lo;
	size_t			 n;
	int			 lineno = 0;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot read config file %s: %s", path,
		    strerror(errno));
		return (-1);
	}
	if ((o->config_text = calloc(1, CONFIG_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	n = fread(o->config_text, 1, CONFIG_MAX + 1, f);
	fclose(f);
	if (n > CONFIG_MAX) {
		snprintf(err, errlen, "config file %s is larger than 64 KiB",
		    path);
		return (-1);
	}
	for (line = o->config_text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line[strcspn(line, "#\r")] = '\0';
		name = line + strspn(line, " \t");
		if (*name == '\0')
			continue;
		if ((val = strchr(name, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: not \"name = value\"",
			    path, lineno);
			return (-1);
		}
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
		    (o->rereading && (events_config_is(name) ||
		    mcp_config_is(name))) ||
		    events_config_line(&broker.events, path, lineno, name,
		    val) ||
		    mcp_config_line(&o->mcp, name, val, path, lineno))
			continue;
		for (lo = longopts; lo->name != NULL; lo++)
			if (strcmp(lo->name, name) == 0)
				break;
		if (lo->name == NULL || options_set(o, lo->val, val, 1) == -1) {
			snprintf(err, errlen, "%s:%d: unknown setting %s", path,
			    lineno, name);
			return (-1);
		}
	}
	return (0);
}

static void
options_config(struct options *o, const char *path)
{
	char	 err[512];

	if (config_read(o, path, err, sizeof(err)) == -1)
		usage_exit("%s", err);
}

static void
options_parse(int argc, char **argv, struct options *o)
{
	int	 ch;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			fputs(help_text, stdout);
			exit(0);
		}
		if (ch == 'V') {
			printf("toolgated %s\n", TOOLGATE_VERSION);
			exit(0);
		}
		if (ch == 'f') {
			o->config = optarg;
			continue;
		}
		if (ch == '?' || ch == ':' || options_set(o, ch, optarg, 0))
			usage_exit("unknown or incomplete flag: %s "
			    "(toolgated --help lists every flag)",
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
	l->max_conn_age = (int)options_number("max-connection-age",
	    o->max_conn_age, 3600, 1, 31536000);
	l->max_waits_per_identity = (int)options_number(
	    "max-waits-per-identity", o->max_waits, WAIT_PER_IDENTITY_DEFAULT,
	    1, 65536);
	b->lc.grant_window = options_number("grant-window", o->grant_window,
	    LC_GRANT_WINDOW_DEFAULT, 1, 31536000);
	b->events.retry_for = options_number("notify-retry-for",
	    o->notify_retry_for, EVENTS_RETRY_FOR, 1, 31536000);
	b->events.timeout = options_number("notify-timeout", o->notify_timeout,
	    EVENTS_TIMEOUT, 1, 300);
	b->events.queue_max = options_number("notify-queue-max",
	    o->notify_queue_max, EVENTS_QUEUE_MAX, 100, 10000000);
	b->events.checkpoint_every = options_number("checkpoint-every",
	    o->checkpoint_every, EVENTS_CHECKPOINT_EVERY, 1, 86400);
	events_config_finish(&b->events);
	b->lc.outbox = &b->events.rules;
}

/* Name every required flag that is missing, and exit 2. */
static void __attribute__((noreturn))
options_missing(const struct options *o)
{
	const struct {
		const char	*flag;
		const char	*val;
	} req[] = {
		{ "--listen", o->listen }, { "--db", o->db }, { "--ca", o->ca },
		{ "--cert", o->cert }, { "--key", o->key },
		{ "--grant-key", o->n_grant_keys ? o->grant_keys[0] : NULL },
		{ "--audit-key", o->audit_key },
	};
	char	 missing[128] = "";
	size_t	 i, n = 0, used = 0;

	for (i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (req[i].val == NULL && used < sizeof(missing))
			used += (size_t)snprintf(missing + used,
			    sizeof(missing) - used, "%s%s", n++ ? " " : "",
			    req[i].flag);
	usage_exit("missing required flag%s %s (on the command line or in "
	    "--config; see toolgated --help)", n > 1 ? "s" : "", missing);
}

static void
options_apply(const struct options *o, struct broker *b)
{
	enum log_level	 lvl = LOG_LVL_INFO;
	enum log_format	 fmt = LOG_FMT_TEXT;
	char		*colon, *end;
	long		 port, n;

	if (o->log_level && log_level_parse(o->log_level, &lvl) == -1)
		usage_exit("--log-level must be debug, info, warn or error, "
		    "not %s", o->log_level);
	if (o->log_format && log_format_parse(o->log_format, &fmt) == -1)
		usage_exit("--log-format must be text or json, not %s",
		    o->log_format);
	log_init(lvl, "toolgated");
	log_set_format(fmt);
	if (!o->listen || !o->db || !o->ca || !o->cert || !o->key ||
	    o->n_grant_keys == 0 || !o->audit_key)
		options_missing(o);
	if (o->grant_keys_over)
		usage_exit("at most %d grant keys (--grant-key)",
		    GRANT_KEYS_MAX);
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
		if (*end != '\0' || n < 1 || n > BROKER_MAX_THREADS)
			usage_exit("--threads must be 1..64, not %s",
			    o->threads);
	}
	b->nworkers = n < 1 ? 1 : (n > BROKER_MAX_THREADS ?
	    BROKER_MAX_THREADS : (int)n);
	b->db_path = o->db;
	/* Next to a database file unless said otherwise; a server database
	 * (PostgreSQL) has no default place. */
	if (o->audit_anchor != NULL)
		b->anchor_path = strdup(o->audit_anchor);
	else if (store_spec_is_file(o->db) && asprintf(&b->anchor_path,
	    "%s.anchor", o->db) == -1)
		b->anchor_path = NULL;
	if ((o->audit_anchor != NULL || store_spec_is_file(o->db)) &&
	    b->anchor_path == NULL)
		usage_exit("%s", "out of memory");
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
	/* What SIGHUP reloads the grant keys from: these flags, or the
	 * config file's lines read again. */
	b->config_path = o->config;
	if (o->grant_keys_cli) {
		memcpy(b->grant_paths, o->grant_keys, sizeof(b->grant_paths));
		b->n_grant_paths = o->n_grant_keys;
	}
	options_limits(o, b);
}

/* Private keys readable by group or others are refused (httpd's
 * check_file_secrecy): a key that leaked once is not a key. */
static void
check_secrecy(const char *flag, const char *path)
{
	char	 msg[600], why[256];

	if (file_check_secret(path, why, sizeof(why)) == -1) {
		snprintf(msg, sizeof(msg), "%s %s: %s", flag, path, why);
		startup_exit(msg);
	}
}

/* "signing with kid A; also verifying B, C", for the logs. */
static void
grant_keys_text(const struct grant_keyring *r, char *out, size_t len)
{
	size_t	 i, used;

	used = (size_t)snprintf(out, len, "signing with kid %s",
	    r->keys[0].kid);
	for (i = 1; i < r->n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
		    i == 1 ? "; also verifying kid " : ", ", r->keys[i].kid);
}

/*
 * The grant keys, from the --grant-key flags or else from the config
 * file, read again (SIGHUP: the rotation's steps are edits of its
 * grant-key lines).  A keyring, or NULL with one line in err.
 */
static struct grant_keyring *
broker_grant_keys(const struct broker *b, char *err, size_t errlen)
{
	struct options		 o;
	struct grant_keyring	*r = NULL;
	char			 why[512];

	if (b->n_grant_paths > 0) {
		if ((r = grant_keyring_load(b->grant_paths, b->n_grant_paths,
		    why, sizeof(why))) == NULL)
			snprintf(err, errlen, "--grant-key %s", why);
		return (r);
	}
	memset(&o, 0, sizeof(o));
	o.rereading = 1;
	if (b->config_path == NULL)
		snprintf(err, errlen, "no --grant-key and no --config");
	else if (config_read(&o, b->config_path, why, sizeof(why)) == -1)
		snprintf(err, errlen, "%s", why);
	else if (o.grant_keys_over)
		snprintf(err, errlen, "%s: at most %d grant-key lines",
		    b->config_path, GRANT_KEYS_MAX);
	else if (o.n_grant_keys == 0)
		snprintf(err, errlen, "%s: no grant-key line", b->config_path);
	else if ((r = grant_keyring_load(o.grant_keys, o.n_grant_keys, why,
	    sizeof(why))) == NULL)
		snprintf(err, errlen, "grant-key %s", why);
	free(o.config_text);
	return (r);
}

static void
broker_load_keys(struct broker *b, const char *audit_key_path)
{
	struct grant_keyring	*ring;
	char			 err[700], msg[900];

	check_secrecy("--key", b->tls.key);
	if ((ring = broker_grant_keys(b, err, sizeof(err))) == NULL)
		startup_exit(err);
	if (grant_signer_init_ring(&b->grant, ring) == -1)
		startup_exit("cannot set up the grant keys");
	if (audit_keys_load(&b->audit_keys, audit_key_path, err,
	    sizeof(err)) == -1) {
		snprintf(msg, sizeof(msg), "--audit-key %s: %s", audit_key_path,
		    err);
		startup_exit(msg);
	}
	if (audit_trust_init(&b->trust, &b->audit_keys, 1) == -1)
		startup_exit("cannot set up the audit trust");
	b->lc.trust = &b->trust;
	pthread_mutex_init(&b->tls_lock, NULL);
	if ((b->refuse_ctx = tls_refusing_ctx()) == NULL ||
	    (b->rl = ratelimit_new(b->limits.rate, b->limits.burst)) == NULL ||
	    (b->waitq = waitquota_new(b->limits.max_waits_per_identity)) ==
	    NULL)
		startup_exit("cannot set up connection limits");

	if ((b->ssl_ctx = tls_server_ctx(&b->tls, err, sizeof(err))) == NULL)
		startup_exit(err);
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

	if (w->idx == 0) {
		trust_tick(w);
		approvals_sweep(w);
	}
	wait_tick(w);
}

/* Forget replay-cache entries past their expiry, on the writer (a chore:
 * see commit_chore). */
static enum reason
worker_prune_run(struct decider *d, struct commit_job *j)
{
	return (d->store->ops->jti_prune(d->store, clock_now()) == -1 ?
	    E_UNAVAILABLE : REASON_OK);
}

static void
worker_prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	commit_chore(w, worker_prune_run, &w->pruning);
}

/* This worker accepts on the broker's one listening socket too: the
 * kernel wakes the threads waiting on it and one of them accepts. */
static int
worker_listen(struct worker *w, int fd)
{
	struct evconnlistener	*l;

	/* Backlog 0: already listening.  Not LEV_OPT_CLOSE_ON_FREE: the
	 * socket is shared; main closes it after every worker is gone. */
	l = evconnlistener_new(w->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC, 0,
	    fd);
	if (l == NULL)
		return (-1);
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
worker_init(struct broker *b, int idx)
{
	struct worker	*w = &b->workers[idx];
	struct timeval	 prune = { PRUNE_INTERVAL_S, 0 }, tick = { 1, 0 };
	char		 err[512], msg[700];

	w->idx = idx;
	w->broker = b;
	snprintf(w->name, sizeof(w->name), "thread %d", idx);
	/* toolgated creates its database (mode 0600) when there is none. */
	if ((w->store = store_open(b->db_path, STORE_CREATE, err,
	    sizeof(err))) == NULL)
		startup_exit(err);
	decider_init(&w->dec, w->store, w->name, &b->lc);
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
	event_add(w->tick_ev, &tick);
	http_setup(w);
	if (worker_listen(w, b->listen_fd) == -1) {
		snprintf(msg, sizeof(msg), "cannot accept on %s:%d: %s",
		    b->listen_host, b->listen_port, strerror(errno));
		startup_exit(msg);
	}
	if (idx == 0)
		event_add(w->prune_ev, &prune);
	/* A broken chain does not stop the start: it answers 503. */
	if (decider_refresh(&w->dec) == -1 && !audit_trust_broken(&b->trust))
		startup_exit("the stored policy cannot be loaded");
	/* Every write is the writer's (commit.c): a write here would stall
	 * this thread's connections behind the database's lock. */
	if (w->store->ops->set_read_only(w->store) == -1)
		startup_exit("cannot make a connection thread's database "
		    "connection read-only");
}

/* The commit thread's own connection and decider; and, on a shared
 * database, the connection that hears the other brokers. */
static void
commit_init(struct broker *b)
{
	char	 err[512];

	if (commit_start(b, err, sizeof(err)) == -1 ||
	    watch_start(b, err, sizeof(err)) == -1)
		startup_exit(err);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	(void)pthread_setname_np(pthread_self(), "tg-worker");
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
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->prune_ev != NULL)
		event_free(w->prune_ev);
	if (w->base != NULL)
		event_base_free(w->base);
	decider_deinit(&w->dec);
	store_close(w->store);
}

/*
 * The one listening socket of this broker, bound to --listen.  No
 * SO_REUSEPORT: with it a second toolgated could bind the same address
 * and silently take part of the connections with its own database.
 * SO_REUSEADDR only lets a restart bind while old connections linger in
 * TIME_WAIT; an address someone listens on is refused (exit 2).
 */
static void
broker_listen(struct broker *b)
{
	struct evutil_addrinfo	 hints, *res = NULL;
	char			 port[8], msg[512];
	int			 fd, one = 1, e;

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
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1 || bind(fd, res->ai_addr,
	    (socklen_t)res->ai_addrlen) == -1 || listen(fd, 1024) == -1) {
		e = errno;
		snprintf(msg, sizeof(msg), "cannot listen on %s:%d: %s%s",
		    b->listen_host, b->listen_port, strerror(e),
		    e == EADDRINUSE ? " (another toolgated, or another "
		    "program, is listening there: stop it or pick another "
		    "--listen)" : "");
		startup_exit(msg);
	}
	evutil_freeaddrinfo(res);
	/* Accepted sockets inherit it: without it, a response written as
	 * two TLS records waits for the client's delayed ACK (40 ms). */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("%s: TCP_NODELAY", __func__);
	b->listen_fd = fd;
}

/*
 * What an operator must know before the first intent: with no policy
 * every intent is denied and nobody can apply one online; engaged kill
 * switches stop whatever they cover until an operator resets them.
 */
static int
startup_ks_cb(const struct ks_row *r, void *arg)
{
	char	 at[RFC3339_LEN];

	clock_rfc3339(r->at, at);
	log_warnx("kill switch %lld engaged (%s%s%s) by %s at %s: %s; reset "
	    "with: toolgatectl killswitch reset %lld --reason TEXT",
	    (long long)r->id, ks_scope_name(r->scope), r->target ? " " : "",
	    r->target ? r->target : "", r->by, at, r->reason,
	    (long long)r->id);
	return (0);
}

static void
broker_startup_warnings(struct broker *b)
{
	struct store		*s;
	struct store_gen	 g;
	struct grant_keyring	*ring;
	char			 err[512], kids[768], db[STORE_DISPLAY_MAX];

	/* Which key signs: what a rotation's step is checked by. */
	ring = grant_signer_keys(&b->grant);
	grant_keys_text(ring, kids, sizeof(kids));
	grant_keyring_unref(ring);
	log_info("grant keys: %s", kids);

	if ((s = store_open(b->db_path, 0, err, sizeof(err))) == NULL)
		startup_exit(err);
	/* A URI's password is never shown: the user knows it. */
	store_display(b->db_path, db, sizeof(db));
	if (s->ops->generations(s, STORE_GEN_POLICY, &g) == 0 &&
	    g.policy == 0)
		log_warnx("no policy applied: every intent is denied "
		    "unknown_principal, and no operator exists to apply one "
		    "online; bootstrap with: toolgatectl --db %s policy apply "
		    "POLICY.json", db);
	(void)s->ops->ks_engaged(s, startup_ks_cb, NULL);
	store_close(s);
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
 * keep theirs, unless the new CA or CRL refuses their certificate: those
 * are closed once their request in flight is answered (conn.c).  On any
 * error the old context stays.
 */
static void
broker_reload_tls(struct broker *b)
{
	SSL_CTX	*fresh;
	char	 err[512];

	if ((fresh = tls_server_ctx(&b->tls, err, sizeof(err))) == NULL) {
		log_warnx("SIGHUP: TLS reload failed, keeping the old "
		    "certificates: %s", err);
		return;
	}
	conn_tls_swap(b, fresh);
	log_info("SIGHUP: TLS certificates and CRL reloaded; checking open "
	    "connections against them");
}

/*
 * SIGHUP: the grant keys, validated whole (every file, mode, curve; the
 * config file whole when they come from it), then swapped in: the next
 * grant is signed by the new first key, redemptions verify with every
 * key listed.  On any error the old keys stay.
 */
static void
broker_reload_grant_keys(struct broker *b)
{
	struct grant_keyring	*ring;
	char			 err[700], kids[768];

	if ((ring = broker_grant_keys(b, err, sizeof(err))) == NULL) {
		log_warnx("SIGHUP: grant keys not reloaded, keeping the old "
		    "ones: %s", err);
		return;
	}
	grant_keys_text(ring, kids, sizeof(kids));
	grant_signer_swap(&b->grant, ring);
	log_info("SIGHUP: grant keys reloaded: %s", kids);
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

/*
 * A database server that does not answer yet (a broker started before
 * PostgreSQL, or during its restart) is waited for before anything
 * listens — no load balancer sends traffic to a broker without its
 * database — instead of exiting 2, which the service manager would not
 * restart.  SIGTERM or SIGINT meanwhile: exit 0.  Any other problem
 * (refused credentials, no such database, a newer schema) is left to the
 * first open, which exits 2 naming it.
 */
static void
broker_wait_for_db(const struct broker *b)
{
	struct timespec	 again = { 2, 0 };
	sigset_t	 set;
	char		 why[256], db[STORE_DISPLAY_MAX];
	int		 waited = 0;

	signals_blocked(&set);
	while (store_ping(b->db_path, why, sizeof(why)) == 0) {
		if (!waited) {
			store_display(b->db_path, db, sizeof(db));
			log_warnx("database %s: %s; waiting for it", db, why);
		}
		waited = 1;
		if (sigtimedwait(&set, NULL, &again) != -1) {
			log_info("stopped while waiting for the database");
			exit(0);
		}
	}
	if (waited)
		log_info("the database answers");
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
			broker_reload_grant_keys(b);
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
	sigset_t		 set;
	char			 err[512];
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
	broker_load_keys(&broker, o.audit_key);
	broker_wait_for_db(&broker);
	broker_listen(&broker);
	if (trust_start(&broker, err, sizeof(err)) == -1)
		startup_exit(err);
	for (i = 0; i < broker.nworkers; i++)
		worker_init(&broker, i);
	commit_init(&broker);
	events_start(&broker);
	broker_startup_warnings(&broker);
	mcp_config_finish(&o.mcp);
	if (mcp_start(&broker, &o.mcp) == -1)
		startup_exit("cannot start the MCP gateway (see the line "
		    "above)");
	broker_run(&broker);
	mcp_stop(&broker);
	watch_stop(&broker);
	/* The writer first: nothing can wake the sender after it. */
	commit_stop(&broker);
	events_stop(&broker);
	for (i = 0; i < broker.nworkers; i++)
		worker_free(&broker.workers[i]);
	trust_stop(&broker);
	audit_trust_deinit(&broker.trust);
	audit_keys_clear(&broker.audit_keys);
	free(broker.anchor_path);
	close(broker.listen_fd);
	SSL_CTX_free(broker.ssl_ctx);
	SSL_CTX_free(broker.refuse_ctx);
	ratelimit_free(broker.rl);
	waitquota_free(broker.waitq);
	grant_signer_deinit(&broker.grant);
	events_config_free(&broker.events);
	mcp_config_free(&o.mcp);
	free(o.config_text);
	free((char *)broker.listen_host);
	log_info("stopped");
	return (0);
}
