/*
 * usage_recount: keeping usage true to the policy in force when a new
 * one is applied (usage_recount in usage.h).  Each limit's usage was
 * counted for what the limit counts — its tools, principals, per, window
 * and currency, kept as its "def" (migrations/0004) — so a policy that
 * keeps a limit's def keeps its usage (a new max or over changes nothing
 * counted), one that drops the limit drops its usage, and one that adds
 * a limit or changes its def has it counted afresh from the pending and
 * allowed intents of its window, exactly as if it had been in force when
 * they were decided.  That also makes freeing an intent's usage with the
 * policy in force (usage_release) take out what was put in.
 *
 * Runs inside the applying transaction; the scan of the intents table is
 * the one place usage costs more than the limits that apply, and only
 * when a limit is added or changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "usage_impl.h"
#include "log.h"

/* l's def: RFC 8785 JSON of what it counts (malloc'd, NULL on ENOMEM). */
static char *
limit_def(const struct policy_limit *l)
{
	json_t	*d, *tools, *per, *who = json_null();
	char	*text = NULL;
	size_t	 i;

	tools = json_array();
	per = json_array();
	for (i = 0; i < l->n_tools; i++)
		json_array_append_new(tools, json_string(l->tools[i]));
	for (i = 0; i < l->n_per; i++)
		json_array_append_new(per, json_string(l->per[i]));
	if (l->n_principals > 0) {
		json_decref(who);
		who = json_array();
		for (i = 0; i < l->n_principals; i++)
			json_array_append_new(who,
			    json_string(l->principals[i]));
	}
	d = json_pack("{so so so sI so}", "tools", tools, "per", per,
	    "principals", who, "window", (json_int_t)l->window,
	    "currency", l->by_amount ? json_string(l->max_amount.currency) :
	    json_null());
	if (d != NULL && json_array_size(tools) == l->n_tools &&
	    json_array_size(per) == l->n_per)
		text = canon_dump(d);
	json_decref(d);
	return (text);
}

/* The stored defs. */
struct defs {
	char	**name, **def;
	size_t	 n, cap;
	int	 failed;
};

static int
defs_cb(const char *name, const char *def, void *arg)
{
	struct defs	*ds = arg;
	size_t		 cap;
	char		**a, **b;

	if (ds->n == ds->cap) {
		cap = ds->cap ? ds->cap * 2 : 16;
		a = reallocarray(ds->name, cap, sizeof(*a));
		if (a != NULL)
			ds->name = a;
		b = a != NULL ? reallocarray(ds->def, cap, sizeof(*b)) : NULL;
		if (b == NULL) {
			ds->failed = 1;
			return (1);
		}
		ds->def = b;
		ds->cap = cap;
	}
	ds->name[ds->n] = strdup(name);
	ds->def[ds->n] = strdup(def);
	if (ds->name[ds->n] == NULL || ds->def[ds->n] == NULL) {
		free(ds->name[ds->n]);
		free(ds->def[ds->n]);
		ds->failed = 1;
		return (1);
	}
	ds->n++;
	return (0);
}

static void
defs_free(struct defs *ds)
{
	size_t	 i;

	for (i = 0; i < ds->n; i++) {
		free(ds->name[i]);
		free(ds->def[i]);
	}
	free(ds->name);
	free(ds->def);
}

/* The stored def of name, or NULL. */
static const char *
defs_find(const struct defs *ds, const char *name)
{
	size_t	 i;

	for (i = 0; i < ds->n; i++)
		if (strcmp(ds->name[i], name) == 0)
			return (ds->def[i]);
	return (NULL);
}

/* Counting the intents of the window into the limits to recount. */
struct recount {
	struct usage_tx	*tx;
	struct store		*s;
	const struct policy	*p;
	const int		*redo;	/* by limit index */
	int64_t			 now;
	size_t			 counted;
	int			 failed;
};

static int
recount_cb(const struct intent_row *r, void *arg)
{
	struct recount		*rc = arg;
	struct policy_limit_use	*uses = NULL;
	const struct policy_limit *l;
	struct policy_call	 call;
	struct amount		 a;
	usage_units		 add;
	json_t			*args;
	size_t			 i, n = 0;
	int			 has, counted = 0;

	if (usage_row_call(r, &call, &args, &a, &has) == -1) {
		/* it is counted nowhere else either: fail closed */
		log_warnx("%s: %s: stored args do not read back", __func__,
		    r->id);
		rc->failed = 1;
		return (1);
	}
	if (policy_limits_for(rc->p, &call, &uses, &n) == -1)
		rc->failed = 1;
	for (i = 0; !rc->failed && i < n; i++) {
		l = uses[i].limit;
		if (!rc->redo[l->index] || r->created_at <= rc->now - l->window ||
		    !usage_contribution(l, has ? &a : NULL, &add))
			continue;
		if (usage_change(rc->tx, rc->s, l, uses[i].key,
		    usage_key_agent(l, r->agent), r->created_at, add, 1,
		    rc->now) == -1)
			rc->failed = 1;
		counted = 1;
	}
	rc->counted += (size_t)counted;
	policy_limit_uses_free(uses, n);
	json_decref(args);
	return (rc->failed);
}

/*
 * Forget the stored limits p no longer has or counts differently, store
 * the defs of p's that are new or changed and mark them in redo; *oldest
 * gets the start of the widest window to recount.  0 or -1.
 */
static int
recount_plan(struct store *s, const struct policy *p, const struct defs *ds,
    int *redo, int64_t now, int64_t *since)
{
	const struct policy_limit	*l;
	const char			*old;
	char				*def;
	size_t				 i, j, nl = policy_limit_count(p);
	int				 keep;

	for (i = 0; i < ds->n; i++) {
		keep = 0;
		for (j = 0; j < nl && !keep; j++) {
			l = policy_limit_at(p, j);
			if (strcmp(l->name, ds->name[i]) != 0)
				continue;
			if ((def = limit_def(l)) == NULL)
				return (-1);
			keep = strcmp(def, ds->def[i]) == 0;
			free(def);
			break;
		}
		if (!keep && s->ops->limit_forget(s, ds->name[i]) == -1)
			return (-1);
	}
	*since = INT64_MAX;
	for (j = 0; j < nl; j++) {
		l = policy_limit_at(p, j);
		if ((def = limit_def(l)) == NULL)
			return (-1);
		old = defs_find(ds, l->name);
		redo[j] = old == NULL || strcmp(old, def) != 0;
		if (redo[j] && s->ops->limit_def_put(s, l->name, def) == -1) {
			free(def);
			return (-1);
		}
		free(def);
		if (redo[j] && now - l->window < *since)
			*since = now - l->window;
	}
	return (0);
}

enum reason
usage_recount(struct usage_tx *tx, struct store *s, const struct policy *p,
    int64_t now)
{
	struct defs	 ds;
	struct recount	 rc;
	int		*redo = NULL;
	int64_t		 since = INT64_MAX;
	size_t		 nl = policy_limit_count(p);
	enum reason	 r = E_UNAVAILABLE;

	/* Start from what the store holds: nothing half-counted in memory. */
	if (usage_tx_flush(tx, s) == -1)
		return (E_UNAVAILABLE);
	usage_tx_reset(tx);
	memset(&ds, 0, sizeof(ds));
	if (s->ops->limit_defs_walk(s, defs_cb, &ds) == -1 || ds.failed ||
	    (redo = calloc(nl + 1, sizeof(*redo))) == NULL ||
	    recount_plan(s, p, &ds, redo, now, &since) == -1)
		goto done;
	memset(&rc, 0, sizeof(rc));
	rc.tx = tx;
	rc.s = s;
	rc.p = p;
	rc.redo = redo;
	rc.now = now;
	if (since != INT64_MAX && (s->ops->intents_live(s, since, recount_cb,
	    &rc) == -1 || rc.failed))
		goto done;
	if (since != INT64_MAX)
		log_info("limits counted afresh for the new policy: %zu "
		    "intent%s of their windows", rc.counted,
		    rc.counted == 1 ? "" : "s");
	r = REASON_OK;
 done:
	free(redo);
	defs_free(&ds);
	return (r);
}
