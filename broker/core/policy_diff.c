/*
 * policy_diff: compare two policy documents member by member.  Rules have
 * no names, so they are matched within their role by (tool, effect) and
 * compared by their RFC 8785 text: moving a rule within its role changes
 * nothing, editing its tiers "changes" it.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "policy_diff.h"

/* One kind of thing: lists of what was added, removed, changed. */
struct diff_kind {
	json_t	*lists[3];	/* added, removed, changed */
	size_t	 more;
	int	 failed;
};

static const char *const diff_lists[3] = { "added", "removed", "changed" };

enum { D_ADDED, D_REMOVED, D_CHANGED };

static void
diff_note(struct diff_kind *k, int which, json_t *entry)
{
	if (entry == NULL) {
		k->failed = 1;
		return;
	}
	if (k->lists[which] == NULL && (k->lists[which] = json_array()) ==
	    NULL) {
		k->failed = 1;
		json_decref(entry);
		return;
	}
	if (json_array_size(k->lists[which]) >= POLICY_CHANGES_MAX) {
		k->more++;
		json_decref(entry);
		return;
	}
	if (json_array_append_new(k->lists[which], entry) == -1)
		k->failed = 1;
}

/* Move k into out[name] when it holds anything.  -1 on failure. */
static int
diff_put(json_t *out, const char *name, struct diff_kind *k)
{
	json_t	*o = NULL;
	int	 i, rc = k->failed ? -1 : 0;

	for (i = 0; i < 3; i++) {
		if (k->lists[i] == NULL)
			continue;
		if (rc == 0 && o == NULL && (o = json_object()) == NULL)
			rc = -1;
		if (rc == 0)
			rc = json_object_set_new(o, diff_lists[i], k->lists[i]);
		else
			json_decref(k->lists[i]);
		k->lists[i] = NULL;
	}
	if (rc == 0 && o != NULL && k->more > 0)
		rc = json_object_set_new(o, "more", json_integer(
		    (json_int_t)k->more));
	if (rc == 0 && o != NULL)
		return (json_object_set_new(out, name, o));
	json_decref(o);
	return (rc);
}

/* A copy of v without member drop (NULL: v itself, referenced). */
static json_t *
diff_without(json_t *v, const char *drop)
{
	json_t	*c;

	if (drop == NULL || !json_is_object(v))
		return (json_incref(v));
	if ((c = json_copy(v)) != NULL)
		json_object_del(c, drop);
	return (c);
}

/* Members of two objects by name; values compared without drop. */
static void
diff_named(json_t *a, json_t *b, const char *drop, struct diff_kind *k)
{
	const char	*name;
	json_t		*v, *w, *x, *y;

	json_object_foreach(b, name, v) {
		if ((w = json_object_get(a, name)) == NULL) {
			diff_note(k, D_ADDED, json_string(name));
			continue;
		}
		x = diff_without(v, drop);
		y = diff_without(w, drop);
		if (!json_equal(x, y))
			diff_note(k, D_CHANGED, json_string(name));
		json_decref(x);
		json_decref(y);
	}
	json_object_foreach(a, name, w)
		if (json_object_get(b, name) == NULL)
			diff_note(k, D_REMOVED, json_string(name));
}

/* Limits are an array of objects named by "name". */
static json_t *
diff_limits_by_name(json_t *arr)
{
	json_t		*o = json_object(), *l;
	const char	*name;
	size_t		 i;

	json_array_foreach(arr, i, l)
		if ((name = json_string_value(json_object_get(l, "name"))) !=
		    NULL)
			json_object_set(o, name, l);
	return (o);
}

static int
diff_is_deny(json_t *rule)
{
	const char	*e = json_string_value(json_object_get(rule, "effect"));

	return (e != NULL && strcmp(e, "deny") == 0);
}

/* 1 if rule has the tool and effect of key. */
static int
diff_same_key(json_t *rule, json_t *key)
{
	return (json_equal(json_object_get(rule, "tool"),
	    json_object_get(key, "tool")) &&
	    diff_is_deny(rule) == diff_is_deny(key));
}

/* How many rules of arr have key's (tool, effect) and the text of key
 * (text NULL: any text). */
static size_t
diff_count(json_t *arr, json_t *key, const char *text)
{
	json_t	*r;
	char	*t;
	size_t	 i, n = 0;

	json_array_foreach(arr, i, r) {
		if (!diff_same_key(r, key))
			continue;
		if (text == NULL)
			n++;
		else if ((t = canon_dump(r)) != NULL) {
			n += strcmp(t, text) == 0;
			free(t);
		}
	}
	return (n);
}

/* 1 if some rule with key's (tool, effect) is in a but not in b, counted
 * with multiplicity by text. */
static int
diff_unmatched(json_t *a, json_t *b, json_t *key)
{
	json_t	*r;
	char	*t;
	size_t	 i;
	int	 yes = 0;

	json_array_foreach(a, i, r) {
		if (yes || !diff_same_key(r, key) ||
		    (t = canon_dump(r)) == NULL)
			continue;
		yes = diff_count(a, key, t) > diff_count(b, key, t);
		free(t);
	}
	return (yes);
}

/* The first rule of arr before index i with the same (tool, effect). */
static int
diff_seen(json_t *arr, size_t i, json_t *key)
{
	size_t	 j;

	for (j = 0; j < i; j++)
		if (diff_same_key(json_array_get(arr, j), key))
			return (1);
	return (0);
}

static json_t *
diff_rule_entry(const char *role, json_t *rule)
{
	json_t	*e = json_pack("{ss sO}", "role", role, "tool",
	    json_object_get(rule, "tool"));

	if (e != NULL && diff_is_deny(rule))
		json_object_set_new(e, "effect", json_string("deny"));
	return (e);
}

/* The rules of one role, old list a and new list b (either NULL). */
static void
diff_role_rules(const char *role, json_t *a, json_t *b, struct diff_kind *k)
{
	json_t	*r, *lists[2] = { a, b };
	size_t	 i;
	int	 side, in_a, in_b, gone, came;

	for (side = 0; side < 2; side++)
		json_array_foreach(lists[side], i, r) {
			if (diff_seen(lists[side], i, r) || (side == 1 &&
			    diff_count(a, r, NULL) > 0))
				continue;	/* each key once */
			in_a = diff_count(a, r, NULL) > 0;
			in_b = diff_count(b, r, NULL) > 0;
			gone = diff_unmatched(a, b, r);
			came = diff_unmatched(b, a, r);
			if (in_a && in_b && (gone || came))
				diff_note(k, D_CHANGED, diff_rule_entry(role,
				    r));
			else if (!in_a)
				diff_note(k, D_ADDED, diff_rule_entry(role, r));
			else if (!in_b)
				diff_note(k, D_REMOVED, diff_rule_entry(role,
				    r));
		}
}

static void
diff_rules(json_t *a, json_t *b, struct diff_kind *k)
{
	const char	*name;
	json_t		*v;

	json_object_foreach(b, name, v)
		diff_role_rules(name, json_object_get(json_object_get(a, name),
		    "rules"), json_object_get(v, "rules"), k);
	json_object_foreach(a, name, v)
		if (json_object_get(b, name) == NULL)
			diff_role_rules(name, json_object_get(v, "rules"),
			    NULL, k);
}

static int
diff_other(json_t *a, json_t *b, json_t *out)
{
	static const char *const mine[] = { "principals", "roles", "limits" };
	struct diff_kind	 k;
	const char		*name;
	json_t			*v, *both[2] = { a, b };
	size_t			 i;
	int			 side, skip;

	memset(&k, 0, sizeof(k));
	for (side = 0; side < 2; side++)
		json_object_foreach(both[side], name, v) {
			for (skip = 0, i = 0; i < 3; i++)
				skip |= strcmp(name, mine[i]) == 0;
			if (skip || (side == 1 && json_object_get(a, name)))
				continue;
			if (!json_equal(v, json_object_get(both[!side],
			    name)))
				diff_note(&k, D_CHANGED, json_string(name));
		}
	if (k.lists[D_CHANGED] == NULL)
		return (k.failed ? -1 : 0);
	return (json_object_set_new(out, "other", k.lists[D_CHANGED]));
}

json_t *
policy_changes(const char *old, size_t oldlen, const char *text, size_t len)
{
	struct diff_kind	 k;
	json_t			*a, *b, *out, *la, *lb;
	int			 rc = 0;

	a = old != NULL ? json_loadb(old, oldlen, 0, NULL) : json_object();
	b = json_loadb(text, len, 0, NULL);
	out = json_object();
	if (a == NULL || b == NULL || out == NULL)
		rc = -1;
	memset(&k, 0, sizeof(k));
	if (rc == 0) {
		diff_named(json_object_get(a, "principals"),
		    json_object_get(b, "principals"), NULL, &k);
		rc = diff_put(out, "principals", &k);
	}
	if (rc == 0) {
		diff_named(json_object_get(a, "roles"),
		    json_object_get(b, "roles"), "rules", &k);
		rc = diff_put(out, "roles", &k);
	}
	if (rc == 0) {
		diff_rules(json_object_get(a, "roles"),
		    json_object_get(b, "roles"), &k);
		rc = diff_put(out, "rules", &k);
	}
	if (rc == 0) {
		la = diff_limits_by_name(json_object_get(a, "limits"));
		lb = diff_limits_by_name(json_object_get(b, "limits"));
		diff_named(la, lb, NULL, &k);
		json_decref(la);
		json_decref(lb);
		rc = diff_put(out, "limits", &k);
	}
	if (rc == 0)
		rc = diff_other(a, b, out);
	json_decref(a);
	json_decref(b);
	if (rc == -1) {
		json_decref(out);
		return (NULL);
	}
	return (out);
}
