/*
 * lifecycle_impl: what the files of the lifecycle module share and nobody
 * else may use — the one transition point (lc_apply), the one audit
 * point (lc_audit), and the evaluation both a decision and an approval's
 * re-decision use.
 */
#pragma once

#include <jansson.h>

#include "lifecycle.h"

/* The actor of changes the broker makes by itself (expiries). */
#define LC_ACTOR_BROKER	"toolgated"

enum lc_kind {
	LC_INSERT,	/* a new intent, decided */
	LC_MOVE,	/* a status change */
	LC_REDEEM	/* an allowed intent's grant used */
};

/* One change of an intent's state and the audit record that says so. */
struct lc_change {
	enum lc_kind		 kind;
	const struct intent_row	*row;		/* LC_INSERT */
	struct intent_move	 move;		/* LC_MOVE */
	const char		*id;		/* LC_REDEEM */
	const char		*by;		/* LC_REDEEM */
	int64_t			 now;
	const char		*actor;		/* the audit record's */
	const char		*event;
	json_t			*details;	/* borrowed */
};

/*
 * Apply c through the store and append its audit record; a status change
 * is noted in d->changed.  This is the one place an intent's state
 * changes: what must happen with every change (usage counters of
 * cumulative limits, outbox events) belongs here.  REASON_OK,
 * E_ALREADY_DECIDED (a move whose intent was not in move.from),
 * E_ALREADY_REDEEMED, or E_UNAVAILABLE.  Nothing is written unless
 * REASON_OK.
 */
enum reason lc_apply(struct decider *d, const struct lc_change *c);
/* Mark allowed intent id redeemed by who (for tool; via, when not NULL,
 * says how: "mcp"), audited "redemption".  As lc_apply's results. */
enum reason lc_redeem_apply(struct decider *d, const char *id,
	    const char *who, const char *tool, const char *via, int64_t now);
/*
 * Append one audit record: the one place every record is written (what
 * every record needs, e.g. authentication or a SIEM event, goes here).
 * details borrowed (may be NULL).  REASON_OK or E_UNAVAILABLE.
 */
enum reason lc_audit(struct decider *d, int64_t now, const char *actor,
	    const char *event, const char *intent_id, json_t *details);

/*
 * What the policy in force (and the engaged switches) say about call.  No
 * policy is default deny; a covering kill switch overrides everything (the
 * call's amount is then its claim).
 */
void	lc_evaluate(const struct decider *d, const struct policy_call *call,
	    struct evaluation *ev);
