#ifndef TOOLGATE_JSONW_H
#define TOOLGATE_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * How jsonw writes a value.  All three are compact (no whitespace).
 *
 * JSONW_PLAIN   members in the value's own (insertion) order; strings and
 *               reals as RFC 8785 writes them, except that a real with an
 *               integral value keeps a ".0" ("1000.0", "-0.0") so that a
 *               reader gets a real back; integers exactly.  For answers,
 *               exports and JOSE headers: what RFC 8785 stored reads back
 *               and prints as the same text, and a format 1 audit record
 *               exported this way still re-derives its jansson bytes.
 * JSONW_JCS     RFC 8785 (JSON Canonicalization Scheme): members sorted
 *               by the UTF-16 code units of their names, strings escaped
 *               as ECMAScript's JSON.stringify does, numbers in
 *               ECMAScript's Number-to-String form.  What is hashed or
 *               signed from now on.  Refuses (NULL) what that form cannot
 *               hold faithfully: an integer of magnitude above 2^53, and a
 *               real whose form would be an integer literal above 2^53
 *               (from 2^53 up to 1e21), which jansson could not read back
 *               and many readers read inexactly.
 * JSONW_LEGACY  byte for byte jansson's json_dumps(v, JSON_COMPACT |
 *               JSON_ENCODE_ANY | JSON_SORT_KEYS): the canonical form of
 *               audit records written before RFC 8785 (format 1).
 *
 * The values are 0, 1, 2 so that the old "sorted" flag still reads right.
 */
enum jsonw_style {
	JSONW_PLAIN = 0,
	JSONW_JCS = 1,
	JSONW_LEGACY = 2,
};

/*
 * The text of v (any type) in the given style.  Returns a malloc'd
 * NUL-terminated string (its length in *len when len is not NULL), or NULL
 * when out of memory or (JSONW_JCS) v holds a number the style refuses.
 */
char	*jsonw_dump(const json_t *v, enum jsonw_style style, size_t *len);

/*
 * v as indented text for people and scripts (toolgatectl --json, the
 * args of toolgatectl show): JSONW_PLAIN's members, strings and numbers
 * (0.1 stays 0.1, where jansson's json_dumps writes 0.10000000000000001)
 * laid out as jansson's JSON_INDENT(2) lays them out: two spaces a level,
 * ": " after a name, "[]" and "{}" when empty.  With JSONW_ASCII every
 * character above U+007F is written \uXXXX (a surrogate pair above
 * U+FFFF).  malloc'd, its length in *len; NULL when out of memory.
 */
#define JSONW_ASCII	0x1
char	*jsonw_pretty(const json_t *v, unsigned flags, size_t *len);

/* Longest text jsonw_number writes, with its NUL. */
#define JSONW_NUMBER_MAX	32

/*
 * d in ECMAScript's Number::toString form (ECMA-262 §6.1.6.1.20, which
 * RFC 8785 §3.2.2.3 adopts): the shortest decimal that reads back as d,
 * the closest such if several, an even last digit on a tie; plain digits
 * from 1e-6 up to 1e21, exponent form ("1e+21", "5e-324") outside; -0 is
 * "0".  Writes out (NUL-terminated) and returns its length, or -1 for NaN
 * and infinities, which have no JSON form.
 */
int	jsonw_number(double d, char out[JSONW_NUMBER_MAX]);

#endif
