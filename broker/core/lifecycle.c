/*
 * lifecycle: every transition of an intent after its decision
 * (lifecycle_decide.c), kill switch trips and resets, and policy versions
 * — each inside the caller's transaction, each through lc_apply (state)
 * and lc_audit (record).  Approvals are decided by the store's data under
 * the write transaction — roles, status, expiry, distinct approvers, the
 * count that releases — so concurrent approvers on any thread or process
 * can never release twice, lose an approval, or release with too few.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
#include "lifecycle_impl.h"
#include "log.h"
#include "outbox.h"
#include "policy_diff.h"
#include "text.h"

/* Human text of an intent, following its status. */
#define TEXT_RELEASED	"approved by the required approvers"
#define TEXT_REJECTED	"rejected by an approver"
#define TEXT_KS_REJECTED "rejected by a kill switch"
#define TEXT_CHANGED	"rejected: the policy in force no longer allows " \
			"this call"
#define TEXT_EXPIRED	"no approval before the approval window closed"
#define TEXT_UNREDEEMED	"not redeemed within the grant window"

/* --- the decider ---------------------------------------------------- */

void
decider_init(struct decider *d, struct store *s, const char *name,
    const struct lc_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->store = s;
	d->name = name;
	d->cfg.grant_window = LC_GRANT_WINDOW_DEFAULT;
	if (cfg != NULL)
		d->cfg = *cfg;
	d->policy_version = -1;
	ks_cache_init(&d->ks);
}

void
decider_deinit(struct decider *d)
{
	policy_free(d->policy);
	ks_cache_clear(&d->ks);
	usage_tx_free(d->limits);
	free(d->changed.ids);
	memset(d, 0, sizeof(*d));
}

static int
decider_load_policy(struct decider *d)
{
	struct policy	*p = NULL;
	int64_t		 version;
	char		*body;
	size_t		 len;

	if (d->store->ops->policy_current(d->store, &version, &body,
	    &len) == -1)
		return (-1);
	/* Loaded only when it is what its tagged record applied. */
	if (d->cfg.trust != NULL && audit_trust_policy(d->cfg.trust, d->store,
	    version, body, len) == -1) {
		free(body);
		return (-1);
	}
	if (body != NULL) {
		p = policy_parse(body, len, NULL);
		free(body);
		if (p == NULL) {
			/* Validated before it was stored; if it no longer
			 * parses, fail closed rather than keep deciding on
			 * a stale one. */
			log_warnx("%s: stored policy version %lld does not "
			    "load", __func__, (long long)version);
			return (-1);
		}
	}
	policy_free(d->policy);
	d->policy = p;
	d->policy_version = version;
	if (version > 0)
		log_info("%s: policy version %lld loaded", d->name,
		    (long long)version);
	return (0);
}

int
decider_refresh(struct decider *d)
{
	struct store_gen	 g;

	if (d->store->ops->generations(d->store, STORE_GEN_POLICY |
	    STORE_GEN_KILLSWITCH, &g) == -1)
		return (-1);
	if (g.policy != d->policy_version && decider_load_policy(d) == -1)
		return (-1);
	if (g.killswitch != d->ks.generation &&
	    ks_cache_load(d->store, &d->ks, g.killswitch) == -1)
		return (-1);
	return (0);
}

/* --- transactions and what they changed ------------------------------ */

static void
lc_changes_reset(struct lc_changes *ch)
{
	ch->n = 0;
	ch->overflow = 0;
	ch->killswitch = 0;
	ch->policy = 0;
	ch->events = 0;
	ch->queue = 0;
	ch->approvals = ch->rejections = ch->expiries = ch->redemptions = 0;
}

/* One more record of event for the counters of /metrics. */
static void
lc_tally(struct lc_changes *ch, const char *event)
{
	if (strcmp(event, "approval") == 0)
		ch->approvals++;
	else if (strcmp(event, "rejection") == 0)
		ch->rejections++;
	else if (strcmp(event, "expiry") == 0)
		ch->expiries++;
	else if (strcmp(event, "redemption") == 0)
		ch->redemptions++;
}

static void
lc_changes_add(struct lc_changes *ch, const char *id)
{
	char	(*v)[INTENT_ID_LEN + 1];
	size_t	 cap;

	if (ch->n == ch->cap) {
		cap = ch->cap ? ch->cap * 2 : 16;
		if ((v = reallocarray(ch->ids, cap, sizeof(*v))) == NULL) {
			ch->overflow = 1;	/* waiters re-check everything */
			return;
		}
		ch->ids = v;
		ch->cap = cap;
	}
	snprintf(ch->ids[ch->n++], INTENT_ID_LEN + 1, "%s", id);
}

int
lc_begin(struct decider *d)
{
	lc_changes_reset(&d->changed);
	audit_tx_reset(&d->atx);
	d->wrote_state = 0;
	if (store_begin(d->store) == -1)
		return (-1);
	if (usage_tx_begin(d->limits, d->store) == -1) {
		lc_rollback(d);
		return (-1);
	}
	return (0);
}

int
lc_commit(struct decider *d)
{
	/* the usage this transaction changed goes with it, or nothing does */
	if (usage_tx_flush(d->limits, d->store) == 0 &&
	    store_commit(d->store) == 0) {
		usage_tx_committed(d->limits);
		if (d->cfg.trust != NULL)
			audit_trust_committed(d->cfg.trust, &d->atx);
		return (0);
	}
	lc_rollback(d);
	return (-1);
}

void
lc_rollback(struct decider *d)
{
	store_rollback(d->store);
	lc_changes_reset(&d->changed);
	audit_tx_reset(&d->atx);
	usage_tx_reset(d->limits);
	/* The caches may hold what this transaction wrote and never kept. */
	if (d->wrote_state) {
		d->policy_version = -1;
		d->ks.generation = -1;
		d->wrote_state = 0;
	}
}

enum reason
lc_finish(struct decider *d, enum reason r)
{
	if (r == E_UNAVAILABLE || r == E_INTERNAL) {
		lc_rollback(d);
		return (r);
	}
	return (lc_commit(d) == 0 ? r : E_UNAVAILABLE);
}

/* --- the one transition point ---------------------------------------- */

enum reason
lc_audit(struct decider *d, int64_t now, const char *actor, const char *event,
    const char *intent_id, json_t *details)
{
	int	 rc;

	/* With a trust: tagged, and only onto the head it verified. */
	if (d->cfg.trust != NULL)
		rc = audit_trust_append(d->cfg.trust, &d->atx, d->store, now,
		    actor, event, intent_id, details);
	else
		rc = audit_append(d->store, now, actor, event, intent_id,
		    details);
	if (rc != 0 || outbox_on_audit(d, now, actor, event, details) == -1)
		return (E_UNAVAILABLE);
	lc_tally(&d->changed, event);
	return (REASON_OK);
}

enum reason
lc_apply(struct decider *d, const struct lc_change *c)
{
	struct store	*s = d->store;
	const char	*id = NULL;
	int		 rc = -1;

	switch (c->kind) {
	case LC_INSERT:
		id = c->row->id;
		rc = s->ops->intent_insert(s, c->row);
		break;
	case LC_MOVE:
		id = c->move.id;
		rc = s->ops->intent_move(s, &c->move);
		break;
	case LC_REDEEM:
		id = c->id;
		rc = s->ops->intent_redeem(s, c->id, c->by, c->now);
		break;
	}
	if (rc == 1)
		return (c->kind == LC_REDEEM ? E_ALREADY_REDEEMED :
		    E_ALREADY_DECIDED);
	if (rc != 0 || lc_limits_apply(d, c) != REASON_OK)
		return (E_UNAVAILABLE);
	if (lc_audit(d, c->now, c->actor, c->event, id, c->details) !=
	    REASON_OK || outbox_on_intent(d, c->kind == LC_INSERT ? c->row :
	    NULL, c->kind == LC_MOVE ? &c->move : NULL, c->now,
	    c->details) == -1)
		return (E_UNAVAILABLE);
	/* A new intent has nobody waiting on it (but a pending one joins
	 * the approval queue); a redemption leaves it allowed.  A move is
	 * what long-polls wait for. */
	if (c->kind == LC_MOVE)
		lc_changes_add(&d->changed, id);
	if ((c->kind == LC_INSERT && c->row->status == ST_PENDING) ||
	    (c->kind == LC_MOVE && c->move.from == ST_PENDING))
		d->changed.queue = 1;
	return (REASON_OK);
}

/* The move that closes (or releases) pending intent id at now. */
static void
lc_move_pending(struct intent_move *m, const char *id, enum intent_status to,
    int64_t now, const char *reason_text)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->from = ST_PENDING;
	m->to = to;
	m->decided_at = now;
	m->reason_text = reason_text;
}

/* A move of intent id from one status to another, audited. */
static enum reason
lc_move(struct decider *d, const struct intent_move *m, int64_t now,
    const char *actor, const char *event, json_t *details)
{
	struct lc_change	 c;

	memset(&c, 0, sizeof(c));
	c.kind = LC_MOVE;
	c.move = *m;
	c.now = now;
	c.actor = actor;
	c.event = event;
	c.details = details;
	return (lc_apply(d, &c));
}

/* --- expiry ------------------------------------------------------------ */

int
lc_is_due(const struct decider *d, const struct intent_row *r, int64_t now)
{
	switch (r->status) {
	case ST_PENDING:
		return (r->expires_at != 0 && now >= r->expires_at);
	case ST_ALLOWED:
		return (r->redeemed_at == 0 && r->decided_at != 0 &&
		    now >= r->decided_at + d->cfg.grant_window);
	default:
		return (0);
	}
}

/*
 * Expire intent id, which was from (pending or allowed) with deadline
 * `at` (expires_at of a pending one, decided_at of an allowed one): the
 * one path of both the sweeper and the touch.  E_ALREADY_DECIDED when it
 * moved meanwhile.
 */
static enum reason
lc_expire(struct decider *d, const char *id, enum intent_status from,
    int64_t at, int64_t now)
{
	struct intent_move	 m;
	json_t			*det;
	enum reason		 r;

	lc_move_pending(&m, id, ST_EXPIRED, now, TEXT_EXPIRED);
	if (from == ST_PENDING)
		det = json_pack("{ss}", "status", "expired");
	else {
		/* Keeps decided_at (when it was allowed); expires_at says
		 * when its grant window closed. */
		m.from = ST_ALLOWED;
		m.decided_at = 0;
		m.expires_at = at + d->cfg.grant_window;
		m.reason_text = TEXT_UNREDEEMED;
		det = json_pack("{ss ss}", "status", "expired", "was",
		    "allowed");
	}
	if (det == NULL)
		return (E_UNAVAILABLE);
	r = lc_move(d, &m, now, LC_ACTOR_BROKER, "expiry", det);
	json_decref(det);
	if (r == REASON_OK)
		log_info("expired %s (%s)", id, from == ST_PENDING ?
		    "no approval in time" : "not redeemed in the grant window");
	return (r);
}

enum reason
lc_expire_touched(struct decider *d, struct intent_row *r, int64_t now,
    int *expired)
{
	enum reason	 rc;

	*expired = 0;
	if (!lc_is_due(d, r, now))
		return (REASON_OK);
	rc = lc_expire(d, r->id, r->status, r->status == ST_PENDING ?
	    r->expires_at : r->decided_at, now);
	if (rc == E_UNAVAILABLE)
		return (rc);
	if (rc == REASON_OK) {
		if (r->status == ST_ALLOWED)
			r->expires_at = r->decided_at + d->cfg.grant_window;
		else
			r->decided_at = now;
		free(r->reason_text);
		r->reason_text = strdup(r->status == ST_PENDING ?
		    TEXT_EXPIRED : TEXT_UNREDEEMED);
		r->status = ST_EXPIRED;
		*expired = 1;
		if (r->reason_text == NULL)
			return (E_UNAVAILABLE);
	}
	return (REASON_OK);
}

struct lc_due {
	char			 id[LC_SWEEP_BATCH * 2][INTENT_ID_LEN + 1];
	enum intent_status	 from[LC_SWEEP_BATCH * 2];
	int64_t			 at[LC_SWEEP_BATCH * 2];
	size_t			 n;
};

static int
lc_due_cb(const char *id, const char *agent, const char *tool,
    enum intent_status st, int64_t at, void *arg)
{
	struct lc_due	*due = arg;

	if (due->n == sizeof(due->id) / sizeof(due->id[0]) || id == NULL)
		return (1);
	snprintf(due->id[due->n], INTENT_ID_LEN + 1, "%s", id);
	due->from[due->n] = st;
	due->at[due->n++] = at;
	return (0);
}

enum reason
lc_expire_due(struct decider *d, int64_t now, size_t *n)
{
	struct lc_due	*due;
	enum reason	 r = REASON_OK;
	size_t		 i;

	*n = 0;
	if ((due = calloc(1, sizeof(*due))) == NULL)
		return (E_UNAVAILABLE);
	/* Read the whole batch before changing any of it. */
	if (d->store->ops->intents_due(d->store, now,
	    now - d->cfg.grant_window, LC_SWEEP_BATCH, lc_due_cb, due) == -1)
		r = E_UNAVAILABLE;
	for (i = 0; r == REASON_OK && i < due->n; i++) {
		r = lc_expire(d, due->id[i], due->from[i], due->at[i], now);
		if (r == REASON_OK)
			(*n)++;
		else if (r == E_ALREADY_DECIDED)
			r = REASON_OK;
	}
	free(due);
	return (r);
}

/* --- approvals --------------------------------------------------------- */

static int
lc_holds_role_in(const struct decider *d, const char *who,
    const char *roles_json)
{
	json_t	*roles, *r;
	size_t	 i;
	int	 yes = 0;

	if (roles_json == NULL ||
	    (roles = json_loads(roles_json, 0, NULL)) == NULL)
		return (0);
	json_array_foreach(roles, i, r)
		if (policy_has_role(d->policy, who, json_string_value(r))) {
			yes = 1;
			break;
		}
	json_decref(roles);
	return (yes);
}

static int
lc_holds_role(const struct decider *d, const char *who,
    const struct evaluation *ev)
{
	size_t	 i;

	for (i = 0; i < ev->n_approver_roles; i++)
		if (policy_has_role(d->policy, who, ev->approver_roles[i]))
			return (1);
	return (0);
}

/*
 * Load intent id under the write lock and run the checks approve and
 * reject share, in the order of lifecycle.h.  REASON_OK and *r (owned),
 * or the error (with *r cleared).
 */
static enum reason
lc_verdict_load(struct decider *d, const char *who, const char *id,
    int64_t now, struct intent_row *r)
{
	enum reason	 rc;
	int		 found, expired;

	memset(r, 0, sizeof(*r));
	if (decider_refresh(d) == -1)
		return (E_UNAVAILABLE);
	if (d->policy == NULL || (!policy_is_approver(d->policy, who) &&
	    !policy_is_operator(d->policy, who)))
		return (E_FORBIDDEN);
	found = d->store->ops->intent_get(d->store, id, STORE_FOR_UPDATE |
	    STORE_APPROVALS, r);
	if (found != 1)
		return (found == 0 ? E_NOT_FOUND : E_UNAVAILABLE);
	if (strcmp(who, r->agent) == 0)
		rc = E_SELF_APPROVAL;
	else if (!lc_holds_role_in(d, who, r->approver_roles))
		rc = E_NOT_AN_APPROVER;
	else if (ks_covers(&d->ks, r->agent, r->tool))
		rc = E_KILL_SWITCH_LOCKED;
	else if (r->status != ST_PENDING)
		rc = E_ALREADY_DECIDED;
	else if ((rc = lc_expire_touched(d, r, now, &expired)) == REASON_OK &&
	    expired)
		rc = E_ALREADY_DECIDED;	/* expired just now: that stands */
	if (rc != REASON_OK)
		intent_row_clear(r);
	return (rc);
}

/*
 * The policy in force, asked again about a pending intent, as it was
 * stored: its canonical args (amount_from reads their text) and the amount
 * judged at the decision as the claim.  The policy compares a claim by
 * value (5000.00 equals 5000), so an unchanged call is never an
 * amount_mismatch.  Its limits are checked with its own reservation
 * already in the usage (*lc: limit_check_clear it).  0, or -1 when the
 * stored args do not read back or storage failed (fail closed: the
 * approval is not counted).
 */
static int
lc_redecide(struct decider *d, const struct intent_row *r, int64_t now,
    struct evaluation *ev, struct limit_check *lc)
{
	struct policy_call	 call;
	struct amount		 a;
	json_t			*args;
	int			 has, rc;

	memset(lc, 0, sizeof(*lc));
	if (usage_row_call(r, &call, &args, &a, &has) == -1) {
		log_warnx("%s: %s: stored args do not read back", __func__,
		    r->id);
		return (-1);
	}
	lc_evaluate(d, &call, ev);
	rc = lc_limits_check(d, &call, ev, now, r->created_at, lc) ==
	    REASON_OK ? 0 : -1;
	json_decref(args);
	return (rc);
}

/* The policy in force refuses the call now: reject it, audited. */
static enum reason
lc_reject_changed(struct decider *d, const char *who,
    const struct intent_row *r, const struct evaluation *ev, int64_t now)
{
	struct intent_move	 m;
	json_t			*det;
	char			 why[128];
	enum reason		 rc;

	snprintf(why, sizeof(why), "policy changed: %s",
	    reason_code(ev->reason));
	lc_move_pending(&m, r->id, ST_REJECTED, now, TEXT_CHANGED);
	m.closed_by = LC_ACTOR_BROKER;
	m.closed_reason = why;
	det = json_pack("{ss ss ss sI ss}", "by", LC_ACTOR_BROKER,
	    "reason", reason_code(E_POLICY_CHANGED),
	    "reason_code", reason_code(ev->reason),
	    "policy_version", (json_int_t)(d->policy_version > 0 ?
	    d->policy_version : 0), "approval_by", who);
	if (det == NULL)
		return (E_UNAVAILABLE);
	rc = lc_move(d, &m, now, LC_ACTOR_BROKER, "rejection", det);
	json_decref(det);
	if (rc == REASON_OK)
		log_info("rejected %s: the policy in force says %s",
		    r->id, reason_code(ev->reason));
	return (rc == REASON_OK ? E_POLICY_CHANGED : rc);
}

/* Approvals that still count: by principals who hold a role that may
 * approve under the current rule (roles NULL: the stored roles). */
static int
lc_count_approvals(const struct decider *d, const struct intent_row *r,
    const struct evaluation *cur)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < r->n_approvals; i++)
		if (strcmp(r->approvals[i].by, r->agent) != 0 &&
		    (cur != NULL ? lc_holds_role(d, r->approvals[i].by, cur) :
		    lc_holds_role_in(d, r->approvals[i].by,
		    r->approver_roles)))
			n++;
	return (n);
}

/* Count who's approval; release when enough still count. */
static enum reason
lc_count_and_release(struct decider *d, const char *who, struct intent_row *r,
    const char *comment, const struct evaluation *cur, int64_t now,
    struct lc_verdict *out)
{
	struct intent_move	 m;
	json_t			*det;
	enum reason		 rc;
	int			 added;

	added = d->store->ops->approval_add(d->store, r->id, who, now, comment);
	if (added == 1)
		return (E_ALREADY_APPROVED);
	if (added == -1 || intent_row_add_approval(r, who, now, comment) == -1)
		return (E_UNAVAILABLE);
	out->approvals = lc_count_approvals(d, r, cur);
	out->status = out->approvals >= out->required ? ST_ALLOWED :
	    ST_PENDING;
	det = json_pack("{ss ss? si si ss}", "by", who, "comment", comment,
	    "approvals", out->approvals, "approvals_required", out->required,
	    "status", intent_status_name(out->status));
	if (det == NULL)
		return (E_UNAVAILABLE);
	if (out->status == ST_PENDING) {
		rc = lc_audit(d, now, who, "approval", r->id, det);
		d->changed.queue = 1;	/* its approvals n/m moved */
	} else {
		lc_move_pending(&m, r->id, ST_ALLOWED, now, TEXT_RELEASED);
		rc = lc_move(d, &m, now, who, "approval", det);
	}
	json_decref(det);
	return (rc == E_ALREADY_DECIDED ? E_UNAVAILABLE : rc);
}

enum reason
lc_approve(struct decider *d, const char *who, const char *id,
    const char *comment, int64_t now, struct lc_verdict *out)
{
	struct intent_row	 r;
	struct evaluation	 ev;
	struct limit_check	 lim;
	const struct evaluation	*cur = NULL;
	enum reason		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = lc_verdict_load(d, who, id, now, &r)) != REASON_OK)
		return (rc);
	out->required = r.approvals_required;
	out->status = r.status;
	/* Never weaker than the policy in force, its limits included. */
	if (lc_redecide(d, &r, now, &ev, &lim) == -1)
		rc = E_UNAVAILABLE;
	else if (ev.outcome == OUTCOME_DENY)
		rc = lc_reject_changed(d, who, &r, &ev, now);
	else if (ev.outcome == OUTCOME_PENDING) {
		cur = &ev;
		if (ev.approvals_required > out->required)
			out->required = ev.approvals_required;
		if (!lc_holds_role(d, who, &ev))
			rc = E_NOT_AN_APPROVER;
	}
	if (rc == E_POLICY_CHANGED)
		out->status = ST_REJECTED;
	if (rc == REASON_OK)
		rc = lc_count_and_release(d, who, &r, comment, cur, now, out);
	limit_check_clear(&lim);
	intent_row_clear(&r);
	return (rc);
}

enum reason
lc_reject(struct decider *d, const char *who, const char *id,
    const char *reason, int64_t now, struct lc_verdict *out)
{
	struct intent_row	 r;
	struct intent_move	 m;
	json_t			*det;
	enum reason		 rc;

	memset(out, 0, sizeof(*out));
	if (text_check(reason, TEXT_MAX_REASON, TEXT_NOT_BLANK) != NULL)
		return (E_BAD_REQUEST);
	if ((rc = lc_verdict_load(d, who, id, now, &r)) != REASON_OK)
		return (rc);
	/* Rejecting only narrows: the roles the intent was decided with
	 * are enough. */
	out->required = r.approvals_required;
	lc_move_pending(&m, r.id, ST_REJECTED, now, TEXT_REJECTED);
	m.closed_by = who;
	m.closed_reason = reason;
	if ((det = json_pack("{ss ss}", "by", who, "reason", reason)) == NULL)
		rc = E_UNAVAILABLE;
	else
		rc = lc_move(d, &m, now, who, "rejection", det);
	json_decref(det);
	intent_row_clear(&r);
	if (rc == E_ALREADY_DECIDED)
		rc = E_UNAVAILABLE;	/* impossible under the lock */
	out->status = rc == REASON_OK ? ST_REJECTED : ST_PENDING;
	return (rc);
}

/* --- grants and redemption ---------------------------------------------- */

int
lc_grantable(const struct decider *d, const struct intent_row *r, int64_t now)
{
	return (r->status == ST_ALLOWED && r->redeemed_at == 0 &&
	    !lc_is_due(d, r, now) && !ks_covers(&d->ks, r->agent, r->tool));
}

int
lc_may_grant(const struct decider *d, const struct intent_row *r, int64_t now)
{
	return (lc_grantable(d, r, now) &&
	    audit_trust_grant(d->cfg.trust, &d->atx, d->store, r));
}

enum reason
lc_redeem(struct decider *d, const char *who, const char *id,
    const char *agent, const char *tool, int64_t now)
{
	struct intent_row	 r;
	enum reason		 rc;
	int			 found, expired;

	if (decider_refresh(d) == -1)
		return (E_UNAVAILABLE);
	if (d->policy == NULL || !policy_may_redeem(d->policy, who, tool))
		return (E_NOT_PERMITTED);
	if (ks_covers(&d->ks, agent, tool))
		return (R_KILL_SWITCH);
	found = d->store->ops->intent_get(d->store, id, STORE_FOR_UPDATE, &r);
	if (found == -1)
		return (E_UNAVAILABLE);
	if (found == 0)
		return (E_ALREADY_REDEEMED);	/* not an allowed intent */
	rc = lc_expire_touched(d, &r, now, &expired);
	intent_row_clear(&r);
	if (rc != REASON_OK)
		return (rc);
	if (expired)
		return (E_ALREADY_REDEEMED);	/* its window closed: stands */
	return (lc_redeem_apply(d, id, who, tool, NULL, now));
}

enum reason
lc_redeem_apply(struct decider *d, const char *id, const char *who,
    const char *tool, const char *via, int64_t now)
{
	struct lc_change	 c;
	json_t			*det;
	enum reason		 rc;

	if ((det = json_pack("{ss ss ss*}", "by", who, "tool", tool, "via",
	    via)) == NULL)
		return (E_UNAVAILABLE);
	memset(&c, 0, sizeof(c));
	c.kind = LC_REDEEM;
	c.id = id;
	c.by = who;
	c.now = now;
	c.actor = who;
	c.event = "redemption";
	c.details = det;
	rc = lc_apply(d, &c);
	json_decref(det);
	return (rc);
}

/* --- kill switches ------------------------------------------------------- */

struct lc_covered {
	enum ks_scope	 scope;
	const char	*target;
	char		(*ids)[INTENT_ID_LEN + 1];
	size_t		 n, cap;
	int		 failed;
};

static int
lc_covered_cb(const char *id, const char *agent, const char *tool,
    enum intent_status st, int64_t at, void *arg)
{
	struct lc_covered	*cv = arg;
	char			(*v)[INTENT_ID_LEN + 1];

	if (id == NULL || !ks_scope_covers(cv->scope, cv->target, agent, tool))
		return (0);
	if (cv->n == cv->cap) {
		cv->cap = cv->cap ? cv->cap * 2 : 16;
		if ((v = reallocarray(cv->ids, cv->cap, sizeof(*v))) == NULL) {
			cv->failed = 1;
			return (1);
		}
		cv->ids = v;
	}
	snprintf(cv->ids[cv->n++], INTENT_ID_LEN + 1, "%s", id);
	return (0);
}

/* Reject each covered pending intent, one audit record each. */
static enum reason
lc_reject_covered(struct decider *d, struct lc_covered *cv, const char *actor,
    int64_t ks_id, const char *reason, int64_t now)
{
	struct intent_move	 m;
	json_t			*det;
	char			*why;
	enum reason		 rc = REASON_OK;
	size_t			 i;

	if (asprintf(&why, "kill switch: %s", reason) == -1)
		return (E_UNAVAILABLE);
	det = json_pack("{ss ss sI}", "by", actor, "reason", reason,
	    "kill_switch", (json_int_t)ks_id);
	for (i = 0; det != NULL && rc == REASON_OK && i < cv->n; i++) {
		lc_move_pending(&m, cv->ids[i], ST_REJECTED, now,
		    TEXT_KS_REJECTED);
		m.closed_by = actor;
		m.closed_reason = why;
		/* One that was decided since it was read has nothing left
		 * to reject (with SQLite's lock nothing can be). */
		if ((rc = lc_move(d, &m, now, actor, "rejection", det)) ==
		    E_ALREADY_DECIDED)
			rc = REASON_OK;
	}
	if (det == NULL)
		rc = E_UNAVAILABLE;
	json_decref(det);
	free(why);
	return (rc);
}

/* E_BAD_REQUEST with msg as the refusal's message. */
static enum reason
lc_trip_bad(struct lc_trip_refusal *why, const char *msg)
{
	if (why != NULL) {
		snprintf(why->message, sizeof(why->message), "%s", msg);
		why->closest[0] = '\0';
	}
	return (E_BAD_REQUEST);
}

/*
 * Does the policy in force know target (an agent, or a tool pattern)?
 * REASON_OK, E_UNKNOWN_TARGET (why says so, with the closest name), or
 * E_UNAVAILABLE.  A typo must not trip a switch that stops nothing and
 * still reads ENGAGED.
 */
static enum reason
lc_trip_known(struct decider *d, enum ks_scope scope, const char *target,
    struct lc_trip_refusal *why)
{
	const char	*what = scope == KS_AGENT ? "agent" : "tool";
	const char	*close = NULL;
	char		 hint[POLICY_MAX_NAME_TEXT + 32] = "";

	if (decider_refresh(d) == -1)
		return (E_UNAVAILABLE);
	if (d->policy != NULL && (scope == KS_AGENT ?
	    policy_knows(d->policy, target) :
	    policy_tool_known(d->policy, target)))
		return (REASON_OK);
	if (why == NULL)
		return (E_UNKNOWN_TARGET);
	if (d->policy != NULL)
		close = scope == KS_AGENT ?
		    policy_closest_principal(d->policy, target) :
		    policy_closest_tool(d->policy, target);
	snprintf(why->closest, sizeof(why->closest), "%s", close ? close : "");
	if (close != NULL)
		snprintf(hint, sizeof(hint), " (closest: \"%s\")", close);
	if (d->policy == NULL)
		snprintf(why->message, sizeof(why->message), "%s \"%s\" is not "
		    "known: no policy is applied, so this switch would stop "
		    "nothing; to trip it anyway, force it (\"force\": true, "
		    "toolgatectl killswitch trip --force)", what, target);
	else
		snprintf(why->message, sizeof(why->message), "%s \"%s\" %s "
		    "policy version %lld%s, so this switch would stop nothing; "
		    "check the name, or force it (\"force\": true, "
		    "toolgatectl killswitch trip --force)", what,
		    target, scope == KS_AGENT ? "is not a principal of" :
		    "is covered by no rule of", (long long)d->policy_version,
		    hint);
	return (E_UNKNOWN_TARGET);
}

enum reason
lc_trip(struct decider *d, const char *actor, enum ks_scope scope,
    const char *target, const char *reason, unsigned flags, int64_t now,
    int64_t *id, struct lc_trip_refusal *why)
{
	struct lc_covered	 cv;
	struct ks_row		 row;
	json_t			*det;
	const char		*bad;
	enum reason		 rc;
	int			 reject_pending = flags & LC_TRIP_REJECT_PENDING;
	int			 forced = 0;

	*id = 0;
	if ((bad = ks_check_target(scope, target)) != NULL ||
	    (bad = ks_check_reason(reason)) != NULL)
		return (lc_trip_bad(why, bad));
	if (actor == NULL || actor[0] == '\0')
		return (lc_trip_bad(why, "no actor"));
	if (scope != KS_GLOBAL) {
		rc = lc_trip_known(d, scope, target, why);
		if (rc == E_UNKNOWN_TARGET && (flags & LC_TRIP_FORCE))
			forced = 1;
		else if (rc != REASON_OK)
			return (rc);
	}
	memset(&row, 0, sizeof(row));
	row.scope = scope;
	row.target = (char *)target;
	row.reason = (char *)reason;
	row.by = (char *)actor;
	row.at = now;
	d->wrote_state = 1;
	if (d->store->ops->ks_insert(d->store, &row, id) == -1)
		return (E_UNAVAILABLE);
	d->changed.killswitch = 1;
	memset(&cv, 0, sizeof(cv));
	cv.scope = scope;
	cv.target = target;
	/* Read completely before any is updated. */
	if (reject_pending && (d->store->ops->intents_pending(d->store,
	    lc_covered_cb, &cv) == -1 || cv.failed)) {
		free(cv.ids);
		return (E_UNAVAILABLE);
	}
	det = json_pack("{sI ss ss? ss sb sI}", "id", (json_int_t)*id,
	    "scope", ks_scope_name(scope), "target", target, "reason", reason,
	    "reject_pending", reject_pending ? 1 : 0,
	    "rejected", (json_int_t)cv.n);
	/* Audited as forced only when the force was needed. */
	if (det != NULL && forced &&
	    json_object_set_new(det, "forced", json_true()) == -1) {
		json_decref(det);
		det = NULL;
	}
	rc = det == NULL ? E_UNAVAILABLE : lc_audit(d, now, actor,
	    "killswitch.trip", NULL, det);
	json_decref(det);
	if (rc == REASON_OK)
		rc = lc_reject_covered(d, &cv, actor, *id, reason, now);
	free(cv.ids);
	return (rc);
}

enum reason
lc_reset(struct decider *d, const char *actor, int64_t id, const char *reason,
    int64_t now, const char **why)
{
	json_t		*det;
	enum reason	 rc;
	int		 done;

	if ((*why = ks_check_reason(reason)) != NULL)
		return (E_BAD_REQUEST);
	if (actor == NULL || actor[0] == '\0') {
		*why = "no actor";
		return (E_BAD_REQUEST);
	}
	if (id <= 0)
		return (E_NOT_FOUND);
	d->wrote_state = 1;
	done = d->store->ops->ks_reset(d->store, id, actor, now, reason);
	if (done == 1)
		return (E_NOT_FOUND);
	if (done == -1)
		return (E_UNAVAILABLE);
	d->changed.killswitch = 1;
	if ((det = json_pack("{sI ss}", "id", (json_int_t)id, "reason",
	    reason)) == NULL)
		return (E_UNAVAILABLE);
	rc = lc_audit(d, now, actor, "killswitch.reset", NULL, det);
	json_decref(det);
	return (rc);
}

/* --- policy versions ------------------------------------------------------ */

/* 1 if text is byte for byte the newest stored version (*version) and,
 * with a trust, that version's policy.apply record is tagged and names
 * it; 0 if not (or there is none): then it is stored again, so that a
 * policy applied before the audit key (or onto a replaced chain) can be
 * re-applied, tagged.  -1 on a storage error. */
static int
lc_policy_same(struct decider *d, const char *text, size_t len,
    int64_t *version)
{
	char	*body = NULL;
	size_t	 blen = 0;
	int	 same;

	if (d->store->ops->policy_current(d->store, version, &body, &blen) ==
	    -1)
		return (-1);
	same = body != NULL && blen == len && memcmp(body, text, len) == 0 &&
	    (d->cfg.trust == NULL || audit_trust_policy_tagged(d->cfg.trust,
	    d->store, *version, body, blen));
	free(body);
	return (same);
}

enum reason
lc_policy_apply(struct decider *d, const char *text, size_t len,
    const char *actor, int64_t now, int64_t *version)
{
	json_t		*det, *changes;
	char		 sha[65], *prev = NULL;
	size_t		 prevlen = 0;
	int64_t		 prev_version;
	enum reason	 rc;
	int		 same;

	if ((same = lc_policy_same(d, text, len, version)) != 0)
		return (same == 1 ? REASON_OK : E_UNAVAILABLE);
	canon_sha256_hex(text, len, sha);
	/* What changes, from the version in force, goes into the record. */
	if (d->store->ops->policy_current(d->store, &prev_version, &prev,
	    &prevlen) == -1)
		return (E_UNAVAILABLE);
	changes = policy_changes(prev, prevlen, text, len);
	free(prev);
	if (changes == NULL)
		return (E_UNAVAILABLE);
	d->wrote_state = 1;
	if (d->store->ops->policy_insert(d->store, now, actor, sha, text, len,
	    version) == -1) {
		json_decref(changes);
		return (E_UNAVAILABLE);
	}
	d->changed.policy = 1;
	if (lc_limits_policy(d, text, len, now) != REASON_OK) {
		json_decref(changes);
		return (E_UNAVAILABLE);
	}
	if ((det = json_pack("{sI ss sI so}", "version", (json_int_t)*version,
	    "sha256", sha, "previous_version", (json_int_t)prev_version,
	    "changes", changes)) == NULL)
		return (E_UNAVAILABLE);
	rc = lc_audit(d, now, actor, "policy.apply", NULL, det);
	json_decref(det);
	return (rc);
}
