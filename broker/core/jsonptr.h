/*
 * jsonptr: RFC 6901 JSON Pointers: "" (the whole document) or a sequence
 * of "/token", where "~0" stands for '~' and "~1" for '/' inside a token.
 * Checking a pointer's syntax, evaluating it on a jansson value, and
 * escaping one member name into a token.  No I/O, no allocation.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

/* The longest pointer accepted, in bytes: policies name members in args,
 * which are at most 32 levels deep. */
#define JSONPTR_MAX_LEN	1024

/*
 * Why ptr (len bytes) is not a pointer toolgate accepts, or NULL when it
 * is: empty or starting with '/', every '~' followed by '0' or '1', valid
 * UTF-8 without NUL, at most JSONPTR_MAX_LEN bytes.  The reason is static
 * text that says what to write instead.
 */
const char	*jsonptr_check(const char *ptr, size_t len);

/*
 * The value ptr (len bytes) refers to inside root (borrowed from root), or
 * NULL when ptr fails jsonptr_check or refers to nothing: a missing
 * member, an array index that is out of range, "-" (RFC 6901's "past the
 * end"), an index not written as 0 or [1-9][0-9]* (no leading zeros, no
 * sign), or a step into a string, number, boolean or null.
 */
json_t		*jsonptr_get(const json_t *root, const char *ptr, size_t len);

/*
 * Member name key (len bytes) as one reference token, '~' → "~0" and
 * '/' → "~1", into out, which must have room for 2 * len bytes (no NUL is
 * written).  Returns the number of bytes written.
 */
size_t		 jsonptr_escape(char *out, const char *key, size_t len);
