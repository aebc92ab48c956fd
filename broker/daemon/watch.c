/*
 * watch: the change feed of a shared database, heard on a thread of its
 * own.  The fast path: the listening socket turns readable when any
 * broker (or toolgatectl --db) commits a kill switch change, a policy
 * version, an intent's status change or a change of the approval queue,
 * and what it heard is published
 * to this broker's threads at once.  The backstop, once a second: listen
 * again when the connection was lost (the engine reconnects with
 * backoff), and after every such reconnect publish "everything changed"
 * (every long-poll re-checks its intent, every answer the switches),
 * since whatever was announced while it was away was not heard; and
 * compare the kill switch generation with the last one seen, in case a
 * change slipped between.  Decisions do not depend on any of this: they
 * read the generations inside their own transaction.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "watch.h"

/* What heard() reported, published when the drain is over. */
struct watch_heard {
	struct broker	*b;
	int		 killswitch;
};

/* One intent's long-polls, on every thread; a switch: answers check. */
static void
watch_heard_cb(unsigned what, const char *id, void *arg)
{
	struct watch_heard	*h = arg;
	struct lc_changes	 ch;
	char			 one[1][INTENT_ID_LEN + 1];

	memset(&ch, 0, sizeof(ch));
	if (what == STORE_GEN_KILLSWITCH)
		h->killswitch = 1;
	else if (what == STORE_GEN_QUEUE) {
		/* The approval queue's long-polls re-read its generation. */
		ch.queue = 1;
		commit_publish(h->b, &ch);
	} else if (what == STORE_GEN_DATA && id != NULL && intent_id_valid(id)) {
		snprintf(one[0], sizeof(one[0]), "%s", id);
		ch.ids = one;
		ch.n = 1;
		commit_publish(h->b, &ch);
	}
	/* A policy version: every decider reads the generations on use. */
}

/* Everything may have changed: the full refresh after a reconnect. */
static void
watch_publish_all(struct broker *b)
{
	struct lc_changes	 ch;

	memset(&ch, 0, sizeof(ch));
	ch.overflow = 1;
	ch.killswitch = 1;
	commit_publish(b, &ch);
}

static void
watch_publish_killswitch(struct broker *b)
{
	struct lc_changes	 ch;

	memset(&ch, 0, sizeof(ch));
	ch.killswitch = 1;
	commit_publish(b, &ch);
}

static void
watch_drop(struct watcher *wa)
{
	if (wa->sock_ev != NULL) {
		event_free(wa->sock_ev);
		wa->sock_ev = NULL;
	}
	if (wa->listening)
		log_warnx("no longer hearing other brokers' changes (database "
		    "connection lost): listening again once it is back");
	wa->listening = 0;
	wa->lost = 1;
}

/* Drain what was announced; a lost connection is listened to again by
 * the tick. */
static void
watch_drain(struct broker *b)
{
	struct watcher		*wa = &b->watch;
	struct watch_heard	 h = { b, 0 };

	if (wa->store->ops->heard(wa->store, watch_heard_cb, &h) == -1)
		watch_drop(wa);
	if (h.killswitch)
		watch_publish_killswitch(b);
}

static void
watch_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	watch_drain(arg);
}

/* Listen (again): 0, or -1 when the database is not reachable yet (the
 * next tick retries). */
static int
watch_listen(struct broker *b)
{
	struct watcher	*wa = &b->watch;
	int		 fd;

	if ((fd = wa->store->ops->listen(wa->store)) < 0)
		return (-1);
	wa->sock_ev = event_new(wa->base, fd, EV_READ | EV_PERSIST,
	    watch_sock_cb, b);
	if (wa->sock_ev == NULL || event_add(wa->sock_ev, NULL) == -1) {
		log_warnx("%s: cannot watch the database socket", __func__);
		if (wa->sock_ev != NULL)
			event_free(wa->sock_ev);
		wa->sock_ev = NULL;
		return (-1);
	}
	wa->listening = 1;
	if (wa->lost) {
		log_info("hearing other brokers' changes again");
		watch_publish_all(b);
		wa->lost = 0;
	}
	return (0);
}

static void
watch_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct broker		*b = arg;
	struct watcher		*wa = &b->watch;
	struct store_gen	 g;

	if (!wa->listening && watch_listen(b) == -1)
		return;
	if (wa->store->ops->generations(wa->store, STORE_GEN_KILLSWITCH,
	    &g) == 0) {
		if (g.killswitch != wa->ks_gen && wa->ks_gen != -1) {
			log_debug("a kill switch change seen by the backstop");
			watch_publish_killswitch(b);
		}
		wa->ks_gen = g.killswitch;
	}
	/* What the query's round trip brought in, or its loss. */
	watch_drain(b);
}

static void
watch_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher	*wa = arg;

	event_base_loopexit(wa->base, NULL);
}

static void *
watch_main(void *arg)
{
	struct broker	*b = arg;

	(void)pthread_setname_np(pthread_self(), "tg-watch");
	event_base_dispatch(b->watch.base);
	return (NULL);
}

int
watch_start(struct broker *b, char *err, size_t errlen)
{
	struct watcher	*wa = &b->watch;
	struct timeval	 tick = { 1, 0 };
	int		 fd;

	memset(wa, 0, sizeof(*wa));
	wa->ks_gen = -1;
	if ((wa->store = store_open(b->db_path, 0, err, errlen)) == NULL)
		return (-1);
	if ((fd = wa->store->ops->listen(wa->store)) == -2) {
		store_close(wa->store);
		wa->store = NULL;
		return (0);	/* no feed: one host, nothing to hear */
	}
	if (fd == -1) {
		snprintf(err, errlen, "cannot listen for other brokers' "
		    "changes on the database");
		return (-1);
	}
	if ((wa->base = event_base_new()) == NULL ||
	    (wa->sock_ev = event_new(wa->base, fd, EV_READ | EV_PERSIST,
	    watch_sock_cb, b)) == NULL ||
	    (wa->tick_ev = event_new(wa->base, -1, EV_PERSIST, watch_tick_cb,
	    b)) == NULL ||
	    (wa->stop_ev = event_new(wa->base, -1, 0, watch_stop_cb, wa)) ==
	    NULL || event_add(wa->sock_ev, NULL) == -1 ||
	    event_add(wa->tick_ev, &tick) == -1) {
		snprintf(err, errlen, "cannot create the watch event loop");
		return (-1);
	}
	wa->listening = 1;
	if (pthread_create(&wa->thread, NULL, watch_main, b) != 0) {
		snprintf(err, errlen, "cannot start the watch thread");
		return (-1);
	}
	wa->running = 1;
	log_info("listening for other brokers' changes on the database");
	return (0);
}

void
watch_stop(struct broker *b)
{
	struct watcher	*wa = &b->watch;

	if (wa->running) {
		event_active(wa->stop_ev, 0, 0);
		pthread_join(wa->thread, NULL);
		wa->running = 0;
	}
	if (wa->sock_ev != NULL)
		event_free(wa->sock_ev);
	if (wa->tick_ev != NULL)
		event_free(wa->tick_ev);
	if (wa->stop_ev != NULL)
		event_free(wa->stop_ev);
	if (wa->base != NULL)
		event_base_free(wa->base);
	store_close(wa->store);
	memset(wa, 0, sizeof(*wa));
}
