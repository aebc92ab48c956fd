/*
 * api: the handlers of CONTRACT §3 and the policy endpoints of §4.  The
 * decision path is: verify the intent (intent.c) on this thread, queue it
 * to the group commit with this file's two callbacks — decide (the
 * lifecycle, in the batch's transaction) and answer (back here, after the
 * commit).  Nothing here parses JWS or policy text itself, and no state
 * changes except through the lifecycle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "api.h"
#include "broker.h"
#include "canon.h"
#include "clock.h"
#include "ident.h"
#include "input.h"
#include "log.h"
#include "policy_versions.h"
#include "version.h"
#include "trust.h"

/* An intent on its way through the group commit. */
struct intent_job {
	struct http_job		 hj;		/* first */
	struct intent		 in;
	struct intent_row	 row;		/* the decision, once made */
	char			 why[POLICY_MESSAGE_MAX];	/* a 400's */
	int64_t			 now;
	enum ident_source	 source;	/* of the caller's identity */
	char			*answer;	/* an allowed one's, grant and
						 * all, built while it commits */
	size_t			 answer_len;
};

/* Writer thread, inside the batch's transaction. */
static enum reason
intent_job_run(struct decider *d, struct commit_job *j)
{
	struct intent_job	*ij = (struct intent_job *)j;

	return (lc_decide(d, &ij->in, ij->now, &ij->row, ij->why));
}

/*
 * The allowed intent was decided under the switches the batch saw; one
 * tripped in this process since (the batch could not see it) is checked
 * now, so no grant leaves after a trip has been answered.
 */
static enum answer_grant
intent_job_grant(struct intent_job *ij)
{
	struct worker	*w = ij->hj.job.w;

	if (ij->row.status != ST_ALLOWED)
		return (GRANT_NONE);
	if (__atomic_load_n(&w->broker->ks_epoch, __ATOMIC_ACQUIRE) ==
	    ij->hj.job.ks_epoch)
		return (GRANT_FRESH);
	if (decider_refresh(&w->dec) == -1)
		return (GRANT_WITHHELD);
	return (answer_grant_for(w, &ij->row, ANSWER_AGENT, ij->now));
}

/* Worker thread, while the batch commits: an allowed intent's answer is
 * built meanwhile, its grant signed (the slowest part of the answer); it
 * leaves only if done finds the intent committed and the grant still
 * its due. */
static void
intent_job_ran(struct commit_job *j)
{
	struct intent_job	*ij = (struct intent_job *)j;

	if (ij->row.status == ST_ALLOWED && ij->answer == NULL)
		ij->answer = answer_render(j->w, &ij->row, GRANT_FRESH,
		    clock_now(), &ij->answer_len);
}

/* The answer of a committed decision: the one built while it committed,
 * when its grant is still the one due. */
static void
intent_job_reply(struct request *rq, struct intent_job *ij)
{
	const struct intent_row	*r = &ij->row;
	enum answer_grant	 g = intent_job_grant(ij);

	if (g == GRANT_FRESH && ij->answer != NULL)
		http_reply_text(rq, reason_status(r->reason),
		    "application/json", ij->answer, ij->answer_len);
	else
		answer_intent(rq, reason_status(r->reason), r, g);
}

/* Worker thread, after the commit. */
static void
intent_job_answer(struct request *rq, struct http_job *hj)
{
	struct intent_job	*ij = (struct intent_job *)hj;
	struct intent_row	*r = &ij->row;

	if (hj->job.result != REASON_OK) {
		/* the policy's own words for a 400 it found */
		http_reply_error(rq, hj->job.result, ij->why[0] ? ij->why :
		    NULL);
		return;
	}
	metrics_decision(&rq->w->metrics, (int)r->decision);
	log_info("decision %s: %s %s -> %s (%s)", r->id, r->agent, r->tool,
	    intent_status_name(r->status), reason_code(r->reason));
	if (r->reason == R_UNKNOWN_PRINCIPAL)
		log_info("unknown principal: the client certificate's "
		    "identity is \"%s\" (its %s): %s", r->agent,
		    ident_source_name(ij->source), r->reason_text);
	intent_job_reply(rq, ij);
}

static void
intent_job_release(struct http_job *hj)
{
	struct intent_job	*ij = (struct intent_job *)hj;

	free(ij->answer);
	intent_row_clear(&ij->row);
	intent_clear(&ij->in);
	free(ij);
}

void
api_intent_post(struct request *rq)
{
	struct intent_job	*ij;
	const char		*body, *msg = NULL;
	size_t			 len;
	enum reason		 r;

	if (!http_content_type_is(rq, "application/jose")) {
		http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
		    "POST /v1/intents takes Content-Type: application/jose");
		return;
	}
	body = http_body(rq, &len);
	if (len > INTENT_MAX_BYTES) {
		http_reply_error(rq, E_PAYLOAD_TOO_LARGE,
		    "an intent is at most 64 KiB");
		return;
	}
	if ((ij = calloc(1, sizeof(*ij))) == NULL) {
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return;
	}
	ij->now = clock_now();
	r = intent_verify(body ? body : "", len, &rq->peer->key,
	    rq->peer->identity, rq->w->broker->audience, ij->now, &ij->in,
	    &msg);
	if (r != REASON_OK) {
		free(ij);
		log_info("intent refused: %s: %s (%s)", rq->peer->identity,
		    reason_code(r), msg);
		http_reply_error(rq, r, msg);
		return;
	}
	ij->source = rq->peer->source;
	ij->hj.job.run = intent_job_run;
	ij->hj.job.ran = intent_job_ran;
	ij->hj.answer = intent_job_answer;
	ij->hj.release = intent_job_release;
	http_submit(rq, &ij->hj);
}

/*
 * Intent id as it stands now, for reading, with the decider refreshed, so
 * the answer's grant and the reader's roles follow the policy and the
 * switches in force.  1 found, 0 not, -1 (storage failed), or API_DUE:
 * it is past its deadline and must be expired first (the touch half of
 * expiry), on the writer: api_touch.
 */
#define API_DUE	2
static int
api_intent_load(struct worker *w, const char *id, struct intent_row *r)
{
	int	 found;

	if (decider_refresh(&w->dec) == -1)
		return (-1);
	found = w->store->ops->intent_get(w->store, id, STORE_APPROVALS, r);
	if (found != 1 || !lc_is_due(&w->dec, r, clock_now()))
		return (found);
	intent_row_clear(r);
	return (API_DUE);
}

/* Agents see their own intents; approvers and operators see all. */
static int
api_may_read(struct worker *w, const char *who, const struct intent_row *r)
{
	if (strcmp(r->agent, who) == 0)
		return (1);
	return (w->dec.policy != NULL &&
	    (policy_is_approver(w->dec.policy, who) ||
	    policy_is_operator(w->dec.policy, who)));
}

/* A read of an intent past its deadline: expired on the writer, then
 * answered from the row as the expiry left it.  Once expired it is never
 * pending again, so a GET's wait has nothing left to wait for. */
struct touch_job {
	struct http_job		 hj;		/* first */
	char			 id[INTENT_ID_LEN + 1];
	char			 who[IDENT_MAX];	/* a GET's reader */
	int			 audience;		/* a waiter's */
	int			 found;
	struct intent_row	 r;
};

static enum reason
touch_run(struct decider *d, struct commit_job *j)
{
	struct touch_job	*tj = (struct touch_job *)j;
	int			 expired;

	tj->found = d->store->ops->intent_get(d->store, tj->id,
	    STORE_FOR_UPDATE | STORE_APPROVALS, &tj->r);
	if (tj->found != 1)
		return (tj->found == 0 ? REASON_OK : E_UNAVAILABLE);
	return (lc_expire_touched(d, &tj->r, clock_now(), &expired));
}

/* The GET's answer. */
static void
touch_answer_get(struct request *rq, struct http_job *hj)
{
	struct touch_job	*tj = (struct touch_job *)hj;
	struct worker		*w = rq->w;

	if (hj->job.result != REASON_OK || decider_refresh(&w->dec) == -1)
		http_reply_error(rq, E_UNAVAILABLE, NULL);
	else if (tj->found != 1 || !api_may_read(w, tj->who, &tj->r))
		http_reply_error(rq, E_NOT_FOUND, "no such intent");
	else
		answer_intent(rq, 200, &tj->r, answer_grant_for(w, &tj->r,
		    strcmp(tj->r.agent, tj->who) == 0 ? ANSWER_AGENT :
		    ANSWER_READER, clock_now()));
}

/* A woken long-poll's answer (its reader was checked when it was held). */
static void
touch_answer_waiter(struct request *rq, struct http_job *hj)
{
	struct touch_job	*tj = (struct touch_job *)hj;
	struct wait_reply	 one = { .req = rq->req,
	    .audience = tj->audience };

	if (rq->req == NULL)
		return;
	if (hj->job.result != REASON_OK || tj->found != 1 ||
	    decider_refresh(&rq->w->dec) == -1)
		http_reply_error(rq, tj->found == 0 ? E_NOT_FOUND :
		    E_UNAVAILABLE, NULL);
	else
		answer_waiters(rq->w, &tj->r, &one, 1);
}

static void
touch_release(struct http_job *hj)
{
	struct touch_job	*tj = (struct touch_job *)hj;

	intent_row_clear(&tj->r);
	free(tj);
}

/* Queue the touch of intent id for rq (answer: one of the above). */
static void
api_touch(struct request *rq, const char *id, const char *who, int audience,
    void (*answer)(struct request *, struct http_job *))
{
	struct touch_job	*tj;

	if ((tj = calloc(1, sizeof(*tj))) == NULL) {
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return;
	}
	snprintf(tj->id, sizeof(tj->id), "%s", id);
	snprintf(tj->who, sizeof(tj->who), "%s", who);
	tj->audience = audience;
	tj->hj.job.run = touch_run;
	tj->hj.answer = answer;
	tj->hj.release = touch_release;
	http_submit(rq, &tj->hj);
}

/*
 * wait.c: the long-polls of id are due; answer them all from one read.
 * One past its deadline is expired first, on the writer, a job per
 * waiter (rare: the sweeper expires it within a second); while the
 * broker stops, they are answered with it as it is stored.
 */
static void
api_intent_woken(struct worker *w, const char *id, const struct wait_reply *rs,
    size_t n)
{
	struct intent_row	 r;
	struct request		 rq = { .w = w };
	size_t			 i;
	int			 found = api_intent_load(w, id, &r);

	if (found == API_DUE && !rs[0].closing) {
		for (i = 0; i < n; i++) {
			rq.req = rs[i].req;
			rq.t0 = http_now_us();
			api_touch(&rq, id, "", rs[i].audience,
			    touch_answer_waiter);
		}
		return;
	}
	if (found == API_DUE)
		found = w->store->ops->intent_get(w->store, id,
		    STORE_APPROVALS, &r);
	if (found != 1) {
		for (i = 0; i < n; i++)
			http_reply_error_to(w, rs[i].req, found == 0 ?
			    E_NOT_FOUND : E_UNAVAILABLE, NULL);
		return;
	}
	answer_waiters(w, &r, rs, n);
	intent_row_clear(&r);
}

void
api_intent_get(struct request *rq)
{
	static const char *const keys[] = { "wait", NULL };
	struct evkeyvalq	 q;
	struct intent_row	 r;
	int64_t			 wait;
	int			 found, audience;

	if (input_query(rq, NULL, &q) == -1 ||
	    input_query_int(rq, &q, keys[0], 0, WAIT_MAX_SECONDS, 0,
	    "wait must be 0..60 seconds", &wait) == -1) {
		evhttp_clear_headers(&q);
		return;
	}
	evhttp_clear_headers(&q);
	found = intent_id_valid(rq->id) ?
	    api_intent_load(rq->w, rq->id, &r) : 0;
	if (found == API_DUE) {
		api_touch(rq, rq->id, rq->peer->identity, 0,
		    touch_answer_get);
		return;
	}
	if (found == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if (found == 0 || !api_may_read(rq->w, rq->peer->identity, &r)) {
		if (found)
			intent_row_clear(&r);
		http_reply_error(rq, E_NOT_FOUND, "no such intent");
		return;
	}
	audience = strcmp(r.agent, rq->peer->identity) == 0 ? ANSWER_AGENT :
	    ANSWER_READER;
	if (wait > 0 && r.status == ST_PENDING) {
		intent_row_clear(&r);
		if (wait_hold(rq, rq->id, (int)wait, audience,
		    api_intent_woken) == -1) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    rq->req), "Retry-After", "1");
			metrics_rate_limited(&rq->w->metrics,
			    METRICS_LIMIT_WAITS);
			http_reply_error(rq, E_RATE_LIMITED, "too many "
			    "waiting requests; retry later");
		}
		return;
	}
	answer_intent(rq, 200, &r, answer_grant_for(rq->w, &r, audience,
	    clock_now()));
	intent_row_clear(&r);
}

/*
 * Every grant key, the signing one first.  Cacheable for JWKS_MAX_AGE
 * (proto/README.md): long against a grant's 60 s, so a busy tool fetches
 * it rarely, short enough that a rotation's steps take minutes — each
 * step waits this long for every tool's cache to hold the new set.
 */
void
api_jwks(struct request *rq)
{
	struct grant_keyring	*r = grant_signer_keys(&rq->w->broker->grant);
	char			 cc[64];

	snprintf(cc, sizeof(cc), "public, max-age=%d", JWKS_MAX_AGE);
	evhttp_add_header(evhttp_request_get_output_headers(rq->req),
	    "Cache-Control", cc);
	http_reply_text(rq, 200, "application/jwk-set+json", r->jwks,
	    strlen(r->jwks));
	grant_keyring_unref(r);
}

void
api_healthz(struct request *rq)
{
	http_reply_json(rq, 200, json_pack("{ss}", "status", "ok"));
}

/*
 * The counters of every thread and of the commits, and the gauges the
 * database holds, read in one statement through indexes (so an offline
 * toolgatectl --db change shows too).  A database that cannot be read
 * answers 503: a scrape that fails is what an alert sees, not zeros.
 */
void
api_metrics(struct request *rq)
{
	const struct metrics	*all[BROKER_MAX_THREADS + 1];
	struct metrics_gauges	 g;
	struct broker		*b = rq->w->broker;
	struct store		*s = rq->w->store;
	char			*text, *t;
	size_t			 len;
	int			 i;

	for (i = 0; i < b->nworkers; i++)
		all[i] = &b->workers[i].metrics;
	all[i] = &b->shared_metrics;
	g.now = clock_now();
	g.version = TOOLGATE_VERSION;
	if (s->ops->stats(s, g.now, &g.db) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if ((text = metrics_render(all, (size_t)b->nworkers + 1, &g,
	    &len)) == NULL) {
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	if (events_metrics(rq->w, &text, &len) == -1) {
		free(text);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if ((t = realloc(text, len + TRUST_METRICS_MAX)) == NULL) {
		free(text);
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	text = t;
	trust_metrics(b, text, len + TRUST_METRICS_MAX, &len);
	http_reply_text(rq, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

void
api_policy_get(struct request *rq)
{
	struct store	*s = rq->w->store;
	int64_t		 version;
	char		*body = NULL, sha[65];
	size_t		 len = 0;
	json_t		*doc;

	if (s->ops->policy_current(s, &version, &body, &len) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	canon_sha256_hex(body ? body : "", len, sha);
	doc = body ? json_loadb(body, len, 0, NULL) : NULL;
	/* "text": the bytes as applied, for a round trip that makes no new
	 * version (policy show > p.json && policy apply p.json). */
	http_reply_json(rq, 200, json_pack("{sI ss so so}", "version",
	    (json_int_t)version, "sha256", sha, "policy",
	    doc ? doc : json_null(), "text", body ? json_stringn(body, len) :
	    json_null()));
	free(body);
}

void
api_policy_history(struct request *rq)
{
	static const char *const keys[] = { "before", "limit", NULL };
	struct evkeyvalq	 q;
	int64_t			 before, limit;
	json_t			*page;

	if (input_query(rq, keys, &q) == -1 ||
	    input_query_int(rq, &q, "before", 0, INT64_MAX, 0,
	    "before must be a policy version", &before) == -1 ||
	    input_query_int(rq, &q, "limit", 1, POLICY_HISTORY_LIMIT_MAX,
	    POLICY_HISTORY_LIMIT, "limit must be 1 to 1000", &limit) == -1) {
		evhttp_clear_headers(&q);
		return;
	}
	evhttp_clear_headers(&q);
	if ((page = policy_versions_json(rq->w->store, before, limit)) ==
	    NULL) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	http_reply_json(rq, 200, page);
}

/* A policy applied, run on the writer in the next batch: the decisions
 * after it in that batch are decided under it, and a locked database
 * stalls the writer, never this thread's loop. */
struct policy_job {
	struct http_job		 hj;		/* first */
	char			*text, *who;
	size_t			 len;
	int64_t			 version;
	int			 applied;	/* 0: identical to version */
};

static enum reason
policy_job_run(struct decider *d, struct commit_job *j)
{
	struct policy_job	*pj = (struct policy_job *)j;
	int			 earlier = d->changed.policy;
	enum reason		 rc;

	/* changed.policy is the batch's: this job's own is kept apart. */
	d->changed.policy = 0;
	rc = lc_policy_apply(d, pj->text, pj->len, pj->who, clock_now(),
	    &pj->version);
	pj->applied = d->changed.policy;
	d->changed.policy |= earlier;
	return (rc);
}

static void
policy_job_answer(struct request *rq, struct http_job *hj)
{
	const struct policy_job	*pj = (struct policy_job *)hj;
	char			 sha[65];

	if (hj->job.result != REASON_OK) {
		http_reply_error(rq, hj->job.result, NULL);
		return;
	}
	canon_sha256_hex(pj->text, pj->len, sha);
	if (pj->applied)
		log_info("policy version %lld applied by %s",
		    (long long)pj->version, pj->who);
	else
		log_info("policy from %s is identical to version %lld: no new "
		    "version", pj->who, (long long)pj->version);
	http_reply_json(rq, 200, json_pack("{sI ss sb}", "version",
	    (json_int_t)pj->version, "sha256", sha, "unchanged",
	    !pj->applied));
}

static void
policy_job_release(struct http_job *hj)
{
	struct policy_job	*pj = (struct policy_job *)hj;

	free(pj->text);
	free(pj->who);
	free(pj);
}

void
api_policy_put(struct request *rq)
{
	struct policy_job	*pj;
	struct policy		*p;
	json_t			*problems = NULL;
	const char		*body;
	size_t			 len;

	if (!input_require_json(rq))
		return;
	body = http_body(rq, &len);
	if ((p = policy_parse(body ? body : "", len, &problems)) == NULL) {
		metrics_error(&rq->w->metrics, E_INVALID_POLICY);
		http_reply_json(rq, 400, json_pack("{ss ss so}", "error",
		    reason_code(E_INVALID_POLICY), "message", "the policy is "
		    "invalid; nothing was applied", "problems",
		    problems ? problems : json_array()));
		return;
	}
	policy_free(p);
	if ((pj = calloc(1, sizeof(*pj))) == NULL ||
	    (pj->text = malloc(len + 1)) == NULL ||
	    (pj->who = strdup(rq->peer->identity)) == NULL) {
		if (pj != NULL)
			free(pj->text);
		free(pj);
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return;
	}
	if (body != NULL && len > 0)
		memcpy(pj->text, body, len);
	pj->text[len] = '\0';
	pj->len = len;
	pj->hj.job.run = policy_job_run;
	pj->hj.answer = policy_job_answer;
	pj->hj.release = policy_job_release;
	http_submit(rq, &pj->hj);
}
