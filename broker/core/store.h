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
	int64_t		 queue;		/* the approval queue: bumped by
					 * intent_insert of a pending intent,
					 * intent_move from pending and
					 * approval_add, in their transaction */
};
#define STORE_GEN_POLICY	0x1
#define STORE_GEN_KILLSWITCH	0x2
#define STORE_GEN_DATA		0x4
#define STORE_GEN_QUEUE		0x8

/*
 * What /metrics shows of the database (CONTRACT §12), read in one go and
 * cheaply: no walk of the intents, whatever their number.
 */
#define STORE_PAST_HALF_MAX	1000	/* past_half_ttl counts up to this */
struct store_stats {
	int64_t		 pending;	/* intents pending now */
	int64_t		 oldest_pending_at;	/* its created_at; 0: none */
	/* pending intents at least half-way through their approval TTL
	 * (created_at + (expires_at - created_at) / 2 <= now), counted up
	 * to STORE_PAST_HALF_MAX */
	int64_t		 past_half_ttl;
	int64_t		 killswitches;	/* engaged switches */
};

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

/* One policy version as policy_history gives it (no body). */
struct policy_version_row {
	int64_t		 version;
	int64_t		 at;		/* when it was applied */
	const char	*actor;		/* who applied it */
	const char	*sha256;	/* hex SHA-256 of the stored bytes */
};

/*
 * Where retention cut the chain (toolgatectl audit prune): the records up
 * to seq are archived; the chain kept goes on after that record, whose
 * hash was hash.  checkpoint: its signed checkpoint (checkpoint.h).
 */
struct audit_cut {
	int64_t		 seq;
	char		 hash[65];
	char		*checkpoint;	/* owned: free() */
};

/*
 * Usage of a cumulative limit (CONTRACT §8.3; usage.c keeps it): one
 * row per (limit name, key) — a running total of its buckets — and per
 * second the intents counted under it.  Amounts are whole units and
 * micro-units (a row's micro is 0..999999; a bucket's too).  A count
 * limit has whole = micro = 0: n is its usage.
 */
struct limit_usage_row {
	int64_t		 id;		/* 0: not stored yet */
	const char	*name;		/* borrowed */
	const char	*key;		/* RFC 8785 array text; borrowed */
	const char	*agent;		/* the key's agent, or NULL */
	int64_t		 n;		/* intents counted */
	int64_t		 whole;
	int64_t		 micro;
	int64_t		 oldest;	/* "at" of the oldest bucket, 0: none */
	int64_t		 newest;	/* no bucket is later (0: none) */
};

struct limit_bucket_row {
	int64_t		 at;		/* the second its intents were made */
	int64_t		 n;
	int64_t		 whole;
	int64_t		 micro;
};

typedef int (*store_intent_cb)(const struct intent_row *r, void *arg);
typedef int (*store_policy_cb)(const struct policy_version_row *r,
    void *arg);
/*
 * One outbox row (CONTRACT §10): an event waiting for one sink.  Events
 * for several sinks share their event_id (the Toolgate-Delivery id).
 */
struct outbox_row {
	int64_t		 id;		/* the sink's delivery order (store's) */
	const char	*sink;
	const char	*event_id;	/* "ev_" and 32 hex digits */
	const char	*type;		/* "intent.pending", ... */
	int64_t		 at;		/* when the change happened */
	int64_t		 audit_seq;	/* audit.record: its record, else 0 */
	const char	*data;		/* JSON object text; NULL with audit_seq */
};

/* outbox_remove: why rows leave the queue */
enum outbox_removal { OUTBOX_DELIVERED, OUTBOX_GIVEN_UP };

/* A sink's delivery state and counters, as stored. */
struct sink_row {
	const char	*name;
	const char	*events;	/* its patterns, as configured */
	const char	*target;	/* scheme://host:port (never the path) */
	const char	*lease_owner;	/* or NULL */
	int64_t		 lease_until;
	int64_t		 attempts;	/* failed attempts in a row */
	int64_t		 next_at;	/* no attempt before (0: now) */
	int64_t		 queued;	/* rows waiting */
	int64_t		 oldest_at;	/* at of the oldest waiting, or 0 */
	int64_t		 delivered, failed, given_up, dropped;
	const char	*last_error;	/* or NULL */
	int64_t		 last_error_at, last_delivered_at;	/* 0: never */
};

typedef int (*store_outbox_cb)(const struct outbox_row *r, void *arg);
typedef int (*store_sink_cb)(const struct sink_row *r, void *arg);
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
/* limit_usage_walk rows (strings valid during the call) and buckets. */
typedef int (*store_usage_cb)(const struct limit_usage_row *u, void *arg);
typedef int (*store_bucket_cb)(const struct limit_bucket_row *b, void *arg);
/* limit_defs_walk: one (name, def) pair. */
typedef int (*store_def_cb)(const char *name, const char *def, void *arg);
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
	/*
	 * Make every transaction this connection committed under
	 * set_durability(s, 0) survive power loss now: 0, or -1; 1 when the
	 * engine cannot (then commit durably instead).  SQLite: an fsync of
	 * the WAL, and nothing when a durable commit has covered them;
	 * PostgreSQL: 1.
	 */
	int	(*flush)(struct store *s);
	/* From now on this connection only reads: any write fails (the
	 * daemon's connection threads, which leave every write to the
	 * writer).  0, or -1. */
	int	(*set_read_only)(struct store *s);

	/* transactions */
	int	(*begin)(struct store *s);
	int	(*commit)(struct store *s);	/* rolled back on failure */
	void	(*rollback)(struct store *s);	/* no-op outside one */

	/* the generations of topics (STORE_GEN_* mask) into *g */
	int	(*generations)(struct store *s, unsigned topics,
		    struct store_gen *g);
	/*
	 * Inside a write transaction: 0 when no other connection can have
	 * written the database since the transaction that last set *mark
	 * (so what this connection read then is still true), 1 when one
	 * may have; *mark is set for the next call.  A connection keeps
	 * what it read across transactions only on 0.  SQLite: PRAGMA
	 * data_version; PostgreSQL: always 1 (other brokers write).
	 */
	int	(*others_wrote)(struct store *s, int64_t *mark);

	/* policy versions: the newest (version 0, body NULL: none) and a
	 * new one (its number in *version) */
	int	(*policy_current)(struct store *s, int64_t *version,
		    char **body, size_t *len);
	int	(*policy_insert)(struct store *s, int64_t now,
		    const char *actor, const char *sha256, const char *text,
		    size_t len, int64_t *version);
	/* versions older than before (0: from the newest), newest first,
	 * at most limit */
	int	(*policy_history)(struct store *s, int64_t before,
		    int64_t limit, store_policy_cb cb, void *arg);

	/* replay guard: 0 when (iss, jti) is new (now kept until prune_at),
	 * 1 when seen before */
	int	(*jti_claim)(struct store *s, const char *iss, const char *jti,
		    int64_t prune_at);
	int	(*jti_prune)(struct store *s, int64_t now);

	/* intents; the pending count of stats moves with them: one more
	 * when a pending intent is stored, one less when a move takes one
	 * out of pending (in the same transaction) */
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

	/*
	 * Usage of cumulative limits (usage.c; migrations/0004).  Every
	 * usage row and bucket of a (name, key) is read and written only
	 * while its usage row is held: limit_usage_get with
	 * STORE_FOR_UPDATE locks the row — or, when there is none yet, the
	 * (name, key) it would have (PostgreSQL: INSERT ... ON CONFLICT DO
	 * NOTHING of an empty row, then SELECT ... FOR UPDATE) — until the
	 * transaction ends, so that decisions on several brokers cannot
	 * both spend the same headroom.  SQLite's BEGIN IMMEDIATE already
	 * holds the whole database.
	 *
	 * limit_usage_get: 1 and *u (name and key borrowed from the
	 * arguments, agent not read; a locking engine may create an empty
	 * row, n 0 and agent NULL, which usage.c deletes at the flush
	 * unless it counts something in it), or 0 when there is no row.
	 */
	int	(*limit_usage_get)(struct store *s, const char *name,
		    const char *key, unsigned flags, struct limit_usage_row *u);
	/* store *u: insert when u->id is 0 (u->id set), else update (an
	 * empty row a locking engine made gets its agent here); a row whose n is 0 is deleted with its buckets
	 * (u->id then 0) */
	int	(*limit_usage_put)(struct store *s, struct limit_usage_row *u);
	/* rows with id > after (of agent, when not NULL), by id, at most
	 * limit (0: all) */
	int	(*limit_usage_walk)(struct store *s, int64_t after,
		    const char *agent, int64_t limit, store_usage_cb cb,
		    void *arg);
	/* one bucket: 1 and *b, or 0 when there is none */
	int	(*limit_bucket_get)(struct store *s, int64_t usage_id,
		    int64_t at, struct limit_bucket_row *b);
	/* store *b (insert or replace; n 0 deletes it) */
	int	(*limit_bucket_put)(struct store *s, int64_t usage_id,
		    const struct limit_bucket_row *b);
	/* buckets with at > after, oldest first, until cb says stop */
	int	(*limit_buckets_walk)(struct store *s, int64_t usage_id,
		    int64_t after, store_bucket_cb cb, void *arg);
	/* delete the buckets with at <= upto */
	int	(*limit_buckets_drop)(struct store *s, int64_t usage_id,
		    int64_t upto);
	/* what each limit's usage was counted for (name, def), and
	 * setting one */
	int	(*limit_defs_walk)(struct store *s, store_def_cb cb,
		    void *arg);
	int	(*limit_def_put)(struct store *s, const char *name,
		    const char *def);
	/* drop limit name: its def, usage rows and buckets */
	int	(*limit_forget)(struct store *s, const char *name);
	/* intents pending or allowed created after created_after, in any
	 * order (counting a new limit's window: a full scan is allowed) */
	int	(*intents_live)(struct store *s, int64_t created_after,
		    store_intent_cb cb, void *arg);

	/* audit chain: the newest record's seq and hash (0 and the genesis
	 * hash when empty) — locks the chain head until the transaction
	 * ends — and appending one record */
	int	(*audit_head)(struct store *s, int64_t *seq, char hash[65]);
	int	(*audit_insert)(struct store *s, const struct audit_row *r);
	/* records with seq > after, in order; limit 0 = all */
	int	(*audit_walk)(struct store *s, int64_t after, int64_t limit,
		    store_audit_cb cb, void *arg);

	/* the gauges of /metrics at time now (struct store_stats) */
	int	(*stats)(struct store *s, int64_t now, struct store_stats *out);

	/*
	 * The outbox (outbox.h).  Rows are added inside the transaction of
	 * the change they report; the sender works on its own connection,
	 * each call its own statement or transaction.
	 */
	int	(*outbox_add)(struct store *s, const struct outbox_row *r);
	/* sink's oldest rows, at most limit, in delivery order */
	int	(*outbox_head)(struct store *s, const char *sink,
		    int64_t limit, store_outbox_cb cb, void *arg);
	/* remove sink's rows up to id upto (inclusive) and count them as
	 * delivered (which also ends the sink's back-off) or given up;
	 * *n how many */
	int	(*outbox_remove)(struct store *s, const char *sink,
		    int64_t upto, enum outbox_removal why, int64_t now,
		    int64_t *n);
	int	(*outbox_count)(struct store *s, const char *sink, int64_t *n);
	/* drop (and count as dropped) up to n of sink's oldest rows: every
	 * audit.record first, then other types, never an intent.pending;
	 * *dropped how many */
	int	(*outbox_drop)(struct store *s, const char *sink, int64_t n,
		    int64_t *dropped);

	/* sinks: create name's row, or update its events and target */
	int	(*sink_register)(struct store *s, const char *name,
		    const char *events, const char *target);
	/* take or renew name's lease for owner until `until` (0 lets it
	 * go): 0 held, 1 another owner holds it past now (or no such sink) */
	int	(*sink_lease)(struct store *s, const char *name,
		    const char *owner, int64_t now, int64_t until);
	/* an attempt failed: attempts + 1, failed + 1, no attempt before
	 * next_at, the error (at most 200 bytes kept) */
	int	(*sink_failed)(struct store *s, const char *name, int64_t now,
		    int64_t next_at, const char *error);
	/* every sink, by name, with its queue's length */
	int	(*sink_status)(struct store *s, store_sink_cb cb, void *arg);

	/* 0 when the caller may write the audit.checkpoint of now (none
	 * was written in the last `every` seconds, by anyone: recorded
	 * now), 1 when not due */
	int	(*checkpoint_claim)(struct store *s, int64_t now,
		    int64_t every);

	/* what the broker checks before it relies on a row
	 * (audit_trust.h): the records of intent id, in order; the newest
	 * "policy.apply" record (cb not called when there is none) */
	int	(*audit_intent)(struct store *s, const char *id,
		    store_audit_cb cb, void *arg);
	int	(*audit_policy_newest)(struct store *s, store_audit_cb cb,
		    void *arg);

	/* retention (audit_prune.h).  audit_live_first: the seq of the
	 * oldest record of an intent still pending or allowed and not
	 * redeemed (0 when there is none), which a cut must keep.
	 * audit_cut_get: 1 and *c (c->checkpoint owned), 0 when the chain
	 * was never cut.  audit_prune: record c as the cut (replacing the
	 * previous one) and delete the records with seq <= c->seq.
	 * intents_prune: delete the intents that are over (denied,
	 * rejected, expired, or allowed and redeemed) and whose every time
	 * is before `before`, with their approvals; *n how many. */
	int	(*audit_live_first)(struct store *s, int64_t *seq);
	int	(*audit_cut_get)(struct store *s, struct audit_cut *c);
	int	(*audit_prune)(struct store *s, const struct audit_cut *c);
	int	(*intents_prune)(struct store *s, int64_t before, int64_t *n);
	/*
	 * Change feed, for engines several processes share over a network
	 * (PostgreSQL: LISTEN/NOTIFY): every kill switch trip and reset,
	 * policy version, intent status change and change of the approval
	 * queue is announced when its transaction commits.  listen turns s into a listener (it serves
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
