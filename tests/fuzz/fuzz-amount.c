/*
 * fuzz-amount: amount_parse_value against an independent reading of the
 * contract's grammar ("0" or [1-9][0-9]{0,14}, optionally "." and 1..6
 * digits).  The input is one value, or two separated by '|', whose
 * comparison is checked too.  Invariants (abort when broken): parse
 * succeeds exactly when the reference accepts, with the same whole and
 * micro; values stay in range; amount_format gives canonical text that
 * parses back to an equal amount and formats identically; amount_cmp is
 * antisymmetric and agrees with the reference order.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "fuzz.h"

#define FUZZ_AMOUNT_MAX	64

/* The grammar, written the obvious way: 0 and the value, or -1. */
static int
ref_parse(const char *s, size_t len, int64_t *whole, int32_t *micro)
{
	size_t	 i = 0, nint = 0, nfrac = 0;
	int64_t	 w = 0;
	int32_t	 m = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		w = nint < 18 ? w * 10 + (s[i] - '0') : w;
		nint++;
		i++;
	}
	if (nint == 0 || nint > 15 || (nint > 1 && s[0] == '0'))
		return (-1);
	if (i < len) {
		if (s[i++] != '.')
			return (-1);
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (nfrac < 6)
				m = m * 10 + (s[i] - '0');
			nfrac++;
			i++;
		}
		if (nfrac < 1 || nfrac > 6 || i != len)
			return (-1);
		for (; nfrac < 6; nfrac++)
			m *= 10;
	}
	*whole = w;
	*micro = m;
	return (0);
}

/* Parse one value and check it; 1 if it parsed (into *a), else 0. */
static int
check_one(const char *s, size_t len, struct amount *a)
{
	struct amount	 b;
	char		 text[AMOUNT_MAX_TEXT], again[AMOUNT_MAX_TEXT];
	int64_t		 w = 0;
	int32_t		 m = 0;
	int		 ok, ref;

	memset(a, 0, sizeof(*a));
	ok = amount_parse_value(s, len, a) == 0;
	ref = ref_parse(s, len, &w, &m) == 0;
	FUZZ_ASSERT(ok == ref);
	if (!ok)
		return (0);
	FUZZ_ASSERT(a->whole == w && a->micro == m);
	FUZZ_ASSERT(a->whole >= 0 && a->whole <= 999999999999999LL);
	FUZZ_ASSERT(a->micro >= 0 && a->micro <= 999999);

	amount_format(a, text);
	FUZZ_ASSERT(strlen(text) < AMOUNT_MAX_TEXT);
	memset(&b, 0, sizeof(b));
	FUZZ_ASSERT(amount_parse_value(text, strlen(text), &b) == 0);
	FUZZ_ASSERT(amount_cmp(a, &b) == 0 && amount_cmp(&b, a) == 0);
	amount_format(&b, again);
	FUZZ_ASSERT(strcmp(text, again) == 0);
	/* Canonical: no trailing zero after a '.', never a bare '.'. */
	if (strchr(text, '.') != NULL)
		FUZZ_ASSERT(text[strlen(text) - 1] != '0' &&
		    text[strlen(text) - 1] != '.');
	return (1);
}

static int
sign(int v)
{
	return ((v > 0) - (v < 0));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data, *bar;
	struct amount	 a, b;
	char		 ka[32], kb[32];
	size_t		 alen;
	int		 c;

	if (size > FUZZ_AMOUNT_MAX)
		return (0);
	bar = memchr(s, '|', size);
	alen = bar != NULL ? (size_t)(bar - s) : size;
	if (!check_one(s, alen, &a) || bar == NULL)
		return (0);
	if (!check_one(bar + 1, size - alen - 1, &b))
		return (0);
	c = amount_cmp(&a, &b);
	FUZZ_ASSERT(sign(c) == -sign(amount_cmp(&b, &a)));
	/* Reference order: fixed-width digit strings compare like numbers. */
	snprintf(ka, sizeof(ka), "%015lld.%06d", (long long)a.whole,
	    (int)a.micro);
	snprintf(kb, sizeof(kb), "%015lld.%06d", (long long)b.whole,
	    (int)b.micro);
	FUZZ_ASSERT(sign(c) == sign(strcmp(ka, kb)));
	return (0);
}
