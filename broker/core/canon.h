/*
 * canon: canonical JSON bytes, what a number must be to keep its value in
 * them, and SHA-256 hex helpers, shared by the audit chain, grants
 * (intent_sha256), stored args and policy versions.  Canonical means RFC
 * 8785 (JCS, written by jsonw); the form audit records had before it
 * (jansson's JSON_COMPACT | JSON_SORT_KEYS) is kept for verifying them.
 * proto/audit.md describes both for independent verifiers.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define SHA256_HEX_LEN 64

/* RFC 8785 text of v (malloc'd), or NULL when out of memory or v holds a
 * number that form cannot keep (an integer above 2^53; see jsonw.h). */
char	*canon_dump(const json_t *v);
/* The pre-RFC 8785 canonical text of v (audit record format 1). */
char	*canon_dump_legacy(const json_t *v);

/*
 * Whether a JSON number keeps its value through RFC 8785, whose numbers
 * are IEEE 754 doubles.  The number is kept exactly when all of these
 * hold (proto/audit.md, "Numbers"):
 *  - as written, it is not an integer literal (no fraction, no exponent)
 *    of magnitude above 2^53;
 *  - the double nearest to it is finite, and its RFC 8785 form denotes
 *    exactly the written value (so at most 17 significant digits, no
 *    overflow, no underflow to 0, no subnormal that prints otherwise);
 *    -0 counts as 0, "1e3" as 1000;
 *  - that form is not an integer literal above 2^53 (1e16 to 1e20 are
 *    refused, 1e21 is written "1e+21" and kept).
 * The verdicts other than CANON_NUMBER_KEPT say which rule failed first.
 */
enum canon_number {
	CANON_NUMBER_KEPT = 0,
	CANON_NUMBER_BIG_INTEGER,	/* an integer above 2^53 */
	CANON_NUMBER_TOO_PRECISE,	/* over 17 significant digits */
	CANON_NUMBER_OVERFLOW,		/* beyond the largest double */
	CANON_NUMBER_UNDERFLOW,		/* not 0, but would become 0 */
	CANON_NUMBER_INEXACT,		/* the double is another value */
	CANON_NUMBER_SYNTAX,		/* not a JSON number at all */
};

/* The verdict for the JSON number token text (len bytes). */
enum canon_number canon_number_check(const char *text, size_t len);
/* What is wrong, as the end of a sentence naming the number ("... is an
 * integer above 2^53 ..."), and what to send instead.  Static text. */
const char	*canon_number_problem(enum canon_number verdict);

/*
 * Check every number in the JSON text (len bytes) at or below pointer
 * under ("/args", or "" for all of it).  0 when each is kept; 1 when one
 * is not, with its verdict in *bad and its pointer relative to under in
 * where (NUL-terminated, cut to wherelen - 1 bytes, "" for under itself);
 * -1 when text is not JSON (jsontext's rules) or memory ran out.
 */
int	canon_numbers_check(const char *text, size_t len, const char *under,
	    enum canon_number *bad, char *where, size_t wherelen);

/* Lowercase hex SHA-256 of len bytes into out[65]. */
void	canon_sha256_hex(const void *data, size_t len, char out[65]);
/* Hex SHA-256 over a (alen bytes) followed by b (blen bytes). */
void	canon_sha256_hex2(const void *a, size_t alen, const void *b,
	    size_t blen, char out[65]);
/* Nesting depth of v (a scalar is 0), counting no further than limit:
 * bounds what may be stored, since jansson reads back at most 2048. */
int	canon_depth(const json_t *v, int limit);
/* Constant-time equality of two equal-length buffers. */
int	canon_ct_equal(const void *a, const void *b, size_t len);
