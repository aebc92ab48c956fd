/*
 * policy_validate: the policy document's grammar (CONTRACT §5,
 * proto/policy.md).  It walks a parsed document and reports every problem
 * with its JSON path and a message that says what to write instead — not
 * just the first.  It builds nothing and decides nothing: policy.c turns a
 * document that passed into a snapshot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "amount.h"
#include "policy.h"
#include "policy_impl.h"

struct vctx {
	json_t		*errors;
	size_t		 n_errors;
	int		 truncated;
	int		 oom;
	char		*path;
	size_t		 len;
	size_t		 cap;
	json_t		*roles;		/* the document's roles object, or NULL */
};

static int
path_reserve(struct vctx *v, size_t more)
{
	char	*np;
	size_t	 ncap;

	if (v->len + more + 1 <= v->cap)
		return (0);
	ncap = v->cap ? v->cap : 256;
	while (ncap < v->len + more + 1)
		ncap *= 2;
	if ((np = realloc(v->path, ncap)) == NULL) {
		v->oom = 1;
		return (-1);
	}
	v->path = np;
	v->cap = ncap;
	return (0);
}

static void
path_append(struct vctx *v, const char *s, size_t n)
{
	if (path_reserve(v, n) == -1)
		return;
	memcpy(v->path + v->len, s, n);
	v->len += n;
	v->path[v->len] = '\0';
}

/* A key that is plain enough for ".key" form; others use ["key"]. */
static int
path_key_plain(const char *k, size_t n)
{
	size_t	 i;

	if (n == 0)
		return (0);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c <= 0x20 || c == 0x7f || c == '.' || c == '[' ||
		    c == ']' || c == '"' || c == '\\')
			return (0);
	}
	return (1);
}

/* Append a key segment; returns the length to restore with path_pop. */
static size_t
path_push_key(struct vctx *v, const char *k)
{
	size_t	 old = v->len, n = strlen(k), i;
	char	 esc[8];

	if (path_key_plain(k, n)) {
		path_append(v, ".", 1);
		path_append(v, k, n);
		return (old);
	}
	path_append(v, "[\"", 2);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			path_append(v, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			path_append(v, esc, 6);
		} else
			path_append(v, k + i, 1);
	}
	path_append(v, "\"]", 2);
	return (old);
}

static size_t
path_push_index(struct vctx *v, size_t i)
{
	size_t	 old = v->len;
	char	 buf[32];
	int	 n;

	n = snprintf(buf, sizeof(buf), "[%zu]", i);
	path_append(v, buf, (size_t)n);
	return (old);
}

static void
path_pop(struct vctx *v, size_t old)
{
	if (v->path != NULL && old <= v->len) {
		v->len = old;
		v->path[old] = '\0';
	}
}

static void
verr(struct vctx *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record one problem at the current path. */
static void
verr(struct vctx *v, const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;
	json_t	*e;

	if (v->n_errors >= POLICY_MAX_ERRORS) {
		v->truncated = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = json_pack("{s:s, s:s}", "path", v->path ? v->path : "$",
	    "message", msg);
	if (e == NULL || json_array_append_new(v->errors, e) == -1) {
		v->oom = 1;
		return;
	}
	v->n_errors++;
}

/* Quote user text for a message: at most 64 bytes, controls as '?'. */
static const char *
vquote(const char *s, char *buf, size_t bufsz)
{
	size_t	 i, n = strlen(s), max = bufsz - 4;

	for (i = 0; i < n && i < max; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ?
		    '?' : s[i];
	/* Never cut inside a UTF-8 sequence: json_pack refuses the text
	 * and the problem became "out of memory". */
	while (i < n && i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	if (i < n)
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return (buf);
}

static const char *
json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:	return ("an object");
	case JSON_ARRAY:	return ("an array");
	case JSON_STRING:	return ("a string");
	case JSON_INTEGER:	return ("an integer");
	case JSON_REAL:		return ("a real number");
	case JSON_TRUE:
	case JSON_FALSE:	return ("a boolean");
	case JSON_NULL:		return ("null");
	}
	return ("unknown");
}

static int
key_in(const char *k, const char *const *allowed)
{
	for (; *allowed != NULL; allowed++)
		if (strcmp(k, *allowed) == 0)
			return (1);
	return (0);
}

/* Report every key of obj that is not in allowed. */
static void
v_known_keys(struct vctx *v, json_t *obj, const char *const *allowed,
    const char *expected)
{
	const char	*k;
	json_t		*val;
	size_t		 old;

	json_object_foreach(obj, k, val) {
		if (key_in(k, allowed))
			continue;
		old = path_push_key(v, k);
		verr(v, "unknown key; expected %s", expected);
		path_pop(v, old);
	}
}

/* Validate an integer in [lo, hi] at key; returns it, or def when absent
 * or invalid. */
static json_int_t
v_int_key(struct vctx *v, json_t *obj, const char *key, json_int_t lo,
    json_int_t hi, json_int_t def)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;
	json_int_t n;

	if (j == NULL)
		return (def);
	old = path_push_key(v, key);
	if (!json_is_integer(j)) {
		verr(v, "must be an integer from %lld to %lld, not %s",
		    (long long)lo, (long long)hi, json_kind(j));
		n = def;
	} else if ((n = json_integer_value(j)) < lo || n > hi) {
		verr(v, "is %lld; must be an integer from %lld to %lld",
		    (long long)n, (long long)lo, (long long)hi);
		n = def;
	}
	path_pop(v, old);
	return (n);
}

static void
v_bool_key(struct vctx *v, json_t *obj, const char *key)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;

	if (j == NULL || json_is_boolean(j))
		return;
	old = path_push_key(v, key);
	verr(v, "must be true or false, not %s", json_kind(j));
	path_pop(v, old);
}

/* j (at the current path) must be a tool pattern. */
static void
v_pattern(struct vctx *v, json_t *j)
{
	if (!json_is_string(j)) {
		verr(v, "must be a string: a tool name or \"prefix.*\", not %s",
		    json_kind(j));
		return;
	}
	if (!policy_pattern_valid(json_string_value(j), json_string_length(j)))
		verr(v, "is not a tool pattern: expected a tool name "
		    "[A-Za-z0-9_-]+(.[A-Za-z0-9_-]+)* of at most %d characters, "
		    "or such a name followed by \".*\"", POLICY_MAX_TOOL);
}

/* A non-empty array of patterns at key (absent is fine). */
static void
v_pattern_list(struct vctx *v, json_t *obj, const char *key)
{
	json_t	*arr = json_object_get(obj, key), *j;
	size_t	 old, old2, i;

	if (arr == NULL)
		return;
	old = path_push_key(v, key);
	if (!json_is_array(arr))
		verr(v, "must be an array of tool patterns, not %s",
		    json_kind(arr));
	else {
		json_array_foreach(arr, i, j) {
			old2 = path_push_index(v, i);
			v_pattern(v, j);
			path_pop(v, old2);
		}
	}
	path_pop(v, old);
}

/* An array at key of role names that must exist, without repeats;
 * returns its size (0 when absent or invalid). */
static size_t
v_role_refs(struct vctx *v, json_t *obj, const char *key, int required)
{
	json_t		*arr = json_object_get(obj, key), *j, *seen;
	size_t		 old, old2, i;
	char		 q[80];

	if (arr == NULL) {
		if (required)
			verr(v, "missing \"%s\": expected an array of role "
			    "names", key);
		return (0);
	}
	old = path_push_key(v, key);
	if (!json_is_array(arr)) {
		verr(v, "must be an array of role names, not %s",
		    json_kind(arr));
		path_pop(v, old);
		return (0);
	}
	/* a jansson object as a set keeps the repeat check linear */
	if ((seen = json_object()) == NULL)
		v->oom = 1;
	json_array_foreach(arr, i, j) {
		old2 = path_push_index(v, i);
		if (!json_is_string(j))
			verr(v, "must be a role name (a string), not %s",
			    json_kind(j));
		else if (v->roles != NULL &&
		    json_object_get(v->roles, json_string_value(j)) == NULL)
			verr(v, "role \"%s\" is not defined in $.roles",
			    vquote(json_string_value(j), q, sizeof(q)));
		else if (seen != NULL &&
		    json_object_get(seen, json_string_value(j)) != NULL)
			verr(v, "role \"%s\" is listed twice",
			    vquote(json_string_value(j), q, sizeof(q)));
		else if (seen != NULL &&
		    json_object_set_new(seen, json_string_value(j),
		    json_true()) == -1)
			v->oom = 1;
		path_pop(v, old2);
	}
	json_decref(seen);
	path_pop(v, old);
	return (json_array_size(arr));
}

static void
v_principal(struct vctx *v, const char *name, json_t *pr)
{
	static const char *const keys[] = { "roles", "disabled", NULL };

	if (!policy_name_valid(name, strlen(name)))
		verr(v, "principal name must be 1 to %d bytes without "
		    "control characters", POLICY_MAX_NAME);
	if (!json_is_object(pr)) {
		verr(v, "must be an object {\"roles\": [...]}, not %s",
		    json_kind(pr));
		return;
	}
	v_known_keys(v, pr, keys, "\"roles\" or \"disabled\"");
	v_role_refs(v, pr, "roles", 1);
	v_bool_key(v, pr, "disabled");
}

/* Tiers of one currency; returns the largest approvals seen. */
static int
v_tiers(struct vctx *v, json_t *arr)
{
	static const char *const keys[] = { "max", "approvals", NULL };
	struct amount	 prev, cur;
	json_t		*t, *mx;
	size_t		 i, old, old2;
	int		 have_prev = 0, most = 0;
	json_int_t	 n;
	char		 q[AMOUNT_MAX_TEXT];

	if (!json_is_array(arr)) {
		verr(v, "must be an array of tiers [{\"max\": \"1000.00\", "
		    "\"approvals\": 0}, ...], not %s", json_kind(arr));
		return (0);
	}
	if (json_array_size(arr) == 0)
		verr(v, "must list at least one tier");
	if (json_array_size(arr) > POLICY_MAX_TIERS)
		verr(v, "has %zu tiers; at most %d allowed",
		    json_array_size(arr), POLICY_MAX_TIERS);
	json_array_foreach(arr, i, t) {
		old = path_push_index(v, i);
		if (!json_is_object(t)) {
			verr(v, "must be an object {\"max\": \"...\", "
			    "\"approvals\": N}, not %s", json_kind(t));
			path_pop(v, old);
			have_prev = 0;
			continue;
		}
		v_known_keys(v, t, keys, "\"max\" or \"approvals\"");
		mx = json_object_get(t, "max");
		if (mx == NULL) {
			verr(v, "missing \"max\": expected a decimal string "
			    "such as \"1000.00\"");
			have_prev = 0;
		} else {
			old2 = path_push_key(v, "max");
			if (!json_is_string(mx)) {
				verr(v, "must be a decimal string such as "
				    "\"1000.00\", not %s", json_kind(mx));
				have_prev = 0;
			} else if (amount_parse_value(json_string_value(mx),
			    json_string_length(mx), &cur) == -1) {
				verr(v, "is not an amount: expected \"0\" or "
				    "up to 15 digits without leading zeros, "
				    "optionally \".\" and 1 to 6 digits");
				have_prev = 0;
			} else {
				if (have_prev && amount_cmp(&cur, &prev) <= 0) {
					amount_format(&prev, q);
					verr(v, "must be greater than the "
					    "previous tier's max (%s): tiers "
					    "go up strictly", q);
				}
				prev = cur;
				have_prev = 1;
			}
			path_pop(v, old2);
		}
		if (json_object_get(t, "approvals") == NULL)
			verr(v, "missing \"approvals\": expected an integer "
			    "from 0 to %d", POLICY_MAX_APPROVALS);
		n = v_int_key(v, t, "approvals", 0, POLICY_MAX_APPROVALS, 0);
		if (n > most)
			most = (int)n;
		path_pop(v, old);
	}
	return (most);
}

static int
v_currencies(struct vctx *v, json_t *cur)
{
	const char	*code;
	json_t		*tiers;
	size_t		 old;
	int		 most = 0, n;

	if (!json_is_object(cur)) {
		verr(v, "must be an object {\"USD\": [tiers], ...}, not %s",
		    json_kind(cur));
		return (0);
	}
	if (json_object_size(cur) == 0)
		verr(v, "must list at least one currency");
	if (json_object_size(cur) > POLICY_MAX_CURRENCIES)
		verr(v, "has %zu currencies; at most %d allowed",
		    json_object_size(cur), POLICY_MAX_CURRENCIES);
	json_object_foreach(cur, code, tiers) {
		old = path_push_key(v, code);
		if (!amount_currency_valid(code))
			verr(v, "currency code must be three capital letters "
			    "such as \"USD\"");
		if ((n = v_tiers(v, tiers)) > most)
			most = n;
		path_pop(v, old);
	}
	return (most);
}

static void
v_rule(struct vctx *v, json_t *r)
{
	static const char *const keys[] = { "tool", "effect", "approvals",
	    "currencies", "approvers", "approval_ttl", NULL };
	static const char *const deny_forbids[] = { "approvals", "currencies",
	    "approvers", "approval_ttl", NULL };
	const char *const *f;
	json_t		*tool, *effect, *cur, *apv;
	size_t		 old, n_approvers;
	int		 deny = 0, need = 0;

	if (!json_is_object(r)) {
		verr(v, "must be an object {\"tool\": \"...\", ...}, not %s",
		    json_kind(r));
		return;
	}
	v_known_keys(v, r, keys, "tool, effect, approvals, currencies, "
	    "approvers or approval_ttl");

	if ((tool = json_object_get(r, "tool")) == NULL)
		verr(v, "missing \"tool\": expected a tool name or "
		    "\"prefix.*\"");
	else {
		old = path_push_key(v, "tool");
		v_pattern(v, tool);
		path_pop(v, old);
	}

	if ((effect = json_object_get(r, "effect")) != NULL) {
		old = path_push_key(v, "effect");
		if (json_is_string(effect) &&
		    strcmp(json_string_value(effect), "deny") == 0)
			deny = 1;
		else if (!json_is_string(effect) ||
		    strcmp(json_string_value(effect), "allow") != 0)
			verr(v, "must be \"allow\" or \"deny\"");
		path_pop(v, old);
	}

	if (deny) {
		for (f = deny_forbids; *f != NULL; f++) {
			if (json_object_get(r, *f) == NULL)
				continue;
			old = path_push_key(v, *f);
			verr(v, "not allowed on a deny rule: a deny rule "
			    "refuses every call it matches");
			path_pop(v, old);
		}
		return;
	}

	cur = json_object_get(r, "currencies");
	if (json_object_get(r, "approvals") != NULL && cur != NULL) {
		old = path_push_key(v, "approvals");
		verr(v, "not allowed together with \"currencies\": put "
		    "approvals in each currency tier");
		path_pop(v, old);
	} else if (v_int_key(v, r, "approvals", 0, POLICY_MAX_APPROVALS,
	    0) > 0)
		need = 1;
	if (cur != NULL) {
		old = path_push_key(v, "currencies");
		if (v_currencies(v, cur) > 0)
			need = 1;
		path_pop(v, old);
	}

	apv = json_object_get(r, "approvers");
	n_approvers = v_role_refs(v, r, "approvers", 0);
	if (need && apv == NULL)
		verr(v, "missing \"approvers\": a rule that needs approvals "
		    "must name the roles that may approve");
	else if (need && json_is_array(apv) && n_approvers == 0) {
		old = path_push_key(v, "approvers");
		verr(v, "must not be empty: a rule that needs approvals "
		    "must name the roles that may approve");
		path_pop(v, old);
	}

	v_int_key(v, r, "approval_ttl", 1, POLICY_MAX_TTL, POLICY_DEFAULT_TTL);
}

static void
v_role(struct vctx *v, const char *name, json_t *ro)
{
	static const char *const keys[] = { "rules", "operator", "redeem",
	    NULL };
	json_t	*rules, *r;
	size_t	 old, old2, i;

	if (!policy_name_valid(name, strlen(name)))
		verr(v, "role name must be 1 to %d bytes without control "
		    "characters", POLICY_MAX_NAME);
	if (!json_is_object(ro)) {
		verr(v, "must be an object {\"rules\": [...]}, not %s",
		    json_kind(ro));
		return;
	}
	v_known_keys(v, ro, keys, "\"rules\", \"operator\" or \"redeem\"");
	v_bool_key(v, ro, "operator");
	v_pattern_list(v, ro, "redeem");

	if ((rules = json_object_get(ro, "rules")) == NULL)
		return;
	old = path_push_key(v, "rules");
	if (!json_is_array(rules))
		verr(v, "must be an array of rules, not %s", json_kind(rules));
	else {
		if (json_array_size(rules) > POLICY_MAX_RULES)
			verr(v, "has %zu rules; at most %d allowed",
			    json_array_size(rules), POLICY_MAX_RULES);
		json_array_foreach(rules, i, r) {
			old2 = path_push_index(v, i);
			v_rule(v, r);
			path_pop(v, old2);
		}
	}
	path_pop(v, old);
}

static void
v_redact(struct vctx *v, json_t *red)
{
	const char	*pat;
	json_t		*fields, *f;
	size_t		 old, old2, i;

	if (!json_is_object(red)) {
		verr(v, "must be an object {\"tool pattern\": [\"field\", "
		    "...]}, not %s", json_kind(red));
		return;
	}
	json_object_foreach(red, pat, fields) {
		old = path_push_key(v, pat);
		if (!policy_pattern_valid(pat, strlen(pat)))
			verr(v, "key is not a tool pattern: expected a tool "
			    "name or \"prefix.*\"");
		if (!json_is_array(fields))
			verr(v, "must be an array of top-level args field "
			    "names, not %s", json_kind(fields));
		else {
			json_array_foreach(fields, i, f) {
				old2 = path_push_index(v, i);
				if (!json_is_string(f) ||
				    json_string_length(f) == 0)
					verr(v, "must be a non-empty string "
					    "naming a top-level args field");
				path_pop(v, old2);
			}
		}
		path_pop(v, old);
	}
}

static void
v_document(struct vctx *v, json_t *doc)
{
	static const char *const keys[] = { "principals", "roles",
	    "description", "redact", NULL };
	json_t		*prs, *ros, *j;
	const char	*k;
	size_t		 old, old2;

	if (!json_is_object(doc)) {
		verr(v, "the policy must be a JSON object {\"principals\": "
		    "{...}, \"roles\": {...}}, not %s", json_kind(doc));
		return;
	}
	v_known_keys(v, doc, keys, "principals, roles, description or "
	    "redact");

	ros = json_object_get(doc, "roles");
	if (ros == NULL)
		verr(v, "missing \"roles\": expected an object of role "
		    "name -> role");
	else if (!json_is_object(ros)) {
		old = path_push_key(v, "roles");
		verr(v, "must be an object of role name -> role, not %s",
		    json_kind(ros));
		path_pop(v, old);
	} else
		v->roles = ros;

	prs = json_object_get(doc, "principals");
	if (prs == NULL)
		verr(v, "missing \"principals\": expected an object of "
		    "identity -> {\"roles\": [...]}");
	else {
		old = path_push_key(v, "principals");
		if (!json_is_object(prs))
			verr(v, "must be an object of identity -> "
			    "{\"roles\": [...]}, not %s", json_kind(prs));
		else {
			if (json_object_size(prs) > POLICY_MAX_PRINCIPALS)
				verr(v, "has %zu principals; at most %d "
				    "allowed", json_object_size(prs),
				    POLICY_MAX_PRINCIPALS);
			json_object_foreach(prs, k, j) {
				old2 = path_push_key(v, k);
				v_principal(v, k, j);
				path_pop(v, old2);
			}
		}
		path_pop(v, old);
	}

	if (v->roles != NULL) {
		old = path_push_key(v, "roles");
		if (json_object_size(ros) > POLICY_MAX_ROLES)
			verr(v, "has %zu roles; at most %d allowed",
			    json_object_size(ros), POLICY_MAX_ROLES);
		json_object_foreach(ros, k, j) {
			old2 = path_push_key(v, k);
			v_role(v, k, j);
			path_pop(v, old2);
		}
		path_pop(v, old);
	}

	if ((j = json_object_get(doc, "description")) != NULL &&
	    !json_is_string(j)) {
		old = path_push_key(v, "description");
		verr(v, "must be a string, not %s", json_kind(j));
		path_pop(v, old);
	}
	if ((j = json_object_get(doc, "redact")) != NULL) {
		old = path_push_key(v, "redact");
		v_redact(v, j);
		path_pop(v, old);
	}
}

int
policy_validate(json_t *doc, json_t **errors)
{
	struct vctx	 v;
	int		 rc;

	*errors = NULL;
	memset(&v, 0, sizeof(v));
	if ((v.errors = json_array()) == NULL)
		return (-1);
	path_append(&v, "$", 1);
	v_document(&v, doc);
	if (v.oom)
		rc = -1;
	else if (v.n_errors == 0)
		rc = 0;
	else {
		if (v.truncated) {
			path_pop(&v, 1);
			v.n_errors = 0;
			verr(&v, "more problems not shown: only the first %d "
			    "are reported", POLICY_MAX_ERRORS);
		}
		*errors = v.errors;
		v.errors = NULL;
		rc = v.oom ? -1 : 1;
	}
	json_decref(v.errors);
	free(v.path);
	return (rc);
}
