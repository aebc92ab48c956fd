/*
 * usage: usage of the policy's cumulative limits (CONTRACT §8.3) — what
 * a call would bring each limit that applies to it to, and the verdict
 * (deny over a limit, or more approvals); reserving usage for a new
 * intent and freeing it when the intent leaves pending or allowed;
 * recounting a limit a new policy adds or changes; and reading usage for
 * GET /v1/limits, toolgatectl limits and explain.
 *
 * Usage is kept per (limit, key) as a running total over per-second
 * buckets (store.h, migrations/0004): a check reads one row per limit
 * that applies and drops the buckets that left the window, so it costs
 * O(limits that apply) however long the history.  Inside a write
 * transaction every row touched is held in a struct usage_tx — read
 * once (and locked) per transaction, changed in memory, written back by
 * usage_tx_flush before the commit — so a batch of decisions sees each
 * other's usage and pays one read and one write per key, not per call.
 * The rows stay held after the commit, and the next transaction starts
 * from them unless another connection may have written in between
 * (store.h others_wrote): on SQLite a hot key is then read once, not
 * once per batch.
 *
 * Sums are exact: amounts in micro-units in 128-bit integers (one amount
 * is below 10^21 micro-units, 128 bits hold 1.7 × 10^38); a total that
 * would not fit its stored form (whole units in 64 bits) is refused as a
 * storage error, never wrapped.
 *
 * No policy decisions of its own beyond the limits (policy.c decides the
 * rules), no HTTP, no clock: the lifecycle passes "now".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy.h"
#include "reason.h"
#include "rows.h"
#include "store.h"

/* Micro-units of an amount limit, or calls of a count limit. */
__extension__ typedef unsigned __int128 usage_units;

#define USAGE_UNITS_TEXT	48	/* a usage_units amount as decimal */
/* Buckets walked to find when a breached limit fits again; past this,
 * frees_at is "when all of today's usage has left" (an upper bound). */
#define USAGE_WALK_MAX		100000

/* The usage one write transaction has read and changed. */
struct usage_tx;

struct usage_tx *usage_tx_new(void);
void	usage_tx_free(struct usage_tx *tx);
/* Forget everything (after a rollback, or a change of policy). */
void	usage_tx_reset(struct usage_tx *tx);
/* At the start of a write transaction: keep what the last one left
 * unless another connection may have written since (store.h
 * others_wrote).  0, or -1 (roll back). */
int	usage_tx_begin(struct usage_tx *tx, struct store *s);
/* Write every changed row and bucket (before the commit): 0, or -1 (roll
 * back). */
int	usage_tx_flush(struct usage_tx *tx, struct store *s);
/* After the commit: what tx holds is what the store holds (a table grown
 * too large is dropped instead). */
void	usage_tx_committed(struct usage_tx *tx);

/* One limit that applies to a call, as the call finds it. */
struct limit_state {
	const struct policy_limit *limit;
	char		*key;		/* RFC 8785 array text, owned */
	int		 counts;	/* the call counts toward it */
	usage_units	 add;		/* what it adds: 1, or its amount */
	usage_units	 max;		/* max_count, or max_amount in units */
	int		 read;		/* used, n and oldest were read */
	usage_units	 used;		/* inside the window, without the call */
	int64_t		 n;		/* intents counted */
	int64_t		 oldest;	/* second of the oldest counted, 0 */
	int		 holds;		/* used + add <= max (or not counted) */
	int64_t		 frees_at;	/* !holds, named: when it fits; 0 never */
};

/* What the limits said about one call. */
struct limit_check {
	struct limit_state	*lim;
	size_t			 n;
	int			 named;	/* index of the limit the answer names,
					 * -1: none breached */
	/* approver roles when the limits asked for approvals (ev's point
	 * here; names point into the policy snapshot) */
	const char		**roles;
	size_t			 n_roles;
};

/*
 * Check call against the limits of p that apply to it, at now, and adjust
 * ev (policy_evaluate's verdict) by the contract: a call that would bring
 * a limit with "over": "deny" above its maximum is denied limit_exceeded;
 * else one over limits with "over": {approvals, approvers} is pending,
 * needing the most approvals any of them (and the rule) asks for, from
 * holders of roles every one of them (and the rule) names.  The named
 * limit (the first breached that decided) gets frees_at.  A call ev
 * already denies, or refuses with a 400, is not checked (explain still
 * reads the usage of a denied one).
 *
 * tx NULL: read only (explain), nothing locked or written, every limit
 * read even when the call does not count toward it; s NULL too: usage
 * unknown (not read), each limit judged by the call alone.  self_created, when
 * not 0, is the creation time of the pending intent being re-decided
 * (an approval): its own reservation is already in the usage, so it is
 * taken out before comparing.
 *
 * *out is filled (limit_check_clear it) whatever the result: REASON_OK,
 * or E_UNAVAILABLE (storage failed, or out of memory).
 */
enum reason usage_check(struct usage_tx *tx, struct store *s,
	    const struct policy *p, const struct policy_call *call,
	    struct evaluation *ev, int64_t now, int64_t self_created,
	    struct limit_check *out);
void	limit_check_clear(struct limit_check *lc);

/* Reserve a new intent's usage (principal's call, created at
 * created_at) under every limit of lc it counts toward.  REASON_OK or
 * E_UNAVAILABLE. */
enum reason usage_reserve(struct usage_tx *tx, struct store *s,
	    const struct limit_check *lc, const char *principal,
	    int64_t created_at);

/*
 * Free r's usage: it has just left pending or allowed (rejected,
 * expired).  Which limits and keys it counted under is computed again
 * from its stored args and amount under p, the policy in force — the one
 * its usage was counted for (usage_recount keeps that true).
 * REASON_OK or E_UNAVAILABLE.
 */
enum reason usage_release(struct usage_tx *tx, struct store *s,
	    const struct policy *p, const struct intent_row *r, int64_t now);

/*
 * p has just been applied: drop the usage of limits it no longer has,
 * and count afresh — from the pending and allowed intents of their
 * window — those it adds or whose tools, principals, per, window or
 * currency changed.  REASON_OK or E_UNAVAILABLE.
 */
enum reason usage_recount(struct usage_tx *tx, struct store *s,
	    const struct policy *p, int64_t now);

/*
 * The call a stored intent made, to compute its limits again or re-decide
 * it: *call borrows r's strings and *args (the caller's to json_decref,
 * NULL when r has none); the amount the decision judged becomes the
 * call's amount claim (*amount, *has_amount).  0, or -1 when the stored
 * args do not read back.
 */
int	usage_row_call(const struct intent_row *r, struct policy_call *call,
	    json_t **args, struct amount *amount, int *has_amount);

/* ---- views (usage_view.c) ---- */

/* The answer's "limit" member for lc's named limit: {"name", "max",
 * "used", "window", "frees_at"}; NULL when none (or out of memory). */
json_t	*usage_named_json(const struct limit_check *lc);
/* Human text for a decision the limits changed (approvals: what it now
 * needs; "" when none). */
void	usage_message(const struct limit_check *lc, int approvals, char *buf,
	    size_t len);
/*
 * Explain's view of every limit that applies: {"name", "key", "used",
 * "max", "currency", "window", "counts", "adds", "holds", "frees_at"}.
 */
json_t	*usage_explain_json(const struct limit_check *lc);

/*
 * One page of usage for GET /v1/limits and toolgatectl limits --db: the
 * usage rows after row id `after` (of agent, when not NULL) of limits p
 * has, live at now, appended to items as {"name", "key", "used", "max",
 * "currency", "window", "frees_at"} (frees_at: when the oldest intent
 * counted leaves the window).  At most max rows are looked at; *next is
 * the id to go on from, 0 when there are no more.  0 or -1.
 */
int	usage_list(struct store *s, const struct policy *p, const char *agent,
	    int64_t now, int64_t after, int64_t max, json_t *items,
	    int64_t *next);

/* units (micro-units of an amount) as the shortest decimal: "19999.98",
 * "0". */
void	usage_units_text(usage_units u, char buf[USAGE_UNITS_TEXT]);
