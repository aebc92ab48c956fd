/*
 * killswitch: operators' emergency stops (CONTRACT §4 Kill switch) — what
 * a valid switch is, what it covers, the per-thread cache of engaged
 * switches, and a switch's JSON form (the wire shape the daemon answers
 * with and toolgatectl --db prints).  Tripping and resetting are
 * lifecycle transitions (lifecycle.h lc_trip, lc_reset): a trip may
 * reject pending intents.  Core module: no HTTP.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rows.h"
#include "store.h"

#define KS_AGENT_MAX	255	/* bytes, as identities (ident.h) */

struct ks_entry {
	int64_t		 id;
	enum ks_scope	 scope;
	char		*target;	/* NULL for global */
};

/* Engaged switches as last read; owned by one thread. */
struct ks_cache {
	int64_t		 generation;	/* store_gen.killswitch when read;
					 * -1 = never */
	size_t		 n;
	struct ks_entry	*v;
};

void	ks_cache_init(struct ks_cache *c);
void	ks_cache_clear(struct ks_cache *c);
/*
 * Bring c up to date: reads the kill switch generation and reloads the
 * engaged switches only when it moved.  Call inside the transaction whose
 * decision depends on it.  0 or -1 (the cache keeps its old contents and
 * generation, so the next call retries; the caller fails closed).
 */
int	ks_refresh(struct store *s, struct ks_cache *c);
/* Reload the engaged switches and note generation (already read). */
int	ks_cache_load(struct store *s, struct ks_cache *c, int64_t generation);
/* 1 if an engaged switch covers agent calling tool, else 0. */
int	ks_covers(const struct ks_cache *c, const char *agent,
	    const char *tool);
/* 1 if a switch of scope and target covers agent calling tool. */
int	ks_scope_covers(enum ks_scope scope, const char *target,
	    const char *agent, const char *tool);

/*
 * NULL when (scope, target) names a valid switch: target NULL for global,
 * an identity for agent, a tool name or "prefix.*" for tool; otherwise a
 * static message.  ks_check_reason: a reason is required, not blank, at
 * most 1024 characters.
 */
const char *ks_check_target(enum ks_scope scope, const char *target);
const char *ks_check_reason(const char *reason);

/* The switch as {id, scope, target, reason, by, at} plus reset_by,
 * reset_at, reset_reason once reset (new reference, NULL on ENOMEM). */
json_t	*ks_json(const struct ks_row *r);
/* One switch as JSON (new reference); NULL when not found or on error. */
json_t	*ks_get(struct store *s, int64_t id);
/* {"engaged": bool, "switches": [engaged switches]} (new reference). */
json_t	*ks_status(struct store *s);
