/*
 * fuzz-policy: the policy loader and validator (policy_parse) on arbitrary
 * bytes, then evaluation of what it accepted.  A refused document must come
 * with a non-empty list of {path, message} problems.  An accepted one is
 * evaluated for the principals and tools it names (plus a few fixed ones)
 * with no amount and with small, mid and maximal amounts, without args and
 * with a few fixed args, and every answer is checked: unknown principals
 * are denied, PENDING exactly when approvals are required, a 400 error is
 * never a decision, an amount found is in the contract's grammar, a
 * non-deny names a rule of a role the principal holds whose pattern
 * matches the tool, and evaluating twice gives the same answer.  The
 * limits that apply and the warnings are computed too.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "log.h"
#include "policy.h"

#define FUZZ_POLICY_MAX		(1024 * 1024)
#define FUZZ_MAX_NAMES		8

struct names {
	const char	*v[FUZZ_MAX_NAMES];
	char		 buf[FUZZ_MAX_NAMES][130];
	size_t		 n;
};

static void
names_add(struct names *ns, const char *s)
{
	size_t	 i, len;

	if (s == NULL || ns->n == FUZZ_MAX_NAMES ||
	    (len = strlen(s)) >= sizeof(ns->buf[0]))
		return;
	for (i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], s) == 0)
			return;
	memcpy(ns->buf[ns->n], s, len + 1);
	ns->v[ns->n] = ns->buf[ns->n];
	ns->n++;
}

/* A tool a pattern matches: itself, or "prefix.x" for "prefix.*". */
static void
tools_add(struct names *ns, const char *pattern)
{
	char	 t[130];
	size_t	 len;

	if (pattern == NULL || (len = strlen(pattern)) >= sizeof(t) - 1)
		return;
	memcpy(t, pattern, len + 1);
	if (len >= 2 && strcmp(t + len - 2, ".*") == 0)
		t[len - 1] = 'x';
	if (policy_mcp_name_valid(t))
		names_add(ns, t);
}

/* Principals and rule tools named by the document, for evaluation. */
static void
collect(const char *text, size_t len, struct names *who, struct names *tools)
{
	json_t		*doc, *role, *rule, *v;
	const char	*name;
	size_t		 i;

	if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL)
		return;
	json_object_foreach(json_object_get(doc, "principals"), name, v)
		names_add(who, name);
	json_object_foreach(json_object_get(doc, "roles"), name, role) {
		json_array_foreach(json_object_get(role, "rules"), i, rule)
			tools_add(tools, json_string_value(json_object_get(rule,
			    "tool")));
		json_array_foreach(json_object_get(role, "redeem"), i, v)
			tools_add(tools, json_string_value(v));
	}
	json_decref(doc);
}

static void
check_errors(json_t *errors)
{
	json_t	*e;
	size_t	 i;

	FUZZ_ASSERT(json_is_array(errors) && json_array_size(errors) > 0);
	json_array_foreach(errors, i, e) {
		FUZZ_ASSERT(json_is_string(json_object_get(e, "path")));
		FUZZ_ASSERT(json_is_string(json_object_get(e, "message")));
		FUZZ_ASSERT(strncmp(json_string_value(json_object_get(e,
		    "path")), "$", 1) == 0);
		/* Inputs are at most 1 MiB: "out of memory" hides a problem
		 * that could not be reported (e.g. text jansson refused). */
		FUZZ_ASSERT(strcmp(json_string_value(json_object_get(e,
		    "message")), "out of memory while reading the policy") !=
		    0);
	}
}

/* args the evaluations see: none, amounts in several forms, arrays. */
static const char *const fixed_args[] = {
	"{\"amount\": \"5000.00\", \"currency\": \"USD\", \"to\": \"x\"}",
	("{\"amount\": 0.1, \"currency\": \"EUR\", \"cents\": 123456, "
	    "\"items\": [1, \"2\", {\"a\": null}], \"to\": \"DE89\"}"),
	"{\"amount\": 1e3, \"currency\": \"usd\", \"to\": [true]}",
};

static void
check_eval(const struct policy *p, const char *who, const char *tool,
    const struct amount *amt, json_t *args, const char *text)
{
	struct evaluation	 ev, again;
	struct policy_call	 call;
	struct policy_limit_use	*uses;
	struct amount		 found;
	size_t			 i, n;

	memset(&call, 0, sizeof(call));
	call.principal = who;
	call.tool = tool;
	call.amount = amt;
	call.args = args;
	call.args_json = text;
	call.args_json_len = text ? strlen(text) : 0;
	memset(&ev, 0, sizeof(ev));
	memset(&again, 0, sizeof(again));
	policy_evaluate(p, &call, &ev);
	policy_evaluate(p, &call, &again);
	FUZZ_ASSERT(ev.outcome == again.outcome && ev.reason == again.reason &&
	    ev.error == again.error &&
	    ev.approvals_required == again.approvals_required &&
	    ev.rule_index == again.rule_index && ev.role == again.role);
	if (ev.error != REASON_OK)
		FUZZ_ASSERT(ev.outcome == OUTCOME_DENY && ev.message[0]);
	if (ev.has_amount)
		FUZZ_ASSERT(amount_parse_value(ev.amount_text,
		    strlen(ev.amount_text), &found) == 0 &&
		    amount_cmp(&found, &ev.amount) == 0 &&
		    amount_currency_valid(ev.amount.currency));
	if (policy_limits_for(p, &call, &uses, &n) == 0) {
		for (i = 0; i < n; i++)
			FUZZ_ASSERT(uses[i].key != NULL &&
			    uses[i].key[0] == '[');
		policy_limit_uses_free(uses, n);
	}
	FUZZ_ASSERT(ev.outcome == OUTCOME_ALLOW ||
	    ev.outcome == OUTCOME_PENDING || ev.outcome == OUTCOME_DENY);
	FUZZ_ASSERT((ev.outcome == OUTCOME_PENDING) ==
	    (ev.approvals_required > 0));
	FUZZ_ASSERT((ev.tier_index == -1) == (ev.tier_max == NULL));
	FUZZ_ASSERT(ev.n_approver_roles == 0 || ev.approver_roles != NULL);
	for (i = 0; i < ev.n_approver_roles; i++)
		FUZZ_ASSERT(ev.approver_roles[i] != NULL);
	if (!policy_knows(p, who))
		FUZZ_ASSERT(ev.outcome == OUTCOME_DENY);
	if (ev.outcome == OUTCOME_DENY)
		return;
	FUZZ_ASSERT(ev.role != NULL && ev.rule_tool != NULL);
	FUZZ_ASSERT(policy_has_role(p, who, ev.role));
	FUZZ_ASSERT(policy_pattern_match(ev.rule_tool, tool));
	FUZZ_ASSERT(ev.rule_index >= 0);
	if (ev.outcome == OUTCOME_PENDING)
		FUZZ_ASSERT(ev.approval_ttl > 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(LOG_LVL_ERROR, "fuzz-policy");
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed_who[] = { "agent-a", "",
	    "operator-olga" };
	static const char *const fixed_tools[] = { "payments.transfer",
	    "crm.lookup", "x" };
	struct amount	 amts[3];
	struct names	 who, tools;
	struct policy	*p;
	json_t		*errors = NULL, *args[3];
	size_t		 i, j, k, a;

	if (size > FUZZ_POLICY_MAX)
		return (0);
	p = policy_parse((const char *)data, size, &errors);
	if (p == NULL) {
		check_errors(errors);
		json_decref(errors);
		return (0);
	}
	FUZZ_ASSERT(errors == NULL);

	memset(&who, 0, sizeof(who));
	memset(&tools, 0, sizeof(tools));
	collect((const char *)data, size, &who, &tools);
	for (i = 0; i < sizeof(fixed_who) / sizeof(fixed_who[0]); i++)
		names_add(&who, fixed_who[i]);
	for (i = 0; i < sizeof(fixed_tools) / sizeof(fixed_tools[0]); i++)
		names_add(&tools, fixed_tools[i]);

	memset(amts, 0, sizeof(amts));
	amount_parse_value("0.01", 4, &amts[0]);
	memcpy(amts[0].currency, "USD", 4);
	amount_parse_value("5000", 4, &amts[1]);
	memcpy(amts[1].currency, "USD", 4);
	amount_parse_value("999999999999999.999999", 22, &amts[2]);
	memcpy(amts[2].currency, "EUR", 4);

	for (a = 0; a < 3; a++)
		FUZZ_ASSERT((args[a] = json_loads(fixed_args[a], 0, NULL)) !=
		    NULL);
	json_decref(policy_warnings(p));
	for (i = 0; i < who.n; i++) {
		if (policy_is_operator(p, who.v[i]) ||
		    policy_is_approver(p, who.v[i]))
			FUZZ_ASSERT(policy_knows(p, who.v[i]));
		for (j = 0; j < tools.n; j++) {
			if (policy_may_redeem(p, who.v[i], tools.v[j]))
				FUZZ_ASSERT(policy_knows(p, who.v[i]));
			(void)policy_is_redacted(p, tools.v[j], "to");
			check_eval(p, who.v[i], tools.v[j], NULL, NULL, NULL);
			for (k = 0; k < 3; k++)
				check_eval(p, who.v[i], tools.v[j], &amts[k],
				    NULL, NULL);
			for (a = 0; a < 3; a++) {
				check_eval(p, who.v[i], tools.v[j], NULL,
				    args[a], fixed_args[a]);
				check_eval(p, who.v[i], tools.v[j], &amts[1],
				    args[a], fixed_args[a]);
			}
		}
	}
	for (a = 0; a < 3; a++)
		json_decref(args[a]);
	policy_free(p);
	return (0);
}
