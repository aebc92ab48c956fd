/*
 * fuzz-util: the helpers every fuzz target links — the failure report for
 * a broken invariant.  Nothing target-specific lives here.
 */
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
