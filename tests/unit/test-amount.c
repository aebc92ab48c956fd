/*
 * test-amount: broker/core/amount.c against tables of valid and invalid values,
 * exact comparisons at the edges of the range, and canonical formatting.
 */
#undef NDEBUG

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "check.h"

static int	passed, failed;

static const struct {
	const char	*text;
	int64_t		 whole;
	int32_t		 micro;
	const char	*canon;
} valid[] = {
	{ "0",				0,		0,	"0" },
	{ "0.5",			0,		500000,	"0.5" },
	{ "0.000001",			0,		1,	"0.000001" },
	{ "0.0",			0,		0,	"0" },
	{ "1",				1,		0,	"1" },
	{ "10",				10,		0,	"10" },
	{ "12500.00",			12500,		0,	"12500" },
	{ "1000.00",			1000,		0,	"1000" },
	{ "1000.000001",		1000,		1,	"1000.000001" },
	{ "1000.10",			1000,		100000,	"1000.1" },
	{ "10000.01",			10000,		10000,	"10000.01" },
	{ "123456.123456",		123456,		123456,	"123456.123456" },
	{ "999999999999999",		999999999999999LL, 0,
	    "999999999999999" },
	{ "999999999999999.999999",	999999999999999LL, 999999,
	    "999999999999999.999999" },
	{ "100000000000000",		100000000000000LL, 0,
	    "100000000000000" },
};

static const char *const invalid[] = {
	"", "00", "01", "007", "1.", ".5", ".", "1.1234567", "0.0000001",
	"+1", "-1", "-0", "1e3", "1E3", " 1", "1 ", "1,0", "1,000.00",
	"1000000000000000", "1000000000000000.0", "9999999999999999",
	"0x10", "1..0", "1.0.0", "abc", "1a", "١", "NaN", "inf", "0.-1",
	"1.+1", "\t1",
};

static void
test_valid(void)
{
	struct amount	 a;
	char		 buf[AMOUNT_MAX_TEXT];
	size_t		 i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		memset(&a, 0xa5, sizeof(a));
		CHECK(amount_parse_value(valid[i].text,
		    strlen(valid[i].text), &a) == 0, "valid \"%s\" refused",
		    valid[i].text);
		CHECK(a.whole == valid[i].whole && a.micro == valid[i].micro,
		    "\"%s\" parsed as %lld.%06d", valid[i].text,
		    (long long)a.whole, (int)a.micro);
		amount_format(&a, buf);
		CHECK(strcmp(buf, valid[i].canon) == 0,
		    "\"%s\" formatted as \"%s\", want \"%s\"", valid[i].text,
		    buf, valid[i].canon);
		/* canonical text parses back to the same value */
		struct amount b;
		CHECK(amount_parse_value(buf, strlen(buf), &b) == 0 &&
		    amount_cmp(&a, &b) == 0, "round trip of \"%s\"", buf);
	}
}

static void
test_invalid(void)
{
	struct amount	 a;
	size_t		 i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		CHECK(amount_parse_value(invalid[i], strlen(invalid[i]),
		    &a) == -1, "invalid \"%s\" accepted", invalid[i]);

	/* only len bytes count: an embedded NUL is refused, and a prefix
	 * of a longer buffer is judged on its own */
	CHECK(amount_parse_value("1\0" "0", 3, &a) == -1, "embedded NUL");
	CHECK(amount_parse_value("10\0", 3, &a) == -1, "trailing NUL");
	CHECK(amount_parse_value("\0", 1, &a) == -1, "lone NUL");
	CHECK(amount_parse_value("12x", 2, &a) == 0 && a.whole == 12,
	    "len bounds the parse");
	CHECK(amount_parse_value("1.5", 2, &a) == -1, "\"1.\" via len");
	CHECK(amount_parse_value(NULL, 0, &a) == -1, "NULL");
}

static void
test_cmp(void)
{
	static const struct {
		const char	*a, *b;
		int		 want;
	} cases[] = {
		{ "1000.00", "1000.000001", -1 },
		{ "1000.000001", "1000.00", 1 },
		{ "1000.00", "1000", 0 },
		{ "1000.0", "1000.000000", 0 },
		{ "0", "0.000001", -1 },
		{ "999999999999999.999999", "999999999999999.999998", 1 },
		{ "999999999999999.999999", "999999999999999.999999", 0 },
		{ "999999999999999", "999999999999999.000001", -1 },
		{ "100000.00", "99999.999999", 1 },
		{ "10000.01", "10000.1", -1 },
		{ "9", "10", -1 },
		{ "0.9", "0.10", 1 },
	};
	struct amount	 a, b;
	size_t		 i;
	int		 c;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert(amount_parse_value(cases[i].a, strlen(cases[i].a),
		    &a) == 0);
		assert(amount_parse_value(cases[i].b, strlen(cases[i].b),
		    &b) == 0);
		c = amount_cmp(&a, &b);
		c = c < 0 ? -1 : c > 0 ? 1 : 0;
		CHECK(c == cases[i].want, "cmp(%s, %s) = %d, want %d",
		    cases[i].a, cases[i].b, c, cases[i].want);
	}
	/* currency does not take part in the comparison */
	assert(amount_parse_value("5", 1, &a) == 0);
	assert(amount_parse_value("5", 1, &b) == 0);
	memcpy(a.currency, "USD", 4);
	memcpy(b.currency, "EUR", 4);
	CHECK(amount_cmp(&a, &b) == 0, "currency ignored");
}

static void
test_currency(void)
{
	static const char *const ok[] = { "USD", "EUR", "JPY", "AAA", "ZZZ" };
	static const char *const bad[] = { "", "US", "USDX", "usd", "Usd",
	    "US1", "U D", "ÜSD", "US$" };
	size_t	 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(amount_currency_valid(ok[i]) == 1, "currency %s", ok[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(amount_currency_valid(bad[i]) == 0, "currency \"%s\"",
		    bad[i]);
	CHECK(amount_currency_valid(NULL) == 0, "currency NULL");
}

int
main(void)
{
	test_valid();
	test_invalid();
	test_cmp();
	test_currency();
	printf("amount: %d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
