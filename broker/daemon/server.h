/*
 * server: the daemon's shared state — the broker (configuration, keys, TLS
 * context) and one worker per thread (event base, evhttp, SQLite
 * connection, policy snapshot, counters).  Everything a worker touches on
 * its request path is its own; the broker is read-only after start.
 */
#pragma once

#include <sys/queue.h>

#include <pthread.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "db.h"
#include "grant.h"
#include "killswitch.h"
#include "metrics.h"
#include "policy.h"
#include "ratelimit.h"
#include "store.h"
#include "tls.h"

#define SERVER_MAX_THREADS	64
#define SERVER_MAX_HEADERS	(16 * 1024)
#define SERVER_MAX_BODY		(4 * 1024 * 1024)
#define WAIT_MAX_SECONDS	60
#define WAIT_MAX_PER_WORKER	1024
#define WAIT_INBOX		256

struct broker;
struct mcp_gateway;

struct worker {
	int			 idx;
	pthread_t		 thread;
	struct broker		*broker;
	struct event_base	*base;
	struct evhttp		*http;
	struct event		*stop_ev;
	struct event		*prune_ev;
	struct db		*db;
	struct policy		*policy;	/* this thread's snapshot */
	int64_t			 policy_version;
	struct ks_cache		 ks;		/* engaged kill switches */
	struct event		*tick_ev;	/* 1 Hz: sweeper, waiters */
	/* wait.c: held long-polls, and ids other threads changed */
	TAILQ_HEAD(, waiter)	 waiters;
	int			 nwaiters;
	int64_t			 data_version;
	struct event		*wake_ev;
	pthread_mutex_t		 inbox_lock;
	char			 inbox[WAIT_INBOX][40];
	size_t			 inbox_n;
	int			 inbox_overflow;
	/* commit.c: decided jobs waiting to be answered on this thread */
	pthread_mutex_t		 done_lock;
	struct job		*done_head, **done_tail;
	struct event		*done_ev;
	int			 inflight;
	int			 nconns;	/* conn.c */
	struct metrics		 metrics;
};

/* decide.c: claims + snapshot + kill switches → a stored decision */
struct decision {
	struct intent_record	 rec;
	char			 id[40];
	char			*args, *rule, *approver_roles;
	struct evaluation	 ev;
};
/*
 * Inside the caller's transaction (after api_policy_refresh and
 * ks_refresh): claim (iss, jti), evaluate, insert the intent and its audit
 * record.  REASON_OK, E_REPLAY (nothing written for it), or E_UNAVAILABLE
 * (the transaction must be rolled back).
 */
enum reason decide_in_tx(struct worker *w, const struct intent *in,
	    struct decision *d, int64_t now);
void	decision_free(struct decision *d);

/* commit.c: one writer thread commits the decisions of every worker in
 * batches (group commit); answers go back to the worker that owns the
 * connection. */
struct job {
	struct job		*next;
	struct worker		*w;
	struct evhttp_request	*req;	/* NULL once its connection closed */
	struct intent		 in;
	struct decision		 d;
	enum reason		 result;
	int64_t			 now;
};

struct committer {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct job		*head, **tail;
	int			 stop;
	struct worker		*ctx;	/* its own db and policy snapshot */
};

/* Hardening knobs, set from --config (proto/config.md). */
struct limits {
	int			 max_connections;	/* whole broker */
	int			 max_conns_per_thread;
	int			 idle_timeout;		/* s, evhttp inactivity */
	int			 request_timeout;	/* s, complete request */
	uint32_t		 rate, burst;		/* per identity */
};

struct broker {
	const char		*listen_host;
	int			 listen_port;
	const char		*db_path;
	const char		*audience;
	struct tls_files	 tls;
	SSL_CTX			*ssl_ctx;	/* swapped on SIGHUP */
	SSL_CTX			*retired_ctx;	/* freed at the next swap */
	SSL_CTX			*refuse_ctx;	/* over max-connections */
	struct limits		 limits;
	struct ratelimit	*rl;
	struct grant_signer	 grant;
	int			 synchronous_full;
	int			 nworkers;
	struct worker		 workers[SERVER_MAX_THREADS];
	struct worker		 commit_ctx;
	struct committer	 commit;
	struct mcp_gateway	*mcp;		/* mcp.c */
};

/* conn.c: per-connection state */
int	conn_init(void);
struct bufferevent *conn_bevcb(struct event_base *base, void *worker);
/* The verified peer of req's connection, or NULL (fail closed). */
const struct tls_peer *conn_peer(struct evhttp_request *req);

/* http.c */
struct request;
typedef void (*route_fn)(struct request *rq);

struct request {
	struct evhttp_request	*req;
	struct worker		*w;
	const struct tls_peer	*peer;
	const char		*path;		/* decoded path, no query */
	const char		*id;		/* {id} segment, if any */
	const char		*query;		/* raw query string or NULL */
};

void	http_setup(struct worker *w);
/* Send body (stolen) as JSON with status. */
void	http_reply_json(struct request *rq, int status, json_t *body);
/* Send {"error": code, "message": msg} with r's status; msg NULL = default. */
void	http_reply_error(struct request *rq, enum reason r, const char *msg);
void	http_reply_text(struct request *rq, int status, const char *ctype,
	    const char *text, size_t len);
/* The body as contiguous bytes (NULL when empty); *len its size. */
const char *http_body(struct request *rq, size_t *len);
/* 1 if the request's Content-Type is mime (parameters allowed). */
int	http_content_type_is(struct request *rq, const char *mime);

/* api.c: route handlers */
void	api_intent_post(struct request *rq);
void	api_intent_get(struct request *rq);
void	api_jwks(struct request *rq);
void	api_healthz(struct request *rq);
void	api_metrics(struct request *rq);
void	api_policy_get(struct request *rq);
void	api_policy_put(struct request *rq);
/* Bring the worker's policy snapshot up to date with the database. */
int	api_policy_refresh(struct worker *w);

int	commit_start(struct broker *b);
/* Stop the writer after it has committed everything queued. */
void	commit_stop(struct broker *b);
/* Worker thread: queue job (owned by the commit path from now on). */
void	commit_submit(struct broker *b, struct job *job);
int	commit_worker_init(struct worker *w);
void	commit_worker_deinit(struct worker *w);
/* api.c: answer a decided job on its worker's thread. */
void	api_answer_job(struct job *job);

/* Answer GET /v1/intents/{id} with view (stolen); the grant goes only to
 * the agent. */
void	api_intent_answer(struct request *rq, json_t *view, int is_agent);

/* approvals.c: the human-approval queue */
void	api_approvals_list(struct request *rq);
void	api_approve(struct request *rq);
void	api_reject(struct request *rq);
/* Expire pending intents past their approval_ttl (worker 0, 1 Hz). */
void	approvals_sweep(struct worker *w);

/* wait.c: long-polls */
struct waiter;
int	wait_init(struct worker *w);
void	wait_deinit(struct worker *w);
/* Hold rq for up to seconds; -1 when the waiter limit is reached. */
int	wait_hold(struct request *rq, const char *id, int seconds,
	    int is_agent);
/* Any thread: intent id left pending (or may have); wake its waiters. */
void	wait_wake(struct broker *b, const char *id);
/* 1 Hz: notice changes other processes made to waited-on intents. */
void	wait_tick(struct worker *w);

/* ops.c: kill switch, grant redemption, audit trail (issue 4) */
void	api_killswitch_get(struct request *rq);
void	api_killswitch_trip(struct request *rq);
void	api_killswitch_reset(struct request *rq);
void	api_grant_redeem(struct request *rq);
void	api_audit_list(struct request *rq);
