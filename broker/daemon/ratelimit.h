/*
 * ratelimit: one token bucket per identity, shared by all threads, so one
 * busy or hostile agent is slowed down (429 with Retry-After) while the
 * others keep their full rate.
 */
#pragma once

#include <stdint.h>

struct ratelimit;

/* rate tokens per second, burst capacity; rate 0 = unlimited.  Tables
 * are bounded: identities unseen for a minute are forgotten. */
struct ratelimit *ratelimit_new(uint32_t rate, uint32_t burst);
void	ratelimit_free(struct ratelimit *rl);
/* Take one token for identity at now_us (monotonic).  0 allowed, or the
 * seconds to wait before retrying (>= 1). */
int	ratelimit_take(struct ratelimit *rl, const char *identity,
	    uint64_t now_us);
