/*
 * commit: group commit.  Workers verify intents on their own threads and
 * queue them here; one writer thread takes everything queued, runs each
 * job's decision in ONE write transaction, commits (one fsync for the
 * whole batch under synchronous=FULL), and only then hands each job back
 * to the worker that owns its connection, which answers.  While the
 * writer waits for the disk, workers keep verifying, so the next batch is
 * ready when the fsync returns.  A deferred job (a record that answers
 * nobody) does not start a batch: it rides the next one, or goes alone
 * once it has waited COMMIT_DEFER_NS.  No handler is named here: jobs
 * carry their own callbacks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

#define COMMIT_BATCH_MAX 512
/* How long a deferred job waits for company: the window in which a
 * kill -9 loses it, and far below any client's patience. */
#define COMMIT_DEFER_NS (5 * 1000 * 1000L)

/* The connection went away before the answer: drop the answer, not the
 * decision (it is committed or about to be). */
static void
commit_job_closed(struct evhttp_connection *conn, void *arg)
{
	struct commit_job	*job = arg;

	job->req = NULL;
}

static void
commit_queue(struct broker *b, struct commit_job *job, int deferred)
{
	struct committer		*c = &b->commit;
	struct evhttp_connection	*conn;

	/* A job whose client is gone already (an MCP forward's outcome)
	 * has no connection to watch. */
	if (job->req != NULL &&
	    (conn = evhttp_request_get_connection(job->req)) != NULL)
		evhttp_connection_set_closecb(conn, commit_job_closed, job);
	job->w->inflight++;
	job->next = NULL;
	pthread_mutex_lock(&c->lock);
	if (!deferred) {
		*c->tail = job;
		c->tail = &job->next;
		pthread_cond_signal(&c->cond);
	} else {
		if (c->later == NULL) {
			clock_gettime(CLOCK_MONOTONIC, &c->later_due);
			c->later_due.tv_nsec += COMMIT_DEFER_NS;
			if (c->later_due.tv_nsec >= 1000000000L) {
				c->later_due.tv_sec++;
				c->later_due.tv_nsec -= 1000000000L;
			}
			/* The writer may be asleep with no deadline. */
			pthread_cond_signal(&c->cond);
		}
		*c->later_tail = job;
		c->later_tail = &job->next;
	}
	pthread_mutex_unlock(&c->lock);
}

void
commit_submit(struct broker *b, struct commit_job *job)
{
	commit_queue(b, job, 0);
}

void
commit_submit_deferred(struct broker *b, struct commit_job *job)
{
	commit_queue(b, job, 1);
}

/* Writer thread: append job to a worker's queue q (link: the job's own
 * link field for that queue) and wake the worker. */
static void
handoff_push(struct commit_worker *q, struct commit_job *job,
    struct commit_job **link)
{
	*link = NULL;
	pthread_mutex_lock(&q->lock);
	*q->tail = job;
	q->tail = link;
	pthread_mutex_unlock(&q->lock);
	event_active(q->ev, 0, 0);
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
	commit_ran_drain(arg);
}

/* Worker thread: hand every job the writer gave back to its done. */
static void
commit_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker			*w = arg;
	struct commit_job		*job, *next;
	struct evhttp_connection	*conn;

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
	struct commit_job	*job;

	for (job = batch; job != NULL; job = job->next)
		if (job->ran != NULL && job->result == REASON_OK)
			handoff_push(&job->w->ran, job, &job->ran_next);
}

static void
commit_hand_back(struct commit_job *batch)
{
	struct commit_job	*job, *next;

	for (job = batch; job != NULL; job = next) {
		next = job->next;
		handoff_push(&job->w->done, job, &job->next);
	}
}

/* Run a whole batch in one transaction; on any storage error every job
 * of the batch gets E_UNAVAILABLE and nothing of it is kept. */
static void
commit_batch(struct broker *b, struct commit_job *batch)
{
	struct decider		*d = &b->commit.dec;
	struct commit_job	*job;
	int64_t			 epoch;
	int			 ok;

	epoch = __atomic_load_n(&b->ks_epoch, __ATOMIC_ACQUIRE);
	ok = lc_begin(d) == 0 && decider_refresh(d) == 0;
	for (job = batch; ok && job != NULL; job = job->next) {
		job->ks_epoch = epoch;
		job->result = job->run(d, job);
		if (job->result == E_UNAVAILABLE)
			ok = 0;
	}
	if (ok)
		commit_ran(batch);
	if (ok && lc_commit(d) == 0) {
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

/* Wait for work: a job, a deferred job's deadline, or the stop. */
static void
commit_wait(struct committer *c)
{
	while (c->head == NULL && !c->stop) {
		if (c->later == NULL)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock,
		    &c->later_due) == ETIMEDOUT)
			return;
	}
}

/* The next batch: every deferred job (they are older), then up to
 * COMMIT_BATCH_MAX queued ones; NULL once stopped with nothing left. */
static struct commit_job *
commit_take(struct committer *c)
{
	struct commit_job	*batch, *job;
	int			 n;

	pthread_mutex_lock(&c->lock);
	commit_wait(c);
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
	pthread_mutex_unlock(&c->lock);
	return (batch);
}

static void *
commit_main(void *arg)
{
	struct broker		*b = arg;
	struct commit_job	*batch;

	(void)pthread_setname_np(pthread_self(), "tg-commit");
	while ((batch = commit_take(&b->commit)) != NULL) {
		commit_batch(b, batch);
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
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		return (-1);
	q->ev = event_new(w->base, -1, 0, cb, w);
	return (q->ev == NULL ? -1 : 0);
}

static void
commit_queue_deinit(struct commit_worker *q)
{
	if (q->ev != NULL)
		event_free(q->ev);
	pthread_mutex_destroy(&q->lock);
}

int
commit_worker_init(struct worker *w)
{
	return (commit_queue_init(w, &w->done, commit_done_cb) == -1 ||
	    commit_queue_init(w, &w->ran, commit_ran_cb) == -1 ? -1 : 0);
}

void
commit_worker_deinit(struct worker *w)
{
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
