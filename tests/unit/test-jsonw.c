/*
 * test-jsonw: the three styles of jsonw.
 *  - JSONW_LEGACY writes exactly the bytes jansson's json_dumps writes
 *    (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) for a table of
 *    awkward values and 20,000 random trees: audit records of format 1
 *    are re-derived with it.
 *  - JSONW_JCS is RFC 8785: the number examples of its Appendix B, the
 *    sample object of §3.2.2 and the sorting example of §3.2.3 (written
 *    in here from the RFC text), string escapes, and what it refuses.
 *  - JSONW_PLAIN keeps insertion order with JCS strings and numbers.
 *  - jsonw_pretty is JSONW_PLAIN laid out as jansson's JSON_INDENT(2),
 *    reads back as the same value, and with JSONW_ASCII is pure ASCII.
 * tests/integration/test_jcs.py compares JSONW_JCS with an independent
 * Python implementation on random values.
 */
#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonw.h"
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

/* --- RFC 8785 -------------------------------------------------------- */

static double
from_bits(uint64_t bits)
{
	double	 d;

	memcpy(&d, &bits, sizeof(d));
	return (d);
}

/* RFC 8785 Appendix B: IEEE 754 bits → the JSON text ES6 writes. */
static void
rfc8785_numbers(void)
{
	static const struct {
		uint64_t	 bits;
		const char	*json;		/* NULL: no JSON form */
	} t[] = {
		{ 0x0000000000000000ULL, "0" },
		{ 0x8000000000000000ULL, "0" },		/* minus zero */
		{ 0x0000000000000001ULL, "5e-324" },	/* min pos number */
		{ 0x8000000000000001ULL, "-5e-324" },	/* min neg number */
		{ 0x7fefffffffffffffULL, "1.7976931348623157e+308" },
		{ 0xffefffffffffffffULL, "-1.7976931348623157e+308" },
		{ 0x4340000000000000ULL, "9007199254740992" },
		{ 0xc340000000000000ULL, "-9007199254740992" },
		{ 0x4430000000000000ULL, "295147905179352830000" },
		{ 0x7fffffffffffffffULL, NULL },	/* NaN */
		{ 0x7ff0000000000000ULL, NULL },	/* Infinity */
		{ 0x44b52d02c7e14af5ULL, "9.999999999999997e+22" },
		{ 0x44b52d02c7e14af6ULL, "1e+23" },
		{ 0x44b52d02c7e14af7ULL, "1.0000000000000001e+23" },
		{ 0x444b1ae4d6e2ef4eULL, "999999999999999700000" },
		{ 0x444b1ae4d6e2ef4fULL, "999999999999999900000" },
		{ 0x444b1ae4d6e2ef50ULL, "1e+21" },
		{ 0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7" },
		{ 0x3eb0c6f7a0b5ed8dULL, "0.000001" },
		{ 0x41b3de4355555553ULL, "333333333.3333332" },
		{ 0x41b3de4355555554ULL, "333333333.33333325" },
		{ 0x41b3de4355555555ULL, "333333333.3333333" },
		{ 0x41b3de4355555556ULL, "333333333.3333334" },
		{ 0x41b3de4355555557ULL, "333333333.33333343" },
		{ 0xbecbf647612f3696ULL, "-0.0000033333333333333333" },
		{ 0x43143ff3c1cb0959ULL, "1424953923781206.2" },  /* to even */
	};
	char	 out[JSONW_NUMBER_MAX];
	size_t	 i;
	int	 n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = jsonw_number(from_bits(t[i].bits), out);
		if (t[i].json == NULL) {
			CHECK(n == -1);
			continue;
		}
		if (n < 0 || strcmp(out, t[i].json) != 0)
			fprintf(stderr, "%016llx: got %s, want %s\n",
			    (unsigned long long)t[i].bits, n < 0 ? "-1" : out,
			    t[i].json);
		CHECK(n >= 0 && strcmp(out, t[i].json) == 0);
		CHECK((size_t)n == strlen(out));
	}
}

/* More ES6 forms: the edges of plain and exponent notation. */
static void
es_forms(void)
{
	static const struct {
		double		 d;
		const char	*json;
	} t[] = {
		{ 0.1, "0.1" }, { 1000.0, "1000" }, { 1e20, "100000000000000000000" },
		{ 1e21, "1e+21" }, { 1.5e21, "1.5e+21" }, { 1e-6, "0.000001" },
		{ 1e-7, "1e-7" }, { 1.25e-7, "1.25e-7" }, { 123e-20, "1.23e-18" },
		{ -1.5, "-1.5" }, { 4.5, "4.5" }, { 2e-3, "0.002" },
		{ 1e30, "1e+30" }, { 0.30000000000000004, "0.30000000000000004" },
		{ 5e-324, "5e-324" }, { 1e23, "1e+23" }, { 100.0, "100" },
		{ 123456789012345680000.0, "123456789012345680000" },
	};
	char	 out[JSONW_NUMBER_MAX];
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		jsonw_number(t[i].d, out);
		if (strcmp(out, t[i].json) != 0) {
			/* fputs: GCC's -Wformat-overflow misreads the table. */
			fprintf(stderr, "%.17g: got ", t[i].d);
			fputs(out, stderr);
			fputs(", want ", stderr);
			fputs(t[i].json, stderr);
			fputc('\n', stderr);
		}
		CHECK(strcmp(out, t[i].json) == 0);
	}
}

/* Every power of two (where the gap below is half the gap above, the
 * case that needs the second candidate) and random doubles read back. */
static void
round_trips(void)
{
	char	 out[JSONW_NUMBER_MAX];
	int	 e, i;
	double	 d;
	uint64_t bits;

	for (e = -1074; e <= 1023; e++) {
		d = ldexp(1.0, e);
		CHECK(jsonw_number(d, out) > 0 && strtod(out, NULL) == d);
	}
	for (i = 0; i < 100000; i++) {
		bits = (uint64_t)rnd(1u << 31) << 33 ^ (uint64_t)rnd(1u << 31)
		    << 2 ^ rnd(4);
		d = from_bits(bits);
		if (!isfinite(d))
			continue;
		CHECK(jsonw_number(d, out) > 0 && strtod(out, NULL) == d);
	}
}

static void
check_jcs(const char *in, const char *want)
{
	json_error_t	 err;
	json_t		*v = json_loads(in, JSON_DECODE_ANY, &err);
	char		*got;

	if (v == NULL)
		fprintf(stderr, "bad fixture %s: %s\n", in, err.text);
	CHECK(v != NULL);
	got = jsonw_dump(v, JSONW_JCS, NULL);
	if (got == NULL || strcmp(got, want) != 0)
		fprintf(stderr, "JCS of %s\n got  %s\n want %s\n", in,
		    got ? got : "(refused)", want);
	CHECK(got != NULL && strcmp(got, want) == 0);
	free(got);
	json_decref(v);
}

static void
rfc8785_objects(void)
{
	/* §3.2.2, the sample object and its canonical form. */
	check_jcs("{\n"
	    "  \"numbers\": [333333333.33333329, 1E30, 4.50,\n"
	    "              2e-3, 0.000000000000000000000000001],\n"
	    "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022"
	    "\\u005c\\\\\\\"\\/\",\n"
	    "  \"literals\": [null, true, false]\n"
	    "}",
	    "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,"
	    "1e+30,4.5,0.002,1e-27],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B"
	    "\\\"\\\\\\\\\\\"/\"}");
	/* §3.2.3, sorting by UTF-16 code units: the emoji (D83D DE00)
	 * before U+FB33, though its UTF-8 (F0...) sorts after EF AC B3. */
	check_jcs("{\n"
	    "  \"\\u20ac\": \"Euro Sign\",\n"
	    "  \"\\r\": \"Carriage Return\",\n"
	    "  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n"
	    "  \"1\": \"One\",\n"
	    "  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n"
	    "  \"\\u0080\": \"Control\",\n"
	    "  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n"
	    "}",
	    "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":"
	    "\"Control\",\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
	    "\"\xe2\x82\xac\":\"Euro Sign\",\"\xf0\x9f\x98\x80\":\"Emoji: "
	    "Grinning Face\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With "
	    "Dagesh\"}");
	/* Escapes: the short forms, other controls as \u00xx in small
	 * letters; DEL, U+2028 and '/' are not escaped. */
	check_jcs("[\"\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f\\u2028/\"]",
	    "[\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xe2\x80\xa8/\"]");
	/* Nested objects sorted too, arrays keep their order, -0 is 0. */
	check_jcs("{\"b\":[3,1,{\"z\":1,\"a\":-0.0}],\"a\":{\"\":true}}",
	    "{\"a\":{\"\":true},\"b\":[3,1,{\"a\":0,\"z\":1}]}");
	/* A prefix sorts first; the sort is not by byte only. */
	check_jcs("{\"ab\":1,\"a\":2,\"\\uffff\":3,\"\\ud800\\udc00\":4}",
	    "{\"a\":2,\"ab\":1,\"\xf0\x90\x80\x80\":4,\"\xef\xbf\xbf\":3}");
}

/* JSONW_JCS refuses numbers its readers would not keep; the others do
 * not refuse them. */
static void
jcs_refusals(void)
{
	static const char *const refused[] = {
		"9007199254740993", "-9007199254740993", "9223372036854775807",
		"1e16", "1.5e17", "-1e20", "[1,{\"a\":9007199254740994}]",
	};
	static const char *const kept[] = {
		"9007199254740992", "-9007199254740992", "1e21", "1e300",
		"9007199254740992.0",
	};
	json_t	*v;
	char	*s;
	size_t	 i;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		v = json_loads(refused[i], JSON_DECODE_ANY, NULL);
		CHECK(v != NULL);
		CHECK(jsonw_dump(v, JSONW_JCS, NULL) == NULL);
		CHECK((s = jsonw_dump(v, JSONW_PLAIN, NULL)) != NULL);
		free(s);
		CHECK((s = jsonw_dump(v, JSONW_LEGACY, NULL)) != NULL);
		free(s);
		json_decref(v);
	}
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		v = json_loads(kept[i], JSON_DECODE_ANY, NULL);
		CHECK(v != NULL);
		CHECK((s = jsonw_dump(v, JSONW_JCS, NULL)) != NULL);
		free(s);
		json_decref(v);
	}
}

/* Plain: insertion order, JCS strings and numbers (an integral real
 * keeps ".0"), exact integers. */
static void
plain(void)
{
	json_t	*v = json_loads("{\"z\":0.1,\"a\":[1e3,\"\\u001f\",1000,"
		    "-0.0,1e21,2.5],\"m\":9007199254740993}", 0, NULL);
	char	*s;

	CHECK(v != NULL);
	s = jsonw_dump(v, JSONW_PLAIN, NULL);
	if (s == NULL || strcmp(s, "{\"z\":0.1,\"a\":[1000.0,\"\\u001f\","
	    "1000,-0.0,1e+21,2.5],\"m\":9007199254740993}") != 0)
		fprintf(stderr, "plain: %s\n", s ? s : "(null)");
	CHECK(s != NULL && strcmp(s, "{\"z\":0.1,\"a\":[1000.0,\"\\u001f\","
	    "1000,-0.0,1e+21,2.5],\"m\":9007199254740993}") == 0);
	free(s);
	/* The same value in RFC 8785: 1000 either way, -0 is 0. */
	json_object_del(v, "m");
	s = jsonw_dump(v, JSONW_JCS, NULL);
	CHECK(s != NULL && strcmp(s, "{\"a\":[1000,\"\\u001f\",1000,0,"
	    "1e+21,2.5],\"z\":0.1}") == 0);
	free(s);
	json_decref(v);
}

/* jsonw_pretty: jansson's indented layout, plain numbers (0.1 is not
 * 0.10000000000000001), and JSONW_ASCII escapes all but ASCII. */
static void
pretty(void)
{
	static const char want[] =
	    "{\n  \"z\": 0.1,\n  \"a\": [\n    1000.0,\n    \"x\",\n"
	    "    {}\n  ],\n  \"e\": [],\n  \"o\": {\n    \"k\": null\n"
	    "  }\n}";
	json_t	*v = json_loads("{\"z\":0.1,\"a\":[1e3,\"x\",{}],\"e\":[],"
		    "\"o\":{\"k\":null}}", 0, NULL), *back, *flat;
	char	*s, *j;
	size_t	 len, i;
	int	 k;

	CHECK(v != NULL);
	s = jsonw_pretty(v, 0, &len);
	if (s == NULL || strcmp(s, want) != 0)
		fprintf(stderr, "pretty: %s\n", s ? s : "(null)");
	CHECK(s != NULL && strcmp(s, want) == 0 && len == strlen(want));
	free(s);
	/* Same layout as jansson's where the numbers agree. */
	json_object_del(v, "z");
	json_array_remove(json_object_get(v, "a"), 0);
	s = jsonw_pretty(v, 0, NULL);
	j = json_dumps(v, JSON_INDENT(2));
	CHECK(s != NULL && j != NULL && strcmp(s, j) == 0);
	free(s);
	free(j);
	json_decref(v);

	v = json_pack("{s s}", "p\xc3\xa9", "\xc2\x9b\xe2\x80\xae\xf0\x9f"
	    "\x98\x80\x7f");
	s = jsonw_pretty(v, JSONW_ASCII, NULL);
	CHECK(s != NULL && strcmp(s, "{\n  \"p\\u00e9\": \"\\u009b\\u202e"
	    "\\ud83d\\ude00\x7f\"\n}") == 0);
	free(s);
	s = jsonw_pretty(v, 0, NULL);
	CHECK(s != NULL && strstr(s, "\xc2\x9b") != NULL);
	free(s);
	json_decref(v);

	/* Reads back as the compact plain text does (jansson refuses a NUL
	 * in a name either way). */
	for (k = 0; k < 2000; k++) {
		v = random_value(0);
		s = jsonw_pretty(v, k % 2 ? JSONW_ASCII : 0, &len);
		j = jsonw_dump(v, JSONW_PLAIN, NULL);
		CHECK(s != NULL && j != NULL);
		back = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    NULL);
		flat = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		CHECK((back == NULL) == (flat == NULL));
		CHECK(back == NULL || json_equal(back, v));
		for (i = 0; k % 2 && i < len; i++)
			CHECK((unsigned char)s[i] < 0x80);
		json_decref(back);
		json_decref(flat);
		free(s);
		free(j);
		json_decref(v);
	}
}

int
main(void)
{
	json_t	*v;
	int	 i;

	json_object_seed(1);
	rfc8785_numbers();
	es_forms();
	rfc8785_objects();
	jcs_refusals();
	plain();
	pretty();
	round_trips();
	table();
	for (i = 0; i < 20000; i++) {
		v = random_value(0);
		check_same(v);
		json_decref(v);
	}
	printf("test-jsonw: %d checks passed\n", passed);
	return (0);
}
