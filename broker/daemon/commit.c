/*
 * commit: group commit.  Workers verify intents on their own threads and
 * queue them here; one writer thread takes everything queued, decides and
 * records it in ONE BEGIN IMMEDIATE transaction, commits (one fsync for the
 * whole batch under synchronous=FULL), and only then hands each job back
 * to the worker that owns its connection, which signs the grant and
 * answers.  While the writer waits for the disk, workers keep verifying,
 * so the next batch is ready when the fsync returns.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define COMMIT_BATCH_MAX 512

/* The connection went away before the answer: drop the answer, not the
 * decision (it is committed or about to be). */
static void
commit_job_closed(struct evhttp_connection *conn, void *arg)
{
	struct job	*job = arg;

	job->req = NULL;
}

void
commit_submit(struct broker *b, struct job *job)
{
	struct committer		*c = &b->commit;
	struct evhttp_connection	*conn;

	if ((conn = evhttp_request_get_connection(job->req)) != NULL)
		evhttp_connection_set_closecb(conn, commit_job_closed, job);
	job->w->inflight++;
	job->next = NULL;
	pthread_mutex_lock(&c->lock);
	*c->tail = job;
	c->tail = &job->next;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Worker thread: answer every job the writer handed back. */
static void
commit_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker			*w = arg;
	struct job			*job, *next;
	struct evhttp_connection	*conn;

	pthread_mutex_lock(&w->done_lock);
	job = w->done_head;
	w->done_head = NULL;
	w->done_tail = &w->done_head;
	pthread_mutex_unlock(&w->done_lock);
	for (; job != NULL; job = next) {
		next = job->next;
		w->inflight--;
		if (job->req != NULL &&
		    (conn = evhttp_request_get_connection(job->req)) != NULL)
			evhttp_connection_set_closecb(conn, NULL, NULL);
		if (job->req != NULL)
			api_answer_job(job);
		decision_free(&job->d);
		intent_clear(&job->in);
		free(job);
	}
}

static void
commit_hand_back(struct job *batch)
{
	struct job	*job, *next;
	struct worker	*w;

	for (job = batch; job != NULL; job = next) {
		next = job->next;
		w = job->w;
		job->next = NULL;
		pthread_mutex_lock(&w->done_lock);
		*w->done_tail = job;
		w->done_tail = &job->next;
		pthread_mutex_unlock(&w->done_lock);
		event_active(w->done_ev, 0, 0);
	}
}

/* Decide a whole batch in one transaction; on any storage error every
 * job of the batch is answered 503 and nothing of it is kept. */
static void
commit_batch(struct worker *ctx, struct job *batch)
{
	struct job	*job;
	int		 ok;

	ok = db_begin(ctx->db) == 0 && api_policy_refresh(ctx) == 0 &&
	    ks_refresh(ctx->db, &ctx->ks) == 0;
	for (job = batch; ok && job != NULL; job = job->next) {
		job->result = decide_in_tx(ctx, &job->in, &job->d, job->now);
		if (job->result == E_UNAVAILABLE)
			ok = 0;
	}
	if (ok && db_commit(ctx->db) == 0)
		return;
	db_rollback(ctx->db);
	log_warnx("%s: a batch of decisions could not be recorded",
	    __func__);
	for (job = batch; job != NULL; job = job->next)
		job->result = E_UNAVAILABLE;
}

static struct job *
commit_take(struct committer *c)
{
	struct job	*batch, *job;
	int		 n;

	pthread_mutex_lock(&c->lock);
	while (c->head == NULL && !c->stop)
		pthread_cond_wait(&c->cond, &c->lock);
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
	pthread_mutex_unlock(&c->lock);
	return (batch);
}

static void *
commit_main(void *arg)
{
	struct broker	*b = arg;
	struct job	*batch;

	while ((batch = commit_take(&b->commit)) != NULL) {
		commit_batch(b->commit.ctx, batch);
		commit_hand_back(batch);
	}
	return (NULL);
}

int
commit_start(struct broker *b)
{
	struct committer	*c = &b->commit;

	c->head = NULL;
	c->tail = &c->head;
	c->ctx = &b->commit_ctx;
	if (pthread_mutex_init(&c->lock, NULL) != 0 ||
	    pthread_cond_init(&c->cond, NULL) != 0)
		return (-1);
	return (pthread_create(&c->thread, NULL, commit_main, b) == 0 ? 0 :
	    -1);
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
}

int
commit_worker_init(struct worker *w)
{
	w->done_head = NULL;
	w->done_tail = &w->done_head;
	if (pthread_mutex_init(&w->done_lock, NULL) != 0)
		return (-1);
	w->done_ev = event_new(w->base, -1, 0, commit_done_cb, w);
	return (w->done_ev == NULL ? -1 : 0);
}

void
commit_worker_deinit(struct worker *w)
{
	if (w->done_ev != NULL)
		event_free(w->done_ev);
	pthread_mutex_destroy(&w->done_lock);
}
