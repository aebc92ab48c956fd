/*
 * jsonw: compact JSON text of a jansson value, byte for byte what jansson's
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY [| JSON_SORT_KEYS]) gives.
 *
 * Why not json_dumps itself: it guards every array and object against
 * reference cycles by printing the container's address into a hash table,
 * and hands each output fragment to a callback, which made it a tenth of a
 * decision's CPU (the answer, the grant claims and three canonical dumps
 * per decision).  Our values are trees built or parsed by us, so the
 * cycle check buys nothing; the rest is a straight walk into one buffer.
 *
 * Equality with jansson is what the audit chain depends on (records hashed
 * before this existed must still verify): tests/unit/test-jsonw.c and the
 * audit fuzz target compare the two on every input they see.  Reals, which
 * only an agent's args can hold, are still printed by jansson.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

struct jsonw {
	char	*buf;
	size_t	 len, cap;
	int	 failed;
};

/* Members of one object, gathered to be sorted; most fit on the stack. */
#define JSONW_STACK_MEMBERS	32

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

/* jansson escapes exactly these: quote, backslash, control characters.
 * Its strings are valid UTF-8, which passes through unchanged. */
static void
jsonw_escape(struct jsonw *w, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char	 seq[6] = { '\\', 'u', '0', '0', 0, 0 };

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

static void
jsonw_string(struct jsonw *w, const char *s, size_t len)
{
	size_t	 i, run = 0;

	jsonw_char(w, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jsonw_put(w, s + run, i - run);
		jsonw_escape(w, c);
		run = i + 1;
	}
	jsonw_put(w, s + run, len - run);
	jsonw_char(w, '"');
}

static void jsonw_value(struct jsonw *, const json_t *, int);

static void
jsonw_array(struct jsonw *w, const json_t *v, int sorted)
{
	size_t	 i, n = json_array_size(v);

	jsonw_char(w, '[');
	for (i = 0; i < n; i++) {
		if (i > 0)
			jsonw_char(w, ',');
		jsonw_value(w, json_array_get(v, i), sorted);
	}
	jsonw_char(w, ']');
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

/* Members in insertion order (jansson's, unsorted) or sorted by key.  The
 * iterators want a non-const object; nothing is changed. */
static void
jsonw_object(struct jsonw *w, json_t *v, int sorted)
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
	if (sorted)
		qsort(m, n, sizeof(*m), jsonw_member_cmp);
	jsonw_char(w, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			jsonw_char(w, ',');
		jsonw_string(w, m[i].key, m[i].len);
		jsonw_char(w, ':');
		jsonw_value(w, m[i].value, sorted);
	}
	jsonw_char(w, '}');
	if (m != stack)
		free(m);
}

/* A real, printed by jansson so that its digits are jansson's. */
static void
jsonw_real(struct jsonw *w, const json_t *v)
{
	char	*text = json_dumps(v, JSON_ENCODE_ANY);

	if (text == NULL) {
		w->failed = 1;
		return;
	}
	jsonw_put(w, text, strlen(text));
	free(text);
}

static void
jsonw_value(struct jsonw *w, const json_t *v, int sorted)
{
	char	num[24];
	int	n;

	if (v == NULL) {
		w->failed = 1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL:  jsonw_put(w, "null", 4); return;
	case JSON_TRUE:  jsonw_put(w, "true", 4); return;
	case JSON_FALSE: jsonw_put(w, "false", 5); return;
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		jsonw_put(w, num, (size_t)n);
		return;
	case JSON_REAL:
		jsonw_real(w, v);
		return;
	case JSON_STRING:
		jsonw_string(w, json_string_value(v), json_string_length(v));
		return;
	case JSON_ARRAY:
		jsonw_array(w, v, sorted);
		return;
	case JSON_OBJECT:
		jsonw_object(w, (json_t *)(uintptr_t)v, sorted);
		return;
	}
	w->failed = 1;
}

char *
jsonw_dump(const json_t *v, int sorted, size_t *len)
{
	struct jsonw	 w = { NULL, 0, 0, 0 };

	jsonw_value(&w, v, sorted);
	jsonw_char(&w, '\0');
	if (w.failed) {
		free(w.buf);
		return (NULL);
	}
	if (len != NULL)
		*len = w.len - 1;
	return (w.buf);
}
