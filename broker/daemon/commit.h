/*
 * commit: group commit, as a mechanism.  A handler queues a job with two
 * callbacks of its own: run (on the writer thread, inside the batch's one
 * write transaction, with the writer's decider) and done (back on the
 * thread that owns the job's connection, after the commit), and
 * optionally ran (on that thread too, while the commit is under way).
 * The mechanism knows nothing of what the jobs are.
 */
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>

#include "lifecycle.h"
#include "reason.h"

struct broker;
struct worker;

struct commit_job {
	struct commit_job	*next;
	struct worker		*w;	/* the thread that answers */
	struct evhttp_request	*req;	/* NULL once its connection closed */
	/* Set by the submitter.  run returns REASON_OK, an error of its own
	 * job (the batch goes on), or E_UNAVAILABLE (the whole batch is
	 * rolled back and every job gets E_UNAVAILABLE).  done owns the job
	 * (and frees it); it runs even when req is NULL. */
	enum reason		(*run)(struct decider *d, struct commit_job *j);
	void			(*done)(struct commit_job *j);
	enum reason		 result;
	int64_t			 ks_epoch;	/* broker's, as the batch began */
	/* Optional: once the whole batch has run, before its commit is
	 * durable, on w's thread (always before done): for work that may
	 * begin early but must not leave before done says the job is
	 * committed.  It reads what run wrote; the job's fields above are
	 * the mechanism's. */
	void			(*ran)(struct commit_job *j);
	struct commit_job	*ran_next;
};

/* Per worker: jobs handed back, answered on its own thread. */
struct commit_worker {
	pthread_mutex_t		 lock;
	struct commit_job	*head, **tail;
	int			 fd;		/* eventfd: the writer's wake */
	struct event		*ev;		/* reads it */
};

/* Per worker, its thread only: deferred jobs held back for a moment, so
 * that the thread's next decision carries them to the writer. */
struct commit_held {
	struct commit_job	*head, **tail;
	struct event		*ev;		/* the end of the moment */
};

/* The one writer thread, with its own store connection and decider. */
struct committer {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct commit_job	*head, **tail;
	struct commit_job	*later, **later_tail;	/* deferred jobs */
	struct timespec		 later_due;	/* CLOCK_MONOTONIC */
	/* lazy: deferred jobs commit at once without an fsync of their own
	 * (the store can flush); unsynced: one did, so the store is flushed
	 * at sync_due (nothing to do if a durable commit has covered it). */
	int			 lazy;
	int			 unsynced;
	struct timespec		 sync_due;	/* CLOCK_MONOTONIC */
	int			 stop;
	struct store		*store;
	struct decider		 dec;
	int			 failing;	/* the last batch was lost */
};

/* Open the writer's store (exit-worthy errors in err) and start it. */
int	commit_start(struct broker *b, char *err, size_t errlen);
/* Stop the writer after it has committed everything queued. */
void	commit_stop(struct broker *b);
/* Worker thread: queue job (owned by the commit path from now on; its req
 * may be NULL). */
void	commit_submit(struct broker *b, struct commit_job *job);
/* Worker thread: queue a job nobody waits for (a record after the answer)
 * without an fsync of its own.  SQLite: it rides the thread's next
 * decision if one comes within 1 ms, else it is queued then; it joins
 * the next batch when decisions are queued, and when none are it commits
 * at once without an fsync (under synchronous = full the next durable
 * commit, or an fsync 5 ms later, covers it).  PostgreSQL: it waits up
 * to 5 ms for a batch, then commits on its own.  SIGTERM still waits for
 * it (it is in flight). */
void	commit_submit_deferred(struct broker *b, struct commit_job *job);
/*
 * Worker thread: a chore (housekeeping nobody waits for, such as the
 * sweeper's expiries) run on the writer in the next batch, so that a
 * database locked by another process stalls the writer, which answers
 * 503, and never this thread's loop and every connection on it.  *busy
 * is 1 until it has committed (or failed); while it is, the chore is not
 * queued again.
 */
void	commit_chore(struct worker *w, enum reason (*run)(struct decider *d,
	    struct commit_job *j), int *busy);
int	commit_worker_init(struct worker *w);
void	commit_worker_deinit(struct worker *w);
/*
 * After any transaction this process committed, on any thread: wake the
 * long-polls of every intent it changed, on every thread, make a kill
 * switch change visible to answers decided before it, count its events
 * (approvals, rejections, expiries, redemptions) in /metrics, and wake the
 * event sender when it wrote outbox rows.
 */
void	commit_publish(struct broker *b, const struct lc_changes *ch);
