/*
 * api: the handlers of CONTRACT §3 and the policy endpoints of §4.  The
 * decision path is: verify the intent (intent.c), then in one BEGIN
 * IMMEDIATE transaction refresh the policy snapshot, claim (iss, jti),
 * evaluate, store the intent and its audit record, commit — and only then
 * answer.  Nothing here parses JWS or policy text itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "log.h"
#include "server.h"
#include "store.h"

static const char *const outcome_status[] = { "allowed", "pending", "denied" };
static const char *const outcome_decision[] = { "allow", "pending", "deny" };

int
api_policy_refresh(struct worker *w)
{
	struct policy	*p;
	int64_t		 version;
	char		*body;
	size_t		 len = 0;

	if (store_policy_current(w->db, &version, NULL, NULL) == -1)
		return (-1);
	if (version == w->policy_version)
		return (0);
	if (store_policy_current(w->db, &version, &body, &len) == -1)
		return (-1);
	p = policy_parse(body, len, NULL);
	free(body);
	if (p == NULL) {
		/* Validated before it was stored; if it no longer parses,
		 * fail closed rather than keep deciding on a stale one. */
		log_warnx("%s: stored policy version %lld does not load",
		    __func__, (long long)version);
		return (-1);
	}
	policy_free(w->policy);
	w->policy = p;
	w->policy_version = version;
	log_info("thread %d: policy version %lld loaded", w->idx,
	    (long long)version);
	return (0);
}

/* The policy's view of a call; no policy at all means default deny, and
 * an engaged kill switch covering it overrides everything. */
static void
api_evaluate(struct worker *w, const struct intent *in, struct evaluation *ev)
{
	if (w->policy == NULL || ks_covers(&w->ks, in->iss, in->tool)) {
		memset(ev, 0, sizeof(*ev));
		ev->outcome = OUTCOME_DENY;
		ev->reason = w->policy ? R_KILL_SWITCH : R_UNKNOWN_PRINCIPAL;
		ev->tier_index = -1;
		return;
	}
	policy_evaluate(w->policy, in->iss, in->tool,
	    in->has_amount ? &in->amount : NULL, ev);
}

static char *
api_rule_json(const struct evaluation *ev, const struct intent *in)
{
	json_t	*rule;
	char	*text;

	if (ev->role == NULL)
		return (NULL);
	rule = json_pack("{ss sI ss}", "role", ev->role, "index",
	    (json_int_t)ev->rule_index, "tool", ev->rule_tool);
	if (rule != NULL && ev->tier_index >= 0) {
		json_object_set_new(rule, "tier",
		    json_integer(ev->tier_index));
		json_object_set_new(rule, "max", json_string(ev->tier_max));
		json_object_set_new(rule, "currency",
		    json_string(in->amount.currency));
	}
	text = rule ? canon_dump(rule) : NULL;
	json_decref(rule);
	return (text);
}

static char *
api_approver_roles_json(const struct evaluation *ev)
{
	json_t	*roles = json_array();
	char	*text;
	size_t	 i;

	for (i = 0; i < ev->n_approver_roles; i++)
		json_array_append_new(roles,
		    json_string(ev->approver_roles[i]));
	text = canon_dump(roles);
	json_decref(roles);
	return (text);
}

/* The args as the audit log keeps them: fields the policy names hidden. */
static json_t *
api_audit_args(const struct policy *p, const struct intent *in)
{
	json_t		*copy, *v;
	const char	*key;

	if (in->args == NULL)
		return (json_object());
	copy = json_copy(in->args);
	if (p == NULL || copy == NULL)
		return (copy);
	json_object_foreach(copy, key, v)
		if (policy_is_redacted(p, in->tool, key))
			json_object_set_new(copy, key,
			    json_string("[redacted]"));
	return (copy);
}

static int
api_audit_decision(struct worker *w, const struct intent_record *r,
    const struct intent *in, int64_t now)
{
	json_t	*d;
	int	 rc;

	d = json_pack("{ss ss ss sI sI ss so}", "status", r->status,
	    "reason_code", r->reason_code, "tool", r->tool,
	    "policy_version", (json_int_t)r->policy_version,
	    "approvals_required", (json_int_t)r->approvals_required,
	    "intent_sha256", r->intent_sha256,
	    "args", api_audit_args(w->policy, in));
	if (d == NULL)
		return (-1);
	if (in->has_amount)
		json_object_set_new(d, "amount", json_pack("{ss ss}",
		    "value", in->amount_text, "currency",
		    in->amount.currency));
	rc = audit_append(w->db, now, in->iss, "decision", r->id, d);
	json_decref(d);
	return (rc);
}

struct decision {
	struct intent_record	 rec;
	char			 id[40];
	char			*args, *rule, *approver_roles;
	struct evaluation	 ev;
};

static void
api_decision_fill(struct decision *d, struct worker *w,
    const struct intent *in, int64_t now)
{
	struct intent_record	*r = &d->rec;

	api_evaluate(w, in, &d->ev);
	d->args = in->args ? canon_dump(in->args) : NULL;
	d->rule = api_rule_json(&d->ev, in);
	d->approver_roles = api_approver_roles_json(&d->ev);
	memset(r, 0, sizeof(*r));
	r->id = d->id;
	r->agent = in->iss;
	r->jti = in->jti;
	r->tool = in->tool;
	r->args = d->args;
	r->amount_value = in->has_amount ? in->amount_text : NULL;
	r->amount_currency = in->has_amount ? in->amount.currency : NULL;
	r->agent_reason = in->reason;
	r->status = outcome_status[d->ev.outcome];
	r->decision = outcome_decision[d->ev.outcome];
	r->reason_code = reason_code(d->ev.reason);
	r->reason_text = reason_text(d->ev.reason);
	r->policy_version = w->policy_version;
	r->rule = d->rule;
	r->approvals_required = d->ev.approvals_required;
	r->approver_roles = d->approver_roles;
	r->intent_sha256 = in->payload_sha256;
	r->created_at = now;
	if (d->ev.outcome == OUTCOME_PENDING)
		r->expires_at = now + d->ev.approval_ttl;
	else
		r->decided_at = now;
}

static void
api_decision_free(struct decision *d)
{
	free(d->args);
	free(d->rule);
	free(d->approver_roles);
}

/* Decide and record in one transaction.  REASON_OK, or the error to answer. */
static enum reason
api_decide_commit(struct worker *w, const struct intent *in,
    struct decision *d, int64_t now)
{
	int	 seen;

	if (store_new_id(d->id, sizeof(d->id)) == -1 || db_begin(w->db) == -1)
		return (E_UNAVAILABLE);
	if (api_policy_refresh(w) == -1 || ks_refresh(w->db, &w->ks) == -1)
		goto unavailable;
	/* Kept until exp + skew: after that the intent is refused as
	 * expired anyway, so the row can go. */
	seen = store_jti_claim(w->db, in->iss, in->jti, in->exp + INTENT_SKEW);
	if (seen == 1) {
		db_rollback(w->db);
		return (E_REPLAY);
	}
	if (seen == -1)
		goto unavailable;
	api_decision_fill(d, w, in, now);
	if (store_intent_insert(w->db, &d->rec) == -1 ||
	    api_audit_decision(w, &d->rec, in, now) == -1 ||
	    db_commit(w->db) == -1)
		goto unavailable;
	return (REASON_OK);
 unavailable:
	db_rollback(w->db);
	return (E_UNAVAILABLE);
}

static void
api_answer_decision(struct request *rq, struct decision *d, int64_t now)
{
	json_t	*view = store_intent_json(&d->rec);
	int	 status = reason_status(d->ev.reason);

	metrics_decision(&rq->w->metrics, (int)d->ev.outcome);
	log_info("decision %s: %s %s -> %s (%s)", d->rec.id, d->rec.agent,
	    d->rec.tool, d->rec.status, d->rec.reason_code);
	if (view == NULL || (d->ev.outcome == OUTCOME_ALLOW &&
	    grant_attach(&rq->w->broker->grant, view, now) == -1)) {
		json_decref(view);
		http_reply_error(rq, E_INTERNAL, "the decision is recorded "
		    "but its answer could not be built: GET it");
		return;
	}
	http_reply_json(rq, status, view);
}

void
api_intent_post(struct request *rq)
{
	struct intent	 in;
	struct decision	 d;
	const char	*body, *msg = NULL;
	size_t		 len;
	enum reason	 r;
	int64_t		 now = clock_now();

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
	r = intent_verify(body ? body : "", len, &rq->peer->key,
	    rq->peer->identity, rq->w->broker->audience, now, &in, &msg);
	if (r != REASON_OK) {
		log_info("intent refused: %s: %s (%s)", rq->peer->identity,
		    reason_code(r), msg);
		http_reply_error(rq, r, msg);
		return;
	}
	memset(&d, 0, sizeof(d));
	if ((r = api_decide_commit(rq->w, &in, &d, now)) != REASON_OK)
		http_reply_error(rq, r, NULL);
	else
		api_answer_decision(rq, &d, now);
	api_decision_free(&d);
	intent_clear(&in);
}

static int
api_id_valid(const char *id)
{
	size_t	 i;

	if (id == NULL || strlen(id) != 35 || strncmp(id, "in_", 3) != 0)
		return (0);
	for (i = 3; i < 35; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return (0);
	return (1);
}

/* Agents see their own intents; approvers and operators see all. */
static int
api_may_read(struct worker *w, const char *who, json_t *view)
{
	if (strcmp(json_string_value(json_object_get(view, "agent")),
	    who) == 0)
		return (1);
	if (api_policy_refresh(w) == -1 || w->policy == NULL)
		return (0);
	return (policy_is_approver(w->policy, who) ||
	    policy_is_operator(w->policy, who));
}

void
api_intent_answer(struct request *rq, json_t *view, int is_agent)
{
	/* Each answer to the agent carries a freshly signed grant while it
	 * can still be redeemed: a late approval still gives a full minute.
	 * Approvers and operators read the intent, never its grant. */
	if (is_agent && strcmp(json_string_value(json_object_get(view,
	    "status")), "allowed") == 0 &&
	    json_object_get(view, "redeemed_at") == NULL &&
	    grant_attach(&rq->w->broker->grant, view, clock_now()) == -1) {
		json_decref(view);
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	http_reply_json(rq, 200, view);
}

/* ?wait=N (0..60) or -1 when malformed. */
static int
api_wait_seconds(const char *query)
{
	struct evkeyvalq	 q;
	const char		*v;
	char			*end;
	long			 n = 0;

	if (query == NULL)
		return (0);
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) != 0)
		return (-1);
	if ((v = evhttp_find_header(&q, "wait")) != NULL) {
		n = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || n < 0 ||
		    n > WAIT_MAX_SECONDS)
			n = -1;
	}
	evhttp_clear_headers(&q);
	return ((int)n);
}

void
api_intent_get(struct request *rq)
{
	json_t	*view = NULL;
	int	 found, is_agent, wait = api_wait_seconds(rq->query);

	if (wait < 0) {
		http_reply_error(rq, E_BAD_REQUEST, "wait must be 0..60 "
		    "seconds");
		return;
	}
	found = api_id_valid(rq->id) ?
	    store_intent_get(rq->w->db, rq->id, &view) : 0;
	if (found == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if (found == 0 || !api_may_read(rq->w, rq->peer->identity, view)) {
		json_decref(view);
		http_reply_error(rq, E_NOT_FOUND, "no such intent");
		return;
	}
	is_agent = strcmp(json_string_value(json_object_get(view, "agent")),
	    rq->peer->identity) == 0;
	if (wait > 0 && strcmp(json_string_value(json_object_get(view,
	    "status")), "pending") == 0) {
		json_decref(view);
		if (wait_hold(rq, rq->id, wait, is_agent) == -1) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    rq->req), "Retry-After", "1");
			http_reply_error(rq, E_RATE_LIMITED, "too many "
			    "waiting requests; retry later");
		}
		return;
	}
	api_intent_answer(rq, view, is_agent);
}

void
api_jwks(struct request *rq)
{
	const char	*jwks = rq->w->broker->grant.jwks;

	http_reply_text(rq, 200, "application/jwk-set+json", jwks,
	    strlen(jwks));
}

void
api_healthz(struct request *rq)
{
	http_reply_json(rq, 200, json_pack("{ss}", "status", "ok"));
}

void
api_metrics(struct request *rq)
{
	const struct metrics	*all[SERVER_MAX_THREADS];
	struct broker		*b = rq->w->broker;
	char			*text;
	size_t			 len;
	int			 i;

	for (i = 0; i < b->nworkers; i++)
		all[i] = &b->workers[i].metrics;
	if ((text = metrics_render(all, (size_t)b->nworkers, &len)) == NULL) {
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	http_reply_text(rq, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

static int
api_require_operator(struct request *rq)
{
	if (api_policy_refresh(rq->w) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return (0);
	}
	if (rq->w->policy == NULL ||
	    !policy_is_operator(rq->w->policy, rq->peer->identity)) {
		http_reply_error(rq, E_FORBIDDEN, "only an operator may "
		    "read or change the policy");
		return (0);
	}
	return (1);
}

void
api_policy_get(struct request *rq)
{
	int64_t	 version;
	char	*body = NULL, sha[65];
	size_t	 len = 0;
	json_t	*doc;

	if (!api_require_operator(rq))
		return;
	if (store_policy_current(rq->w->db, &version, &body, &len) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	canon_sha256_hex(body, len, sha);
	doc = json_loadb(body, len, 0, NULL);
	free(body);
	http_reply_json(rq, 200, json_pack("{sI ss so}", "version",
	    (json_int_t)version, "sha256", sha, "policy",
	    doc ? doc : json_null()));
}

void
api_policy_put(struct request *rq)
{
	struct policy	*p;
	json_t		*problems = NULL;
	const char	*body;
	size_t		 len;
	int64_t		 version;
	char		 sha[65];

	if (!api_require_operator(rq))
		return;
	if (!http_content_type_is(rq, "application/json")) {
		http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
		    "PUT /v1/policy takes Content-Type: application/json");
		return;
	}
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
	if (store_policy_apply(rq->w->db, body, len, rq->peer->identity,
	    &version) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	canon_sha256_hex(body, len, sha);
	log_info("policy version %lld applied by %s", (long long)version,
	    rq->peer->identity);
	http_reply_json(rq, 200, json_pack("{sI ss}", "version",
	    (json_int_t)version, "sha256", sha));
}
