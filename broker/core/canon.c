/*
 * canon: canonical JSON bytes, the rule for numbers that keep their value
 * in them, and SHA-256 hex.  What gets hashed (audit records, policy
 * texts, intent payloads) goes through here so there is one definition of
 * "the bytes".
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "canon.h"
#include "jsontext.h"
#include "jsonw.h"

/* 2^53, the largest of the run of integers every double holds. */
#define CANON_MAX_SAFE		9007199254740992.0
#define CANON_MAX_SAFE_TEXT	"9007199254740992"
/* Decimal exponents are saturated here: far beyond any double's range,
 * yet no arithmetic on them can overflow. */
#define CANON_EXP_CAP		1000000000LL

char *
canon_dump(const json_t *v)
{
	return (jsonw_dump(v, JSONW_JCS, NULL));
}

char *
canon_dump_legacy(const json_t *v)
{
	return (jsonw_dump(v, JSONW_LEGACY, NULL));
}

/* --- numbers ----------------------------------------------------------- */

/* A JSON number's value: ±0.DIGITS × 10^point with nsig significant
 * digits (leading and trailing zeros not counted; d keeps the first 18),
 * nsig 0 for zero.  integer: written without fraction or exponent. */
struct canon_decimal {
	int	 neg, integer;
	char	 d[18];
	size_t	 nsig;
	int64_t	 point;
};

static size_t
canon_digits(const char *s, size_t len, size_t *i)
{
	size_t	 start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return (*i - start);
}

/* The exponent part at s[*i] (after e/E), saturated at CANON_EXP_CAP. */
static int
canon_exponent(const char *s, size_t len, size_t *i, int64_t *exp)
{
	int	 neg = 0;
	size_t	 start;

	if (*i < len && (s[*i] == '+' || s[*i] == '-'))
		neg = s[(*i)++] == '-';
	for (start = *i, *exp = 0; *i < len && s[*i] >= '0' && s[*i] <= '9';
	    (*i)++)
		if (*exp < CANON_EXP_CAP)
			*exp = *exp * 10 + (s[*i] - '0');
	if (*i == start)
		return (-1);
	if (neg)
		*exp = -*exp;
	return (0);
}

/* The significant digits of int part s[a, a+alen) then fraction
 * s[b, b+blen), and where the point falls, into r. */
static void
canon_significant(const char *s, size_t a, size_t alen, size_t b,
    size_t blen, int64_t exp, struct canon_decimal *r)
{
	size_t	 j, n = alen + blen, lead, last;

#define DIGIT(j)	((j) < alen ? s[a + (j)] : s[b + (j) - alen])
	for (lead = 0; lead < n && DIGIT(lead) == '0'; lead++)
		;
	if (lead == n)
		return;			/* zero, whatever its sign */
	for (last = n - 1; DIGIT(last) == '0'; last--)
		;
	r->nsig = last - lead + 1;
	for (j = 0; j < r->nsig && j < sizeof(r->d); j++)
		r->d[j] = DIGIT(lead + j);
#undef DIGIT
	r->point = (int64_t)alen - (int64_t)lead + exp;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, all of it, into r. */
static int
canon_decimal_parse(const char *s, size_t len, struct canon_decimal *r)
{
	size_t	 i = 0, a, alen, b = 0, blen = 0;
	int64_t	 exp = 0;
	int	 has_exp = 0;

	memset(r, 0, sizeof(*r));
	if (i < len && s[i] == '-')
		r->neg = 1, i++;
	a = i;
	if ((alen = canon_digits(s, len, &i)) == 0 || (alen > 1 && s[a] == '0'))
		return (-1);
	if (i < len && s[i] == '.') {
		b = ++i;
		if ((blen = canon_digits(s, len, &i)) == 0)
			return (-1);
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (canon_exponent(s, len, &i, &exp) == -1)
			return (-1);
		has_exp = 1;
	}
	if (i != len)
		return (-1);
	r->integer = blen == 0 && !has_exp;
	canon_significant(s, a, alen, b, blen, exp, r);
	return (0);
}

static int
canon_decimal_equal(const struct canon_decimal *x,
    const struct canon_decimal *y)
{
	if (x->nsig == 0 || y->nsig == 0)
		return (x->nsig == y->nsig);	/* -0 is 0 */
	return (x->neg == y->neg && x->nsig == y->nsig &&
	    x->point == y->point && x->nsig <= sizeof(x->d) &&
	    memcmp(x->d, y->d, x->nsig) == 0);
}

/* Written as an integer literal above 2^53 in magnitude. */
static int
canon_decimal_big_integer(const struct canon_decimal *r)
{
	char	 pad[17];

	if (!r->integer || r->nsig == 0 || r->point < 16)
		return (0);
	if (r->point > 16)
		return (1);
	memset(pad, '0', 16);
	memcpy(pad, r->d, r->nsig);	/* nsig <= point = 16 */
	pad[16] = '\0';
	return (strcmp(pad, CANON_MAX_SAFE_TEXT) > 0);
}

/* The double nearest to r's magnitude (r has at most 17 digits). */
static double
canon_decimal_value(const struct canon_decimal *r)
{
	char	 buf[48];
	int64_t	 e = r->point - (int64_t)r->nsig;

	/* DIGITS × 10^e; beyond ±99999 the result is 0 or inf anyway. */
	if (e > 99999)
		e = 99999;
	if (e < -99999)
		e = -99999;
	snprintf(buf, sizeof(buf), "%.*se%lld", (int)r->nsig, r->d,
	    (long long)e);
	return (strtod(buf, NULL));
}

enum canon_number
canon_number_check(const char *text, size_t len)
{
	struct canon_decimal	 in, out;
	char			 es[JSONW_NUMBER_MAX];
	double			 x;
	int			 n;

	if (canon_decimal_parse(text, len, &in) == -1)
		return (CANON_NUMBER_SYNTAX);
	if (in.nsig == 0)
		return (CANON_NUMBER_KEPT);
	if (canon_decimal_big_integer(&in))
		return (CANON_NUMBER_BIG_INTEGER);
	if (in.nsig > 17)
		return (CANON_NUMBER_TOO_PRECISE);
	x = canon_decimal_value(&in);
	if (isinf(x))
		return (CANON_NUMBER_OVERFLOW);
	if (x == 0)
		return (CANON_NUMBER_UNDERFLOW);
	if ((n = jsonw_number(in.neg ? -x : x, es)) < 0 ||
	    canon_decimal_parse(es, (size_t)n, &out) == -1 ||
	    !canon_decimal_equal(&in, &out))
		return (CANON_NUMBER_INEXACT);
	if (x > CANON_MAX_SAFE && out.integer)
		return (CANON_NUMBER_BIG_INTEGER);
	return (CANON_NUMBER_KEPT);
}

const char *
canon_number_problem(enum canon_number verdict)
{
	switch (verdict) {
	case CANON_NUMBER_KEPT:
		return ("is kept exactly");
	case CANON_NUMBER_BIG_INTEGER:
		return ("is an integer above 2^53 (9007199254740992), which "
		    "JSON readers that use doubles do not keep exactly: send "
		    "it as a string");
	case CANON_NUMBER_TOO_PRECISE:
		return ("has more than 17 significant digits, more than a "
		    "double keeps: send it as a string");
	case CANON_NUMBER_OVERFLOW:
		return ("is beyond the range of a double (about 1.8e308): "
		    "send it as a string");
	case CANON_NUMBER_UNDERFLOW:
		return ("is too small for a double and would become 0: send "
		    "it as a string");
	case CANON_NUMBER_INEXACT:
		return ("is not kept exactly by a double (RFC 8785 would "
		    "write another value): send it as a string, or with "
		    "fewer digits");
	case CANON_NUMBER_SYNTAX:
		break;
	}
	return ("is not a JSON number");
}

struct canon_numbers {
	const char		*under;
	size_t			 ulen;
	enum canon_number	*bad;
	char			*where;
	size_t			 wherelen;
};

static int
canon_numbers_visit(const struct jsontext_value *v, void *arg)
{
	struct canon_numbers	*c = arg;
	size_t			 rest;

	if (v->kind != JSONTEXT_NUMBER || v->pointer_len < c->ulen ||
	    memcmp(v->pointer, c->under, c->ulen) != 0 ||
	    (v->pointer_len > c->ulen && v->pointer[c->ulen] != '/'))
		return (0);
	if ((*c->bad = canon_number_check(v->text, v->len)) ==
	    CANON_NUMBER_KEPT)
		return (0);
	rest = v->pointer_len - c->ulen;
	if (rest >= c->wherelen)
		rest = c->wherelen - 1;
	memcpy(c->where, v->pointer + c->ulen, rest);
	c->where[rest] = '\0';
	return (1);
}

int
canon_numbers_check(const char *text, size_t len, const char *under,
    enum canon_number *bad, char *where, size_t wherelen)
{
	struct canon_numbers	 c = { under, strlen(under), bad, where,
				    wherelen };

	*bad = CANON_NUMBER_KEPT;
	if (wherelen > 0)
		where[0] = '\0';
	if (wherelen == 0)
		return (-1);
	switch (jsontext_walk(text, len, canon_numbers_visit, &c)) {
	case JSONTEXT_OK:
		return (0);
	case JSONTEXT_STOPPED:
		return (1);
	default:
		return (-1);
	}
}

static void
canon_hex(const unsigned char *md, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	int	 i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* SHA-256 fetched once: EVP_sha256() looks it up, under a lock, at every
 * init (it was a third of verifying a chain at start-up). */
static EVP_MD		*canon_md;
static pthread_once_t	 canon_md_once = PTHREAD_ONCE_INIT;

static void
canon_md_fetch(void)
{
	canon_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
canon_sha256_hex2(const void *a, size_t alen, const void *b, size_t blen,
    char out[65])
{
	unsigned char	 md[32];
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();

	(void)pthread_once(&canon_md_once, canon_md_fetch);
	if (ctx == NULL || EVP_DigestInit_ex(ctx, canon_md != NULL ?
	    canon_md : EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		memset(md, 0, sizeof(md));	/* cannot happen; never matches */
	EVP_MD_CTX_free(ctx);
	canon_hex(md, out);
}

void
canon_sha256_hex(const void *data, size_t len, char out[65])
{
	canon_sha256_hex2(data, len, NULL, 0, out);
}

int
canon_ct_equal(const void *a, const void *b, size_t len)
{
	return (CRYPTO_memcmp(a, b, len) == 0);
}

int
canon_depth(const json_t *v, int limit)
{
	json_t		*child;
	const char	*key;
	json_t		*mv = (json_t *)v;	/* jansson's iterators are not const */
	size_t		 i;
	int		 d, max = 0;

	if (limit <= 0 || (!json_is_object(v) && !json_is_array(v)))
		return (0);
	if (json_is_object(v)) {
		json_object_foreach(mv, key, child)
			if ((d = canon_depth(child, limit - 1)) > max)
				max = d;
	} else {
		json_array_foreach(mv, i, child)
			if ((d = canon_depth(child, limit - 1)) > max)
				max = d;
	}
	return (max + 1);
}
