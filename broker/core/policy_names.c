/*
 * policy_names: which names a policy snapshot knows, for callers that
 * must refuse a name nobody uses — a kill switch whose agent is not a
 * principal or whose tool pattern no rule covers stops nothing — and
 * the closest known name to one that is probably misspelt.  Reads the
 * snapshot only (policy_impl.h); decides nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_impl.h"

/* No suggestion further than this many edits away, whatever the length:
 * it bounds the work too (a band of 2 * k + 1 cells per row). */
#define NAMES_MAX_EDITS	8

/*
 * Optimal string alignment distance between a and b (insertions,
 * deletions, substitutions and swaps of two neighbours, each 1), or k + 1
 * when it is more than k.  Only the cells within k of the diagonal are
 * computed; the others stand for "more than k".  Bytes, not code
 * points: names are mostly ASCII, and a wrong multibyte character costs
 * a little more, which only makes a suggestion less likely.
 */
static int
names_distance(const char *a, size_t la, const char *b, size_t lb, int k)
{
	int	 rows[3][POLICY_MAX_NAME + 2], *pp, *prev, *cur, *t;
	int	 far = k + 1, v, best;
	size_t	 i, j, lo, hi;

	if (la > POLICY_MAX_NAME || lb > POLICY_MAX_NAME ||
	    (la > lb ? la - lb : lb - la) > (size_t)k)
		return (far);
	pp = rows[0];
	prev = rows[1];
	cur = rows[2];
	for (j = 0; j <= lb + 1; j++)
		pp[j] = prev[j] = cur[j] = far;
	for (j = 0; j <= lb && j <= (size_t)k; j++)
		prev[j] = (int)j;
	for (i = 1; i <= la; i++) {
		lo = i > (size_t)k ? i - (size_t)k : 1;
		hi = i + (size_t)k < lb ? i + (size_t)k : lb;
		for (j = 0; j <= lb + 1; j++)
			cur[j] = far;
		if (lo == 1)
			cur[0] = i <= (size_t)k ? (int)i : far;
		best = cur[lo - 1];
		for (j = lo; j <= hi; j++) {
			v = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			cur[j] = v > far ? far : v;
			if (cur[j] < best)
				best = cur[j];
		}
		if (best > k)
			return (far);
		t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return (prev[lb] > far ? far : prev[lb]);
}

/* The closest to name so far: a candidate replaces it when nearer. */
struct names_pick {
	const char	*name;
	size_t		 len;
	const char	*best;
	int		 dist;
};

static void
names_pick_init(struct names_pick *pk, const char *name)
{
	size_t	 k;

	pk->name = name;
	pk->len = strlen(name);
	pk->best = NULL;
	/* About one edit in four characters, at least two. */
	k = pk->len / 4 > 2 ? pk->len / 4 : 2;
	pk->dist = (int)(k > NAMES_MAX_EDITS ? NAMES_MAX_EDITS : k) + 1;
}

static void
names_consider(struct names_pick *pk, const char *cand)
{
	int	 d;

	if (pk->dist == 0 || cand == NULL)
		return;
	d = names_distance(pk->name, pk->len, cand, strlen(cand),
	    pk->dist - 1);
	if (d < pk->dist) {
		pk->dist = d;
		pk->best = cand;
	}
}

const char *
policy_closest_principal(const struct policy *p, const char *name)
{
	struct names_pick	 pk;
	size_t			 i;

	if (p == NULL || name == NULL)
		return (NULL);
	names_pick_init(&pk, name);
	for (i = 0; i < p->n_principals; i++)
		names_consider(&pk, p->principal_list[i]->name);
	return (pk.best);
}

/* "payments." of "payments.*"; NULL for an exact name. */
static const char *
names_prefix(const char *pattern, size_t *len)
{
	size_t	 n = strlen(pattern);

	if (n < 2 || strcmp(pattern + n - 2, ".*") != 0)
		return (NULL);
	*len = n - 1;
	return (pattern);
}

/* 1 if some tool name matches both a and b (each exact or prefix.*). */
static int
names_overlap(const char *a, const char *b)
{
	const char	*pa, *pb;
	size_t		 la = 0, lb = 0;

	pa = names_prefix(a, &la);
	pb = names_prefix(b, &lb);
	if (pa == NULL && pb == NULL)
		return (strcmp(a, b) == 0);
	if (pa != NULL && pb == NULL)
		return (policy_pattern_match(a, b));
	if (pa == NULL)
		return (policy_pattern_match(b, a));
	/* "a.*" and "a.b.*" share a.b.x; "a.*" and "ab.*" share nothing. */
	return (strncmp(pa, pb, la < lb ? la : lb) == 0);
}

int
policy_tool_known(const struct policy *p, const char *pattern)
{
	size_t	 r, i;

	if (p == NULL || pattern == NULL)
		return (0);
	for (r = 0; r < p->n_roles; r++)
		for (i = 0; i < p->role_list[r].n_rules; i++)
			if (names_overlap(p->role_list[r].rules[i].tool,
			    pattern))
				return (1);
	return (0);
}

const char *
policy_closest_tool(const struct policy *p, const char *pattern)
{
	struct names_pick	 pk;
	size_t			 r, i;

	if (p == NULL || pattern == NULL)
		return (NULL);
	names_pick_init(&pk, pattern);
	for (r = 0; r < p->n_roles; r++)
		for (i = 0; i < p->role_list[r].n_rules; i++)
			names_consider(&pk, p->role_list[r].rules[i].tool);
	return (pk.best);
}
