/*
 * wait: long-polls on GET /v1/intents/{id}?wait=N.  A held request is
 * answered when the intent leaves "pending" — woken by the thread that
 * committed the change (wait_wake pushes the id to every worker's inbox)
 * or, for changes made by another process, by a once-a-second check of
 * PRAGMA data_version — or when its own timer runs out.  A held connection
 * is not read by evhttp, so hang-ups are only seen through the close
 * callback or the timer; both free the waiter.  Waiters are bounded per
 * thread.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "store.h"

struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	struct worker		*w;
	struct evhttp_request	*req;
	struct event		*timer;
	char			 id[40];
	int			 is_agent;
};

static void
waiter_free(struct waiter *wt)
{
	struct evhttp_connection *conn;

	TAILQ_REMOVE(&wt->w->waiters, wt, entry);
	wt->w->nwaiters--;
	if ((conn = evhttp_request_get_connection(wt->req)) != NULL)
		evhttp_connection_set_closecb(conn, NULL, NULL);
	event_free(wt->timer);
	free(wt);
}

/* Answer with the intent as it is now and forget the waiter. */
static void
waiter_answer(struct waiter *wt)
{
	struct request	 rq = { .req = wt->req, .w = wt->w };
	json_t		*view = NULL;
	int		 found = store_intent_get(wt->w->db, wt->id, &view);
	int		 is_agent = wt->is_agent;

	waiter_free(wt);
	if (found != 1)
		http_reply_error(&rq, found == 0 ? E_NOT_FOUND : E_UNAVAILABLE,
		    NULL);
	else
		api_intent_answer(&rq, view, is_agent);
}

static void
waiter_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	waiter_answer(arg);
}

static void
waiter_closed_cb(struct evhttp_connection *conn, void *arg)
{
	struct waiter	*wt = arg;

	/* The request dies with the connection: never answer it. */
	wt->req = NULL;
	TAILQ_REMOVE(&wt->w->waiters, wt, entry);
	wt->w->nwaiters--;
	event_free(wt->timer);
	free(wt);
}

int
wait_hold(struct request *rq, const char *id, int seconds, int is_agent)
{
	struct waiter	*wt;
	struct timeval	 tv = { seconds, 0 };
	struct evhttp_connection *conn = evhttp_request_get_connection(rq->req);

	if (rq->w->nwaiters >= WAIT_MAX_PER_WORKER || conn == NULL)
		return (-1);
	if ((wt = calloc(1, sizeof(*wt))) == NULL)
		return (-1);
	wt->timer = evtimer_new(rq->w->base, waiter_timeout_cb, wt);
	if (wt->timer == NULL || evtimer_add(wt->timer, &tv) == -1) {
		if (wt->timer != NULL)
			event_free(wt->timer);
		free(wt);
		return (-1);
	}
	wt->w = rq->w;
	wt->req = rq->req;
	wt->is_agent = is_agent;
	snprintf(wt->id, sizeof(wt->id), "%s", id);
	TAILQ_INSERT_TAIL(&rq->w->waiters, wt, entry);
	rq->w->nwaiters++;
	evhttp_connection_set_closecb(conn, waiter_closed_cb, wt);
	return (0);
}

/* Answer every waiter on id whose intent is no longer pending. */
static void
wait_settle(struct worker *w, const char *id)
{
	struct waiter	*wt, *next;

	for (wt = TAILQ_FIRST(&w->waiters); wt != NULL; wt = next) {
		next = TAILQ_NEXT(wt, entry);
		if (id == NULL || strcmp(wt->id, id) == 0)
			waiter_answer(wt);
	}
}

static void
wait_inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	char		 ids[WAIT_INBOX][40];
	size_t		 n, i;
	int		 overflow;

	pthread_mutex_lock(&w->inbox_lock);
	n = w->inbox_n;
	overflow = w->inbox_overflow;
	memcpy(ids, w->inbox, n * sizeof(ids[0]));
	w->inbox_n = 0;
	w->inbox_overflow = 0;
	pthread_mutex_unlock(&w->inbox_lock);
	if (overflow) {
		wait_settle(w, NULL);
		return;
	}
	for (i = 0; i < n; i++)
		wait_settle(w, ids[i]);
}

void
wait_wake(struct broker *b, const char *id)
{
	struct worker	*w;
	int		 i;

	for (i = 0; i < b->nworkers; i++) {
		w = &b->workers[i];
		pthread_mutex_lock(&w->inbox_lock);
		if (w->inbox_n < WAIT_INBOX)
			snprintf(w->inbox[w->inbox_n++], 40, "%s", id);
		else
			w->inbox_overflow = 1;	/* settle everyone */
		pthread_mutex_unlock(&w->inbox_lock);
		event_active(w->wake_ev, 0, 0);
	}
}

/*
 * Once a second: if another connection (this broker's other threads are
 * already covered by wait_wake, so in practice another process) changed
 * the database, re-check the intents being waited on.
 */
void
wait_tick(struct worker *w)
{
	struct waiter	*wt, *next;
	sqlite3_stmt	*st;
	int64_t		 version = -1;
	json_t		*view;

	if (TAILQ_EMPTY(&w->waiters))
		return;
	if (sqlite3_prepare_v2(w->db->sql, "PRAGMA data_version", -1, &st,
	    NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (version == w->data_version)
		return;
	w->data_version = version;
	for (wt = TAILQ_FIRST(&w->waiters); wt != NULL; wt = next) {
		next = TAILQ_NEXT(wt, entry);
		view = NULL;
		if (store_intent_get(w->db, wt->id, &view) == 1 &&
		    strcmp(json_string_value(json_object_get(view, "status")),
		    "pending") != 0)
			waiter_answer(wt);
		json_decref(view);
	}
}

int
wait_init(struct worker *w)
{
	TAILQ_INIT(&w->waiters);
	w->data_version = -1;
	if (pthread_mutex_init(&w->inbox_lock, NULL) != 0)
		return (-1);
	w->wake_ev = event_new(w->base, -1, 0, wait_inbox_cb, w);
	return (w->wake_ev == NULL ? -1 : 0);
}

void
wait_deinit(struct worker *w)
{
	struct waiter	*wt;

	while ((wt = TAILQ_FIRST(&w->waiters)) != NULL)
		waiter_answer(wt);
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	pthread_mutex_destroy(&w->inbox_lock);
}
