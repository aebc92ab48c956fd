/*
 * events: the daemon's half of CONTRACT §10 — the notify sinks of
 * --config (events_config.c), the sender thread that delivers the
 * outbox to them (events_send.c) over its own HTTP(S) client
 * (events_http.c), and what operators see of it: GET /v1/events/status
 * and the /metrics lines (events_api.c).  Which events exist and how
 * they are written is core's outbox.c; what a delivery says is
 * webhook.c.  Nothing here is on a decision's path: the sender has its
 * own thread and store connection, and a commit only wakes it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "http.h"
#include "outbox.h"
#include "webhook.h"

#define EVENTS_SECRET_MAX	4096	/* bytes of an HMAC key file */
#define EVENTS_RETRY_FOR	86400	/* s: notify-retry-for default */
#define EVENTS_TIMEOUT		10	/* s: notify-timeout default */
#define EVENTS_QUEUE_MAX	100000	/* rows per sink: notify-queue-max */
#define EVENTS_CHECKPOINT_EVERY	300	/* s: checkpoint-every default */

struct broker;

/* One notify line, checked and ready to use. */
struct events_sink {
	char			 name[OUTBOX_NAME_MAX + 1];
	char			 where[300];	/* "FILE:LINE", for messages */
	int			 https;
	char			*host;		/* without brackets */
	int			 port;
	char			*path;		/* path and query: a secret
						 * for Slack, never logged */
	char			*authority;	/* the Host header */
	char			 target[320];	/* scheme://host:port */
	enum webhook_format	 format;
	unsigned		 types;		/* EV_BIT mask */
	char			*events;	/* the patterns, as given */
	SSL_CTX			*ssl;		/* https: the CA to trust */
	char			*secret_file;	/* secret-file=, or NULL */
	unsigned char		*key;		/* the HMAC key */
	size_t			 keylen;
};

/* Every notify setting of --config. */
struct events_config {
	struct events_sink	 sink[OUTBOX_SINKS_MAX];
	size_t			 n;
	struct outbox_rules	 rules;		/* lc_config.outbox */
	char			*secret_file;	/* notify-secret-file */
	char			 secret_where[300];
	/* numbers, as toolgated.c read them */
	int64_t			 retry_for;	/* notify-retry-for */
	int64_t			 timeout;	/* notify-timeout */
	int64_t			 queue_max;	/* notify-queue-max */
	int64_t			 checkpoint_every;	/* checkpoint-every */
};

/* events_config.c */
/*
 * A --config line: 1 when name is "notify" or "notify-secret-file"
 * (checked now: exit 2 with "FILE:LINE: ..." on any problem), 0 when it
 * is not an events setting.
 */
int	events_config_line(struct events_config *c, const char *file,
	    int line, const char *name, const char *value);
/* 1 when name is a setting events_config_line takes (nothing checked). */
int	events_config_is(const char *name);
/* After every line: load the HMAC keys and the rules (exit 2 on a
 * problem). */
void	events_config_finish(struct events_config *c);
void	events_config_free(struct events_config *c);

/* events_send.c */
/* Register the sinks and start the sender thread (exit 2 when the
 * database cannot be opened for it).  Nothing when no sink is set. */
void	events_start(struct broker *b);
/* Any thread, after a commit that wrote outbox rows. */
void	events_wake(struct broker *b);
/* Stop the sender (an attempt in flight is abandoned: the event stays
 * queued) and let its leases go. */
void	events_stop(struct broker *b);

/* events_api.c */
void	api_events_status(struct request *rq);
/* Append the per-sink lines of /metrics to *text (malloc'd, *len bytes,
 * replaced).  0, or -1 (storage or memory failed: *text unchanged). */
int	events_metrics(struct worker *w, char **text, size_t *len);
