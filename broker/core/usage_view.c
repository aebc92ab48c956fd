/*
 * usage_view: usage of cumulative limits as people and programs see it
 * — the "limit" member of a decision, its human text, explain's list of
 * every limit that applies, and the pages of GET /v1/limits.  Amount
 * usage is a decimal string (exact, like every amount), count usage a
 * JSON integer; times are RFC 3339.  Reads only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "usage_impl.h"

void
usage_units_text(usage_units u, char buf[USAGE_UNITS_TEXT])
{
	char		 rev[USAGE_UNITS_TEXT];
	usage_units	 w = u / USAGE_MICRO;
	unsigned	 frac = (unsigned)(u % USAGE_MICRO);
	size_t		 n = 0, o = 0;
	int		 d;

	do {
		rev[n++] = (char)('0' + (int)(w % 10));
		w /= 10;
	} while (w > 0 && n < sizeof(rev) - 1);
	while (n > 0)
		buf[o++] = rev[--n];
	if (frac != 0) {
		buf[o++] = '.';
		for (d = 100000; d > 0 && frac != 0; d /= 10) {
			buf[o++] = (char)('0' + (int)(frac / (unsigned)d));
			frac %= (unsigned)d;
		}
	}
	buf[o] = '\0';
}

/*
 * u of amount limit l as a decimal with at least as many decimals as l's
 * max is written with ("19999.80" beside "20000.00"): the same value,
 * easier to read beside it.
 */
static void
usage_amount_text(const struct policy_limit *l, usage_units u,
    char buf[USAGE_UNITS_TEXT])
{
	const char	*dot = strchr(l->max_amount_text, '.');
	size_t		 want = dot != NULL ? strlen(dot + 1) : 0, have, n;

	usage_units_text(u, buf);
	n = strlen(buf);
	if (want == 0 || n + want + 2 > USAGE_UNITS_TEXT)
		return;
	if ((dot = strchr(buf, '.')) == NULL) {
		buf[n++] = '.';
		have = 0;
	} else
		have = strlen(dot + 1);
	for (; have < want; have++)
		buf[n++] = '0';
	buf[n] = '\0';
}

/* A usage (or what a call adds) of l: "19999.98" or 42. */
static json_t *
usage_json(const struct policy_limit *l, usage_units u)
{
	char	 t[USAGE_UNITS_TEXT];

	if (!l->by_amount)
		return (json_integer((json_int_t)u));
	usage_amount_text(l, u, t);
	return (json_string(t));
}

static json_t *
max_json(const struct policy_limit *l)
{
	if (l->by_amount)
		return (json_string(l->max_amount_text));
	return (json_integer((json_int_t)l->max_count));
}

static json_t *
time_json(int64_t t)
{
	char	 buf[RFC3339_LEN];

	if (t == 0)
		return (json_null());
	clock_rfc3339(t, buf);
	return (json_string(buf));
}

static json_t *
currency_json(const struct policy_limit *l)
{
	return (l->by_amount ? json_string(l->max_amount.currency) :
	    json_null());
}

/* The key's text back to its JSON array (we wrote it: it reads). */
static json_t *
key_json(const char *key)
{
	json_t	*v = json_loads(key, 0, NULL);

	return (v != NULL ? v : json_string(key));
}

json_t *
usage_named_json(const struct limit_check *lc)
{
	const struct limit_state	*ls;

	if (lc->named < 0 || (size_t)lc->named >= lc->n)
		return (NULL);
	ls = &lc->lim[lc->named];
	return (json_pack("{ss so so sI so}", "name", ls->limit->name,
	    "max", max_json(ls->limit), "used", usage_json(ls->limit,
	    ls->used), "window", (json_int_t)ls->limit->window,
	    "frees_at", time_json(ls->frees_at)));
}

/* "day", "7 days", "90 seconds": after "in the last". */
static void
window_text(int64_t w, char *buf, size_t len)
{
	static const struct { int64_t s; const char *unit; } units[] = {
		{ 86400, "day" }, { 3600, "hour" }, { 60, "minute" },
		{ 1, "second" }
	};
	size_t	 i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]) - 1; i++)
		if (w % units[i].s == 0)
			break;
	w /= units[i].s;
	if (w == 1)
		snprintf(buf, len, "%s", units[i].unit);
	else
		snprintf(buf, len, "%lld %ss", (long long)w, units[i].unit);
}

/* "19999.98 of 20000.00 USD" or "50 of 50 calls". */
static void
usage_text(const struct limit_state *ls, char *buf, size_t len)
{
	const struct policy_limit	*l = ls->limit;
	char				 u[USAGE_UNITS_TEXT];

	if (l->by_amount) {
		usage_amount_text(l, ls->used, u);
		snprintf(buf, len, "%s of %s %s", u, l->max_amount_text,
		    l->max_amount.currency);
	} else
		snprintf(buf, len, "%lld of %lld calls", (long long)ls->used,
		    (long long)l->max_count);
}

void
usage_message(const struct limit_check *lc, int approvals, char *buf,
    size_t len)
{
	const struct limit_state	*ls;
	char				 used[128], win[32], add[64];
	char				 when[RFC3339_LEN];

	buf[0] = '\0';
	if (lc->named < 0 || (size_t)lc->named >= lc->n)
		return;
	ls = &lc->lim[lc->named];
	usage_text(ls, used, sizeof(used));
	window_text(ls->limit->window, win, sizeof(win));
	if (ls->limit->over_approvals > 0) {
		snprintf(buf, len, "needs %d approval%s: over the limit %s "
		    "(%s used in the last %s)", approvals,
		    approvals == 1 ? "" : "s", ls->limit->name, used, win);
		return;
	}
	if (ls->limit->by_amount)
		usage_amount_text(ls->limit, ls->add, add);
	else
		snprintf(add, sizeof(add), "1 call");
	if (ls->frees_at == 0) {
		snprintf(buf, len, "over the limit %s: %s used in the last "
		    "%s, and this call alone (%s) is more than it allows",
		    ls->limit->name, used, win, add);
		return;
	}
	clock_rfc3339(ls->frees_at, when);
	snprintf(buf, len, "over the limit %s: %s used in the last %s, and "
	    "this call adds %s; it fits again at %s", ls->limit->name, used,
	    win, add, when);
}

json_t *
usage_explain_json(const struct limit_check *lc)
{
	const struct limit_state	*ls;
	json_t				*list, *o;
	size_t				 i;

	if ((list = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < lc->n; i++) {
		ls = &lc->lim[i];
		o = json_pack("{ss so so so so sI sb so sb so}",
		    "name", ls->limit->name, "key", key_json(ls->key),
		    "used", ls->read ? usage_json(ls->limit, ls->used) :
		    json_null(), "max", max_json(ls->limit),
		    "currency", currency_json(ls->limit),
		    "window", (json_int_t)ls->limit->window,
		    "counts", ls->counts,
		    "adds", ls->counts ? usage_json(ls->limit, ls->add) :
		    json_null(), "holds", ls->holds,
		    "frees_at", time_json(ls->holds ? 0 : ls->frees_at));
		if (o == NULL || json_array_append_new(list, o) == -1) {
			json_decref(list);
			return (NULL);
		}
	}
	return (list);
}

/* Walking usage rows into a page. */
struct page {
	struct store		*s;
	const struct policy	*p;
	int64_t			 now;
	json_t			*items;
	int64_t			 last, seen;
	int			 failed;
};

static const struct policy_limit *
limit_named(const struct policy *p, const char *name)
{
	const struct policy_limit	*l;
	size_t				 i;

	for (i = 0; i < policy_limit_count(p); i++)
		if (strcmp((l = policy_limit_at(p, i))->name, name) == 0)
			return (l);
	return (NULL);
}

static int
page_cb(const struct limit_usage_row *u, void *arg)
{
	struct page			*pg = arg;
	const struct policy_limit	*l;
	usage_units			 units;
	int64_t				 n, oldest;
	json_t				*o;

	pg->last = u->id;
	pg->seen++;
	/* rows of a limit the policy dropped are gone with it; be safe */
	if ((l = limit_named(pg->p, u->name)) == NULL)
		return (0);
	if (usage_live(pg->s, l, u, pg->now, &n, &units, &oldest) == -1) {
		pg->failed = 1;
		return (1);
	}
	if (n <= 0)
		return (0);
	o = json_pack("{ss so so so so sI so}", "name", l->name,
	    "key", key_json(u->key), "used", usage_json(l, usage_of(l, n,
	    units)), "max", max_json(l), "currency", currency_json(l),
	    "window", (json_int_t)l->window,
	    "frees_at", time_json(oldest != 0 ? oldest + l->window : 0));
	if (o == NULL || json_array_append_new(pg->items, o) == -1) {
		pg->failed = 1;
		return (1);
	}
	return (0);
}

int
usage_list(struct store *s, const struct policy *p, const char *agent,
    int64_t now, int64_t after, int64_t max, json_t *items, int64_t *next)
{
	struct page	 pg;

	*next = 0;
	memset(&pg, 0, sizeof(pg));
	pg.s = s;
	pg.p = p;
	pg.now = now;
	pg.items = items;
	if (policy_limit_count(p) == 0)
		return (0);
	if (s->ops->limit_usage_walk(s, after, agent, max, page_cb, &pg) ==
	    -1 || pg.failed)
		return (-1);
	if (max > 0 && pg.seen == max)
		*next = pg.last;
	return (0);
}
