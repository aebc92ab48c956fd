/*
 * ops: the operator's and the tool's endpoints of CONTRACT §3-§4 — kill
 * switch status, trip and reset, single-use grant redemption, and the
 * audit trail.  Handlers only read the request and answer: trips, resets
 * and redemptions are lifecycle transitions, each a job of the writer's
 * next batch (commit.c) answered only after it commits, and their
 * changes are published to every thread (a trip's rejections wake their
 * long-polls).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "clock.h"
#include "input.h"
#include "killswitch.h"
#include "log.h"
#include "ops.h"
#include "text.h"

#define OPS_AUDIT_LIMIT		100
#define OPS_AUDIT_LIMIT_MAX	1000
#define OPS_TARGET_MAX		255	/* code points; bytes checked later */
#define OPS_GRANT_MAX		(INPUT_BODY_MAX)

void
api_killswitch_get(struct request *rq)
{
	json_t	*status;

	if ((status = ks_status(rq->w->store)) == NULL) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	http_reply_json(rq, 200, status);
}

/* A switch tripped or reset, run on the writer in the next batch: the
 * decisions after it in that batch are decided under it, and a locked
 * database stalls the writer, never this thread's loop. */
struct switch_job {
	struct http_job		 hj;		/* first */
	char			*who, *target, *reason;	/* target may be NULL */
	enum ks_scope		 scope;
	unsigned		 flags;		/* LC_TRIP_* */
	int64_t			 id;		/* reset: given; trip: made */
	struct lc_trip_refusal	 why;		/* trip */
	const char		*reset_why;	/* reset: static text */
	json_t			*rejected;	/* trip: the ids it rejected */
};

static void
switch_job_free(struct switch_job *sj)
{
	json_decref(sj->rejected);
	free(sj->who);
	free(sj->target);
	free(sj->reason);
	free(sj);
}

/* A switch job for rq, its texts copied; NULL (answered) when out of
 * memory. */
static struct switch_job *
switch_job_new(struct request *rq, const char *target, const char *reason)
{
	struct switch_job	*sj;

	if ((sj = calloc(1, sizeof(*sj))) == NULL ||
	    (sj->who = strdup(rq->peer->identity)) == NULL ||
	    (target != NULL && (sj->target = strdup(target)) == NULL) ||
	    (sj->reason = strdup(reason)) == NULL) {
		if (sj != NULL)
			switch_job_free(sj);
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return (NULL);
	}
	return (sj);
}

/* The ids d's batch changed from the n-th on, as a JSON array. */
static json_t *
ops_changed_since(const struct lc_changes *ch, size_t n)
{
	json_t	*ids = json_array();
	size_t	 i;

	for (i = n; ids != NULL && i < ch->n; i++)
		json_array_append_new(ids, json_string(ch->ids[i]));
	return (ids);
}

static enum reason
trip_run(struct decider *d, struct commit_job *j)
{
	struct switch_job	*sj = (struct switch_job *)j;
	size_t			 before = d->changed.n;
	enum reason		 rc;

	rc = lc_trip(d, sj->who, sj->scope, sj->target, sj->reason,
	    sj->flags, clock_now(), &sj->id, &sj->why);
	if (rc == REASON_OK &&
	    (sj->rejected = ops_changed_since(&d->changed, before)) == NULL)
		rc = E_UNAVAILABLE;
	return (rc);
}

/* 400 unknown_target: the message, the target and the closest known
 * name (null when none is close), so a script can offer it. */
static void
ops_unknown_target(struct request *rq, const char *target,
    const struct lc_trip_refusal *why)
{
	metrics_error(&rq->w->metrics, E_UNKNOWN_TARGET);
	http_reply_json(rq, reason_status(E_UNKNOWN_TARGET), json_pack(
	    "{ss ss ss so}", "error", reason_code(E_UNKNOWN_TARGET),
	    "message", why->message, "target", target, "closest",
	    why->closest[0] ? json_string(why->closest) : json_null()));
}

/* After the commit, which made the switch visible to every thread's next
 * answer and answered every long-poll on an intent it rejected. */
static void
trip_answer(struct request *rq, struct http_job *hj)
{
	struct switch_job	*sj = (struct switch_job *)hj;
	const char		*scope_s = ks_scope_name(sj->scope);
	json_t			*sw;

	switch (hj->job.result) {
	case REASON_OK:
		break;
	case E_UNKNOWN_TARGET:
		log_info("kill switch refused: %s named %s %s, which the policy "
		    "in force does not know", sj->who, scope_s, sj->target);
		ops_unknown_target(rq, sj->target, &sj->why);
		return;
	default:
		http_reply_error(rq, hj->job.result, hj->job.result ==
		    E_BAD_REQUEST ? sj->why.message : NULL);
		return;
	}
	log_info("kill switch %lld tripped by %s: %s%s%s, %zu pending "
	    "rejected", (long long)sj->id, sj->who, scope_s,
	    sj->target ? " " : "", sj->target ? sj->target : "",
	    json_array_size(sj->rejected));
	if ((sw = ks_get(rq->w->store, sj->id)) == NULL) {
		http_reply_error(rq, E_INTERNAL, "the switch is engaged but "
		    "could not be read back: GET /v1/killswitch");
		return;
	}
	json_object_set(sw, "rejected", sj->rejected);
	http_reply_json(rq, 201, sw);
}

static void
switch_job_release(struct http_job *hj)
{
	switch_job_free((struct switch_job *)hj);
}

void
api_killswitch_trip(struct request *rq)
{
	static const char *const keys[] = { "scope", "target", "reason",
	    "reject_pending", "force", NULL };
	struct switch_job	*sj;
	enum ks_scope		 scope;
	json_t			*doc;
	const char		*scope_s, *target, *reason;
	int			 reject, force;

	if ((doc = input_json(rq, keys, INPUT_BODY_MAX, 0)) == NULL)
		return;
	if (input_string(rq, doc, "scope", 16, 0, &scope_s) == -1 ||
	    input_string(rq, doc, "target", OPS_TARGET_MAX, 0, &target) ==
	    -1 || input_string(rq, doc, "reason", TEXT_MAX_REASON,
	    INPUT_REQUIRED | INPUT_NOT_BLANK, &reason) == -1 ||
	    input_bool(rq, doc, "reject_pending", 0, &reject) == -1 ||
	    input_bool(rq, doc, "force", 0, &force) == -1)
		goto done;
	if (scope_s == NULL || ks_scope_parse(scope_s, &scope) == -1) {
		http_reply_error(rq, E_BAD_REQUEST,
		    "\"scope\" must be \"global\", \"agent\" or \"tool\"");
		goto done;
	}
	if ((sj = switch_job_new(rq, target, reason)) == NULL)
		goto done;
	sj->scope = scope;
	sj->flags = (reject ? LC_TRIP_REJECT_PENDING : 0) |
	    (force ? LC_TRIP_FORCE : 0);
	sj->hj.job.run = trip_run;
	sj->hj.answer = trip_answer;
	sj->hj.release = switch_job_release;
	http_submit(rq, &sj->hj);
 done:
	json_decref(doc);
}

/* The {id} of /v1/killswitch/{id}/reset: 1..INT64_MAX, digits only. */
static int64_t
ops_ks_id(const char *s)
{
	char		*end;
	long long	 v;

	if (s == NULL || s[0] < '1' || s[0] > '9' || strlen(s) > 18)
		return (0);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return (0);
	return ((int64_t)v);
}

static enum reason
reset_run(struct decider *d, struct commit_job *j)
{
	struct switch_job	*sj = (struct switch_job *)j;

	return (lc_reset(d, sj->who, sj->id, sj->reason, clock_now(),
	    &sj->reset_why));
}

static void
reset_answer(struct request *rq, struct http_job *hj)
{
	struct switch_job	*sj = (struct switch_job *)hj;
	enum reason		 rc = hj->job.result;
	json_t			*sw;

	if (rc != REASON_OK) {
		http_reply_error(rq, rc, rc == E_BAD_REQUEST ? sj->reset_why :
		    rc == E_NOT_FOUND ? "no such engaged kill switch" : NULL);
		return;
	}
	log_info("kill switch %lld reset by %s", (long long)sj->id, sj->who);
	if ((sw = ks_get(rq->w->store, sj->id)) == NULL) {
		http_reply_error(rq, E_INTERNAL, "the switch is reset but "
		    "could not be read back");
		return;
	}
	http_reply_json(rq, 200, sw);
}

void
api_killswitch_reset(struct request *rq)
{
	static const char *const keys[] = { "reason", NULL };
	struct switch_job	*sj;
	json_t			*doc;
	const char		*reason;
	int64_t			 id;

	if ((doc = input_json(rq, keys, INPUT_BODY_MAX, 0)) == NULL)
		return;
	if (input_string(rq, doc, "reason", TEXT_MAX_REASON, INPUT_REQUIRED |
	    INPUT_NOT_BLANK, &reason) == -1)
		goto done;
	if ((id = ops_ks_id(rq->id)) == 0) {
		http_reply_error(rq, E_NOT_FOUND,
		    "no such engaged kill switch");
		goto done;
	}
	if ((sj = switch_job_new(rq, NULL, reason)) == NULL)
		goto done;
	sj->id = id;
	sj->hj.job.run = reset_run;
	sj->hj.answer = reset_answer;
	sj->hj.release = switch_job_release;
	http_submit(rq, &sj->hj);
 done:
	json_decref(doc);
}

static const char *
ops_redeem_message(enum reason r)
{
	switch (r) {
	case R_KILL_SWITCH:
		return ("a kill switch covers this grant");
	case E_NOT_PERMITTED:
		return ("this identity may not redeem grants for this tool");
	case E_ALREADY_REDEEMED:
		return ("this grant was already redeemed, or its intent is no "
		    "longer allowed");
	default:
		return (NULL);
	}
}

/* A redemption, run on the writer in the next batch (so it shares the
 * batch's fsync, and a locked database stalls the writer, never this
 * thread's loop). */
struct redeem_job {
	struct http_job		 hj;		/* first */
	json_t			*claims;	/* the verified grant's */
	char			*who;
	int64_t			 now;
};

static const char *
redeem_claim(const struct redeem_job *rj, const char *name)
{
	return (json_string_value(json_object_get(rj->claims, name)));
}

static enum reason
redeem_run(struct decider *d, struct commit_job *j)
{
	struct redeem_job	*rj = (struct redeem_job *)j;

	return (lc_redeem(d, rj->who, redeem_claim(rj, "jti"),
	    redeem_claim(rj, "sub"), redeem_claim(rj, "tool"), rj->now));
}

static void
redeem_answer(struct request *rq, struct http_job *hj)
{
	struct redeem_job	*rj = (struct redeem_job *)hj;
	enum reason		 rc = hj->job.result;
	const char		*id = redeem_claim(rj, "jti");
	const char		*tool = redeem_claim(rj, "tool");
	char			 at[RFC3339_LEN];

	if (rc != REASON_OK) {
		log_info("redeem %s by %s refused: %s", id, rj->who,
		    reason_code(rc));
		http_reply_error(rq, rc, ops_redeem_message(rc));
		return;
	}
	log_info("grant %s redeemed by %s (%s)", id, rj->who, tool);
	clock_rfc3339(rj->now, at);
	http_reply_json(rq, 200, json_pack("{ss ss ss ss ss}", "status",
	    "redeemed", "intent_id", id, "tool", tool, "agent",
	    redeem_claim(rj, "sub"), "redeemed_at", at));
}

static void
redeem_release(struct http_job *hj)
{
	struct redeem_job	*rj = (struct redeem_job *)hj;

	json_decref(rj->claims);
	free(rj->who);
	free(rj);
}

void
api_grant_redeem(struct request *rq)
{
	static const char *const keys[] = { "grant", NULL };
	struct redeem_job	*rj;
	json_t			*doc, *cl = NULL;
	const char		*tok, *why;
	int64_t			 now = clock_now();

	if ((doc = input_json(rq, keys, INPUT_BODY_MAX, 0)) == NULL)
		return;
	if (input_string(rq, doc, "grant", OPS_GRANT_MAX, INPUT_REQUIRED,
	    &tok) == -1)
		goto done;
	if ((cl = grant_verify(&rq->w->broker->grant, tok, now, &why)) ==
	    NULL) {
		log_info("redeem refused: %s: %s", rq->peer->identity, why);
		http_reply_error(rq, E_INVALID_GRANT, why);
		goto done;
	}
	if ((rj = calloc(1, sizeof(*rj))) == NULL ||
	    (rj->who = strdup(rq->peer->identity)) == NULL) {
		free(rj);
		http_reply_error(rq, E_INTERNAL, "out of memory");
		goto done;
	}
	rj->claims = cl;
	cl = NULL;
	rj->now = now;
	rj->hj.job.run = redeem_run;
	rj->hj.answer = redeem_answer;
	rj->hj.release = redeem_release;
	http_submit(rq, &rj->hj);
 done:
	json_decref(cl);
	json_decref(doc);
}

struct audit_page {
	json_t	*items;
	int64_t	 last;
	int	 failed;
};

static int
ops_audit_cb(json_t *rec, void *arg)
{
	struct audit_page	*pg = arg;

	pg->last = json_integer_value(json_object_get(rec, "seq"));
	if (json_array_append(pg->items, rec) == -1)
		pg->failed = 1;
	return (pg->failed);
}

void
api_audit_list(struct request *rq)
{
	static const char *const keys[] = { "after", "limit", NULL };
	struct evkeyvalq	 q;
	struct audit_page	 pg;
	struct audit_cut	 cut;
	struct store		*s = rq->w->store;
	json_t			*ans;
	int64_t			 after, limit;
	int			 cut_found;

	if (input_query(rq, keys, &q) == -1 ||
	    input_query_int(rq, &q, "after", 0, INT64_MAX, 0,
	    "after must be a sequence number", &after) == -1 ||
	    input_query_int(rq, &q, "limit", 1, OPS_AUDIT_LIMIT_MAX,
	    OPS_AUDIT_LIMIT, "limit must be 1 to 1000", &limit) == -1) {
		evhttp_clear_headers(&q);
		return;
	}
	evhttp_clear_headers(&q);
	pg.items = json_array();
	pg.last = after;
	pg.failed = 0;
	if (pg.items == NULL || audit_each(s, after, limit, ops_audit_cb,
	    &pg) == -1 || pg.failed ||
	    (cut_found = s->ops->audit_cut_get(s, &cut)) == -1) {
		json_decref(pg.items);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	ans = json_pack("{so sI}", "items", pg.items, "next_after",
	    (json_int_t)pg.last);
	/* A pruned chain says where what is kept starts (proto/audit.md). */
	if (cut_found) {
		if (ans != NULL)
			json_object_set_new(ans, "start",
			    json_string(cut.checkpoint));
		free(cut.checkpoint);
	}
	http_reply_json(rq, 200, ans);
}
