/*
 * lifecycle_decide: the birth of an intent — verified claims + the policy
 * snapshot + engaged kill switches → a decision, stored as a new intent
 * row with its "decision" audit record, inside the caller's transaction.
 * The group commit runs this for a whole batch in one transaction; it
 * never answers anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "lifecycle_impl.h"
#include "log.h"

/*
 * An unknown principal's answer names the identity the broker saw, so an
 * operator can tell why "spiffe://..." is not in the policy (the
 * certificate's URI SAN counts before its CN).  The identity is at most
 * IDENT_MAX - 1 bytes: the text always fits the message whole.
 */
static void
lc_name_stranger(const struct decider *d, const char *who,
    struct evaluation *ev)
{
	if (ev->reason != R_UNKNOWN_PRINCIPAL || ev->message[0] != '\0')
		return;
	if (d->policy == NULL)
		snprintf(ev->message, sizeof(ev->message), "\"%s\" is not a "
		    "principal: no policy is applied", who);
	else
		snprintf(ev->message, sizeof(ev->message), "\"%s\" is not a "
		    "principal of policy version %lld", who,
		    (long long)d->policy_version);
}

void
lc_evaluate(const struct decider *d, const struct policy_call *call,
    struct evaluation *ev)
{
	if (d->policy == NULL || ks_covers(&d->ks, call->principal,
	    call->tool)) {
		memset(ev, 0, sizeof(*ev));
		ev->outcome = OUTCOME_DENY;
		ev->reason = d->policy ? R_KILL_SWITCH : R_UNKNOWN_PRINCIPAL;
		ev->rule_index = -1;
		ev->tier_index = -1;
		/* the call's amount is still the claim */
		if ((ev->has_amount = call->amount != NULL)) {
			ev->amount = *call->amount;
			if (call->amount_text != NULL)
				snprintf(ev->amount_text,
				    sizeof(ev->amount_text), "%s",
				    call->amount_text);
			else
				amount_format(call->amount, ev->amount_text);
		}
	} else
		policy_evaluate(d->policy, call, ev);
	lc_name_stranger(d, call->principal, ev);
}

json_t *
lc_rule_json(const struct evaluation *ev)
{
	json_t	*rule;

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
	return (rule);
}

static char *
decide_rule_json(const struct evaluation *ev)
{
	json_t	*rule = lc_rule_json(ev);
	char	*text;

	text = rule ? canon_dump(rule) : NULL;
	json_decref(rule);
	return (text);
}

json_t *
lc_approver_roles_json(const struct evaluation *ev)
{
	json_t	*roles = json_array();
	size_t	 i;

	for (i = 0; roles != NULL && i < ev->n_approver_roles; i++)
		if (json_array_append_new(roles,
		    json_string(ev->approver_roles[i])) == -1) {
			json_decref(roles);
			return (NULL);
		}
	return (roles);
}

static char *
decide_approver_roles_json(const struct evaluation *ev)
{
	json_t	*roles = lc_approver_roles_json(ev);
	char	*text;

	text = roles != NULL ? canon_dump(roles) : NULL;
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
	char	 mac[65];

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
	/* The allowing record binds the args a grant will carry, without
	 * showing redacted values (audit_trust_grant checks it). */
	if (r->args != NULL && r->status != ST_DENIED &&
	    d->cfg.trust != NULL && (audit_trust_args_mac(d->cfg.trust,
	    r->args, mac) == -1 || json_object_set_new(det, "args_mac",
	    json_string(mac)) == -1))
		goto bad;
	/* the amount the policy judged, as stored: from args when the rule
	 * binds it */
	if (r->amount_value != NULL && json_object_set_new(det, "amount",
	    json_pack("{ss ss}", "value", r->amount_value, "currency",
	    r->amount_currency)) == -1)
		goto bad;
	/* the cumulative limit that denied it or asked for approvals */
	if (r->limit_json != NULL && json_object_set_new(det, "limit",
	    json_loads(r->limit_json, 0, NULL)) == -1)
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
	/* The amount the policy judged (from args when the rule binds it),
	 * so that the grant and the approvers' view show it. */
	if (ev->has_amount) {
		r->amount_value = decide_strdup(ev->amount_text, &failed);
		r->amount_currency = decide_strdup(ev->amount.currency,
		    &failed);
	}
	r->agent_reason = decide_strdup(in->reason, &failed);
	r->status = intent_status_of(ev->outcome);
	r->decision = ev->outcome;
	r->reason = ev->reason;
	r->reason_text = decide_strdup(ev->message[0] ? ev->message :
	    reason_text(ev->reason), &failed);
	r->policy_version = d->policy_version > 0 ? d->policy_version : 0;
	r->rule = decide_rule_json(ev);
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

/* Claim the jti (unless the broker made it) and store the decision ev (and
 * what lim reserves). */
static enum reason
decide_store(struct decider *d, const struct intent *in, int64_t now,
    const struct evaluation *ev, const struct limit_check *lim,
    struct intent_row *out)
{
	struct lc_change	 c;
	json_t			*det;
	enum reason		 r;
	int			 seen;

	if (intent_id_new(out->id) == -1)
		return (E_UNAVAILABLE);
	/* Kept until exp + skew: after that the intent is refused as
	 * expired anyway, so the row can go. */
	seen = in->fresh_jti ? 0 : d->store->ops->jti_claim(d->store,
	    in->iss, in->jti, in->exp + INTENT_SKEW);
	if (seen == 1)
		return (E_REPLAY);
	if (seen == -1)
		return (E_UNAVAILABLE);
	/* Never store an intent without the args it was signed with (out
	 * of memory: intent_verify let through only args RFC 8785 keeps):
	 * decide_fill fails, and so does the decision, with a 503. */
	if (decide_fill(d, in, now, ev, out) == -1 ||
	    lc_limits_row(lim, out) == -1 ||
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
	c.limits = lim;
	r = lc_apply(d, &c);
	json_decref(det);
	if (r != REASON_OK) {
		intent_row_clear(out);
		return (E_UNAVAILABLE);
	}
	return (REASON_OK);
}

enum reason
lc_decide(struct decider *d, const struct intent *in, int64_t now,
    struct intent_row *out, char why[POLICY_MESSAGE_MAX])
{
	struct policy_call	 call = {
		.principal = in->iss, .tool = in->tool, .args = in->args,
		.args_json = in->args_json, .args_json_len = in->args_json_len,
		.amount = in->has_amount ? &in->amount : NULL,
		.amount_text = in->has_amount ? in->amount_text : NULL,
	};
	struct evaluation	 ev;
	struct limit_check	 lim;
	enum reason		 r;

	memset(out, 0, sizeof(*out));
	if (why != NULL)
		why[0] = '\0';
	/* A broken chain decides nothing (audit_trust.h). */
	if (d->cfg.trust != NULL && audit_trust_broken(d->cfg.trust))
		return (E_UNAVAILABLE);
	/* A call the policy refuses with a 400 (amount_mismatch,
	 * invalid_amount) is not a decision: nothing is stored and its jti
	 * stays unused, like any other malformed intent. */
	lc_evaluate(d, &call, &ev);
	if (ev.error != REASON_OK) {
		log_info("intent refused: %s %s: %s", in->iss, in->tool,
		    reason_code(ev.error));
		if (why != NULL)
			snprintf(why, POLICY_MESSAGE_MAX, "%s", ev.message);
		return (ev.error);
	}
	/* Cumulative limits: decided with everything this transaction has
	 * decided before, and reserved below in the same transaction. */
	if ((r = lc_limits_check(d, &call, &ev, now, 0, &lim)) == REASON_OK)
		r = decide_store(d, in, now, &ev, &lim, out);
	limit_check_clear(&lim);
	return (r);
}
