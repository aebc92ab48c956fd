/*
 * canon: canonical JSON bytes and SHA-256 hex helpers shared by the audit
 * chain, grants (intent_sha256) and policy versions.  Canonical here means
 * jansson's JSON_COMPACT | JSON_SORT_KEYS text (written by jsonw, which
 * gives the same bytes faster): deterministic, and what we hash is the
 * stored bytes.  A real in an agent's args is printed as jansson prints it.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define SHA256_HEX_LEN 64

/* Canonical text of v (malloc'd), or NULL when out of memory. */
char	*canon_dump(const json_t *v);
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
