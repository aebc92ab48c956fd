/*
 * lifecycle_limits: where the lifecycle meets cumulative limits
 * (usage.h).  A decision and an approval's re-decision check the limits
 * with the decider's transaction, so that every decision of a batch sees
 * the usage of the ones before it; lc_apply tells the limits about each
 * change of state, so that usage follows the intents: reserved when one
 * is made pending or allowed, freed when it is rejected or expires.
 * Nothing here decides a rule or writes an audit record.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "lifecycle_impl.h"
#include "log.h"

/* The decider's usage of this transaction, made on first use. */
static struct usage_tx *
lc_limits_tx(struct decider *d)
{
	if (d->limits == NULL)
		d->limits = usage_tx_new();
	return (d->limits);
}

enum reason
lc_limits_check(struct decider *d, const struct policy_call *call,
    struct evaluation *ev, int64_t now, int64_t self_created,
    struct limit_check *lc)
{
	struct usage_tx	*tx;

	memset(lc, 0, sizeof(*lc));
	lc->named = -1;
	if (policy_limit_count(d->policy) == 0)
		return (REASON_OK);
	if ((tx = lc_limits_tx(d)) == NULL)
		return (E_UNAVAILABLE);
	return (usage_check(tx, d->store, d->policy, call, ev, now,
	    self_created, lc));
}

int
lc_limits_row(const struct limit_check *lc, struct intent_row *r)
{
	json_t	*v;

	if (lc->named < 0)
		return (0);
	if ((v = usage_named_json(lc)) == NULL)
		return (-1);
	r->limit_json = canon_dump(v);
	json_decref(v);
	return (r->limit_json != NULL ? 0 : -1);
}

/* 1 if moving from `from` to `to` ends what an intent counts for. */
static int
lc_frees(enum intent_status from, enum intent_status to)
{
	return ((from == ST_PENDING || from == ST_ALLOWED) &&
	    to != ST_PENDING && to != ST_ALLOWED);
}

enum reason
lc_limits_apply(struct decider *d, const struct lc_change *c)
{
	struct intent_row	 r;
	struct usage_tx	*tx;
	enum reason		 rc;
	int			 found;

	if (c->kind == LC_INSERT) {
		if (c->limits == NULL || c->limits->n == 0 ||
		    (c->row->status != ST_PENDING &&
		    c->row->status != ST_ALLOWED))
			return (REASON_OK);
		if ((tx = lc_limits_tx(d)) == NULL)
			return (E_UNAVAILABLE);
		return (usage_reserve(tx, d->store, c->limits, c->row->agent,
		    c->row->created_at));
	}
	if (c->kind != LC_MOVE || !lc_frees(c->move.from, c->move.to))
		return (REASON_OK);
	/* Freed under the policy its usage is counted for: the one in
	 * force (the sweeper's decider may not have looked yet). */
	if (decider_refresh(d) == -1)
		return (E_UNAVAILABLE);
	if (policy_limit_count(d->policy) == 0)
		return (REASON_OK);
	if ((tx = lc_limits_tx(d)) == NULL)
		return (E_UNAVAILABLE);
	found = d->store->ops->intent_get(d->store, c->move.id, 0, &r);
	if (found != 1) {
		if (found == 0)
			log_warnx("%s: %s moved but is not there", __func__,
			    c->move.id);
		return (E_UNAVAILABLE);
	}
	rc = usage_release(tx, d->store, d->policy, &r, c->now);
	intent_row_clear(&r);
	return (rc);
}

enum reason
lc_limits_policy(struct decider *d, const char *text, size_t len, int64_t now)
{
	struct usage_tx	*tx;
	struct policy		*p;
	enum reason		 rc;

	if ((p = policy_parse(text, len, NULL)) == NULL) {
		log_warnx("%s: the policy being applied does not parse",
		    __func__);
		return (E_UNAVAILABLE);
	}
	rc = (tx = lc_limits_tx(d)) == NULL ? E_UNAVAILABLE :
	    usage_recount(tx, d->store, p, now);
	policy_free(p);
	return (rc);
}
