/*
 * store: the rows behind decisions — policy versions, intents with their
 * approvals, and the (iss, jti) replay guard — and the one function that
 * turns an intent row into the API view, so POST and GET answers cannot
 * differ.  Every statement is prepared once per connection with bound
 * parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "log.h"
#include "store.h"

static const char SQL_POLICY_CURRENT[] =
    "SELECT version, body FROM policy_versions ORDER BY version DESC LIMIT 1";
/* Asked before every batch: must not read the (possibly megabyte) body. */
static const char SQL_POLICY_VERSION[] =
    "SELECT max(version) FROM policy_versions";
static const char SQL_POLICY_INSERT[] =
    "INSERT INTO policy_versions (created_at, actor, sha256, body) "
    "VALUES (?, ?, ?, ?)";
static const char SQL_JTI_INSERT[] =
    "INSERT OR IGNORE INTO seen_jti (iss, jti, prune_at) VALUES (?, ?, ?)";
static const char SQL_JTI_PRUNE[] =
    "DELETE FROM seen_jti WHERE prune_at < ?";
static const char SQL_INTENT_INSERT[] =
    "INSERT INTO intents (id, agent, jti, tool, args, amount_value, "
    "amount_currency, reason, status, decision, reason_code, reason_text, "
    "policy_version, rule, approvals_required, approver_roles, "
    "intent_sha256, created_at, expires_at, decided_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
#define INTENT_COLUMNS \
    "id, agent, jti, tool, args, amount_value, amount_currency, " \
    "reason, status, decision, reason_code, reason_text, policy_version, " \
    "rule, approvals_required, approver_roles, intent_sha256, created_at, " \
    "expires_at, decided_at, redeemed_at, closed_by, closed_reason "
static const char SQL_INTENT_GET[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE id = ?";
static const char SQL_PENDING_LIST[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = 'pending' "
    "ORDER BY created_at, rowid LIMIT ?";
static const char SQL_CLOSED_LIST[] =
    "SELECT " INTENT_COLUMNS "FROM intents WHERE status = ? "
    "AND approvals_required > 0 ORDER BY decided_at DESC, rowid DESC "
    "LIMIT ?";
static const char SQL_APPROVAL_INSERT[] =
    "INSERT OR IGNORE INTO approvals (intent_id, approver, at, comment) "
    "VALUES (?, ?, ?, ?)";
static const char SQL_APPROVAL_COUNT[] =
    "SELECT count(*) FROM approvals WHERE intent_id = ?";
static const char SQL_INTENT_CLOSE[] =
    "UPDATE intents SET status = ?, decided_at = ?, closed_by = ?, "
    "closed_reason = ?, reason_text = ? WHERE id = ? AND status = 'pending'";
static const char SQL_EXPIRED_DUE[] =
    "SELECT id FROM intents WHERE status = 'pending' AND expires_at <= ? "
    "ORDER BY expires_at LIMIT ?";
static const char SQL_APPROVALS_GET[] =
    "SELECT approver, at, comment FROM approvals WHERE intent_id = ? "
    "ORDER BY id";

int
store_policy_version(struct db *db, int64_t *version)
{
	sqlite3_stmt	*st;
	int		 rc;

	*version = 0;
	if ((st = db_stmt(db, SQL_POLICY_VERSION)) == NULL)
		return (-1);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);	/* NULL reads as 0 */
	sqlite3_reset(st);
	return (rc == SQLITE_ROW ? 0 : -1);
}

int
store_policy_current(struct db *db, int64_t *version, char **body,
    size_t *len)
{
	sqlite3_stmt	*st;
	int		 rc;

	*version = 0;
	*body = NULL;
	if ((st = db_stmt(db, SQL_POLICY_CURRENT)) == NULL)
		return (-1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 1);

		*version = sqlite3_column_int64(st, 0);
		if ((*body = malloc(n + 1)) == NULL) {
			sqlite3_reset(st);
			return (-1);
		}
		memcpy(*body, sqlite3_column_text(st, 1), n);
		(*body)[n] = '\0';
		if (len != NULL)
			*len = n;
	}
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

int
store_policy_apply(struct db *db, const char *text, size_t len,
    const char *actor, int64_t *version)
{
	sqlite3_stmt	*st;
	json_t		*details;
	char		 sha[65];
	int64_t		 now = clock_now();

	canon_sha256_hex(text, len, sha);
	if (db_begin(db) == -1)
		return (-1);
	if ((st = db_stmt(db, SQL_POLICY_INSERT)) == NULL)
		goto bad;
	sqlite3_bind_int64(st, 1, now);
	db_bind_text(st, 2, actor);
	db_bind_text(st, 3, sha);
	sqlite3_bind_text(st, 4, text, (int)len, SQLITE_TRANSIENT);
	if (db_step_done(db, st) == -1)
		goto bad;
	*version = sqlite3_last_insert_rowid(db->sql);
	details = json_pack("{sI ss}", "version", (json_int_t)*version,
	    "sha256", sha);
	if (audit_append(db, now, actor, "policy.apply", NULL, details) == -1) {
		json_decref(details);
		goto bad;
	}
	json_decref(details);
	return (db_commit(db));
 bad:
	db_rollback(db);
	return (-1);
}

int
store_jti_claim(struct db *db, const char *iss, const char *jti,
    int64_t prune_at)
{
	sqlite3_stmt	*st;

	if ((st = db_stmt(db, SQL_JTI_INSERT)) == NULL)
		return (-1);
	db_bind_text(st, 1, iss);
	db_bind_text(st, 2, jti);
	sqlite3_bind_int64(st, 3, prune_at);
	if (db_step_done(db, st) == -1)
		return (-1);
	return (sqlite3_changes(db->sql) == 1 ? 0 : 1);
}

int
store_jti_prune(struct db *db, int64_t now)
{
	sqlite3_stmt	*st;

	if ((st = db_stmt(db, SQL_JTI_PRUNE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	return (db_step_done(db, st));
}

static void
bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t == 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, t);
}

int
store_intent_insert(struct db *db, const struct intent_record *r)
{
	sqlite3_stmt	*st;

	if ((st = db_stmt(db, SQL_INTENT_INSERT)) == NULL)
		return (-1);
	db_bind_text(st, 1, r->id);
	db_bind_text(st, 2, r->agent);
	db_bind_text(st, 3, r->jti);
	db_bind_text(st, 4, r->tool);
	db_bind_text(st, 5, r->args);
	db_bind_text(st, 6, r->amount_value);
	db_bind_text(st, 7, r->amount_currency);
	db_bind_text(st, 8, r->agent_reason);
	db_bind_text(st, 9, r->status);
	db_bind_text(st, 10, r->decision);
	db_bind_text(st, 11, r->reason_code);
	db_bind_text(st, 12, r->reason_text);
	sqlite3_bind_int64(st, 13, r->policy_version);
	db_bind_text(st, 14, r->rule);
	sqlite3_bind_int(st, 15, r->approvals_required);
	db_bind_text(st, 16, r->approver_roles);
	db_bind_text(st, 17, r->intent_sha256);
	sqlite3_bind_int64(st, 18, r->created_at);
	bind_time(st, 19, r->expires_at);
	bind_time(st, 20, r->decided_at);
	return (db_step_done(db, st));
}

static json_t *
json_time(int64_t t)
{
	char	 buf[RFC3339_LEN];

	clock_rfc3339(t, buf);
	return (json_string(buf));
}

static json_t *
json_text_or_null(const char *s)
{
	return (s ? json_string(s) : json_null());
}

/* Stored JSON text back to a value; the text was written by us. */
static json_t *
json_stored(const char *text, json_t *fallback)
{
	json_t	*v = text ? json_loads(text, 0, NULL) : NULL;

	if (v == NULL)
		return (fallback);
	json_decref(fallback);
	return (v);
}

json_t *
store_intent_json(const struct intent_record *r)
{
	json_t	*v, *amount = json_null();

	if (r->amount_value != NULL && r->amount_currency != NULL) {
		json_decref(amount);
		amount = json_pack("{ss ss}", "value", r->amount_value,
		    "currency", r->amount_currency);
	}
	v = json_pack("{ss ss ss ss ss sI ss ss so so so so sI so so so ss}",
	    "id", r->id,
	    "status", r->status,
	    "decision", r->decision,
	    "reason_code", r->reason_code,
	    "reason", r->reason_text,
	    "policy_version", (json_int_t)r->policy_version,
	    "agent", r->agent,
	    "tool", r->tool,
	    "args", json_stored(r->args, json_object()),
	    "amount", amount,
	    "agent_reason", json_text_or_null(r->agent_reason),
	    "created_at", json_time(r->created_at),
	    "approvals_required", (json_int_t)r->approvals_required,
	    "approvals", json_array(),
	    "rule", json_stored(r->rule, json_null()),
	    "approver_roles", json_stored(r->approver_roles, json_array()),
	    "intent_sha256", r->intent_sha256);
	if (v == NULL)
		return (NULL);
	if (r->expires_at != 0 && (strcmp(r->status, "pending") == 0 ||
	    strcmp(r->status, "expired") == 0))
		json_object_set_new(v, "expires_at", json_time(r->expires_at));
	if (r->decided_at != 0)
		json_object_set_new(v, "decided_at", json_time(r->decided_at));
	if (r->redeemed_at != 0)
		json_object_set_new(v, "redeemed_at",
		    json_time(r->redeemed_at));
	if (r->closed_by != NULL)
		json_object_set_new(v, "closed_by", json_string(r->closed_by));
	if (r->closed_reason != NULL)
		json_object_set_new(v, "closed_reason",
		    json_string(r->closed_reason));
	return (v);
}

#define COL_TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

static void
store_row_record(sqlite3_stmt *st, struct intent_record *r)
{
	memset(r, 0, sizeof(*r));
	r->id = COL_TEXT(st, 0);
	r->agent = COL_TEXT(st, 1);
	r->jti = COL_TEXT(st, 2);
	r->tool = COL_TEXT(st, 3);
	r->args = COL_TEXT(st, 4);
	r->amount_value = COL_TEXT(st, 5);
	r->amount_currency = COL_TEXT(st, 6);
	r->agent_reason = COL_TEXT(st, 7);
	r->status = COL_TEXT(st, 8);
	r->decision = COL_TEXT(st, 9);
	r->reason_code = COL_TEXT(st, 10);
	r->reason_text = COL_TEXT(st, 11);
	r->policy_version = sqlite3_column_int64(st, 12);
	r->rule = COL_TEXT(st, 13);
	r->approvals_required = sqlite3_column_int(st, 14);
	r->approver_roles = COL_TEXT(st, 15);
	r->intent_sha256 = COL_TEXT(st, 16);
	r->created_at = sqlite3_column_int64(st, 17);
	r->expires_at = sqlite3_column_int64(st, 18);
	r->decided_at = sqlite3_column_int64(st, 19);
	r->redeemed_at = sqlite3_column_int64(st, 20);
	r->closed_by = COL_TEXT(st, 21);
	r->closed_reason = COL_TEXT(st, 22);
}

static int
store_approvals_into(struct db *db, const char *id, json_t *list)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = db_stmt(db, SQL_APPROVALS_GET)) == NULL)
		return (-1);
	db_bind_text(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(list, json_pack("{ss so so}",
		    "by", COL_TEXT(st, 0),
		    "at", json_time(sqlite3_column_int64(st, 1)),
		    "comment", json_text_or_null(COL_TEXT(st, 2))));
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

/* Run st (bound, not stepped) and append each row's view to items. */
static int
store_views(struct db *db, sqlite3_stmt *st, json_t *items)
{
	struct intent_record	 r;
	json_t			*v;
	size_t			 i, first = json_array_size(items);
	int			 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_row_record(st, &r);
		if ((v = store_intent_json(&r)) == NULL ||
		    json_array_append_new(items, v) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (-1);
	/* Approvals come from another statement: not while st is live. */
	for (i = first; i < json_array_size(items); i++) {
		v = json_array_get(items, i);
		if (store_approvals_into(db, json_string_value(
		    json_object_get(v, "id")), json_object_get(v,
		    "approvals")) == -1)
			return (-1);
	}
	return (0);
}

int
store_intent_get(struct db *db, const char *id, json_t **view)
{
	sqlite3_stmt	*st;
	json_t		*items = json_array();

	*view = NULL;
	if (items == NULL || (st = db_stmt(db, SQL_INTENT_GET)) == NULL) {
		json_decref(items);
		return (-1);
	}
	db_bind_text(st, 1, id);
	if (store_views(db, st, items) == -1) {
		json_decref(items);
		return (-1);
	}
	*view = json_incref(json_array_get(items, 0));
	json_decref(items);
	return (*view != NULL);
}

int
store_intent_list(struct db *db, const char *status, int64_t limit,
    json_t *items)
{
	sqlite3_stmt	*st;
	int		 pending = strcmp(status, "pending") == 0;

	if ((st = db_stmt(db, pending ? SQL_PENDING_LIST : SQL_CLOSED_LIST)) ==
	    NULL)
		return (-1);
	if (pending)
		sqlite3_bind_int64(st, 1, limit);
	else {
		db_bind_text(st, 1, status);
		sqlite3_bind_int64(st, 2, limit);
	}
	return (store_views(db, st, items));
}

int
store_approval_add(struct db *db, const char *id, const char *approver,
    int64_t now, const char *comment, int *count)
{
	sqlite3_stmt	*st;
	int		 added;

	if ((st = db_stmt(db, SQL_APPROVAL_INSERT)) == NULL)
		return (-1);
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, approver);
	sqlite3_bind_int64(st, 3, now);
	db_bind_text(st, 4, comment);
	if (db_step_done(db, st) == -1)
		return (-1);
	added = sqlite3_changes(db->sql);
	if ((st = db_stmt(db, SQL_APPROVAL_COUNT)) == NULL)
		return (-1);
	db_bind_text(st, 1, id);
	*count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) :
	    -1;
	sqlite3_reset(st);
	if (*count < 0)
		return (-1);
	return (added ? 0 : 1);
}

int
store_intent_close(struct db *db, const char *id, const char *status,
    int64_t now, const char *by, const char *why)
{
	sqlite3_stmt	*st;

	if ((st = db_stmt(db, SQL_INTENT_CLOSE)) == NULL)
		return (-1);
	db_bind_text(st, 1, status);
	sqlite3_bind_int64(st, 2, now);
	db_bind_text(st, 3, by);
	db_bind_text(st, 4, why);
	/* The answer's human text follows the intent to its end. */
	db_bind_text(st, 5, strcmp(status, "allowed") == 0 ?
	    "approved by the required approvers" :
	    strcmp(status, "rejected") == 0 ? "rejected by an approver" :
	    "no approval before the approval window closed");
	db_bind_text(st, 6, id);
	if (db_step_done(db, st) == -1)
		return (-1);
	return (sqlite3_changes(db->sql) == 1 ? 0 : 1);
}

int
store_expired_due(struct db *db, int64_t now, int64_t limit, json_t *ids)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = db_stmt(db, SQL_EXPIRED_DUE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(ids, json_string(COL_TEXT(st, 0)));
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

int
store_new_id(char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	 rnd[16];
	struct timespec	 ts;
	uint64_t	 ms;
	size_t		 i;

	/*
	 * 48 bits of milliseconds, then 80 random bits: ids still cannot be
	 * guessed, but new rows land at the end of the id B-trees instead of
	 * on a random page each, so a group commit dirties a few pages
	 * rather than one per decision (and a big table stays cheap).
	 */
	if (outlen < 36 || RAND_bytes(rnd + 6, sizeof(rnd) - 6) != 1)
		return (-1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (i = 0; i < 6; i++)
		rnd[i] = (unsigned char)(ms >> (40 - 8 * i));
	memcpy(out, "in_", 3);
	for (i = 0; i < sizeof(rnd); i++) {
		out[3 + 2 * i] = hex[rnd[i] >> 4];
		out[4 + 2 * i] = hex[rnd[i] & 15];
	}
	out[35] = '\0';
	return (0);
}
