/*
 * audit_trust: what the broker does not take on trust (CONTRACT §10,
 * proto/audit.md "What the broker checks").  One per process, shared by
 * its threads.  It holds the audit keys (audit_tag.h) and the newest
 * record this process has verified (the "known head"), and:
 *
 * - at start, verifies the chain from the broker's anchor (its newest
 *   checkpoint, kept in a file outside the database), or from the cut,
 *   or from genesis: a chain that no longer holds the anchor's record
 *   with the anchor's hash was truncated, rewritten or rolled back;
 * - on every transaction's first append, and whenever it is about to
 *   rely on a row, checks that the chain extends the known head, after
 *   verifying whatever other processes appended since (O(records since));
 * - tags every record it appends (the audit key);
 * - hands out a grant only for an intent whose allowing record is tagged
 *   and matches the intent row, and lets a policy load only when its body
 *   matches its tagged policy.apply record.
 *
 * A break — a record that does not verify, a head that went backwards or
 * changed, a row that contradicts its tagged records — is logged once
 * with the first bad record and makes the trust "broken" for good: the
 * lifecycle then refuses every change and every grant (503 unavailable)
 * until the database is repaired and the process restarted.  It never
 * heals itself.
 *
 * A trust without guard (toolgatectl --db with --audit-key) only tags:
 * a short-lived tool has no head to keep.  No HTTP, no threads of its
 * own; the daemon calls the periodic checks (refresh, anchor) itself.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit.h"
#include "audit_tag.h"
#include "checkpoint.h"
#include "grant.h"
#include "rows.h"
#include "store.h"

#define AUDIT_WHY_MAX	256

/* What the current transaction appended (one per decider). */
struct audit_tx {
	int			 checked;	/* head checked this tx */
	int			 appended;
	struct audit_head	 head;		/* after the last append */
};

struct audit_trust {
	const struct audit_keys	*keys;		/* borrowed; k[0] tags */
	int			 guard;		/* check heads: a broker */
	pthread_mutex_t		 lock;		/* what follows */
	struct audit_head	 known;		/* newest verified record */
	int			 tagged;	/* widening records must be */
	int			 broken;	/* never cleared */
	int64_t			 bad_seq;	/* first bad record, or 0 */
	char			 why[AUDIT_WHY_MAX];
};

/* keys borrowed (must outlive t); guard: a broker (head checks). */
int	audit_trust_init(struct audit_trust *t, const struct audit_keys *keys,
	    int guard);
void	audit_trust_deinit(struct audit_trust *t);

/* 1 once a break was found (then never 0 again). */
int	audit_trust_broken(struct audit_trust *t);
/* The break, for answers and metrics: why (copied) and its record. */
void	audit_trust_state(struct audit_trust *t, int64_t *bad_seq, char *why,
	    size_t whylen, struct audit_head *known);
/* Record a break at record seq (0: not one record) and log it, once. */
void	audit_trust_break(struct audit_trust *t, int64_t seq, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));

/* How a start went (audit_trust_start). */
struct audit_start {
	struct audit_head	 from;		/* verified after this record */
	const char		*from_what;	/* "anchor", "cut", "genesis" */
	int64_t			 records;	/* verified */
	int64_t			 tagged;	/* of those, tags that verified */
	double			 seconds;
};

/*
 * Verify the chain at start: from the anchor in anchor_path (NULL: none;
 * a missing file: none), else from the cut (whose checkpoint must verify
 * with grant_key), else from genesis, to the newest record; set the known
 * head.  0 when it was checked (a break is then in the trust, logged),
 * -1 on a storage error.
 */
int	audit_trust_start(struct audit_trust *t, struct store *s,
	    const char *anchor_path, const struct grant_keyring *grant_keys,
	    struct audit_start *out);
/*
 * Write the known head to anchor_path (atomically, mode 0600), tagged,
 * unless the trust is broken.  0, or -1 (logged).
 */
int	audit_trust_save_anchor(struct audit_trust *t, const char *anchor_path,
	    int64_t now);

/*
 * Check that the chain as this connection sees it now still extends the
 * known head, verifying the records appended since: outside a
 * transaction, or inside one before its first append.  0, or -1 (broken,
 * or storage failed).
 */
int	audit_trust_refresh(struct audit_trust *t, struct store *s);

/*
 * Append one record in the current transaction of s, tagged; the first
 * append of a transaction checks the head first (tx tracks that).
 * details borrowed.  0, or -1 (broken: refused; or storage failed).
 */
int	audit_trust_append(struct audit_trust *t, struct audit_tx *tx,
	    struct store *s, int64_t now, const char *actor, const char *event,
	    const char *intent_id, json_t *details);
/* After the transaction committed: its appends are known.  Resets tx. */
void	audit_trust_committed(struct audit_trust *t, struct audit_tx *tx);
void	audit_tx_reset(struct audit_tx *tx);

/*
 * 1 if a grant may be minted for r (an allowed, unredeemed intent as
 * read): the chain extends the known head, and r's allowing record — its
 * "decision" with status allowed, or the "approval" that released it —
 * is tagged and matches r (agent, tool, args, amount, intent_sha256, the
 * approvers).  0 otherwise; a row that contradicts its tagged records is
 * a break.  tx is the transaction of s the check runs in (NULL: none);
 * once it has appended, the head is not checked again (refresh's rule).
 */
int	audit_trust_grant(struct audit_trust *t, const struct audit_tx *tx,
	    struct store *s, const struct intent_row *r);
/*
 * 0 if policy version (body, len) may be loaded: it is the version of
 * the newest policy.apply record, which is tagged, and its body's
 * SHA-256 is the record's.  -1 otherwise (logged; a mismatch is a break).
 * version 0 (no policy) is always 0.
 */
int	audit_trust_policy(struct audit_trust *t, struct store *s,
	    int64_t version, const char *body, size_t len);
/*
 * 1 when the newest policy.apply record is tagged by t's keys and names
 * version with body's SHA-256 (whether or not t guards a broker), else 0.
 * Logs nothing, breaks nothing: a policy apply asks it to know whether
 * the bytes in force are already on a tagged record.
 */
int	audit_trust_policy_tagged(const struct audit_trust *t,
	    struct store *s, int64_t version, const char *body, size_t len);
/*
 * The "args_mac" of a decision record: HMAC of the intent's stored
 * canonical args text under the tagging key, so the allowing record
 * binds them without showing redacted values.  0 or -1.
 */
int	audit_trust_args_mac(const struct audit_trust *t, const char *args,
	    char out[65]);

/*
 * A signed checkpoint of the newest verified record, after a refresh
 * (compact JWS, malloc'd; *cp its claims), signed by key with header (the
 * grant signer's).  NULL when the trust is broken (nothing is signed over
 * a break) or on error.  This is what GET /v1/audit/checkpoint answers
 * and what an audit.checkpoint event carries.
 */
char	*audit_trust_checkpoint(struct audit_trust *t, struct store *s,
	    EVP_PKEY *key, json_t *header, int64_t now, struct checkpoint *cp);
