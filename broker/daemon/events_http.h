/*
 * events_http: one sink's HTTP(S) client (events_http.c): a kept-alive
 * connection and one POST at a time, each with a deadline, its outcome
 * handed back later from the event loop.
 */
#pragma once

#include <stddef.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "events.h"

struct webhook_conn;

/* How one attempt ended. */
struct webhook_result {
	int	 ok;		/* a 2xx answer: delivered */
	int	 status;	/* the HTTP status, 0 without an answer */
	char	 error[200];	/* why not, for people (never the URL) */
};

/* One POST: the body and the headers of CONTRACT §10. */
struct webhook_post {
	const char	*body;
	size_t		 len;
	const char	*type;		/* Toolgate-Event */
	const char	*delivery;	/* Toolgate-Delivery */
	const char	*signature;	/* Toolgate-Signature */
	int		 timeout;	/* seconds for the whole attempt */
};

typedef void (*webhook_done_fn)(void *arg, const struct webhook_result *r);

/* A client for sink (borrowed, outlives it) on base.  NULL: no memory. */
struct webhook_conn *webhook_conn_new(struct event_base *base,
	    struct evdns_base *dns, const struct events_sink *sink);
/* Frees c; an attempt in flight is abandoned and done not called. */
void	webhook_conn_free(struct webhook_conn *c);
/*
 * Start POSTing p to the sink; p is copied, the strings it points to are
 * borrowed until done.  0: done(arg, result) is called exactly once, from
 * the event loop; -1: nothing started (one attempt at a time; or no
 * memory or no connection could be made).
 */
int	webhook_post(struct webhook_conn *c, const struct webhook_post *p,
	    webhook_done_fn done, void *arg);
