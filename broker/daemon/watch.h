/*
 * watch: what other brokers sharing the database change, heard when it
 * commits (CONTRACT §11).  With an engine that has a change feed
 * (PostgreSQL's LISTEN/NOTIFY) one thread of its own keeps a listening
 * connection in an event loop of its own (a reconnect may block; no
 * request waits behind it), and publishes what it hears exactly as this
 * process publishes its own commits (commit_publish): an intent whose
 * status moved wakes its long-polls on every thread, a kill switch trip
 * or reset makes answers decided before it check the switches again.
 * With SQLite (no feed) nothing runs: the generations tell every change.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct broker;
struct store;

struct watcher {
	pthread_t		 thread;
	struct event_base	*base;
	struct store		*store;		/* the listening connection */
	struct event		*sock_ev;	/* its socket, while listening */
	struct event		*tick_ev;	/* 1 Hz: backstop, re-listen */
	struct event		*stop_ev;
	int			 running;	/* the thread was started */
	int			 listening;
	int			 lost;		/* listened before, then lost */
	int64_t			 ks_gen;	/* last kill switch generation */
};

/* Open the listening connection and start its thread (exit-worthy
 * errors in err); 0 and nothing started when the engine has no feed. */
int	watch_start(struct broker *b, char *err, size_t errlen);
/* Stop the thread and close its connection (before the workers go). */
void	watch_stop(struct broker *b);
