/*
 * jsontext: a strict RFC 8259 reader that hands out each value's exact
 * bytes and RFC 6901 pointer (jsontext.h).  Iterative, with an explicit
 * stack of open arrays and objects, so nesting costs heap, not C stack.
 * The pointer of the value being read lives in one buffer that grows and
 * shrinks as the reader enters and leaves members; every value's pointer
 * is at most twice the bytes of text that lead to it (an escaped name is
 * at most twice its JSON string, "/N" at most twice the "[" and N
 * elements before it), so 2 * len + 1 bytes always suffice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonptr.h"
#include "jsontext.h"
#include "utf8.h"

struct jt_frame {
	enum jsontext_kind	 kind;		/* JSONTEXT_ARRAY or _OBJECT */
	size_t			 start;		/* offset of its bracket */
	size_t			 ptr_len;	/* its own pointer's length */
	size_t			 index;		/* arrays: the element being read */
};

struct jt {
	const unsigned char	*s;
	size_t			 len, pos;
	char			*ptr;		/* pcap = 2 * len + 1 bytes */
	size_t			 plen, pcap;
	struct jt_frame		*stack;
	int			 depth, cap;
	jsontext_visit		 visit;
	void			*arg;
};

static void
jt_ws(struct jt *t)
{
	while (t->pos < t->len && (t->s[t->pos] == ' ' ||
	    t->s[t->pos] == '\t' || t->s[t->pos] == '\n' ||
	    t->s[t->pos] == '\r'))
		t->pos++;
}

static int
jt_peek(const struct jt *t, char c)
{
	return (t->pos < t->len && t->s[t->pos] == (unsigned char)c);
}

static void
jt_ptr_set(struct jt *t, size_t len)
{
	t->plen = len;
	t->ptr[len] = '\0';
}

/* Decoded name bytes onto the pointer, escaped as one token. */
static void
jt_name_put(struct jt *t, const char *b, size_t n)
{
	t->plen += jsonptr_escape(t->ptr + t->plen, b, n);
}

static int
jt_hex4(struct jt *t, uint32_t *v)
{
	size_t	 i;
	int	 c;

	if (t->len - t->pos < 4)
		return (-1);
	for (*v = 0, i = 0; i < 4; i++) {
		c = t->s[t->pos + i];
		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return (-1);
		*v = *v << 4 | (uint32_t)c;
	}
	t->pos += 4;
	return (0);
}

/* After "\u": one code point, a surrogate pair counting as one. */
static int
jt_unicode_escape(struct jt *t, uint32_t *cp)
{
	uint32_t	 lo;

	if (jt_hex4(t, cp) == -1 || (*cp >= 0xdc00 && *cp <= 0xdfff))
		return (-1);
	if (*cp >= 0xd800 && *cp <= 0xdbff) {
		if (t->len - t->pos < 2 || t->s[t->pos] != '\\' ||
		    t->s[t->pos + 1] != 'u')
			return (-1);
		t->pos += 2;
		if (jt_hex4(t, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
			return (-1);
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return (*cp == 0 ? -1 : 0);
}

/* After a backslash: one escape, its decoded bytes into out. */
static int
jt_escape(struct jt *t, char out[4], size_t *n)
{
	static const char	 from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char		*e;
	uint32_t		 cp;

	if (t->pos >= t->len)
		return (-1);
	if (t->s[t->pos] == 'u') {
		t->pos++;
		if (jt_unicode_escape(t, &cp) == -1)
			return (-1);
		*n = utf8_encode(cp, out);
		return (0);
	}
	if (t->s[t->pos] == '\0' ||
	    (e = strchr(from, t->s[t->pos])) == NULL)
		return (-1);
	out[0] = to[e - from];
	*n = 1;
	t->pos++;
	return (0);
}

/* A string at t->pos (its opening quote); a member name (as_name) is
 * appended, decoded and escaped, to the pointer. */
static int
jt_string(struct jt *t, int as_name)
{
	char		 buf[4];
	size_t		 n;
	uint32_t	 cp;

	t->pos++;
	for (;;) {
		if (t->pos >= t->len || t->s[t->pos] < 0x20)
			return (-1);
		if (t->s[t->pos] == '"') {
			t->pos++;
			return (0);
		}
		if (t->s[t->pos] == '\\') {
			t->pos++;
			if (jt_escape(t, buf, &n) == -1)
				return (-1);
			if (as_name)
				jt_name_put(t, buf, n);
			continue;
		}
		if ((n = utf8_decode(t->s + t->pos, t->len - t->pos, &cp)) == 0)
			return (-1);
		if (as_name)
			jt_name_put(t, (const char *)t->s + t->pos, n);
		t->pos += n;
	}
}

static size_t
jt_digits(struct jt *t)
{
	size_t	 start = t->pos;

	while (t->pos < t->len && t->s[t->pos] >= '0' && t->s[t->pos] <= '9')
		t->pos++;
	return (t->pos - start);
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
jt_number(struct jt *t)
{
	if (jt_peek(t, '-'))
		t->pos++;
	if (jt_peek(t, '0'))
		t->pos++;
	else if (jt_digits(t) == 0)
		return (-1);
	if (jt_peek(t, '.')) {
		t->pos++;
		if (jt_digits(t) == 0)
			return (-1);
	}
	if (jt_peek(t, 'e') || jt_peek(t, 'E')) {
		t->pos++;
		if (jt_peek(t, '+') || jt_peek(t, '-'))
			t->pos++;
		if (jt_digits(t) == 0)
			return (-1);
	}
	return (0);
}

static int
jt_literal(struct jt *t, const char *word, size_t n)
{
	if (t->len - t->pos < n || memcmp(t->s + t->pos, word, n) != 0)
		return (-1);
	t->pos += n;
	return (0);
}

/* A scalar at t->pos: its kind, or -1. */
static int
jt_scalar(struct jt *t)
{
	switch (t->pos < t->len ? t->s[t->pos] : 0) {
	case '"':
		return (jt_string(t, 0) == 0 ? JSONTEXT_STRING : -1);
	case 't':
		return (jt_literal(t, "true", 4) == 0 ? JSONTEXT_TRUE : -1);
	case 'f':
		return (jt_literal(t, "false", 5) == 0 ? JSONTEXT_FALSE : -1);
	case 'n':
		return (jt_literal(t, "null", 4) == 0 ? JSONTEXT_NULL : -1);
	default:
		return (jt_number(t) == 0 ? JSONTEXT_NUMBER : -1);
	}
}

static int
jt_emit(struct jt *t, enum jsontext_kind kind, size_t start)
{
	struct jsontext_value	 v;

	v.kind = kind;
	v.text = (const char *)t->s + start;
	v.len = t->pos - start;
	v.pointer = t->ptr;
	v.pointer_len = t->plen;
	v.depth = t->depth;
	return (t->visit(&v, t->arg));
}

/* A member name and its colon, at t->pos inside an object: the pointer
 * becomes the object's plus "/name". */
static int
jt_member(struct jt *t)
{
	if (!jt_peek(t, '"'))
		return (-1);
	jt_ptr_set(t, t->stack[t->depth - 1].ptr_len);
	t->ptr[t->plen++] = '/';
	if (jt_string(t, 1) == -1)
		return (-1);
	t->ptr[t->plen] = '\0';
	jt_ws(t);
	if (!jt_peek(t, ':'))
		return (-1);
	t->pos++;
	jt_ws(t);
	return (0);
}

/* The pointer of element index of the innermost (array) frame. */
static void
jt_element(struct jt *t)
{
	struct jt_frame	*f = &t->stack[t->depth - 1];

	jt_ptr_set(t, f->ptr_len);
	t->plen += (size_t)snprintf(t->ptr + t->plen, t->pcap - t->plen, "/%zu",
	    f->index);
}

static int
jt_push(struct jt *t, enum jsontext_kind kind)
{
	struct jt_frame	*f;
	int		 cap;

	if (t->depth == JSONTEXT_MAX_DEPTH)
		return (-1);
	if (t->depth == t->cap) {
		cap = t->cap ? t->cap * 2 : 16;
		if ((f = reallocarray(t->stack, (size_t)cap, sizeof(*f))) ==
		    NULL)
			return (-2);
		t->stack = f;
		t->cap = cap;
	}
	f = &t->stack[t->depth++];
	f->kind = kind;
	f->start = t->pos;
	f->ptr_len = t->plen;
	f->index = 0;
	t->pos++;		/* the bracket */
	jt_ws(t);
	return (0);
}

/*
 * After a value: close every array and object that ends here (visiting
 * each), then either move to the next member or element (0: a value
 * starts at t->pos) or, at the top, require the end of the text (1).
 */
static enum jsontext_result
jt_after_value(struct jt *t, int *more)
{
	struct jt_frame	*f;
	char		 close;

	for (;;) {
		jt_ws(t);
		if (t->depth == 0) {
			*more = 0;
			return (t->pos == t->len ? JSONTEXT_OK :
			    JSONTEXT_INVALID);
		}
		f = &t->stack[t->depth - 1];
		if (jt_peek(t, ',')) {
			t->pos++;
			jt_ws(t);
			*more = 1;
			if (f->kind == JSONTEXT_ARRAY) {
				f->index++;
				jt_element(t);
				return (JSONTEXT_OK);
			}
			return (jt_member(t) == 0 ? JSONTEXT_OK :
			    JSONTEXT_INVALID);
		}
		close = f->kind == JSONTEXT_ARRAY ? ']' : '}';
		if (!jt_peek(t, close))
			return (JSONTEXT_INVALID);
		t->pos++;
		jt_ptr_set(t, f->ptr_len);
		t->depth--;
		if (jt_emit(t, f->kind, f->start) != 0)
			return (JSONTEXT_STOPPED);
	}
}

/* Open an array or object at t->pos; *empty when it closes at once. */
static enum jsontext_result
jt_open(struct jt *t, enum jsontext_kind kind, int *empty)
{
	int	 r;

	if ((r = jt_push(t, kind)) != 0)
		return (r == -2 ? JSONTEXT_NOMEM : JSONTEXT_INVALID);
	*empty = jt_peek(t, kind == JSONTEXT_ARRAY ? ']' : '}');
	if (*empty) {
		/* jt_after_value closes it: it sees the bracket. */
		return (JSONTEXT_OK);
	}
	if (kind == JSONTEXT_ARRAY) {
		jt_element(t);
		return (JSONTEXT_OK);
	}
	return (jt_member(t) == 0 ? JSONTEXT_OK : JSONTEXT_INVALID);
}

static enum jsontext_result
jt_run(struct jt *t)
{
	enum jsontext_result	 r;
	size_t			 start;
	int			 kind, more = 1, empty;

	jt_ws(t);
	while (more) {
		if (jt_peek(t, '[') || jt_peek(t, '{')) {
			r = jt_open(t, jt_peek(t, '[') ? JSONTEXT_ARRAY :
			    JSONTEXT_OBJECT, &empty);
			if (r != JSONTEXT_OK)
				return (r);
			if (!empty)
				continue;
		} else {
			start = t->pos;
			if ((kind = jt_scalar(t)) < 0)
				return (JSONTEXT_INVALID);
			if (jt_emit(t, (enum jsontext_kind)kind, start) != 0)
				return (JSONTEXT_STOPPED);
		}
		if ((r = jt_after_value(t, &more)) != JSONTEXT_OK)
			return (r);
	}
	return (JSONTEXT_OK);
}

enum jsontext_result
jsontext_walk(const char *text, size_t len, jsontext_visit visit, void *arg)
{
	struct jt		 t;
	enum jsontext_result	 r;

	memset(&t, 0, sizeof(t));
	if (len > (SIZE_MAX - 1) / 2)
		return (JSONTEXT_NOMEM);
	t.s = (const unsigned char *)text;
	t.len = len;
	t.visit = visit;
	t.arg = arg;
	t.pcap = 2 * len + 1;
	if ((t.ptr = malloc(t.pcap)) == NULL)
		return (JSONTEXT_NOMEM);
	t.ptr[0] = '\0';
	r = jt_run(&t);
	free(t.ptr);
	free(t.stack);
	return (r);
}

/* --- lookups ----------------------------------------------------------- */

struct jt_find {
	const char		*ptr;
	size_t			 ptr_len;
	struct jsontext_value	*out;
	int			 found;
};

static int
jt_find_visit(const struct jsontext_value *v, void *arg)
{
	struct jt_find	*f = arg;

	if (v->pointer_len == f->ptr_len &&
	    memcmp(v->pointer, f->ptr, f->ptr_len) == 0) {
		*f->out = *v;
		f->out->pointer = f->ptr;
		f->found++;
	}
	return (0);
}

enum jsontext_result
jsontext_find(const char *text, size_t len, const char *ptr, size_t ptr_len,
    struct jsontext_value *out)
{
	struct jt_find		 f = { ptr, ptr_len, out, 0 };
	enum jsontext_result	 r;

	memset(out, 0, sizeof(*out));
	if (jsonptr_check(ptr, ptr_len) != NULL)
		return (JSONTEXT_BAD_POINTER);
	r = jsontext_walk(text, len, jt_find_visit, &f);
	if (r == JSONTEXT_OK && f.found != 1)
		r = f.found == 0 ? JSONTEXT_ABSENT : JSONTEXT_DUPLICATE;
	if (r != JSONTEXT_OK)
		memset(out, 0, sizeof(*out));
	return (r);
}

enum jsontext_result
jsontext_number_at(const char *text, size_t len, const char *ptr,
    size_t ptr_len, const char **num, size_t *num_len)
{
	struct jsontext_value	 v;
	enum jsontext_result	 r;

	*num = NULL;
	*num_len = 0;
	if ((r = jsontext_find(text, len, ptr, ptr_len, &v)) != JSONTEXT_OK)
		return (r);
	if (v.kind != JSONTEXT_NUMBER)
		return (JSONTEXT_NOT_NUMBER);
	*num = v.text;
	*num_len = v.len;
	return (JSONTEXT_OK);
}
