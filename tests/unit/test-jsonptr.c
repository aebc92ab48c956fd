/*
 * test-jsonptr: RFC 6901 JSON Pointers — the syntax check with its
 * messages, evaluation on a jansson value (the RFC's own §5 example, array
 * indices, escapes, what refers to nothing) and token escaping.
 */
#undef NDEBUG
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "jsonptr.h"
#include "check.h"

static int	passed, failed;

static void
syntax(void)
{
	static const char *const good[] = {
		"", "/", "/a", "/a/b", "/~0", "/~1", "/~01", "//", "/a/",
		"/0", "/-", "/caf\xc3\xa9", "/\xf0\x9f\x98\x80", "/ ",
	};
	static const struct {
		const char	*ptr;
		const char	*says;		/* part of the message */
	} bad[] = {
		{ "a", "starts with /" },
		{ "#/a", "starts with /" },
		{ "/~", "~0 for ~" },
		{ "/~2", "~0 for ~" },
		{ "/a~", "~0 for ~" },
		{ "/\xc3", "UTF-8" },
		{ "/\xed\xa0\x80", "UTF-8" },		/* a surrogate */
		{ "/\xc0\xaf", "UTF-8" },		/* overlong '/' */
	};
	char		 longer[JSONPTR_MAX_LEN + 2];
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(jsonptr_check(good[i], strlen(good[i])) == NULL,
		    "%s refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = jsonptr_check(bad[i].ptr, strlen(bad[i].ptr));
		CHECK(why != NULL && strstr(why, bad[i].says) != NULL,
		    "%s: %s", bad[i].ptr, why ? why : "accepted");
	}
	CHECK(jsonptr_check("/a\0b", 4) != NULL, "NUL accepted");
	memset(longer, 'a', sizeof(longer));
	longer[0] = '/';
	CHECK(jsonptr_check(longer, JSONPTR_MAX_LEN) == NULL, "1024 refused");
	CHECK(jsonptr_check(longer, JSONPTR_MAX_LEN + 1) != NULL,
	    "1025 accepted");
}

/* RFC 6901 §5: every pointer of the example, with the value it names. */
static void
rfc6901_example(void)
{
	static const struct {
		const char	*ptr;
		const char	*want;	/* JSON of the value */
	} t[] = {
		{ "", NULL },		/* the whole document */
		{ "/foo", "[\"bar\",\"baz\"]" },
		{ "/foo/0", "\"bar\"" },
		{ "/", "0" },
		{ "/a~1b", "1" },
		{ "/c%d", "2" },
		{ "/e^f", "3" },
		{ "/g|h", "4" },
		{ "/i\\j", "5" },
		{ "/k\"l", "6" },
		{ "/ ", "7" },
		{ "/m~0n", "8" },
	};
	json_t	*doc = json_loads("{\"foo\": [\"bar\", \"baz\"], \"\": 0, "
		    "\"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4, "
		    "\"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}", 0,
		    NULL);
	json_t	*v, *want;
	size_t	 i;

	CHECK(doc != NULL, "fixture");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = jsonptr_get(doc, t[i].ptr, strlen(t[i].ptr));
		want = t[i].want ? json_loads(t[i].want, JSON_DECODE_ANY,
		    NULL) : json_incref(doc);
		CHECK(v != NULL && json_equal(v, want), "%s", t[i].ptr);
		json_decref(want);
	}
	json_decref(doc);
}

static void
nothing_there(void)
{
	static const char *const t[] = {
		"/missing", "/a/5", "/a/-", "/a/01", "/a/+1", "/a/1x", "/a/",
		"/a/18446744073709551616", "/a/0/deeper", "/s/0", "/n/x",
		"/o/A", "a", "/~2", "/o/b/c/d",
	};
	json_t	*doc = json_loads("{\"a\": [10, 11], \"s\": \"str\", \"n\": null,"
		    " \"o\": {\"a\": {\"b\": 1}}}", 0, NULL);
	size_t	 i;

	CHECK(doc != NULL, "fixture");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(jsonptr_get(doc, t[i], strlen(t[i])) == NULL, "%s found",
		    t[i]);
	CHECK(json_integer_value(jsonptr_get(doc, "/a/1", 4)) == 11, "/a/1");
	CHECK(json_integer_value(jsonptr_get(doc, "/o/a/b", 6)) == 1,
	    "/o/a/b");
	CHECK(jsonptr_get(NULL, "", 0) == NULL, "NULL root");
	/* Member names with NUL bytes are reachable by length. */
	json_object_setn_new(doc, "x\0y", 3, json_integer(9));
	CHECK(jsonptr_get(doc, "/x\0y", 4) == NULL, "NUL in a pointer");
	json_decref(doc);
}

static void
escape(void)
{
	char	 out[32];
	size_t	 n;

	n = jsonptr_escape(out, "a/b~c", 5);
	CHECK(n == 7 && memcmp(out, "a~1b~0c", 7) == 0, "a/b~c → a~1b~0c");
	n = jsonptr_escape(out, "~/", 2);
	CHECK(n == 4 && memcmp(out, "~0~1", 4) == 0, "~/ → ~0~1");
	n = jsonptr_escape(out, "plain", 5);
	CHECK(n == 5 && memcmp(out, "plain", 5) == 0, "plain");
	CHECK(jsonptr_escape(out, "", 0) == 0, "empty");
}

int
main(void)
{
	syntax();
	rfc6901_example();
	nothing_there();
	escape();
	printf("test-jsonptr: %d passed, %d failed\n", passed, failed);
	return (failed != 0);
}
