/*
 * decide: verified claims + the policy snapshot + engaged kill switches →
 * a decision, stored with its audit record inside the caller's
 * transaction.  Shared by the commit thread (which batches many decisions
 * into one transaction) and nothing else; it never answers HTTP.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
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

	if (store_policy_version(w->db, &version) == -1)
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
	if (w->idx < 0)		/* the commit writer's context */
		log_info("writer: policy version %lld loaded",
		    (long long)version);
	else
		log_info("thread %d: policy version %lld loaded", w->idx,
		    (long long)version);
	return (0);
}

/* The policy's view of a call; no policy at all means default deny, and
 * an engaged kill switch covering it overrides everything.  The policy
 * sees the whole call: args as jansson values and as the exact text
 * signed (amount_from reads numbers' digits there), and the amount
 * claim. */
static void
decide_evaluate(struct worker *w, const struct intent *in, struct evaluation *ev)
{
	struct policy_call	 call = {
		.principal = in->iss, .tool = in->tool, .args = in->args,
		.args_json = in->args_json, .args_json_len = in->args_json_len,
		.amount = in->has_amount ? &in->amount : NULL,
		.amount_text = in->has_amount ? in->amount_text : NULL,
	};

	if (w->policy == NULL || ks_covers(&w->ks, in->iss, in->tool)) {
		memset(ev, 0, sizeof(*ev));
		ev->outcome = OUTCOME_DENY;
		ev->reason = w->policy ? R_KILL_SWITCH : R_UNKNOWN_PRINCIPAL;
		ev->tier_index = -1;
		/* the call's amount is still the claim */
		if ((ev->has_amount = in->has_amount)) {
			ev->amount = in->amount;
			memcpy(ev->amount_text, in->amount_text,
			    sizeof(ev->amount_text));
		}
		return;
	}
	policy_evaluate(w->policy, &call, ev);
}

static char *
decide_rule_json(const struct evaluation *ev, const struct intent *in)
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
		    json_string(ev->amount.currency));
	}
	if (rule != NULL && ev->failed_pointer != NULL) {
		json_object_set_new(rule, "pointer",
		    json_string(ev->failed_pointer));
		json_object_set_new(rule, "condition",
		    json_string(ev->failed_condition));
	}
	text = rule ? canon_dump(rule) : NULL;
	json_decref(rule);
	return (text);
}

static char *
decide_approver_roles_json(const struct evaluation *ev)
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
decide_audit_args(const struct policy *p, const struct intent *in)
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
decide_audit(struct worker *w, const struct intent_record *r,
    const struct intent *in, int64_t now)
{
	json_t	*d;
	int	 rc;

	d = json_pack("{ss ss ss sI sI ss so}", "status", r->status,
	    "reason_code", r->reason_code, "tool", r->tool,
	    "policy_version", (json_int_t)r->policy_version,
	    "approvals_required", (json_int_t)r->approvals_required,
	    "intent_sha256", r->intent_sha256,
	    "args", decide_audit_args(w->policy, in));
	if (d == NULL)
		return (-1);
	if (r->amount_value != NULL)
		json_object_set_new(d, "amount", json_pack("{ss ss}",
		    "value", r->amount_value, "currency",
		    r->amount_currency));
	rc = audit_append(w->db, now, in->iss, "decision", r->id, d);
	json_decref(d);
	return (rc);
}

static void
decide_fill(struct decision *d, struct worker *w,
    const struct intent *in, int64_t now)
{
	struct intent_record	*r = &d->rec;

	d->args = in->args ? canon_dump(in->args) : NULL;
	d->rule = decide_rule_json(&d->ev, in);
	d->approver_roles = decide_approver_roles_json(&d->ev);
	memset(r, 0, sizeof(*r));
	r->id = d->id;
	r->agent = in->iss;
	r->jti = in->jti;
	r->tool = in->tool;
	r->args = d->args;
	/* the amount the policy judged: from args when the rule binds it */
	r->amount_value = d->ev.has_amount ? d->ev.amount_text : NULL;
	r->amount_currency = d->ev.has_amount ? d->ev.amount.currency : NULL;
	r->agent_reason = in->reason;
	r->status = outcome_status[d->ev.outcome];
	r->decision = outcome_decision[d->ev.outcome];
	r->reason_code = reason_code(d->ev.reason);
	r->reason_text = d->ev.message[0] ? d->ev.message :
	    reason_text(d->ev.reason);
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

void
decision_free(struct decision *d)
{
	free(d->args);
	free(d->rule);
	free(d->approver_roles);
}

enum reason
decide_in_tx(struct worker *w, const struct intent *in, struct decision *d,
    int64_t now)
{
	int	 seen;

	/* A call the policy refuses with a 400 (amount_mismatch,
	 * invalid_amount) is not a decision: nothing is stored and its jti
	 * stays unused, like any other malformed intent. */
	decide_evaluate(w, in, &d->ev);
	if (d->ev.error != REASON_OK) {
		log_info("intent refused: %s %s: %s", in->iss, in->tool,
		    reason_code(d->ev.error));
		return (d->ev.error);
	}
	if (store_new_id(d->id, sizeof(d->id)) == -1)
		return (E_UNAVAILABLE);
	/* Kept until exp + skew: after that the intent is refused as
	 * expired anyway, so the row can go. */
	seen = store_jti_claim(w->db, in->iss, in->jti, in->exp + INTENT_SKEW);
	if (seen == 1)
		return (E_REPLAY);
	if (seen == -1)
		return (E_UNAVAILABLE);
	decide_fill(d, w, in, now);
	/* Never store an intent without the args it was signed with (out
	 * of memory: intent_verify let through only args RFC 8785 keeps). */
	if (in->args != NULL && d->args == NULL)
		return (E_UNAVAILABLE);
	if (store_intent_insert(w->db, &d->rec) == -1 ||
	    decide_audit(w, &d->rec, in, now) == -1)
		return (E_UNAVAILABLE);
	return (REASON_OK);
}

