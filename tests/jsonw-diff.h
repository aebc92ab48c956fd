/*
 * jsonw-diff: the check that jsonw writes what jansson writes, shared by
 * the unit test (fixed and random trees) and the audit fuzz target (every
 * input it sees).
 */
#pragma once

#include <jansson.h>

/* NULL when jsonw_dump(v) equals json_dumps(v) both sorted and unsorted;
 * otherwise what differed (static text, written to stderr as well). */
const char	*jsonw_diff(const json_t *v);
