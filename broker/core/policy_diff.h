/*
 * policy_diff: what a new policy version changes, for its policy.apply
 * audit record (CONTRACT §10, proto/audit.md "policy.apply"), so that an
 * operator who grants itself zero-approval payments shows in the log, not
 * only a new hash.  Pure JSON: no I/O.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define POLICY_CHANGES_MAX	100	/* names listed per list */

/*
 * The changes from policy text old (NULL: none before) to text, both
 * valid policies: {"principals", "roles", "rules", "limits"} each
 * {"added", "removed", "changed"} (only the non-empty ones; lists of at
 * most POLICY_CHANGES_MAX names, "more": how many were left out), and
 * "other": the other top-level members that changed.  Principals, roles
 * and limits are named; a role compares without its rules; rules are
 * {"role", "tool"} ("effect": "deny" for deny rules), a rule "changed"
 * when its role has one of that tool and effect in both versions but not
 * the same one.  A new reference, or NULL (out of memory, or a text that
 * is not JSON).
 */
json_t	*policy_changes(const char *old, size_t oldlen, const char *text,
	    size_t len);
