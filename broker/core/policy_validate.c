/*
 * policy_validate: the policy document's grammar (CONTRACT §5 and §8,
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
#include "canon.h"
#include "jsonptr.h"
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
	json_t		*roles;		/* the document's roles, or NULL */
	json_t		*principals;	/* its principals, or NULL */
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

size_t
policy_path_key(char *out, const char *k, size_t n)
{
	size_t	 i, o = 0;

	if (path_key_plain(k, n)) {
		out[o++] = '.';
		memcpy(out + o, k, n);
		o += n;
		out[o] = '\0';
		return (o);
	}
	out[o++] = '[';
	out[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o++] = ']';
	out[o] = '\0';
	return (o);
}

/* Append a key segment (n bytes); returns the length to restore with
 * path_pop. */
static size_t
path_push_keyn(struct vctx *v, const char *k, size_t n)
{
	size_t	 old = v->len;

	if (n > (SIZE_MAX - 5) / 6 || path_reserve(v, 6 * n + 5) == -1)
		return (old);
	v->len += policy_path_key(v->path + v->len, k, n);
	return (old);
}

static size_t
path_push_key(struct vctx *v, const char *k)
{
	return (path_push_keyn(v, k, strlen(k)));
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

/* What v_refs checks names against: roles or principals. */
struct refkind {
	const char	*what;		/* "role" */
	const char	*where;		/* "$.roles" */
	json_t		*defined;	/* NULL: not known (already reported) */
};

/* An array at key of names (kind->what) that must exist, without
 * repeats; returns its size (0 when absent or invalid). */
static size_t
v_refs(struct vctx *v, json_t *obj, const char *key, int required,
    const struct refkind *kind)
{
	json_t		*arr = json_object_get(obj, key), *j, *seen;
	size_t		 old, old2, i;
	char		 q[80];

	if (arr == NULL) {
		if (required)
			verr(v, "missing \"%s\": expected an array of %s "
			    "names", key, kind->what);
		return (0);
	}
	old = path_push_key(v, key);
	if (!json_is_array(arr)) {
		verr(v, "must be an array of %s names, not %s", kind->what,
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
			verr(v, "must be a %s name (a string), not %s",
			    kind->what, json_kind(j));
		else if (kind->defined != NULL &&
		    json_object_get(kind->defined, json_string_value(j)) ==
		    NULL)
			verr(v, "%s \"%s\" is not defined in %s", kind->what,
			    vquote(json_string_value(j), q, sizeof(q)),
			    kind->where);
		else if (seen != NULL &&
		    json_object_get(seen, json_string_value(j)) != NULL)
			verr(v, "%s \"%s\" is listed twice", kind->what,
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

static size_t
v_role_refs(struct vctx *v, json_t *obj, const char *key, int required)
{
	struct refkind	 k = { "role", "$.roles", v->roles };

	return (v_refs(v, obj, key, required, &k));
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

/* ---- v2: amounts in args, conditions, limits (CONTRACT §8) ---- */

/*
 * s (len bytes, at the current path, or its key when key is set) must be
 * an RFC 6901 pointer into args; member: not "" (args itself).  1 if so.
 */
static int
v_pointer(struct vctx *v, const char *s, size_t len, int member, int key)
{
	const char	*why;

	if ((why = jsonptr_check(s, len)) != NULL) {
		verr(v, "%sis not a JSON Pointer (RFC 6901): %s",
		    key ? "key " : "", why);
		return (0);
	}
	if (member && len == 0) {
		verr(v, "%smust point at a member of args such as \"/amount\": "
		    "\"\" is args itself", key ? "key " : "");
		return (0);
	}
	return (1);
}

/* obj[key], when present, must be a string pointer into args. */
static void
v_pointer_key(struct vctx *v, json_t *obj, const char *key)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;

	if (j == NULL)
		return;
	old = path_push_key(v, key);
	if (!json_is_string(j))
		verr(v, "must be a JSON Pointer into args such as \"/amount\" "
		    "(a string), not %s", json_kind(j));
	else
		v_pointer(v, json_string_value(j), json_string_length(j), 1,
		    0);
	path_pop(v, old);
}

/* obj[key], when present, must be an amount string; 1 and *out if so. */
static int
v_amount_key(struct vctx *v, json_t *obj, const char *key,
    struct amount *out)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;
	int	 ok = 0;

	if (j == NULL)
		return (0);
	old = path_push_key(v, key);
	if (!json_is_string(j))
		verr(v, "must be a decimal string such as \"1000.00\", not %s",
		    json_kind(j));
	else if (amount_parse_value(json_string_value(j),
	    json_string_length(j), out) == -1)
		verr(v, "is not an amount: expected \"0\" or up to 15 digits "
		    "without leading zeros, optionally \".\" and 1 to 6 "
		    "digits, with no sign or exponent");
	else
		ok = 1;
	path_pop(v, old);
	return (ok);
}

static void
v_string_key(struct vctx *v, json_t *obj, const char *key, const char *eg)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;

	if (j == NULL || json_is_string(j))
		return;
	old = path_push_key(v, key);
	verr(v, "must be a string such as %s, not %s", eg, json_kind(j));
	path_pop(v, old);
}

/* obj[key], when present: a non-empty array of at most POLICY_MAX_ONE_OF
 * JSON values. */
static void
v_values(struct vctx *v, json_t *obj, const char *key)
{
	json_t	*j = json_object_get(obj, key);
	size_t	 old;

	if (j == NULL)
		return;
	old = path_push_key(v, key);
	if (!json_is_array(j))
		verr(v, "must be an array of the JSON values to compare with, "
		    "such as [\"EUR\", \"USD\"], not %s", json_kind(j));
	else if (json_array_size(j) == 0)
		verr(v, "must list at least one value");
	else if (json_array_size(j) > POLICY_MAX_ONE_OF)
		verr(v, "has %zu values; at most %d allowed",
		    json_array_size(j), POLICY_MAX_ONE_OF);
	path_pop(v, old);
}

#define COND_KEYS_TEXT	"present, one_of, not_one_of, prefix, suffix, " \
	"max_length, min, max or each"

/* A condition (CONTRACT §8.2) at the current path; depth counts the
 * "each" it is inside. */
static void
v_cond(struct vctx *v, json_t *c, int depth)
{
	static const char *const keys[] = { "present", "one_of",
	    "not_one_of", "prefix", "suffix", "max_length", "min", "max",
	    "each", NULL };
	struct amount	 mn, mx;
	json_t		*j;
	size_t		 old;
	int		 have_mn, have_mx;
	char		 q[AMOUNT_MAX_TEXT];

	if (!json_is_object(c)) {
		verr(v, "must be a condition object such as {\"one_of\": "
		    "[...]} or {\"max\": \"100.00\"}, not %s", json_kind(c));
		return;
	}
	if (json_object_size(c) == 0) {
		verr(v, "must hold at least one of " COND_KEYS_TEXT);
		return;
	}
	v_known_keys(v, c, keys, COND_KEYS_TEXT);

	if ((j = json_object_get(c, "present")) != NULL) {
		old = path_push_key(v, "present");
		if (depth > 0)
			verr(v, "not allowed inside \"each\": every element "
			    "of an array is present; remove it");
		else if (!json_is_boolean(j))
			verr(v, "must be true or false, not %s", json_kind(j));
		else if (json_is_false(j) && json_object_size(c) > 1)
			verr(v, "\"present\": false cannot be combined with "
			    "other conditions: a missing member meets none of "
			    "them; write them in another rule");
		path_pop(v, old);
	}
	v_values(v, c, "one_of");
	v_values(v, c, "not_one_of");
	v_string_key(v, c, "prefix", "\"DE\"");
	v_string_key(v, c, "suffix", "\"@example.com\"");
	v_int_key(v, c, "max_length", 0, POLICY_MAX_LENGTH_CAP, 0);
	have_mn = v_amount_key(v, c, "min", &mn);
	have_mx = v_amount_key(v, c, "max", &mx);
	if (have_mn && have_mx && amount_cmp(&mn, &mx) > 0) {
		old = path_push_key(v, "max");
		amount_format(&mn, q);
		verr(v, "is below min (%s): no value could meet both; swap "
		    "them", q);
		path_pop(v, old);
	}
	if ((j = json_object_get(c, "each")) != NULL) {
		old = path_push_key(v, "each");
		if (depth >= POLICY_MAX_EACH_DEPTH)
			verr(v, "\"each\" is nested too deeply: at most %d "
			    "levels", POLICY_MAX_EACH_DEPTH);
		else
			v_cond(v, j, depth + 1);
		path_pop(v, old);
	}
}

/* A rule's "args": pointer -> condition. */
static void
v_args(struct vctx *v, json_t *args)
{
	const char	*ptr;
	json_t		*c;
	size_t		 old;

	if (!json_is_object(args)) {
		verr(v, "must be an object of JSON Pointer -> condition, such "
		    "as {\"/to\": {\"one_of\": [\"DE89370400440532013000\"]}}, "
		    "not %s", json_kind(args));
		return;
	}
	if (json_object_size(args) == 0)
		verr(v, "must name at least one member: leave \"args\" out "
		    "for a rule without conditions");
	if (json_object_size(args) > POLICY_MAX_CONDITIONS)
		verr(v, "has %zu conditions; at most %d allowed",
		    json_object_size(args), POLICY_MAX_CONDITIONS);
	json_object_foreach(args, ptr, c) {
		old = path_push_key(v, ptr);
		v_pointer(v, ptr, strlen(ptr), 0, 1);
		v_cond(v, c, 0);
		path_pop(v, old);
	}
}

/* A rule's "amount_from"; cur is the rule's "currencies" (or NULL). */
static void
v_amount_from(struct vctx *v, json_t *af, json_t *cur)
{
	static const char *const keys[] = { "value", "currency", "scale",
	    NULL };
	json_t		*j;
	const char	*code;
	size_t		 old;

	if (!json_is_object(af)) {
		verr(v, "must be an object {\"value\": \"/amount\", "
		    "\"currency\": \"/currency\"}, not %s", json_kind(af));
		return;
	}
	v_known_keys(v, af, keys, "value, currency or scale");
	if (json_object_get(af, "value") == NULL)
		verr(v, "missing \"value\": expected a JSON Pointer to the "
		    "amount in args, such as \"/amount\"");
	v_pointer_key(v, af, "value");
	if ((j = json_object_get(af, "currency")) == NULL)
		verr(v, "missing \"currency\": expected a JSON Pointer to the "
		    "currency in args, such as \"/currency\", or a fixed code "
		    "such as \"USD\"");
	else if (json_is_string(j) && json_string_value(j)[0] == '/')
		v_pointer_key(v, af, "currency");
	else {
		old = path_push_key(v, "currency");
		code = json_string_value(j);
		if (code == NULL || !amount_currency_valid(code))
			verr(v, "must be a JSON Pointer into args such as "
			    "\"/currency\" or a fixed currency code of three "
			    "capital letters such as \"USD\"");
		else if (json_is_object(cur) &&
		    json_object_get(cur, code) == NULL)
			verr(v, "the fixed currency \"%s\" is not among this "
			    "rule's currencies: every call would be denied "
			    "currency_not_allowed", code);
		path_pop(v, old);
	}
	v_int_key(v, af, "scale", 0, POLICY_MAX_SCALE, 0);
}

static int
limit_name_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > POLICY_MAX_LIMIT_NAME)
		return (0);
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return (0);
	return (1);
}

/* A limit's "per": "agent", "tool" or pointers, none twice. */
static void
v_per(struct vctx *v, json_t *per)
{
	json_t		*j, *k;
	const char	*s;
	size_t		 i, m, old;

	if (!json_is_array(per)) {
		verr(v, "must be an array of \"agent\", \"tool\" and JSON "
		    "Pointers into args such as \"/to\", not %s",
		    json_kind(per));
		return;
	}
	if (json_array_size(per) > POLICY_MAX_PER)
		verr(v, "has %zu entries; at most %d allowed",
		    json_array_size(per), POLICY_MAX_PER);
	json_array_foreach(per, i, j) {
		old = path_push_index(v, i);
		s = json_string_value(j);
		if (s == NULL)
			verr(v, "must be \"agent\", \"tool\" or a JSON Pointer "
			    "into args such as \"/to\", not %s", json_kind(j));
		else if (strcmp(s, "agent") != 0 && strcmp(s, "tool") != 0 &&
		    s[0] != '/')
			verr(v, "must be \"agent\", \"tool\" or a JSON Pointer "
			    "into args (it starts with /, such as \"/to\")");
		else if (s[0] != '/' || v_pointer(v, s, json_string_length(j),
		    1, 0)) {
			json_array_foreach(per, m, k) {
				if (m >= i)
					break;
				if (json_equal(j, k)) {
					verr(v, "\"%s\" is listed twice",
					    s[0] == '/' ? "pointer" : s);
					break;
				}
			}
		}
		path_pop(v, old);
	}
}

/* A limit's "over": "deny", or {"approvals": N, "approvers": [...]}. */
static void
v_over(struct vctx *v, json_t *over)
{
	static const char *const keys[] = { "approvals", "approvers", NULL };

	if (json_is_string(over) && strcmp(json_string_value(over), "deny") ==
	    0)
		return;
	if (!json_is_object(over)) {
		verr(v, "must be \"deny\" or {\"approvals\": N, \"approvers\": "
		    "[roles]}");
		return;
	}
	v_known_keys(v, over, keys, "approvals or approvers");
	if (json_object_get(over, "approvals") == NULL)
		verr(v, "missing \"approvals\": expected an integer from 1 to "
		    "%d", POLICY_MAX_APPROVALS);
	v_int_key(v, over, "approvals", 1, POLICY_MAX_APPROVALS, 1);
	if (v_role_refs(v, over, "approvers", 1) == 0 &&
	    json_is_array(json_object_get(over, "approvers"))) {
		size_t old = path_push_key(v, "approvers");
		verr(v, "must not be empty: name the roles that may approve "
		    "a call over the limit");
		path_pop(v, old);
	}
}

static void
v_limit(struct vctx *v, json_t *l, json_t *names)
{
	static const char *const keys[] = { "name", "tools", "principals",
	    "per", "window", "currency", "max_amount", "max_count", "over",
	    NULL };
	struct refkind	 pk = { "principal", "$.principals", v->principals };
	struct amount	 mx;
	json_t		*j, *ma, *mc, *tools;
	size_t		 old;
	char		 q[80];

	if (!json_is_object(l)) {
		verr(v, "must be an object {\"name\": \"...\", \"tools\": "
		    "[...], \"window\": N, \"max_count\": N}, not %s",
		    json_kind(l));
		return;
	}
	v_known_keys(v, l, keys, "name, tools, principals, per, window, "
	    "currency, max_amount, max_count or over");

	if ((j = json_object_get(l, "name")) == NULL)
		verr(v, "missing \"name\": expected [a-z0-9_-]{1,64}, such as "
		    "\"payments-daily\"");
	else {
		old = path_push_key(v, "name");
		if (!json_is_string(j) || !limit_name_valid(
		    json_string_value(j), json_string_length(j)))
			verr(v, "must be 1 to %d characters of a-z, 0-9, _ "
			    "and -, such as \"payments-daily\"",
			    POLICY_MAX_LIMIT_NAME);
		else if (json_object_get(names, json_string_value(j)) != NULL)
			verr(v, "limit name \"%s\" is used twice: names must "
			    "be unique", vquote(json_string_value(j), q,
			    sizeof(q)));
		else if (json_object_set_new(names, json_string_value(j),
		    json_true()) == -1)
			v->oom = 1;
		path_pop(v, old);
	}

	if ((tools = json_object_get(l, "tools")) == NULL)
		verr(v, "missing \"tools\": expected an array of the tool "
		    "patterns the limit counts, such as [\"payments.*\"]");
	else if (json_is_array(tools) && json_array_size(tools) == 0) {
		old = path_push_key(v, "tools");
		verr(v, "must list at least one tool pattern");
		path_pop(v, old);
	} else
		v_pattern_list(v, l, "tools");

	if ((j = json_object_get(l, "principals")) != NULL &&
	    json_is_array(j) && json_array_size(j) == 0) {
		old = path_push_key(v, "principals");
		verr(v, "must not be empty: leave \"principals\" out to apply "
		    "the limit to everyone");
		path_pop(v, old);
	} else
		v_refs(v, l, "principals", 0, &pk);

	if ((j = json_object_get(l, "per")) != NULL) {
		old = path_push_key(v, "per");
		v_per(v, j);
		path_pop(v, old);
	}

	if (json_object_get(l, "window") == NULL)
		verr(v, "missing \"window\": expected seconds from %d to %d, "
		    "such as 86400 for a day", POLICY_MIN_WINDOW,
		    POLICY_MAX_WINDOW);
	v_int_key(v, l, "window", POLICY_MIN_WINDOW, POLICY_MAX_WINDOW,
	    POLICY_MIN_WINDOW);

	ma = json_object_get(l, "max_amount");
	mc = json_object_get(l, "max_count");
	if (ma != NULL && mc != NULL)
		verr(v, "has both \"max_amount\" and \"max_count\": keep one "
		    "(max_amount sums the amounts in one currency, max_count "
		    "counts calls), or write two limits");
	else if (ma == NULL && mc == NULL)
		verr(v, "missing a maximum: add \"max_amount\" (with "
		    "\"currency\") or \"max_count\"");
	if (ma != NULL && v_amount_key(v, l, "max_amount", &mx) &&
	    mx.whole == 0 && mx.micro == 0) {
		old = path_push_key(v, "max_amount");
		verr(v, "must be above 0: to refuse a tool, write a deny "
		    "rule");
		path_pop(v, old);
	}
	if (mc != NULL)
		v_int_key(v, l, "max_count", 1, POLICY_MAX_COUNT, 1);
	j = json_object_get(l, "currency");
	if (ma != NULL && j == NULL)
		verr(v, "missing \"currency\": max_amount counts amounts in "
		    "one currency, such as \"USD\"");
	else if (j != NULL) {
		old = path_push_key(v, "currency");
		if (ma == NULL)
			verr(v, "goes only with \"max_amount\": max_count "
			    "counts calls in every currency; remove it");
		else if (!json_is_string(j) ||
		    !amount_currency_valid(json_string_value(j)))
			verr(v, "must be a currency code of three capital "
			    "letters such as \"USD\"");
		path_pop(v, old);
	}

	if ((j = json_object_get(l, "over")) != NULL) {
		old = path_push_key(v, "over");
		v_over(v, j);
		path_pop(v, old);
	}
}

static void
v_limits(struct vctx *v, json_t *arr)
{
	json_t	*l, *names;
	size_t	 i, old;

	if (!json_is_array(arr)) {
		verr(v, "must be an array of limits, not %s", json_kind(arr));
		return;
	}
	if (json_array_size(arr) > POLICY_MAX_LIMITS)
		verr(v, "has %zu limits; at most %d allowed",
		    json_array_size(arr), POLICY_MAX_LIMITS);
	if ((names = json_object()) == NULL) {
		v->oom = 1;
		return;
	}
	json_array_foreach(arr, i, l) {
		old = path_push_index(v, i);
		v_limit(v, l, names);
		path_pop(v, old);
	}
	json_decref(names);
}

/* Push the path of RFC 6901 pointer ptr inside doc (as far as it goes). */
static void
path_push_pointer(struct vctx *v, const json_t *doc, const char *ptr)
{
	const char	*tok, *end;
	char		*name;
	size_t		 n, i, o, idx;

	while (*ptr == '/' && doc != NULL) {
		tok = ptr + 1;
		end = strchr(tok, '/');
		n = end ? (size_t)(end - tok) : strlen(tok);
		ptr = tok + n;
		if (json_is_array(doc)) {
			for (idx = 0, i = 0; i < n; i++)
				idx = idx * 10 + (size_t)(tok[i] - '0');
			path_push_index(v, idx);
			doc = json_array_get(doc, idx);
			continue;
		}
		if ((name = malloc(n + 1)) == NULL) {
			v->oom = 1;
			return;
		}
		for (i = o = 0; i < n; i++, o++) {
			name[o] = tok[i];
			if (tok[i] == '~' && i + 1 < n)
				name[o] = tok[++i] == '0' ? '~' : '/';
		}
		name[o] = '\0';
		path_push_keyn(v, name, o);
		doc = json_object_get(doc, name);
		free(name);
	}
}

/* Every number in the policy must keep its value in RFC 8785 form, so
 * that one_of compares exactly what the author wrote. */
static void
v_numbers(struct vctx *v, const json_t *doc, const char *text, size_t len)
{
	enum canon_number	 bad;
	char			 where[4096];
	size_t			 old = v->len;

	switch (canon_numbers_check(text, len, "", &bad, where,
	    sizeof(where))) {
	case 0:
		return;
	case 1:
		path_push_pointer(v, doc, where);
		verr(v, "this number %s", canon_number_problem(bad));
		break;
	default:
		verr(v, "the numbers of the policy could not be checked: out "
		    "of memory, or not strict JSON (RFC 8259)");
	}
	path_pop(v, old);
}

static void
v_rule(struct vctx *v, json_t *r)
{
	static const char *const keys[] = { "tool", "effect", "approvals",
	    "currencies", "approvers", "approval_ttl", "amount_from", "args",
	    NULL };
	static const char *const deny_forbids[] = { "approvals", "currencies",
	    "approvers", "approval_ttl", "amount_from", NULL };
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
	    "approvers, approval_ttl, amount_from or args");
	if ((apv = json_object_get(r, "args")) != NULL) {
		old = path_push_key(v, "args");
		v_args(v, apv);
		path_pop(v, old);
	}

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
			    "refuses every call it matches (narrow it with "
			    "\"args\" conditions)");
			path_pop(v, old);
		}
		return;
	}

	cur = json_object_get(r, "currencies");
	if ((apv = json_object_get(r, "amount_from")) != NULL) {
		old = path_push_key(v, "amount_from");
		v_amount_from(v, apv, cur);
		path_pop(v, old);
	}
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
	    "description", "redact", "limits", NULL };
	json_t		*prs, *ros, *j;
	const char	*k;
	size_t		 old, old2;

	if (!json_is_object(doc)) {
		verr(v, "the policy must be a JSON object {\"principals\": "
		    "{...}, \"roles\": {...}}, not %s", json_kind(doc));
		return;
	}
	v_known_keys(v, doc, keys, "principals, roles, description, redact "
	    "or limits");
	if (json_is_object(json_object_get(doc, "principals")))
		v->principals = json_object_get(doc, "principals");

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
	if ((j = json_object_get(doc, "limits")) != NULL) {
		old = path_push_key(v, "limits");
		v_limits(v, j);
		path_pop(v, old);
	}
}

int
policy_validate(json_t *doc, const char *text, size_t len, json_t **errors)
{
	struct vctx	 v;
	int		 rc;

	*errors = NULL;
	memset(&v, 0, sizeof(v));
	if ((v.errors = json_array()) == NULL)
		return (-1);
	path_append(&v, "$", 1);
	v_document(&v, doc);
	v_numbers(&v, doc, text, len);
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
