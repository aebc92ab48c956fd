/*
 * approvals: the human-approval queue (CONTRACT §4).  Each approve or
 * reject is decided by the database inside one BEGIN IMMEDIATE
 * transaction — roles, status, expiry, distinct approvers, the count that
 * releases — so concurrent approvers on any thread or process can never
 * release twice, lose an approval, or release with too few.  Waiters on
 * the intent are woken after the commit.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "audit.h"
#include "clock.h"
#include "log.h"
#include "server.h"
#include "store.h"

#define APPROVALS_DEFAULT_LIMIT	100
#define APPROVALS_MAX_LIMIT	1000
#define APPROVAL_MAX_TEXT	1024

/* 1 if the caller may use the approval API at all. */
static int
approvals_allowed(struct request *rq)
{
	if (api_policy_refresh(rq->w) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return (0);
	}
	if (rq->w->policy == NULL ||
	    (!policy_is_approver(rq->w->policy, rq->peer->identity) &&
	    !policy_is_operator(rq->w->policy, rq->peer->identity))) {
		http_reply_error(rq, E_FORBIDDEN, "only approvers and "
		    "operators may use the approval queue");
		return (0);
	}
	return (1);
}

static int
approvals_parse_limit(const char *s, int64_t *out)
{
	char	*end;
	long	 v;

	if (s == NULL) {
		*out = APPROVALS_DEFAULT_LIMIT;
		return (0);
	}
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 1 || v > APPROVALS_MAX_LIMIT)
		return (-1);
	*out = v;
	return (0);
}

void
api_approvals_list(struct request *rq)
{
	struct evkeyvalq	 q;
	const char		*status;
	int64_t			 limit;
	json_t			*items;

	if (!approvals_allowed(rq))
		return;
	TAILQ_INIT(&q);
	if (rq->query != NULL && evhttp_parse_query_str(rq->query, &q) != 0) {
		http_reply_error(rq, E_BAD_REQUEST, "malformed query string");
		return;
	}
	status = evhttp_find_header(&q, "status");
	if (status == NULL)
		status = "pending";
	if ((strcmp(status, "pending") != 0 && strcmp(status, "allowed") != 0 &&
	    strcmp(status, "rejected") != 0 && strcmp(status, "expired") != 0) ||
	    approvals_parse_limit(evhttp_find_header(&q, "limit"), &limit)) {
		evhttp_clear_headers(&q);
		http_reply_error(rq, E_BAD_REQUEST, "status must be pending, "
		    "allowed, rejected or expired; limit 1..1000");
		return;
	}
	items = json_array();
	if (store_intent_list(rq->w->db, status, limit, items) == -1) {
		evhttp_clear_headers(&q);
		json_decref(items);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	evhttp_clear_headers(&q);
	http_reply_json(rq, 200, json_pack("{so}", "items", items));
}

/*
 * The optional or required text field of an approve/reject body.  Returns
 * 0 and *text (borrowed from *doc, may be NULL when optional) or -1 after
 * answering 400.
 */
static int
approvals_body_text(struct request *rq, const char *field, int required,
    json_t **doc, const char **text)
{
	const char	*body;
	size_t		 len;
	json_t		*v;

	*doc = NULL;
	*text = NULL;
	body = http_body(rq, &len);
	if (body != NULL && (*doc = json_loadb(body, len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		http_reply_error(rq, E_BAD_REQUEST, "the body must be a JSON "
		    "object");
		return (-1);
	}
	v = *doc ? json_object_get(*doc, field) : NULL;
	if ((*doc != NULL && (!json_is_object(*doc) || json_object_size(*doc) >
	    (v != NULL ? 1u : 0u))) || (v != NULL && !json_is_string(v)) ||
	    (v != NULL && json_string_length(v) > APPROVAL_MAX_TEXT) ||
	    (required && (v == NULL || json_string_length(v) == 0))) {
		http_reply_error(rq, E_BAD_REQUEST, required ?
		    "the body must be {\"reason\": \"why\"} with a non-empty "
		    "reason of at most 1024 characters" :
		    "the body may only hold {\"comment\": \"text\"} (at most "
		    "1024 characters)");
		json_decref(*doc);
		*doc = NULL;
		return (-1);
	}
	*text = json_string_value(v);
	return (0);
}

static int
approvals_holds_role(struct worker *w, const char *who, json_t *roles)
{
	json_t	*r;
	size_t	 i;

	json_array_foreach(roles, i, r)
		if (policy_has_role(w->policy, who, json_string_value(r)))
			return (1);
	return (0);
}

/* Expired by the clock though the sweeper has not run yet: record it. */
static enum reason
approvals_expire_now(struct worker *w, json_t *view, int64_t now)
{
	const char	*id = json_string_value(json_object_get(view, "id"));
	json_t		*d;
	int		 rc;

	if (store_intent_close(w->db, id, "expired", now, NULL, NULL) == -1)
		return (E_UNAVAILABLE);
	d = json_pack("{ss}", "status", "expired");
	rc = audit_append(w->db, now, "toolgated", "expiry", id, d);
	json_decref(d);
	return (rc == -1 ? E_UNAVAILABLE : E_ALREADY_DECIDED);
}

/*
 * Every check an approve or reject must pass, in the contract's order,
 * inside the transaction.  REASON_OK or the error to answer.
 */
static enum reason
approvals_check(struct worker *w, const char *who, json_t *view,
    int64_t expires_at, int64_t now)
{
	const char	*status = json_string_value(json_object_get(view,
	    "status"));

	if (!policy_is_approver(w->policy, who) &&
	    !policy_is_operator(w->policy, who))
		return (E_FORBIDDEN);
	if (strcmp(who, json_string_value(json_object_get(view, "agent"))) ==
	    0)
		return (E_SELF_APPROVAL);
	if (!approvals_holds_role(w, who, json_object_get(view,
	    "approver_roles")))
		return (E_NOT_AN_APPROVER);
	if (ks_refresh(w->db, &w->ks) == -1)
		return (E_UNAVAILABLE);
	if (ks_covers(&w->ks, json_string_value(json_object_get(view,
	    "agent")), json_string_value(json_object_get(view, "tool"))))
		return (E_KILL_SWITCH_LOCKED);
	if (strcmp(status, "pending") != 0)
		return (E_ALREADY_DECIDED);
	if (now >= expires_at)
		return (approvals_expire_now(w, view, now));
	return (REASON_OK);
}

struct verdict {
	int		 approve;	/* 1 approve, 0 reject */
	const char	*text;		/* comment or reason */
	int		 count;		/* approvals held after an approve */
	int		 required;
	const char	*status;	/* resulting status */
};

static enum reason
approvals_apply(struct worker *w, const char *who, const char *id,
    struct verdict *v, int64_t now)
{
	json_t	*d;
	int	 rc;

	v->status = "pending";
	if (v->approve) {
		rc = store_approval_add(w->db, id, who, now, v->text, &v->count);
		if (rc == 1)
			return (E_ALREADY_APPROVED);
		if (rc == -1)
			return (E_UNAVAILABLE);
		if (v->count >= v->required) {
			if (store_intent_close(w->db, id, "allowed", now, NULL,
			    NULL) != 0)
				return (E_UNAVAILABLE);
			v->status = "allowed";
		}
		d = json_pack("{ss ss? si si ss}", "by", who, "comment",
		    v->text, "approvals", v->count, "approvals_required",
		    v->required, "status", v->status);
	} else {
		if (store_intent_close(w->db, id, "rejected", now, who,
		    v->text) != 0)
			return (E_UNAVAILABLE);
		v->status = "rejected";
		d = json_pack("{ss ss}", "by", who, "reason", v->text);
	}
	rc = audit_append(w->db, now, who, v->approve ? "approval" :
	    "rejection", id, d);
	json_decref(d);
	return (rc == -1 ? E_UNAVAILABLE : REASON_OK);
}

/* Load, check and apply in one transaction.  REASON_OK or an error. */
static enum reason
approvals_decide(struct worker *w, const char *who, const char *id,
    struct verdict *v, int64_t now)
{
	json_t		*view = NULL;
	enum reason	 r;
	int64_t		 expires_at;
	int		 found;

	if (db_begin(w->db) == -1)
		return (E_UNAVAILABLE);
	if (api_policy_refresh(w) == -1 || w->policy == NULL) {
		r = E_UNAVAILABLE;
		goto done;
	}
	found = store_intent_get(w->db, id, &view);
	if (found != 1) {
		r = found == 0 ? E_NOT_FOUND : E_UNAVAILABLE;
		goto done;
	}
	v->required = (int)json_integer_value(json_object_get(view,
	    "approvals_required"));
	if (clock_parse_rfc3339(json_string_value(json_object_get(view,
	    "expires_at")), &expires_at) == -1)
		expires_at = 0;	/* not pending: no expires_at in the view */
	r = approvals_check(w, who, view, expires_at, now);
	if (r == E_ALREADY_DECIDED && strcmp(json_string_value(
	    json_object_get(view, "status")), "pending") == 0) {
		/* Expired just now: keep the expiry record. */
		json_decref(view);
		return (db_commit(w->db) == 0 ? E_ALREADY_DECIDED :
		    E_UNAVAILABLE);
	}
	if (r == REASON_OK)
		r = approvals_apply(w, who, id, v, now);
	if (r == REASON_OK) {
		json_decref(view);
		return (db_commit(w->db) == 0 ? REASON_OK : E_UNAVAILABLE);
	}
 done:
	json_decref(view);
	db_rollback(w->db);
	return (r);
}

static void
approvals_verdict(struct request *rq, int approve)
{
	struct verdict	 v = { .approve = approve };
	json_t		*doc, *view = NULL;
	enum reason	 r;
	int64_t		 now = clock_now();

	if (!approvals_allowed(rq) || approvals_body_text(rq, approve ?
	    "comment" : "reason", !approve, &doc, &v.text) == -1)
		return;
	r = approvals_decide(rq->w, rq->peer->identity, rq->id, &v, now);
	if (r == REASON_OK || r == E_ALREADY_DECIDED)
		wait_wake(rq->w->broker, rq->id);
	if (r != REASON_OK) {
		json_decref(doc);
		http_reply_error(rq, r, NULL);
		return;
	}
	log_info("%s %s by %s: %d/%d, %s", approve ? "approval" : "rejection",
	    rq->id, rq->peer->identity, v.count, v.required, v.status);
	json_decref(doc);
	if (store_intent_get(rq->w->db, rq->id, &view) != 1) {
		http_reply_error(rq, E_UNAVAILABLE, "recorded; reading it "
		    "back failed");
		return;
	}
	http_reply_json(rq, 200, view);
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
 * Sweeper (worker 0, every second): pending intents past expires_at become
 * "expired", one audit record each, in one transaction per batch.
 */
void
approvals_sweep(struct worker *w)
{
	json_t	*ids = json_array(), *id, *d;
	size_t	 i;
	int64_t	 now = clock_now();
	int	 ok = 1;

	if (ids == NULL || db_begin(w->db) == -1) {
		json_decref(ids);
		return;
	}
	if (store_expired_due(w->db, now, 100, ids) == -1)
		ok = 0;
	d = json_pack("{ss}", "status", "expired");
	json_array_foreach(ids, i, id)
		if (ok && (store_intent_close(w->db, json_string_value(id),
		    "expired", now, NULL, NULL) == -1 ||
		    audit_append(w->db, now, "toolgated", "expiry",
		    json_string_value(id), d) == -1))
			ok = 0;
	json_decref(d);
	if (!ok || db_commit(w->db) == -1) {
		db_rollback(w->db);
		json_decref(ids);
		return;
	}
	json_array_foreach(ids, i, id) {
		log_info("expired %s", json_string_value(id));
		wait_wake(w->broker, json_string_value(id));
	}
	json_decref(ids);
}
