/*
 * store_pg: the PostgreSQL engine of the storage seam (store.h), for any
 * number of brokers on one database — every statement it runs is in
 * this file (the connection, migrations and transactions are in
 * store_pg_db.c).  Each statement is prepared once per connection and
 * run with bound parameters.  Nothing here decides: it stores what the
 * lifecycle tells it.
 *
 * How the promises hold across brokers:
 * - One write lock, and it is not a table lock: every write transaction
 *   locks the one row of audit_head (SELECT ... FOR UPDATE) before its
 *   first write or row lock (pg_tx_lock).  Appends therefore form one
 *   chain with one sequence, a batch of decisions from any broker
 *   serialises with the others only on that row, from its first write to
 *   its commit, and readers (GET, long-polls, the queue, audit export)
 *   never wait.  One lock taken first by everyone is also one lock order:
 *   write transactions cannot deadlock.
 * - The lock is taken before the generations are read inside a
 *   transaction, and READ COMMITTED gives every statement what committed
 *   before it: a decision reads the kill switches after every trip that
 *   committed before it and no trip can commit during it, so no broker
 *   allows what a trip that returned covers.
 * - Replay: INSERT ... ON CONFLICT DO NOTHING on (iss, jti).  Redemption
 *   and status moves are conditional UPDATEs (... AND status = from), so
 *   they happen once whatever races them; approvals are counted under the
 *   intent's row lock.
 * - User-visible ids (policy versions, kill switches) are max + 1 under
 *   the head lock: gap-free, as on SQLite.
 * - The pending count of /metrics (schema 8) is a counter row, moved by
 *   the transaction that stores a pending intent or moves one out of
 *   pending, after the head lock: every broker's changes count once, and
 *   a scrape reads one row instead of counting intents.
 * - The change feed: trips and resets ("k"), policy versions ("p") and
 *   status moves ("i" + id) send NOTIFY in their own transaction, so
 *   every listening broker hears of them when, and only if, they commit.
 *   Decisions send none: the hot path pays nothing for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "store_pg.h"
#include "store_pg_impl.h"

#define PG_WALK_CHUNK	1000	/* audit records per round trip */

/* --- the chain head and the generations ---------------------------------- */

static const struct pg_stmt SQL_HEAD_LOCK = {
    "SELECT seq, hash FROM audit_head FOR UPDATE", 0 };
static const struct pg_stmt SQL_HEAD_GET = {
    "SELECT seq, hash FROM audit_head", 0 };
static const struct pg_stmt SQL_HEAD_SET = {
    "UPDATE audit_head SET seq = $1, hash = $2", 2 };
/* Primary-key lookups and one max() over a primary key. */
static const struct pg_stmt SQL_GENERATIONS = {
    "SELECT (SELECT max(version) FROM policy_versions), "
    "(SELECT value FROM counters WHERE name = 'killswitch'), "
    "(SELECT seq FROM audit_head), "
    "(SELECT value FROM counters WHERE name = 'queue')", 0 };
/* The approval queue moved (a new pending intent, an approval, one
 * leaving pending): every broker's queue long-polls hear it ("q"). */
static const struct pg_stmt SQL_QUEUE_BUMP = {
    "WITH c AS (UPDATE counters SET value = value + 1 WHERE name = "
    "'queue' RETURNING value) "
    "SELECT pg_notify('" PG_CHANNEL "', 'q') FROM c", 0 };

/* --- policy, replay guard ------------------------------------------- */

static const struct pg_stmt SQL_POLICY_CURRENT = {
    "SELECT version, body FROM policy_versions ORDER BY version DESC "
    "LIMIT 1", 0 };
static const struct pg_stmt SQL_POLICY_INSERT = {
    "WITH v AS (INSERT INTO policy_versions (version, created_at, actor, "
    "sha256, body) SELECT coalesce(max(version), 0) + 1, $1::bigint, "
    "$2::text, $3::text, $4::text FROM policy_versions RETURNING version) "
    "SELECT version, pg_notify('" PG_CHANNEL "', 'p') FROM v", 4 };
static const struct pg_stmt SQL_POLICY_HISTORY = {
    "SELECT version, created_at, actor, sha256 FROM policy_versions "
    "WHERE version < $1 ORDER BY version DESC LIMIT $2", 2 };
static const struct pg_stmt SQL_JTI_CLAIM = {
    "INSERT INTO seen_jti (iss, jti, prune_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING", 3 };
static const struct pg_stmt SQL_JTI_PRUNE = {
    "DELETE FROM seen_jti WHERE prune_at < $1", 1 };

/* --- intents -------------------------------------------------------- */

static const struct pg_stmt SQL_INTENT_INSERT = {
    "INSERT INTO intents (id, agent, jti, tool, args, args_sha256, "
    "amount_value, amount_currency, reason, status, decision, reason_code, "
    "reason_text, policy_version, rule, approvals_required, approver_roles, "
    "intent_sha256, created_at, expires_at, decided_at, limit_json) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18, $19, $20, $21, $22)", 22 };
#define INTENT_COLUMNS \
    "id, agent, jti, tool, args, args_sha256, amount_value, " \
    "amount_currency, reason, status, decision, reason_code, reason_text, " \
    "policy_version, rule, approvals_required, approver_roles, " \
    "intent_sha256, created_at, expires_at, decided_at, redeemed_at, " \
    "redeemed_by, closed_by, closed_reason, seq, limit_json "
enum {
	C_ID, C_AGENT, C_JTI, C_TOOL, C_ARGS, C_ARGS_SHA, C_AMOUNT_VALUE,
	C_AMOUNT_CURRENCY, C_REASON, C_STATUS, C_DECISION, C_REASON_CODE,
	C_REASON_TEXT, C_POLICY_VERSION, C_RULE, C_APPROVALS_REQUIRED,
	C_APPROVER_ROLES, C_INTENT_SHA, C_CREATED_AT, C_EXPIRES_AT,
	C_DECIDED_AT, C_REDEEMED_AT, C_REDEEMED_BY, C_CLOSED_BY,
	C_CLOSED_REASON, C_SEQ, C_LIMIT
};
static const struct pg_stmt SQL_INTENT_GET = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE id = $1", 1 };
static const struct pg_stmt SQL_INTENT_GET_LOCK = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE id = $1 FOR UPDATE", 1 };
/* The newest intent a repeated MCP call may join (migration 0007's
 * partial index holds exactly the candidates), locked like intent_get's
 * STORE_FOR_UPDATE: an approval, rejection or expiry racing the join
 * waits for it. */
static const struct pg_stmt SQL_INTENT_OPEN_CALL = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE intent_sha256 = $1 "
    "AND agent = $2 AND decision = 'pending' AND redeemed_at IS NULL "
    "AND status IN ('pending', 'allowed') "
    "ORDER BY created_at DESC, seq DESC LIMIT 1 FOR UPDATE", 2 };
static const struct pg_stmt SQL_INTENT_STATUS = {
    "SELECT status FROM intents WHERE id = $1", 1 };
/* One row back when it moved, and its waiters on every broker hear it. */
static const struct pg_stmt SQL_INTENT_MOVE = {
    "WITH m AS (UPDATE intents SET status = $1, "
    "decided_at = coalesce($2, decided_at), "
    "expires_at = coalesce($3, expires_at), "
    "reason_text = coalesce($4, reason_text), "
    "closed_by = coalesce($5, closed_by), "
    "closed_reason = coalesce($6, closed_reason) "
    "WHERE id = $7 AND status = $8 RETURNING id) "
    "SELECT pg_notify('" PG_CHANNEL "', 'i' || id) FROM m", 8 };
static const struct pg_stmt SQL_INTENT_REDEEM = {
    "UPDATE intents SET redeemed_at = $1, redeemed_by = $2 "
    "WHERE id = $3 AND status = 'allowed' AND redeemed_at IS NULL", 3 };
/* Pages: the cursor is the (time, seq) of the last row shown. */
static const struct pg_stmt SQL_PAGE_PENDING = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = 'pending' "
    "AND (created_at, seq) > ($1, $2) ORDER BY created_at, seq LIMIT $3", 3 };
static const struct pg_stmt SQL_PAGE_CLOSED = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = $4 "
    "AND approvals_required > 0 AND (decided_at, seq) < ($1, $2) "
    "ORDER BY decided_at DESC, seq DESC LIMIT $3", 4 };
static const struct pg_stmt SQL_PENDING_ALL_LOCK = {
    "SELECT id, agent, tool, created_at FROM intents WHERE status = "
    "'pending' ORDER BY created_at, seq FOR UPDATE", 0 };
static const struct pg_stmt SQL_DUE_PENDING = {
    "SELECT id, agent, tool, expires_at FROM intents WHERE status = "
    "'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2", 2 };
static const struct pg_stmt SQL_DUE_ALLOWED = {
    "SELECT id, agent, tool, decided_at FROM intents WHERE status = "
    "'allowed' AND redeemed_at IS NULL AND decided_at <= $1 "
    "ORDER BY decided_at LIMIT $2", 2 };
/* Counting a new limit's window (rare: a policy that adds or changes a
 * limit), in chunks by id: no index slows every insert for it. */
static const struct pg_stmt SQL_INTENTS_LIVE = {
    "SELECT " INTENT_COLUMNS "FROM intents WHERE created_at > $1 "
    "AND status IN ('pending', 'allowed') AND id > $2 ORDER BY id "
    "LIMIT $3", 3 };
static const struct pg_stmt SQL_APPROVAL_INSERT = {
    "INSERT INTO approvals (intent_id, approver, at, comment) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (intent_id, approver) DO NOTHING",
    4 };
static const struct pg_stmt SQL_APPROVALS_GET = {
    "SELECT approver, at, comment FROM approvals WHERE intent_id = $1 "
    "ORDER BY id", 1 };

/* --- kill switches -------------------------------------------------- */

static const struct pg_stmt SQL_KS_INSERT = {
    "INSERT INTO killswitches (id, scope, target, reason, tripped_by, "
    "tripped_at) SELECT coalesce(max(id), 0) + 1, $1::text, $2::text, "
    "$3::text, $4::text, $5::bigint FROM killswitches RETURNING id", 5 };
static const struct pg_stmt SQL_KS_BUMP = {
    "WITH c AS (UPDATE counters SET value = value + 1 WHERE name = "
    "'killswitch' RETURNING value) "
    "SELECT pg_notify('" PG_CHANNEL "', 'k') FROM c", 0 };
static const struct pg_stmt SQL_KS_RESET = {
    "UPDATE killswitches SET reset_by = $1, reset_at = $2, "
    "reset_reason = $3 WHERE id = $4 AND reset_at IS NULL", 4 };
#define KS_COLUMNS \
    "id, scope, target, reason, tripped_by, tripped_at, reset_by, " \
    "reset_at, reset_reason "
static const struct pg_stmt SQL_KS_GET = {
    "SELECT " KS_COLUMNS "FROM killswitches WHERE id = $1", 1 };
static const struct pg_stmt SQL_KS_ENGAGED = {
    "SELECT " KS_COLUMNS "FROM killswitches WHERE reset_at IS NULL "
    "ORDER BY id", 0 };

/* --- the gauges of /metrics (schema 8) ----------------------------- */

/* The pending count moves with the intents, under the head lock. */
static const struct pg_stmt SQL_COUNTER_ADD = {
    "UPDATE counters SET value = value + $1 WHERE name = $2", 2 };
/* Each part reads an index: the counter row, the first entry of
 * intents_pending, at most STORE_PAST_HALF_MAX entries of
 * intents_pending_half (the expression written as the index has it),
 * and killswitches_engaged. */
static const struct pg_stmt SQL_STATS = {
    "SELECT (SELECT value FROM counters WHERE name = 'pending'), "
    "(SELECT created_at FROM intents WHERE status = 'pending' "
    "ORDER BY created_at LIMIT 1), "
    "(SELECT count(*) FROM (SELECT 1 FROM intents WHERE status = 'pending' "
    "AND (created_at + (expires_at - created_at) / 2) <= $1 LIMIT $2) h), "
    "(SELECT count(*) FROM killswitches WHERE reset_at IS NULL)", 2 };

/* --- audit chain ---------------------------------------------------- */

static const struct pg_stmt SQL_AUDIT_INSERT = {
    "INSERT INTO audit (seq, event, intent_id, record, prev_hash, hash) "
    "VALUES ($1, $2, $3, $4, $5, $6)", 6 };
#define AUDIT_COLUMNS "seq, event, intent_id, record, prev_hash, hash "
static const struct pg_stmt SQL_AUDIT_WALK = {
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE seq > $1 ORDER BY seq "
    "LIMIT $2", 2 };

/* --- what the broker checks, retention (0005) ------------------------- */

static const struct pg_stmt SQL_AUDIT_INTENT = {
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE intent_id = $1 ORDER BY seq",
    1 };
/* The literal matches the partial index audit_policy (0005). */
static const struct pg_stmt SQL_AUDIT_POLICY = {
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE event = 'policy.apply' "
    "ORDER BY seq DESC LIMIT 1", 0 };
/* Each half uses its partial index on intents, then audit_intent. */
static const struct pg_stmt SQL_AUDIT_LIVE_FIRST = {
    "SELECT min(seq) FROM audit WHERE intent_id IN "
    "(SELECT id FROM intents WHERE status = 'pending' UNION ALL "
    "SELECT id FROM intents WHERE status = 'allowed' AND "
    "redeemed_at IS NULL)", 0 };
static const struct pg_stmt SQL_CUT_GET = {
    "SELECT seq, hash, checkpoint FROM audit_cut WHERE id = 1", 0 };
static const struct pg_stmt SQL_CUT_SET = {
    "INSERT INTO audit_cut (id, seq, hash, checkpoint) VALUES (1, $1, $2, "
    "$3) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, "
    "hash = EXCLUDED.hash, checkpoint = EXCLUDED.checkpoint", 3 };
static const struct pg_stmt SQL_AUDIT_PRUNE = {
    "DELETE FROM audit WHERE seq <= $1", 1 };
#define INTENTS_OVER \
    "(status IN ('denied', 'rejected', 'expired') OR (status = 'allowed' " \
    "AND redeemed_at IS NOT NULL)) AND created_at < $1 AND " \
    "coalesce(decided_at, 0) < $1 AND coalesce(expires_at, 0) < $1 AND " \
    "coalesce(redeemed_at, 0) < $1"
static const struct pg_stmt SQL_APPROVALS_PRUNE = {
    "DELETE FROM approvals WHERE intent_id IN (SELECT id FROM intents "
    "WHERE " INTENTS_OVER ")", 1 };
static const struct pg_stmt SQL_INTENTS_PRUNE = {
    "DELETE FROM intents WHERE " INTENTS_OVER, 1 };

/* --- outbox and sinks ------------------------------------------------- */

/*
 * Delivery order is the identity id.  Rows are only ever added under the
 * chain-head lock (outbox_add takes it), so ids are handed out in commit
 * order: once a sender has seen id n, no row below n can still commit,
 * and "remove up to n" never removes one it did not see.  The sender's
 * own statements (remove, drop, the sink's row) take no head lock: they
 * touch only outbox and notify_sinks rows, which no write transaction
 * locks before the head, so they cannot deadlock with one, and one
 * broker at a time works on a sink's rows (its lease).
 */
static const struct pg_stmt SQL_OUTBOX_ADD = {
    "INSERT INTO outbox (sink, event_id, type, at, audit_seq, data) "
    "VALUES ($1, $2, $3, $4, $5, $6)", 6 };
static const struct pg_stmt SQL_OUTBOX_HEAD = {
    "SELECT id, sink, event_id, type, at, audit_seq, data FROM outbox "
    "WHERE sink = $1 ORDER BY id LIMIT $2", 2 };
/* One statement each: the rows leave and are counted together. */
static const struct pg_stmt SQL_OUTBOX_DELIVERED = {
    "WITH d AS (DELETE FROM outbox WHERE sink = $1 AND id <= $2 "
    "RETURNING 1), u AS (UPDATE notify_sinks SET delivered = delivered + "
    "(SELECT count(*) FROM d), attempts = 0, next_at = 0, "
    "last_delivered_at = $3 WHERE name = $1) SELECT count(*) FROM d", 3 };
static const struct pg_stmt SQL_OUTBOX_GIVEN_UP = {
    "WITH d AS (DELETE FROM outbox WHERE sink = $1 AND id <= $2 "
    "RETURNING 1), u AS (UPDATE notify_sinks SET given_up = given_up + "
    "(SELECT count(*) FROM d) WHERE name = $1) SELECT count(*) FROM d", 2 };
static const struct pg_stmt SQL_OUTBOX_COUNT = {
    "SELECT count(*) FROM outbox WHERE sink = $1", 1 };
/* The oldest audit records first, then the oldest of anything but a
 * pending intent (an approver must hear of it). */
static const struct pg_stmt SQL_OUTBOX_DROP = {
    "WITH d AS (DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
    "WHERE sink = $1 AND type <> 'intent.pending' "
    "ORDER BY type <> 'audit.record', id LIMIT $2) RETURNING 1), "
    "u AS (UPDATE notify_sinks SET dropped = dropped + "
    "(SELECT count(*) FROM d) WHERE name = $1) SELECT count(*) FROM d", 2 };
static const struct pg_stmt SQL_SINK_REGISTER = {
    "INSERT INTO notify_sinks (name, events, target) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET events = EXCLUDED.events, "
    "target = EXCLUDED.target", 3 };
/* One conditional UPDATE: of brokers racing for a free lease, one gets
 * it (the others' WHERE no longer holds once its row lock is theirs). */
static const struct pg_stmt SQL_SINK_LEASE = {
    "UPDATE notify_sinks SET lease_owner = $1::text, lease_until = $2 "
    "WHERE name = $3 AND (lease_owner = $1::text OR lease_owner IS NULL "
    "OR lease_until <= $4)", 4 };
static const struct pg_stmt SQL_SINK_FAILED = {
    "UPDATE notify_sinks SET attempts = attempts + 1, failed = failed + 1, "
    "next_at = $1, last_error = substr($2, 1, 200), last_error_at = $3 "
    "WHERE name = $4", 4 };
/* Byte order of names, as SQLite sorts them. */
static const struct pg_stmt SQL_SINK_STATUS = {
    "SELECT name, events, target, lease_owner, lease_until, attempts, "
    "next_at, delivered, failed, given_up, dropped, last_error, "
    "last_error_at, last_delivered_at, "
    "(SELECT count(*) FROM outbox o WHERE o.sink = s.name), "
    "(SELECT min(at) FROM outbox o WHERE o.sink = s.name) "
    "FROM notify_sinks s ORDER BY name COLLATE \"C\"", 0 };
static const struct pg_stmt SQL_CHECKPOINT_CLAIM = {
    "UPDATE counters SET value = $1::bigint WHERE name = 'checkpoint' "
    "AND value <= $1::bigint - $2::bigint", 2 };

/* --- helpers -------------------------------------------------------- */

/* Run a statement without parameters. */
static PGresult *
pg_run0(struct pg_store *p, const struct pg_stmt *st, const char *fn)
{
	struct pg_params	 a;

	pg_params_init(&a);
	return (pg_run(p, st, &a, fn));
}

/*
 * Inside a transaction, take the write lock (the chain head's row) unless
 * this transaction holds it, and keep the head it read.  Every op that
 * writes or locks calls this first (see the top of the file).  Outside a
 * transaction there is nothing to hold: 0.
 */
int
pg_tx_lock(struct pg_store *p)
{
	PGresult	*r;
	const char	*h;
	int		 rc = -1;

	if (!p->in_tx || p->head_locked)
		return (0);
	if ((r = pg_run0(p, &SQL_HEAD_LOCK, __func__)) == NULL)
		return (-1);
	if (PQntuples(r) != 1)
		log_warnx("%s: the audit_head row is missing", __func__);
	else if ((h = pg_get(r, 0, 1)) != NULL && strlen(h) != 64)
		log_warnx("%s: the audit head has a malformed hash", __func__);
	else {
		p->head_seq = pg_get_int(r, 0, 0);
		/* NULL: no record yet, the chain starts from genesis. */
		snprintf(p->head_hash, sizeof(p->head_hash), "%s",
		    h != NULL ? h : AUDIT_GENESIS);
		p->head_locked = 1;
		rc = 0;
	}
	PQclear(r);
	return (rc);
}

/* pg_tx_lock for a write that is wrong outside a transaction (why). */
static int
pg_tx_lock_inside(struct pg_store *p, const char *why, const char *fn)
{
	if (!p->in_tx) {
		log_warnx("%s: %s", fn, why);
		return (-1);
	}
	return (pg_tx_lock(p));
}

int
pg_head_write(struct pg_store *p)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_int(&a, p->head_seq);
	pg_text(&a, p->head_hash);
	if (pg_run_count(p, &SQL_HEAD_SET, &a, __func__) != 1)
		return (-1);
	p->head_dirty = 0;
	return (0);
}

/* A copy of cell (row, col) (NULL stays NULL); -1 when out of memory. */
static int
pg_dup(const PGresult *r, int row, int col, char **out)
{
	const char	*s = pg_get(r, row, col);

	*out = NULL;
	if (s == NULL)
		return (0);
	return ((*out = strdup(s)) == NULL ? -1 : 0);
}

/* --- the ops -------------------------------------------------------- */

static void
pg_op_close(struct store *s)
{
	struct pg_store	*p = PG(s);

	if (p == NULL)
		return;
	pg_close(p);
	if (p->uri != NULL) {
		explicit_bzero(p->uri, strlen(p->uri));
		free(p->uri);
	}
	free(p);
}

static int
pg_op_set_durability(struct store *s, int full)
{
	return (pg_set_durability(PG(s), full));
}

static int
pg_op_set_read_only(struct store *s)
{
	return (pg_set_read_only(PG(s)));
}

/* The server decides when a commit without synchronous_commit reaches
 * the disk (its WAL writer): the broker cannot hurry it, so it never
 * commits lazily here. */
static int
pg_op_flush(struct store *s)
{
	(void)s;
	return (1);
}

static int
pg_op_begin(struct store *s)
{
	return (pg_begin(PG(s)));
}

static int
pg_op_commit(struct store *s)
{
	return (pg_commit(PG(s)));
}

static void
pg_op_rollback(struct store *s)
{
	pg_rollback(PG(s));
}

/* Other brokers write the same database at any time. */
static int
pg_op_others_wrote(struct store *s, int64_t *mark)
{
	(void)s;
	(void)mark;
	return (1);
}

static int
pg_op_generations(struct store *s, unsigned topics, struct store_gen *g)
{
	struct pg_store	*p = PG(s);
	PGresult	*r;
	int		 rc = 0;

	/* In a write transaction: after the lock, so that what is read
	 * cannot change before the commit. */
	if (pg_tx_lock(p) == -1 ||
	    (r = pg_run0(p, &SQL_GENERATIONS, __func__)) == NULL)
		return (-1);
	/* A missing counter or head row would mean "nothing ever
	 * changes": fail closed. */
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 1) ||
	    PQgetisnull(r, 0, 2) || PQgetisnull(r, 0, 3)) {
		log_warnx("%s: a counter row is missing", __func__);
		rc = -1;
	} else {
		if (topics & STORE_GEN_POLICY)
			g->policy = pg_get_int(r, 0, 0);
		if (topics & STORE_GEN_KILLSWITCH)
			g->killswitch = pg_get_int(r, 0, 1);
		if (topics & STORE_GEN_DATA)
			g->data = pg_get_int(r, 0, 2);
		if (topics & STORE_GEN_QUEUE)
			g->queue = pg_get_int(r, 0, 3);
	}
	PQclear(r);
	return (rc);
}

static int
pg_op_policy_current(struct store *s, int64_t *version, char **body,
    size_t *len)
{
	PGresult	*r;
	size_t		 n;
	int		 rc = 0;

	*version = 0;
	*body = NULL;
	*len = 0;
	if ((r = pg_run0(PG(s), &SQL_POLICY_CURRENT, __func__)) == NULL)
		return (-1);
	if (PQntuples(r) == 1) {
		n = (size_t)PQgetlength(r, 0, 1);
		*version = pg_get_int(r, 0, 0);
		if ((*body = malloc(n + 1)) == NULL)
			rc = -1;
		else {
			memcpy(*body, PQgetvalue(r, 0, 1), n);
			(*body)[n] = '\0';
			*len = n;
		}
	}
	PQclear(r);
	return (rc);
}

static int
pg_op_policy_insert(struct store *s, int64_t now, const char *actor,
    const char *sha256, const char *text, size_t len, int64_t *version)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*r;
	int			 rc = -1;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, now);
	pg_text(&a, actor);
	pg_text(&a, sha256);
	pg_bytes(&a, text, len);
	if ((r = pg_run(p, &SQL_POLICY_INSERT, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(r) == 1) {
		*version = pg_get_int(r, 0, 0);
		rc = 0;
	}
	PQclear(r);
	return (rc);
}

static int
pg_op_policy_history(struct store *s, int64_t before, int64_t limit,
    store_policy_cb cb, void *arg)
{
	struct pg_params		 a;
	struct policy_version_row	 v;
	PGresult			*r;
	int				 i, n;

	pg_params_init(&a);
	pg_int(&a, before > 0 ? before : INT64_MAX);
	pg_int(&a, limit);
	if ((r = pg_run(PG(s), &SQL_POLICY_HISTORY, &a, __func__)) == NULL)
		return (-1);
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		v.version = pg_get_int(r, i, 0);
		v.at = pg_get_int(r, i, 1);
		v.actor = pg_get(r, i, 2);
		v.sha256 = pg_get(r, i, 3);
		if (cb(&v, arg))
			break;
	}
	PQclear(r);
	return (0);
}

static int
pg_op_jti_claim(struct store *s, const char *iss, const char *jti,
    int64_t prune_at)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, iss);
	pg_text(&a, jti);
	pg_int(&a, prune_at);
	n = pg_run_count(p, &SQL_JTI_CLAIM, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
}

/* Expired claims only: no audit record, so no chain-head lock. */
static int
pg_op_jti_prune(struct store *s, int64_t now)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_int(&a, now);
	return (pg_run_count(PG(s), &SQL_JTI_PRUNE, &a, __func__) == -1 ?
	    -1 : 0);
}

/* The pending count moves by delta, in the caller's transaction (which
 * holds the head lock, so this row is never fought over first); a
 * missing row (a damaged database) fails the change. */
static int
pg_pending_add(struct pg_store *p, int delta)
{
	struct pg_params	 a;
	int64_t			 n;

	pg_params_init(&a);
	pg_int(&a, delta);
	pg_text(&a, "pending");
	if ((n = pg_run_count(p, &SQL_COUNTER_ADD, &a, __func__)) == 0)
		log_warnx("%s: pending counter row missing", __func__);
	return (n == 1 ? 0 : -1);
}

/* The queue's generation moves, and every broker hears it. */
static int
pg_queue_bump(struct pg_store *p)
{
	struct pg_params	 a;
	int64_t			 n;

	pg_params_init(&a);
	if ((n = pg_run_count(p, &SQL_QUEUE_BUMP, &a, __func__)) == 0)
		log_warnx("%s: queue counter row missing", __func__);
	return (n == 1 ? 0 : -1);
}

static int
pg_op_intent_insert(struct store *s, const struct intent_row *r)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, r->id);
	pg_text(&a, r->agent);
	pg_text(&a, r->jti);
	pg_text(&a, r->tool);
	pg_text(&a, r->args);
	pg_text(&a, r->args_sha256);
	pg_text(&a, r->amount_value);
	pg_text(&a, r->amount_currency);
	pg_text(&a, r->agent_reason);
	pg_text(&a, intent_status_name(r->status));
	pg_text(&a, outcome_name(r->decision));
	pg_text(&a, reason_code(r->reason));
	pg_text(&a, r->reason_text);
	pg_int(&a, r->policy_version);
	pg_text(&a, r->rule);
	pg_int(&a, r->approvals_required);
	pg_text(&a, r->approver_roles);
	pg_text(&a, r->intent_sha256);
	pg_int(&a, r->created_at);
	pg_time(&a, r->expires_at);
	pg_time(&a, r->decided_at);
	pg_text(&a, r->limit_json);
	if (pg_run_count(p, &SQL_INTENT_INSERT, &a, __func__) != 1)
		return (-1);
	if (r->status != ST_PENDING)
		return (0);
	return (pg_pending_add(p, 1) == 0 && pg_queue_bump(p) == 0 ? 0 : -1);
}

/* The intent in row i of an INTENT_COLUMNS result. */
static int
pg_row_intent(const PGresult *res, int i, struct intent_row *r)
{
	static const int text_cols[] = { C_AGENT, C_JTI, C_TOOL, C_ARGS,
	    C_ARGS_SHA, C_AMOUNT_VALUE, C_AMOUNT_CURRENCY, C_REASON,
	    C_REASON_TEXT, C_RULE, C_APPROVER_ROLES, C_REDEEMED_BY,
	    C_CLOSED_BY, C_CLOSED_REASON, C_LIMIT };
	char		**slots[] = { &r->agent, &r->jti, &r->tool, &r->args,
	    &r->args_sha256, &r->amount_value, &r->amount_currency,
	    &r->agent_reason, &r->reason_text, &r->rule, &r->approver_roles,
	    &r->redeemed_by, &r->closed_by, &r->closed_reason,
	    &r->limit_json };
	const char	*id = pg_get(res, i, C_ID);
	const char	*sha = pg_get(res, i, C_INTENT_SHA);
	size_t		 k;

	memset(r, 0, sizeof(*r));
	if (id == NULL || sha == NULL || strlen(id) > INTENT_ID_LEN ||
	    strlen(sha) > 64)
		return (-1);
	memcpy(r->id, id, strlen(id) + 1);
	memcpy(r->intent_sha256, sha, strlen(sha) + 1);
	for (k = 0; k < sizeof(text_cols) / sizeof(text_cols[0]); k++)
		if (pg_dup(res, i, text_cols[k], slots[k]) == -1)
			goto bad;
	/* Stored names are ours; anything else means a damaged row. */
	if (intent_status_parse(pg_get(res, i, C_STATUS), &r->status) == -1 ||
	    outcome_parse(pg_get(res, i, C_DECISION), &r->decision) == -1 ||
	    reason_parse_decision(pg_get(res, i, C_REASON_CODE),
	    &r->reason) == -1 || r->agent == NULL || r->tool == NULL ||
	    r->reason_text == NULL) {
		log_warnx("%s: intent %s is malformed", __func__, id);
		goto bad;
	}
	r->policy_version = pg_get_int(res, i, C_POLICY_VERSION);
	r->approvals_required = (int)pg_get_int(res, i, C_APPROVALS_REQUIRED);
	r->created_at = pg_get_int(res, i, C_CREATED_AT);
	r->expires_at = pg_get_int(res, i, C_EXPIRES_AT);
	r->decided_at = pg_get_int(res, i, C_DECIDED_AT);
	r->redeemed_at = pg_get_int(res, i, C_REDEEMED_AT);
	return (0);
 bad:
	intent_row_clear(r);
	return (-1);
}

static int
pg_approvals_into(struct pg_store *p, struct intent_row *r)
{
	struct pg_params	 a;
	PGresult		*res;
	int			 i, rc = 0;

	pg_params_init(&a);
	pg_text(&a, r->id);
	if ((res = pg_run(p, &SQL_APPROVALS_GET, &a, __func__)) == NULL)
		return (-1);
	for (i = 0; rc == 0 && i < PQntuples(res); i++)
		if (pg_get(res, i, 0) == NULL || intent_row_add_approval(r,
		    pg_get(res, i, 0), pg_get_int(res, i, 1),
		    pg_get(res, i, 2)) == -1)
			rc = -1;
	PQclear(res);
	return (rc);
}

static int
pg_op_intent_get(struct store *s, const char *id, unsigned flags,
    struct intent_row *r)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*res;
	int			 found = 0;

	memset(r, 0, sizeof(*r));
	if ((flags & STORE_FOR_UPDATE) && pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, id);
	if ((res = pg_run(p, (flags & STORE_FOR_UPDATE) && p->in_tx ?
	    &SQL_INTENT_GET_LOCK : &SQL_INTENT_GET, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1)
		found = pg_row_intent(res, 0, r) == -1 ? -1 : 1;
	PQclear(res);
	if (found == 1 && (flags & STORE_APPROVALS) &&
	    pg_approvals_into(p, r) == -1) {
		intent_row_clear(r);
		return (-1);
	}
	return (found);
}

static int
pg_op_intent_open_call(struct store *s, const char *agent,
    const char *call_sha256, struct intent_row *r)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*res;
	int			 found = 0;

	/* The head lock first, as every writer takes it (one lock order):
	 * two repeats of one call then cannot both miss the intent the
	 * first of them is about to insert. */
	memset(r, 0, sizeof(*r));
	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, call_sha256);
	pg_text(&a, agent);
	if ((res = pg_run(p, &SQL_INTENT_OPEN_CALL, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1)
		found = pg_row_intent(res, 0, r) == -1 ? -1 : 1;
	PQclear(res);
	if (found == 1 && pg_approvals_into(p, r) == -1) {
		intent_row_clear(r);
		return (-1);
	}
	return (found);
}

static int
pg_op_intent_status(struct store *s, const char *id, enum intent_status *out)
{
	struct pg_params	 a;
	PGresult		*res;
	int			 found = 0;

	pg_params_init(&a);
	pg_text(&a, id);
	if ((res = pg_run(PG(s), &SQL_INTENT_STATUS, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1)
		found = intent_status_parse(pg_get(res, 0, 0), out) == -1 ?
		    -1 : 1;
	PQclear(res);
	return (found);
}

static int
pg_op_intent_move(struct store *s, const struct intent_move *m)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, intent_status_name(m->to));
	pg_time(&a, m->decided_at);
	pg_time(&a, m->expires_at);
	pg_text(&a, m->reason_text);
	pg_text(&a, m->closed_by);
	pg_text(&a, m->closed_reason);
	pg_text(&a, m->id);
	pg_text(&a, intent_status_name(m->from));
	if ((n = pg_run_count(p, &SQL_INTENT_MOVE, &a, __func__)) != 1)
		return (n == -1 ? -1 : 1);
	if (m->from != ST_PENDING)
		return (0);
	if (m->to != ST_PENDING && pg_pending_add(p, -1) == -1)
		return (-1);
	return (pg_queue_bump(p));
}

static int
pg_op_intent_redeem(struct store *s, const char *id, const char *by,
    int64_t now)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, now);
	pg_text(&a, by);
	pg_text(&a, id);
	n = pg_run_count(p, &SQL_INTENT_REDEEM, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
}

/* "T.S": the sort time and seq of a row; 0 or -1 when malformed (the
 * same cursor grammar as the SQLite engine's). */
static int
pg_cursor_parse(const char *c, int64_t *t, int64_t *seq)
{
	long long	 a, b;
	int		 n = -1;

	if (c == NULL || strlen(c) >= STORE_CURSOR_MAX ||
	    sscanf(c, "%lld.%lld%n", &a, &b, &n) != 2 || n < 0 ||
	    c[n] != '\0' || c[0] == '-' || b < 0)
		return (-1);
	*t = (int64_t)a;
	*seq = (int64_t)b;
	return (0);
}

static int
pg_op_intent_page(struct store *s, const struct intent_query *qr,
    store_intent_cb cb, void *arg, char *next_cursor)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	struct intent_row	 r;
	PGresult		*res;
	int			 pending = qr->status == ST_PENDING;
	int64_t			 t, seq;
	int			 i, n, rc = 0, stop = 0;

	/* Parsed first: next_cursor may be the buffer qr->cursor is in. */
	if (qr->cursor == NULL) {
		t = pending ? INT64_MIN : INT64_MAX;
		seq = pending ? -1 : INT64_MAX;
	} else if (pg_cursor_parse(qr->cursor, &t, &seq) == -1)
		return (-2);
	next_cursor[0] = '\0';
	pg_params_init(&a);
	pg_int(&a, t);
	pg_int(&a, seq);
	/* One more than asked for: tells whether a next page exists. */
	pg_int(&a, qr->limit + 1);
	if (!pending)
		pg_text(&a, intent_status_name(qr->status));
	if ((res = pg_run(p, pending ? &SQL_PAGE_PENDING : &SQL_PAGE_CLOSED,
	    &a, __func__)) == NULL)
		return (-1);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		if (i == qr->limit || stop) {
			snprintf(next_cursor, STORE_CURSOR_MAX, "%lld.%lld",
			    (long long)t, (long long)seq);
			break;
		}
		if (pg_row_intent(res, i, &r) == -1) {
			rc = -1;
			break;
		}
		t = pg_get_int(res, i, pending ? C_CREATED_AT : C_DECIDED_AT);
		seq = pg_get_int(res, i, C_SEQ);
		if (pg_approvals_into(p, &r) == -1) {
			intent_row_clear(&r);
			rc = -1;
			break;
		}
		stop = cb(&r, arg);
		intent_row_clear(&r);
	}
	PQclear(res);
	return (rc);
}

/* Give each (id, agent, tool, time) row of res to cb. */
static void
pg_briefs(const PGresult *res, enum intent_status status, store_brief_cb cb,
    void *arg)
{
	int	 i;

	for (i = 0; i < PQntuples(res); i++)
		if (cb(pg_get(res, i, 0), pg_get(res, i, 1), pg_get(res, i, 2),
		    status, pg_get_int(res, i, 3), arg) != 0)
			break;
}

static int
pg_op_intents_pending(struct store *s, store_brief_cb cb, void *arg)
{
	struct pg_store	*p = PG(s);
	PGresult	*res;

	if (pg_tx_lock(p) == -1 ||
	    (res = pg_run0(p, &SQL_PENDING_ALL_LOCK, __func__)) == NULL)
		return (-1);
	pg_briefs(res, ST_PENDING, cb, arg);
	PQclear(res);
	return (0);
}

static int
pg_op_intents_due(struct store *s, int64_t now, int64_t allowed_before,
    int64_t limit, store_brief_cb cb, void *arg)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*res;

	/* Read only: the moves that follow lock, and skip what another
	 * broker's sweep moved first. */
	pg_params_init(&a);
	pg_int(&a, now);
	pg_int(&a, limit);
	if ((res = pg_run(p, &SQL_DUE_PENDING, &a, __func__)) == NULL)
		return (-1);
	pg_briefs(res, ST_PENDING, cb, arg);
	PQclear(res);
	pg_params_init(&a);
	pg_int(&a, allowed_before);
	pg_int(&a, limit);
	if ((res = pg_run(p, &SQL_DUE_ALLOWED, &a, __func__)) == NULL)
		return (-1);
	pg_briefs(res, ST_ALLOWED, cb, arg);
	PQclear(res);
	return (0);
}

static int
pg_op_intents_live(struct store *s, int64_t created_after, store_intent_cb cb,
    void *arg)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	struct intent_row	 r;
	PGresult		*res;
	char			 after[INTENT_ID_LEN + 1] = "";
	int			 i, n, rc = 0, stop = 0;

	do {
		pg_params_init(&a);
		pg_int(&a, created_after);
		pg_text(&a, after);
		pg_int(&a, PG_WALK_CHUNK);
		if ((res = pg_run(p, &SQL_INTENTS_LIVE, &a, __func__)) == NULL)
			return (-1);
		n = PQntuples(res);
		for (i = 0; i < n && !stop; i++) {
			if (pg_row_intent(res, i, &r) == -1) {
				rc = -1;
				break;
			}
			memcpy(after, r.id, sizeof(after));
			stop = cb(&r, arg);
			intent_row_clear(&r);
		}
		PQclear(res);
	} while (rc == 0 && !stop && n == PG_WALK_CHUNK);
	return (rc);
}

static int
pg_op_approval_add(struct store *s, const char *id, const char *by,
    int64_t at, const char *comment)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, id);
	pg_text(&a, by);
	pg_int(&a, at);
	pg_text(&a, comment);
	if ((n = pg_run_count(p, &SQL_APPROVAL_INSERT, &a, __func__)) != 1)
		return (n == -1 ? -1 : 1);
	return (pg_queue_bump(p));
}

/* The kill switch generation moves, and every broker hears it. */
static int
pg_ks_bump(struct pg_store *p)
{
	struct pg_params	 a;
	int64_t			 n;

	pg_params_init(&a);
	if ((n = pg_run_count(p, &SQL_KS_BUMP, &a, __func__)) == 0)
		log_warnx("%s: kill switch counter row missing", __func__);
	return (n == 1 ? 0 : -1);
}

static int
pg_op_ks_insert(struct store *s, const struct ks_row *r, int64_t *id)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*res;
	int			 ok;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, ks_scope_name(r->scope));
	pg_text(&a, r->target);
	pg_text(&a, r->reason);
	pg_text(&a, r->by);
	pg_int(&a, r->at);
	if ((res = pg_run(p, &SQL_KS_INSERT, &a, __func__)) == NULL)
		return (-1);
	ok = PQntuples(res) == 1;
	if (ok)
		*id = pg_get_int(res, 0, 0);
	PQclear(res);
	return (ok ? pg_ks_bump(p) : -1);
}

static int
pg_op_ks_reset(struct store *s, int64_t id, const char *by, int64_t at,
    const char *reason)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, by);
	pg_int(&a, at);
	pg_text(&a, reason);
	pg_int(&a, id);
	if ((n = pg_run_count(p, &SQL_KS_RESET, &a, __func__)) == -1)
		return (-1);
	if (n == 0)
		return (1);
	return (pg_ks_bump(p));
}

/* The switch in row i of a KS_COLUMNS result. */
static int
pg_row_ks(const PGresult *res, int i, struct ks_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = pg_get_int(res, i, 0);
	if (ks_scope_parse(pg_get(res, i, 1), &r->scope) == -1 ||
	    (r->scope != KS_GLOBAL && pg_get(res, i, 2) == NULL)) {
		log_warnx("%s: switch %lld is malformed", __func__,
		    (long long)r->id);
		return (-1);
	}
	r->at = pg_get_int(res, i, 5);
	r->reset_at = pg_get_int(res, i, 7);
	if (pg_dup(res, i, 2, &r->target) == -1 ||
	    pg_dup(res, i, 3, &r->reason) == -1 ||
	    pg_dup(res, i, 4, &r->by) == -1 ||
	    pg_dup(res, i, 6, &r->reset_by) == -1 ||
	    pg_dup(res, i, 8, &r->reset_reason) == -1) {
		ks_row_clear(r);
		return (-1);
	}
	return (0);
}

static int
pg_op_ks_get(struct store *s, int64_t id, struct ks_row *r)
{
	struct pg_params	 a;
	PGresult		*res;
	int			 found = 0;

	memset(r, 0, sizeof(*r));
	pg_params_init(&a);
	pg_int(&a, id);
	if ((res = pg_run(PG(s), &SQL_KS_GET, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1)
		found = pg_row_ks(res, 0, r) == -1 ? -1 : 1;
	PQclear(res);
	return (found);
}

static int
pg_op_ks_engaged(struct store *s, store_ks_cb cb, void *arg)
{
	struct ks_row	 r;
	PGresult	*res;
	int		 i, rc = 0, stop = 0;

	if ((res = pg_run0(PG(s), &SQL_KS_ENGAGED, __func__)) == NULL)
		return (-1);
	for (i = 0; !stop && i < PQntuples(res); i++) {
		if (pg_row_ks(res, i, &r) == -1) {
			rc = -1;
			break;
		}
		stop = cb(&r, arg);
		ks_row_clear(&r);
	}
	PQclear(res);
	return (rc);
}

static int
pg_op_audit_head(struct store *s, int64_t *seq, char hash[65])
{
	struct pg_store	*p = PG(s);
	PGresult	*r;
	const char	*h;

	if (p->in_tx) {
		if (pg_tx_lock(p) == -1)
			return (-1);
		*seq = p->head_seq;
		memcpy(hash, p->head_hash, 65);
		return (0);
	}
	/* Outside a transaction: only a look (nothing can be appended). */
	if ((r = pg_run0(p, &SQL_HEAD_GET, __func__)) == NULL)
		return (-1);
	*seq = PQntuples(r) == 1 ? pg_get_int(r, 0, 0) : 0;
	h = PQntuples(r) == 1 ? pg_get(r, 0, 1) : NULL;
	snprintf(hash, 65, "%s", h != NULL ? h : AUDIT_GENESIS);
	PQclear(r);
	return (0);
}

static int
pg_op_audit_insert(struct store *s, const struct audit_row *r)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	/* The head row is written back at commit: appends need one. */
	if (pg_tx_lock_inside(p, "audit records are appended only inside a "
	    "transaction", __func__) == -1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, r->seq);
	pg_text(&a, r->event);
	pg_text(&a, r->intent_id);
	pg_bytes(&a, r->record, r->record_len);
	pg_text(&a, r->prev_hash);
	pg_text(&a, r->hash);
	if (pg_run_count(p, &SQL_AUDIT_INSERT, &a, __func__) != 1)
		return (-1);
	p->head_seq = r->seq;
	snprintf(p->head_hash, sizeof(p->head_hash), "%s", r->hash);
	p->head_dirty = 1;
	return (0);
}

/* Record i of an AUDIT_COLUMNS result (pointers into res). */
static void
pg_audit_row(const PGresult *res, int i, struct audit_row *r)
{
	r->seq = pg_get_int(res, i, 0);
	r->event = pg_get(res, i, 1);
	r->intent_id = pg_get(res, i, 2);
	r->record = pg_get(res, i, 3);
	r->record_len = (size_t)PQgetlength(res, i, 3);
	r->prev_hash = pg_get(res, i, 4);
	r->hash = pg_get(res, i, 5);
}

/* Records in chunks: a whole chain is never held in memory at once. */
static int
pg_op_audit_walk(struct store *s, int64_t after, int64_t limit,
    store_audit_cb cb, void *arg)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	struct audit_row	 r;
	PGresult		*res;
	int64_t			 left = limit > 0 ? limit : INT64_MAX, chunk;
	int			 i, n, stop = 0;

	do {
		chunk = left < PG_WALK_CHUNK ? left : PG_WALK_CHUNK;
		pg_params_init(&a);
		pg_int(&a, after);
		pg_int(&a, chunk);
		if ((res = pg_run(p, &SQL_AUDIT_WALK, &a, __func__)) == NULL)
			return (-1);
		n = PQntuples(res);
		for (i = 0; i < n && !stop; i++) {
			pg_audit_row(res, i, &r);
			after = r.seq;
			stop = cb(&r, arg);
		}
		PQclear(res);
		left -= n;
	} while (!stop && n == chunk && left > 0);
	return (0);
}

/* Every record of res to cb, until it says stop. */
static int
pg_audit_rows(PGresult *res, store_audit_cb cb, void *arg)
{
	struct audit_row	 r;
	int			 i, stop = 0;

	for (i = 0; i < PQntuples(res) && !stop; i++) {
		pg_audit_row(res, i, &r);
		stop = cb(&r, arg);
	}
	PQclear(res);
	return (0);
}

static int
pg_op_audit_intent(struct store *s, const char *id, store_audit_cb cb,
    void *arg)
{
	struct pg_params	 a;
	PGresult		*res;

	pg_params_init(&a);
	pg_text(&a, id);
	if ((res = pg_run(PG(s), &SQL_AUDIT_INTENT, &a, __func__)) == NULL)
		return (-1);
	return (pg_audit_rows(res, cb, arg));
}

static int
pg_op_audit_policy_newest(struct store *s, store_audit_cb cb, void *arg)
{
	PGresult	*res;

	if ((res = pg_run0(PG(s), &SQL_AUDIT_POLICY, __func__)) == NULL)
		return (-1);
	return (pg_audit_rows(res, cb, arg));
}

/* Under the write lock in a transaction: no intent becomes live or
 * over between this and the prune's deletes. */
static int
pg_op_audit_live_first(struct store *s, int64_t *seq)
{
	struct pg_store	*p = PG(s);
	PGresult	*res;

	*seq = 0;
	if (pg_tx_lock(p) == -1 ||
	    (res = pg_run0(p, &SQL_AUDIT_LIVE_FIRST, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1)
		*seq = pg_get_int(res, 0, 0);	/* NULL reads 0 */
	PQclear(res);
	return (0);
}

static int
pg_op_audit_cut_get(struct store *s, struct audit_cut *c)
{
	PGresult	*res;
	const char	*h;
	int		 found = 0;

	memset(c, 0, sizeof(*c));
	if ((res = pg_run0(PG(s), &SQL_CUT_GET, __func__)) == NULL)
		return (-1);
	if (PQntuples(res) == 1) {
		c->seq = pg_get_int(res, 0, 0);
		h = pg_get(res, 0, 1);
		if (h == NULL || strlen(h) != 64 || c->seq < 1) {
			log_warnx("%s: the audit cut row is malformed",
			    __func__);
			found = -1;
		} else if (pg_dup(res, 0, 2, &c->checkpoint) == -1 ||
		    c->checkpoint == NULL)
			found = -1;
		else {
			memcpy(c->hash, h, 65);
			found = 1;
		}
	}
	PQclear(res);
	if (found != 1) {
		free(c->checkpoint);
		c->checkpoint = NULL;
	}
	return (found);
}

static int
pg_op_audit_prune(struct store *s, const struct audit_cut *c)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	if (pg_tx_lock(p) == -1)
		return (-1);
	/* The cut first: the delete trigger allows only what it covers. */
	pg_params_init(&a);
	pg_int(&a, c->seq);
	pg_text(&a, c->hash);
	pg_text(&a, c->checkpoint);
	if (pg_run_count(p, &SQL_CUT_SET, &a, __func__) != 1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, c->seq);
	return (pg_run_count(p, &SQL_AUDIT_PRUNE, &a, __func__) == -1 ? -1 :
	    0);
}

static int
pg_op_intents_prune(struct store *s, int64_t before, int64_t *n)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	*n = 0;
	if (pg_tx_lock(p) == -1)
		return (-1);
	/* Approvals first: they reference their intent. */
	pg_params_init(&a);
	pg_int(&a, before);
	if (pg_run_count(p, &SQL_APPROVALS_PRUNE, &a, __func__) == -1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, before);
	if ((*n = pg_run_count(p, &SQL_INTENTS_PRUNE, &a, __func__)) == -1) {
		*n = 0;
		return (-1);
	}
	return (0);
}

static int
pg_op_stats(struct store *s, int64_t now, struct store_stats *out)
{
	struct pg_params	 a;
	PGresult		*r;
	int			 rc = -1;

	memset(out, 0, sizeof(*out));
	pg_params_init(&a);
	pg_int(&a, now);
	pg_int(&a, STORE_PAST_HALF_MAX);
	if ((r = pg_run(PG(s), &SQL_STATS, &a, __func__)) == NULL)
		return (-1);
	if (PQntuples(r) != 1)
		log_warnx("%s: no row", __func__);
	else if (pg_get(r, 0, 0) == NULL)
		log_warnx("%s: pending counter row missing", __func__);
	else {
		out->pending = pg_get_int(r, 0, 0);
		out->oldest_pending_at = pg_get_int(r, 0, 1);
		out->past_half_ttl = pg_get_int(r, 0, 2);
		out->killswitches = pg_get_int(r, 0, 3);
		rc = 0;
	}
	PQclear(r);
	return (rc);
}

static int
pg_op_outbox_add(struct store *s, const struct outbox_row *r)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	/* Ids in commit order need the head lock (see the statements). */
	if (pg_tx_lock_inside(p, "events are written only inside the "
	    "transaction of their change", __func__) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, r->sink);
	pg_text(&a, r->event_id);
	pg_text(&a, r->type);
	pg_int(&a, r->at);
	pg_time(&a, r->audit_seq);
	pg_text(&a, r->data);
	return (pg_run_count(p, &SQL_OUTBOX_ADD, &a, __func__) == 1 ? 0 : -1);
}

static int
pg_op_outbox_head(struct store *s, const char *sink, int64_t limit,
    store_outbox_cb cb, void *arg)
{
	struct pg_params	 a;
	struct outbox_row	 r;
	PGresult		*res;
	int			 i, rc = 0, stop = 0;

	pg_params_init(&a);
	pg_text(&a, sink);
	pg_int(&a, limit);
	if ((res = pg_run(PG(s), &SQL_OUTBOX_HEAD, &a, __func__)) == NULL)
		return (-1);
	for (i = 0; !stop && i < PQntuples(res); i++) {
		r.id = pg_get_int(res, i, 0);
		r.sink = pg_get(res, i, 1);
		r.event_id = pg_get(res, i, 2);
		r.type = pg_get(res, i, 3);
		r.at = pg_get_int(res, i, 4);
		r.audit_seq = pg_get_int(res, i, 5);
		r.data = pg_get(res, i, 6);
		if (r.sink == NULL || r.event_id == NULL || r.type == NULL) {
			log_warnx("%s: outbox row %lld is malformed",
			    __func__, (long long)r.id);
			rc = -1;
			break;
		}
		stop = cb(&r, arg);
	}
	PQclear(res);
	return (rc);
}

/* Run a statement whose one row holds one count: 0 and *n, or -1. */
static int
pg_count_of(struct pg_store *p, const struct pg_stmt *st,
    const struct pg_params *a, int64_t *n, const char *fn)
{
	PGresult	*res;
	int		 ok;

	*n = 0;
	if ((res = pg_run(p, st, a, fn)) == NULL)
		return (-1);
	ok = PQntuples(res) == 1;
	if (ok)
		*n = pg_get_int(res, 0, 0);
	PQclear(res);
	return (ok ? 0 : -1);
}

static int
pg_op_outbox_remove(struct store *s, const char *sink, int64_t upto,
    enum outbox_removal why, int64_t now, int64_t *n)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_text(&a, sink);
	pg_int(&a, upto);
	if (why == OUTBOX_DELIVERED)
		pg_int(&a, now);
	return (pg_count_of(PG(s), why == OUTBOX_DELIVERED ?
	    &SQL_OUTBOX_DELIVERED : &SQL_OUTBOX_GIVEN_UP, &a, n, __func__));
}

static int
pg_op_outbox_count(struct store *s, const char *sink, int64_t *n)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_text(&a, sink);
	return (pg_count_of(PG(s), &SQL_OUTBOX_COUNT, &a, n, __func__));
}

static int
pg_op_outbox_drop(struct store *s, const char *sink, int64_t n,
    int64_t *dropped)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_text(&a, sink);
	pg_int(&a, n);
	return (pg_count_of(PG(s), &SQL_OUTBOX_DROP, &a, dropped, __func__));
}

static int
pg_op_sink_register(struct store *s, const char *name, const char *events,
    const char *target)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_text(&a, name);
	pg_text(&a, events);
	pg_text(&a, target);
	return (pg_run_count(PG(s), &SQL_SINK_REGISTER, &a, __func__) == -1 ?
	    -1 : 0);
}

static int
pg_op_sink_lease(struct store *s, const char *name, const char *owner,
    int64_t now, int64_t until)
{
	struct pg_params	 a;
	int64_t			 n;

	pg_params_init(&a);
	pg_text(&a, owner);
	pg_int(&a, until);
	pg_text(&a, name);
	pg_int(&a, now);
	n = pg_run_count(PG(s), &SQL_SINK_LEASE, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
}

static int
pg_op_sink_failed(struct store *s, const char *name, int64_t now,
    int64_t next_at, const char *error)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_int(&a, next_at);
	pg_text(&a, error);
	pg_int(&a, now);
	pg_text(&a, name);
	return (pg_run_count(PG(s), &SQL_SINK_FAILED, &a, __func__) == -1 ?
	    -1 : 0);
}

static int
pg_op_sink_status(struct store *s, store_sink_cb cb, void *arg)
{
	struct sink_row	 r;
	PGresult	*res;
	int		 i, rc = 0, stop = 0;

	if ((res = pg_run0(PG(s), &SQL_SINK_STATUS, __func__)) == NULL)
		return (-1);
	for (i = 0; !stop && i < PQntuples(res); i++) {
		memset(&r, 0, sizeof(r));
		r.name = pg_get(res, i, 0);
		r.events = pg_get(res, i, 1);
		r.target = pg_get(res, i, 2);
		r.lease_owner = pg_get(res, i, 3);
		r.lease_until = pg_get_int(res, i, 4);
		r.attempts = pg_get_int(res, i, 5);
		r.next_at = pg_get_int(res, i, 6);
		r.delivered = pg_get_int(res, i, 7);
		r.failed = pg_get_int(res, i, 8);
		r.given_up = pg_get_int(res, i, 9);
		r.dropped = pg_get_int(res, i, 10);
		r.last_error = pg_get(res, i, 11);
		r.last_error_at = pg_get_int(res, i, 12);
		r.last_delivered_at = pg_get_int(res, i, 13);
		r.queued = pg_get_int(res, i, 14);
		r.oldest_at = pg_get_int(res, i, 15);
		if (r.name == NULL || r.events == NULL || r.target == NULL) {
			rc = -1;
			break;
		}
		stop = cb(&r, arg);
	}
	PQclear(res);
	return (rc);
}

/* Under the head lock, so that the event it licenses is in order. */
static int
pg_op_checkpoint_claim(struct store *s, int64_t now, int64_t every)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	int64_t			 n;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_int(&a, now);
	pg_int(&a, every);
	n = pg_run_count(p, &SQL_CHECKPOINT_CLAIM, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
}

static int
pg_op_listen(struct store *s)
{
	return (pg_listen(PG(s)));
}

static int
pg_op_heard(struct store *s, store_heard_cb cb, void *arg)
{
	return (pg_heard(PG(s), cb, arg));
}

const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_op_close,
	.set_durability = pg_op_set_durability,
	.set_read_only = pg_op_set_read_only,
	.flush = pg_op_flush,
	.begin = pg_op_begin,
	.commit = pg_op_commit,
	.rollback = pg_op_rollback,
	.generations = pg_op_generations,
	.others_wrote = pg_op_others_wrote,
	.policy_current = pg_op_policy_current,
	.policy_insert = pg_op_policy_insert,
	.policy_history = pg_op_policy_history,
	.jti_claim = pg_op_jti_claim,
	.jti_prune = pg_op_jti_prune,
	.intent_insert = pg_op_intent_insert,
	.intent_get = pg_op_intent_get,
	.intent_open_call = pg_op_intent_open_call,
	.intent_status = pg_op_intent_status,
	.intent_move = pg_op_intent_move,
	.intent_redeem = pg_op_intent_redeem,
	.intent_page = pg_op_intent_page,
	.intents_pending = pg_op_intents_pending,
	.intents_due = pg_op_intents_due,
	.approval_add = pg_op_approval_add,
	.ks_insert = pg_op_ks_insert,
	.ks_reset = pg_op_ks_reset,
	.ks_get = pg_op_ks_get,
	.ks_engaged = pg_op_ks_engaged,
	.audit_head = pg_op_audit_head,
	.audit_insert = pg_op_audit_insert,
	.audit_walk = pg_op_audit_walk,
	.stats = pg_op_stats,
	.outbox_add = pg_op_outbox_add,
	.outbox_head = pg_op_outbox_head,
	.outbox_remove = pg_op_outbox_remove,
	.outbox_count = pg_op_outbox_count,
	.outbox_drop = pg_op_outbox_drop,
	.sink_register = pg_op_sink_register,
	.sink_lease = pg_op_sink_lease,
	.sink_failed = pg_op_sink_failed,
	.sink_status = pg_op_sink_status,
	.checkpoint_claim = pg_op_checkpoint_claim,
	.audit_intent = pg_op_audit_intent,
	.audit_policy_newest = pg_op_audit_policy_newest,
	.audit_live_first = pg_op_audit_live_first,
	.audit_cut_get = pg_op_audit_cut_get,
	.audit_prune = pg_op_audit_prune,
	.intents_prune = pg_op_intents_prune,
	.limit_usage_get = pg_op_limit_usage_get,
	.limit_usage_put = pg_op_limit_usage_put,
	.limit_usage_walk = pg_op_limit_usage_walk,
	.limit_bucket_get = pg_op_limit_bucket_get,
	.limit_bucket_put = pg_op_limit_bucket_put,
	.limit_buckets_walk = pg_op_limit_buckets_walk,
	.limit_buckets_drop = pg_op_limit_buckets_drop,
	.limit_defs_walk = pg_op_limit_defs_walk,
	.limit_def_put = pg_op_limit_def_put,
	.limit_forget = pg_op_limit_forget,
	.intents_live = pg_op_intents_live,
	.listen = pg_op_listen,
	.heard = pg_op_heard,
};

struct store *
store_pg_open(const char *uri, unsigned flags, char *err, size_t errlen)
{
	struct pg_store	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->uri = strdup(uri)) == NULL) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	p->base.ops = &pg_ops;
	if (pg_open(p, flags, err, errlen) == -1) {
		pg_op_close(&p->base);
		return (NULL);
	}
	return (&p->base);
}
