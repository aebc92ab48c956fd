/*
 * wait: held long-polls, grouped per intent in a small hash table per
 * worker, so a wake costs one status read per woken intent and one
 * answer callback for all of its waiters.  A held connection is not read
 * by evhttp (it disables reading once a request is complete), so neither
 * a hang-up nor the idle timeout would be noticed: each waiter has its
 * own timer and a watch on its socket, and a hang-up frees the
 * connection, its request and its slot at once.
 * No handler is named here: each waiter is answered through the callback
 * its handler gave, and one that keeps state of its own for the request
 * (the MCP gateway) is told when the client is gone.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "broker.h"
#include "http.h"
#include "ident.h"
#include "log.h"

#define QUOTA_SLOTS	4096	/* power of two: identities holding waits */
#define QUOTA_PROBES	16

struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	struct wait_group	*g;
	struct worker		*w;
	struct evhttp_request	*req;
	struct event		*timer;
	struct event		*hangup;
	int			 audience;
	int64_t			 since;		/* queue waiters: seen gen */
	wait_answer_fn		 answer;
	wait_gone_fn		 gone;		/* or NULL */
	void			*arg;
	char			 identity[IDENT_MAX];
};

struct wait_group {
	struct wait_group	*next;		/* in its bucket */
	char			 id[INTENT_ID_LEN + 1];
	int			 queue;		/* WAIT_QUEUE_KEY's group */
	TAILQ_HEAD(, waiter)	 waiters;
	size_t			 n;
};

/* --- per-identity quota ------------------------------------------------ */

struct quota_slot {
	char	 identity[IDENT_MAX];
	int	 held;
};

struct waitquota {
	pthread_mutex_t		 lock;
	int			 max;
	struct quota_slot	 slot[QUOTA_SLOTS];
};

struct waitquota *
waitquota_new(int per_identity)
{
	struct waitquota	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return (NULL);
	if (pthread_mutex_init(&q->lock, NULL) != 0) {
		free(q);
		return (NULL);
	}
	q->max = per_identity;
	return (q);
}

void
waitquota_free(struct waitquota *q)
{
	if (q == NULL)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static uint32_t
wait_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return (h);
}

/* identity's slot, or a free one taken over for it; NULL when full. */
static struct quota_slot *
quota_find(struct waitquota *q, const char *identity)
{
	struct quota_slot	*s, *reuse = NULL;
	uint32_t		 h = wait_hash(identity), i;

	for (i = 0; i < QUOTA_PROBES; i++) {
		s = &q->slot[(h + i) & (QUOTA_SLOTS - 1)];
		if (s->held > 0 && strcmp(s->identity, identity) == 0)
			return (s);
		if (reuse == NULL && s->held == 0)
			reuse = s;
	}
	if (reuse != NULL)
		snprintf(reuse->identity, sizeof(reuse->identity), "%s",
		    identity);
	return (reuse);
}

/* Take one slot for identity: 0, or -1 when it holds its maximum (or
 * the table is full of other identities: fail closed). */
static int
quota_take(struct waitquota *q, const char *identity)
{
	struct quota_slot	*s;
	int			 rc = -1;

	pthread_mutex_lock(&q->lock);
	if ((s = quota_find(q, identity)) != NULL && s->held < q->max) {
		s->held++;
		rc = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return (rc);
}

static void
quota_give(struct waitquota *q, const char *identity)
{
	struct quota_slot	*s;

	pthread_mutex_lock(&q->lock);
	if ((s = quota_find(q, identity)) != NULL && s->held > 0)
		s->held--;
	pthread_mutex_unlock(&q->lock);
}

/* --- groups --------------------------------------------------------------- */

static struct wait_group **
group_slot(struct wait_worker *ww, const char *id)
{
	struct wait_group	**gp;

	for (gp = &ww->bucket[wait_hash(id) & (WAIT_BUCKETS - 1)];
	    *gp != NULL; gp = &(*gp)->next)
		if (strcmp((*gp)->id, id) == 0)
			break;
	return (gp);
}

static struct wait_group *
group_get(struct wait_worker *ww, const char *id)
{
	struct wait_group	**gp = group_slot(ww, id), *g;

	if ((g = *gp) != NULL)
		return (g);
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return (NULL);
	snprintf(g->id, sizeof(g->id), "%s", id);
	TAILQ_INIT(&g->waiters);
	*gp = g;
	return (g);
}

static void
group_drop_if_empty(struct wait_worker *ww, struct wait_group *g)
{
	struct wait_group	**gp;

	if (g->n > 0)
		return;
	gp = group_slot(ww, g->id);
	if (*gp == g)
		*gp = g->next;
	free(g);
}

/* --- waiters ---------------------------------------------------------------- */

/* Let go of wt: unlink it from its group (which the caller drops when it
 * is empty) and free everything but its request. */
static void
waiter_release(struct waiter *wt)
{
	struct wait_group		*g = wt->g;
	struct evhttp_connection	*conn;

	TAILQ_REMOVE(&g->waiters, wt, entry);
	g->n--;
	wt->w->wait.nwaiters--;
	metrics_held(&wt->w->metrics, -1);
	if (wt->req != NULL &&
	    (conn = evhttp_request_get_connection(wt->req)) != NULL)
		evhttp_connection_set_closecb(conn, NULL, NULL);
	event_free(wt->timer);
	if (wt->hangup != NULL)
		event_free(wt->hangup);
	quota_give(wt->w->broker->waitq, wt->identity);
	free(wt);
}

/* wt's request as its answer callback gets it. */
static struct wait_reply
waiter_reply(const struct waiter *wt, int closing)
{
	struct wait_reply	 r = { wt->req, wt->audience, wt->arg,
	    closing };

	return (r);
}

/*
 * Answer r[0..n) about id: each handler's waiters together, in one call
 * of its callback (fn[i] is r[i]'s; sub has room for n).
 */
static void
group_answer(struct worker *w, const char *id, const struct wait_reply *r,
    wait_answer_fn *fn, struct wait_reply *sub, size_t n)
{
	wait_answer_fn	 f;
	size_t		 i, k, m;

	for (i = 0; i < n; i++) {
		if ((f = fn[i]) == NULL)
			continue;
		for (m = 0, k = i; k < n; k++)
			if (fn[k] == f) {
				sub[m++] = r[k];
				fn[k] = NULL;
			}
		f(w, id, sub, m);
	}
}

/*
 * Let go of every waiter of g, which the caller took out of the table
 * (so answering cannot find it), answer them together and free g.
 */
static void
group_settle(struct worker *w, struct wait_group *g, int closing)
{
	struct wait_reply	*r, *sub, one;
	wait_answer_fn		*fn, f;
	struct waiter		*wt, *next;
	size_t			 n = 0;

	r = calloc(g->n, sizeof(*r));
	sub = calloc(g->n, sizeof(*sub));
	fn = calloc(g->n, sizeof(*fn));
	if (r != NULL && sub != NULL && fn != NULL) {
		for (wt = TAILQ_FIRST(&g->waiters); wt != NULL; wt = next) {
			next = TAILQ_NEXT(wt, entry);
			fn[n] = wt->answer;
			r[n++] = waiter_reply(wt, closing);
			waiter_release(wt);
		}
		metrics_waits(&w->metrics, n);
		group_answer(w, g->id, r, fn, sub, n);
	} else {
		/* No memory for the list: answer one at a time. */
		for (wt = TAILQ_FIRST(&g->waiters); wt != NULL; wt = next) {
			next = TAILQ_NEXT(wt, entry);
			one = waiter_reply(wt, closing);
			f = wt->answer;
			waiter_release(wt);
			metrics_waits(&w->metrics, 1);
			f(w, g->id, &one, 1);
		}
	}
	free(r);
	free(sub);
	free(fn);
	free(g);
}

static void
waiter_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waiter		*wt = arg;
	struct worker		*w = wt->w;
	struct wait_group	*g = wt->g;
	struct wait_reply	 one = waiter_reply(wt, 0);
	wait_answer_fn		 answer = wt->answer;

	waiter_release(wt);
	metrics_waits(&w->metrics, 1);
	answer(w, g->id, &one, 1);
	group_drop_if_empty(&w->wait, g);
}

/* wt's client is gone: its owner (if it keeps state) lets go of it. */
static void
waiter_gone(struct waiter *wt)
{
	struct worker		*w = wt->w;
	struct wait_group	*g = wt->g;
	wait_gone_fn		 gone = wt->gone;
	void			*arg = wt->arg;

	waiter_release(wt);
	group_drop_if_empty(&w->wait, g);
	if (gone != NULL)
		gone(w, arg);
}

/* evhttp freed the connection (and the request with it). */
static void
waiter_closed_cb(struct evhttp_connection *conn, void *arg)
{
	struct waiter		*wt = arg;

	wt->req = NULL;
	waiter_gone(wt);
}

/*
 * The socket of a held request turned readable or half-closed.  A client
 * that closes with unread bytes (a TLS 1.3 session ticket, say) sends a
 * reset, which epoll reports as an error, not as EPOLLRDHUP: so the watch
 * is EV_READ | EV_CLOSED, and a peek tells a hang-up from bytes the
 * client sent (a pipelined request): those are left for evhttp and only
 * EV_CLOSED is watched from then on, so the loop does not spin on them.
 */
static void
waiter_hangup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waiter			*wt = arg;
	struct worker			*w = wt->w;
	struct evhttp_connection	*conn;
	char				 c;
	ssize_t				 n = 0;

	if (!(what & EV_CLOSED)) {
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0 || (n == -1 && (errno == EAGAIN ||
		    errno == EWOULDBLOCK || errno == EINTR))) {
			event_free(wt->hangup);
			wt->hangup = event_new(w->base, fd, n > 0 ? EV_CLOSED :
			    EV_READ | EV_CLOSED, waiter_hangup_cb, wt);
			if (wt->hangup != NULL &&
			    event_add(wt->hangup, NULL) == -1) {
				event_free(wt->hangup);
				wt->hangup = NULL;
			}
			return;
		}
	}
	conn = evhttp_request_get_connection(wt->req);
	waiter_gone(wt);
	log_debug("a long-poll's client hung up");
	if (conn != NULL)
		evhttp_connection_free(conn);
}

static evutil_socket_t
waiter_fd(struct evhttp_connection *conn)
{
	struct bufferevent	*bev = evhttp_connection_get_bufferevent(conn);

	return (bev != NULL ? bufferevent_getfd(bev) : -1);
}

static int
wait_hold_one(struct worker *w, struct evhttp_request *req,
    const char *identity, const char *id, int queue, int64_t since,
    int seconds, int audience, wait_answer_fn answer, wait_gone_fn gone,
    void *arg)
{
	struct evhttp_connection	*conn;
	struct wait_group		*g;
	struct waiter			*wt;
	struct timeval			 tv = { seconds, 0 };
	evutil_socket_t			 fd;

	conn = evhttp_request_get_connection(req);
	if (w->wait.nwaiters >= WAIT_MAX_PER_WORKER || conn == NULL)
		return (-1);
	if (quota_take(w->broker->waitq, identity) == -1)
		return (-1);
	if ((wt = calloc(1, sizeof(*wt))) == NULL)
		goto fail;
	if ((wt->timer = evtimer_new(w->base, waiter_timeout_cb, wt)) == NULL ||
	    evtimer_add(wt->timer, &tv) == -1 ||
	    (g = group_get(&w->wait, id)) == NULL)
		goto fail;
	g->queue = queue;
	wt->g = g;
	wt->w = w;
	wt->req = req;
	wt->audience = audience;
	wt->since = since;
	wt->answer = answer;
	wt->gone = gone;
	wt->arg = arg;
	snprintf(wt->identity, sizeof(wt->identity), "%s", identity);
	TAILQ_INSERT_TAIL(&g->waiters, wt, entry);
	g->n++;
	w->wait.nwaiters++;
	metrics_held(&w->metrics, 1);
	if ((fd = waiter_fd(conn)) != -1 &&
	    (wt->hangup = event_new(w->base, fd, EV_READ | EV_CLOSED,
	    waiter_hangup_cb, wt)) != NULL && event_add(wt->hangup, NULL) == -1) {
		event_free(wt->hangup);
		wt->hangup = NULL;	/* the timer still ends it */
	}
	evhttp_connection_set_closecb(conn, waiter_closed_cb, wt);
	return (0);
 fail:
	if (wt != NULL && wt->timer != NULL)
		event_free(wt->timer);
	free(wt);
	quota_give(w->broker->waitq, identity);
	return (-1);
}

int
wait_hold(struct request *rq, const char *id, int seconds, int audience,
    wait_answer_fn answer)
{
	return (wait_hold_one(rq->w, rq->req, rq->peer->identity, id, 0, 0,
	    seconds, audience, answer, NULL, NULL));
}

int
wait_hold_queue(struct request *rq, int64_t since, int seconds, int audience,
    wait_answer_fn answer)
{
	return (wait_hold_one(rq->w, rq->req, rq->peer->identity,
	    WAIT_QUEUE_KEY, 1, since, seconds, audience, answer, NULL, NULL));
}

int
wait_hold_req(struct worker *w, struct evhttp_request *req,
    const char *identity, const char *id, int seconds, wait_answer_fn answer,
    wait_gone_fn gone, void *arg)
{
	return (wait_hold_one(w, req, identity, id, 0, 0, seconds, 0, answer,
	    gone, arg));
}

/* --- waking ----------------------------------------------------------------- */

/*
 * Answer the queue's waiters that saw another generation than the one
 * the store holds now, together; the others stay.
 */
static void
wait_check_queue(struct worker *w, struct wait_group *g)
{
	struct store_gen	 gen;
	struct wait_reply	*r = NULL, *sub = NULL;
	wait_answer_fn		*fn = NULL;
	struct waiter		*wt, *next;
	size_t			 n = 0;

	if (w->store->ops->generations(w->store, STORE_GEN_QUEUE, &gen) == -1 ||
	    (r = calloc(g->n, sizeof(*r))) == NULL ||
	    (sub = calloc(g->n, sizeof(*sub))) == NULL ||
	    (fn = calloc(g->n, sizeof(*fn))) == NULL) {
		free(r);
		free(sub);
		return;		/* the timers still end them */
	}
	for (wt = TAILQ_FIRST(&g->waiters); wt != NULL; wt = next) {
		next = TAILQ_NEXT(wt, entry);
		if (wt->since == gen.queue)
			continue;
		fn[n] = wt->answer;
		r[n++] = waiter_reply(wt, 0);
		waiter_release(wt);
	}
	if (n > 0) {
		metrics_waits(&w->metrics, n);
		group_answer(w, g->id, r, fn, sub, n);
	}
	free(r);
	free(sub);
	free(fn);
	group_drop_if_empty(&w->wait, g);
}

/* Settle g if its intent is no longer pending (or gone). */
static void
wait_check(struct worker *w, struct wait_group *g)
{
	struct wait_group	**gp;
	enum intent_status	 st;
	int			 found;

	if (g->queue) {
		wait_check_queue(w, g);
		return;
	}
	found = w->store->ops->intent_status(w->store, g->id, &st);
	if (found == -1)
		return;		/* storage trouble: the timer still ends it */
	if (found == 1 && st == ST_PENDING)
		return;
	if (*(gp = group_slot(&w->wait, g->id)) == g)
		*gp = g->next;
	group_settle(w, g, 0);
}

/* Check every group (after an overflow, or a change elsewhere). */
static void
wait_check_all(struct worker *w)
{
	struct wait_group	*g, *next;
	size_t			 i;

	for (i = 0; i < WAIT_BUCKETS; i++)
		for (g = w->wait.bucket[i]; g != NULL; g = next) {
			next = g->next;
			wait_check(w, g);
		}
}

static void
wait_inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct wait_group	*g;
	char			 ids[WAIT_INBOX][INTENT_ID_LEN + 1];
	size_t			 n, i;
	int			 overflow;

	pthread_mutex_lock(&w->wait.inbox_lock);
	n = w->wait.inbox_n;
	overflow = w->wait.inbox_overflow;
	memcpy(ids, w->wait.inbox, n * sizeof(ids[0]));
	w->wait.inbox_n = 0;
	w->wait.inbox_overflow = 0;
	pthread_mutex_unlock(&w->wait.inbox_lock);
	if (overflow) {
		wait_check_all(w);
		return;
	}
	for (i = 0; i < n; i++)
		if ((g = *group_slot(&w->wait, ids[i])) != NULL)
			wait_check(w, g);
	/* Any commit may have changed the queue (a new pending intent is
	 * no id anyone waits on): one counter read, when someone watches. */
	if ((g = *group_slot(&w->wait, WAIT_QUEUE_KEY)) != NULL)
		wait_check(w, g);
}

void
wait_wake(struct broker *b, const struct lc_changes *ch)
{
	struct worker	*w;
	size_t		 k;
	int		 i;

	for (i = 0; i < b->nworkers; i++) {
		w = &b->workers[i];
		pthread_mutex_lock(&w->wait.inbox_lock);
		for (k = 0; k < ch->n && !w->wait.inbox_overflow; k++) {
			if (w->wait.inbox_n == WAIT_INBOX) {
				w->wait.inbox_overflow = 1;	/* check all */
				break;
			}
			memcpy(w->wait.inbox[w->wait.inbox_n++], ch->ids[k],
			    INTENT_ID_LEN + 1);
		}
		if (ch->overflow)
			w->wait.inbox_overflow = 1;
		pthread_mutex_unlock(&w->wait.inbox_lock);
		event_active(w->wait.wake_ev, 0, 0);
	}
}

void
wait_tick(struct worker *w)
{
	struct store_gen	 g;

	if (w->wait.nwaiters == 0)
		return;
	/* This thread's own changes and the other threads' come through
	 * wait_wake; the data generation moves for everything written by
	 * another connection, so in practice by another process. */
	if (w->store->ops->generations(w->store, STORE_GEN_DATA, &g) == -1 ||
	    g.data == w->wait.data_gen)
		return;
	w->wait.data_gen = g.data;
	wait_check_all(w);
}

int
wait_init(struct worker *w)
{
	memset(&w->wait, 0, sizeof(w->wait));
	w->wait.data_gen = -1;
	if (pthread_mutex_init(&w->wait.inbox_lock, NULL) != 0)
		return (-1);
	w->wait.wake_ev = event_new(w->base, -1, 0, wait_inbox_cb, w);
	return (w->wait.wake_ev == NULL ? -1 : 0);
}

void
wait_deinit(struct worker *w)
{
	struct wait_group	*g;
	size_t			 i;

	for (i = 0; i < WAIT_BUCKETS; i++)
		while ((g = w->wait.bucket[i]) != NULL) {
			w->wait.bucket[i] = g->next;
			group_settle(w, g, 1);
		}
	if (w->wait.wake_ev != NULL)
		event_free(w->wait.wake_ev);
	pthread_mutex_destroy(&w->wait.inbox_lock);
}
