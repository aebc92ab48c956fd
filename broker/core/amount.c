/*
 * amount.c owns the exact decimal money type of CONTRACT §3: parsing the
 * value grammar, the currency check, exact comparison and canonical text.
 * It never uses binary floating point and never looks at policy or JSON:
 * callers hand it bytes and get integers back.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "amount.h"

#define AMOUNT_INT_DIGITS	15
#define AMOUNT_FRAC_DIGITS	6

static int
amount_isdigit(char c)
{
	return (c >= '0' && c <= '9');
}

/*
 * Grammar: "0" or [1-9][0-9]{0,14}, then optionally "." and 1..6 digits.
 * Exactly len bytes are examined, so an embedded NUL is just a non-digit and
 * refuses the value.  *out is written only on success; its currency is left
 * as it was.
 */
int
amount_parse_value(const char *s, size_t len, struct amount *out)
{
	size_t	 i = 0, ndig, nfrac;
	int64_t	 whole = 0;
	int32_t	 micro = 0;

	if (s == NULL || len == 0)
		return (-1);

	if (s[0] == '0') {
		i = 1;
	} else if (s[0] >= '1' && s[0] <= '9') {
		for (ndig = 0; i < len && amount_isdigit(s[i]); i++, ndig++) {
			if (ndig == AMOUNT_INT_DIGITS)
				return (-1);
			whole = whole * 10 + (s[i] - '0');
		}
	} else
		return (-1);

	if (i < len) {
		if (s[i] != '.')
			return (-1);	/* "01", "1,0", "1e3", "0x", ... */
		i++;
		for (nfrac = 0; i < len && amount_isdigit(s[i]); i++, nfrac++) {
			if (nfrac == AMOUNT_FRAC_DIGITS)
				return (-1);
			micro = micro * 10 + (s[i] - '0');
		}
		if (nfrac == 0 || i != len)
			return (-1);	/* "1." or trailing junk */
		for (; nfrac < AMOUNT_FRAC_DIGITS; nfrac++)
			micro *= 10;
	}

	out->whole = whole;
	out->micro = micro;
	return (0);
}

int
amount_currency_valid(const char *s)
{
	int	 i;

	if (s == NULL)
		return (0);
	for (i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return (0);
	return (s[3] == '\0');
}

int
amount_cmp(const struct amount *a, const struct amount *b)
{
	if (a->whole != b->whole)
		return (a->whole < b->whole ? -1 : 1);
	if (a->micro != b->micro)
		return (a->micro < b->micro ? -1 : 1);
	return (0);
}

/* Digits are produced by hand (no printf) so the output is exactly the
 * canonical grammar whatever the locale. */
void
amount_format(const struct amount *a, char *buf)
{
	char	 rev[AMOUNT_INT_DIGITS + 4];
	int64_t	 w = a->whole;
	int32_t	 m = a->micro;
	size_t	 n = 0, o = 0;
	int	 i, last;
	char	 frac[AMOUNT_FRAC_DIGITS];

	/* Out-of-range values cannot come from amount_parse_value; clamp
	 * rather than overflow buf. */
	if (w < 0)
		w = 0;
	if (w > 999999999999999LL)
		w = 999999999999999LL;
	if (m < 0 || m > 999999)
		m = 0;

	do {
		rev[n++] = (char)('0' + w % 10);
		w /= 10;
	} while (w > 0);
	while (n > 0)
		buf[o++] = rev[--n];

	if (m != 0) {
		for (i = AMOUNT_FRAC_DIGITS - 1; i >= 0; i--) {
			frac[i] = (char)('0' + m % 10);
			m /= 10;
		}
		for (last = AMOUNT_FRAC_DIGITS - 1; frac[last] == '0'; last--)
			;
		buf[o++] = '.';
		memcpy(buf + o, frac, (size_t)last + 1);
		o += (size_t)last + 1;
	}
	buf[o] = '\0';
}
