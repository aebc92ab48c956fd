/*
 * policy.c owns the policy document of CONTRACT §5: it validates a JSON text
 * (reporting every problem with its JSON path), builds an immutable snapshot
 * from it, and evaluates (principal, tool, amount) against the snapshot.
 *
 * It does no I/O, keeps no clock, never logs and never touches SQLite; the
 * caller decides where the text comes from and what a decision leads to.
 * A snapshot holds no jansson objects: everything lives in one arena owned
 * by struct policy, is written only inside policy_parse and afterwards only
 * read, so any number of threads may evaluate against it without locks.
 *
 * Speed: principals and roles are found through hash tables; every role
 * indexes its rules by exact tool name and by "prefix.*" prefix, so
 * evaluating "a.b.c" looks up "a.b.c", "a" and "a.b" in the principal's
 * roles instead of scanning every rule.
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
#include "reason.h"

#define POLICY_MAX_PRINCIPALS	100000
#define POLICY_MAX_ROLES	10000
#define POLICY_MAX_RULES	10000
#define POLICY_MAX_CURRENCIES	64
#define POLICY_MAX_TIERS	32
#define POLICY_MAX_APPROVALS	16
#define POLICY_MAX_TTL		604800
#define POLICY_MAX_NAME		256
#define POLICY_MAX_TOOL		128
#define POLICY_MAX_ERRORS	1000

/* ---- arena: every byte of a snapshot, freed at once ---- */

struct arena_blk {
	struct arena_blk	*next;
	size_t			 used;
	size_t			 size;
	max_align_t		 data[];
};

struct arena {
	struct arena_blk	*head;
};

#define ARENA_BLOCK	(64 * 1024)
#define ARENA_ALIGN	(sizeof(max_align_t))

/* Zeroed memory that lives as long as the arena; NULL when out of memory. */
static void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk	*b = a->head;
	size_t			 sz;
	void			*p;

	n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (b == NULL || b->size - b->used < n) {
		sz = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if ((b = calloc(1, sizeof(*b) + sz)) == NULL)
			return (NULL);
		b->size = sz;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return (p);
}

static void *
arena_calloc(struct arena *a, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		return (NULL);
	return (arena_alloc(a, nmemb * size));
}

static char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char	*d;

	if ((d = arena_alloc(a, len + 1)) == NULL)
		return (NULL);
	memcpy(d, s, len);
	d[len] = '\0';
	return (d);
}

static void
arena_free(struct arena *a)
{
	struct arena_blk	*b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
}

/* ---- htab: fixed-size open-addressing string map, built once ---- */

struct hent {
	const char	*key;
	size_t		 klen;
	void		*val;
};

struct htab {
	struct hent	*e;
	size_t		 mask;
};

static uint64_t
htab_hash(const char *s, size_t len)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (h);
}

static int
htab_init(struct htab *t, struct arena *a, size_t n)
{
	size_t	 cap = 8;

	while (cap < 2 * n)
		cap <<= 1;
	if ((t->e = arena_calloc(a, cap, sizeof(*t->e))) == NULL)
		return (-1);
	t->mask = cap - 1;
	return (0);
}

/* key must outlive the table (it points into the arena).  Duplicate keys
 * cannot happen: the document was parsed with JSON_REJECT_DUPLICATES. */
static void
htab_put(struct htab *t, const char *key, size_t klen, void *val)
{
	size_t	 i = (size_t)htab_hash(key, klen) & t->mask;

	while (t->e[i].key != NULL)
		i = (i + 1) & t->mask;
	t->e[i].key = key;
	t->e[i].klen = klen;
	t->e[i].val = val;
}

static void *
htab_get(const struct htab *t, const char *key, size_t klen)
{
	size_t	 i;

	if (t->e == NULL)
		return (NULL);
	i = (size_t)htab_hash(key, klen) & t->mask;
	for (; t->e[i].key != NULL; i = (i + 1) & t->mask)
		if (t->e[i].klen == klen && memcmp(t->e[i].key, key, klen) == 0)
			return (t->e[i].val);
	return (NULL);
}

/* ---- snapshot ---- */

struct tier {
	struct amount	 max;
	int		 approvals;
	const char	*max_text;	/* as written in the policy */
};

struct currency {
	char		 code[4];
	struct tier	*tiers;
	size_t		 n_tiers;
};

struct rule {
	const char	*tool;
	int		 deny;
	int		 approvals;	/* rules without currencies */
	struct currency	*currencies;
	size_t		 n_currencies;	/* 0: no "currencies" */
	const char	**approvers;
	size_t		 n_approvers;
	int64_t		 ttl;
};

/* A run of rule indexes (ascending) inside role->idx. */
struct span {
	size_t		 start;
	size_t		 n;
};

struct role {
	const char	*name;
	int		 operator;
	int		 approver;	/* named in some rule's "approvers" */
	struct rule	*rules;
	size_t		 n_rules;
	const char	**redeem;
	size_t		 n_redeem;
	struct htab	 exact;		/* tool -> struct span */
	struct htab	 prefix;	/* "a.b" of "a.b.*" -> struct span */
	int		*idx;
};

struct principal {
	const char	*name;
	int		 disabled;
	struct role	**roles;
	size_t		 n_roles;
};

struct redact {
	const char	*pattern;
	const char	**fields;
	size_t		 n_fields;
};

struct policy {
	struct arena	 arena;
	struct htab	 principals;	/* name -> struct principal */
	struct htab	 roles;		/* name -> struct role */
	struct role	*role_list;
	size_t		 n_roles;
	struct redact	*redact;
	size_t		 n_redact;
};

/* ---- names and patterns ---- */

static int
tool_char(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-');
}

static int
tool_name_validn(const char *s, size_t len)
{
	size_t	 i;
	int	 seg = 0;

	if (len == 0 || len > POLICY_MAX_TOOL)
		return (0);
	for (i = 0; i < len; i++) {
		if (tool_char(s[i]))
			seg++;
		else if (s[i] == '.' && seg > 0)
			seg = 0;
		else
			return (0);
	}
	return (seg > 0);
}

int
policy_tool_name_valid(const char *s)
{
	if (s == NULL)
		return (0);
	return (tool_name_validn(s, strnlen(s, POLICY_MAX_TOOL + 1)));
}

/* 1 if s is an exact tool name or "prefix.*" with a valid prefix. */
static int
pattern_valid(const char *s, size_t len)
{
	if (len > 2 && s[len - 2] == '.' && s[len - 1] == '*')
		return (tool_name_validn(s, len - 2));
	return (tool_name_validn(s, len));
}

int
policy_pattern_match(const char *pattern, const char *tool)
{
	size_t	 plen;

	if (pattern == NULL || tool == NULL)
		return (0);
	plen = strlen(pattern);
	if (plen >= 2 && pattern[plen - 2] == '.' && pattern[plen - 1] == '*')
		return (strncmp(pattern, tool, plen - 1) == 0 &&
		    tool[plen - 1] != '\0');
	return (strcmp(pattern, tool) == 0);
}

/* Principal and role names: 1..256 bytes, no control characters. */
static int
name_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > POLICY_MAX_NAME)
		return (0);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return (0);
	return (1);
}

/* ---- validation ---- */

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
	if (!pattern_valid(json_string_value(j), json_string_length(j)))
		verr(v, "is not a tool pattern: expected a tool name "
		    "[a-z0-9_-]+(.[a-z0-9_-]+)* of at most %d characters, "
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

	if (!name_valid(name, strlen(name)))
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

	if (!name_valid(name, strlen(name)))
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
		if (!pattern_valid(pat, strlen(pat)))
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

/* ---- building the snapshot from a validated document ---- */

struct ikey {
	const char	*key;
	size_t		 klen;
	int		 prefix;
	int		 idx;
};

static int
ikey_cmp(const void *a, const void *b)
{
	const struct ikey	*x = a, *y = b;
	size_t			 n = x->klen < y->klen ? x->klen : y->klen;
	int			 c;

	if (x->prefix != y->prefix)
		return (x->prefix - y->prefix);
	if ((c = memcmp(x->key, y->key, n)) != 0)
		return (c);
	if (x->klen != y->klen)
		return (x->klen < y->klen ? -1 : 1);
	return (x->idx - y->idx);
}

/* Index a role's rules by exact tool and by prefix; rule order is kept
 * inside each span. */
static int
b_index(struct policy *p, struct role *ro)
{
	struct ikey	*keys;
	struct span	*sp;
	size_t		 i, j, n = ro->n_rules, nex = 0, npre = 0, len;
	int		 rc = -1;

	if (n == 0)
		return (0);
	if ((keys = calloc(n, sizeof(*keys))) == NULL)
		return (-1);
	if ((ro->idx = arena_calloc(&p->arena, n, sizeof(*ro->idx))) == NULL)
		goto done;
	for (i = 0; i < n; i++) {
		len = strlen(ro->rules[i].tool);
		keys[i].key = ro->rules[i].tool;
		keys[i].idx = (int)i;
		if (len > 2 && ro->rules[i].tool[len - 1] == '*') {
			keys[i].prefix = 1;
			keys[i].klen = len - 2;
		} else
			keys[i].klen = len;
	}
	qsort(keys, n, sizeof(*keys), ikey_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && keys[j].prefix == keys[i].prefix &&
		    keys[j].klen == keys[i].klen &&
		    memcmp(keys[j].key, keys[i].key, keys[i].klen) == 0; j++)
			;
		if (keys[i].prefix)
			npre++;
		else
			nex++;
	}
	if (htab_init(&ro->exact, &p->arena, nex) == -1 ||
	    htab_init(&ro->prefix, &p->arena, npre) == -1)
		goto done;
	for (i = 0; i < n; i++)
		ro->idx[i] = keys[i].idx;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && keys[j].prefix == keys[i].prefix &&
		    keys[j].klen == keys[i].klen &&
		    memcmp(keys[j].key, keys[i].key, keys[i].klen) == 0; j++)
			;
		if ((sp = arena_alloc(&p->arena, sizeof(*sp))) == NULL)
			goto done;
		sp->start = i;
		sp->n = j - i;
		htab_put(keys[i].prefix ? &ro->prefix : &ro->exact,
		    keys[i].key, keys[i].klen, sp);
	}
	rc = 0;
 done:
	free(keys);
	return (rc);
}

static const char *
b_str(struct policy *p, json_t *j)
{
	return (arena_strndup(&p->arena, json_string_value(j),
	    json_string_length(j)));
}

static int
b_rule(struct policy *p, struct rule *ru, json_t *r)
{
	json_t		*j, *tiers, *t;
	const char	*code;
	struct currency	*c;
	struct tier	*ti;
	size_t		 i, k;

	if ((ru->tool = b_str(p, json_object_get(r, "tool"))) == NULL)
		return (-1);
	j = json_object_get(r, "effect");
	ru->deny = j != NULL && strcmp(json_string_value(j), "deny") == 0;
	j = json_object_get(r, "approvals");
	ru->approvals = j ? (int)json_integer_value(j) : 0;
	j = json_object_get(r, "approval_ttl");
	ru->ttl = j ? (int64_t)json_integer_value(j) : POLICY_DEFAULT_TTL;

	if ((j = json_object_get(r, "approvers")) != NULL &&
	    json_array_size(j) > 0) {
		ru->n_approvers = json_array_size(j);
		if ((ru->approvers = arena_calloc(&p->arena, ru->n_approvers,
		    sizeof(*ru->approvers))) == NULL)
			return (-1);
		for (i = 0; i < ru->n_approvers; i++) {
			struct role *ar = htab_get(&p->roles,
			    json_string_value(json_array_get(j, i)),
			    json_string_length(json_array_get(j, i)));
			/* point at the role's own name: one copy */
			ru->approvers[i] = ar->name;
			ar->approver = 1;
		}
	}

	if ((j = json_object_get(r, "currencies")) == NULL)
		return (0);
	ru->n_currencies = json_object_size(j);
	if ((ru->currencies = arena_calloc(&p->arena, ru->n_currencies,
	    sizeof(*ru->currencies))) == NULL)
		return (-1);
	c = ru->currencies;
	json_object_foreach(j, code, tiers) {
		memcpy(c->code, code, 4);
		c->n_tiers = json_array_size(tiers);
		if ((c->tiers = arena_calloc(&p->arena, c->n_tiers,
		    sizeof(*c->tiers))) == NULL)
			return (-1);
		json_array_foreach(tiers, k, t) {
			ti = &c->tiers[k];
			json_t *mx = json_object_get(t, "max");
			if (amount_parse_value(json_string_value(mx),
			    json_string_length(mx), &ti->max) == -1)
				return (-1);
			ti->approvals = (int)json_integer_value(
			    json_object_get(t, "approvals"));
			/* Shown to approvers as the policy wrote it. */
			if ((ti->max_text = arena_strndup(&p->arena,
			    json_string_value(mx), json_string_length(mx))) ==
			    NULL)
				return (-1);
		}
		c++;
	}
	return (0);
}

static int
b_document(struct policy *p, json_t *doc)
{
	json_t		*ros, *prs, *red, *j, *rules;
	const char	*k;
	struct role	*ro;
	struct principal *pr;
	struct redact	*rd;
	size_t		 i, n;

	ros = json_object_get(doc, "roles");
	prs = json_object_get(doc, "principals");

	/* Roles first, by name, so that approvers and principals can point
	 * at them. */
	p->n_roles = json_object_size(ros);
	if ((p->role_list = arena_calloc(&p->arena, p->n_roles ? p->n_roles :
	    1, sizeof(*p->role_list))) == NULL ||
	    htab_init(&p->roles, &p->arena, p->n_roles) == -1)
		return (-1);
	ro = p->role_list;
	json_object_foreach(ros, k, j) {
		if ((ro->name = arena_strndup(&p->arena, k, strlen(k))) == NULL)
			return (-1);
		htab_put(&p->roles, ro->name, strlen(ro->name), ro);
		ro++;
	}
	ro = p->role_list;
	json_object_foreach(ros, k, j) {
		ro->operator = json_is_true(json_object_get(j, "operator"));
		if ((rules = json_object_get(j, "redeem")) != NULL &&
		    (n = json_array_size(rules)) > 0) {
			if ((ro->redeem = arena_calloc(&p->arena, n,
			    sizeof(*ro->redeem))) == NULL)
				return (-1);
			for (i = 0; i < n; i++)
				if ((ro->redeem[i] = b_str(p,
				    json_array_get(rules, i))) == NULL)
					return (-1);
			ro->n_redeem = n;
		}
		if ((rules = json_object_get(j, "rules")) != NULL &&
		    (n = json_array_size(rules)) > 0) {
			if ((ro->rules = arena_calloc(&p->arena, n,
			    sizeof(*ro->rules))) == NULL)
				return (-1);
			ro->n_rules = n;
			for (i = 0; i < n; i++)
				if (b_rule(p, &ro->rules[i],
				    json_array_get(rules, i)) == -1)
					return (-1);
			if (b_index(p, ro) == -1)
				return (-1);
		}
		ro++;
	}

	if (htab_init(&p->principals, &p->arena, json_object_size(prs)) == -1)
		return (-1);
	json_object_foreach(prs, k, j) {
		if ((pr = arena_alloc(&p->arena, sizeof(*pr))) == NULL ||
		    (pr->name = arena_strndup(&p->arena, k, strlen(k))) == NULL)
			return (-1);
		pr->disabled = json_is_true(json_object_get(j, "disabled"));
		rules = json_object_get(j, "roles");
		if ((n = json_array_size(rules)) > 0) {
			if ((pr->roles = arena_calloc(&p->arena, n,
			    sizeof(*pr->roles))) == NULL)
				return (-1);
			for (i = 0; i < n; i++) {
				json_t *rn = json_array_get(rules, i);
				pr->roles[i] = htab_get(&p->roles,
				    json_string_value(rn),
				    json_string_length(rn));
			}
			pr->n_roles = n;
		}
		htab_put(&p->principals, pr->name, strlen(pr->name), pr);
	}

	if ((red = json_object_get(doc, "redact")) != NULL &&
	    (p->n_redact = json_object_size(red)) > 0) {
		if ((p->redact = arena_calloc(&p->arena, p->n_redact,
		    sizeof(*p->redact))) == NULL)
			return (-1);
		rd = p->redact;
		json_object_foreach(red, k, j) {
			if ((rd->pattern = arena_strndup(&p->arena, k,
			    strlen(k))) == NULL)
				return (-1);
			rd->n_fields = json_array_size(j);
			if (rd->n_fields > 0 && (rd->fields = arena_calloc(
			    &p->arena, rd->n_fields, sizeof(*rd->fields))) ==
			    NULL)
				return (-1);
			for (i = 0; i < rd->n_fields; i++)
				if ((rd->fields[i] = b_str(p,
				    json_array_get(j, i))) == NULL)
					return (-1);
			rd++;
		}
	}
	return (0);
}

static void
one_error(json_t **errors, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
one_error(json_t **errors, const char *fmt, ...)
{
	char	 msg[512], *c;
	va_list	 ap;

	if (errors == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* jansson's error text quotes the input's bytes, which need not be
	 * UTF-8: json_pack would refuse it and the list would be empty. */
	for (c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	*errors = json_pack("[{s:s, s:s}]", "path", "$", "message", msg);
}

struct policy *
policy_parse(const char *text, size_t len, json_t **errors)
{
	struct vctx	 v;
	struct policy	*p = NULL;
	json_t		*doc = NULL;
	json_error_t	 jerr;

	if (errors != NULL)
		*errors = NULL;
	if (text == NULL) {
		one_error(errors, "no policy text");
		return (NULL);
	}
	if (len > POLICY_MAX_BYTES) {
		one_error(errors, "policy is %zu bytes; at most %d allowed",
		    len, POLICY_MAX_BYTES);
		return (NULL);
	}
	if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		one_error(errors, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return (NULL);
	}

	memset(&v, 0, sizeof(v));
	if ((v.errors = json_array()) == NULL)
		goto oom;
	path_append(&v, "$", 1);
	v_document(&v, doc);
	if (v.oom)
		goto oom;
	if (v.n_errors > 0) {
		if (v.truncated) {
			path_pop(&v, 1);
			v.n_errors = 0;
			verr(&v, "more problems not shown: only the first %d "
			    "are reported", POLICY_MAX_ERRORS);
		}
		if (errors != NULL) {
			*errors = v.errors;
			v.errors = NULL;
		}
		goto done;
	}

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto oom;
	if (b_document(p, doc) == -1) {
		policy_free(p);
		p = NULL;
		goto oom;
	}
	goto done;

 oom:
	if (errors != NULL) {
		json_decref(*errors);
		one_error(errors, "out of memory while reading the policy");
	}
 done:
	json_decref(v.errors);
	free(v.path);
	json_decref(doc);
	return (p);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	arena_free(&p->arena);
	free(p);
}

/* ---- evaluation ---- */

static const struct principal *
find_principal(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL)
		return (NULL);
	return (htab_get(&p->principals, name, strlen(name)));
}

static const struct principal *
find_enabled(const struct policy *p, const char *name)
{
	const struct principal	*pr = find_principal(p, name);

	return (pr != NULL && !pr->disabled ? pr : NULL);
}

/* A candidate decision: which rule (in evaluation order), and what it
 * yields. */
struct pick {
	int			 set;
	size_t			 role_pos;	/* on the principal */
	size_t			 rule;		/* index in the role */
	const struct role	*role;
	int			 value;		/* approvals, or failure rank */
	int			 tier;
	const struct tier	*tierp;
	enum reason		 reason;
};

/* 1 if (role_pos, rule) comes before the pick in evaluation order. */
static int
pick_before(const struct pick *a, size_t role_pos, size_t rule)
{
	if (role_pos != a->role_pos)
		return (role_pos < a->role_pos);
	return (rule < a->rule);
}

/* Failure ranks: the furthest failure is reported. */
#define FAIL_AMOUNT_REQUIRED	1
#define FAIL_CURRENCY		2
#define FAIL_OVER_LIMIT		3

struct evalstate {
	const struct amount	*amount;
	struct pick		 deny, allow, fail;
};

static void
pick_set(struct pick *pk, const struct role *ro, size_t role_pos, size_t ri,
    int value, int tier, const struct tier *tierp, enum reason reason)
{
	pk->set = 1;
	pk->role = ro;
	pk->role_pos = role_pos;
	pk->rule = ri;
	pk->value = value;
	pk->tier = tier;
	pk->tierp = tierp;
	pk->reason = reason;
}

static void
eval_rule(struct evalstate *st, const struct role *ro, size_t role_pos,
    size_t ri)
{
	const struct rule	*ru = &ro->rules[ri];
	const struct currency	*c = NULL;
	const struct tier	*t = NULL;
	struct pick		*pk;
	size_t			 i;
	int			 value = 0, fail = 0;
	enum reason		 reason;

	if (ru->deny) {
		pk = &st->deny;
		if (!pk->set || pick_before(pk, role_pos, ri))
			pick_set(pk, ro, role_pos, ri, 0, -1, NULL,
			    R_NO_PERMISSION);
		return;
	}

	if (ru->n_currencies == 0)
		value = ru->approvals;
	else if (st->amount == NULL)
		fail = FAIL_AMOUNT_REQUIRED;
	else {
		for (i = 0; i < ru->n_currencies; i++)
			if (strcmp(ru->currencies[i].code,
			    st->amount->currency) == 0) {
				c = &ru->currencies[i];
				break;
			}
		if (c == NULL)
			fail = FAIL_CURRENCY;
		else {
			/* first tier whose max >= value, inclusive */
			for (i = 0; i < c->n_tiers; i++)
				if (amount_cmp(&c->tiers[i].max,
				    st->amount) >= 0)
					break;
			if (i < c->n_tiers)
				value = c->tiers[i].approvals;
			else {
				/* report the last limit, the one exceeded */
				i = c->n_tiers - 1;
				fail = FAIL_OVER_LIMIT;
			}
			t = &c->tiers[i];
		}
	}

	if (fail) {
		pk = &st->fail;
		if (pk->set && (fail < pk->value || (fail == pk->value &&
		    !pick_before(pk, role_pos, ri))))
			return;
		reason = fail == FAIL_OVER_LIMIT ? R_AMOUNT_OVER_LIMIT :
		    fail == FAIL_CURRENCY ? R_CURRENCY_NOT_ALLOWED :
		    R_AMOUNT_REQUIRED;
		pick_set(pk, ro, role_pos, ri, fail,
		    t ? (int)(t - c->tiers) : -1, t, reason);
		return;
	}
	pk = &st->allow;
	if (pk->set && (value > pk->value || (value == pk->value &&
	    !pick_before(pk, role_pos, ri))))
		return;
	pick_set(pk, ro, role_pos, ri, value, t ? (int)(t - c->tiers) : -1, t,
	    value == 0 ? R_POLICY_ALLOW : R_APPROVAL_REQUIRED);
}

static void
eval_span(struct evalstate *st, const struct role *ro, size_t role_pos,
    const struct span *sp)
{
	size_t	 i;

	if (sp == NULL)
		return;
	for (i = 0; i < sp->n; i++)
		eval_rule(st, ro, role_pos, (size_t)ro->idx[sp->start + i]);
}

static void
eval_fill(struct evaluation *ev, const struct pick *pk)
{
	const struct rule	*ru = &pk->role->rules[pk->rule];

	ev->reason = pk->reason;
	ev->role = pk->role->name;
	ev->rule_index = (int)pk->rule;
	ev->rule_tool = ru->tool;
	ev->tier_index = pk->tier;
	ev->tier_max = pk->tierp ? pk->tierp->max_text : NULL;
}

/*
 * Evaluation order (proto/policy.md): unknown principal, disabled, any
 * matching deny rule, the matching allow rule needing the fewest approvals
 * (first in role-then-rule order on ties), else the furthest failure.  A
 * tool that is not a valid tool name matches no rule.
 */
void
policy_evaluate(const struct policy *p, const char *principal,
    const char *tool, const struct amount *amount, struct evaluation *ev)
{
	const struct principal	*pr;
	const struct role	*ro;
	struct evalstate	 st;
	size_t			 r, i, tlen;

	memset(ev, 0, sizeof(*ev));
	ev->outcome = OUTCOME_DENY;
	ev->reason = R_NO_PERMISSION;
	ev->rule_index = -1;
	ev->tier_index = -1;

	if ((pr = find_principal(p, principal)) == NULL) {
		ev->reason = R_UNKNOWN_PRINCIPAL;
		return;
	}
	if (pr->disabled) {
		ev->reason = R_PRINCIPAL_DISABLED;
		return;
	}
	if (!policy_tool_name_valid(tool))
		return;
	tlen = strlen(tool);

	memset(&st, 0, sizeof(st));
	st.amount = amount;
	for (r = 0; r < pr->n_roles; r++) {
		ro = pr->roles[r];
		if (ro->n_rules == 0)
			continue;
		eval_span(&st, ro, r, htab_get(&ro->exact, tool, tlen));
		/* "a.b.c" is matched by "a.*" and "a.b.*" */
		for (i = 1; i < tlen; i++)
			if (tool[i] == '.')
				eval_span(&st, ro, r,
				    htab_get(&ro->prefix, tool, i));
	}

	if (st.deny.set) {
		eval_fill(ev, &st.deny);
		return;
	}
	if (st.allow.set) {
		const struct rule *ru = &st.allow.role->rules[st.allow.rule];

		eval_fill(ev, &st.allow);
		ev->approval_ttl = ru->ttl;
		if (st.allow.value == 0)
			ev->outcome = OUTCOME_ALLOW;
		else {
			ev->outcome = OUTCOME_PENDING;
			ev->approvals_required = st.allow.value;
			ev->approver_roles = ru->approvers;
			ev->n_approver_roles = ru->n_approvers;
		}
		return;
	}
	if (st.fail.set)
		eval_fill(ev, &st.fail);
}

int
policy_has_role(const struct policy *p, const char *principal,
    const char *role)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL || role == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (strcmp(pr->roles[i]->name, role) == 0)
			return (1);
	return (0);
}

int
policy_is_operator(const struct policy *p, const char *principal)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (pr->roles[i]->operator)
			return (1);
	return (0);
}

int
policy_is_approver(const struct policy *p, const char *principal)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (pr->roles[i]->approver)
			return (1);
	return (0);
}

int
policy_may_redeem(const struct policy *p, const char *principal,
    const char *tool)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i, k;

	if (pr == NULL || !policy_tool_name_valid(tool))
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		for (k = 0; k < pr->roles[i]->n_redeem; k++)
			if (policy_pattern_match(pr->roles[i]->redeem[k], tool))
				return (1);
	return (0);
}

int
policy_knows(const struct policy *p, const char *principal)
{
	return (find_principal(p, principal) != NULL);
}

int
policy_is_redacted(const struct policy *p, const char *tool,
    const char *field)
{
	size_t	 i, k;

	if (p == NULL || tool == NULL || field == NULL)
		return (0);
	for (i = 0; i < p->n_redact; i++) {
		if (!policy_pattern_match(p->redact[i].pattern, tool))
			continue;
		for (k = 0; k < p->redact[i].n_fields; k++)
			if (strcmp(p->redact[i].fields[k], field) == 0)
				return (1);
	}
	return (0);
}
