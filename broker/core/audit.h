/*
 * audit: the tamper-evident log of CONTRACT §6 and §10, specified for
 * independent verifiers in proto/audit.md.  Each record's canonical bytes
 * {seq, at, actor, event, intent_id, details, format} are stored as
 * written; hash = SHA-256(prev_hash || canonical bytes), prev_hash of the
 * first record is 64 zeros.  Records carry "format": 2 and are RFC 8785
 * (JCS); records without it were written before (format 1: jansson's
 * compact sorted form) and keep verifying as such, but none may follow a
 * format 2 record.  Appends happen inside the caller's write transaction,
 * whose hold on the chain head (store.h audit_head) keeps the chain from
 * forking.  Records are read and written only through the store; the
 * lifecycle (lifecycle.c lc_audit, through audit_trust.h) is the one
 * writer.  Records the broker relies on also carry a "tag" (audit_tag.h);
 * the walks here check tags when given the keys.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "audit_tag.h"
#include "store.h"

#define AUDIT_MAX_DEPTH	64	/* nesting of details; well under jansson's 2048 */
#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_FORMAT	2	/* what audit_append writes: RFC 8785 */

/* Append one record, untagged; details is borrowed (may be NULL).  0 or
 * -1. */
int	audit_append(struct store *s, int64_t now, const char *actor,
	    const char *event, const char *intent_id, json_t *details);

/* Where an append left the chain: the record's seq and hash. */
struct audit_head {
	int64_t		 seq;
	char		 hash[65];
};

/*
 * Append one record, tagged under the first of keys unless keys is NULL;
 * *out (when not NULL) gets its seq and hash.  0 or -1.
 */
int	audit_append_tagged(struct store *s, const struct audit_keys *keys,
	    int64_t now, const char *actor, const char *event,
	    const char *intent_id, json_t *details, struct audit_head *out);

/*
 * 1 if the record (parsed body) widens what is allowed — an allow
 * decision, an approval, a policy application, a kill switch reset: the
 * records a broker with an audit key must have tagged (proto/audit.md).
 */
int	audit_widens(const json_t *rec);

struct audit_check {
	int64_t	 count;		/* records that verified */
	int64_t	 bad_seq;	/* first record that did not, or 0 */
	char	 why[160];	/* what was wrong with it */
	int64_t	 tagged;	/* of count, how many tags verified */
};

/*
 * The canonical bytes of one record body (a record without prev_hash and
 * hash) in the form its "format" member names (absent: format 1).  last
 * is the previous record's format (0 before the first) and becomes this
 * record's.  Returns NULL with the malloc'd bytes in *text (length in
 * *len), or why the record cannot stand in the chain (static text).
 */
const char	*audit_canonical(const json_t *body, int *last, char **text,
		    size_t *len);

/*
 * Walk the whole chain kept in the database: from the genesis hash, or
 * from the cut when it was pruned (store.h audit_cut).  keys NULL: tags
 * are not checked (a malformed one still breaks the chain).  0 all good,
 * 1 broken (see r), -1 error.
 */
int	audit_verify(struct store *s, struct audit_check *r);
int	audit_verify_keyed(struct store *s, const struct audit_keys *keys,
	    struct audit_check *r);

/* A walk over part of the chain: where it starts, what it checks. */
struct audit_walk_spec {
	struct audit_head	 from;	/* the records after this one */
	const struct audit_keys	*keys;	/* NULL: tags not checked */
	/* Set: a widening record without a tag that verifies breaks the
	 * chain.  Set by the walk at the first tag that verifies. */
	int			 tagged;
	int			 fast;	/* skip the canonical-form check */
	struct audit_head	 last;	/* out: the last good record */
};

/*
 * Verify the records after spec->from (a record of the chain the caller
 * trusts), to the newest: hashes, linkage, seq, the columns against the
 * hashed bytes, tags.  0 all good, 1 broken (see r), -1 error.
 */
int	audit_verify_walk(struct store *s, struct audit_walk_spec *spec,
	    struct audit_check *r);
/*
 * Check one record given as JSON (as exported), which must follow prev
 * and be record number expect; its hash into hash.  *format is the
 * previous record's format (0 before the first) and becomes this one's;
 * *tagged as in audit_walk_spec.  NULL, or why it does not verify.
 */
const char *audit_check_json(const json_t *rec, const char *prev,
	    int64_t expect, const struct audit_keys *keys, int *format,
	    int *tagged, int *tag_ok, char hash[65]);

/*
 * Records with seq > after, at most limit (0 = no limit), in order; cb gets
 * each record as JSON {seq, at, actor, event, intent_id, details,
 * prev_hash, hash} (borrowed) and stops the walk by returning non-zero.
 * Returns 0, -1 on error.
 */
int	audit_each(struct store *s, int64_t after, int64_t limit,
	    int (*cb)(json_t *rec, void *arg), void *arg);
