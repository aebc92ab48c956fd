/*
 * test-canon: the rule for numbers that keep their value in the canonical
 * form (canon_number_check), a table with every verdict and its edges, and
 * canon_numbers_check over a whole text naming the first offender by its
 * pointer below a prefix.
 */
#undef NDEBUG
#include <stdio.h>
#include <string.h>

#include "canon.h"
#include "check.h"

static int	passed, failed;

static void
verdicts(void)
{
	static const struct {
		const char		*text;
		enum canon_number	 want;
	} t[] = {
		/* kept: RFC 8785 writes the same value */
		{ "0", CANON_NUMBER_KEPT }, { "-0", CANON_NUMBER_KEPT },
		{ "-0.0e-5", CANON_NUMBER_KEPT }, { "0.1", CANON_NUMBER_KEPT },
		{ "1e3", CANON_NUMBER_KEPT }, { "1000", CANON_NUMBER_KEPT },
		{ "2.50", CANON_NUMBER_KEPT }, { "-1.5", CANON_NUMBER_KEPT },
		{ "12345678901234.56", CANON_NUMBER_KEPT },
		{ "0.30000000000000004", CANON_NUMBER_KEPT },
		{ "1.00000000000000000000000000", CANON_NUMBER_KEPT },
		{ "0.000000000000000000000000001", CANON_NUMBER_KEPT },
		{ "9007199254740992", CANON_NUMBER_KEPT },
		{ "-9007199254740992", CANON_NUMBER_KEPT },
		{ "9007199254740992.0", CANON_NUMBER_KEPT },
		{ "1e21", CANON_NUMBER_KEPT }, { "1E+21", CANON_NUMBER_KEPT },
		{ "-1.5e300", CANON_NUMBER_KEPT },
		{ "1.7976931348623157e308", CANON_NUMBER_KEPT },
		{ "2.2250738585072014e-308", CANON_NUMBER_KEPT },
		{ "5e-324", CANON_NUMBER_KEPT },	/* smallest subnormal */
		{ "1e-320", CANON_NUMBER_KEPT },	/* subnormal, prints so */
		{ "1e-323", CANON_NUMBER_KEPT },
		{ "1e0000000000000000000000003", CANON_NUMBER_KEPT },
		{ "100e-2", CANON_NUMBER_KEPT },
		/* integers above 2^53, as written or as RFC 8785 writes */
		{ "9007199254740993", CANON_NUMBER_BIG_INTEGER },
		{ "9007199254740994", CANON_NUMBER_BIG_INTEGER },
		{ "-9007199254740993", CANON_NUMBER_BIG_INTEGER },
		{ "10000000000000000", CANON_NUMBER_BIG_INTEGER },
		{ "1000000000000000000000", CANON_NUMBER_BIG_INTEGER },
		{ "99999999999999999999", CANON_NUMBER_BIG_INTEGER },
		{ "1e16", CANON_NUMBER_BIG_INTEGER },
		{ "1.5e17", CANON_NUMBER_BIG_INTEGER },
		{ "-1e20", CANON_NUMBER_BIG_INTEGER },
		/* more than 17 significant digits */
		{ "12345678901234567.89", CANON_NUMBER_TOO_PRECISE },
		{ "0.123456789012345678", CANON_NUMBER_TOO_PRECISE },
		{ "1.000000000000000001", CANON_NUMBER_TOO_PRECISE },
		/* outside the range of doubles */
		{ "1e400", CANON_NUMBER_OVERFLOW },
		{ "-1e400", CANON_NUMBER_OVERFLOW },
		{ "1.7976931348623159e308", CANON_NUMBER_OVERFLOW },
		{ "1e99999999999999999999", CANON_NUMBER_OVERFLOW },
		{ "1e-400", CANON_NUMBER_UNDERFLOW },
		{ "-2e-324", CANON_NUMBER_UNDERFLOW },
		{ "1e-99999999999999999999", CANON_NUMBER_UNDERFLOW },
		/* a double, but another value */
		{ "0.10000000000000001", CANON_NUMBER_INEXACT },
		{ "4.9e-324", CANON_NUMBER_INEXACT },
		{ "2.5e-324", CANON_NUMBER_INEXACT },	/* becomes 5e-324 */
		{ "1.2e-323", CANON_NUMBER_INEXACT },	/* becomes 1e-323 */
		{ "333333333.33333329", CANON_NUMBER_INEXACT },
		{ "1.7976931348623158e308", CANON_NUMBER_INEXACT },
		/* not numbers */
		{ "", CANON_NUMBER_SYNTAX }, { "01", CANON_NUMBER_SYNTAX },
		{ "1.", CANON_NUMBER_SYNTAX }, { "+1", CANON_NUMBER_SYNTAX },
		{ "1e", CANON_NUMBER_SYNTAX }, { "NaN", CANON_NUMBER_SYNTAX },
		{ "0x1", CANON_NUMBER_SYNTAX }, { "1 ", CANON_NUMBER_SYNTAX },
		{ "-", CANON_NUMBER_SYNTAX }, { ".5", CANON_NUMBER_SYNTAX },
	};
	enum canon_number	 got;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = canon_number_check(t[i].text, strlen(t[i].text));
		CHECK(got == t[i].want, "%s: %d (%s), want %d", t[i].text, got,
		    canon_number_problem(got), t[i].want);
	}
	for (i = CANON_NUMBER_KEPT; i <= CANON_NUMBER_SYNTAX; i++)
		CHECK(canon_number_problem((enum canon_number)i) != NULL &&
		    strlen(canon_number_problem((enum canon_number)i)) > 5,
		    "message %zu", i);
}

static void
check_text(const char *text, const char *under, int want,
    enum canon_number want_bad, const char *want_where)
{
	enum canon_number	 bad;
	char			 where[64];
	int			 r;

	r = canon_numbers_check(text, strlen(text), under, &bad, where,
	    sizeof(where));
	CHECK(r == want, "%s under %s: %d, want %d", text, under, r, want);
	if (want == 1)
		CHECK(bad == want_bad && strcmp(where, want_where) == 0,
		    "%s: %d at %s, want %d at %s", text, bad, where, want_bad,
		    want_where);
}

static void
texts(void)
{
	static const char payload[] = "{\"iat\": 1e400, \"args\": {\"a\": 0.1,"
	    " \"list\": [1, {\"x/y\": 1e-400}]}, \"argsx\": 1e400}";

	/* Only below /args: iat and argsx are not args. */
	check_text(payload, "/args", 1, CANON_NUMBER_UNDERFLOW, "/list/1/x~1y");
	check_text(payload, "", 1, CANON_NUMBER_OVERFLOW, "/iat");
	check_text("{\"args\": {\"n\": [0.1, 1e3, -0, 2.5e-7]}}", "/args", 0,
	    CANON_NUMBER_KEPT, "");
	check_text("{\"args\": 9007199254740993}", "/args", 1,
	    CANON_NUMBER_BIG_INTEGER, "");
	check_text("{\"args\": {\"p\": 12345678901234567.89}}", "/args", 1,
	    CANON_NUMBER_TOO_PRECISE, "/p");
	check_text("{\"args\": {}", "/args", -1, CANON_NUMBER_KEPT, "");
	check_text("[1,2", "", -1, CANON_NUMBER_KEPT, "");
}

/* A pointer longer than the caller's buffer is cut, still terminated. */
static void
cut(void)
{
	enum canon_number	 bad;
	char			 where[8];

	CHECK(canon_numbers_check("{\"abcdefghijkl\": 1e400}", 23, "", &bad,
	    where, sizeof(where)) == 1, "found");
	CHECK(strcmp(where, "/abcdef") == 0, "cut to %s", where);
}

int
main(void)
{
	verdicts();
	texts();
	cut();
	printf("test-canon: %d passed, %d failed\n", passed, failed);
	return (failed != 0);
}
