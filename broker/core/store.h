/*
 * store: the rows behind decisions — policy versions, intents, replay
 * guards — and the JSON views of them the API answers with.  Runs inside
 * transactions opened by the caller unless a function says otherwise.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* Current policy version, 0 when none; never reads the body.  0 or -1. */
int	store_policy_version(struct db *db, int64_t *version);

/* Current policy version (0 when none) and its text (malloc'd, NULL when
 * none; *len when len is not NULL).  0 or -1. */
int	store_policy_current(struct db *db, int64_t *version, char **body,
	    size_t *len);

/*
 * Store an already validated policy text as a new version and audit it
 * ("policy.apply" by actor), in its own transaction.  *version gets the new
 * number.  0 or -1.
 */
int	store_policy_apply(struct db *db, const char *text, size_t len,
	    const char *actor, int64_t *version);

/*
 * One intent row.  Strings are borrowed (from the caller or from a live
 * statement); NULL means SQL NULL.  Times are unix seconds, 0 = none.
 */
struct intent_record {
	const char	*id;
	const char	*agent;
	const char	*jti;
	const char	*tool;
	const char	*args;		/* canonical JSON object text */
	const char	*amount_value;
	const char	*amount_currency;
	const char	*agent_reason;
	const char	*status;
	const char	*decision;
	const char	*reason_code;
	const char	*reason_text;
	const char	*rule;		/* JSON object text */
	const char	*approver_roles;	/* JSON array text */
	const char	*intent_sha256;
	int64_t		 policy_version;
	int64_t		 created_at;
	int64_t		 expires_at;
	int64_t		 decided_at;
	int64_t		 redeemed_at;
	const char	*closed_by;	/* who rejected it */
	const char	*closed_reason;
	int		 approvals_required;
};

/*
 * Record (iss, jti) as used until prune_at.  0 when new, 1 when the pair
 * was seen before (a replay), -1 on error.
 */
int	store_jti_claim(struct db *db, const char *iss, const char *jti,
	    int64_t prune_at);
/* Drop replay guards whose prune_at has passed.  0 or -1. */
int	store_jti_prune(struct db *db, int64_t now);

/* Insert a decided intent.  0 or -1. */
int	store_intent_insert(struct db *db, const struct intent_record *r);

/*
 * The API view of an intent (proto/decision.schema.json) without grant
 * fields: new reference, NULL on allocation failure.
 */
json_t	*store_intent_json(const struct intent_record *r);

/*
 * Load intent id as its API view with its approvals.  Returns 1 and sets
 * *view (new reference) when found, 0 when not, -1 on error.
 */
int	store_intent_get(struct db *db, const char *id, json_t **view);

/*
 * Append to items the views of intents with status: "pending" oldest
 * first, any other status (of intents that needed approval) newest first;
 * at most limit.  0 or -1.
 */
int	store_intent_list(struct db *db, const char *status, int64_t limit,
	    json_t *items);

/*
 * Record approver's approval of id (each approver counts once) and set
 * *count to the approvals now held.  0 when added, 1 when approver had
 * already approved, -1 on error.  Inside the caller's transaction.
 */
int	store_approval_add(struct db *db, const char *id, const char *approver,
	    int64_t now, const char *comment, int *count);

/*
 * Move a pending intent to status ("allowed", "rejected", "expired") at
 * now, noting by and why (may be NULL).  0 done, 1 when it was no longer
 * pending, -1 on error.  Inside the caller's transaction.
 */
int	store_intent_close(struct db *db, const char *id, const char *status,
	    int64_t now, const char *by, const char *why);

/* Append to ids (array) up to limit pending intents whose expires_at has
 * passed.  0 or -1. */
int	store_expired_due(struct db *db, int64_t now, int64_t limit,
	    json_t *ids);

/* A fresh intent id: "in_" and 32 lowercase hex characters.  out >= 36. */
int	store_new_id(char *out, size_t outlen);
