/*
 * approvals: the human-approval queue (CONTRACT §4).  Approve and reject
 * are lifecycle transitions (lc_approve, lc_reject), each a job of the
 * writer's next batch (commit.c), which wakes the waiters of what
 * changed; this file reads the request, queues it and answers after the
 * commit.  The queue is paged: one call costs one page, however large
 * the intents or the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "answer.h"
#include "approvals.h"
#include "broker.h"
#include "clock.h"
#include "input.h"
#include "jsonw.h"
#include "log.h"
#include "text.h"

#define APPROVALS_DEFAULT_LIMIT	100
#define APPROVALS_MAX_LIMIT	1000
/* A page stops growing past this many bytes of items (one more item can
 * push it over: an intent is at most 64 KiB of args). */
#define APPROVALS_PAGE_BYTES	(1024 * 1024)

struct page {
	struct evbuffer	*buf;
	size_t		 items;
	int		 failed;
};

static int
approvals_page_cb(const struct intent_row *r, void *arg)
{
	struct page	*pg = arg;
	json_t		*v;
	char		*text;
	size_t		 len = 0;

	if ((v = answer_view(r)) == NULL ||
	    (text = jsonw_dump(v, JSONW_PLAIN, &len)) == NULL) {
		json_decref(v);
		pg->failed = 1;
		return (1);
	}
	json_decref(v);
	if ((pg->items > 0 && evbuffer_add(pg->buf, ",", 1) == -1) ||
	    evbuffer_add(pg->buf, text, len) == -1)
		pg->failed = 1;
	free(text);
	pg->items++;
	return (pg->failed || evbuffer_get_length(pg->buf) >=
	    APPROVALS_PAGE_BYTES);
}

/*
 * Answer rq with one page of q and the queue's generation, read first:
 * a change between the two reads shows in the page, and the client's
 * next long-poll with that generation returns at once.
 */
static void
approvals_page(struct request *rq, const struct intent_query *q)
{
	struct page		 pg = { NULL, 0, 0 };
	struct store		*s = rq->w->store;
	struct store_gen	 g;
	char			 next[STORE_CURSOR_MAX];
	char			 tail[STORE_CURSOR_MAX + 64];
	int			 rc;

	if (s->ops->generations(s, STORE_GEN_QUEUE, &g) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if ((pg.buf = evbuffer_new()) == NULL ||
	    evbuffer_add(pg.buf, "{\"items\":[", 10) == -1) {
		http_reply_error(rq, E_INTERNAL, NULL);
		goto done;
	}
	rc = s->ops->intent_page(s, q, approvals_page_cb, &pg, next);
	if (rc == -2) {
		http_reply_error(rq, E_BAD_REQUEST, "cursor must be a "
		    "next_cursor from an earlier page");
		goto done;
	}
	if (rc == -1 || pg.failed) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	/* "next_cursor": where the next page starts, or null at the end;
	 * "generation": pass it as since= to wait for the next change. */
	if (next[0] != '\0')
		snprintf(tail, sizeof(tail), "],\"next_cursor\":\"%s\","
		    "\"generation\":%lld}", next, (long long)g.queue);
	else
		snprintf(tail, sizeof(tail), "],\"next_cursor\":null,"
		    "\"generation\":%lld}", (long long)g.queue);
	evbuffer_add(pg.buf, tail, strlen(tail));
	http_reply_buffer(rq, 200, pg.buf);
	pg.buf = NULL;
 done:
	if (pg.buf != NULL)
		evbuffer_free(pg.buf);
}

/* wait.c: the queue changed (or the wait is over): the first page of
 * pending intents, limit in each waiter's audience. */
static void
approvals_woken(struct worker *w, const char *key, const struct wait_reply *rs,
    size_t n)
{
	struct intent_query	 q;
	struct request		 rq;
	size_t			 i;

	for (i = 0; i < n; i++) {
		memset(&q, 0, sizeof(q));
		q.status = ST_PENDING;
		q.limit = rs[i].audience;
		memset(&rq, 0, sizeof(rq));
		rq.req = rs[i].req;
		rq.w = w;
		approvals_page(&rq, &q);
	}
}

void
api_approvals_list(struct request *rq)
{
	static const char *const keys[] = { "status", "limit", "cursor",
	    "wait", "since", NULL };
	struct evkeyvalq	 q;
	struct intent_query	 iq;
	struct store_gen	 g;
	struct store		*s = rq->w->store;
	const char		*status;
	int64_t			 wait, since;

	memset(&iq, 0, sizeof(iq));
	if (input_query(rq, keys, &q) == -1 ||
	    input_query_int(rq, &q, "limit", 1, APPROVALS_MAX_LIMIT,
	    APPROVALS_DEFAULT_LIMIT, "status must be pending, allowed, "
	    "rejected or expired; limit 1..1000", &iq.limit) == -1 ||
	    input_query_int(rq, &q, "wait", 0, WAIT_MAX_SECONDS, 0,
	    "wait must be 0..60 seconds", &wait) == -1 ||
	    input_query_int(rq, &q, "since", 0, INT64_MAX, -1,
	    "since must be a generation from an earlier answer", &since) == -1)
		goto done;
	if ((status = evhttp_find_header(&q, "status")) == NULL)
		status = "pending";
	if (intent_status_parse(status, &iq.status) == -1 ||
	    iq.status == ST_DENIED) {
		http_reply_error(rq, E_BAD_REQUEST, "status must be pending, "
		    "allowed, rejected or expired; limit 1..1000");
		goto done;
	}
	iq.cursor = evhttp_find_header(&q, "cursor");
	if (wait > 0 && (iq.status != ST_PENDING || iq.cursor != NULL)) {
		http_reply_error(rq, E_BAD_REQUEST, "wait watches the first "
		    "page of pending intents: no status or cursor with it");
		goto done;
	}
	/* Unchanged since the client's generation: hold it until it is. */
	if (wait > 0 && since >= 0) {
		if (s->ops->generations(s, STORE_GEN_QUEUE, &g) == -1) {
			http_reply_error(rq, E_UNAVAILABLE, NULL);
			goto done;
		}
		if (g.queue == since) {
			if (wait_hold_queue(rq, since, (int)wait, (int)iq.limit,
			    approvals_woken) == -1) {
				evhttp_add_header(evhttp_request_get_output_headers(
				    rq->req), "Retry-After", "1");
				http_reply_error(rq, E_RATE_LIMITED, "too many "
				    "waiting requests; retry later");
			}
			goto done;
		}
	}
	approvals_page(rq, &iq);
 done:
	evhttp_clear_headers(&q);
}

/* A verdict, run on the writer in the next batch: a database another
 * process holds locked stalls the writer, never this thread's loop. */
struct verdict_job {
	struct http_job		 hj;		/* first */
	int			 approve;
	char			*who, *id, *text;	/* text may be NULL */
	struct lc_verdict	 v;
	/* The intent as this verdict left it: read in the transaction, not
	 * after the commit, when a concurrent approval may already have
	 * released it. */
	struct intent_row	 r;
};

static enum reason
verdict_run(struct decider *d, struct commit_job *j)
{
	struct verdict_job	*vj = (struct verdict_job *)j;
	enum reason		 rc;

	rc = vj->approve ? lc_approve(d, vj->who, vj->id, vj->text,
	    clock_now(), &vj->v) : lc_reject(d, vj->who, vj->id, vj->text,
	    clock_now(), &vj->v);
	if (rc == REASON_OK && d->store->ops->intent_get(d->store, vj->id,
	    STORE_APPROVALS, &vj->r) != 1)
		rc = E_UNAVAILABLE;	/* rolled back: nothing acknowledged */
	return (rc);
}

/* After the commit: answer with the view. */
static void
verdict_answer(struct request *rq, struct http_job *hj)
{
	struct verdict_job	*vj = (struct verdict_job *)hj;

	if (hj->job.result != REASON_OK) {
		http_reply_error(rq, hj->job.result, NULL);
		return;
	}
	log_info("%s %s by %s: %d/%d, %s", vj->approve ? "approval" :
	    "rejection", vj->id, vj->who, vj->v.approvals, vj->v.required,
	    intent_status_name(vj->v.status));
	/* Approvers read the intent, never its grant. */
	answer_intent(rq, 200, &vj->r, GRANT_NONE);
}

static void
verdict_release(struct http_job *hj)
{
	struct verdict_job	*vj = (struct verdict_job *)hj;

	intent_row_clear(&vj->r);
	free(vj->who);
	free(vj->id);
	free(vj->text);
	free(vj);
}

/* Read the verdict and queue it. */
static void
approvals_verdict(struct request *rq, int approve)
{
	static const char *const approve_keys[] = { "comment", NULL };
	static const char *const reject_keys[] = { "reason", NULL };
	struct verdict_job	*vj;
	const char		*text;
	json_t			*doc;

	if ((doc = input_json(rq, approve ? approve_keys : reject_keys,
	    INPUT_BODY_MAX, approve ? INPUT_EMPTY_OK : 0)) == NULL)
		return;
	if (input_string(rq, doc, approve ? "comment" : "reason",
	    TEXT_MAX_REASON, approve ? 0 : INPUT_REQUIRED | INPUT_NOT_BLANK,
	    &text) == -1)
		goto done;
	if ((vj = calloc(1, sizeof(*vj))) == NULL ||
	    (vj->who = strdup(rq->peer->identity)) == NULL ||
	    (vj->id = strdup(rq->id)) == NULL ||
	    (text != NULL && (vj->text = strdup(text)) == NULL)) {
		if (vj != NULL) {
			free(vj->who);
			free(vj->id);
			free(vj);
		}
		http_reply_error(rq, E_INTERNAL, "out of memory");
		goto done;
	}
	vj->approve = approve;
	vj->hj.job.run = verdict_run;
	vj->hj.answer = verdict_answer;
	vj->hj.release = verdict_release;
	http_submit(rq, &vj->hj);
 done:
	json_decref(doc);
}

void
api_approve(struct request *rq)
{
	approvals_verdict(rq, 1);
}

void
api_reject(struct request *rq)
{
	approvals_verdict(rq, 0);
}

/*
 * Sweeper: pending intents past expires_at and allowed ones past their
 * grant window become "expired", one audit record each, in the writer's
 * next batch (a chore: see commit_chore); the batch wakes their waiters.
 */
static enum reason
approvals_sweep_run(struct decider *d, struct commit_job *j)
{
	size_t	 n = 0;

	return (lc_expire_due(d, clock_now(), &n));
}

void
approvals_sweep(struct worker *w)
{
	commit_chore(w, approvals_sweep_run, &w->sweeping);
}
