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

struct evaluation {
	enum outcome	 outcome;
	enum reason	 reason;	/* R_* decision code */
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
};

/*
 * Decide what the policy says for principal calling tool with an optional
 * amount (NULL when the intent has none).  Default deny; deny rules override
 * allows; among matching allow rules the fewest approvals wins; see
 * proto/policy.md for the full order.  Always fills *ev.
 */
void	policy_evaluate(const struct policy *p, const char *principal,
	    const char *tool, const struct amount *amount,
	    struct evaluation *ev);

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
 * no deny rule does: whether the MCP gateway's tools/list offers it. */
int	policy_offers(const struct policy *p, const char *principal,
	    const char *tool);
