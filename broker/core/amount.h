/*
 * amount: exact decimal money amounts.  Parses the contract's grammar
 * ("0" or [1-9][0-9]{0,14}, optional "." and 1..6 digits) into integer
 * micro-units split in two int64 halves, because 15 integer digits plus 6
 * decimals do not fit one int64.  No binary floating point anywhere.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define AMOUNT_MAX_TEXT 23	/* 15 digits + '.' + 6 digits + NUL */

struct amount {
	int64_t	 whole;		/* 0 .. 999999999999999 */
	int32_t	 micro;		/* 0 .. 999999 */
	char	 currency[4];	/* [A-Z]{3}, NUL-terminated; "" when unset */
};

/* Parse a decimal value string of exactly len bytes.  0 on success, -1 if it
 * does not match the grammar (embedded NULs, signs, exponents, spaces, too
 * many digits: all refused). */
int	amount_parse_value(const char *s, size_t len, struct amount *out);

/* 1 if s is three ASCII capitals, else 0. */
int	amount_currency_valid(const char *s);

/* <0, 0, >0 like strcmp, comparing value only (currency ignored). */
int	amount_cmp(const struct amount *a, const struct amount *b);

/* Canonical text of the value: integer part, and if micro != 0 a '.' and the
 * decimals without trailing zeros ("1000", "1000.5").  buf must hold
 * AMOUNT_MAX_TEXT bytes. */
void	amount_format(const struct amount *a, char *buf);
