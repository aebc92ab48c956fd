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
 * lifecycle (lifecycle.c lc_audit) is the one caller of audit_append.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define AUDIT_MAX_DEPTH	64	/* nesting of details; well under jansson's 2048 */
#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_FORMAT	2	/* what audit_append writes: RFC 8785 */

/* Append one record; details is borrowed (may be NULL).  0 or -1. */
int	audit_append(struct store *s, int64_t now, const char *actor,
	    const char *event, const char *intent_id, json_t *details);

struct audit_check {
	int64_t	 count;		/* records that verified */
	int64_t	 bad_seq;	/* first record that did not, or 0 */
	char	 why[160];	/* what was wrong with it */
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

/* Walk the whole chain.  0 all good, 1 broken (see r), -1 error. */
int	audit_verify(struct store *s, struct audit_check *r);

/*
 * Records with seq > after, at most limit (0 = no limit), in order; cb gets
 * each record as JSON {seq, at, actor, event, intent_id, details,
 * prev_hash, hash} (borrowed) and stops the walk by returning non-zero.
 * Returns 0, -1 on error.
 */
int	audit_each(struct store *s, int64_t after, int64_t limit,
	    int (*cb)(json_t *rec, void *arg), void *arg);
