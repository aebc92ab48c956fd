/*
 * store_sqlite: the SQLite engine of the storage seam (store.h) — every
 * SQL statement toolgate runs is in this file (the connection, pragmas and
 * migrations are in store_sqlite_db.c).  Each statement is prepared once
 * per connection and run with bound parameters.  Transactions are BEGIN
 * IMMEDIATE, which takes the database's write lock at once: that is what
 * makes the lifecycle's read-check-write steps (approvals, redemption,
 * the audit chain head) safe across threads and processes, so the
 * "locks" asked for in store.h cost nothing more here.  Nothing in this
 * file decides: it stores what the lifecycle tells it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "store_sqlite.h"
#include "store_sqlite_impl.h"

/* --- generations ---------------------------------------------------- */

/* One primary-key lookup and one max() over an integer key: asked at the
 * start of every batch of decisions. */
static const char SQL_GENERATIONS[] =
    "SELECT (SELECT max(version) FROM policy_versions), "
    "(SELECT value FROM counters WHERE name = 'killswitch')";
static const char SQL_DATA_VERSION[] = "PRAGMA data_version";
/* The kill switch generation and the pending count (schema 8). */
static const char SQL_COUNTER_ADD[] =
    "UPDATE counters SET value = value + ?1 WHERE name = ?2";
/* Each part reads an index: the counter row, the first entry of
 * intents_pending, at most STORE_PAST_HALF_MAX entries of
 * intents_pending_half (the expression must be written as the index
 * has it), and killswitches_engaged. */
static const char SQL_STATS[] =
    "SELECT (SELECT value FROM counters WHERE name = 'pending'), "
    "(SELECT created_at FROM intents WHERE status = 'pending' "
    "ORDER BY created_at LIMIT 1), "
    "(SELECT count(*) FROM (SELECT 1 FROM intents WHERE status = 'pending' "
    "AND (created_at + (expires_at - created_at) / 2) <= ?1 LIMIT ?2)), "
    "(SELECT count(*) FROM killswitches WHERE reset_at IS NULL)";
static const char SQL_QUEUE_GEN[] =
    "SELECT value FROM counters WHERE name = 'queue'";

/* --- policy, replay guard ------------------------------------------- */

static const char SQL_POLICY_CURRENT[] =
    "SELECT version, body FROM policy_versions ORDER BY version DESC LIMIT 1";
static const char SQL_POLICY_INSERT[] =
    "INSERT INTO policy_versions (created_at, actor, sha256, body) "
    "VALUES (?, ?, ?, ?)";
static const char SQL_POLICY_HISTORY[] =
    "SELECT version, created_at, actor, sha256 FROM policy_versions "
    "WHERE version < ? ORDER BY version DESC LIMIT ?";
static const char SQL_JTI_INSERT[] =
    "INSERT OR IGNORE INTO seen_jti (iss, jti, prune_at) VALUES (?, ?, ?)";
static const char SQL_JTI_PRUNE[] =
    "DELETE FROM seen_jti WHERE prune_at < ?";

/* --- intents -------------------------------------------------------- */

static const char SQL_INTENT_INSERT[] =
    "INSERT INTO intents (id, agent, jti, tool, args, args_sha256, "
    "amount_value, amount_currency, reason, status, decision, reason_code, "
    "reason_text, policy_version, rule, approvals_required, approver_roles, "
    "intent_sha256, created_at, expires_at, decided_at, limit_json) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?)";
#define INTENT_COLUMNS \
    "id, agent, jti, tool, args, args_sha256, amount_value, " \
    "amount_currency, reason, status, decision, reason_code, reason_text, " \
    "policy_version, rule, approvals_required, approver_roles, " \
    "intent_sha256, created_at, expires_at, decided_at, redeemed_at, " \
    "redeemed_by, closed_by, closed_reason, rowid, limit_json "
enum {
	C_ID, C_AGENT, C_JTI, C_TOOL, C_ARGS, C_ARGS_SHA, C_AMOUNT_VALUE,
	C_AMOUNT_CURRENCY, C_REASON, C_STATUS, C_DECISION, C_REASON_CODE,
	C_REASON_TEXT, C_POLICY_VERSION, C_RULE, C_APPROVALS_REQUIRED,
	C_APPROVER_ROLES, C_INTENT_SHA, C_CREATED_AT, C_EXPIRES_AT,
	C_DECIDED_AT, C_REDEEMED_AT, C_REDEEMED_BY, C_CLOSED_BY,
	C_CLOSED_REASON, C_ROWID, C_LIMIT
};
static const char SQL_INTENT_GET[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE id = ?";
/* The newest intent a repeated MCP call may join (migration 0007's
 * partial index holds exactly the candidates). */
static const char SQL_INTENT_OPEN_CALL[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE intent_sha256 = ? "
    "AND agent = ? AND decision = 'pending' AND redeemed_at IS NULL "
    "AND status IN ('pending', 'allowed') "
    "ORDER BY created_at DESC, rowid DESC LIMIT 1";
static const char SQL_INTENT_STATUS[] =
    "SELECT status FROM intents WHERE id = ?";
static const char SQL_INTENT_MOVE[] =
    "UPDATE intents SET status = ?, decided_at = coalesce(?, decided_at), "
    "expires_at = coalesce(?, expires_at), "
    "reason_text = coalesce(?, reason_text), "
    "closed_by = coalesce(?, closed_by), "
    "closed_reason = coalesce(?, closed_reason) "
    "WHERE id = ? AND status = ?";
static const char SQL_INTENT_REDEEM[] =
    "UPDATE intents SET redeemed_at = ?, redeemed_by = ? "
    "WHERE id = ? AND status = 'allowed' AND redeemed_at IS NULL";
/* Pages: the cursor is the (time, rowid) of the last row shown. */
static const char SQL_PAGE_PENDING[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = 'pending' "
    "AND (created_at > ?1 OR (created_at = ?1 AND rowid > ?2)) "
    "ORDER BY created_at, rowid LIMIT ?3";
static const char SQL_PAGE_CLOSED[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = ?4 "
    "AND approvals_required > 0 "
    "AND (decided_at < ?1 OR (decided_at = ?1 AND rowid < ?2)) "
    "ORDER BY decided_at DESC, rowid DESC LIMIT ?3";
static const char SQL_PENDING_ALL[] =
    "SELECT id, agent, tool, created_at FROM intents WHERE status = 'pending' "
    "ORDER BY created_at, rowid";
static const char SQL_DUE_PENDING[] =
    "SELECT id, agent, tool, expires_at FROM intents WHERE status = 'pending' "
    "AND expires_at <= ? ORDER BY expires_at LIMIT ?";
static const char SQL_DUE_ALLOWED[] =
    "SELECT id, agent, tool, decided_at FROM intents WHERE status = 'allowed' "
    "AND redeemed_at IS NULL AND decided_at <= ? ORDER BY decided_at "
    "LIMIT ?";
/* Counting a new limit's window (rare: a policy that adds or changes a
 * limit): a full scan, so that no index slows every insert. */
static const char SQL_INTENTS_LIVE[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE created_at > ? "
    "AND status IN ('pending', 'allowed')";
static const char SQL_APPROVAL_INSERT[] =
    "INSERT OR IGNORE INTO approvals (intent_id, approver, at, comment) "
    "VALUES (?, ?, ?, ?)";
static const char SQL_APPROVALS_GET[] =
    "SELECT approver, at, comment FROM approvals WHERE intent_id = ? "
    "ORDER BY id";

/* --- kill switches -------------------------------------------------- */

static const char SQL_KS_INSERT[] =
    "INSERT INTO killswitches (scope, target, reason, tripped_by, "
    "tripped_at) VALUES (?, ?, ?, ?, ?)";
static const char SQL_KS_RESET[] =
    "UPDATE killswitches SET reset_by = ?, reset_at = ?, reset_reason = ? "
    "WHERE id = ? AND reset_at IS NULL";
#define KS_COLUMNS \
    "id, scope, target, reason, tripped_by, tripped_at, reset_by, " \
    "reset_at, reset_reason "
static const char SQL_KS_GET[] =
    "SELECT " KS_COLUMNS "FROM killswitches WHERE id = ?";
static const char SQL_KS_ENGAGED[] =
    "SELECT " KS_COLUMNS "FROM killswitches WHERE reset_at IS NULL "
    "ORDER BY id";

/* --- audit chain ---------------------------------------------------- */

static const char SQL_AUDIT_HEAD[] =
    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit (seq, event, intent_id, record, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?)";
#define AUDIT_COLUMNS "seq, event, intent_id, record, prev_hash, hash "
static const char SQL_AUDIT_WALK[] =
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE seq > ? ORDER BY seq LIMIT ?";
static const char SQL_AUDIT_INTENT[] =
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE intent_id = ? ORDER BY seq";
/* The literal matches the partial index audit_policy (0005). */
static const char SQL_AUDIT_POLICY[] =
    "SELECT " AUDIT_COLUMNS "FROM audit WHERE event = 'policy.apply' "
    "ORDER BY seq DESC LIMIT 1";

/* --- retention ------------------------------------------------------- */

/* Each half uses its partial index on intents and audit_intent. */
static const char SQL_AUDIT_LIVE_FIRST[] =
    "SELECT min(seq) FROM audit WHERE intent_id IN "
    "(SELECT id FROM intents WHERE status = 'pending' UNION ALL "
    "SELECT id FROM intents WHERE status = 'allowed' AND "
    "redeemed_at IS NULL)";
static const char SQL_CUT_GET[] =
    "SELECT seq, hash, checkpoint FROM audit_cut WHERE id = 1";
static const char SQL_CUT_SET[] =
    "INSERT OR REPLACE INTO audit_cut (id, seq, hash, checkpoint) "
    "VALUES (1, ?, ?, ?)";
static const char SQL_AUDIT_PRUNE[] = "DELETE FROM audit WHERE seq <= ?";
#define INTENTS_OVER \
    "(status IN ('denied', 'rejected', 'expired') OR (status = 'allowed' " \
    "AND redeemed_at IS NOT NULL)) AND created_at < ?1 AND " \
    "coalesce(decided_at, 0) < ?1 AND coalesce(expires_at, 0) < ?1 AND " \
    "coalesce(redeemed_at, 0) < ?1"
static const char SQL_APPROVALS_PRUNE[] =
    "DELETE FROM approvals WHERE intent_id IN (SELECT id FROM intents "
    "WHERE " INTENTS_OVER ")";
static const char SQL_INTENTS_PRUNE[] =
    "DELETE FROM intents WHERE " INTENTS_OVER;

/* --- outbox and sinks ------------------------------------------------- */

static const char SQL_OUTBOX_ADD[] =
    "INSERT INTO outbox (sink, event_id, type, at, audit_seq, data) "
    "VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_OUTBOX_HEAD[] =
    "SELECT id, sink, event_id, type, at, audit_seq, data FROM outbox "
    "WHERE sink = ? ORDER BY id LIMIT ?";
static const char SQL_OUTBOX_REMOVE[] =
    "DELETE FROM outbox WHERE sink = ? AND id <= ?";
static const char SQL_SINK_DELIVERED[] =
    "UPDATE notify_sinks SET delivered = delivered + ?, attempts = 0, "
    "next_at = 0, last_delivered_at = ? WHERE name = ?";
static const char SQL_SINK_GIVEN_UP[] =
    "UPDATE notify_sinks SET given_up = given_up + ? WHERE name = ?";
static const char SQL_OUTBOX_COUNT[] =
    "SELECT count(*) FROM outbox WHERE sink = ?";
/* The oldest rows of one class: audit records first, then anything but
 * a pending intent (an approver must hear of it). */
static const char SQL_OUTBOX_DROP_AUDIT[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = ? "
    "AND type = 'audit.record' ORDER BY id LIMIT ?)";
static const char SQL_OUTBOX_DROP_OTHER[] =
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = ? "
    "AND type <> 'intent.pending' ORDER BY id LIMIT ?)";
static const char SQL_SINK_DROPPED[] =
    "UPDATE notify_sinks SET dropped = dropped + ? WHERE name = ?";
static const char SQL_SINK_REGISTER[] =
    "INSERT INTO notify_sinks (name, events, target) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (name) DO UPDATE SET events = ?2, target = ?3";
static const char SQL_SINK_LEASE[] =
    "UPDATE notify_sinks SET lease_owner = ?1, lease_until = ?2 "
    "WHERE name = ?3 AND (lease_owner = ?1 OR lease_owner IS NULL OR "
    "lease_until <= ?4)";
static const char SQL_SINK_FAILED[] =
    "UPDATE notify_sinks SET attempts = attempts + 1, failed = failed + 1, "
    "next_at = ?, last_error = substr(?, 1, 200), last_error_at = ? "
    "WHERE name = ?";
static const char SQL_SINK_STATUS[] =
    "SELECT name, events, target, lease_owner, lease_until, attempts, "
    "next_at, delivered, failed, given_up, dropped, last_error, "
    "last_error_at, last_delivered_at, "
    "(SELECT count(*) FROM outbox o WHERE o.sink = s.name), "
    "(SELECT min(at) FROM outbox o WHERE o.sink = s.name) "
    "FROM notify_sinks s ORDER BY name";
static const char SQL_CHECKPOINT_CLAIM[] =
    "UPDATE counters SET value = ?1 WHERE name = 'checkpoint' "
    "AND value <= ?1 - ?2";

#define COL_TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

/* Step st once expecting a row or the end; logs anything else. */
int
sq_step(struct sqlite_store *q, sqlite3_stmt *st, const char *fn)
{
	int	 rc = sqlite3_step(st);

	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_warnx("%s: %s", fn, sqlite3_errmsg(q->sql));
	return (rc);
}

/* Run a bound UPDATE/INSERT: 0 when it changed one row, 1 when none, -1. */
static int
sq_step_changed(struct sqlite_store *q, sqlite3_stmt *st)
{
	if (sq_step_done(q, st) == -1)
		return (-1);
	return (sqlite3_changes(q->sql) == 1 ? 0 : 1);
}

int
sq_one(struct sqlite_store *q, sqlite3_stmt *st, sq_parse_fn parse, void *out,
    const char *fn)
{
	int	 rc = sq_step(q, st, fn), found = 0;

	if (rc == SQLITE_ROW) {
		if (parse(st, out) == -1)
			rc = SQLITE_ERROR;
		else
			found = 1;
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1);
}

static int
sq_parse_int(sqlite3_stmt *st, void *out)
{
	*(int64_t *)out = sqlite3_column_int64(st, 0);
	return (0);
}

/* The first column of the one row of an unbound sql: 1 found, 0 none. */
static int
sq_one_int(struct sqlite_store *q, const char *sql, int64_t *out,
    const char *fn)
{
	sqlite3_stmt	*st;

	if ((st = sq_stmt(q, sql)) == NULL)
		return (-1);
	return (sq_one(q, st, sq_parse_int, out, fn));
}

/* --- the ops -------------------------------------------------------- */

static void
sq_op_close(struct store *s)
{
	if (s == NULL)
		return;
	sq_close(SQ(s));
	free(s);
}

static int
sq_op_set_durability(struct store *s, int full)
{
	return (sq_set_synchronous(SQ(s), full));
}

static int
sq_op_set_read_only(struct store *s)
{
	return (sq_set_read_only(SQ(s)));
}

static int
sq_op_flush(struct store *s)
{
	return (sq_flush(SQ(s)));
}

static int
sq_op_begin(struct store *s)
{
	return (sq_begin(SQ(s)));
}

static int
sq_op_commit(struct store *s)
{
	return (sq_commit(SQ(s)));
}

static void
sq_op_rollback(struct store *s)
{
	sq_rollback(SQ(s));
}

/* data_version moves only when another connection commits: ours do
 * not move it, and under BEGIN IMMEDIATE nobody else can. */
static int
sq_op_others_wrote(struct store *s, int64_t *mark)
{
	struct sqlite_store	*q = SQ(s);
	int64_t			 v;

	if (sq_one_int(q, SQL_DATA_VERSION, &v, __func__) != 1)
		return (-1);
	if (v == *mark)
		return (0);
	*mark = v;
	return (1);
}

static int
sq_op_generations(struct store *s, unsigned topics, struct store_gen *g)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc;

	if (topics & (STORE_GEN_POLICY | STORE_GEN_KILLSWITCH)) {
		if ((st = sq_stmt(q, SQL_GENERATIONS)) == NULL)
			return (-1);
		rc = sq_step(q, st, __func__);
		if (rc == SQLITE_ROW) {
			/* No policy reads as 0; a missing counter row would
			 * mean "switches never change": fail closed. */
			g->policy = sqlite3_column_int64(st, 0);
			if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
				log_warnx("%s: kill switch counter row "
				    "missing", __func__);
				rc = SQLITE_ERROR;
			} else
				g->killswitch = sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return (-1);
	}
	if ((topics & STORE_GEN_QUEUE) &&
	    sq_one_int(q, SQL_QUEUE_GEN, &g->queue, __func__) != 1)
		return (-1);
	if (topics & STORE_GEN_DATA) {
		/* Moves when another connection commits (SQLite's own
		 * change counter for exactly this question). */
		if ((st = sq_stmt(q, SQL_DATA_VERSION)) == NULL)
			return (-1);
		rc = sq_step(q, st, __func__);
		if (rc == SQLITE_ROW)
			g->data = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return (-1);
	}
	return (0);
}

static int
sq_op_policy_current(struct store *s, int64_t *version, char **body,
    size_t *len)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	size_t			 n;
	int			 rc;

	*version = 0;
	*body = NULL;
	*len = 0;
	if ((st = sq_stmt(q, SQL_POLICY_CURRENT)) == NULL)
		return (-1);
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_ROW) {
		n = (size_t)sqlite3_column_bytes(st, 1);
		*version = sqlite3_column_int64(st, 0);
		if ((*body = malloc(n + 1)) == NULL) {
			sqlite3_reset(st);
			return (-1);
		}
		memcpy(*body, sqlite3_column_text(st, 1), n);
		(*body)[n] = '\0';
		*len = n;
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_policy_insert(struct store *s, int64_t now, const char *actor,
    const char *sha256, const char *text, size_t len, int64_t *version)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_POLICY_INSERT)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sq_bind_text(st, 2, actor);
	sq_bind_text(st, 3, sha256);
	sqlite3_bind_text(st, 4, text, (int)len, SQLITE_TRANSIENT);
	if (sq_step_done(q, st) == -1)
		return (-1);
	*version = sqlite3_last_insert_rowid(q->sql);
	return (0);
}

static int
sq_op_policy_history(struct store *s, int64_t before, int64_t limit,
    store_policy_cb cb, void *arg)
{
	struct sqlite_store		*q = SQ(s);
	struct policy_version_row	 r;
	sqlite3_stmt			*st;
	int				 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_POLICY_HISTORY)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, before > 0 ? before : INT64_MAX);
	sqlite3_bind_int64(st, 2, limit);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		r.version = sqlite3_column_int64(st, 0);
		r.at = sqlite3_column_int64(st, 1);
		r.actor = COL_TEXT(st, 2);
		r.sha256 = COL_TEXT(st, 3);
		if (r.actor == NULL || r.sha256 == NULL) {
			log_warnx("%s: policy version %lld is malformed",
			    __func__, (long long)r.version);
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_jti_claim(struct store *s, const char *iss, const char *jti,
    int64_t prune_at)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_JTI_INSERT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, iss);
	sq_bind_text(st, 2, jti);
	sqlite3_bind_int64(st, 3, prune_at);
	return (sq_step_changed(q, st));
}

static int
sq_op_jti_prune(struct store *s, int64_t now)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_JTI_PRUNE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	return (sq_step_done(q, st));
}

/* Counter name moves by delta, in the caller's transaction; a missing
 * counter row (a damaged database) fails the change: a kill switch
 * generation that never moves would hide trips. */
static int
sq_counter_add(struct sqlite_store *q, const char *name, int delta)
{
	sqlite3_stmt	*st;

	if ((st = sq_stmt(q, SQL_COUNTER_ADD)) == NULL)
		return (-1);
	sqlite3_bind_int(st, 1, delta);
	sq_bind_text(st, 2, name);
	if (sq_step_done(q, st) == -1)
		return (-1);
	if (sqlite3_changes(q->sql) != 1) {
		log_warnx("%s: %s counter row missing", __func__, name);
		return (-1);
	}
	return (0);
}

static int
sq_pending_add(struct sqlite_store *q, int delta)
{
	return (sq_counter_add(q, "pending", delta));
}

static int
sq_op_intent_insert(struct store *s, const struct intent_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_INTENT_INSERT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, r->id);
	sq_bind_text(st, 2, r->agent);
	sq_bind_text(st, 3, r->jti);
	sq_bind_text(st, 4, r->tool);
	sq_bind_text(st, 5, r->args);
	sq_bind_text(st, 6, r->args_sha256);
	sq_bind_text(st, 7, r->amount_value);
	sq_bind_text(st, 8, r->amount_currency);
	sq_bind_text(st, 9, r->agent_reason);
	sq_bind_text(st, 10, intent_status_name(r->status));
	sq_bind_text(st, 11, outcome_name(r->decision));
	sq_bind_text(st, 12, reason_code(r->reason));
	sq_bind_text(st, 13, r->reason_text);
	sqlite3_bind_int64(st, 14, r->policy_version);
	sq_bind_text(st, 15, r->rule);
	sqlite3_bind_int(st, 16, r->approvals_required);
	sq_bind_text(st, 17, r->approver_roles);
	sq_bind_text(st, 18, r->intent_sha256);
	sqlite3_bind_int64(st, 19, r->created_at);
	sq_bind_time(st, 20, r->expires_at);
	sq_bind_time(st, 21, r->decided_at);
	sq_bind_text(st, 22, r->limit_json);
	if (sq_step_done(q, st) == -1)
		return (-1);
	if (r->status != ST_PENDING)
		return (0);
	return (sq_pending_add(q, 1) == 0 && sq_counter_add(q, "queue", 1) == 0 ?
	    0 : -1);
}

/* A copy of column i (NULL stays NULL); -1 when out of memory. */
static int
sq_col_dup(sqlite3_stmt *st, int i, char **out)
{
	const char	*s = COL_TEXT(st, i);

	*out = NULL;
	if (s == NULL)
		return (0);
	return ((*out = strdup(s)) == NULL ? -1 : 0);
}

/* The intent in the current row of an INTENT_COLUMNS statement. */
static int
sq_row_intent(sqlite3_stmt *st, struct intent_row *r)
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
	const char	*id = COL_TEXT(st, C_ID), *sha = COL_TEXT(st, C_INTENT_SHA);
	size_t		 i;

	memset(r, 0, sizeof(*r));
	if (id == NULL || sha == NULL || strlen(id) > INTENT_ID_LEN ||
	    strlen(sha) > 64)
		return (-1);
	memcpy(r->id, id, strlen(id) + 1);
	memcpy(r->intent_sha256, sha, strlen(sha) + 1);
	for (i = 0; i < sizeof(text_cols) / sizeof(text_cols[0]); i++)
		if (sq_col_dup(st, text_cols[i], slots[i]) == -1)
			goto bad;
	/* Stored names are ours; anything else means a damaged row. */
	if (intent_status_parse(COL_TEXT(st, C_STATUS), &r->status) == -1 ||
	    outcome_parse(COL_TEXT(st, C_DECISION), &r->decision) == -1 ||
	    reason_parse_decision(COL_TEXT(st, C_REASON_CODE),
	    &r->reason) == -1 || r->agent == NULL || r->tool == NULL ||
	    r->reason_text == NULL) {
		log_warnx("%s: intent %s is malformed", __func__, id);
		goto bad;
	}
	r->policy_version = sqlite3_column_int64(st, C_POLICY_VERSION);
	r->approvals_required = sqlite3_column_int(st, C_APPROVALS_REQUIRED);
	r->created_at = sqlite3_column_int64(st, C_CREATED_AT);
	r->expires_at = sqlite3_column_int64(st, C_EXPIRES_AT);
	r->decided_at = sqlite3_column_int64(st, C_DECIDED_AT);
	r->redeemed_at = sqlite3_column_int64(st, C_REDEEMED_AT);
	return (0);
 bad:
	intent_row_clear(r);
	return (-1);
}

static int
sq_approvals_into(struct sqlite_store *q, struct intent_row *r)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = sq_stmt(q, SQL_APPROVALS_GET)) == NULL)
		return (-1);
	sq_bind_text(st, 1, r->id);
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW)
		if (COL_TEXT(st, 0) == NULL || intent_row_add_approval(r,
		    COL_TEXT(st, 0), sqlite3_column_int64(st, 1),
		    COL_TEXT(st, 2)) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_parse_intent(sqlite3_stmt *st, void *out)
{
	return (sq_row_intent(st, out));
}

static int
sq_op_intent_get(struct store *s, const char *id, unsigned flags,
    struct intent_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 found;

	/* STORE_FOR_UPDATE: BEGIN IMMEDIATE already holds the write lock. */
	memset(r, 0, sizeof(*r));
	if ((st = sq_stmt(q, SQL_INTENT_GET)) == NULL)
		return (-1);
	sq_bind_text(st, 1, id);
	found = sq_one(q, st, sq_parse_intent, r, __func__);
	if (found == 1 && (flags & STORE_APPROVALS) &&
	    sq_approvals_into(q, r) == -1) {
		intent_row_clear(r);
		return (-1);
	}
	return (found);
}

static int
sq_op_intent_open_call(struct store *s, const char *agent,
    const char *call_sha256, struct intent_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 found;

	/* Locks: BEGIN IMMEDIATE already holds the write lock. */
	memset(r, 0, sizeof(*r));
	if ((st = sq_stmt(q, SQL_INTENT_OPEN_CALL)) == NULL)
		return (-1);
	sq_bind_text(st, 1, call_sha256);
	sq_bind_text(st, 2, agent);
	found = sq_one(q, st, sq_parse_intent, r, __func__);
	if (found == 1 && sq_approvals_into(q, r) == -1) {
		intent_row_clear(r);
		return (-1);
	}
	return (found);
}

static int
sq_parse_status(sqlite3_stmt *st, void *out)
{
	return (intent_status_parse(COL_TEXT(st, 0), out));
}

static int
sq_op_intent_status(struct store *s, const char *id, enum intent_status *out)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_INTENT_STATUS)) == NULL)
		return (-1);
	sq_bind_text(st, 1, id);
	return (sq_one(q, st, sq_parse_status, out, __func__));
}

static int
sq_op_intent_move(struct store *s, const struct intent_move *m)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc;

	if ((st = sq_stmt(q, SQL_INTENT_MOVE)) == NULL)
		return (-1);
	sq_bind_text(st, 1, intent_status_name(m->to));
	sq_bind_time(st, 2, m->decided_at);
	sq_bind_time(st, 3, m->expires_at);
	sq_bind_text(st, 4, m->reason_text);
	sq_bind_text(st, 5, m->closed_by);
	sq_bind_text(st, 6, m->closed_reason);
	sq_bind_text(st, 7, m->id);
	sq_bind_text(st, 8, intent_status_name(m->from));
	if ((rc = sq_step_changed(q, st)) != 0 || m->from != ST_PENDING)
		return (rc);
	if (m->to != ST_PENDING && sq_pending_add(q, -1) == -1)
		return (-1);
	return (sq_counter_add(q, "queue", 1));
}

static int
sq_op_intent_redeem(struct store *s, const char *id, const char *by,
    int64_t now)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_INTENT_REDEEM)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sq_bind_text(st, 2, by);
	sq_bind_text(st, 3, id);
	return (sq_step_changed(q, st));
}

/* "T.R": the sort time and rowid of a row; 0 or -1 when malformed. */
static int
sq_cursor_parse(const char *c, int64_t *t, int64_t *rowid)
{
	long long	 a, b;
	int		 n = -1;

	if (c == NULL || strlen(c) >= STORE_CURSOR_MAX ||
	    sscanf(c, "%lld.%lld%n", &a, &b, &n) != 2 || n < 0 ||
	    c[n] != '\0' || c[0] == '-' || b < 0)
		return (-1);
	*t = (int64_t)a;
	*rowid = (int64_t)b;
	return (0);
}

static int
sq_op_intent_page(struct store *s, const struct intent_query *qr,
    store_intent_cb cb, void *arg, char *next_cursor)
{
	struct sqlite_store	*q = SQ(s);
	struct intent_row	 r;
	sqlite3_stmt		*st;
	int			 pending = qr->status == ST_PENDING;
	int64_t			 t, rowid, n = 0;
	int			 rc, stop = 0;

	/* Parsed first: next_cursor may be the buffer qr->cursor is in. */
	if (qr->cursor == NULL) {
		/* pending from the oldest, closed ones from the newest */
		t = pending ? INT64_MIN : INT64_MAX;
		rowid = pending ? -1 : INT64_MAX;
	} else if (sq_cursor_parse(qr->cursor, &t, &rowid) == -1)
		return (-2);
	next_cursor[0] = '\0';
	if ((st = sq_stmt(q, pending ? SQL_PAGE_PENDING : SQL_PAGE_CLOSED)) ==
	    NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, t);
	sqlite3_bind_int64(st, 2, rowid);
	/* One more than asked for: tells whether a next page exists. */
	sqlite3_bind_int64(st, 3, qr->limit + 1);
	if (!pending)
		sq_bind_text(st, 4, intent_status_name(qr->status));
	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		if (n == qr->limit || stop) {
			snprintf(next_cursor, STORE_CURSOR_MAX, "%lld.%lld",
			    (long long)t, (long long)rowid);
			break;
		}
		if (sq_row_intent(st, &r) == -1) {
			rc = SQLITE_ERROR;
			break;
		}
		t = sqlite3_column_int64(st, pending ? C_CREATED_AT :
		    C_DECIDED_AT);
		rowid = sqlite3_column_int64(st, C_ROWID);
		/* A second statement while this one is live: reads only. */
		if (sq_approvals_into(q, &r) == -1) {
			intent_row_clear(&r);
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
		intent_row_clear(&r);
		n++;
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

/* Run st (bound) and give each (id, agent, tool, time) row to cb. */
static int
sq_briefs(struct sqlite_store *q, sqlite3_stmt *st, enum intent_status status,
    store_brief_cb cb, void *arg)
{
	int	 rc;

	while ((rc = sq_step(q, st, __func__)) == SQLITE_ROW)
		if (cb(COL_TEXT(st, 0), COL_TEXT(st, 1), COL_TEXT(st, 2),
		    status, sqlite3_column_int64(st, 3), arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_intents_pending(struct store *s, store_brief_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_PENDING_ALL)) == NULL)
		return (-1);
	return (sq_briefs(q, st, ST_PENDING, cb, arg));
}

static int
sq_op_intents_due(struct store *s, int64_t now, int64_t allowed_before,
    int64_t limit, store_brief_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_DUE_PENDING)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, limit);
	if (sq_briefs(q, st, ST_PENDING, cb, arg) == -1)
		return (-1);
	if ((st = sq_stmt(q, SQL_DUE_ALLOWED)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, allowed_before);
	sqlite3_bind_int64(st, 2, limit);
	return (sq_briefs(q, st, ST_ALLOWED, cb, arg));
}

static int
sq_op_intents_live(struct store *s, int64_t created_after, store_intent_cb cb,
    void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct intent_row	 r;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_INTENTS_LIVE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, created_after);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		if (sq_row_intent(st, &r) == -1) {
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
		intent_row_clear(&r);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_approval_add(struct store *s, const char *id, const char *by,
    int64_t at, const char *comment)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc;

	if ((st = sq_stmt(q, SQL_APPROVAL_INSERT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, id);
	sq_bind_text(st, 2, by);
	sqlite3_bind_int64(st, 3, at);
	sq_bind_text(st, 4, comment);
	if ((rc = sq_step_changed(q, st)) != 0)
		return (rc);
	return (sq_counter_add(q, "queue", 1));
}

static int
sq_ks_bump(struct sqlite_store *q)
{
	return (sq_counter_add(q, "killswitch", 1));
}

static int
sq_op_ks_insert(struct store *s, const struct ks_row *r, int64_t *id)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_KS_INSERT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, ks_scope_name(r->scope));
	sq_bind_text(st, 2, r->target);
	sq_bind_text(st, 3, r->reason);
	sq_bind_text(st, 4, r->by);
	sqlite3_bind_int64(st, 5, r->at);
	if (sq_step_done(q, st) == -1)
		return (-1);
	*id = sqlite3_last_insert_rowid(q->sql);
	return (sq_ks_bump(q));
}

static int
sq_op_ks_reset(struct store *s, int64_t id, const char *by, int64_t at,
    const char *reason)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_KS_RESET)) == NULL)
		return (-1);
	sq_bind_text(st, 1, by);
	sqlite3_bind_int64(st, 2, at);
	sq_bind_text(st, 3, reason);
	sqlite3_bind_int64(st, 4, id);
	if (sq_step_done(q, st) == -1)
		return (-1);
	if (sqlite3_changes(q->sql) == 0)
		return (1);
	return (sq_ks_bump(q) == -1 ? -1 : 0);
}

/* The switch in the current row of a KS_COLUMNS statement. */
static int
sq_row_ks(sqlite3_stmt *st, struct ks_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	if (ks_scope_parse(COL_TEXT(st, 1), &r->scope) == -1 ||
	    (r->scope != KS_GLOBAL && COL_TEXT(st, 2) == NULL)) {
		log_warnx("%s: switch %lld is malformed", __func__,
		    (long long)r->id);
		return (-1);
	}
	r->at = sqlite3_column_int64(st, 5);
	r->reset_at = sqlite3_column_int64(st, 7);
	if (sq_col_dup(st, 2, &r->target) == -1 ||
	    sq_col_dup(st, 3, &r->reason) == -1 ||
	    sq_col_dup(st, 4, &r->by) == -1 ||
	    sq_col_dup(st, 6, &r->reset_by) == -1 ||
	    sq_col_dup(st, 8, &r->reset_reason) == -1) {
		ks_row_clear(r);
		return (-1);
	}
	return (0);
}

static int
sq_parse_ks(sqlite3_stmt *st, void *out)
{
	return (sq_row_ks(st, out));
}

static int
sq_op_ks_get(struct store *s, int64_t id, struct ks_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	memset(r, 0, sizeof(*r));
	if ((st = sq_stmt(q, SQL_KS_GET)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, id);
	return (sq_one(q, st, sq_parse_ks, r, __func__));
}

static int
sq_op_ks_engaged(struct store *s, store_ks_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct ks_row		 r;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_KS_ENGAGED)) == NULL)
		return (-1);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		if (sq_row_ks(st, &r) == -1) {
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
		ks_row_clear(&r);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_audit_head(struct store *s, int64_t *seq, char hash[65])
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	const char		*h;
	int			 rc;

	if (q->head_valid) {
		*seq = q->head_seq;
		memcpy(hash, q->head_hash, 65);
		return (0);
	}
	*seq = 0;
	memcpy(hash, AUDIT_GENESIS, 65);
	if ((st = sq_stmt(q, SQL_AUDIT_HEAD)) == NULL)
		return (-1);
	rc = sq_step(q, st, __func__);
	if (rc == SQLITE_ROW) {
		h = COL_TEXT(st, 1);
		if (h == NULL || strlen(h) != 64) {
			log_warnx("%s: the newest audit record has no hash",
			    __func__);
			rc = SQLITE_ERROR;
		} else {
			*seq = sqlite3_column_int64(st, 0);
			memcpy(hash, h, 65);
		}
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_audit_insert(struct store *s, const struct audit_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_AUDIT_INSERT)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, r->seq);
	sq_bind_text(st, 2, r->event);
	sq_bind_text(st, 3, r->intent_id);
	sqlite3_bind_text(st, 4, r->record, (int)r->record_len,
	    SQLITE_TRANSIENT);
	sq_bind_text(st, 5, r->prev_hash);
	sq_bind_text(st, 6, r->hash);
	if (sq_step_done(q, st) == -1) {
		q->head_valid = 0;
		return (-1);
	}
	/* Only inside a transaction can nobody else append meanwhile. */
	q->head_valid = !sqlite3_get_autocommit(q->sql);
	q->head_seq = r->seq;
	snprintf(q->head_hash, sizeof(q->head_hash), "%s", r->hash);
	return (0);
}

/* Give each row of a bound AUDIT_COLUMNS statement to cb. */
static int
sq_audit_rows(struct sqlite_store *q, sqlite3_stmt *st, store_audit_cb cb,
    void *arg)
{
	struct audit_row	 r;
	int			 rc, stop = 0;

	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		r.seq = sqlite3_column_int64(st, 0);
		r.event = COL_TEXT(st, 1);
		r.intent_id = COL_TEXT(st, 2);
		r.record = COL_TEXT(st, 3);
		r.record_len = (size_t)sqlite3_column_bytes(st, 3);
		r.prev_hash = COL_TEXT(st, 4);
		r.hash = COL_TEXT(st, 5);
		stop = cb(&r, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_audit_walk(struct store *s, int64_t after, int64_t limit,
    store_audit_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_AUDIT_WALK)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	return (sq_audit_rows(q, st, cb, arg));
}

static int
sq_op_audit_intent(struct store *s, const char *id, store_audit_cb cb,
    void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_AUDIT_INTENT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, id);
	return (sq_audit_rows(q, st, cb, arg));
}

static int
sq_op_audit_policy_newest(struct store *s, store_audit_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_AUDIT_POLICY)) == NULL)
		return (-1);
	return (sq_audit_rows(q, st, cb, arg));
}

static int
sq_op_audit_live_first(struct store *s, int64_t *seq)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	*seq = 0;
	if ((st = sq_stmt(q, SQL_AUDIT_LIVE_FIRST)) == NULL)
		return (-1);
	/* min() of no rows is NULL, which reads 0: none */
	return (sq_one(q, st, sq_parse_int, seq, __func__) == -1 ? -1 : 0);
}

static int
sq_parse_cut(sqlite3_stmt *st, void *out)
{
	struct audit_cut	*c = out;
	const char		*h = COL_TEXT(st, 1);

	c->seq = sqlite3_column_int64(st, 0);
	if (h == NULL || strlen(h) != 64 || c->seq < 1) {
		log_warnx("%s: the audit cut row is malformed", __func__);
		return (-1);
	}
	memcpy(c->hash, h, 65);
	return (sq_col_dup(st, 2, &c->checkpoint) == -1 ||
	    c->checkpoint == NULL ? -1 : 0);
}

static int
sq_op_audit_cut_get(struct store *s, struct audit_cut *c)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 found;

	memset(c, 0, sizeof(*c));
	if ((st = sq_stmt(q, SQL_CUT_GET)) == NULL)
		return (-1);
	if ((found = sq_one(q, st, sq_parse_cut, c, __func__)) != 1) {
		free(c->checkpoint);
		c->checkpoint = NULL;
	}
	return (found);
}

static int
sq_op_audit_prune(struct store *s, const struct audit_cut *c)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	/* The cut first: the delete trigger allows only what it covers. */
	if ((st = sq_stmt(q, SQL_CUT_SET)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, c->seq);
	sq_bind_text(st, 2, c->hash);
	sq_bind_text(st, 3, c->checkpoint);
	if (sq_step_done(q, st) == -1 ||
	    (st = sq_stmt(q, SQL_AUDIT_PRUNE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, c->seq);
	return (sq_step_done(q, st));
}

static int
sq_op_intents_prune(struct store *s, int64_t before, int64_t *n)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	*n = 0;
	/* Approvals first: they reference their intent. */
	if ((st = sq_stmt(q, SQL_APPROVALS_PRUNE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, before);
	if (sq_step_done(q, st) == -1 ||
	    (st = sq_stmt(q, SQL_INTENTS_PRUNE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, before);
	if (sq_step_done(q, st) == -1)
		return (-1);
	*n = sqlite3_changes(q->sql);
	return (0);
}

static int
sq_op_stats(struct store *s, int64_t now, struct store_stats *out)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc;

	memset(out, 0, sizeof(*out));
	if ((st = sq_stmt(q, SQL_STATS)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, STORE_PAST_HALF_MAX);
	if ((rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			log_warnx("%s: pending counter row missing", __func__);
			rc = SQLITE_ERROR;
		}
		out->pending = sqlite3_column_int64(st, 0);
		out->oldest_pending_at = sqlite3_column_int64(st, 1);
		out->past_half_ttl = sqlite3_column_int64(st, 2);
		out->killswitches = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW ? 0 : -1);
}

static int
sq_op_outbox_add(struct store *s, const struct outbox_row *r)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_OUTBOX_ADD)) == NULL)
		return (-1);
	sq_bind_text(st, 1, r->sink);
	sq_bind_text(st, 2, r->event_id);
	sq_bind_text(st, 3, r->type);
	sqlite3_bind_int64(st, 4, r->at);
	sq_bind_time(st, 5, r->audit_seq);
	sq_bind_text(st, 6, r->data);
	return (sq_step_done(q, st));
}

static int
sq_op_outbox_head(struct store *s, const char *sink, int64_t limit,
    store_outbox_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct outbox_row	 r;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_OUTBOX_HEAD)) == NULL)
		return (-1);
	sq_bind_text(st, 1, sink);
	sqlite3_bind_int64(st, 2, limit);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(st, 0);
		r.sink = COL_TEXT(st, 1);
		r.event_id = COL_TEXT(st, 2);
		r.type = COL_TEXT(st, 3);
		r.at = sqlite3_column_int64(st, 4);
		r.audit_seq = sqlite3_column_int64(st, 5);
		r.data = COL_TEXT(st, 6);
		if (r.sink == NULL || r.event_id == NULL || r.type == NULL) {
			log_warnx("%s: outbox row %lld is malformed",
			    __func__, (long long)r.id);
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

/* Run UPDATE notify_sinks ... with (n, name) or (n, now, name). */
static int
sq_sink_count(struct sqlite_store *q, const char *sql, int64_t n,
    const int64_t *now, const char *name)
{
	sqlite3_stmt	*st;
	int		 i = 1;

	if ((st = sq_stmt(q, sql)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, i++, n);
	if (now != NULL)
		sqlite3_bind_int64(st, i++, *now);
	sq_bind_text(st, i, name);
	return (sq_step_done(q, st));
}

/* Run a bound DELETE; *n how many rows it removed. */
static int
sq_delete(struct sqlite_store *q, sqlite3_stmt *st, int64_t *n)
{
	if (sq_step_done(q, st) == -1)
		return (-1);
	*n = sqlite3_changes(q->sql);
	return (0);
}

static int
sq_op_outbox_remove(struct store *s, const char *sink, int64_t upto,
    enum outbox_removal why, int64_t now, int64_t *n)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc = -1;

	*n = 0;
	if (sq_begin(q) == -1)
		return (-1);
	if ((st = sq_stmt(q, SQL_OUTBOX_REMOVE)) == NULL)
		goto done;
	sq_bind_text(st, 1, sink);
	sqlite3_bind_int64(st, 2, upto);
	if (sq_delete(q, st, n) == -1)
		goto done;
	if (why == OUTBOX_DELIVERED)
		rc = sq_sink_count(q, SQL_SINK_DELIVERED, *n, &now, sink);
	else
		rc = sq_sink_count(q, SQL_SINK_GIVEN_UP, *n, NULL, sink);
 done:
	if (rc == 0)
		return (sq_commit(q));
	sq_rollback(q);
	return (-1);
}

static int
sq_op_outbox_count(struct store *s, const char *sink, int64_t *n)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	*n = 0;
	if ((st = sq_stmt(q, SQL_OUTBOX_COUNT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, sink);
	return (sq_one(q, st, sq_parse_int, n, __func__) == -1 ? -1 : 0);
}

static int
sq_op_outbox_drop(struct store *s, const char *sink, int64_t n,
    int64_t *dropped)
{
	static const char *const classes[] = { SQL_OUTBOX_DROP_AUDIT,
	    SQL_OUTBOX_DROP_OTHER };
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int64_t			 k;
	size_t			 i;
	int			 rc = 0;

	*dropped = 0;
	if (sq_begin(q) == -1)
		return (-1);
	for (i = 0; rc == 0 && *dropped < n &&
	    i < sizeof(classes) / sizeof(classes[0]); i++) {
		if ((st = sq_stmt(q, classes[i])) == NULL) {
			rc = -1;
			break;
		}
		sq_bind_text(st, 1, sink);
		sqlite3_bind_int64(st, 2, n - *dropped);
		if ((rc = sq_delete(q, st, &k)) == 0)
			*dropped += k;
	}
	if (rc == 0 && *dropped > 0)
		rc = sq_sink_count(q, SQL_SINK_DROPPED, *dropped, NULL, sink);
	if (rc == 0)
		return (sq_commit(q));
	sq_rollback(q);
	*dropped = 0;
	return (-1);
}

static int
sq_op_sink_register(struct store *s, const char *name, const char *events,
    const char *target)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_SINK_REGISTER)) == NULL)
		return (-1);
	sq_bind_text(st, 1, name);
	sq_bind_text(st, 2, events);
	sq_bind_text(st, 3, target);
	return (sq_step_done(q, st));
}

static int
sq_op_sink_lease(struct store *s, const char *name, const char *owner,
    int64_t now, int64_t until)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_SINK_LEASE)) == NULL)
		return (-1);
	sq_bind_text(st, 1, owner);
	sqlite3_bind_int64(st, 2, until);
	sq_bind_text(st, 3, name);
	sqlite3_bind_int64(st, 4, now);
	return (sq_step_changed(q, st));
}

static int
sq_op_sink_failed(struct store *s, const char *name, int64_t now,
    int64_t next_at, const char *error)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_SINK_FAILED)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, next_at);
	sq_bind_text(st, 2, error);
	sqlite3_bind_int64(st, 3, now);
	sq_bind_text(st, 4, name);
	return (sq_step_done(q, st));
}

static int
sq_op_sink_status(struct store *s, store_sink_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct sink_row		 r;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_SINK_STATUS)) == NULL)
		return (-1);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.name = COL_TEXT(st, 0);
		r.events = COL_TEXT(st, 1);
		r.target = COL_TEXT(st, 2);
		r.lease_owner = COL_TEXT(st, 3);
		r.lease_until = sqlite3_column_int64(st, 4);
		r.attempts = sqlite3_column_int64(st, 5);
		r.next_at = sqlite3_column_int64(st, 6);
		r.delivered = sqlite3_column_int64(st, 7);
		r.failed = sqlite3_column_int64(st, 8);
		r.given_up = sqlite3_column_int64(st, 9);
		r.dropped = sqlite3_column_int64(st, 10);
		r.last_error = COL_TEXT(st, 11);
		r.last_error_at = sqlite3_column_int64(st, 12);
		r.last_delivered_at = sqlite3_column_int64(st, 13);
		r.queued = sqlite3_column_int64(st, 14);
		r.oldest_at = sqlite3_column_int64(st, 15);
		if (r.name == NULL || r.events == NULL || r.target == NULL) {
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&r, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_op_checkpoint_claim(struct store *s, int64_t now, int64_t every)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_CHECKPOINT_CLAIM)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, every);
	return (sq_step_changed(q, st));
}

/* One file on one host: the generations tell every change, no feed. */
static int
sq_op_listen(struct store *s)
{
	return (-2);
}

static int
sq_op_heard(struct store *s, store_heard_cb cb, void *arg)
{
	return (0);
}

const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_op_close,
	.set_durability = sq_op_set_durability,
	.set_read_only = sq_op_set_read_only,
	.flush = sq_op_flush,
	.begin = sq_op_begin,
	.commit = sq_op_commit,
	.rollback = sq_op_rollback,
	.generations = sq_op_generations,
	.others_wrote = sq_op_others_wrote,
	.policy_current = sq_op_policy_current,
	.policy_insert = sq_op_policy_insert,
	.policy_history = sq_op_policy_history,
	.jti_claim = sq_op_jti_claim,
	.jti_prune = sq_op_jti_prune,
	.intent_insert = sq_op_intent_insert,
	.intent_get = sq_op_intent_get,
	.intent_open_call = sq_op_intent_open_call,
	.intent_status = sq_op_intent_status,
	.intent_move = sq_op_intent_move,
	.intent_redeem = sq_op_intent_redeem,
	.intent_page = sq_op_intent_page,
	.intents_pending = sq_op_intents_pending,
	.intents_due = sq_op_intents_due,
	.approval_add = sq_op_approval_add,
	.ks_insert = sq_op_ks_insert,
	.ks_reset = sq_op_ks_reset,
	.ks_get = sq_op_ks_get,
	.ks_engaged = sq_op_ks_engaged,
	.audit_head = sq_op_audit_head,
	.audit_insert = sq_op_audit_insert,
	.audit_walk = sq_op_audit_walk,
	.audit_intent = sq_op_audit_intent,
	.audit_policy_newest = sq_op_audit_policy_newest,
	.audit_live_first = sq_op_audit_live_first,
	.audit_cut_get = sq_op_audit_cut_get,
	.audit_prune = sq_op_audit_prune,
	.intents_prune = sq_op_intents_prune,
	.stats = sq_op_stats,
	.outbox_add = sq_op_outbox_add,
	.outbox_head = sq_op_outbox_head,
	.outbox_remove = sq_op_outbox_remove,
	.outbox_count = sq_op_outbox_count,
	.outbox_drop = sq_op_outbox_drop,
	.sink_register = sq_op_sink_register,
	.sink_lease = sq_op_sink_lease,
	.sink_failed = sq_op_sink_failed,
	.sink_status = sq_op_sink_status,
	.checkpoint_claim = sq_op_checkpoint_claim,
	.limit_usage_get = sq_op_limit_usage_get,
	.limit_usage_put = sq_op_limit_usage_put,
	.limit_usage_walk = sq_op_limit_usage_walk,
	.limit_bucket_get = sq_op_limit_bucket_get,
	.limit_bucket_put = sq_op_limit_bucket_put,
	.limit_buckets_walk = sq_op_limit_buckets_walk,
	.limit_buckets_drop = sq_op_limit_buckets_drop,
	.limit_defs_walk = sq_op_limit_defs_walk,
	.limit_def_put = sq_op_limit_def_put,
	.limit_forget = sq_op_limit_forget,
	.intents_live = sq_op_intents_live,
	.listen = sq_op_listen,
	.heard = sq_op_heard,
};

struct store *
store_sqlite_open(const char *path, unsigned flags, char *err, size_t errlen)
{
	struct sqlite_store	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	q->base.ops = &sqlite_ops;
	if (sq_open(q, path, flags, err, errlen) == -1) {
		sq_close(q);
		free(q);
		return (NULL);
	}
	return (&q->base);
}

const char *
store_sqlite_stats_sql(void)
{
	return (SQL_STATS);
}

sqlite3 *
store_sqlite_handle(struct store *s)
{
	return (s != NULL && s->ops == &sqlite_ops ? SQ(s)->sql : NULL);
}
