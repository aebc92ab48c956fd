/*
 * outbox: the events of CONTRACT §10, written into the durable outbox in
 * the same transaction as the change they report — so a crash can
 * neither lose the event of a committed change nor send one for a change
 * that did not commit.  This module owns the event types and the
 * patterns that select them, which sinks want which event (the rules),
 * what each event's data holds, and writing the rows; the lifecycle
 * calls it from its two hook points (lc_apply, lc_audit).  Delivering
 * them is the daemon's sender (broker/daemon/events_send.c); rendering a
 * delivery's body and signature is webhook.c.  No I/O but the store.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

#include "rows.h"

struct decider;

enum outbox_type {
	EV_INTENT_PENDING,
	EV_INTENT_ALLOWED,
	EV_INTENT_REJECTED,
	EV_INTENT_EXPIRED,
	EV_KILLSWITCH_TRIPPED,
	EV_KILLSWITCH_RESET,
	EV_POLICY_APPLIED,
	EV_AUDIT_RECORD,
	EV_AUDIT_CHECKPOINT,
	EV__COUNT
};
#define EV_BIT(t)	(1u << (t))
#define EV_ALL		(EV_BIT(EV__COUNT) - 1)
/* What a sink gets without events=: every type but audit.record. */
#define EV_DEFAULT	(EV_ALL & ~EV_BIT(EV_AUDIT_RECORD))

#define OUTBOX_SINKS_MAX	32	/* notify lines */
#define OUTBOX_NAME_MAX		64	/* [a-z0-9_-]{1,64} */
#define OUTBOX_EVENTS_MAX	512	/* bytes of one events= list */
#define OUTBOX_EVENT_ID_LEN	35	/* "ev_" and 32 hex digits */
#define OUTBOX_BACKOFF_MAX	600	/* s between attempts at most */

const char	*outbox_type_name(enum outbox_type t);
/* 0 and *t for a type's name, or -1. */
int		 outbox_type_parse(const char *name, enum outbox_type *t);

/*
 * The types a comma-separated list of patterns selects (each a type or
 * "prefix.*", e.g. "intent.*,audit.checkpoint") into *mask.  0, or -1
 * with why (static text) for an empty list, an empty or malformed
 * pattern, or one that selects no type.
 */
int	outbox_patterns(const char *list, unsigned *mask, const char **why);
/* Seconds to wait after the nth failed attempt in a row (n >= 1): 1, 2,
 * 4, ... doubling, at most OUTBOX_BACKOFF_MAX (CONTRACT §10). */
int64_t	outbox_backoff(int64_t n);
/* 1 if name is a valid sink name. */
int	outbox_sink_name_valid(const char *name);

/* Which sinks want which types: the daemon's notify lines, or what the
 * brokers registered in the database (outbox_rules_load). */
struct outbox_rules {
	size_t		 n;
	struct {
		char	 name[OUTBOX_NAME_MAX + 1];
		unsigned types;		/* EV_BIT mask */
	}		 sink[OUTBOX_SINKS_MAX];
	unsigned	 any;		/* the union of every sink's types */
};

/* Add a sink (name valid, types from outbox_patterns).  0, or -1 when
 * the table is full or the name is there already. */
int	outbox_rules_add(struct outbox_rules *r, const char *name,
	    unsigned types);
/*
 * The rules of the sinks the brokers registered (notify_sinks), for a
 * writer that has no notify lines of its own (toolgatectl --db): its
 * changes reach the same sinks when a broker runs.  0 or -1.
 */
int	outbox_rules_load(struct store *s, struct outbox_rules *r);

/*
 * A sink's stored state as an item of GET /v1/events/status (new
 * reference): {name, target, events, queued, oldest_queued_at,
 * delivered, failed, given_up, dropped, failing (failed attempts in a
 * row), next_attempt_at, last_error, last_error_at, last_delivered_at,
 * lease: {owner, until}}.  NULL when out of memory.
 */
json_t	*outbox_sink_json(const struct sink_row *r, int64_t now);

/* A fresh event id ("ev_", then time and randomness).  0 or -1. */
int	outbox_event_id(char out[OUTBOX_EVENT_ID_LEN + 1]);

/*
 * Write one event of type t (at time at, data borrowed, may be NULL for
 * audit.record, whose record audit_seq names) for every sink of r that
 * wants it, inside the caller's transaction.  Call it after the audit
 * record of the change is appended: then, on an engine where writers
 * meet only at the audit chain head, the outbox order is the commit
 * order.  0 (also when no sink wants t), or -1.
 */
int	outbox_emit(struct store *s, const struct outbox_rules *r,
	    enum outbox_type t, int64_t at, json_t *data, int64_t audit_seq);

/*
 * The lifecycle's hooks, inside its transaction, after the change's audit
 * record; nothing is written when no sink wants the type (d->cfg.outbox
 * NULL, or no sink matches).  outbox_on_intent: a new intent (inserted)
 * that is pending gives intent.pending, with its args as its audit
 * record (details, borrowed) keeps them — redacted fields stay redacted;
 * a status change (moved) out of pending gives intent.allowed, rejected
 * or expired.  outbox_on_audit: audit.record for every record, and
 * killswitch.tripped / reset and policy.applied from theirs.  Both note
 * d->changed.events when they wrote.  0 or -1.
 */
int	outbox_on_intent(struct decider *d, const struct intent_row *inserted,
	    const struct intent_move *moved, int64_t now, json_t *details);
int	outbox_on_audit(struct decider *d, int64_t now, const char *actor,
	    const char *event, json_t *details);

/*
 * The data of an audit.checkpoint event at now, {seq, hash, at}, from the
 * chain head the store holds (new reference), or NULL.
 */
json_t	*outbox_checkpoint_data(struct store *s, int64_t now);
