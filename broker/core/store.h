/*
 * store: the storage seam.  Everything toolgate keeps — policy versions,
 * intents and their approvals, the (iss, jti) replay guard, kill switches,
 * the audit chain and the change counters — is read and written only
 * through the table of functions below, so a second engine (PostgreSQL)
 * can be added without touching the lifecycle, the daemon or the CLI.
 * Two engines: SQLite (store_sqlite.c, a file path: the default) and
 * PostgreSQL (store_pg.c, a postgresql:// or postgres:// URI: several
 * brokers on one database), chosen by store_open from the --db string.
 *
 * Rules every engine keeps:
 * - One struct store is one connection, used by one thread at a time.
 * - Writes happen between begin() and commit()/rollback().  begin() opens
 *   a write transaction that serialises with other writers enough for the
 *   lifecycle's read-check-write steps: SQLite's BEGIN IMMEDIATE takes the
 *   write lock at once; an engine with row locks takes them where the
 *   functions below say "locks" (intent_get with STORE_FOR_UPDATE,
 *   audit_head), e.g. SELECT ... FOR UPDATE.
 * - Functions return 0 on success and -1 on a storage error (logged once,
 *   where it happened); "1" results are documented per function.  After
 *   -1 inside a transaction the caller rolls back.
 * - Rows given to callbacks are valid only during the call; rows filled
 *   into the caller's struct are owned by the caller (intent_row_clear,
 *   ks_row_clear).
 * - Nothing here decides anything: statuses move only when the lifecycle
 *   (lifecycle.c) says so, and never without an audit record.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rows.h"

struct store;

/* store_open flags */
#define STORE_CREATE	0x1	/* create the database if it does not exist */

/*
 * Open the database named by spec (a SQLite file path, or a PostgreSQL
 * "postgresql://..." / "postgres://..." URI in libpq's syntax), apply
 * pending schema migrations, and set the engine's durability and locking
 * settings.  A database newer than this binary is refused; so is, without
 * STORE_CREATE, a missing file or a PostgreSQL database without
 * toolgate's schema.  NULL on failure, with one line in err naming the
 * database (as store_display shows it) and the problem.  Database files
 * are created mode 0600.
 */
struct store	*store_open(const char *spec, unsigned flags, char *err,
		    size_t errlen);
void		 store_close(struct store *s);
/* 1 if spec names a database file (SQLite) rather than a server URI, so
 * that a caller may check the file itself first. */
int		 store_spec_is_file(const char *spec);
/*
 * spec as messages and logs may show it: a file path as it is, a URI
 * without its password (user, host, port and database name only).  Never
 * print a --db string any other way.
 */
void		 store_display(const char *spec, char *out, size_t outlen);
#define STORE_DISPLAY_MAX	256
/*
 * For a server database (PostgreSQL): 1 when the server answers, 0 when
 * it does not (yet: not running, starting up, unreachable), with why; -1
 * when that question does not apply (a file, or a URI libpq cannot
 * read).  Lets a daemon wait for its database at start.
 */
int		 store_ping(const char *spec, char *why, size_t whylen);
/* Schema version of this binary (its newest migration). */
int		 store_schema_version(void);

/*
 * Change generations: counters that move whenever the thing they name
 * changes, in any process sharing the database.  A cache (policy snapshot,
 * engaged kill switches, long-poll checks) keeps the generation it was
 * built at and compares.  Read inside a transaction, policy and killswitch
 * are exactly those the transaction sees.
 */
struct store_gen {
	int64_t		 policy;	/* newest policy version (0: none) */
	int64_t		 killswitch;	/* bumped by every trip and reset */
	int64_t		 data;		/* moves at least whenever another
					 * connection writes intents or
					 * approvals (PostgreSQL: with
					 * every audit record) */
};
#define STORE_GEN_POLICY	0x1
#define STORE_GEN_KILLSWITCH	0x2
#define STORE_GEN_DATA		0x4

/* intent_get flags */
#define STORE_FOR_UPDATE	0x1	/* lock the row until the transaction ends */
#define STORE_APPROVALS		0x2	/* also fill r->approvals */

/* A status change, applied only while the intent is in status from. */
struct intent_move {
	const char		*id;
	enum intent_status	 from, to;
	int64_t			 decided_at;	/* 0: unchanged */
	int64_t			 expires_at;	/* 0: unchanged */
	const char		*reason_text;	/* NULL: unchanged */
	const char		*closed_by;	/* NULL: unchanged */
	const char		*closed_reason;	/* NULL: unchanged */
};

/* One page of the approval queue (GET /v1/approvals). */
struct intent_query {
	enum intent_status	 status;
	const char		*cursor;	/* NULL: from the start */
	int64_t			 limit;		/* rows at most */
};
#define STORE_CURSOR_MAX	64

/* An audit chain record as stored (audit.c builds and checks them). */
struct audit_row {
	int64_t		 seq;
	const char	*event;
	const char	*intent_id;	/* or NULL */
	const char	*record;	/* the exact canonical bytes hashed */
	size_t		 record_len;
	const char	*prev_hash;
	const char	*hash;
};

typedef int (*store_intent_cb)(const struct intent_row *r, void *arg);
typedef int (*store_ks_cb)(const struct ks_row *r, void *arg);
typedef int (*store_audit_cb)(const struct audit_row *r, void *arg);
/*
 * intents_pending / intents_due rows: id, agent, tool, status and one
 * time: created_at of a pending intent in intents_pending; in
 * intents_due the expires_at of a pending one, the decided_at of an
 * allowed one.
 */
typedef int (*store_brief_cb)(const char *id, const char *agent,
    const char *tool, enum intent_status st, int64_t at, void *arg);
/*
 * One change heard from the database (listen/heard): what (a STORE_GEN_*
 * bit) changed, and for STORE_GEN_DATA the intent whose status moved (id;
 * NULL: any may have).
 */
typedef void (*store_heard_cb)(unsigned what, const char *id, void *arg);

/*
 * The engine's functions.  Callbacks return 0 to go on and non-zero to
 * stop the walk (which then returns 0).
 */
struct store_ops {
	const char	*name;
	void	(*close)(struct store *s);
	/* full: an answered decision survives power loss; else a crash. */
	int	(*set_durability)(struct store *s, int full);

	/* transactions */
	int	(*begin)(struct store *s);
	int	(*commit)(struct store *s);	/* rolled back on failure */
	void	(*rollback)(struct store *s);	/* no-op outside one */

	/* the generations of topics (STORE_GEN_* mask) into *g */
	int	(*generations)(struct store *s, unsigned topics,
		    struct store_gen *g);

	/* policy versions: the newest (version 0, body NULL: none) and a
	 * new one (its number in *version) */
	int	(*policy_current)(struct store *s, int64_t *version,
		    char **body, size_t *len);
	int	(*policy_insert)(struct store *s, int64_t now,
		    const char *actor, const char *sha256, const char *text,
		    size_t len, int64_t *version);

	/* replay guard: 0 when (iss, jti) is new (now kept until prune_at),
	 * 1 when seen before */
	int	(*jti_claim)(struct store *s, const char *iss, const char *jti,
		    int64_t prune_at);
	int	(*jti_prune)(struct store *s, int64_t now);

	/* intents */
	int	(*intent_insert)(struct store *s, const struct intent_row *r);
	/* 1 and *r filled (owned), 0 when there is no such intent */
	int	(*intent_get)(struct store *s, const char *id, unsigned flags,
		    struct intent_row *r);
	/* the newest intent of agent whose intent_sha256 is call_sha256
	 * that an MCP repeat may join: decided pending, now pending or
	 * allowed, not redeemed.  1 and *r filled (owned, with approvals;
	 * locked until the transaction ends: SQLite's write lock, or the
	 * head lock then FOR UPDATE on PostgreSQL), 0 when there is none */
	int	(*intent_open_call)(struct store *s, const char *agent,
		    const char *call_sha256, struct intent_row *r);
	/* only the status: what a long-poll check needs; 1 found, 0 not */
	int	(*intent_status)(struct store *s, const char *id,
		    enum intent_status *st);
	/* 0 moved, 1 when the intent was not in m->from */
	int	(*intent_move)(struct store *s, const struct intent_move *m);
	/* mark an allowed, unredeemed intent redeemed: 0, or 1 when it is
	 * not (any more) redeemable */
	int	(*intent_redeem)(struct store *s, const char *id,
		    const char *by, int64_t now);
	/* intents in q->status: pending oldest first, others (only those
	 * that needed approval) newest first, with approvals; at most
	 * q->limit.  next_cursor[STORE_CURSOR_MAX] gets the cursor of the
	 * next page ("" when this was the last); -2 for a malformed
	 * q->cursor */
	int	(*intent_page)(struct store *s, const struct intent_query *q,
		    store_intent_cb cb, void *arg, char *next_cursor);
	/* pending intents (queue order), each locked until the transaction
	 * ends, so that a trip rejects exactly what it counted */
	int	(*intents_pending)(struct store *s, store_brief_cb cb,
		    void *arg);
	/* at most limit intents past a deadline: pending with expires_at <=
	 * now, and allowed unredeemed ones with decided_at <= allowed_before */
	int	(*intents_due)(struct store *s, int64_t now,
		    int64_t allowed_before, int64_t limit, store_brief_cb cb,
		    void *arg);
	/* record one approval: 0 added, 1 when by had already approved */
	int	(*approval_add)(struct store *s, const char *id, const char *by,
		    int64_t at, const char *comment);

	/* kill switches: each trip and reset also bumps the killswitch
	 * generation in the same transaction */
	int	(*ks_insert)(struct store *s, const struct ks_row *r,
		    int64_t *id);
	/* 0 reset, 1 when id is not an engaged switch */
	int	(*ks_reset)(struct store *s, int64_t id, const char *by,
		    int64_t at, const char *reason);
	/* 1 and *r filled (owned), 0 when there is no such switch */
	int	(*ks_get)(struct store *s, int64_t id, struct ks_row *r);
	/* engaged switches, by id */
	int	(*ks_engaged)(struct store *s, store_ks_cb cb, void *arg);

	/* audit chain: the newest record's seq and hash (0 and the genesis
	 * hash when empty) — locks the chain head until the transaction
	 * ends — and appending one record */
	int	(*audit_head)(struct store *s, int64_t *seq, char hash[65]);
	int	(*audit_insert)(struct store *s, const struct audit_row *r);
	/* records with seq > after, in order; limit 0 = all */
	int	(*audit_walk)(struct store *s, int64_t after, int64_t limit,
		    store_audit_cb cb, void *arg);

	/*
	 * Change feed, for engines several processes share over a network
	 * (PostgreSQL: LISTEN/NOTIFY): every kill switch trip and reset,
	 * policy version and intent status change is announced when its
	 * transaction commits.  listen turns s into a listener (it serves
	 * nothing else then) and returns the socket to wait on for input,
	 * -2 when the engine has no feed (SQLite: the generations are
	 * enough on one host), or -1 when the database cannot be reached
	 * now (try again later).  heard, once the socket is readable, gives
	 * each change to cb: 0, or -1 when the connection was lost (listen
	 * again; anything may have changed meanwhile).
	 */
	int	(*listen)(struct store *s);
	int	(*heard)(struct store *s, store_heard_cb cb, void *arg);
};

/* Every engine's handle starts with this. */
struct store {
	const struct store_ops	*ops;
};

/* Shorthands for the calls every caller makes. */
static inline int
store_begin(struct store *s)
{
	return (s->ops->begin(s));
}

static inline int
store_commit(struct store *s)
{
	return (s->ops->commit(s));
}

static inline void
store_rollback(struct store *s)
{
	s->ops->rollback(s);
}
