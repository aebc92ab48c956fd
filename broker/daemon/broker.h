/*
 * broker: the daemon's shared state — the broker (configuration, keys, TLS
 * context, the commit writer) and one worker per thread (event base,
 * evhttp, store connection and decider, held long-polls, counters).
 * Everything a worker touches on its request path is its own; the broker
 * is read-only after start except for the few atomics named below and
 * the TLS context, swapped under tls_lock.
 */
#pragma once

#include <sys/queue.h>

#include <pthread.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "audit_trust.h"
#include "commit.h"
#include "events.h"
#include "grant.h"
#include "lifecycle.h"
#include "metrics.h"
#include "ratelimit.h"
#include "tls.h"
#include "wait.h"
#include "watch.h"

#define BROKER_MAX_THREADS	64
#define BROKER_MAX_HEADERS	(16 * 1024)
#define BROKER_MAX_BODY		(4 * 1024 * 1024)

struct sender;
struct mcp_gateway;

struct worker {
	int			 idx;
	char			 name[24];	/* "thread N", for logs */
	pthread_t		 thread;
	struct broker		*broker;
	struct event_base	*base;
	struct evhttp		*http;
	struct event		*stop_ev;
	struct event		*prune_ev;
	struct event		*tick_ev;	/* 1 Hz: sweeper, waiters */
	struct store		*store;
	struct decider		 dec;		/* policy, switches, changes */
	struct wait_worker	 wait;		/* wait.c: held long-polls */
	struct commit_worker	 done;		/* commit.c: decided jobs */
	struct commit_worker	 ran;		/* commit.c: run, committing */
	struct commit_held	 held;		/* commit.c: records held */
	int			 inflight;	/* jobs in the commit queue */
	int			 sweeping, pruning;	/* chores queued */
	int			 nconns;	/* conn.c */
	LIST_HEAD(conn_list, conn) conns;	/* conn.c: this thread's */
	struct metrics		 metrics;
};

/* Hardening knobs, set from --config (proto/config.md). */
struct limits {
	int			 max_connections;	/* whole broker */
	int			 max_conns_per_thread;
	int			 idle_timeout;		/* s, evhttp inactivity */
	int			 request_timeout;	/* s, complete request */
	uint32_t		 rate, burst;		/* per identity */
	int			 max_waits_per_identity;
	int			 max_conn_age;		/* s, then closed */
};

struct broker {
	const char		*listen_host;
	int			 listen_port;
	const char		*db_path;
	const char		*audience;
	/* Where SIGHUP reloads the grant keys from: these --grant-key
	 * flags, or (none given) the grant-key lines of config_path. */
	const char		*config_path;
	const char		*grant_paths[GRANT_KEYS_MAX];
	size_t			 n_grant_paths;
	struct tls_files	 tls;
	pthread_mutex_t		 tls_lock;	/* ssl_ctx and tls_gen */
	SSL_CTX			*ssl_ctx;	/* swapped on SIGHUP */
	uint64_t		 tls_gen;	/* +1 at every swap */
	SSL_CTX			*refuse_ctx;	/* over max-connections */
	int			 listen_fd;	/* shared by every worker */
	struct limits		 limits;
	struct lc_config	 lc;		/* grant-window */
	struct ratelimit	*rl;
	struct waitquota	*waitq;		/* long-polls per identity */
	struct grant_signer	 grant;		/* swapped on SIGHUP */
	/* What the broker does not take on trust (trust.c): the audit
	 * key, the known head shared by every thread, the anchor file. */
	struct audit_keys	 audit_keys;
	struct audit_trust	 trust;
	char			*anchor_path;	/* NULL: none */
	unsigned		 trust_ticks;	/* worker 0's, trust.c */
	int			 synchronous_full;
	/* Bumped (atomically) after every kill switch change this process
	 * commits: an answer decided before it re-checks the switches. */
	int64_t			 ks_epoch;
	int			 nworkers;
	struct worker		 workers[BROKER_MAX_THREADS];
	/* What committed transactions count, from any thread (atomics). */
	struct metrics		 shared_metrics;
	struct committer	 commit;
	struct events_config	 events;	/* notify lines */
	struct sender		*sender;	/* events_send.c, or NULL */
	struct mcp_gateway	*mcp;		/* mcp.c */
	struct watcher		 watch;		/* watch.c: other brokers */
};
