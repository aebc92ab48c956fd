/*
 * server: the daemon's shared state — the broker (configuration, keys, TLS
 * context) and one worker per thread (event base, evhttp, SQLite
 * connection, policy snapshot, counters).  Everything a worker touches on
 * its request path is its own; the broker is read-only after start.
 */
#pragma once

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
#include "tls.h"

#define SERVER_MAX_THREADS	64
#define SERVER_MAX_HEADERS	(16 * 1024)
#define SERVER_MAX_BODY		(4 * 1024 * 1024)
#define SERVER_TIMEOUT_S	30

struct broker;

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
	struct metrics		 metrics;
};

struct broker {
	const char		*listen_host;
	int			 listen_port;
	const char		*db_path;
	const char		*audience;
	struct tls_files	 tls;
	SSL_CTX			*ssl_ctx;
	struct grant_signer	 grant;
	int			 nworkers;
	struct worker		 workers[SERVER_MAX_THREADS];
};

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

/* approvals.c: the human-approval queue (issue 3) */
void	api_approvals_list(struct request *rq);
void	api_approve(struct request *rq);
void	api_reject(struct request *rq);

/* ops.c: kill switch, grant redemption, audit trail (issue 4) */
void	api_killswitch_get(struct request *rq);
void	api_killswitch_trip(struct request *rq);
void	api_killswitch_reset(struct request *rq);
void	api_grant_redeem(struct request *rq);
void	api_audit_list(struct request *rq);
