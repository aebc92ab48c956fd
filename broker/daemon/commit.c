/*
 * commit: group commit.  Workers verify intents on their own threads and
 * queue them here; one writer thread takes everything queued, runs each
 * job's decision in ONE write transaction, commits (one fsync for the
 * whole batch under synchronous=FULL), and only then hands each job back
 * to the worker that owns its connection, which answers.  While the
 * writer waits for the disk, workers keep verifying, so the next batch is
 * ready when the fsync returns.  A deferred job (a record that answers
 * nobody) never pays an fsync of its own: its worker holds it for up to
 * COMMIT_HOLD_US, so that the thread's next decision carries it to the
 * writer; queued, it rides the next batch when one is queued; when none
 * is, it commits at once (under synchronous = NORMAL), and under
 * synchronous = full the next durable commit's fsync, or a flush once
 * COMMIT_DEFER_NS have passed, makes it survive power loss.  A store
 * that cannot flush keeps it back in the writer for up to
 * COMMIT_DEFER_NS instead.  Each hand-off wakes its thread once for all
 * the jobs it carries: a wake-up is a context switch, and on a small
 * machine those take a good part of a decision's time.  No handler is
 * named here: jobs carry their own callbacks.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define COMMIT_BATCH_MAX 512
/* How long a deferred job may stay short of power-loss safe (or, on a
 * store that cannot flush, wait for company): far below any client's
 * patience. */
#define COMMIT_DEFER_NS (5 * 1000 * 1000L)
/* How long a worker holds a deferred job for its next decision to carry:
 * an agent that calls in a loop sends its next call well within this,
 * and the record then costs the writer no commit of its own, which the
 * next decision would have waited behind. */
#define COMMIT_HOLD_US 1000

/* The connection went away before the answer: drop the answer, not the
 * decision (it is committed or about to be). */
static void
commit_job_closed(struct evhttp_connection *conn, void *arg)
{
	struct commit_job	*job = arg;

	job->req = NULL;
}

/* COMMIT_DEFER_NS from now, on the monotonic clock. */
static void
commit_deadline(struct timespec *due)
{
	clock_gettime(CLOCK_MONOTONIC, due);
	due->tv_nsec += COMMIT_DEFER_NS;
	if (due->tv_nsec >= 1000000000L) {
		due->tv_sec++;
		due->tv_nsec -= 1000000000L;
	}
}

static int
commit_passed(const struct timespec *due)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec > due->tv_sec || (now.tv_sec == due->tv_sec &&
	    now.tv_nsec >= due->tv_nsec));
}

/* Worker thread: job counted in flight (SIGTERM waits for it) and its
 * connection watched until done. */
static void
commit_track(struct commit_job *job)
{
	struct evhttp_connection	*conn;

	/* A job whose client is gone already (an MCP forward's outcome)
	 * has no connection to watch. */
	if (job->req != NULL &&
	    (conn = evhttp_request_get_connection(job->req)) != NULL)
		evhttp_connection_set_closecb(conn, commit_job_closed, job);
	job->w->inflight++;
}

/* Writer's lock held: append the list first..*last to the deferred
 * jobs; 1 when it starts them (the writer must learn their deadline). */
static int
commit_later(struct committer *c, struct commit_job *first,
    struct commit_job **last)
{
	int	 started = c->later == NULL;

	if (started)
		commit_deadline(&c->later_due);
	*c->later_tail = first;
	c->later_tail = last;
	return (started);
}

/* Worker thread: queue job (NULL: none) behind the jobs w holds, which
 * go as deferred. */
static void
commit_queue(struct worker *w, struct commit_job *job, int deferred)
{
	struct committer	*c = &w->broker->commit;
	struct commit_held	*h = &w->held;
	int			 wake = 0;

	pthread_mutex_lock(&c->lock);
	if (h->head != NULL) {
		wake |= commit_later(c, h->head, h->tail);
		h->head = NULL;
		h->tail = &h->head;
		evtimer_del(h->ev);
	}
	if (job != NULL) {
		job->next = NULL;
		if (deferred)
			wake |= commit_later(c, job, &job->next);
		else {
			*c->tail = job;
			c->tail = &job->next;
			wake = 1;
		}
	}
	pthread_mutex_unlock(&c->lock);
	/* After the unlock: the writer, woken, does not block on it.  It
	 * checks for work under the lock, so the signal cannot be lost. */
	if (wake)
		pthread_cond_signal(&c->cond);
}

void
commit_submit(struct broker *b, struct commit_job *job)
{
	commit_track(job);
	commit_queue(job->w, job, 0);
}

void
commit_submit_deferred(struct broker *b, struct commit_job *job)
{
	struct commit_held	*h = &job->w->held;
	struct timeval		 hold = { 0, COMMIT_HOLD_US };

	commit_track(job);
	if (!b->commit.lazy) {
		commit_queue(job->w, job, 1);
		return;
	}
	job->next = NULL;
	if (h->head == NULL)
		evtimer_add(h->ev, &hold);
	*h->tail = job;
	h->tail = &job->next;
}

struct commit_chore {
	struct commit_job	 job;
	int			*busy;
};

static void
commit_chore_done(struct commit_job *j)
{
	struct commit_chore	*ch = (struct commit_chore *)j;

	*ch->busy = 0;
	free(ch);
}

void
commit_chore(struct worker *w, enum reason (*run)(struct decider *d,
    struct commit_job *j), int *busy)
{
	struct commit_chore	*ch;

	if (*busy || (ch = calloc(1, sizeof(*ch))) == NULL)
		return;		/* a failed allocation waits for the next tick */
	ch->job.w = w;
	ch->job.run = run;
	ch->job.done = commit_chore_done;
	ch->busy = busy;
	*busy = 1;
	commit_submit(w->broker, &ch->job);
}

/* No decision came to carry the held jobs: they go alone. */
static void
commit_held_cb(evutil_socket_t fd, short what, void *arg)
{
	commit_queue(arg, NULL, 1);
}

/* Writer thread: append job to a worker's queue q (link: the job's own
 * link field for that queue); the caller wakes the worker. */
static void
handoff_push(struct commit_worker *q, struct commit_job *job,
    struct commit_job **link)
{
	*link = NULL;
	pthread_mutex_lock(&q->lock);
	*q->tail = job;
	q->tail = link;
	pthread_mutex_unlock(&q->lock);
}

/* Writer thread: wake q's worker through its eventfd.  Not
 * event_active(), which writes the worker's notification while holding
 * its event base's lock: the worker, woken, would block on that lock and
 * cost a second wake. */
static void
handoff_wake(struct commit_worker *q)
{
	uint64_t	 one = 1;

	/* EAGAIN: the counter is full, so the worker is woken already. */
	(void)write(q->fd, &one, sizeof(one));
}

/* Writer thread: every job of batch to its worker's done queue, or (ran)
 * those that asked for it to its ran queue; each worker is woken once
 * for each run of its jobs in the batch, after the last of them. */
static void
handoff_batch(struct commit_job *batch, int ran)
{
	struct commit_job	*job, *next;
	struct commit_worker	*q, *pending = NULL;

	for (job = batch; job != NULL; job = next) {
		next = job->next;	/* done may free job once pushed */
		if (ran && (job->ran == NULL || job->result != REASON_OK))
			continue;
		q = ran ? &job->w->ran : &job->w->done;
		if (pending != NULL && q != pending)
			handoff_wake(pending);
		handoff_push(q, job, ran ? &job->ran_next : &job->next);
		pending = q;
	}
	if (pending != NULL)
		handoff_wake(pending);
}

/* Worker thread: everything queued on q, oldest first. */
static struct commit_job *
handoff_take(struct commit_worker *q)
{
	struct commit_job	*job;

	pthread_mutex_lock(&q->lock);
	job = q->head;
	q->head = NULL;
	q->tail = &q->head;
	pthread_mutex_unlock(&q->lock);
	return (job);
}

/* Worker thread: q's wake read (its event fired), so that it fires
 * again only for the next. */
static void
handoff_woken(struct commit_worker *q)
{
	uint64_t	 n;

	(void)read(q->fd, &n, sizeof(n));
}

/* Worker thread: the ran callbacks of the jobs whose batch has run. */
static void
commit_ran_drain(struct worker *w)
{
	struct commit_job	*job, *next;

	for (job = handoff_take(&w->ran); job != NULL; job = next) {
		next = job->ran_next;
		job->ran(job);
	}
}

static void
commit_ran_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	handoff_woken(&w->ran);
	commit_ran_drain(w);
}

/* Worker thread: hand every job the writer gave back to its done. */
static void
commit_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker			*w = arg;
	struct commit_job		*job, *next;
	struct evhttp_connection	*conn;

	handoff_woken(&w->done);
	job = handoff_take(&w->done);
	/* Each job taken above had its ran queued before its done: drained
	 * now (not before taking them, when a batch committing meanwhile
	 * could still add both), every one of them has run, whichever event
	 * the loop happened to take first. */
	commit_ran_drain(w);
	for (; job != NULL; job = next) {
		next = job->next;
		w->inflight--;
		if (job->req != NULL &&
		    (conn = evhttp_request_get_connection(job->req)) != NULL)
			evhttp_connection_set_closecb(conn, NULL, NULL);
		job->done(job);
	}
}

/* The batch has run: jobs that asked for it may start their next step
 * on their thread while the commit is under way. */
static void
commit_ran(struct commit_job *batch)
{
	handoff_batch(batch, 1);
}

static void
commit_hand_back(struct commit_job *batch)
{
	handoff_batch(batch, 0);
}

/* A lazy batch committed: its frames are flushed COMMIT_DEFER_NS from
 * the first such commit at the latest. */
static void
commit_unsynced(struct committer *c)
{
	if (!c->unsynced) {
		c->unsynced = 1;
		commit_deadline(&c->sync_due);
	}
}

/* Run a whole batch in one transaction (lazy: under synchronous =
 * NORMAL); on any storage error every job of the batch gets
 * E_UNAVAILABLE and nothing of it is kept. */
static void
commit_batch(struct broker *b, struct commit_job *batch, int lazy)
{
	struct committer	*c = &b->commit;
	struct decider		*d = &c->dec;
	struct commit_job	*job;
	int64_t			 epoch;
	int			 ok = 1;

	/* Under synchronous = full, a lazy batch commits under NORMAL; if
	 * that cannot be set it goes durably instead, and a store that
	 * cannot be made durable again takes no decision. */
	if (c->lazy && b->synchronous_full &&
	    c->store->ops->set_durability(c->store, !lazy) == -1) {
		ok = lazy;
		lazy = 0;
	}
	epoch = __atomic_load_n(&b->ks_epoch, __ATOMIC_ACQUIRE);
	ok = ok && lc_begin(d) == 0 && decider_refresh(d) == 0;
	for (job = batch; ok && job != NULL; job = job->next) {
		job->ks_epoch = epoch;
		job->result = job->run(d, job);
		/* A switch or a policy written in this batch binds every job
		 * after it (a cheap check: such batches are rare). */
		if (job->result == E_UNAVAILABLE ||
		    (d->wrote_state && decider_refresh(d) == -1))
			ok = 0;
	}
	if (ok)
		commit_ran(batch);
	if (ok && lc_commit(d) == 0) {
		if (lazy && b->synchronous_full)
			commit_unsynced(c);
		if (b->commit.failing)
			log_info("decisions are recorded again");
		b->commit.failing = 0;
		commit_publish(b, &d->changed);
		return;
	}
	lc_rollback(d);
	/* Once per outage, not once per batch: a database that is down
	 * fails every batch until it is back. */
	if (!b->commit.failing)
		log_warnx("%s: a batch of decisions could not be recorded; "
		    "answering 503 until the database takes them again",
		    __func__);
	b->commit.failing = 1;
	for (job = batch; job != NULL; job = job->next)
		job->result = E_UNAVAILABLE;
}

/* What the writer does next. */
enum commit_next {
	COMMIT_BATCH,		/* decisions, with any deferred jobs */
	COMMIT_LAZY,		/* deferred jobs alone, without an fsync */
	COMMIT_FLUSH,		/* make the lazy commits durable */
	COMMIT_STOP
};

/* Wait for work: a job, a deadline, or the stop. */
static enum commit_next
commit_wait(struct committer *c)
{
	const struct timespec	*due;

	for (;;) {
		if (c->head != NULL)
			return (COMMIT_BATCH);
		if (c->later != NULL && c->lazy)
			return (COMMIT_LAZY);
		if (c->later != NULL && (c->stop ||
		    commit_passed(&c->later_due)))
			return (COMMIT_BATCH);
		if (c->unsynced && (c->stop || commit_passed(&c->sync_due)))
			return (COMMIT_FLUSH);
		if (c->stop)
			return (COMMIT_STOP);
		due = c->later != NULL ? &c->later_due :
		    c->unsynced ? &c->sync_due : NULL;
		if (due == NULL)
			pthread_cond_wait(&c->cond, &c->lock);
		else
			(void)pthread_cond_timedwait(&c->cond, &c->lock, due);
	}
}

/* Every deferred job (they are older), then up to COMMIT_BATCH_MAX
 * queued ones. */
static struct commit_job *
commit_take_queued(struct committer *c)
{
	struct commit_job	*batch, *job;
	int			 n;

	batch = c->head;
	for (job = batch, n = 1; job != NULL && n < COMMIT_BATCH_MAX;
	    job = job->next, n++)
		;
	if (job != NULL && job->next != NULL) {
		c->head = job->next;
		job->next = NULL;
	} else {
		c->head = NULL;
		c->tail = &c->head;
	}
	if (c->later != NULL) {
		*c->later_tail = batch;
		batch = c->later;
		c->later = NULL;
		c->later_tail = &c->later;
	}
	return (batch);
}

/* The next thing to do, with its jobs in *batch. */
static enum commit_next
commit_take(struct committer *c, struct commit_job **batch)
{
	enum commit_next	 next;

	pthread_mutex_lock(&c->lock);
	next = commit_wait(c);
	*batch = next == COMMIT_BATCH || next == COMMIT_LAZY ?
	    commit_take_queued(c) : NULL;
	pthread_mutex_unlock(&c->lock);
	return (next);
}

static void
commit_flush(struct committer *c)
{
	c->unsynced = 0;
	if (c->store->ops->flush(c->store) == -1)
		log_warnx("%s: records committed without an fsync (MCP "
		    "forward outcomes) could not be flushed: check the "
		    "database's disk; a power loss now may lose them",
		    __func__);
}

static void *
commit_main(void *arg)
{
	struct broker		*b = arg;
	struct commit_job	*batch;
	enum commit_next	 next;

	(void)pthread_setname_np(pthread_self(), "tg-commit");
	while ((next = commit_take(&b->commit, &batch)) != COMMIT_STOP) {
		if (next == COMMIT_FLUSH) {
			commit_flush(&b->commit);
			continue;
		}
		commit_batch(b, batch, next == COMMIT_LAZY);
		commit_hand_back(batch);
	}
	return (NULL);
}

int
commit_start(struct broker *b, char *err, size_t errlen)
{
	struct committer	*c = &b->commit;

	pthread_condattr_t	 attr;
	int			 ok;

	c->head = NULL;
	c->tail = &c->head;
	c->later = NULL;
	c->later_tail = &c->later;
	if ((c->store = store_open(b->db_path, 0, err, errlen)) == NULL)
		return (-1);
	if (!b->synchronous_full &&
	    c->store->ops->set_durability(c->store, 0) == -1) {
		snprintf(err, errlen, "cannot set synchronous = NORMAL");
		return (-1);
	}
	c->lazy = c->store->ops->flush(c->store) == 0;
	decider_init(&c->dec, c->store, "writer", &b->lc);
	if (decider_refresh(&c->dec) == -1 && !audit_trust_broken(&b->trust)) {
		snprintf(err, errlen, "the stored policy cannot be loaded");
		return (-1);
	}
	/* Deferred jobs' deadlines are on the monotonic clock. */
	if (pthread_condattr_init(&attr) != 0) {
		snprintf(err, errlen, "cannot start the commit thread");
		return (-1);
	}
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	    pthread_mutex_init(&c->lock, NULL) == 0 &&
	    pthread_cond_init(&c->cond, &attr) == 0 &&
	    pthread_create(&c->thread, NULL, commit_main, b) == 0;
	pthread_condattr_destroy(&attr);
	if (!ok) {
		snprintf(err, errlen, "cannot start the commit thread");
		return (-1);
	}
	return (0);
}

void
commit_stop(struct broker *b)
{
	struct committer	*c = &b->commit;

	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	decider_deinit(&c->dec);
	store_close(c->store);
	c->store = NULL;
}

static int
commit_queue_init(struct worker *w, struct commit_worker *q,
    event_callback_fn cb)
{
	q->head = NULL;
	q->tail = &q->head;
	q->fd = -1;
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		return (-1);
	if ((q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return (-1);
	q->ev = event_new(w->base, q->fd, EV_READ | EV_PERSIST, cb, w);
	return (q->ev == NULL || event_add(q->ev, NULL) == -1 ? -1 : 0);
}

static void
commit_queue_deinit(struct commit_worker *q)
{
	if (q->ev != NULL)
		event_free(q->ev);
	if (q->fd != -1)
		close(q->fd);
	pthread_mutex_destroy(&q->lock);
}

int
commit_worker_init(struct worker *w)
{
	w->held.head = NULL;
	w->held.tail = &w->held.head;
	w->held.ev = evtimer_new(w->base, commit_held_cb, w);
	return (w->held.ev == NULL ||
	    commit_queue_init(w, &w->done, commit_done_cb) == -1 ||
	    commit_queue_init(w, &w->ran, commit_ran_cb) == -1 ? -1 : 0);
}

void
commit_worker_deinit(struct worker *w)
{
	if (w->held.ev != NULL)
		event_free(w->held.ev);
	commit_queue_deinit(&w->done);
	commit_queue_deinit(&w->ran);
}

void
commit_publish(struct broker *b, const struct lc_changes *ch)
{
	metrics_changes(&b->shared_metrics, ch);
	if (ch->killswitch)
		__atomic_add_fetch(&b->ks_epoch, 1, __ATOMIC_ACQ_REL);
	if (ch->n > 0 || ch->overflow || ch->queue)
		wait_wake(b, ch);
	if (ch->events)
		events_wake(b);
}
