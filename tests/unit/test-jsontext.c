/*
 * test-jsontext: the JSON text reader — every value's exact text and
 * RFC 6901 pointer in document order, member names decoded from their
 * escapes, the strict grammar (a table of texts jansson also refuses or
 * accepts, and its depth limit), and the lookups amount_from uses: the
 * number at a pointer returned exactly as written.
 */
#undef NDEBUG
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsontext.h"
#include "check.h"

static int	passed, failed;

static const char *const kinds[] = { "null", "false", "true", "number",
    "string", "array", "object" };

struct trace {
	char	 out[4096];
	size_t	 len;
	int	 stop_after;		/* 0: never */
	int	 seen;
};

/* One line per value: "depth pointer kind text". */
static int
trace_visit(const struct jsontext_value *v, void *arg)
{
	struct trace	*t = arg;
	int		 n;

	CHECK(strlen(v->pointer) == v->pointer_len, "pointer NUL");
	n = snprintf(t->out + t->len, sizeof(t->out) - t->len, "%d %s %s "
	    "%.*s\n", v->depth, v->pointer, kinds[v->kind], (int)v->len,
	    v->text);
	if (n > 0 && (size_t)n < sizeof(t->out) - t->len)
		t->len += (size_t)n;
	return (++t->seen == t->stop_after);
}

static void
check_trace(const char *text, const char *want)
{
	struct trace		 t;
	enum jsontext_result	 r;

	memset(&t, 0, sizeof(t));
	r = jsontext_walk(text, strlen(text), trace_visit, &t);
	CHECK(r == JSONTEXT_OK, "%s: result %d", text, r);
	CHECK(strcmp(t.out, want) == 0, "%s:\ngot:\n%swant:\n%s", text, t.out,
	    want);
}

static void
walks(void)
{
	check_trace(" {\"a\": [1, 2.50, {\"b\": -0}], \"c\": \"x\\ty\", "
	    "\"d\": {}, \"e\": [], \"f\": [true, false, null]} ",
	    "2 /a/0 number 1\n"
	    "2 /a/1 number 2.50\n"
	    "3 /a/2/b number -0\n"
	    "2 /a/2 object {\"b\": -0}\n"
	    "1 /a array [1, 2.50, {\"b\": -0}]\n"
	    "1 /c string \"x\\ty\"\n"
	    "1 /d object {}\n"
	    "1 /e array []\n"
	    "2 /f/0 true true\n"
	    "2 /f/1 false false\n"
	    "2 /f/2 null null\n"
	    "1 /f array [true, false, null]\n"
	    "0  object {\"a\": [1, 2.50, {\"b\": -0}], \"c\": \"x\\ty\", "
	    "\"d\": {}, \"e\": [], \"f\": [true, false, null]}\n");
	/* Names decoded, then escaped for the pointer: "a/b" is "a~1b",
	 * "~" is "~0", escapes and surrogate pairs become UTF-8. */
	check_trace("{\"a/b\":1,\"\\u007e\":2,\"\\/\":3,\"\\u00e9\":4,"
	    "\"\\ud83d\\ude00\":5,\"\":6,\"~1\":7}",
	    "1 /a~1b number 1\n"
	    "1 /~0 number 2\n"
	    "1 /~1 number 3\n"
	    "1 /\xc3\xa9 number 4\n"
	    "1 /\xf0\x9f\x98\x80 number 5\n"
	    "1 / number 6\n"
	    "1 /~01 number 7\n"
	    "0  object {\"a/b\":1,\"\\u007e\":2,\"\\/\":3,\"\\u00e9\":4,"
	    "\"\\ud83d\\ude00\":5,\"\":6,\"~1\":7}\n");
	check_trace("1e3", "0  number 1e3\n");
	check_trace("[[[]],[0]]",
	    "2 /0/0 array []\n"
	    "1 /0 array [[]]\n"
	    "2 /1/0 number 0\n"
	    "1 /1 array [0]\n"
	    "0  array [[[]],[0]]\n");
	check_trace("[0,1,2,3,4,5,6,7,8,9,10]",
	    "1 /0 number 0\n1 /1 number 1\n1 /2 number 2\n1 /3 number 3\n"
	    "1 /4 number 4\n1 /5 number 5\n1 /6 number 6\n1 /7 number 7\n"
	    "1 /8 number 8\n1 /9 number 9\n1 /10 number 10\n"
	    "0  array [0,1,2,3,4,5,6,7,8,9,10]\n");
}

static void
stops(void)
{
	struct trace	 t;

	memset(&t, 0, sizeof(t));
	t.stop_after = 2;
	/* The text after the stop is not read: its fault goes unseen. */
	CHECK(jsontext_walk("[1,2,3,x", 8, trace_visit, &t) ==
	    JSONTEXT_STOPPED, "stop");
	CHECK(t.seen == 2, "visited %d", t.seen);
}

static int
count_visit(const struct jsontext_value *v, void *arg)
{
	(*(int *)arg)++;
	return (0);
}

/* The reader's verdict agrees with jansson's (JSON_DECODE_ANY) on each. */
static void
grammar(void)
{
	static const char *const texts[] = {
		/* valid */
		"0", "-0", "1.5e-3", "1E+2", "-1.0e0", "\"\"", "\"\\u00e9\"",
		"[]", "{}", " [ 1 , 2 ] ", "\t\r\n{}\n", "\"\xe2\x82\xac\"",
		"{\"a\":{\"b\":[{}]}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"\x7f\"", "\"\xf4\x8f\xbf\xbf\"", "true", "null",
		/* invalid */
		"", " ", "01", "-", "1.", ".5", "+1", "1e", "1e+", "0x10",
		"NaN", "Infinity", "-Infinity", "tru", "nul", "True", "[1,]",
		"[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "[1 2]",
		"{\"a\":1 \"b\":2}", "[", "]", "{", "}", "\"abc", "\"a\nb\"",
		"\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"", "\"\xc3\"",
		"\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"",
		"\"\xff\"", "[1]x", "[1] [2]", "\xef\xbb\xbf[]", "// c\n1",
		"{\"a\":}", "{\"a\"}", "{,}", "[\"a\":1]",
		"{\"a\":1]", "[1}",
	};
	json_t	*v;
	size_t	 i, len;
	int	 ours, theirs, n;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		len = strlen(texts[i]);
		n = 0;
		ours = jsontext_walk(texts[i], len, count_visit, &n) ==
		    JSONTEXT_OK;
		v = json_loadb(texts[i], len, JSON_DECODE_ANY, NULL);
		theirs = v != NULL;
		json_decref(v);
		CHECK(ours == theirs, "%s: jsontext %s, jansson %s", texts[i],
		    ours ? "accepts" : "refuses", theirs ? "accepts" : "refuses");
	}
	n = 0;
	CHECK(jsontext_walk("[1]\0", 4, count_visit, &n) == JSONTEXT_INVALID,
	    "trailing NUL");
	/* Numbers jansson refuses (int64, double overflow) are text here. */
	CHECK(jsontext_walk("[99999999999999999999,1e400]", 28, count_visit,
	    &n) == JSONTEXT_OK, "big numbers are text");
}

static char *
nested(int depth, size_t *len)
{
	char	*s = malloc(2 * (size_t)depth + 1);
	int	 i;

	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[2 * depth - 1 - i] = ']';
	}
	s[2 * depth] = '\0';
	*len = 2 * (size_t)depth;
	return (s);
}

/* jansson's depth: 2048 nested arrays are fine, 2049 are not. */
static void
depth(void)
{
	size_t	 len;
	char	*s;
	int	 n = 0;
	json_t	*v;

	s = nested(JSONTEXT_MAX_DEPTH, &len);
	CHECK(jsontext_walk(s, len, count_visit, &n) == JSONTEXT_OK, "2048");
	CHECK(n == JSONTEXT_MAX_DEPTH, "visited %d", n);
	v = json_loadb(s, len, 0, NULL);
	CHECK(v != NULL, "jansson refuses 2048");
	json_decref(v);
	free(s);
	s = nested(JSONTEXT_MAX_DEPTH + 1, &len);
	CHECK(jsontext_walk(s, len, count_visit, &n) == JSONTEXT_INVALID,
	    "2049");
	CHECK(json_loadb(s, len, 0, NULL) == NULL, "jansson accepts 2049");
	free(s);
}

static void
check_number(const char *text, const char *ptr, enum jsontext_result want,
    const char *want_num)
{
	const char		*num;
	size_t			 len;
	enum jsontext_result	 r;

	r = jsontext_number_at(text, strlen(text), ptr, strlen(ptr), &num,
	    &len);
	CHECK(r == want, "%s at %s: result %d, want %d", text, ptr, r, want);
	if (want_num != NULL)
		CHECK(r == JSONTEXT_OK && len == strlen(want_num) &&
		    memcmp(num, want_num, len) == 0, "%s at %s: got %.*s, "
		    "want %s", text, ptr, (int)len, num ? num : "", want_num);
	else
		CHECK(num == NULL && len == 0, "%s at %s: a number", text, ptr);
}

/* What amount_from needs: a number's exact text, never a double's. */
static void
number_at(void)
{
	static const char args[] = "{\"amount\": 0.1, \"big\": "
	    "12345678901234.56, \"exp\": 1e3, \"neg\": -0, \"zeros\": 2.50,"
	    " \"huge\": 1e400, \"long\": 12345678901234567.89,"
	    " \"s\": \"0.1\", \"list\": [7, {\"a/b\": 8}], \"n\": null,"
	    " \"o\": {}}";

	check_number(args, "/amount", JSONTEXT_OK, "0.1");
	check_number(args, "/big", JSONTEXT_OK, "12345678901234.56");
	check_number(args, "/exp", JSONTEXT_OK, "1e3");
	check_number(args, "/neg", JSONTEXT_OK, "-0");
	check_number(args, "/zeros", JSONTEXT_OK, "2.50");
	check_number(args, "/huge", JSONTEXT_OK, "1e400");
	check_number(args, "/long", JSONTEXT_OK, "12345678901234567.89");
	check_number(args, "/list/0", JSONTEXT_OK, "7");
	check_number(args, "/list/1/a~1b", JSONTEXT_OK, "8");
	check_number(args, "/s", JSONTEXT_NOT_NUMBER, NULL);
	check_number(args, "/n", JSONTEXT_NOT_NUMBER, NULL);
	check_number(args, "/o", JSONTEXT_NOT_NUMBER, NULL);
	check_number(args, "", JSONTEXT_NOT_NUMBER, NULL);
	check_number(args, "/missing", JSONTEXT_ABSENT, NULL);
	check_number(args, "/list/2", JSONTEXT_ABSENT, NULL);
	check_number(args, "/list/01", JSONTEXT_ABSENT, NULL);
	check_number(args, "/amount/0", JSONTEXT_ABSENT, NULL);
	check_number(args, "amount", JSONTEXT_BAD_POINTER, NULL);
	check_number(args, "/a~2", JSONTEXT_BAD_POINTER, NULL);
	check_number("{\"a\":1,\"a\":2}", "/a", JSONTEXT_DUPLICATE, NULL);
	check_number("{\"a\":1,\"\\u0061\":2}", "/a", JSONTEXT_DUPLICATE,
	    NULL);
	check_number("{\"a\":1,\"b\":}", "/a", JSONTEXT_INVALID, NULL);
	check_number("{\"a\":1} x", "/a", JSONTEXT_INVALID, NULL);
}

static void
find(void)
{
	static const char text[] = "{\"args\": {\"to\": \"x\", \"n\": [1, 2]},"
	    " \"tool\": \"t\"}";
	struct jsontext_value	 v;

	CHECK(jsontext_find(text, strlen(text), "/args", 5, &v) ==
	    JSONTEXT_OK, "find /args");
	CHECK(v.kind == JSONTEXT_OBJECT && v.depth == 1 &&
	    v.len == strlen("{\"to\": \"x\", \"n\": [1, 2]}") &&
	    memcmp(v.text, "{\"to\": \"x\", \"n\": [1, 2]}", v.len) == 0,
	    "the args' text: %.*s", (int)v.len, v.text);
	CHECK(v.pointer != NULL && strcmp(v.pointer, "/args") == 0, "pointer");
	CHECK(jsontext_find(text, strlen(text), "/tool", 5, &v) ==
	    JSONTEXT_OK && v.kind == JSONTEXT_STRING && v.len == 3,
	    "a string's text keeps its quotes");
	CHECK(jsontext_find(text, strlen(text), "/nope", 5, &v) ==
	    JSONTEXT_ABSENT && v.text == NULL, "absent");
}

int
main(void)
{
	walks();
	stops();
	grammar();
	depth();
	number_at();
	find();
	printf("test-jsontext: %d passed, %d failed\n", passed, failed);
	return (failed != 0);
}
