/*
 * policy_warn: what "policy check" warns about (CONTRACT §8.4) — a
 * snapshot that is valid but cannot work as written: rules (and limits
 * that escalate) nobody can approve, and principals holding an approver
 * role of their own rules.  It only reads a snapshot policy.c built;
 * warnings never make a policy invalid.
 *
 * Cost: linear in role assignments per distinct approver list of a role,
 * not rules × principals, so a policy of benchmark size is checked at
 * once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "policy.h"
#include "policy_impl.h"

struct wctx {
	const struct policy	*p;
	json_t			*out;
	size_t			 n;
	int			 oom;
	/* holders[r]: the enabled principals holding role_list[r] */
	size_t			**holders;
	size_t			*n_holders;
	/* mark[i] == gen: principal i approves under the current list */
	unsigned		*mark;
	unsigned		 gen;
};

static void
warn(struct wctx *w, const char *path, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
warn(struct wctx *w, const char *path, const char *code, const char *fmt,
    ...)
{
	char	 msg[512];
	va_list	 ap;
	json_t	*e;

	if (w->n >= POLICY_MAX_ERRORS || w->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = json_pack("{ss ss ss}", "path", path, "code", code, "message",
	    msg);
	if (e == NULL || json_array_append_new(w->out, e) == -1) {
		w->oom = 1;
		return;
	}
	w->n++;
}

/* TOP, then NAME as a path segment (if any), MID, [INDEX] (if >= 0) and
 * TAIL: "$.roles.r.rules[0]", "$.principals.x", "$.limits[0].over"
 * (malloc'd; NULL when out of memory). */
static char *
wpath(const char *top, const char *name, const char *mid, long index,
    const char *tail)
{
	size_t	 n = name ? strlen(name) : 0;
	char	*s;
	size_t	 o;

	if ((s = malloc(strlen(top) + 6 * n + 5 + strlen(mid) + 32 +
	    strlen(tail))) == NULL)
		return (NULL);
	o = (size_t)sprintf(s, "%s", top);
	if (name != NULL)
		o += policy_path_key(s + o, name, n);
	o += (size_t)sprintf(s + o, "%s", mid);
	if (index >= 0)
		o += (size_t)sprintf(s + o, "[%ld]", index);
	sprintf(s + o, "%s", tail);
	return (s);
}

static size_t
role_pos(const struct policy *p, const struct role *ro)
{
	return ((size_t)(ro - p->role_list));
}

/* Mark the approvers of roles (n names) under a new generation; returns
 * how many enabled principals that is. */
static size_t
mark_approvers(struct wctx *w, const char *const *roles, size_t n)
{
	const struct role	*ro;
	size_t			 i, k, r, count = 0;

	w->gen++;
	for (i = 0; i < n; i++) {
		if ((ro = htab_get(&w->p->roles, roles[i], strlen(roles[i]))) ==
		    NULL)
			continue;
		r = role_pos(w->p, ro);
		for (k = 0; k < w->n_holders[r]; k++)
			if (w->mark[w->holders[r][k]] != w->gen) {
				w->mark[w->holders[r][k]] = w->gen;
				count++;
			}
	}
	return (count);
}

static int
same_list(const struct rule *a, const struct rule *b)
{
	size_t	 i;

	if (a->n_approvers != b->n_approvers)
		return (0);
	for (i = 0; i < a->n_approvers; i++)
		if (a->approvers[i] != b->approvers[i])
			return (0);
	return (1);
}

/* The roles list as text for a message: "a, b" (cut to fit). */
static void
list_text(const char *const *roles, size_t n, char *buf, size_t bufsz)
{
	size_t	 i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < n && o + 1 < bufsz; i++)
		o += (size_t)snprintf(buf + o, bufsz - o, "%s%s", i ? ", " : "",
		    roles[i]);
}

/* Rules of ro sharing the approvers of rule first: their warnings. */
static void
warn_list(struct wctx *w, const struct role *ro, size_t first)
{
	const struct rule	*ru = &ro->rules[first], *o;
	const struct principal	*pr;
	size_t			 cand, i, r = role_pos(w->p, ro);
	size_t			 most_at = first;
	int			 most = 0;
	char			*path, *rule, names[160];

	cand = mark_approvers(w, ru->approvers, ru->n_approvers);
	list_text(ru->approvers, ru->n_approvers, names, sizeof(names));
	for (i = first; i < ro->n_rules; i++) {
		o = &ro->rules[i];
		if (o->deny || o->max_approvals == 0 || !same_list(o, ru))
			continue;
		if (o->max_approvals > most) {
			most = o->max_approvals;
			most_at = i;
		}
		if ((size_t)o->max_approvals <= cand)
			continue;
		path = wpath("$.roles", ro->name, ".rules", (long)i, "");
		if (path == NULL) {
			w->oom = 1;
			return;
		}
		warn(w, path, "never_approvable", "can need %d approval%s but "
		    "only %zu enabled principal%s hold%s its approver roles "
		    "(%s): such calls stay pending until they expire; give "
		    "the role to more principals or lower the approvals",
		    o->max_approvals, o->max_approvals == 1 ? "" : "s", cand,
		    cand == 1 ? "" : "s", cand == 1 ? "s" : "", names);
		free(path);
	}
	/* agents of this role who are also its approvers */
	rule = wpath("$.roles", ro->name, ".rules", (long)most_at, "");
	if (rule == NULL) {
		w->oom = 1;
		return;
	}
	for (i = 0; i < w->n_holders[r] && !w->oom; i++) {
		pr = w->p->principal_list[w->holders[r][i]];
		if (w->mark[w->holders[r][i]] != w->gen)
			continue;
		path = wpath("$.principals", pr->name, "", -1, "");
		if (path == NULL) {
			w->oom = 1;
			break;
		}
		warn(w, path, "self_approver", "holds an approver role (%s) of "
		    "its own rule %s (%s): it may not approve its own intents "
		    "(403 self_approval), so their approvals must come from "
		    "others; let someone who does not make the calls approve",
		    names, rule, ro->rules[most_at].tool);
		free(path);
		/* approvable by all of them, but not without this one */
		if ((size_t)most == cand)
			warn(w, rule, "never_approvable", "can need %d "
			    "approval%s, but for the intents of %s only %zu "
			    "other principal%s hold%s its approver roles (%s): "
			    "those can never be approved", most,
			    most == 1 ? "" : "s", pr->name, cand - 1,
			    cand - 1 == 1 ? "" : "s", cand - 1 == 1 ? "s" : "",
			    names);
	}
	free(rule);
}

static void
warn_role(struct wctx *w, const struct role *ro)
{
	size_t	 i, k;
	int	 seen;

	for (i = 0; i < ro->n_rules && !w->oom; i++) {
		if (ro->rules[i].deny || ro->rules[i].max_approvals == 0)
			continue;
		/* once per distinct approvers list, from its first rule */
		for (seen = 0, k = 0; k < i && !seen; k++)
			seen = !ro->rules[k].deny &&
			    ro->rules[k].max_approvals > 0 &&
			    same_list(&ro->rules[k], &ro->rules[i]);
		if (!seen)
			warn_list(w, ro, i);
	}
}

static void
warn_limits(struct wctx *w)
{
	const struct policy_limit	*l;
	size_t				 i, cand;
	char				*path, names[160];

	for (i = 0; i < w->p->n_limits && !w->oom; i++) {
		l = &w->p->limits[i];
		if (l->over_approvals == 0)
			continue;
		cand = mark_approvers(w, l->over_approvers,
		    l->n_over_approvers);
		if ((size_t)l->over_approvals <= cand)
			continue;
		if ((path = wpath("$.limits", NULL, "", (long)i, ".over")) ==
		    NULL) {
			w->oom = 1;
			return;
		}
		list_text(l->over_approvers, l->n_over_approvers, names,
		    sizeof(names));
		warn(w, path, "never_approvable", "needs %d approval%s over "
		    "the limit but only %zu enabled principal%s hold%s its "
		    "approver roles (%s)", l->over_approvals,
		    l->over_approvals == 1 ? "" : "s", cand,
		    cand == 1 ? "" : "s", cand == 1 ? "s" : "", names);
		free(path);
	}
}

/* holders[r] for every role, from the principals' role lists. */
static int
index_holders(struct wctx *w)
{
	const struct policy	*p = w->p;
	const struct principal	*pr;
	size_t			 i, k, r;

	if ((w->holders = calloc(p->n_roles + 1, sizeof(*w->holders))) ==
	    NULL || (w->n_holders = calloc(p->n_roles + 1,
	    sizeof(*w->n_holders))) == NULL || (w->mark = calloc(
	    p->n_principals + 1, sizeof(*w->mark))) == NULL)
		return (-1);
	for (i = 0; i < p->n_principals; i++) {
		pr = p->principal_list[i];
		for (k = 0; !pr->disabled && k < pr->n_roles; k++)
			w->n_holders[role_pos(p, pr->roles[k])]++;
	}
	for (r = 0; r < p->n_roles; r++) {
		if (w->n_holders[r] > 0 && (w->holders[r] = calloc(
		    w->n_holders[r], sizeof(**w->holders))) == NULL)
			return (-1);
		w->n_holders[r] = 0;
	}
	for (i = 0; i < p->n_principals; i++) {
		pr = p->principal_list[i];
		for (k = 0; !pr->disabled && k < pr->n_roles; k++) {
			r = role_pos(p, pr->roles[k]);
			w->holders[r][w->n_holders[r]++] = i;
		}
	}
	return (0);
}

json_t *
policy_warnings(const struct policy *p)
{
	struct wctx	 w;
	size_t		 r;

	memset(&w, 0, sizeof(w));
	w.p = p;
	if ((w.out = json_array()) == NULL)
		return (NULL);
	if (p == NULL)
		return (w.out);
	if (index_holders(&w) == -1)
		w.oom = 1;
	for (r = 0; r < p->n_roles && !w.oom; r++)
		warn_role(&w, &p->role_list[r]);
	if (!w.oom)
		warn_limits(&w);
	for (r = 0; w.holders != NULL && r < p->n_roles; r++)
		free(w.holders[r]);
	free(w.holders);
	free(w.n_holders);
	free(w.mark);
	if (w.oom) {
		json_decref(w.out);
		return (NULL);
	}
	return (w.out);
}
