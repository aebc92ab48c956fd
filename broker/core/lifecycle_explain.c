/*
 * lifecycle_explain: what the broker would answer a call now, and why
 * (CONTRACT §8.4) — the evaluation a decision makes (kill switches, the
 * rules, the limits with their usage), shown instead of stored.  It
 * records nothing: no intent, audit record, usage or jti, and it opens no
 * transaction; usage is read as the store has it committed.
 */
#include <string.h>

#include <jansson.h>

#include "lifecycle_impl.h"

static json_t *
explain_amount(const struct evaluation *ev)
{
	if (!ev->has_amount)
		return (json_null());
	return (json_pack("{ss ss}", "value", ev->amount_text, "currency",
	    ev->amount.currency));
}

/* The deciding rule with each of its conditions, or null. */
static json_t *
explain_rule(const struct decider *d, const struct policy_call *call,
    const struct evaluation *ev)
{
	json_t	*rule = lc_rule_json(ev), *conds;

	if (rule == NULL)
		return (json_null());
	conds = policy_rule_conditions(d->policy, ev->role, ev->rule_index,
	    call->args);
	if (conds == NULL || json_object_set_new(rule, "conditions",
	    conds) == -1) {
		json_decref(rule);
		return (NULL);
	}
	return (rule);
}

static json_t *
explain_json(const struct decider *d, const struct policy_call *call,
    const struct evaluation *ev, const struct limit_check *lc)
{
	json_t		*o, *named;
	enum reason	 code = ev->error != REASON_OK ? ev->error : ev->reason;

	named = usage_named_json(lc);
	o = json_pack("{ss ss so so ss ss sI so so so so so so}",
	    "principal", call->principal, "tool", call->tool,
	    "policy_version", d->policy_version > 0 ?
	    json_integer(d->policy_version) : json_null(),
	    /* a call refused with a 400 gets no decision */
	    "decision", ev->error != REASON_OK ? json_null() :
	    json_string(outcome_name(ev->outcome)),
	    "reason_code", reason_code(code),
	    "reason", ev->message[0] ? ev->message : reason_text(code),
	    "approvals_required", (json_int_t)ev->approvals_required,
	    "approver_roles", lc_approver_roles_json(ev),
	    "approval_ttl", ev->outcome == OUTCOME_PENDING &&
	    ev->error == REASON_OK ? json_integer(ev->approval_ttl) :
	    json_null(),
	    "amount", explain_amount(ev),
	    "rule", explain_rule(d, call, ev),
	    "limit", named != NULL ? named : json_null(),
	    "limits", usage_explain_json(lc));
	return (o);
}

json_t *
lc_explain(struct decider *d, const struct policy_call *call, int64_t now)
{
	struct evaluation	 ev;
	struct limit_check	 lc;
	json_t			*o = NULL;

	lc_evaluate(d, call, &ev);
	if (usage_check(NULL, d->store, d->policy, call, &ev, now, 0,
	    &lc) == REASON_OK)
		o = explain_json(d, call, &ev, &lc);
	limit_check_clear(&lc);
	return (o);
}
