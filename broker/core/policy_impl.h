/*
 * policy_impl: what the files of the policy module share and nobody else
 * may use — the document's limits, the name and pattern grammar, the
 * validator that policy_parse runs before it builds a snapshot, and the
 * snapshot's view of a rule's "amount_from" and "args" (built and read by
 * policy_args.c, decided on by policy.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "amount.h"
#include "arena.h"

struct arena;
struct policy_call;

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
/* v2 (CONTRACT §8) */
#define POLICY_MAX_SCALE	6
#define POLICY_MAX_CONDITIONS	64	/* pointers in one rule's "args" */
#define POLICY_MAX_ONE_OF	1000	/* values in one_of / not_one_of */
#define POLICY_MAX_EACH_DEPTH	8	/* "each" inside "each" ... */
#define POLICY_MAX_LENGTH_CAP	65536	/* largest max_length */
#define POLICY_MAX_LIMITS	1000
#define POLICY_MAX_LIMIT_NAME	64
#define POLICY_MAX_PER		8
#define POLICY_MIN_WINDOW	60
#define POLICY_MAX_WINDOW	31536000
#define POLICY_MAX_COUNT	1000000000

/* Tool names [a-z0-9_-]+(.[a-z0-9_-]+)* of len bytes, <= POLICY_MAX_TOOL. */
int	policy_tool_name_validn(const char *s, size_t len);
/* An exact tool name or "prefix.*" with a valid prefix, upper case
 * allowed (the grammar CONTRACT §9 widens for MCP names). */
int	policy_pattern_valid(const char *s, size_t len);
/* Principal and role names: 1..POLICY_MAX_NAME bytes, no controls. */
int	policy_name_valid(const char *s, size_t len);

/*
 * The JSONPath segment (proto/policy.md "Errors") naming object member
 * key (len bytes): ".key", or ["key"] with '"' and '\' escaped and
 * controls as \u00XX.  out needs room for 6 * len + 5 bytes; it is
 * NUL-terminated and the segment's length returned.
 */
size_t	policy_path_key(char *out, const char *key, size_t len);

/*
 * Check a parsed document (text, len bytes, is what it was parsed from)
 * against CONTRACT §5 and §8 and proto/policy.md, collecting every
 * problem with its JSON path.  0 when valid; 1 when not, with *errors a
 * new array of {"path", "message"}; -1 out of memory.
 */
int	policy_validate(json_t *doc, const char *text, size_t len,
	    json_t **errors);

/* ---- a rule's view of args (policy_args.c) ---- */

/* The keys of a condition, in the order they are checked. */
enum cond_key {
	COND_PRESENT,
	COND_ONE_OF,
	COND_NOT_ONE_OF,
	COND_PREFIX,
	COND_SUFFIX,
	COND_MAX_LENGTH,
	COND_MIN,
	COND_MAX,
	COND_EACH,
	COND__COUNT
};

/* Its name as the policy writes it ("one_of"), static text. */
const char	*policy_cond_key_name(enum cond_key k);

struct cond {
	unsigned	 has;		/* 1u << COND_* for each key given */
	int		 present;
	const char	**one_of;	/* RFC 8785 text of each value */
	size_t		 n_one_of;
	const char	**not_one_of;
	size_t		 n_not_one_of;
	const char	*prefix, *suffix;
	size_t		 prefix_len, suffix_len;
	int64_t		 max_length;	/* code points */
	struct amount	 min, max;
	struct cond	*each;
};

/* One entry of a rule's "args": a pointer into args and its condition. */
struct arg_cond {
	const char	*pointer;
	size_t		 pointer_len;
	struct cond	 cond;
};

struct amount_from {
	const char	*value;		/* pointer into args */
	size_t		 value_len;
	const char	*currency_ptr;	/* pointer into args, or NULL ... */
	size_t		 currency_ptr_len;
	char		 currency[4];	/* ... and this fixed code */
	int		 scale;
};

/* A rule's "args" (an object the validator accepted) into the arena:
 * 0, or -1 out of memory. */
int	policy_build_conds(struct arena *a, json_t *args, struct arg_cond **out,
	    size_t *n);
/* A rule's "amount_from" (accepted by the validator) into the arena. */
int	policy_build_amount_from(struct arena *a, json_t *af,
	    struct amount_from **out);

enum cond_result {
	COND_HOLDS,
	COND_FAILS,
	COND_UNKNOWN	/* could not be judged (out of memory) */
};

/* Where a condition failed: which entry, which key, and the member's
 * pointer (an element's, inside "each"), cut to fit. */
struct cond_failure {
	const struct arg_cond	*entry;
	enum cond_key		 key;
	char			 where[160];
};

/*
 * Whether every condition of conds (n entries) holds for args (NULL: no
 * args; every member is missing).  On COND_FAILS, *why says the first
 * failure in rule order.  COND_UNKNOWN when a check ran out of memory:
 * the caller fails closed (an allow rule does not allow, a deny rule
 * denies).
 */
enum cond_result policy_conds_check(const struct arg_cond *conds, size_t n,
	    const json_t *args, struct cond_failure *why);

enum amount_read {
	AMOUNT_READ_OK,
	AMOUNT_READ_MISSING,	/* no member at value (or currency) */
	AMOUNT_READ_INVALID	/* present but malformed: msg says why */
};

/*
 * The amount af finds in the call's args: AMOUNT_READ_OK with *out (value
 * and currency) and text (AMOUNT_MAX_TEXT bytes, the value as the policy
 * shows it); AMOUNT_READ_MISSING; or AMOUNT_READ_INVALID with msg
 * (msgsz bytes) saying what is wrong and what to send instead.  A JSON
 * number is read from call->args_json, exactly as written.
 */
enum amount_read policy_amount_read(const struct amount_from *af,
	    const struct policy_call *call, struct amount *out, char *text,
	    char *msg, size_t msgsz);

/*
 * The RFC 8785 text of the usage key for per (n entries) and call:
 * CONTRACT §8.3, struct policy_limit_use in policy.h.  malloc'd, or NULL
 * when out of memory.
 */
char	*policy_limit_key(const char *const *per, size_t n,
	    const struct policy_call *call);

/* ---- the snapshot (built by policy.c, read by policy_warn.c) ---- */

struct tier {
	struct amount	 max;
	int		 approvals;
	const char	*max_text;	/* as written in the policy */
};

struct currency {
	char		 code[4];
	struct tier	*tiers;
	size_t		 n_tiers;
};

struct rule {
	const char	*tool;
	int		 deny;
	int		 approvals;	/* rules without currencies */
	struct currency	*currencies;
	size_t		 n_currencies;	/* 0: no "currencies" */
	const char	**approvers;
	size_t		 n_approvers;
	int64_t		 ttl;
	int		 max_approvals;	/* the most any call can need */
	struct amount_from *af;		/* NULL: the amount claim */
	struct arg_cond	*conds;		/* "args" */
	size_t		 n_conds;
};

/* A run of rule indexes (ascending) inside role->idx. */
struct span {
	size_t		 start;
	size_t		 n;
};

struct role {
	const char	*name;
	int		 operator;
	int		 approver;	/* named in some rule's "approvers" */
	struct rule	*rules;
	size_t		 n_rules;
	const char	**redeem;
	size_t		 n_redeem;
	struct htab	 exact;		/* tool -> struct span */
	struct htab	 prefix;	/* "a.b" of "a.b.*" -> struct span */
	int		*idx;
};

struct principal {
	const char	*name;
	int		 disabled;
	struct role	**roles;
	size_t		 n_roles;
};

struct redact {
	const char	*pattern;
	const char	**fields;
	size_t		 n_fields;
};

struct policy {
	struct arena	 arena;
	struct htab	 principals;	/* name -> struct principal */
	struct htab	 roles;		/* name -> struct role */
	struct role	*role_list;
	size_t		 n_roles;
	struct principal **principal_list;	/* document order */
	size_t		 n_principals;
	struct redact	*redact;
	size_t		 n_redact;
	struct policy_limit *limits;
	struct htab	*limit_principals;	/* per limit; 0 keys: all */
	size_t		 n_limits;
};

