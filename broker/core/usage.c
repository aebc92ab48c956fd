/*
 * usage: counting the usage of cumulative limits and checking calls
 * against it (usage.h).  A (limit, key)'s usage is a running total over
 * per-second buckets; the total of a window is the row minus the buckets
 * that have left it, which are dropped when the row is next touched.
 *
 * Inside a write transaction every row is held in a slot of the
 * struct usage_tx: read (and locked) the first time, then changed in
 * memory, with the one bucket being added to; usage_tx_flush writes
 * them back before the commit.  Reading a row's buckets (dropping the
 * old ones, finding when a call fits) writes that bucket first, so the
 * store always holds what is walked.  After a commit the slots hold
 * exactly what the store does, so the next transaction keeps them when
 * the store says nobody else wrote in between (usage_tx_begin): a hot
 * key is then read once, not once per transaction.
 *
 * Owns no policy: which limits apply and their keys come from
 * policy_limits_for; the lifecycle says when an intent is made or leaves
 * pending/allowed.  Nothing here writes outside the caller's
 * transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage_impl.h"
#include "log.h"

#define TX_MIN_CAP	64	/* slots' table, a power of two */
#define TX_KEEP_CAP	4096	/* a larger table is freed on reset */
#define TX_KEEP_SLOTS	16384	/* kept across transactions, at most */

struct slot {
	struct slot	*next;		/* hash chain */
	struct slot	*touched_next;	/* this transaction's, if touched */
	int		 touched;
	uint64_t	 hash;
	char		*name, *key, *agent;
	int64_t		 id;		/* usage row, 0: none stored */
	int64_t		 n;
	usage_units	 units;
	int64_t		 oldest;
	int64_t		 newest;	/* no bucket is later */
	int		 dirty;
	/* the bucket being changed */
	int		 has_bucket, bucket_dirty;
	int64_t		 b_at, b_n;
	usage_units	 b_units;
};

struct usage_tx {
	struct slot	**tab;
	size_t		 cap;
	size_t		 count;
	struct slot	*touched;	/* got in this transaction: the ones
					 * a flush may have to write */
	int64_t		 mark;		/* the store's, for others_wrote */
};

/* --- units --------------------------------------------------------- */

usage_units
usage_amount_units(const struct amount *a)
{
	return ((usage_units)a->whole * USAGE_MICRO + (usage_units)a->micro);
}

static usage_units
limit_max_units(const struct policy_limit *l)
{
	return (l->by_amount ? usage_amount_units(&l->max_amount) :
	    (usage_units)l->max_count);
}

/* Stored (whole, micro) as units; -1 for a negative (damaged) value. */
static int
units_join(int64_t whole, int64_t micro, usage_units *u)
{
	if (whole < 0 || micro < 0)
		return (-1);
	*u = (usage_units)whole * USAGE_MICRO + (usage_units)micro;
	return (0);
}

/* units as stored: -1 when the whole units would not fit 64 bits. */
static int
units_split(usage_units u, int64_t *whole, int64_t *micro)
{
	usage_units	 w = u / USAGE_MICRO;

	if (w > (usage_units)INT64_MAX)
		return (-1);
	*whole = (int64_t)w;
	*micro = (int64_t)(u % USAGE_MICRO);
	return (0);
}

int
usage_contribution(const struct policy_limit *l, const struct amount *a,
    usage_units *add)
{
	*add = 1;
	if (!l->by_amount)
		return (1);
	*add = 0;
	if (a == NULL || strcmp(a->currency, l->max_amount.currency) != 0)
		return (0);
	*add = usage_amount_units(a);
	return (1);
}

const char *
usage_key_agent(const struct policy_limit *l, const char *principal)
{
	size_t	 i;

	for (i = 0; i < l->n_per; i++)
		if (strcmp(l->per[i], "agent") == 0)
			return (principal);
	return (NULL);
}

usage_units
usage_of(const struct policy_limit *l, int64_t n, usage_units units)
{
	return (l->by_amount ? units : (usage_units)n);
}

int
usage_row_call(const struct intent_row *r, struct policy_call *call,
    json_t **args, struct amount *amount, int *has_amount)
{
	memset(call, 0, sizeof(*call));
	*args = NULL;
	*has_amount = 0;
	if (r->args != NULL && (*args = json_loads(r->args,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return (-1);
	call->principal = r->agent;
	call->tool = r->tool;
	call->args = *args;
	call->args_json = r->args;
	call->args_json_len = r->args != NULL ? strlen(r->args) : 0;
	/* The amount judged at the decision, as a claim: the policy compares
	 * a claim by value (5000.00 equals 5000). */
	if (r->amount_value != NULL && r->amount_currency != NULL &&
	    amount_parse_value(r->amount_value, strlen(r->amount_value),
	    amount) == 0 && amount_currency_valid(r->amount_currency)) {
		memcpy(amount->currency, r->amount_currency, 4);
		call->amount = amount;
		call->amount_text = r->amount_value;
		*has_amount = 1;
	}
	return (0);
}

/* --- the transaction's slots ----------------------------------------- */

static uint64_t
slot_hash(const char *name, const char *key)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */
	const char	*p;

	for (p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (h);
}

struct usage_tx *
usage_tx_new(void)
{
	return (calloc(1, sizeof(struct usage_tx)));
}

static void
slot_free(struct slot *sl)
{
	free(sl->name);
	free(sl->key);
	free(sl->agent);
	free(sl);
}

void
usage_tx_reset(struct usage_tx *tx)
{
	struct slot	*sl, *next;
	size_t		 i;

	if (tx == NULL)
		return;
	for (i = 0; i < tx->cap; i++)
		for (sl = tx->tab[i]; sl != NULL; sl = next) {
			next = sl->next;
			slot_free(sl);
		}
	if (tx->cap > TX_KEEP_CAP) {
		free(tx->tab);
		tx->tab = NULL;
		tx->cap = 0;
	} else if (tx->tab != NULL)
		memset(tx->tab, 0, tx->cap * sizeof(*tx->tab));
	tx->count = 0;
	tx->touched = NULL;
}

int
usage_tx_begin(struct usage_tx *tx, struct store *s)
{
	int	 others;

	if (tx == NULL)
		return (0);
	if ((others = s->ops->others_wrote(s, &tx->mark)) == -1)
		return (-1);
	if (others)
		usage_tx_reset(tx);
	return (0);
}

void
usage_tx_committed(struct usage_tx *tx)
{
	struct slot	*sl;

	if (tx == NULL)
		return;
	for (sl = tx->touched; sl != NULL; sl = sl->touched_next)
		sl->touched = 0;
	tx->touched = NULL;
	if (tx->count > TX_KEEP_SLOTS)
		usage_tx_reset(tx);
}

void
usage_tx_free(struct usage_tx *tx)
{
	usage_tx_reset(tx);
	if (tx != NULL)
		free(tx->tab);
	free(tx);
}

static int
tx_grow(struct usage_tx *tx)
{
	struct slot	**tab, *sl, *next;
	size_t		 cap = tx->cap ? tx->cap * 2 : TX_MIN_CAP, i;

	if ((tab = calloc(cap, sizeof(*tab))) == NULL)
		return (-1);
	for (i = 0; i < tx->cap; i++)
		for (sl = tx->tab[i]; sl != NULL; sl = next) {
			next = sl->next;
			sl->next = tab[sl->hash & (cap - 1)];
			tab[sl->hash & (cap - 1)] = sl;
		}
	free(tx->tab);
	tx->tab = tab;
	tx->cap = cap;
	return (0);
}

/* A new slot for (name, key) from its stored row (u NULL: none). */
static struct slot *
slot_new(const char *name, const char *key, const char *agent,
    const struct limit_usage_row *u)
{
	struct slot	*sl;

	if ((sl = calloc(1, sizeof(*sl))) == NULL)
		return (NULL);
	sl->name = strdup(name);
	sl->key = strdup(key);
	sl->agent = agent != NULL ? strdup(agent) : NULL;
	if (sl->name == NULL || sl->key == NULL ||
	    (agent != NULL && sl->agent == NULL))
		goto bad;
	if (u != NULL) {
		sl->id = u->id;
		sl->n = u->n;
		sl->oldest = u->oldest;
		sl->newest = u->newest;
		/* an empty row a locking engine made to hold the key: gone
		 * at the flush unless something is counted in it */
		sl->dirty = u->n == 0;
		if (u->n < 0 || units_join(u->whole, u->micro, &sl->units) ==
		    -1) {
			log_warnx("%s: usage of %s %s is damaged", __func__,
			    name, key);
			goto bad;
		}
	}
	return (sl);
 bad:
	slot_free(sl);
	return (NULL);
}

static struct slot *
slot_touch(struct usage_tx *tx, struct slot *sl)
{
	if (!sl->touched) {
		sl->touched = 1;
		sl->touched_next = tx->touched;
		tx->touched = sl;
	}
	return (sl);
}

/* The slot of (name, key): held already, or read and locked now. */
static struct slot *
slot_get(struct usage_tx *tx, struct store *s, const char *name,
    const char *key, const char *agent)
{
	struct limit_usage_row	 u;
	struct slot		*sl;
	uint64_t		 h = slot_hash(name, key);
	int			 found;

	for (sl = tx->cap ? tx->tab[h & (tx->cap - 1)] : NULL; sl != NULL;
	    sl = sl->next)
		if (sl->hash == h && strcmp(sl->name, name) == 0 &&
		    strcmp(sl->key, key) == 0)
			return (slot_touch(tx, sl));
	if ((tx->count + 1) * 4 > tx->cap * 3 && tx_grow(tx) == -1)
		return (NULL);
	found = s->ops->limit_usage_get(s, name, key, STORE_FOR_UPDATE, &u);
	if (found == -1 || (sl = slot_new(name, key, agent, found ? &u :
	    NULL)) == NULL)
		return (NULL);
	sl->hash = h;
	sl->next = tx->tab[h & (tx->cap - 1)];
	tx->tab[h & (tx->cap - 1)] = sl;
	tx->count++;
	return (slot_touch(tx, sl));
}

static int
slot_put(struct store *s, struct slot *sl)
{
	struct limit_usage_row	 u;

	memset(&u, 0, sizeof(u));
	u.id = sl->id;
	u.name = sl->name;
	u.key = sl->key;
	u.agent = sl->agent;
	u.n = sl->n;
	u.oldest = sl->n > 0 ? sl->oldest : 0;
	u.newest = sl->n > 0 ? sl->newest : 0;
	if (units_split(sl->units, &u.whole, &u.micro) == -1) {
		log_warnx("%s: usage of %s %s is beyond what can be stored: "
		    "refused", __func__, sl->name, sl->key);
		return (-1);
	}
	if (s->ops->limit_usage_put(s, &u) == -1)
		return (-1);
	sl->id = u.id;
	return (0);
}

/* Write the bucket being changed (its row first, for the id). */
static int
bucket_flush(struct store *s, struct slot *sl)
{
	struct limit_bucket_row	 b;

	if (!sl->has_bucket || !sl->bucket_dirty)
		return (0);
	if (sl->b_n > 0 && sl->id == 0 && slot_put(s, sl) == -1)
		return (-1);
	if (sl->id != 0) {
		memset(&b, 0, sizeof(b));
		b.at = sl->b_at;
		b.n = sl->b_n;
		if (units_split(sl->b_units, &b.whole, &b.micro) == -1 ||
		    s->ops->limit_bucket_put(s, sl->id, &b) == -1)
			return (-1);
	}
	sl->bucket_dirty = 0;
	return (0);
}

/* Make the bucket of second at the one being changed. */
static int
bucket_at(struct store *s, struct slot *sl, int64_t at)
{
	struct limit_bucket_row	 b;
	int			 found = 0;

	if (sl->has_bucket && sl->b_at == at)
		return (0);
	if (bucket_flush(s, sl) == -1)
		return (-1);
	sl->has_bucket = 1;
	sl->b_at = at;
	sl->b_n = 0;
	sl->b_units = 0;
	/* a second after the newest bucket has none yet: nothing to read */
	if (sl->id != 0 && at <= sl->newest && (found =
	    s->ops->limit_bucket_get(s, sl->id, at, &b)) == -1)
		return (-1);
	if (found && (b.n < 0 || units_join(b.whole, b.micro,
	    &sl->b_units) == -1))
		return (-1);
	if (found)
		sl->b_n = b.n;
	return (0);
}

/* --- what a window holds ------------------------------------------- */

/* Summing the buckets up to cutoff; the first one after it is the
 * oldest left. */
struct stale {
	int64_t		 cutoff;
	int64_t		 n;
	usage_units	 units;
	int64_t		 oldest;
	int		 bad;
};

static int
stale_cb(const struct limit_bucket_row *b, void *arg)
{
	struct stale	*st = arg;
	usage_units	 u;

	if (b->at > st->cutoff) {
		st->oldest = b->at;
		return (1);
	}
	if (b->n < 0 || units_join(b->whole, b->micro, &u) == -1) {
		st->bad = 1;
		return (1);
	}
	st->n += b->n;
	st->units += u;
	return (0);
}

/*
 * The buckets of usage row id up to cutoff (they have left the window):
 * *st filled with their sum and the oldest bucket after them.  0 or -1.
 */
static int
stale_read(struct store *s, int64_t id, int64_t cutoff, struct stale *st)
{
	memset(st, 0, sizeof(*st));
	st->cutoff = cutoff;
	if (s->ops->limit_buckets_walk(s, id, INT64_MIN, stale_cb, st) == -1)
		return (-1);
	if (st->bad) {
		log_warnx("%s: a bucket of usage row %lld is damaged",
		    __func__, (long long)id);
		return (-1);
	}
	return (0);
}

/* Take st out of a total (never below zero: a damaged store keeps
 * counting rather than free what it cannot account for). */
static void
stale_subtract(const struct stale *st, int64_t *n, usage_units *units)
{
	*n = *n >= st->n ? *n - st->n : 0;
	*units = *units >= st->units ? *units - st->units : 0;
}

/* Drop sl's buckets that left the window (at <= cutoff). */
static int
slot_evict(struct store *s, struct slot *sl, int64_t cutoff)
{
	struct stale	 st;

	if (sl->oldest == 0 || sl->oldest > cutoff)
		return (0);
	if (bucket_flush(s, sl) == -1)
		return (-1);
	if (sl->has_bucket && sl->b_at <= cutoff)
		sl->has_bucket = 0;
	sl->dirty = 1;
	if (sl->id == 0) {
		/* nothing stored, nothing counted */
		sl->n = 0;
		sl->units = 0;
		sl->oldest = 0;
		return (0);
	}
	if (stale_read(s, sl->id, cutoff, &st) == -1 ||
	    s->ops->limit_buckets_drop(s, sl->id, cutoff) == -1)
		return (-1);
	stale_subtract(&st, &sl->n, &sl->units);
	sl->oldest = st.oldest;
	return (0);
}

int
usage_change(struct usage_tx *tx, struct store *s,
    const struct policy_limit *l, const char *key, const char *agent,
    int64_t at, usage_units add, int sign, int64_t now)
{
	struct slot	*sl;
	struct stale	 st;

	if ((sl = slot_get(tx, s, l->name, key, agent)) == NULL ||
	    slot_evict(s, sl, now - l->window) == -1)
		return (-1);
	if (!l->by_amount)
		add = 0;
	if (sign < 0 && at <= now - l->window)
		return (0);	/* it has left the window already */
	if (bucket_at(s, sl, at) == -1)
		return (-1);
	if (sign > 0) {
		sl->b_n++;
		sl->b_units += add;
		sl->n++;
		sl->units += add;
		if (sl->oldest == 0 || at < sl->oldest)
			sl->oldest = at;
		if (at > sl->newest)
			sl->newest = at;
	} else {
		if (sl->b_n < 1 || sl->b_units < add || sl->n < 1 ||
		    sl->units < add) {
			log_warnx("%s: %s %s: less usage at %lld than the "
			    "intent freed; kept", __func__, l->name, key,
			    (long long)at);
			return (0);
		}
		sl->b_n--;
		sl->b_units -= add;
		sl->n--;
		sl->units -= add;
	}
	sl->bucket_dirty = sl->dirty = 1;
	if (sign > 0 || sl->b_n > 0 || at != sl->oldest)
		return (0);
	/* the oldest bucket emptied: the next one is the oldest */
	if (bucket_flush(s, sl) == -1)
		return (-1);
	sl->oldest = 0;
	if (sl->id != 0 && stale_read(s, sl->id, INT64_MIN, &st) == -1)
		return (-1);
	if (sl->id != 0)
		sl->oldest = st.oldest;
	return (0);
}

int
usage_tx_flush(struct usage_tx *tx, struct store *s)
{
	struct slot	*sl;

	if (tx == NULL)
		return (0);
	for (sl = tx->touched; sl != NULL; sl = sl->touched_next) {
		if (bucket_flush(s, sl) == -1)
			return (-1);
		if (sl->dirty && slot_put(s, sl) == -1)
			return (-1);
		sl->dirty = 0;
	}
	return (0);
}

/* --- checking a call ----------------------------------------------- */

int
usage_live(struct store *s, const struct policy_limit *l,
    const struct limit_usage_row *u, int64_t now, int64_t *n,
    usage_units *units, int64_t *oldest)
{
	struct stale	 st;

	*n = 0;
	*units = 0;
	*oldest = 0;
	if (u->n <= 0)
		return (0);
	if (units_join(u->whole, u->micro, units) == -1)
		return (-1);
	*n = u->n;
	*oldest = u->oldest;
	if (u->oldest == 0 || u->oldest > now - l->window)
		return (0);
	if (stale_read(s, u->id, now - l->window, &st) == -1)
		return (-1);
	stale_subtract(&st, n, units);
	*oldest = *n > 0 ? st.oldest : 0;
	return (0);
}

/* Read-only: the usage of (l, key) inside the window at now. */
static int
usage_read(struct store *s, const struct policy_limit *l, const char *key,
    int64_t now, struct limit_state *ls)
{
	struct limit_usage_row	 u;
	usage_units		 units;
	int			 found;

	ls->read = 1;
	if ((found = s->ops->limit_usage_get(s, l->name, key, 0, &u)) == -1)
		return (-1);
	if (!found)
		return (0);
	if (usage_live(s, l, &u, now, &ls->n, &units, &ls->oldest) == -1)
		return (-1);
	ls->used = usage_of(l, ls->n, units);
	return (0);
}

/* The usage of ls's (limit, key) at now, through tx when there is one. */
static int
state_read(struct usage_tx *tx, struct store *s, struct limit_state *ls,
    const char *agent, int64_t now)
{
	const struct policy_limit	*l = ls->limit;
	struct slot			*sl;

	if (tx == NULL)
		return (usage_read(s, l, ls->key, now, ls));
	if ((sl = slot_get(tx, s, l->name, ls->key, agent)) == NULL ||
	    slot_evict(s, sl, now - l->window) == -1)
		return (-1);
	ls->read = 1;
	ls->n = sl->n;
	ls->oldest = sl->oldest;
	ls->used = usage_of(l, sl->n, sl->units);
	return (0);
}

struct frees {
	const struct policy_limit	*limit;
	usage_units			 need, freed;
	int64_t				 at;	/* 0: not found */
	size_t				 walked;
	int				 bad;
};

static int
frees_cb(const struct limit_bucket_row *b, void *arg)
{
	struct frees	*f = arg;
	usage_units	 u;

	if (++f->walked > USAGE_WALK_MAX)
		return (1);
	if (b->n < 0 || units_join(b->whole, b->micro, &u) == -1) {
		f->bad = 1;
		return (1);
	}
	f->freed += usage_of(f->limit, b->n, u);
	if (f->freed < f->need)
		return (0);
	f->at = b->at;
	return (1);
}

/*
 * When ls (breached) fits again: the second its oldest buckets, enough of
 * them to make room for the call, have left the window.  Never (0) when
 * the call alone is over the maximum.
 */
static int
state_frees_at(struct usage_tx *tx, struct store *s, struct limit_state *ls,
    const char *agent, int64_t now)
{
	const struct policy_limit	*l = ls->limit;
	struct limit_usage_row		 u;
	struct frees			 f;
	struct slot			*sl;
	int64_t				 id = 0;
	int				 found;

	ls->frees_at = 0;
	if (ls->add > ls->max || s == NULL)
		return (0);
	if (tx != NULL) {
		if ((sl = slot_get(tx, s, l->name, ls->key, agent)) == NULL ||
		    bucket_flush(s, sl) == -1)
			return (-1);
		id = sl->id;
	} else if ((found = s->ops->limit_usage_get(s, l->name, ls->key, 0,
	    &u)) == -1)
		return (-1);
	else if (found)
		id = u.id;
	memset(&f, 0, sizeof(f));
	f.limit = l;
	f.need = ls->used + ls->add - ls->max;
	if (id != 0 && s->ops->limit_buckets_walk(s, id, now - l->window,
	    frees_cb, &f) == -1)
		return (-1);
	if (f.bad)
		return (-1);
	/* Not found in the walk: by then everything counted now is gone. */
	ls->frees_at = (f.at != 0 ? f.at : now) + l->window;
	return (0);
}

/* roles ∩ with (n of them); into lc->roles (a new array). */
static int
roles_narrow(struct limit_check *lc, const char *const *with, size_t n,
    int first)
{
	const char	**out;
	size_t		 i, j, k = 0;

	if ((out = calloc(first ? n + 1 : lc->n_roles + 1,
	    sizeof(*out))) == NULL)
		return (-1);
	if (first)
		for (i = 0; i < n; i++)
			out[k++] = with[i];
	else
		for (i = 0; i < lc->n_roles; i++)
			for (j = 0; j < n; j++)
				if (strcmp(lc->roles[i], with[j]) == 0) {
					out[k++] = lc->roles[i];
					break;
				}
	free(lc->roles);
	lc->roles = out;
	lc->n_roles = k;
	return (0);
}

/*
 * Pending over the breached limits that ask for approvals: the most
 * approvals any of them or the rule needs, from roles that every one of
 * them and the rule names — never weaker than any of them alone.
 */
static int
usage_escalate(struct limit_check *lc, struct evaluation *ev)
{
	const struct policy_limit	*l;
	size_t				 i;
	int				 first = 1;

	if (ev->outcome == OUTCOME_PENDING) {
		if (roles_narrow(lc, ev->approver_roles, ev->n_approver_roles,
		    1) == -1)
			return (-1);
		first = 0;
	}
	for (i = 0; i < lc->n; i++) {
		l = lc->lim[i].limit;
		if (lc->lim[i].holds || l->over_approvals == 0)
			continue;
		if (l->over_approvals > ev->approvals_required)
			ev->approvals_required = l->over_approvals;
		if (roles_narrow(lc, l->over_approvers, l->n_over_approvers,
		    first) == -1)
			return (-1);
		first = 0;
	}
	ev->outcome = OUTCOME_PENDING;
	ev->reason = R_APPROVAL_REQUIRED;
	ev->approver_roles = lc->roles;
	ev->n_approver_roles = lc->n_roles;
	return (0);
}

/* Change ev as the breached limits say; the named one gets frees_at. */
static enum reason
usage_verdict(struct usage_tx *tx, struct store *s, struct evaluation *ev,
    struct limit_check *lc, const char *principal, int64_t now,
    int want_frees)
{
	struct limit_state	*ls;
	int			 deny = -1, esc = -1;
	size_t			 i;

	for (i = 0; i < lc->n; i++) {
		if (lc->lim[i].holds)
			continue;
		if (lc->lim[i].limit->over_approvals == 0 && deny < 0)
			deny = (int)i;
		else if (lc->lim[i].limit->over_approvals > 0 && esc < 0)
			esc = (int)i;
	}
	if (deny < 0 && esc < 0)
		return (REASON_OK);
	lc->named = deny >= 0 ? deny : esc;
	if (deny >= 0) {
		ev->outcome = OUTCOME_DENY;
		ev->reason = R_LIMIT_EXCEEDED;
		ev->approvals_required = 0;
		ev->approver_roles = NULL;
		ev->n_approver_roles = 0;
	} else if (usage_escalate(lc, ev) == -1)
		return (E_UNAVAILABLE);
	/* explain (read only) shows when each breached limit fits again */
	for (i = 0; want_frees && i < lc->n; i++) {
		ls = &lc->lim[i];
		if (ls->holds || (tx != NULL && (int)i != lc->named))
			continue;
		if (state_frees_at(tx, s, ls, usage_key_agent(ls->limit,
		    principal), now) == -1)
			return (E_UNAVAILABLE);
	}
	usage_message(lc, ev->approvals_required, ev->message,
	    sizeof(ev->message));
	return (REASON_OK);
}

enum reason
usage_check(struct usage_tx *tx, struct store *s, const struct policy *p,
    const struct policy_call *call, struct evaluation *ev, int64_t now,
    int64_t self_created, struct limit_check *out)
{
	struct policy_limit_use	*uses;
	struct limit_state	*ls;
	const struct amount	*amount = ev->has_amount ? &ev->amount : NULL;
	size_t			 i, n;

	memset(out, 0, sizeof(*out));
	out->named = -1;
	/* a denied call reserves nothing: only explain reads for it */
	if (policy_limit_count(p) == 0 || ev->error != REASON_OK ||
	    (ev->outcome == OUTCOME_DENY && tx != NULL))
		return (REASON_OK);
	if (policy_limits_for(p, call, &uses, &n) == -1)
		return (E_UNAVAILABLE);
	if (n == 0)
		return (REASON_OK);
	if ((out->lim = calloc(n, sizeof(*out->lim))) == NULL) {
		policy_limit_uses_free(uses, n);
		return (E_UNAVAILABLE);
	}
	for (i = 0; i < n; i++) {
		out->lim[i].limit = uses[i].limit;
		out->lim[i].key = uses[i].key;	/* moved */
		uses[i].key = NULL;
	}
	out->n = n;
	policy_limit_uses_free(uses, n);
	for (i = 0; i < n; i++) {
		ls = &out->lim[i];
		ls->max = limit_max_units(ls->limit);
		ls->holds = 1;
		ls->counts = usage_contribution(ls->limit, amount, &ls->add);
		/* a decision reads only what it counts toward; explain all
		 * (without a store, usage is unknown: the call alone) */
		if (!ls->counts && tx != NULL)
			continue;
		if (s != NULL && state_read(tx, s, ls, usage_key_agent(
		    ls->limit, call->principal), now) == -1)
			return (E_UNAVAILABLE);
		if (!ls->counts)
			continue;
		if (self_created != 0) {
			/* re-deciding: its reservation is in the usage, or
			 * it has left the window and counts no more */
			if (self_created <= now - ls->limit->window)
				continue;
			ls->used = ls->used >= ls->add ? ls->used - ls->add : 0;
		}
		ls->holds = ls->used + ls->add <= ls->max;
	}
	if (ev->outcome == OUTCOME_DENY)
		return (REASON_OK);
	return (usage_verdict(tx, s, ev, out, call->principal, now,
	    self_created == 0));
}

void
limit_check_clear(struct limit_check *lc)
{
	size_t	 i;

	for (i = 0; lc->lim != NULL && i < lc->n; i++)
		free(lc->lim[i].key);
	free(lc->lim);
	free(lc->roles);
	memset(lc, 0, sizeof(*lc));
	lc->named = -1;
}

enum reason
usage_reserve(struct usage_tx *tx, struct store *s,
    const struct limit_check *lc, const char *principal, int64_t created_at)
{
	const struct limit_state	*ls;
	size_t				 i;

	for (i = 0; i < lc->n; i++) {
		ls = &lc->lim[i];
		if (ls->counts && usage_change(tx, s, ls->limit,
		    ls->key, usage_key_agent(ls->limit, principal),
		    created_at, ls->add, 1, created_at) == -1)
			return (E_UNAVAILABLE);
	}
	return (REASON_OK);
}

enum reason
usage_release(struct usage_tx *tx, struct store *s, const struct policy *p,
    const struct intent_row *r, int64_t now)
{
	struct policy_limit_use	*uses = NULL;
	struct policy_call	 call;
	struct amount		 a;
	usage_units		 add;
	json_t			*args;
	enum reason		 rc = REASON_OK;
	size_t			 i, n = 0;
	int			 has;

	if (policy_limit_count(p) == 0)
		return (REASON_OK);
	if (usage_row_call(r, &call, &args, &a, &has) == -1) {
		/* freeing only narrows nothing: keep counting it */
		log_warnx("%s: %s: stored args do not read back; its usage "
		    "stays counted", __func__, r->id);
		return (REASON_OK);
	}
	if (policy_limits_for(p, &call, &uses, &n) == -1)
		rc = E_UNAVAILABLE;
	for (i = 0; rc == REASON_OK && i < n; i++)
		if (usage_contribution(uses[i].limit, has ? &a : NULL,
		    &add) && usage_change(tx, s, uses[i].limit,
		    uses[i].key, usage_key_agent(uses[i].limit, r->agent),
		    r->created_at, add, -1, now) == -1)
			rc = E_UNAVAILABLE;
	policy_limit_uses_free(uses, n);
	json_decref(args);
	return (rc);
}
