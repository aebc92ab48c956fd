/*
 * usage_impl: what the files of the usage module share and nobody else
 * may use — turning amounts into units, what one intent adds to a limit,
 * and the one function that changes a (limit, key)'s usage inside a
 * transaction (usage.c), which reserving, freeing and recounting
 * (usage_recount.c) all go through.
 */
#pragma once

#include <jansson.h>

#include "usage.h"

#define USAGE_MICRO	1000000

/* a (whole and micro) in micro-units. */
usage_units	usage_amount_units(const struct amount *a);

/*
 * What an intent with amount a (NULL: none) adds to l: 1 for a count
 * limit; its amount for an amount limit in a's currency.  1 and *add when
 * it counts, 0 when it does not (no amount, another currency).
 */
int	usage_contribution(const struct policy_limit *l,
	    const struct amount *a, usage_units *add);

/* What l counts of a usage of n intents with these units: n for a count
 * limit, the units for an amount limit. */
usage_units	usage_of(const struct policy_limit *l, int64_t n,
		    usage_units units);

/* The "agent" member of l's key for principal: principal when l's per
 * has "agent" (the row is that agent's to see), else NULL. */
const char	*usage_key_agent(const struct policy_limit *l,
		    const char *principal);

/*
 * Add one intent's usage (sign +1) or take it out (-1): add units
 * (ignored for a count limit) under (l, key) in the bucket of second at,
 * after dropping the buckets that left l's window at now.  0 or -1.
 */
int	usage_change(struct usage_tx *tx, struct store *s,
	    const struct policy_limit *l, const char *key, const char *agent,
	    int64_t at, usage_units add, int sign, int64_t now);

/*
 * What usage row u holds inside the window that ends at now for limit l:
 * its n and units less the buckets that have left it (read, not
 * dropped), and the second of the oldest bucket left (0: none).  0 or -1.
 */
int	usage_live(struct store *s, const struct policy_limit *l,
	    const struct limit_usage_row *u, int64_t now, int64_t *n,
	    usage_units *units, int64_t *oldest);
