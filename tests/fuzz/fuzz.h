/*
 * fuzz: what every fuzz target defines and what the replay main calls —
 * libFuzzer's entry points — plus the helpers the targets share.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Called once before the first input; 0 to go on. */
int	LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input: must not leak, must be deterministic, aborts on a violated
 * invariant.  Returns 0. */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() with a message when cond is false: an invariant the code under
 * test broke (a crash for libFuzzer, a failure for the replay test). */
#define FUZZ_ASSERT(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond);			\
} while (0)

void	fuzz_fail(const char *file, int line, const char *what)
	    __attribute__((noreturn));

/* Equal JSON values, where a number equals a number of the same value
 * whether jansson holds it as an integer or a real: "1e3" reads as the
 * real 1000, its RFC 8785 form "1000" as an integer. */
int	fuzz_json_same(const json_t *a, const json_t *b);
