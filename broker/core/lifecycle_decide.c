/*
 * lifecycle_decide: the birth of an intent — verified claims + the policy
 * snapshot + engaged kill switches → a decision, stored as a new intent
 * row with its "decision" audit record, inside the caller's transaction.
 * The group commit runs this for a whole batch in one transaction; it
 * never answers anything.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "lifecycle_impl.h"
#include "log.h"

void
lc_evaluate(const struct decider *d, const char *agent, const char *tool,
    const struct amount *amount, struct evaluation *ev)
{
	if (d->policy == NULL || ks_covers(&d->ks, agent, tool)) {
		memset(ev, 0, sizeof(*ev));
		ev->outcome = OUTCOME_DENY;
		ev->reason = d->policy ? R_KILL_SWITCH : R_UNKNOWN_PRINCIPAL;
		ev->rule_index = -1;
		ev->tier_index = -1;
		return;
	}
	policy_evaluate(d->policy, agent, tool, amount, ev);
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
		    json_string(in->amount.currency));
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

static json_t *
decide_audit_details(const struct decider *d, const struct intent_row *r,
    const struct intent *in)
{
	json_t	*det;

	det = json_pack("{ss ss ss sI sI ss}",
	    "status", intent_status_name(r->status),
	    "reason_code", reason_code(r->reason), "tool", r->tool,
	    "policy_version", (json_int_t)r->policy_version,
	    "approvals_required", (json_int_t)r->approvals_required,
	    "intent_sha256", r->intent_sha256);
	if (det == NULL)
		return (NULL);
	/* A stranger's args are not kept, in the row or in the log. */
	if ((r->args_sha256 != NULL ? json_object_set_new(det, "args_sha256",
	    json_string(r->args_sha256)) : json_object_set_new(det, "args",
	    decide_audit_args(d->policy, in))) == -1)
		goto bad;
	if (in->has_amount && json_object_set_new(det, "amount",
	    json_pack("{ss ss}", "value", in->amount_text, "currency",
	    in->amount.currency)) == -1)
		goto bad;
	return (det);
 bad:
	json_decref(det);
	return (NULL);
}

static char *
decide_strdup(const char *s, int *failed)
{
	char	*c;

	if (s == NULL)
		return (NULL);
	if ((c = strdup(s)) == NULL)
		*failed = 1;
	return (c);
}

/*
 * The row of a new decision.  An unknown principal's args are replaced
 * by their hash: a certificate from the CA that names nobody in the
 * policy must not be able to fill the disk.  0 or -1 (ENOMEM).
 */
static int
decide_fill(struct decider *d, const struct intent *in, int64_t now,
    const struct evaluation *ev, struct intent_row *r)
{
	char	 sha[65];
	int	 failed = 0;

	r->agent = decide_strdup(in->iss, &failed);
	r->jti = decide_strdup(in->jti, &failed);
	r->tool = decide_strdup(in->tool, &failed);
	if (in->args != NULL) {
		if ((r->args = canon_dump(in->args)) == NULL)
			failed = 1;
		else if (ev->reason == R_UNKNOWN_PRINCIPAL) {
			canon_sha256_hex(r->args, strlen(r->args), sha);
			free(r->args);
			r->args = NULL;
			r->args_sha256 = decide_strdup(sha, &failed);
		}
	}
	if (in->has_amount) {
		r->amount_value = decide_strdup(in->amount_text, &failed);
		r->amount_currency = decide_strdup(in->amount.currency,
		    &failed);
	}
	r->agent_reason = decide_strdup(in->reason, &failed);
	r->status = intent_status_of(ev->outcome);
	r->decision = ev->outcome;
	r->reason = ev->reason;
	r->reason_text = decide_strdup(reason_text(ev->reason), &failed);
	r->policy_version = d->policy_version > 0 ? d->policy_version : 0;
	r->rule = decide_rule_json(ev, in);
	if (ev->role != NULL && r->rule == NULL)
		failed = 1;
	r->approvals_required = ev->approvals_required;
	if ((r->approver_roles = decide_approver_roles_json(ev)) == NULL)
		failed = 1;
	memcpy(r->intent_sha256, in->payload_sha256, sizeof(r->intent_sha256));
	r->created_at = now;
	if (ev->outcome == OUTCOME_PENDING)
		r->expires_at = now + ev->approval_ttl;
	else
		r->decided_at = now;
	return (failed ? -1 : 0);
}

enum reason
lc_decide(struct decider *d, const struct intent *in, int64_t now,
    struct intent_row *out)
{
	struct evaluation	 ev;
	struct lc_change	 c;
	json_t			*det;
	enum reason		 r;
	int			 seen;

	memset(out, 0, sizeof(*out));
	if (intent_id_new(out->id) == -1)
		return (E_UNAVAILABLE);
	/* Kept until exp + skew: after that the intent is refused as
	 * expired anyway, so the row can go. */
	seen = d->store->ops->jti_claim(d->store, in->iss, in->jti,
	    in->exp + INTENT_SKEW);
	if (seen == 1)
		return (E_REPLAY);
	if (seen == -1)
		return (E_UNAVAILABLE);
	lc_evaluate(d, in->iss, in->tool, in->has_amount ? &in->amount : NULL,
	    &ev);
	if (decide_fill(d, in, now, &ev, out) == -1 ||
	    (det = decide_audit_details(d, out, in)) == NULL) {
		intent_row_clear(out);
		return (E_UNAVAILABLE);
	}
	memset(&c, 0, sizeof(c));
	c.kind = LC_INSERT;
	c.row = out;
	c.now = now;
	c.actor = in->iss;
	c.event = "decision";
	c.details = det;
	r = lc_apply(d, &c);
	json_decref(det);
	if (r != REASON_OK) {
		intent_row_clear(out);
		return (E_UNAVAILABLE);
	}
	return (REASON_OK);
}
