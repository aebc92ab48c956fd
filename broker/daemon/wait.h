/*
 * wait: long-polls (GET /v1/intents/{id}?wait=N, and the approval queue's
 * GET /v1/approvals?wait=N&since=GEN), as a mechanism.  A held request
 * waits until the intent's status leaves "pending" (or the queue's
 * generation moves past the one its client saw) — woken by
 * whichever thread committed the change (wait_wake, from every
 * transaction this process commits) or, for other processes' changes, by
 * a once-a-second check — or until its own timer fires; then the
 * handler's answer callback gets every woken waiter of that intent at
 * once, so it renders the intent once, not once per waiter.  A client
 * that hangs up frees its slot at once.  Held requests are bounded per
 * thread and per identity across threads.
 */
#pragma once

#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "lifecycle.h"
#include "rows.h"

#define WAIT_MAX_SECONDS	60
#define WAIT_MAX_PER_WORKER	1024
#define WAIT_PER_IDENTITY_DEFAULT 64
#define WAIT_INBOX		256
#define WAIT_BUCKETS		256

struct broker;
struct worker;
struct request;
struct wait_group;

/* One held request as its answer callback gets it. */
struct wait_reply {
	struct evhttp_request	*req;
	int			 audience;	/* the handler's own tag */
	void			*arg;		/* wait_hold_req's */
	int			 closing;	/* the broker is stopping:
						 * answer now, queue nothing */
};

/*
 * Answer every one of r[0..n) (n >= 1) about intent id, on w's thread.
 * The mechanism has let go of them: each must get exactly one answer.
 * Waiters of one intent held with the same callback come in one call.
 */
typedef void (*wait_answer_fn)(struct worker *w, const char *id,
    const struct wait_reply *r, size_t n);
/* The client of a request held with arg hung up, on w's thread: the
 * request is gone (nothing to answer); the owner of arg lets go of it. */
typedef void (*wait_gone_fn)(struct worker *w, void *arg);

/* Per worker. */
struct wait_worker {
	struct wait_group	*bucket[WAIT_BUCKETS];
	int			 nwaiters;
	int64_t			 data_gen;	/* store data generation seen */
	struct event		*wake_ev;
	pthread_mutex_t		 inbox_lock;
	char			 inbox[WAIT_INBOX][INTENT_ID_LEN + 1];
	size_t			 inbox_n;
	int			 inbox_overflow;
};

/* Held long-polls per identity, across threads. */
struct waitquota;
struct waitquota *waitquota_new(int per_identity);
void	waitquota_free(struct waitquota *q);

int	wait_init(struct worker *w);
/* Answers every request still held (shutting down). */
void	wait_deinit(struct worker *w);
/*
 * Hold rq for up to seconds waiting on intent id (pending now); answer
 * gets it when it is settled.  0 held; -1 no slot on this thread or for
 * this identity (the caller answers 429 with Retry-After).
 */
int	wait_hold(struct request *rq, const char *id, int seconds,
	    int audience, wait_answer_fn answer);
/*
 * Hold rq for up to seconds until the approval queue's generation
 * (STORE_GEN_QUEUE) is no longer since; answer gets it then, or when the
 * time is up, with id WAIT_QUEUE_KEY.  Counted like wait_hold.  0 held,
 * -1 no slot.
 */
int	wait_hold_queue(struct request *rq, int64_t since, int seconds,
	    int audience, wait_answer_fn answer);
#define WAIT_QUEUE_KEY	"queue"	/* not an intent id */
/*
 * As wait_hold, for a handler that keeps state of its own for the held
 * request req of identity (the MCP gateway's held calls): arg comes back
 * in its wait_reply, and if the client hangs up, gone(w, arg) is called
 * instead of answer.  While held, the mechanism owns req's connection
 * close callback.
 */
int	wait_hold_req(struct worker *w, struct evhttp_request *req,
	    const char *identity, const char *id, int seconds,
	    wait_answer_fn answer, wait_gone_fn gone, void *arg);
/* Any thread, after a commit: these intents changed status. */
void	wait_wake(struct broker *b, const struct lc_changes *ch);
/* 1 Hz: notice changes other processes made to waited-on intents. */
void	wait_tick(struct worker *w);
