/*
 * policy_impl: what the files of the policy module share and nobody else
 * may use — the document's limits, the name and pattern grammar, and the
 * validator that policy_parse runs before it builds a snapshot.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define POLICY_MAX_PRINCIPALS	100000
#define POLICY_MAX_ROLES	10000
#define POLICY_MAX_RULES	10000
#define POLICY_MAX_CURRENCIES	64
#define POLICY_MAX_TIERS	32
#define POLICY_MAX_APPROVALS	16
#define POLICY_MAX_TTL		604800
#define POLICY_MAX_NAME		256
#define POLICY_MAX_TOOL		128
#define POLICY_MAX_ERRORS	1000

/* Tool names [a-z0-9_-]+(.[a-z0-9_-]+)* of len bytes, <= POLICY_MAX_TOOL. */
int	policy_tool_name_validn(const char *s, size_t len);
/* An exact tool name or "prefix.*" with a valid prefix, upper case
 * allowed (the grammar CONTRACT §9 widens for MCP names). */
int	policy_pattern_valid(const char *s, size_t len);
/* Principal and role names: 1..POLICY_MAX_NAME bytes, no controls. */
int	policy_name_valid(const char *s, size_t len);

/*
 * Check a parsed document against CONTRACT §5 and proto/policy.md,
 * collecting every problem with its JSON path.  0 when valid; 1 when not,
 * with *errors a new array of {"path", "message"}; -1 out of memory.
 */
int	policy_validate(json_t *doc, json_t **errors);
