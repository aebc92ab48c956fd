/*
 * jsonw: compact JSON text of a jansson value, in one of three styles
 * (jsonw.h): plain, RFC 8785 (JCS), or jansson's own sorted bytes; and
 * plain laid out with indentation for people (jsonw_pretty).
 *
 * Why not json_dumps: it guards every array and object against reference
 * cycles by printing the container's address into a hash table, and hands
 * each output fragment to a callback, which made it a tenth of a
 * decision's CPU.  Our values are trees built or parsed by us, so the
 * cycle check buys nothing; the rest is a straight walk into one buffer.
 *
 * JSONW_LEGACY must stay equal to jansson (audit records of format 1 are
 * re-derived with it): tests/unit/test-jsonw.c and the audit fuzz target
 * compare the two on every input they see, and its reals are still
 * printed by jansson.  JSONW_JCS is checked against the RFC 8785 vectors
 * and an independent implementation (tests/integration/test_jcs.py).
 * This file never decides what may be stored: canon.c and intent.c do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "utf8.h"

struct jsonw {
	char		*buf;
	size_t		 len, cap;
	enum jsonw_style style;
	int		 failed;
	int		 indent;	/* jsonw_pretty: two spaces a level */
	int		 ascii;		/* jsonw_pretty JSONW_ASCII */
	int		 depth;
};

/* Members of one object, gathered to be sorted; most fit on the stack. */
#define JSONW_STACK_MEMBERS	32

/* 2^53: above it not every integer is a double, so RFC 8785 readers (who
 * read numbers as doubles) may see another value. */
#define JSONW_MAX_SAFE		9007199254740992.0

struct jsonw_member {
	const char	*key;
	size_t		 len;
	const json_t	*value;
};

static int
jsonw_reserve(struct jsonw *w, size_t n)
{
	size_t	 cap = w->cap ? w->cap : 256;
	char	*p;

	if (w->failed)
		return (-1);
	if (n <= w->cap - w->len)
		return (0);
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	if ((p = realloc(w->buf, cap)) == NULL)
		goto fail;
	w->buf = p;
	w->cap = cap;
	return (0);
 fail:
	w->failed = 1;
	return (-1);
}

static void
jsonw_put(struct jsonw *w, const char *s, size_t n)
{
	if (n > 0 && jsonw_reserve(w, n) == 0) {
		memcpy(w->buf + w->len, s, n);
		w->len += n;
	}
}

static void
jsonw_char(struct jsonw *w, char c)
{
	if (jsonw_reserve(w, 1) == 0)
		w->buf[w->len++] = c;
}

/* --- numbers ----------------------------------------------------------- */

/* A positive decimal d[0].d[1]...d[k-1] × 10^e, k ≤ 17. */
struct jsonw_dec {
	char	 d[18];
	int	 k, e;
};

/* From printf's "%.*e" text of a positive number.  Only its digits and
 * exponent are read, so the locale's decimal point does not matter. */
static void
jsonw_dec_parse(struct jsonw_dec *r, const char *s)
{
	r->k = 0;
	for (; *s != '\0' && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9' && r->k < 17)
			r->d[r->k++] = *s;
	r->e = *s == 'e' ? atoi(s + 1) : 0;
}

/* The double nearest to r (strtod rounds correctly, ties to even), read
 * from "DIGITSe<exp>" so that no decimal point is involved. */
static double
jsonw_dec_value(const struct jsonw_dec *r)
{
	char	 buf[40];

	snprintf(buf, sizeof(buf), "%.*se%d", r->k, r->d, r->e - (r->k - 1));
	return (strtod(buf, NULL));
}

/* r plus one unit in its last digit. */
static void
jsonw_dec_up(struct jsonw_dec *r)
{
	int	 i = r->k - 1;

	while (i >= 0 && r->d[i] == '9')
		r->d[i--] = '0';
	if (i >= 0)
		r->d[i]++;
	else {
		r->d[0] = '1';
		r->e++;
	}
}

/*
 * The shortest decimal that reads back as x > 0, the closest of them if
 * there are two.  For each length p, printf gives the p-digit decimal
 * nearest to x (exactly, ties to even); if it does not read back, the
 * only other p-digit candidate is the next one up, and only when the
 * nearest lies below x (the gap below a power of two is half the gap
 * above it).  17 digits always read back.
 */
static void
jsonw_shortest(double x, struct jsonw_dec *r)
{
	struct jsonw_dec	 up;
	char			 buf[40];
	int			 p;

	for (p = 1; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p - 1, x);
		jsonw_dec_parse(r, buf);
		if (jsonw_dec_value(r) == x)
			break;
		up = *r;
		jsonw_dec_up(&up);
		if (jsonw_dec_value(r) < x && jsonw_dec_value(&up) == x) {
			*r = up;
			break;
		}
	}
	while (r->k > 1 && r->d[r->k - 1] == '0')
		r->k--;
}

int
jsonw_number(double d, char out[JSONW_NUMBER_MAX])
{
	struct jsonw_dec	 r;
	char			*p = out;
	int			 k, n;

	if (!isfinite(d))
		return (-1);
	if (d == 0) {
		memcpy(out, "0", 2);
		return (1);
	}
	if (d < 0) {
		*p++ = '-';
		d = -d;
	}
	jsonw_shortest(d, &r);
	k = r.k;
	n = r.e + 1;		/* d = 0.DIGITS × 10^n, ECMA-262's n */
	if (k <= n && n <= 21) {
		memcpy(p, r.d, (size_t)k);
		memset(p + k, '0', (size_t)(n - k));
		p += n;
	} else if (0 < n && n < k) {		/* so n <= 16 */
		memcpy(p, r.d, (size_t)n);
		p[n] = '.';
		memcpy(p + n + 1, r.d + n, (size_t)(k - n));
		p += k + 1;
	} else if (-6 < n && n <= 0) {
		memcpy(p, "0.", 2);
		memset(p + 2, '0', (size_t)-n);
		memcpy(p + 2 - n, r.d, (size_t)k);
		p += 2 - n + k;
	} else {
		*p++ = r.d[0];
		if (k > 1) {
			*p++ = '.';
			memcpy(p, r.d + 1, (size_t)(k - 1));
			p += k - 1;
		}
		p += snprintf(p, JSONW_NUMBER_MAX - (size_t)(p - out),
		    "e%c%d", n - 1 < 0 ? '-' : '+', n - 1 < 0 ? 1 - n : n - 1);
	}
	*p = '\0';
	return ((int)(p - out));
}

/* A real: jansson's own digits for the legacy form, else RFC 8785's, which
 * refuses an integer literal above 2^53 (see jsonw.h); plain marks an
 * integral real with ".0" and keeps the sign of -0.0. */
static void
jsonw_real(struct jsonw *w, const json_t *v)
{
	char	 num[JSONW_NUMBER_MAX], *text;
	double	 d = json_real_value(v);
	int	 n;

	if (w->style == JSONW_LEGACY) {
		if ((text = json_dumps(v, JSON_ENCODE_ANY)) == NULL) {
			w->failed = 1;
			return;
		}
		jsonw_put(w, text, strlen(text));
		free(text);
		return;
	}
	if ((n = jsonw_number(d, num)) < 0 || (w->style == JSONW_JCS &&
	    fabs(d) > JSONW_MAX_SAFE && strpbrk(num, ".e") == NULL)) {
		w->failed = 1;
		return;
	}
	/* Plain keeps jansson's type: a reader sees a real again. */
	if (w->style == JSONW_PLAIN && d == 0 && signbit(d))
		jsonw_char(w, '-');
	jsonw_put(w, num, (size_t)n);
	if (w->style == JSONW_PLAIN && strpbrk(num, ".e") == NULL)
		jsonw_put(w, ".0", 2);
}

static void
jsonw_integer(struct jsonw *w, json_int_t i)
{
	char	 num[24];
	int	 n;

	/* RFC 8785 numbers are doubles: refuse rather than round. */
	if (w->style == JSONW_JCS && (i > (json_int_t)JSONW_MAX_SAFE ||
	    i < -(json_int_t)JSONW_MAX_SAFE)) {
		w->failed = 1;
		return;
	}
	n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, i);
	jsonw_put(w, num, (size_t)n);
}

/* --- strings ----------------------------------------------------------- */

/* Both jansson and RFC 8785 escape exactly these: quote, backslash and
 * control characters, with the same short forms; jansson writes the other
 * \u00XX in capitals, RFC 8785 (JSON.stringify) in small letters.
 * Everything else, valid UTF-8, passes through unchanged. */
static void
jsonw_escape(struct jsonw *w, unsigned char c)
{
	const char	*hex = w->style == JSONW_LEGACY ? "0123456789ABCDEF" :
			    "0123456789abcdef";
	char		 seq[6] = { '\\', 'u', '0', '0', 0, 0 };

	switch (c) {
	case '"':  jsonw_put(w, "\\\"", 2); return;
	case '\\': jsonw_put(w, "\\\\", 2); return;
	case '\b': jsonw_put(w, "\\b", 2); return;
	case '\f': jsonw_put(w, "\\f", 2); return;
	case '\n': jsonw_put(w, "\\n", 2); return;
	case '\r': jsonw_put(w, "\\r", 2); return;
	case '\t': jsonw_put(w, "\\t", 2); return;
	default:
		seq[4] = hex[c >> 4];
		seq[5] = hex[c & 15];
		jsonw_put(w, seq, sizeof(seq));
	}
}

/* JSONW_ASCII: the code point whose UTF-8 starts at s (n bytes left) as
 * \uXXXX, a surrogate pair above U+FFFF; returns the bytes it used (a
 * stray byte, which jansson's strings never hold, is written as itself). */
static size_t
jsonw_escape_ascii(struct jsonw *w, const unsigned char *s, size_t n)
{
	char		 seq[32];
	uint32_t	 cp;
	size_t		 used = utf8_decode(s, n, &cp);

	if (used == 0) {
		jsonw_char(w, (char)s[0]);
		return (1);
	}
	if (cp < 0x10000)
		snprintf(seq, sizeof(seq), "\\u%04x", (unsigned)cp);
	else
		snprintf(seq, sizeof(seq), "\\u%04x\\u%04x",
		    (unsigned)(0xd800 + ((cp - 0x10000) >> 10)),
		    (unsigned)(0xdc00 + ((cp - 0x10000) & 0x3ff)));
	jsonw_put(w, seq, strlen(seq));
	return (used);
}

static void
jsonw_string(struct jsonw *w, const char *s, size_t len)
{
	size_t	 i, run = 0;

	jsonw_char(w, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\' &&
		    (c < 0x80 || !w->ascii))
			continue;
		jsonw_put(w, s + run, i - run);
		if (c >= 0x80)
			i += jsonw_escape_ascii(w, (const unsigned char *)s + i,
			    len - i) - 1;
		else
			jsonw_escape(w, c);
		run = i + 1;
	}
	jsonw_put(w, s + run, len - run);
	jsonw_char(w, '"');
}

/* --- containers -------------------------------------------------------- */

static void jsonw_value(struct jsonw *, const json_t *);

/* jsonw_pretty: a line break and the indentation of the current depth
 * (nothing in the compact styles). */
static void
jsonw_newline(struct jsonw *w)
{
	int	 i;

	if (!w->indent)
		return;
	jsonw_char(w, '\n');
	for (i = 0; i < w->depth; i++)
		jsonw_put(w, "  ", 2);
}

/* Between the members or elements of a container; its opening (first)
 * and its end (last) break the line in the pretty form as jansson's
 * JSON_INDENT does: "[]" and "{}" stay on one line. */
static void
jsonw_open(struct jsonw *w, char c, size_t n)
{
	jsonw_char(w, c);
	w->depth++;
	if (n > 0)
		jsonw_newline(w);
}

static void
jsonw_next(struct jsonw *w)
{
	jsonw_char(w, ',');
	jsonw_newline(w);
}

static void
jsonw_close(struct jsonw *w, char c, size_t n)
{
	w->depth--;
	if (n > 0)
		jsonw_newline(w);
	jsonw_char(w, c);
}

static void
jsonw_array(struct jsonw *w, const json_t *v)
{
	size_t	 i, n = json_array_size(v);

	jsonw_open(w, '[', n);
	for (i = 0; i < n; i++) {
		if (i > 0)
			jsonw_next(w);
		jsonw_value(w, json_array_get(v, i));
	}
	jsonw_close(w, ']', n);
}

/* jansson's order: memcmp over the shorter key, then the shorter first. */
static int
jsonw_member_cmp(const void *a, const void *b)
{
	const struct jsonw_member	*x = a, *y = b;
	int				 c;

	c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	if (c != 0)
		return (c);
	return (x->len < y->len ? -1 : x->len > y->len);
}

/* The code point whose UTF-8 starts at s[i]; a stray byte stands for
 * itself (jansson's strings are valid UTF-8 anyway). */
static uint32_t
jsonw_utf8_at(const unsigned char *s, size_t len, size_t i)
{
	uint32_t	 c;

	return (utf8_decode(s + i, len - i, &c) > 0 ? c : s[i]);
}

/* The first UTF-16 code unit of code point c. */
static uint32_t
jsonw_utf16_lead(uint32_t c)
{
	return (c < 0x10000 ? c : 0xd800 + ((c - 0x10000) >> 10));
}

/*
 * RFC 8785 §3.2.3: names compared as arrays of UTF-16 code units.  UTF-8
 * byte order is code point order, which differs from UTF-16 order only
 * where a character above U+FFFF (a surrogate pair, D800-DBFF first)
 * meets one in U+E000-U+FFFF: so compare bytes up to the first
 * difference, and decide there by the code points' first code units.
 */
static int
jsonw_member_cmp_utf16(const void *a, const void *b)
{
	const struct jsonw_member	*x = a, *y = b;
	const unsigned char		*p = (const unsigned char *)x->key;
	const unsigned char		*q = (const unsigned char *)y->key;
	size_t				 i, n = x->len < y->len ? x->len : y->len;
	uint32_t			 cp, cq, up, uq;

	for (i = 0; i < n && p[i] == q[i]; i++)
		;
	if (i == n)
		return (x->len < y->len ? -1 : x->len > y->len);
	while (i > 0 && (p[i] & 0xc0) == 0x80)
		i--;		/* same prefix: the same code point start */
	cp = jsonw_utf8_at(p, x->len, i);
	cq = jsonw_utf8_at(q, y->len, i);
	up = jsonw_utf16_lead(cp);
	uq = jsonw_utf16_lead(cq);
	if (up != uq)
		return (up < uq ? -1 : 1);
	if (cp != cq)
		return (cp < cq ? -1 : 1);
	return (jsonw_member_cmp(a, b));
}

/* Members in insertion order (plain) or sorted as the style says.  The
 * iterators want a non-const object; nothing is changed. */
static void
jsonw_object(struct jsonw *w, json_t *v)
{
	struct jsonw_member	 stack[JSONW_STACK_MEMBERS], *m = stack;
	size_t			 i, n = json_object_size(v);
	void			*it;

	if (n > JSONW_STACK_MEMBERS && (m = calloc(n, sizeof(*m))) == NULL) {
		w->failed = 1;
		return;
	}
	for (i = 0, it = json_object_iter(v); it != NULL && i < n;
	    it = json_object_iter_next(v, it), i++) {
		m[i].key = json_object_iter_key(it);
		m[i].len = json_object_iter_key_len(it);
		m[i].value = json_object_iter_value(it);
	}
	n = i;
	if (w->style == JSONW_LEGACY)
		qsort(m, n, sizeof(*m), jsonw_member_cmp);
	else if (w->style == JSONW_JCS)
		qsort(m, n, sizeof(*m), jsonw_member_cmp_utf16);
	jsonw_open(w, '{', n);
	for (i = 0; i < n; i++) {
		if (i > 0)
			jsonw_next(w);
		jsonw_string(w, m[i].key, m[i].len);
		jsonw_put(w, ": ", w->indent ? 2 : 1);
		jsonw_value(w, m[i].value);
	}
	jsonw_close(w, '}', n);
	if (m != stack)
		free(m);
}

static void
jsonw_value(struct jsonw *w, const json_t *v)
{
	if (v == NULL) {
		w->failed = 1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL:  jsonw_put(w, "null", 4); return;
	case JSON_TRUE:  jsonw_put(w, "true", 4); return;
	case JSON_FALSE: jsonw_put(w, "false", 5); return;
	case JSON_INTEGER:
		jsonw_integer(w, json_integer_value(v));
		return;
	case JSON_REAL:
		jsonw_real(w, v);
		return;
	case JSON_STRING:
		jsonw_string(w, json_string_value(v), json_string_length(v));
		return;
	case JSON_ARRAY:
		jsonw_array(w, v);
		return;
	case JSON_OBJECT:
		jsonw_object(w, (json_t *)(uintptr_t)v);
		return;
	}
	w->failed = 1;
}

static char *
jsonw_run(struct jsonw *w, const json_t *v, size_t *len)
{
	jsonw_value(w, v);
	jsonw_char(w, '\0');
	if (w->failed) {
		free(w->buf);
		return (NULL);
	}
	if (len != NULL)
		*len = w->len - 1;
	return (w->buf);
}

char *
jsonw_pretty(const json_t *v, unsigned flags, size_t *len)
{
	struct jsonw	 w;

	memset(&w, 0, sizeof(w));
	w.style = JSONW_PLAIN;
	w.indent = 1;
	w.ascii = (flags & JSONW_ASCII) != 0;
	return (jsonw_run(&w, v, len));
}

char *
jsonw_dump(const json_t *v, enum jsonw_style style, size_t *len)
{
	struct jsonw	 w;

	memset(&w, 0, sizeof(w));
	w.style = style;
	return (jsonw_run(&w, v, len));
}

