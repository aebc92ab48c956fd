/*
 * test-ratelimit: broker/daemon/ratelimit.c — token buckets per identity
 * with an injected clock: the burst, then Retry-After seconds that are
 * enough and not more; exact refill; identities independent; rate 0
 * unlimited; an identity idle for a minute forgotten, its slot reused.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

#define S	1000000ULL	/* microseconds */

static void
test_burst_and_refill(void)
{
	struct ratelimit	*rl = ratelimit_new(5, 5);
	uint64_t		 t = 100 * S;
	int			 i, wait;

	CHECK(rl != NULL);
	for (i = 0; i < 5; i++)
		CHECK(ratelimit_take(rl, "agent", t) == 0);
	wait = ratelimit_take(rl, "agent", t);
	CHECK(wait == 1);
	/* Another identity has its own bucket. */
	CHECK(ratelimit_take(rl, "other", t) == 0);
	/* One token comes back every 1/5 s, exactly. */
	CHECK(ratelimit_take(rl, "agent", t + S / 5 - 1) >= 1);
	CHECK(ratelimit_take(rl, "agent", t + S / 5) == 0);
	CHECK(ratelimit_take(rl, "agent", t + S / 5) >= 1);
	/* Waiting the Retry-After given is always enough. */
	wait = ratelimit_take(rl, "agent", t + S / 5);
	CHECK(ratelimit_take(rl, "agent", t + S / 5 + (uint64_t)wait * S) ==
	    0);
	/* The bucket never holds more than the burst. */
	t += 3600 * S;
	for (i = 0; i < 5; i++)
		CHECK(ratelimit_take(rl, "agent", t) == 0);
	CHECK(ratelimit_take(rl, "agent", t) >= 1);
	ratelimit_free(rl);
}

static void
test_slow_rate(void)
{
	struct ratelimit	*rl = ratelimit_new(1, 1);
	uint64_t		 t = 5 * S;

	CHECK(ratelimit_take(rl, "a", t) == 0);
	CHECK(ratelimit_take(rl, "a", t) == 1);
	CHECK(ratelimit_take(rl, "a", t + S / 2) == 1);
	CHECK(ratelimit_take(rl, "a", t + S) == 0);
	ratelimit_free(rl);
}

static void
test_unlimited_and_idle(void)
{
	struct ratelimit	*rl = ratelimit_new(0, 0);
	char			 id[32];
	int			 i;

	for (i = 0; i < 10000; i++)
		CHECK(ratelimit_take(rl, "a", 1) == 0);
	ratelimit_free(rl);
	CHECK(ratelimit_take(NULL, "a", 1) == 0);
	/* Many identities, each idle for over a minute before the next
	 * wave: slots are reused and each new one starts full. */
	rl = ratelimit_new(2, 2);
	for (i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		CHECK(ratelimit_take(rl, id, (uint64_t)(i / 4000) * 61 * S) ==
		    0);
	}
	ratelimit_free(rl);
}

int
main(void)
{
	test_burst_and_refill();
	test_slow_rate();
	test_unlimited_and_idle();
	printf("ratelimit: %d passed, 0 failed\n", passed);
	return (0);
}
