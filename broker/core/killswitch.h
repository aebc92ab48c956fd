/*
 * killswitch: operators' emergency stops (CONTRACT §4 Kill switch) — trip,
 * reset, status, and the per-thread cache that answers "does a switch
 * cover this agent and tool?" at the cost of one counter read per check.
 * Core module: used by the daemon and by toolgatectl --db.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db.h"

enum ks_scope { KS_GLOBAL, KS_AGENT, KS_TOOL };

struct ks_entry {
	int64_t		 id;
	enum ks_scope	 scope;
	char		*target;	/* NULL for global */
};

/* Engaged switches as last read; owned by one thread. */
struct ks_cache {
	int64_t		 generation;	/* counters.killswitch when read; -1 = never */
	size_t		 n;
	struct ks_entry	*v;
};

void	ks_cache_init(struct ks_cache *c);
void	ks_cache_clear(struct ks_cache *c);
/*
 * Bring c up to date: reads counters.killswitch (one primary-key lookup)
 * and reloads the engaged switches only when it changed.  Call inside the
 * transaction whose decision depends on it.  0 or -1.
 */
int	ks_refresh(struct db *db, struct ks_cache *c);
/* 1 if an engaged switch covers agent calling tool, else 0. */
int	ks_covers(const struct ks_cache *c, const char *agent,
	    const char *tool);

/* Parse "global" | "agent" | "tool".  0 or -1. */
int	ks_scope_parse(const char *s, enum ks_scope *out);

struct ks_trip_result {
	int64_t		 id;
	json_t		*rejected;	/* array of intent ids (new ref) */
};

/*
 * Trip a switch in its own BEGIN IMMEDIATE transaction: insert it, bump
 * the counter, audit "killswitch.trip", and with reject_pending turn every
 * covered pending intent into "rejected" (one audit record each).  target
 * must be NULL for global, an identity for agent, a tool name or "prefix.*"
 * for tool; reason non-empty.  0, -1 on a storage error, -2 on bad input
 * (with *why set).
 */
int	ks_trip(struct db *db, const char *actor, enum ks_scope scope,
	    const char *target, const char *reason, int reject_pending,
	    struct ks_trip_result *res, const char **why);

/* Reset switch id (own transaction, audited "killswitch.reset").  0 done,
 * 1 no such engaged switch, -1 storage error, -2 bad input (*why). */
int	ks_reset(struct db *db, const char *actor, int64_t id,
	    const char *reason, const char **why);

/* One switch as JSON {id, scope, target, reason, by, at} (new ref), or
 * NULL when not found; and the status object {"engaged": bool, "switches":
 * [engaged switches]}. */
json_t	*ks_get(struct db *db, int64_t id);
json_t	*ks_status(struct db *db);
