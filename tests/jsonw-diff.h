/*
 * jsonw-diff: the check that jsonw's JSONW_LEGACY style writes what
 * jansson writes (audit records of format 1 are re-derived with it),
 * shared by the unit test (fixed and random trees) and the audit fuzz
 * target (every input it sees).
 */
#pragma once

#include <jansson.h>

/* NULL when jsonw_dump(v, JSONW_LEGACY) equals json_dumps(v,
 * JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS); otherwise what
 * differed (static text, written to stderr as well). */
const char	*jsonw_diff(const json_t *v);
