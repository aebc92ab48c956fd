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
    "(SELECT seq FROM audit_head)", 0 };

/* --- policy, replay guard ------------------------------------------- */

static const struct pg_stmt SQL_POLICY_CURRENT = {
    "SELECT version, body FROM policy_versions ORDER BY version DESC "
    "LIMIT 1", 0 };
static const struct pg_stmt SQL_POLICY_INSERT = {
    "WITH v AS (INSERT INTO policy_versions (version, created_at, actor, "
    "sha256, body) SELECT coalesce(max(version), 0) + 1, $1::bigint, "
    "$2::text, $3::text, $4::text FROM policy_versions RETURNING version) "
    "SELECT version, pg_notify('" PG_CHANNEL "', 'p') FROM v", 4 };
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
    "intent_sha256, created_at, expires_at, decided_at) VALUES ($1, $2, $3, "
    "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "$19, $20, $21)", 21 };
#define INTENT_COLUMNS \
    "id, agent, jti, tool, args, args_sha256, amount_value, " \
    "amount_currency, reason, status, decision, reason_code, reason_text, " \
    "policy_version, rule, approvals_required, approver_roles, " \
    "intent_sha256, created_at, expires_at, decided_at, redeemed_at, " \
    "redeemed_by, closed_by, closed_reason, seq "
enum {
	C_ID, C_AGENT, C_JTI, C_TOOL, C_ARGS, C_ARGS_SHA, C_AMOUNT_VALUE,
	C_AMOUNT_CURRENCY, C_REASON, C_STATUS, C_DECISION, C_REASON_CODE,
	C_REASON_TEXT, C_POLICY_VERSION, C_RULE, C_APPROVALS_REQUIRED,
	C_APPROVER_ROLES, C_INTENT_SHA, C_CREATED_AT, C_EXPIRES_AT,
	C_DECIDED_AT, C_REDEEMED_AT, C_REDEEMED_BY, C_CLOSED_BY,
	C_CLOSED_REASON, C_SEQ
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

/* --- audit chain ---------------------------------------------------- */

static const struct pg_stmt SQL_AUDIT_INSERT = {
    "INSERT INTO audit (seq, event, intent_id, record, prev_hash, hash) "
    "VALUES ($1, $2, $3, $4, $5, $6)", 6 };
static const struct pg_stmt SQL_AUDIT_WALK = {
    "SELECT seq, event, intent_id, record, prev_hash, hash FROM audit "
    "WHERE seq > $1 ORDER BY seq LIMIT $2", 2 };

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
static int
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
	    PQgetisnull(r, 0, 2)) {
		log_warnx("%s: a counter row is missing", __func__);
		rc = -1;
	} else {
		if (topics & STORE_GEN_POLICY)
			g->policy = pg_get_int(r, 0, 0);
		if (topics & STORE_GEN_KILLSWITCH)
			g->killswitch = pg_get_int(r, 0, 1);
		if (topics & STORE_GEN_DATA)
			g->data = pg_get_int(r, 0, 2);
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
	return (pg_run_count(p, &SQL_INTENT_INSERT, &a, __func__) == 1 ? 0 :
	    -1);
}

/* The intent in row i of an INTENT_COLUMNS result. */
static int
pg_row_intent(const PGresult *res, int i, struct intent_row *r)
{
	static const int text_cols[] = { C_AGENT, C_JTI, C_TOOL, C_ARGS,
	    C_ARGS_SHA, C_AMOUNT_VALUE, C_AMOUNT_CURRENCY, C_REASON,
	    C_REASON_TEXT, C_RULE, C_APPROVER_ROLES, C_REDEEMED_BY,
	    C_CLOSED_BY, C_CLOSED_REASON };
	char		**slots[] = { &r->agent, &r->jti, &r->tool, &r->args,
	    &r->args_sha256, &r->amount_value, &r->amount_currency,
	    &r->agent_reason, &r->reason_text, &r->rule, &r->approver_roles,
	    &r->redeemed_by, &r->closed_by, &r->closed_reason };
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
	n = pg_run_count(p, &SQL_INTENT_MOVE, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
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
	n = pg_run_count(p, &SQL_APPROVAL_INSERT, &a, __func__);
	return (n == -1 ? -1 : n == 1 ? 0 : 1);
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
	if (!p->in_tx) {
		log_warnx("%s: audit records are appended only inside a "
		    "transaction", __func__);
		return (-1);
	}
	if (pg_tx_lock(p) == -1)
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
			r.seq = pg_get_int(res, i, 0);
			r.event = pg_get(res, i, 1);
			r.intent_id = pg_get(res, i, 2);
			r.record = pg_get(res, i, 3);
			r.record_len = (size_t)PQgetlength(res, i, 3);
			r.prev_hash = pg_get(res, i, 4);
			r.hash = pg_get(res, i, 5);
			after = r.seq;
			stop = cb(&r, arg);
		}
		PQclear(res);
		left -= n;
	} while (!stop && n == chunk && left > 0);
	return (0);
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

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_op_close,
	.set_durability = pg_op_set_durability,
	.begin = pg_op_begin,
	.commit = pg_op_commit,
	.rollback = pg_op_rollback,
	.generations = pg_op_generations,
	.policy_current = pg_op_policy_current,
	.policy_insert = pg_op_policy_insert,
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
