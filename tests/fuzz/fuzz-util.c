/*
 * fuzz-util: the helpers every fuzz target links — the failure report for
 * a broken invariant, and JSON value equality up to number types.
 * Nothing target-specific lives here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

/* Report which invariant broke and abort: libFuzzer saves the input as a
 * crash-* artifact, the replay test fails. */
void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	abort();
}

int
fuzz_json_same(const json_t *a, const json_t *b)
{
	const char	*key;
	json_t		*v;
	json_t		*ma = (json_t *)(uintptr_t)a;	/* iterators want non-const */
	size_t		 i;

	if (a == NULL || b == NULL)
		return (a == b);
	if (json_is_number(a) && json_is_number(b))
		return (json_number_value(a) == json_number_value(b));
	if (json_typeof(a) != json_typeof(b))
		return (0);
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return (0);
		json_object_foreach(ma, key, v)
			if (!fuzz_json_same(v, json_object_getn(b, key,
			    json_object_iter_key_len(json_object_key_to_iter(
			    key)))))
				return (0);
		return (1);
	}
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return (0);
		json_array_foreach(ma, i, v)
			if (!fuzz_json_same(v, json_array_get(b, i)))
				return (0);
		return (1);
	}
	return (json_equal(a, b));
}
