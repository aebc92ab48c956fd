/*
 * jsontext: JSON text (RFC 8259) read as text.  jansson turns every
 * number into an int64 or a double and the original digits are gone;
 * here each value is seen with its exact bytes and its RFC 6901 pointer,
 * so that a number can be read exactly (amounts in args) or checked
 * against what the canonical form keeps (canon.c).
 *
 * The reader is strict and bounded: RFC 8259 grammar only (no comments,
 * no trailing commas, no NaN, no leading zeros), strings of valid UTF-8
 * with paired surrogate escapes and no U+0000 (as jansson without
 * JSON_ALLOW_NUL), at most JSONTEXT_MAX_DEPTH nested arrays and objects
 * (jansson's own limit), whitespace only around values.  It does not
 * notice a member name that appears twice: parse with jansson's
 * JSON_REJECT_DUPLICATES as well (jsontext_find reports the case when it
 * matters to it).  Memory: about twice the text's length, freed on return.
 * No I/O, no logging.
 */
#pragma once

#include <stddef.h>

#define JSONTEXT_MAX_DEPTH	2048

enum jsontext_kind {
	JSONTEXT_NULL,
	JSONTEXT_FALSE,
	JSONTEXT_TRUE,
	JSONTEXT_NUMBER,
	JSONTEXT_STRING,
	JSONTEXT_ARRAY,
	JSONTEXT_OBJECT,
};

/* One value as the reader sees it. */
struct jsontext_value {
	enum jsontext_kind	 kind;
	/* Its exact bytes in the input: a number's token as written
	 * ("1e3", "12345678901234.56"), a string with its quotes and
	 * escapes, an array or object from its bracket to its bracket. */
	const char		*text;
	size_t			 len;
	/* Its RFC 6901 pointer from the top of the text ("" for the top
	 * value, "/args/to~1from/0"), NUL-terminated; member names are
	 * decoded from their JSON escapes, then '~' → "~0", '/' → "~1",
	 * and array indices are plain decimal.  Valid during the visit. */
	const char		*pointer;
	size_t			 pointer_len;
	int			 depth;		/* 0 for the top value */
};

enum jsontext_result {
	JSONTEXT_OK = 0,
	JSONTEXT_STOPPED,	/* jsontext_walk: the visitor said stop */
	JSONTEXT_ABSENT,	/* nothing at that pointer */
	JSONTEXT_NOT_NUMBER,	/* jsontext_number_at: the value there is not a number */
	JSONTEXT_DUPLICATE,	/* two values have that pointer (a name twice) */
	JSONTEXT_BAD_POINTER,	/* the pointer fails jsonptr_check */
	JSONTEXT_INVALID,	/* the text is not JSON as described above */
	JSONTEXT_NOMEM,
};

/* Return non-zero to stop the walk. */
typedef int (*jsontext_visit)(const struct jsontext_value *v, void *arg);

/*
 * Read text (len bytes, need not be NUL-terminated) and call visit for
 * every value in document order of its end: a scalar when it has been
 * read, an array or object after all of its members.  JSONTEXT_OK when
 * the whole text is one valid JSON value, JSONTEXT_STOPPED when visit
 * returned non-zero (the text after that point is not checked),
 * JSONTEXT_INVALID (visit may have seen values before the fault) or
 * JSONTEXT_NOMEM.
 */
enum jsontext_result jsontext_walk(const char *text, size_t len,
	    jsontext_visit visit, void *arg);

/*
 * The value at pointer ptr (ptr_len bytes, RFC 6901) in text (len bytes):
 * JSONTEXT_OK with *out filled (out->text points into text; out->pointer
 * is ptr itself), or JSONTEXT_ABSENT, JSONTEXT_DUPLICATE,
 * JSONTEXT_BAD_POINTER, JSONTEXT_INVALID, JSONTEXT_NOMEM.  The whole text
 * is always read, so an invalid text never yields a value.
 */
enum jsontext_result jsontext_find(const char *text, size_t len,
	    const char *ptr, size_t ptr_len, struct jsontext_value *out);

/*
 * The exact text of the JSON number at ptr in text: JSONTEXT_OK with
 * *num (pointing into text) and *num_len, the token exactly as written
 * (no sign added or dropped, exponent and trailing zeros kept: "0.1",
 * "12345678901234.56", "1e3", "-0", "2.50"); JSONTEXT_NOT_NUMBER when the
 * value there is a string, boolean, null, array or object; otherwise as
 * jsontext_find.  For a pointer into an intent's args, pass the intent's
 * args_json (struct intent), the args exactly as signed.
 */
enum jsontext_result jsontext_number_at(const char *text, size_t len,
	    const char *ptr, size_t ptr_len, const char **num,
	    size_t *num_len);
