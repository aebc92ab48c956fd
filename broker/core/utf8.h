/*
 * utf8: one definition of valid UTF-8 (RFC 3629: no overlong forms, no
 * UTF-16 surrogates, nothing above U+10FFFF) for the JSON text reader and
 * JSON Pointers.  No allocation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The length (1-4) of the valid UTF-8 sequence at s (n > 0 bytes left),
 * its code point in *cp; 0 when the bytes there are not valid UTF-8. */
size_t	utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Code point cp (at most U+10FFFF, not a surrogate) as UTF-8 into out;
 * returns its length. */
size_t	utf8_encode(uint32_t cp, char out[4]);
