/*
 * test-jsonw: jsonw writes exactly the bytes jansson's json_dumps writes
 * (JSON_COMPACT | JSON_ENCODE_ANY, with and without JSON_SORT_KEYS) — for
 * a table of awkward values and for 20,000 random trees — since audit
 * records hashed by jansson must still verify.
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonw-diff.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

static void
check_same(const json_t *v)
{
	CHECK(jsonw_diff(v) == NULL);
}

static void
check_text(const char *text)
{
	json_error_t	 err;
	json_t		*v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    &err);

	if (v == NULL)
		fprintf(stderr, "bad fixture %s: %s\n", text, err.text);
	CHECK(v != NULL);
	check_same(v);
	json_decref(v);
}

static void
table(void)
{
	static const char *const texts[] = {
		"null", "true", "false", "0", "-1", "9223372036854775807",
		"-9223372036854775808", "1.5", "-0.0", "1e300", "0.1",
		"\"\"", "\"plain\"", "\"q\\\"b\\\\s/\"",
		"\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"",
		"\"\\u00e9\\u4e2d\\ud83d\\ude00\"", "\"\\u2028\\u2029\"",
		"[]", "{}", "[[],{},[{}]]",
		"{\"b\":1,\"a\":2,\"ab\":3,\"aa\":4,\"\":5,\"B\":6}",
		"{\"\\u00e9\":1,\"e\":2,\"\\u007f\":3,\"~\":4}",
		"{\"k\\n\":\"v\\u0000x\"}",
		"{\"args\":{\"to\":\"a@b\",\"n\":[1,2.25,true,null]}}",
	};
	size_t	 i;
	json_t	*o;
	char	 key[8];

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		check_text(texts[i]);

	/* Strings and keys with NUL bytes (jansson's length-aware API). */
	o = json_object();
	json_object_setn_new(o, "a\0b", 3, json_stringn("x\0y", 3));
	json_object_setn_new(o, "a", 1, json_integer(1));
	json_object_setn_new(o, "a\0", 2, json_integer(2));
	check_same(o);
	json_decref(o);

	/* More keys than jsonw sorts on the stack. */
	o = json_object();
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%zu", (i * 37) % 100);
		json_object_set_new(o, key, json_integer((json_int_t)i));
	}
	check_same(o);
	json_decref(o);
}

/* xorshift: the same trees on every run. */
static uint64_t	 rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((unsigned)(rng % n));
}

/* Short strings from an alphabet of the characters that matter. */
static json_t *
random_string(size_t *len, char *buf, size_t cap)
{
	static const char *const parts[] = { "a", "b", "A", "\"", "\\", "/",
	    "\n", "\x01", "\x1f", "\x7f", " ", "\xc3\xa9", "\xe4\xb8\xad",
	    "\xf0\x9f\x98\x80", "\0" };
	size_t	 n = rnd(6), i, k;

	*len = 0;
	for (i = 0; i < n; i++) {
		const char *p = parts[rnd(sizeof(parts) / sizeof(parts[0]))];

		k = p[0] == '\0' ? 1 : strlen(p);
		if (*len + k >= cap)
			break;
		memcpy(buf + *len, p, k);
		*len += k;
	}
	return (json_stringn(buf, *len));
}

static json_t *
random_value(int depth)
{
	static const json_int_t ints[] = { 0, 1, -1, 42, INT64_MAX,
	    INT64_MIN, 1000000 };
	char	 buf[64];
	size_t	 len, i, n;
	json_t	*v;

	switch (depth > 4 ? rnd(6) : rnd(8)) {
	case 0: return (json_null());
	case 1: return (json_boolean(rnd(2)));
	case 2: return (json_integer(ints[rnd(7)]));
	case 3: return (json_real((double)rnd(1000) / 8.0 - 50.0));
	case 4:
	case 5: return (random_string(&len, buf, sizeof(buf)));
	case 6:
		v = json_array();
		for (i = 0, n = rnd(5); i < n; i++)
			json_array_append_new(v, random_value(depth + 1));
		return (v);
	default:
		v = json_object();
		for (i = 0, n = rnd(7); i < n; i++) {
			json_decref(random_string(&len, buf, sizeof(buf)));
			json_object_setn_new(v, buf, len,
			    random_value(depth + 1));
		}
		return (v);
	}
}

int
main(void)
{
	json_t	*v;
	int	 i;

	json_object_seed(1);
	table();
	for (i = 0; i < 20000; i++) {
		v = random_value(0);
		check_same(v);
		json_decref(v);
	}
	printf("test-jsonw: %d checks passed\n", passed);
	return (0);
}
