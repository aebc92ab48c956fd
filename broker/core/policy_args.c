/*
 * policy_args: what a rule reads in a call's args (CONTRACT §8) — the
 * amount its "amount_from" points at, its "args" conditions, and the
 * values a limit's "per" keys usage by.  It builds those parts of the
 * snapshot from a document policy_validate.c accepted and answers
 * questions about one call; policy.c decides what the answers mean.
 *
 * Exactness: an amount is read from the number's own digits in the args
 * as signed (jsontext), never through jansson's double, because "0.1" or
 * "12345678901234.56" must be what the tool executes.  Conditions compare
 * a number through its RFC 8785 form (jsonw), which is exact for every
 * number intent_verify lets into args (it refuses what that form would
 * change).  Values for one_of and usage keys are compared as RFC 8785
 * text, so JSON equality is byte equality: 1 and 1.0 are equal, 1 and "1"
 * are not, members in any order.
 *
 * No I/O, no logging, no clock; memory for a check is freed before it
 * returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "amount.h"
#include "arena.h"
#include "canon.h"
#include "jsonptr.h"
#include "jsontext.h"
#include "jsonw.h"
#include "policy.h"
#include "policy_impl.h"

static const char *const cond_names[COND__COUNT] = {
	[COND_PRESENT] = "present",
	[COND_ONE_OF] = "one_of",
	[COND_NOT_ONE_OF] = "not_one_of",
	[COND_PREFIX] = "prefix",
	[COND_SUFFIX] = "suffix",
	[COND_MAX_LENGTH] = "max_length",
	[COND_MIN] = "min",
	[COND_MAX] = "max",
	[COND_EACH] = "each",
};

const char *
policy_cond_key_name(enum cond_key k)
{
	return ((unsigned)k < COND__COUNT ? cond_names[k] : "?");
}

/* ---- building ---- */

/* Each value of arr as RFC 8785 text in the arena. */
static int
build_values(struct arena *a, json_t *arr, const char ***out, size_t *n)
{
	json_t	*v;
	size_t	 i;
	char	*t;

	*n = json_array_size(arr);
	if ((*out = arena_calloc(a, *n ? *n : 1, sizeof(**out))) == NULL)
		return (-1);
	json_array_foreach(arr, i, v) {
		if ((t = canon_dump(v)) == NULL)
			return (-1);
		(*out)[i] = arena_strndup(a, t, strlen(t));
		free(t);
		if ((*out)[i] == NULL)
			return (-1);
	}
	return (0);
}

static int
build_cond(struct arena *a, json_t *obj, struct cond *c)
{
	json_t	*j;
	int	 k;

	for (k = 0; k < COND__COUNT; k++) {
		if ((j = json_object_get(obj, cond_names[k])) == NULL)
			continue;
		c->has |= 1u << k;
		switch (k) {
		case COND_PRESENT:
			c->present = json_is_true(j);
			break;
		case COND_ONE_OF:
			if (build_values(a, j, &c->one_of, &c->n_one_of) == -1)
				return (-1);
			break;
		case COND_NOT_ONE_OF:
			if (build_values(a, j, &c->not_one_of,
			    &c->n_not_one_of) == -1)
				return (-1);
			break;
		case COND_PREFIX:
			c->prefix_len = json_string_length(j);
			if ((c->prefix = arena_strndup(a, json_string_value(j),
			    c->prefix_len)) == NULL)
				return (-1);
			break;
		case COND_SUFFIX:
			c->suffix_len = json_string_length(j);
			if ((c->suffix = arena_strndup(a, json_string_value(j),
			    c->suffix_len)) == NULL)
				return (-1);
			break;
		case COND_MAX_LENGTH:
			c->max_length = json_integer_value(j);
			break;
		case COND_MIN:
		case COND_MAX:
			if (amount_parse_value(json_string_value(j),
			    json_string_length(j), k == COND_MIN ? &c->min :
			    &c->max) == -1)
				return (-1);
			break;
		case COND_EACH:
			if ((c->each = arena_alloc(a, sizeof(*c->each))) ==
			    NULL || build_cond(a, j, c->each) == -1)
				return (-1);
			break;
		}
	}
	return (0);
}

int
policy_build_conds(struct arena *a, json_t *args, struct arg_cond **out,
    size_t *n)
{
	const char	*ptr;
	json_t		*c;
	struct arg_cond	*e;

	*n = json_object_size(args);
	*out = NULL;
	if (*n == 0)
		return (0);
	if ((*out = arena_calloc(a, *n, sizeof(**out))) == NULL)
		return (-1);
	e = *out;
	/* jansson iterates in insertion order: the order of the text */
	json_object_foreach(args, ptr, c) {
		e->pointer_len = strlen(ptr);
		if ((e->pointer = arena_strndup(a, ptr, e->pointer_len)) ==
		    NULL || build_cond(a, c, &e->cond) == -1)
			return (-1);
		e++;
	}
	return (0);
}

int
policy_build_amount_from(struct arena *a, json_t *af,
    struct amount_from **out)
{
	struct amount_from	*f;
	json_t			*j;

	if ((f = arena_alloc(a, sizeof(*f))) == NULL)
		return (-1);
	j = json_object_get(af, "value");
	f->value_len = json_string_length(j);
	if ((f->value = arena_strndup(a, json_string_value(j),
	    f->value_len)) == NULL)
		return (-1);
	j = json_object_get(af, "currency");
	if (json_string_value(j)[0] == '/') {
		f->currency_ptr_len = json_string_length(j);
		if ((f->currency_ptr = arena_strndup(a, json_string_value(j),
		    f->currency_ptr_len)) == NULL)
			return (-1);
	} else
		memcpy(f->currency, json_string_value(j), 4);
	if ((j = json_object_get(af, "scale")) != NULL)
		f->scale = (int)json_integer_value(j);
	*out = f;
	return (0);
}

/* ---- exact comparison of a JSON number with an amount ---- */

#define DEC_MAX_DIGITS	64

/* A non-negative decimal as significant digits d[0..n) (no leading or
 * trailing zeros; n 0 for zero) and point: value = 0.d × 10^point. */
struct dec {
	int	 neg;
	char	 d[DEC_MAX_DIGITS];
	size_t	 n;
	long	 point;
};

/* Read a JSON number token (RFC 8259 grammar, as jsonw writes it): 0, or
 * -1 when it is not one or has too many digits to compare. */
static int
dec_read(const char *s, size_t len, struct dec *out)
{
	size_t	 i = 0, intdig = 0, lead = 0;
	long	 e = 0;
	int	 eneg = 0, seen = 0;

	memset(out, 0, sizeof(*out));
	if (i < len && s[i] == '-')
		out->neg = 1, i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, intdig++) {
		if (out->n == 0 && s[i] == '0') {
			lead++;
			continue;
		}
		if (out->n == DEC_MAX_DIGITS)
			return (-1);
		out->d[out->n++] = s[i];
	}
	if (intdig == 0)
		return (-1);
	out->point = (long)(intdig - lead);
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			seen = 1;
			if (out->n == 0 && s[i] == '0') {
				out->point--;
				continue;
			}
			if (out->n == DEC_MAX_DIGITS)
				return (-1);
			out->d[out->n++] = s[i];
		}
		if (!seen)
			return (-1);
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		for (seen = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			seen = 1;
			if (e < 100000)		/* far beyond any double */
				e = e * 10 + (s[i] - '0');
		}
		if (!seen)
			return (-1);
	}
	if (i != len)
		return (-1);
	while (out->n > 0 && out->d[out->n - 1] == '0')
		out->n--;
	out->point += eneg ? -e : e;
	if (out->n == 0)
		out->neg = 0, out->point = 0;	/* -0 is 0 */
	return (0);
}

/* <0, 0, >0 as a is below, equal to or above b; both as dec_read made
 * them. */
static int
dec_cmp(const struct dec *a, const struct dec *b)
{
	size_t	 i;
	int	 sign;

	if (a->n == 0 || b->n == 0 || a->neg != b->neg) {
		if (a->n == 0 && b->n == 0)
			return (0);
		if (a->n == 0)
			return (b->neg ? 1 : -1);
		if (b->n == 0)
			return (a->neg ? -1 : 1);
		return (a->neg ? -1 : 1);
	}
	sign = a->neg ? -1 : 1;
	if (a->point != b->point)
		return (a->point < b->point ? -sign : sign);
	for (i = 0; i < a->n && i < b->n; i++)
		if (a->d[i] != b->d[i])
			return (a->d[i] < b->d[i] ? -sign : sign);
	if (a->n == b->n)
		return (0);
	return (a->n < b->n ? -sign : sign);
}

static void
dec_of_amount(const struct amount *a, struct dec *out)
{
	char	 t[AMOUNT_MAX_TEXT + 8];
	int	 n;

	n = snprintf(t, sizeof(t), "%lld.%06d", (long long)a->whole,
	    (int)a->micro);
	(void)dec_read(t, (size_t)n, out);
}

/*
 * The member v (a number, or a string in the amount grammar) as a dec:
 * 0, or -1 when it is neither.
 */
static int
dec_of_member(const json_t *v, struct dec *out)
{
	char		 t[JSONW_NUMBER_MAX];
	struct amount	 a;
	int		 n;

	if (json_is_integer(v)) {
		n = snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return (dec_read(t, (size_t)n, out));
	}
	if (json_is_real(v)) {
		if ((n = jsonw_number(json_real_value(v), t)) < 0)
			return (-1);
		return (dec_read(t, (size_t)n, out));
	}
	if (json_is_string(v)) {
		if (amount_parse_value(json_string_value(v),
		    json_string_length(v), &a) == -1)
			return (-1);
		dec_of_amount(&a, out);
		return (0);
	}
	return (-1);
}

/* ---- conditions ---- */

/* Code points of a jansson string (valid UTF-8): bytes that do not
 * continue a sequence. */
static size_t
utf8_count(const char *s, size_t len)
{
	size_t	 i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return (n);
}

/* 1 if the RFC 8785 text of v is one of vals, 0 if not, -1 unknown. */
static int
value_in(const json_t *v, const char *const *vals, size_t n)
{
	char	*t;
	size_t	 i;
	int	 found = 0;

	if ((t = canon_dump(v)) == NULL)
		return (-1);
	for (i = 0; i < n && !found; i++)
		found = strcmp(t, vals[i]) == 0;
	free(t);
	return (found);
}

static void
where_append_index(char *where, size_t wsz, size_t i)
{
	size_t	 len = strlen(where);

	if (len < wsz)
		snprintf(where + len, wsz - len, "/%zu", i);
}

static enum cond_result cond_check(const struct cond *c, const json_t *v,
	    int depth, char *where, size_t wsz, enum cond_key *failed);

/* One key of c on v (not NULL). */
static enum cond_result
cond_key_check(const struct cond *c, enum cond_key k, const json_t *v,
    int depth, char *where, size_t wsz, enum cond_key *failed)
{
	const char	*s = json_string_value(v);
	size_t		 len = json_string_length(v), i, wlen;
	struct dec	 m, lim;
	enum cond_result r;
	json_t		*e;
	int		 in;

	switch (k) {
	case COND_PRESENT:
		return (c->present ? COND_HOLDS : COND_FAILS);
	case COND_ONE_OF:
	case COND_NOT_ONE_OF:
		in = k == COND_ONE_OF ? value_in(v, c->one_of, c->n_one_of) :
		    value_in(v, c->not_one_of, c->n_not_one_of);
		if (in == -1)
			return (COND_UNKNOWN);
		return (in == (k == COND_ONE_OF) ? COND_HOLDS : COND_FAILS);
	case COND_PREFIX:
		return (s != NULL && len >= c->prefix_len &&
		    memcmp(s, c->prefix, c->prefix_len) == 0 ? COND_HOLDS :
		    COND_FAILS);
	case COND_SUFFIX:
		return (s != NULL && len >= c->suffix_len &&
		    memcmp(s + len - c->suffix_len, c->suffix,
		    c->suffix_len) == 0 ? COND_HOLDS : COND_FAILS);
	case COND_MAX_LENGTH:
		return (s != NULL && utf8_count(s, len) <=
		    (size_t)c->max_length ? COND_HOLDS : COND_FAILS);
	case COND_MIN:
	case COND_MAX:
		if (dec_of_member(v, &m) == -1)
			return (COND_FAILS);
		dec_of_amount(k == COND_MIN ? &c->min : &c->max, &lim);
		in = dec_cmp(&m, &lim);
		return ((k == COND_MIN ? in >= 0 : in <= 0) ? COND_HOLDS :
		    COND_FAILS);
	case COND_EACH:
		if (!json_is_array(v)) {
			*failed = COND_EACH;
			return (COND_FAILS);
		}
		wlen = strlen(where);
		json_array_foreach(v, i, e) {
			where_append_index(where, wsz, i);
			r = cond_check(c->each, e, depth + 1, where, wsz,
			    failed);
			if (r != COND_HOLDS)
				return (r);
			where[wlen] = '\0';
		}
		return (COND_HOLDS);
	default:
		return (COND_FAILS);
	}
}

/*
 * c on v (NULL: the member is missing): the first key that does not hold
 * goes to *failed, and where (the member's pointer) is extended to the
 * element that failed inside "each".
 */
static enum cond_result
cond_check(const struct cond *c, const json_t *v, int depth, char *where,
    size_t wsz, enum cond_key *failed)
{
	enum cond_result r;
	int		 k;

	if (depth > POLICY_MAX_EACH_DEPTH)
		return (COND_UNKNOWN);	/* the validator never lets it */
	if (v == NULL) {
		/* a missing member fails everything but "present": false */
		if ((c->has & (1u << COND_PRESENT)) && !c->present)
			return (COND_HOLDS);
		for (k = 0; k < COND__COUNT && !(c->has & (1u << k)); k++)
			;
		*failed = (enum cond_key)k;
		return (COND_FAILS);
	}
	for (k = 0; k < COND__COUNT; k++) {
		if (!(c->has & (1u << k)))
			continue;
		r = cond_key_check(c, (enum cond_key)k, v, depth, where, wsz,
		    failed);
		if (r == COND_FAILS && k != COND_EACH)
			*failed = (enum cond_key)k;
		if (r != COND_HOLDS)
			return (r);
	}
	return (COND_HOLDS);
}

enum cond_result
policy_conds_check(const struct arg_cond *conds, size_t n,
    const json_t *args, struct cond_failure *why)
{
	const json_t	*v;
	enum cond_result r;
	enum cond_key	 key = COND_PRESENT;
	size_t		 i;

	for (i = 0; i < n; i++) {
		v = args != NULL ? jsonptr_get(args, conds[i].pointer,
		    conds[i].pointer_len) : NULL;
		snprintf(why->where, sizeof(why->where), "%s",
		    conds[i].pointer);
		r = cond_check(&conds[i].cond, v, 0, why->where,
		    sizeof(why->where), &key);
		if (r != COND_HOLDS) {
			why->entry = &conds[i];
			why->key = key;
			return (r);
		}
	}
	return (COND_HOLDS);
}

/* ---- amounts ---- */

/*
 * digits (len bytes), a count of 10^-scale units, as the decimal it
 * stands for in text: 0, or -1 when it is not "0" or [1-9][0-9]* or the
 * decimal would exceed the amount grammar.
 */
static int
scaled_text(const char *s, size_t len, int scale, char *text)
{
	size_t	 i, o = 0, whole;

	if (len == 0 || len > 15 + (size_t)scale || (s[0] == '0' && len > 1))
		return (-1);
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return (-1);
	if (len <= (size_t)scale) {
		text[o++] = '0';
		text[o++] = '.';
		for (i = len; i < (size_t)scale; i++)
			text[o++] = '0';
		memcpy(text + o, s, len);
		o += len;
	} else {
		whole = len - (size_t)scale;
		memcpy(text, s, whole);
		o = whole;
		text[o++] = '.';
		memcpy(text + o, s + whole, (size_t)scale);
		o += (size_t)scale;
	}
	text[o] = '\0';
	return (0);
}

static const char *
kind_of(const json_t *v)
{
	if (json_is_object(v))
		return ("an object");
	if (json_is_array(v))
		return ("an array");
	if (json_is_boolean(v))
		return ("a boolean");
	return ("null");
}

enum amount_read
policy_amount_read(const struct amount_from *af,
    const struct policy_call *call, struct amount *out, char *text,
    char *msg, size_t msgsz)
{
	const json_t	*v, *cur;
	const char	*s = NULL, *code;
	size_t		 len = 0;
	int		 ptrw;

	ptrw = (int)(af->value_len < 100 ? af->value_len : 100);

	if (call->args == NULL || (v = jsonptr_get(call->args, af->value,
	    af->value_len)) == NULL)
		return (AMOUNT_READ_MISSING);
	code = af->currency;
	if (af->currency_ptr != NULL) {
		if ((cur = jsonptr_get(call->args, af->currency_ptr,
		    af->currency_ptr_len)) == NULL)
			return (AMOUNT_READ_MISSING);
		code = json_string_value(cur);
		if (code == NULL || json_string_length(cur) != 3 ||
		    !amount_currency_valid(code)) {
			snprintf(msg, msgsz, "args %.100s must be a currency "
			    "code of three capital letters such as \"USD\"",
			    af->currency_ptr);
			return (AMOUNT_READ_INVALID);
		}
	}

	if (json_is_string(v)) {
		s = json_string_value(v);
		len = json_string_length(v);
	} else if (json_is_number(v)) {
		/* the digits as signed: jansson's double is not the amount */
		if (call->args_json == NULL || jsontext_number_at(
		    call->args_json, call->args_json_len, af->value,
		    af->value_len, &s, &len) != JSONTEXT_OK)
			s = NULL;
	} else {
		snprintf(msg, msgsz, "args %.*s is %s, not an amount: send "
		    "a decimal string such as \"1000.00\"", ptrw, af->value,
		    kind_of(v));
		return (AMOUNT_READ_INVALID);
	}

	if (s != NULL && af->scale == 0 && len < AMOUNT_MAX_TEXT &&
	    amount_parse_value(s, len, out) == 0) {
		memcpy(text, s, len);
		text[len] = '\0';
	} else if (s == NULL || af->scale == 0 || scaled_text(s, len,
	    af->scale, text) == -1 || amount_parse_value(text, strlen(text),
	    out) == -1) {
		if (af->scale == 0)
			snprintf(msg, msgsz, "args %.*s is not an amount: "
			    "send a decimal string such as \"1000.00\", or a "
			    "JSON number written the same way (no sign, no "
			    "exponent, at most 15 integer digits and 6 "
			    "decimals)", ptrw, af->value);
		else
			snprintf(msg, msgsz, "args %.*s must be a whole number "
			    "of 10^-%d units (the rule's scale), without sign, "
			    "exponent or leading zeros, of at most %d digits",
			    ptrw, af->value, af->scale, 15 + af->scale);
		return (AMOUNT_READ_INVALID);
	}
	memcpy(out->currency, code, 4);
	return (AMOUNT_READ_OK);
}

/* ---- usage keys ---- */

/* A growing text. */
struct keybuf {
	char	*s;
	size_t	 len, cap;
	int	 failed;
};

static void
keybuf_add(struct keybuf *k, const char *s, size_t len)
{
	char	*n;
	size_t	 cap;

	if (k->failed)
		return;
	if (k->len + len + 1 > k->cap) {
		cap = k->cap ? k->cap : 64;
		while (k->len + len + 1 > cap)
			cap *= 2;
		if ((n = realloc(k->s, cap)) == NULL) {
			k->failed = 1;
			return;
		}
		k->s = n;
		k->cap = cap;
	}
	memcpy(k->s + k->len, s, len);
	k->len += len;
	k->s[k->len] = '\0';
}

/* 1 if s is printable ASCII without '"' and '\': its RFC 8785 form is
 * itself in quotes. */
static int
key_plain(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return (0);
	return (1);
}

/* Append one key part: t (len bytes, RFC 8785 text), hashed when long. */
static void
key_part_add(struct keybuf *k, const char *t, size_t len)
{
	char	 hex[SHA256_HEX_LEN + 1];

	if (len <= POLICY_KEY_PART_MAX) {
		keybuf_add(k, t, len);
		return;
	}
	canon_sha256_hex(t, len, hex);
	keybuf_add(k, "{\"sha256\":\"", 11);
	keybuf_add(k, hex, SHA256_HEX_LEN);
	keybuf_add(k, "\"}", 2);
}

/* Append the part for the string s (NUL-terminated) or, when s is NULL,
 * the value v. */
static void
key_value_add(struct keybuf *k, const char *s, const json_t *v)
{
	json_t	*tmp = NULL;
	char	*t;
	size_t	 len;

	if (s == NULL && json_is_string(v))
		s = json_string_value(v);
	if (s != NULL && key_plain(s, (len = strlen(s)))) {
		/* the common case (names, ids): no allocation */
		if (len + 2 <= POLICY_KEY_PART_MAX) {
			keybuf_add(k, "\"", 1);
			keybuf_add(k, s, len);
			keybuf_add(k, "\"", 1);
			return;
		}
	}
	if (s != NULL && v == NULL)
		v = tmp = json_string(s);	/* NULL when not UTF-8 */
	t = v != NULL ? canon_dump(v) : NULL;
	json_decref(tmp);
	if (t == NULL) {
		k->failed = 1;
		return;
	}
	key_part_add(k, t, strlen(t));
	free(t);
}

char *
policy_limit_key(const char *const *per, size_t n,
    const struct policy_call *call)
{
	struct keybuf	 k = { NULL, 0, 0, 0 };
	const json_t	*v;
	size_t		 i;

	keybuf_add(&k, "[", 1);
	for (i = 0; i < n; i++) {
		if (i > 0)
			keybuf_add(&k, ",", 1);
		if (strcmp(per[i], "agent") == 0)
			key_value_add(&k, call->principal, NULL);
		else if (strcmp(per[i], "tool") == 0)
			key_value_add(&k, call->tool, NULL);
		else {
			v = call->args != NULL ? jsonptr_get(call->args, per[i],
			    strlen(per[i])) : NULL;
			if (v == NULL)
				keybuf_add(&k, "null", 4);
			else
				key_value_add(&k, NULL, v);
		}
	}
	keybuf_add(&k, "]", 1);
	if (k.failed) {
		free(k.s);
		return (NULL);
	}
	return (k.s);
}
