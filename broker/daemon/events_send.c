/*
 * events_send: the sender — one thread with its own event loop and its
 * own store connection that delivers every sink's outbox rows, oldest
 * first, one at a time per sink (so in order), at least once: a row
 * leaves the outbox only after its sink answered 2xx (acknowledged in
 * batches, so a crash can repeat a few deliveries, never lose one; the
 * Toolgate-Delivery id lets a receiver drop the repeats).
 *
 * Per sink, with several brokers on one database: a sink is delivered
 * by whichever broker holds its lease (notify_sinks.lease_owner and
 * lease_until, taken and renewed with one conditional UPDATE), so each
 * event goes out from one broker at a time and order holds across them.
 * The lease is renewed well before it runs out (it lasts three attempt
 * timeouts, at least a minute, and is renewed at half), is let go at
 * shutdown, and a broker that died loses it when it runs out.  The owner
 * is "hostname/listen address": stable across restarts, so a restarted
 * broker takes its own lease back at once.
 *
 * A failing attempt (no 2xx within notify-timeout) backs the sink off:
 * 1 s, doubling, at most 10 min apart; the back-off lives in the sink's
 * row, so it survives restarts and moves with the lease.  An event still
 * undelivered notify-retry-for seconds after it was written is given up
 * and counted.  The bound: at most notify-queue-max rows per sink; over
 * it the oldest audit.record rows are dropped and counted, then other
 * types, never an intent.pending (checked every 2 s while a sink is
 * backed up, so the table holds at most the bound plus what arrives in
 * that time).  Memory is one batch of rows per sink.  Decisions never
 * wait for any of this: they only wake the thread after their commit.
 *
 * Every checkpoint-every seconds the thread also writes an
 * audit.checkpoint event with the chain head — one per period between
 * all brokers (store checkpoint_claim).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "audit.h"
#include "broker.h"
#include "clock.h"
#include "events.h"
#include "events_http.h"
#include "log.h"
#include "trust.h"

#define SEND_TICK_MS		500	/* look for other processes' rows */
#define SEND_BATCH		32	/* rows read and acknowledged at once */
#define SEND_PRUNE_S		2	/* give-up and bound checks, at most */
#define SEND_WARN_AFTER		3	/* failures in a row: warn */
#define SEND_WARN_EVERY		10	/* and every this many after */

struct send_row {
	int64_t		 id;
	int64_t		 at;
	int64_t		 audit_seq;
	char		 event_id[OUTBOX_EVENT_ID_LEN + 1];
	char		 type[32];
	char		*data;
};

struct sender;

struct send_sink {
	struct sender			*snd;
	const struct events_sink	*cfg;
	struct webhook_conn		*conn;
	struct event			*step_ev;
	int64_t				 lease_until;	/* 0: not ours */
	int64_t				 attempts;	/* failed in a row */
	int64_t				 next_at;	/* back-off */
	int				 busy;		/* attempt in flight */
	struct send_row			 batch[SEND_BATCH];
	size_t				 n, pos;	/* rows, delivered */
	int64_t				 loaded_at;	/* batch read */
	char				*body;		/* in flight */
	char				 sig[WEBHOOK_SIG_MAX];	/* its */
};

struct sender {
	struct broker		*b;
	pthread_t		 thread;
	struct event_base	*base;
	struct evdns_base	*dns;
	struct event		*wake_ev, *tick_ev, *checkpoint_ev;
	struct store		*store;
	char			 owner[320];
	int64_t			 lease_secs;
	struct send_sink	 sink[OUTBOX_SINKS_MAX];
	size_t			 n;
};

/* --- the batch ------------------------------------------------------------ */

static void
sink_batch_clear(struct send_sink *k)
{
	size_t	 i;

	for (i = 0; i < k->n; i++)
		free(k->batch[i].data);
	k->n = k->pos = 0;
}

static int
sink_row_cb(const struct outbox_row *r, void *arg)
{
	struct send_sink	*k = arg;
	struct send_row		*row = &k->batch[k->n];

	if (k->n == SEND_BATCH)
		return (1);
	memset(row, 0, sizeof(*row));
	row->id = r->id;
	row->at = r->at;
	row->audit_seq = r->audit_seq;
	snprintf(row->event_id, sizeof(row->event_id), "%s", r->event_id);
	snprintf(row->type, sizeof(row->type), "%s", r->type);
	if (r->data != NULL && (row->data = strdup(r->data)) == NULL)
		return (1);
	k->n++;
	return (0);
}

static int
sink_read(struct send_sink *k, int64_t now)
{
	struct store	*s = k->snd->store;

	sink_batch_clear(k);
	k->loaded_at = now;
	if (s->ops->outbox_head(s, k->cfg->name, SEND_BATCH, sink_row_cb,
	    k) == -1) {
		sink_batch_clear(k);
		return (-1);
	}
	return (0);
}

/* Remove the batch's rows up to index last (inclusive) as why. */
static int64_t
sink_remove(struct send_sink *k, size_t last, enum outbox_removal why,
    int64_t now)
{
	struct store	*s = k->snd->store;
	int64_t		 n = 0;

	if (s->ops->outbox_remove(s, k->cfg->name, k->batch[last].id, why,
	    now, &n) == -1)
		log_warnx("sink %s: cannot record %s events (they will be "
		    "sent again)", k->cfg->name, why == OUTBOX_DELIVERED ?
		    "delivered" : "given-up");
	return (n);
}

/* Events written notify-retry-for ago are given up, oldest first. */
static int
sink_give_up_old(struct send_sink *k, int64_t now)
{
	int64_t		 before = now - k->snd->b->events.retry_for;
	char		 at[RFC3339_LEN];
	size_t		 i;

	for (i = 0; i < k->n && k->batch[i].at <= before; i++)
		;
	if (i == 0)
		return (0);
	clock_rfc3339(k->batch[0].at, at);
	log_warnx("sink %s: gave up %lld events undelivered for %lld s "
	    "(notify-retry-for; the oldest from %s)", k->cfg->name,
	    (long long)sink_remove(k, i - 1, OUTBOX_GIVEN_UP, now),
	    (long long)k->snd->b->events.retry_for, at);
	return (1);
}

/* Over notify-queue-max: drop the oldest audit records, then others,
 * never a pending intent. */
static int
sink_bound(struct send_sink *k)
{
	struct store	*s = k->snd->store;
	int64_t		 n, max = k->snd->b->events.queue_max, dropped;

	if (k->n < SEND_BATCH ||
	    s->ops->outbox_count(s, k->cfg->name, &n) == -1 || n <= max)
		return (0);
	if (s->ops->outbox_drop(s, k->cfg->name, n - max, &dropped) == -1)
		return (0);
	if (dropped > 0)
		log_warnx("sink %s: %lld events queued, over notify-queue-max "
		    "%lld: dropped the %lld oldest (audit records first, never "
		    "a pending intent)", k->cfg->name, (long long)n,
		    (long long)max, (long long)dropped);
	return (dropped > 0);
}

/* Read the sink's head, after giving up and dropping what must go. */
static int
sink_load(struct send_sink *k, int64_t now)
{
	int	 i;

	for (i = 0; i < 4; i++) {
		if (sink_read(k, now) == -1)
			return (-1);
		if (!sink_give_up_old(k, now) && !sink_bound(k))
			return (0);
	}
	return (sink_read(k, now));
}

/* --- the lease --------------------------------------------------------------- */

static int
sink_state_cb(const struct sink_row *r, void *arg)
{
	struct send_sink	*k = arg;

	if (strcmp(r->name, k->cfg->name) != 0)
		return (0);
	k->attempts = r->attempts;
	k->next_at = r->next_at;
	return (1);
}

/* 1 if this broker delivers to k now (taking or renewing its lease). */
static int
sink_hold_lease(struct send_sink *k, int64_t now)
{
	struct sender	*snd = k->snd;
	struct store	*s = snd->store;
	int		 rc;

	if (k->lease_until - now > snd->lease_secs / 2)
		return (1);
	rc = s->ops->sink_lease(s, k->cfg->name, snd->owner, now,
	    now + snd->lease_secs);
	if (rc != 0) {
		if (k->lease_until != 0)
			log_info("sink %s: delivered by another broker now",
			    k->cfg->name);
		k->lease_until = 0;
		sink_batch_clear(k);
		return (0);
	}
	if (k->lease_until == 0) {
		/* Whoever delivered before may have backed it off. */
		(void)s->ops->sink_status(s, sink_state_cb, k);
		sink_batch_clear(k);
	}
	k->lease_until = now + snd->lease_secs;
	return (1);
}

/* --- one attempt ----------------------------------------------------------------- */

struct audit_one {
	json_t	*rec;
};

static int
audit_one_cb(json_t *rec, void *arg)
{
	struct audit_one	*a = arg;

	a->rec = json_incref(rec);
	return (1);
}

/* The event's data: stored, or its audit record read now.  NULL when
 * it cannot be had (pruned, damaged). */
static json_t *
sink_data(struct send_sink *k, const struct send_row *row)
{
	struct audit_one	 a = { NULL };

	if (row->data != NULL)
		return (json_loads(row->data, JSON_REJECT_DUPLICATES, NULL));
	if (row->audit_seq <= 0 || audit_each(k->snd->store,
	    row->audit_seq - 1, 1, audit_one_cb, &a) == -1)
		return (NULL);
	if (a.rec != NULL && json_integer_value(json_object_get(a.rec,
	    "seq")) != row->audit_seq) {
		json_decref(a.rec);
		return (NULL);
	}
	return (a.rec);
}

static void
sink_failed(struct send_sink *k, const char *error, int64_t now)
{
	struct store	*s = k->snd->store;
	char		 wait[32];
	int64_t		 delay;

	k->attempts++;
	delay = outbox_backoff(k->attempts);
	k->next_at = now + delay;
	clock_duration(delay, wait, sizeof(wait));
	if (s->ops->sink_failed(s, k->cfg->name, now, k->next_at, error) ==
	    -1)
		log_warnx("sink %s: cannot record a failed attempt",
		    k->cfg->name);
	if (k->attempts == SEND_WARN_AFTER ||
	    (k->attempts > SEND_WARN_AFTER &&
	    k->attempts % SEND_WARN_EVERY == 0))
		log_warnx("sink %s (%s) keeps failing: %lld attempts in a row, "
		    "the last: %s; next in %s (toolgatectl events status)",
		    k->cfg->name, k->cfg->target, (long long)k->attempts,
		    error, wait);
	else
		log_info("sink %s: delivery failed: %s; next attempt in %s",
		    k->cfg->name, error, wait);
}

static void
sink_done(void *arg, const struct webhook_result *r)
{
	struct send_sink	*k = arg;
	int64_t			 now = clock_now();

	k->busy = 0;
	free(k->body);
	k->body = NULL;
	if (r->ok) {
		if (++k->pos == k->n) {
			(void)sink_remove(k, k->n - 1, OUTBOX_DELIVERED, now);
			sink_batch_clear(k);
		}
		if (k->attempts > 0)
			log_info("sink %s: delivering again after %lld failed "
			    "attempts", k->cfg->name, (long long)k->attempts);
		k->attempts = 0;
		k->next_at = 0;
	} else {
		if (k->pos > 0)
			(void)sink_remove(k, k->pos - 1, OUTBOX_DELIVERED,
			    now);
		sink_batch_clear(k);
		sink_failed(k, r->error, now);
	}
	/* The next one at once; after a failure this only prunes. */
	event_active(k->step_ev, 0, 0);
}

static void
sink_send(struct send_sink *k, int64_t now)
{
	const struct events_sink	*cfg = k->cfg;
	struct send_row			*row = &k->batch[k->pos];
	struct webhook_post		 p;
	json_t				*data;
	size_t				 len;

	if ((data = sink_data(k, row)) == NULL) {
		log_warnx("sink %s: event %s (%s) cannot be read back: given "
		    "up", cfg->name, row->event_id, row->type);
		if (k->pos > 0)
			(void)sink_remove(k, k->pos - 1, OUTBOX_DELIVERED,
			    now);
		(void)sink_remove(k, k->pos, OUTBOX_GIVEN_UP, now);
		sink_batch_clear(k);
		event_active(k->step_ev, 0, 0);
		return;
	}
	k->body = webhook_body(cfg->format, row->event_id, row->type,
	    row->at, data, now, &len);
	json_decref(data);
	memset(&p, 0, sizeof(p));
	p.body = k->body;
	p.len = len;
	p.type = row->type;
	p.delivery = row->event_id;
	p.signature = k->sig;
	p.timeout = (int)k->snd->b->events.timeout;
	if (k->body == NULL || webhook_signature(cfg->key, cfg->keylen, now,
	    k->body, len, k->sig) == -1 || webhook_post(k->conn, &p, sink_done,
	    k) == -1) {
		free(k->body);
		k->body = NULL;
		sink_batch_clear(k);
		sink_failed(k, "cannot start a request (out of memory, or "
		    "no connection)", now);
		return;
	}
	k->busy = 1;
}

/* Whatever is due for sink k now. */
static void
sink_step(struct send_sink *k)
{
	int64_t	 now = clock_now();

	if (k->busy || !sink_hold_lease(k, now))
		return;
	if (k->pos == 0 && (k->n == 0 || now - k->loaded_at >=
	    SEND_PRUNE_S) && sink_load(k, now) == -1)
		return;
	if (k->n == 0 || now < k->next_at)
		return;
	sink_send(k, now);
}

static void
sink_step_cb(evutil_socket_t fd, short what, void *arg)
{
	sink_step(arg);
}

static void
sender_step_all(struct sender *snd)
{
	size_t	 i;

	for (i = 0; i < snd->n; i++)
		sink_step(&snd->sink[i]);
}

static void
sender_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	sender_step_all(arg);
}

/* --- checkpoints ----------------------------------------------------------------- */

/*
 * The signed checkpoint of the newest verified record into data: seq and
 * hash become the checkpoint's, and data.checkpoint is the compact JWS
 * GET /v1/audit/checkpoint answers (trust_checkpoint), so the off-host
 * copy is verifiable with /v1/jwks.  -1 (no event this period) when the
 * chain is broken: a checkpoint is never signed over a break.
 */
static int
events_checkpoint_sign(struct sender *snd, json_t *data)
{
	struct checkpoint	 cp;
	char			*jws;
	int			 rc;

	if ((jws = trust_checkpoint(snd->b, snd->store, clock_now(), &cp)) ==
	    NULL)
		return (-1);
	rc = json_object_set_new(data, "seq", json_integer(cp.seq)) |
	    json_object_set_new(data, "hash", json_string(cp.hash)) |
	    json_object_set_new(data, "checkpoint", json_string(jws));
	free(jws);
	return (rc == 0 ? 0 : -1);
}

static void
sender_checkpoint_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sender	*snd = arg;
	struct store	*s = snd->store;
	int64_t		 now = clock_now(), every;
	json_t		*data = NULL;
	int		 rc;

	/* A little under the period, so timer jitter never skips one;
	 * other brokers' timers then find it claimed. */
	every = snd->b->events.checkpoint_every;
	every = every > 10 ? every - every / 10 : every > 1 ? every - 1 : 1;
	if (store_begin(s) == -1)
		return;
	rc = s->ops->checkpoint_claim(s, now, every);
	if (rc == 0 && ((data = outbox_checkpoint_data(s, now)) == NULL ||
	    events_checkpoint_sign(snd, data) == -1 || outbox_emit(s,
	    &snd->b->events.rules, EV_AUDIT_CHECKPOINT, now, data, 0) == -1))
		rc = -1;
	json_decref(data);
	if (rc == 0 && store_commit(s) == 0) {
		sender_step_all(snd);
		return;
	}
	store_rollback(s);
	if (rc == -1)
		log_warnx("audit.checkpoint: cannot write this period's event");
}

/* --- the thread ------------------------------------------------------------------ */

static void *
sender_main(void *arg)
{
	struct sender	*snd = arg;

	(void)pthread_setname_np(pthread_self(), "tg-events");
	event_base_dispatch(snd->base);
	return (NULL);
}

static void
sender_owner(struct sender *snd)
{
	char	 host[256];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(snd->owner, sizeof(snd->owner), "%s/%s:%d", host,
	    snd->b->listen_host, snd->b->listen_port);
}

static void __attribute__((noreturn))
sender_exit(const char *what, const char *why)
{
	fprintf(stderr, "toolgated: events: %s: %s\n", what, why);
	exit(2);
}

static void
sender_sinks(struct sender *snd)
{
	const struct events_config	*c = &snd->b->events;
	struct send_sink		*k;
	size_t				 i;

	for (i = 0; i < c->n; i++) {
		k = &snd->sink[snd->n++];
		k->snd = snd;
		k->cfg = &c->sink[i];
		if ((k->conn = webhook_conn_new(snd->base, snd->dns,
		    k->cfg)) == NULL || (k->step_ev = event_new(snd->base, -1,
		    0, sink_step_cb, k)) == NULL)
			sender_exit(k->cfg->name, "out of memory");
		/* toolgatectl --db and status read what a sink is here. */
		if (snd->store->ops->sink_register(snd->store, k->cfg->name,
		    k->cfg->events, k->cfg->target) == -1)
			sender_exit(k->cfg->name, "cannot register the sink in "
			    "the database");
	}
}

void
events_start(struct broker *b)
{
	const struct events_config	*c = &b->events;
	struct sender			*snd;
	struct timeval			 tick = { 0, SEND_TICK_MS * 1000 };
	struct timeval			 cp = { 1, 0 };
	char				 err[512];

	if (c->n == 0)
		return;
	if ((snd = calloc(1, sizeof(*snd))) == NULL)
		sender_exit("start", "out of memory");
	snd->b = b;
	snd->lease_secs = c->timeout * 3 > 60 ? c->timeout * 3 : 60;
	sender_owner(snd);
	if ((snd->store = store_open(b->db_path, 0, err, sizeof(err))) ==
	    NULL)
		sender_exit("database", err);
	/* A lost acknowledgement only repeats a delivery. */
	(void)snd->store->ops->set_durability(snd->store, 0);
	if ((snd->base = event_base_new()) == NULL)
		sender_exit("start", "cannot create the event loop");
	/* Names resolve without blocking; without a resolver configured,
	 * getaddrinfo in this thread (only ever delays deliveries). */
	if ((snd->dns = evdns_base_new(snd->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL)
		log_warnx("events: no DNS resolver configured: sink host "
		    "names are resolved with getaddrinfo");
	if ((snd->wake_ev = event_new(snd->base, -1, 0, sender_wake_cb,
	    snd)) == NULL || (snd->tick_ev = event_new(snd->base, -1,
	    EV_PERSIST, sender_wake_cb, snd)) == NULL ||
	    (snd->checkpoint_ev = event_new(snd->base, -1, 0,
	    sender_checkpoint_cb, snd)) == NULL)
		sender_exit("start", "cannot create the event loop");
	sender_sinks(snd);
	event_add(snd->tick_ev, &tick);
	if (c->rules.any & EV_BIT(EV_AUDIT_CHECKPOINT)) {
		/* The first soon after start, then every period. */
		event_free(snd->checkpoint_ev);
		snd->checkpoint_ev = event_new(snd->base, -1, EV_PERSIST,
		    sender_checkpoint_cb, snd);
		cp.tv_sec = c->checkpoint_every;
		if (snd->checkpoint_ev == NULL ||
		    event_add(snd->checkpoint_ev, &cp) == -1)
			sender_exit("start", "cannot arm the checkpoint timer");
		event_active(snd->checkpoint_ev, 0, 0);
	}
	if (pthread_create(&snd->thread, NULL, sender_main, snd) != 0)
		sender_exit("start", "cannot start the sender thread");
	b->sender = snd;
	log_info("events: %zu sinks, delivered by %s", c->n, snd->owner);
}

void
events_wake(struct broker *b)
{
	if (b->sender != NULL)
		event_active(b->sender->wake_ev, 0, 0);
}

void
events_stop(struct broker *b)
{
	struct sender	*snd = b->sender;
	struct send_sink *k;
	size_t		 i;

	if (snd == NULL)
		return;
	event_base_loopexit(snd->base, NULL);
	pthread_join(snd->thread, NULL);
	for (i = 0; i < snd->n; i++) {
		k = &snd->sink[i];
		webhook_conn_free(k->conn);
		free(k->body);
		sink_batch_clear(k);
		if (k->step_ev != NULL)
			event_free(k->step_ev);
		/* Let the lease go: another broker (or this one, restarted)
		 * takes over at once. */
		if (k->lease_until != 0)
			(void)snd->store->ops->sink_lease(snd->store,
			    k->cfg->name, snd->owner, clock_now(), 0);
	}
	event_free(snd->wake_ev);
	event_free(snd->tick_ev);
	if (snd->checkpoint_ev != NULL)
		event_free(snd->checkpoint_ev);
	if (snd->dns != NULL)
		evdns_base_free(snd->dns, 0);
	event_base_free(snd->base);
	store_close(snd->store);
	free(snd);
	b->sender = NULL;
}
