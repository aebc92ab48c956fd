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
	const struct limit_check *limits;	/* LC_INSERT: what it reserves */
};

/*
 * Apply c through the store and append its audit record and its outbox
 * event (outbox_on_intent); a status change is noted in d->changed.  This
 * is the one place an intent's state changes: what must happen with
 * every change (usage counters of cumulative limits, outbox events)
 * belongs here.  REASON_OK,
 * E_ALREADY_DECIDED (a move whose intent was not in move.from),
 * E_ALREADY_REDEEMED, or E_UNAVAILABLE.  Nothing is written unless
 * REASON_OK.
 */
enum reason lc_apply(struct decider *d, const struct lc_change *c);
/* Mark allowed intent id redeemed by who (for tool; via, when not NULL,
 * says how: "mcp"), audited "redemption".  As lc_apply's results. */
/* lc_may_grant without the audit check: for a row this transaction has
 * just decided itself, not read from the database. */
int	lc_grantable(const struct decider *d, const struct intent_row *r,
	    int64_t now);
enum reason lc_redeem_apply(struct decider *d, const char *id,
	    const char *who, const char *tool, const char *via, int64_t now);
/*
 * Append one audit record: the one place every record is written (what
 * every record needs, e.g. authentication or a SIEM event — the outbox's
 * audit.record, outbox_on_audit — goes here).
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

/* The decision's "rule" (role, index, tool, and tier or the condition
 * that failed); NULL when no rule decided (or out of memory). */
json_t	*lc_rule_json(const struct evaluation *ev);
/* ev's approver roles as a new array (NULL when out of memory). */
json_t	*lc_approver_roles_json(const struct evaluation *ev);

/* ---- cumulative limits (lifecycle_limits.c) ---- */

/*
 * The limits of the policy in force on call at now, after lc_evaluate:
 * ev adjusted (usage.h usage_check), *lc filled (limit_check_clear it
 * in any case).  self_created: the creation time of the pending intent an
 * approval re-decides, 0 for a new decision.  REASON_OK or E_UNAVAILABLE.
 */
enum reason lc_limits_check(struct decider *d, const struct policy_call *call,
	    struct evaluation *ev, int64_t now, int64_t self_created,
	    struct limit_check *lc);
/* The limit a decision named into r->limit_json.  0 or -1 (ENOMEM). */
int	lc_limits_row(const struct limit_check *lc, struct intent_row *r);
/*
 * What every change does to usage (called by lc_apply once the store has
 * it): a new pending or allowed intent reserves what c->limits says; an
 * intent leaving pending or allowed frees its usage.  REASON_OK or
 * E_UNAVAILABLE.
 */
enum reason lc_limits_apply(struct decider *d, const struct lc_change *c);
/* The policy text (validated) is being applied at now: keep usage true
 * to its limits (usage_recount).  REASON_OK or E_UNAVAILABLE. */
enum reason lc_limits_policy(struct decider *d, const char *text, size_t len,
	    int64_t now);
