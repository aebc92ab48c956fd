/*
 * policy: the policy document of CONTRACT §5 — validation, an immutable
 * in-memory snapshot, and evaluation.  Pure logic: no I/O, no SQLite, no
 * clock.  A snapshot is built once per policy version and then only read,
 * so one snapshot may be shared by threads without locks.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "amount.h"
#include "reason.h"

#define POLICY_MAX_BYTES	(8 * 1024 * 1024)
#define POLICY_MAX_NAME_TEXT	257	/* a principal or tool name, NUL */
#define POLICY_DEFAULT_TTL	3600

struct policy;

/*
 * Parse and validate a policy document of len bytes.  On success returns a
 * new snapshot and *errors is NULL.  On failure returns NULL and, if errors
 * is not NULL, sets *errors to a new JSON array of {"path": "$.roles.x...",
 * "message": "..."} listing every problem found (not just the first); the
 * caller owns it.
 */
struct policy	*policy_parse(const char *text, size_t len, json_t **errors);
void		 policy_free(struct policy *p);

enum outcome {
	OUTCOME_ALLOW,
	OUTCOME_PENDING,
	OUTCOME_DENY
};

/*
 * One call as the policy sees it.  args is the call's args object (NULL:
 * none) and args_json its exact JSON text as signed (struct intent's
 * args_json): amount_from reads a JSON number's digits there, never
 * through jansson's double.  Numbers in args must keep their value in
 * RFC 8785 form (what intent_verify checks, canon_numbers_check):
 * conditions compare numbers through that form.  amount is the intent's
 * "amount" claim (NULL: none) and amount_text its value as signed (NULL:
 * written canonically).  Everything is borrowed for the call's duration.
 */
struct policy_call {
	const char		*principal;
	const char		*tool;
	const json_t		*args;
	const char		*args_json;
	size_t			 args_json_len;
	const struct amount	*amount;
	const char		*amount_text;
};

#define POLICY_MESSAGE_MAX	320

struct evaluation {
	enum outcome	 outcome;
	enum reason	 reason;	/* R_* decision code */
	/*
	 * REASON_OK, or the 400 error the call is refused with instead of a
	 * decision: E_INVALID_AMOUNT (a member amount_from points at is
	 * malformed) or E_AMOUNT_MISMATCH (the amount claim differs from
	 * the amount in args).  outcome is then DENY, so that a caller that
	 * forgets to look still fails closed; nothing should be stored.
	 */
	enum reason	 error;
	/* Human text for error, or for a decision whose default text
	 * (reason_text) is not enough (args_not_allowed names the pointer
	 * and condition); "" otherwise. */
	char		 message[POLICY_MESSAGE_MAX];
	int		 approvals_required;	/* > 0 iff PENDING */
	int64_t		 approval_ttl;	/* seconds, for PENDING */
	/*
	 * The rule that decided (NULL when no rule matched): which role, its
	 * index in that role's rules, its tool pattern, and for currency rules
	 * the tier index and its max (canonical text).  Points into the
	 * snapshot: valid as long as the snapshot lives.
	 */
	const char	*role;
	int		 rule_index;
	const char	*rule_tool;
	int		 tier_index;	/* -1 when the rule has no tiers */
	const char	*tier_max;	/* NULL when the rule has no tiers */
	/* Roles whose holders may approve (from the deciding rule). */
	const char	*const *approver_roles;
	size_t		 n_approver_roles;
	/*
	 * The call's amount: the one the deciding rule's amount_from found
	 * in args (amount_from_args = 1), else the amount claim; has_amount
	 * 0 when there is neither.  amount_text is its value as the tiers,
	 * the grant's "amount", the stored intent and approvers should show
	 * it: as written in args or in the claim, or for a scaled count the
	 * decimal it stands for ("123456" with scale 2 is "1234.56").
	 */
	int		 has_amount;
	int		 amount_from_args;
	struct amount	 amount;
	char		 amount_text[AMOUNT_MAX_TEXT];
	/* args_not_allowed: the pointer (as the policy wrote it, in the
	 * snapshot) whose condition failed first, and the condition's key
	 * ("one_of", "max", "each", ...; static text). */
	const char	*failed_pointer;
	const char	*failed_condition;
};

/*
 * Decide what the policy says for call.  Default deny; deny rules whose
 * conditions hold override everything; then a 400 error found while
 * reading an amount; then among matching allow rules the fewest
 * approvals wins; see proto/policy.md for the full order.  Always fills
 * *ev.  Pure: no I/O, no clock, no counting of limits.
 */
void	policy_evaluate(const struct policy *p, const struct policy_call *call,
	    struct evaluation *ev);

/*
 * A cumulative limit of the document's "limits" (CONTRACT §8.3), as
 * validated; points into the snapshot.  by_amount: max_amount in
 * max_amount.currency (amounts in other currencies, and calls without an
 * amount, do not count), else max_count calls.  over_approvals 0 means
 * "over": "deny"; otherwise a call over the limit is pending, needing
 * that many approvals from holders of over_approvers.
 */
struct policy_limit {
	const char	*name;
	size_t		 index;		/* in the document's "limits" */
	const char	**tools;
	size_t		 n_tools;
	const char	**principals;	/* n_principals 0: everyone */
	size_t		 n_principals;
	const char	**per;		/* "agent", "tool" or an args pointer */
	size_t		 n_per;
	int64_t		 window;	/* seconds */
	int		 by_amount;
	struct amount	 max_amount;	/* with its currency */
	const char	*max_amount_text;	/* as the policy wrote it */
	int64_t		 max_count;
	int		 over_approvals;
	const char	**over_approvers;
	size_t		 n_over_approvers;
};

#define POLICY_KEY_PART_MAX	128

/* One limit that applies to a call, and the key its usage is kept by. */
struct policy_limit_use {
	const struct policy_limit	*limit;
	/*
	 * RFC 8785 text of the JSON array of the limit's "per" values, in
	 * order: "agent" is the principal, "tool" the tool name, a pointer
	 * the args member there (null when args has no such member, so
	 * leaving it out shares one counter instead of escaping the limit).
	 * A value whose RFC 8785 text is over POLICY_KEY_PART_MAX bytes is
	 * replaced by {"sha256": HEX of that text}.  "[]" for per [].
	 * E.g. ["agent-payments","DE89370400440532013000"].  malloc'd.
	 */
	char				*key;
};

/*
 * The limits that apply to call, in the document's order: those whose
 * tools match call->tool and whose principals (if any) list
 * call->principal, with the key of each computed from the call.  Pure:
 * no counting.  0 with *uses (free with policy_limit_uses_free; NULL when
 * *n is 0), or -1 when out of memory (or a name in the key is not UTF-8,
 * or an args member cannot be written in RFC 8785 form): fail closed.
 */
int	policy_limits_for(const struct policy *p,
	    const struct policy_call *call, struct policy_limit_use **uses,
	    size_t *n);
void	policy_limit_uses_free(struct policy_limit_use *uses, size_t n);
/* The policy's limits, for listing them (GET /v1/limits). */
size_t	policy_limit_count(const struct policy *p);
const struct policy_limit *policy_limit_at(const struct policy *p, size_t i);

/*
 * What "policy check" warns about (CONTRACT §8.4): problems that do not
 * make the document invalid but mean it cannot work as written.  A new
 * array (NULL when out of memory) of {"path", "code", "message"}:
 *  - "never_approvable" (path of a rule, or of a limit's "over"): it can
 *    need more approvals than there are enabled principals holding its
 *    approver roles — counting, for each agent that holds the rule,
 *    approvers other than that agent, since nobody approves their own
 *    intent;
 *  - "self_approver" (path of a principal): it holds an approver role of
 *    a rule of its own roles, so it could approve its own intents if the
 *    broker let it (it answers 403 self_approval).
 * At most POLICY_MAX_ERRORS entries.
 */
json_t	*policy_warnings(const struct policy *p);

/*
 * Each "args" condition of rule rule_index of role, on args (NULL: none):
 * a new array of {"pointer", "holds", "condition"} (condition: the key
 * that failed, or null), in the rule's order; [] for a rule without
 * conditions (or no such rule); NULL when out of memory.  For policy
 * explain.
 */
json_t	*policy_rule_conditions(const struct policy *p, const char *role,
	    int rule_index, const json_t *args);

/* 1 if the principal exists, is not disabled and holds role, else 0. */
int	policy_has_role(const struct policy *p, const char *principal,
	    const char *role);
/* 1 if an enabled principal holds a role with "operator": true. */
int	policy_is_operator(const struct policy *p, const char *principal);
/* 1 if an enabled principal holds any role that is listed as an approver
 * by some rule (used to let approvers list and read intents). */
int	policy_is_approver(const struct policy *p, const char *principal);
/* 1 if an enabled principal holds a role whose "redeem" patterns match
 * tool. */
int	policy_may_redeem(const struct policy *p, const char *principal,
	    const char *tool);
/* 1 if the principal is listed, whether or not disabled. */
int	policy_knows(const struct policy *p, const char *principal);

/*
 * policy_names.c: for refusing a name the policy does not use (a kill
 * switch that would stop nothing).  policy_tool_known: 1 if some rule's
 * tool (exact or prefix.*) covers a tool that pattern (exact or
 * prefix.*) also covers.  The closest principal name, or rule tool, to a
 * probably misspelt one: within about one edit (insertion, deletion,
 * substitution, swap) per four characters, at most 8; NULL when none is
 * that close.  Results point into the snapshot.
 */
int	policy_tool_known(const struct policy *p, const char *pattern);
const char *policy_closest_principal(const struct policy *p,
	    const char *name);
const char *policy_closest_tool(const struct policy *p,
	    const char *pattern);

/* 1 if the policy's top-level "redact" map ({"pattern": ["field", ...]})
 * names this top-level args field for this tool: its value is stored as
 * "[redacted]" in the audit log. */
int	policy_is_redacted(const struct policy *p, const char *tool,
	    const char *field);

/* 1 if tool matches pattern: exact, or "prefix.*" matching "prefix." plus
 * at least one more character. */
int	policy_pattern_match(const char *pattern, const char *tool);
/* 1 if s is a valid tool name: [a-z0-9_-]+(\.[a-z0-9_-]+)*, <= 128. */
int	policy_tool_name_valid(const char *s);
/* 1 if s is a valid tool name in the grammar CONTRACT §9 widens for MCP
 * names: upper case letters allowed ([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*,
 * <= 128), matched case-sensitively.  Policy patterns and the gateway use
 * it; intents keep the strict grammar above. */
int	policy_mcp_name_valid(const char *s);

/* 1 if some allow rule of an enabled principal's roles matches tool and
 * no deny rule without "args" conditions does: whether the MCP
 * gateway's tools/list offers it. */
int	policy_offers(const struct policy *p, const char *principal,
	    const char *tool);
