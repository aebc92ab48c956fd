/*
 * store_sqlite_limits: the SQLite engine's statements for the usage of
 * cumulative limits (migrations/0004, store.h "Usage of cumulative
 * limits").  Like store_sqlite.c it stores what it is told — usage.c
 * does every sum and comparison, in C, so that no total can be rounded
 * or wrap inside SQL (SQLite turns an integer overflow into a REAL).
 * BEGIN IMMEDIATE already holds the database, so STORE_FOR_UPDATE costs
 * nothing here.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store_sqlite_impl.h"

static const char SQL_USAGE_GET[] =
    "SELECT id, n, whole, micro, oldest, newest FROM limit_usage "
    "WHERE name = ? AND key = ?";
static const char SQL_USAGE_INSERT[] =
    "INSERT INTO limit_usage (name, key, agent, n, whole, micro, oldest, "
    "newest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_USAGE_UPDATE[] =
    "UPDATE limit_usage SET n = ?, whole = ?, micro = ?, oldest = ?, "
    "newest = ? WHERE id = ?";
static const char SQL_USAGE_DELETE[] =
    "DELETE FROM limit_usage WHERE id = ?";
static const char SQL_USAGE_WALK[] =
    "SELECT id, name, key, agent, n, whole, micro, oldest, newest "
    "FROM limit_usage "
    "WHERE id > ?1 AND (?2 IS NULL OR agent = ?2) ORDER BY id LIMIT ?3";
static const char SQL_BUCKET_GET[] =
    "SELECT at, n, whole, micro FROM limit_buckets "
    "WHERE usage_id = ? AND at = ?";
static const char SQL_BUCKET_PUT[] =
    "INSERT INTO limit_buckets (usage_id, at, n, whole, micro) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (usage_id, at) "
    "DO UPDATE SET n = ?3, whole = ?4, micro = ?5";
static const char SQL_BUCKET_DELETE[] =
    "DELETE FROM limit_buckets WHERE usage_id = ? AND at = ?";
static const char SQL_BUCKETS_WALK[] =
    "SELECT at, n, whole, micro FROM limit_buckets "
    "WHERE usage_id = ? AND at > ? ORDER BY at";
static const char SQL_BUCKETS_DROP[] =
    "DELETE FROM limit_buckets WHERE usage_id = ? AND at <= ?";
static const char SQL_DEFS_WALK[] =
    "SELECT name, def FROM limit_defs ORDER BY name";
static const char SQL_DEF_PUT[] =
    "INSERT INTO limit_defs (name, def) VALUES (?1, ?2) "
    "ON CONFLICT (name) DO UPDATE SET def = ?2";
static const char SQL_FORGET_BUCKETS[] =
    "DELETE FROM limit_buckets WHERE usage_id IN "
    "(SELECT id FROM limit_usage WHERE name = ?)";
static const char SQL_FORGET_USAGE[] =
    "DELETE FROM limit_usage WHERE name = ?";
static const char SQL_FORGET_DEF[] =
    "DELETE FROM limit_defs WHERE name = ?";

#define COL_TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

static int
sq_parse_usage(sqlite3_stmt *st, void *out)
{
	struct limit_usage_row	*u = out;

	u->id = sqlite3_column_int64(st, 0);
	u->n = sqlite3_column_int64(st, 1);
	u->whole = sqlite3_column_int64(st, 2);
	u->micro = sqlite3_column_int64(st, 3);
	u->oldest = sqlite3_column_int64(st, 4);
	u->newest = sqlite3_column_int64(st, 5);
	return (0);
}

int
sq_op_limit_usage_get(struct store *s, const char *name, const char *key,
    unsigned flags, struct limit_usage_row *u)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	/* STORE_FOR_UPDATE: BEGIN IMMEDIATE already holds the write lock. */
	(void)flags;
	memset(u, 0, sizeof(*u));
	u->name = name;
	u->key = key;
	if ((st = sq_stmt(q, SQL_USAGE_GET)) == NULL)
		return (-1);
	sq_bind_text(st, 1, name);
	sq_bind_text(st, 2, key);
	return (sq_one(q, st, sq_parse_usage, u, __func__));
}

/* Run st with the bound id of a usage row or bucket (delete one). */
static int
sq_delete_by(struct sqlite_store *q, const char *sql, int64_t id, int64_t at,
    int with_at)
{
	sqlite3_stmt	*st;

	if ((st = sq_stmt(q, sql)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, id);
	if (with_at)
		sqlite3_bind_int64(st, 2, at);
	return (sq_step_done(q, st));
}

int
sq_op_limit_usage_put(struct store *s, struct limit_usage_row *u)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if (u->n == 0) {
		if (u->id == 0)
			return (0);
		/* every bucket is empty; none should be left, but make sure */
		if (sq_delete_by(q, SQL_BUCKETS_DROP, u->id, INT64_MAX, 1) ==
		    -1 || sq_delete_by(q, SQL_USAGE_DELETE, u->id, 0, 0) == -1)
			return (-1);
		u->id = 0;
		return (0);
	}
	if (u->id == 0) {
		if ((st = sq_stmt(q, SQL_USAGE_INSERT)) == NULL)
			return (-1);
		sq_bind_text(st, 1, u->name);
		sq_bind_text(st, 2, u->key);
		sq_bind_text(st, 3, u->agent);
		sqlite3_bind_int64(st, 4, u->n);
		sqlite3_bind_int64(st, 5, u->whole);
		sqlite3_bind_int64(st, 6, u->micro);
		sqlite3_bind_int64(st, 7, u->oldest);
		sqlite3_bind_int64(st, 8, u->newest);
		if (sq_step_done(q, st) == -1)
			return (-1);
		u->id = sqlite3_last_insert_rowid(q->sql);
		return (0);
	}
	if ((st = sq_stmt(q, SQL_USAGE_UPDATE)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, u->n);
	sqlite3_bind_int64(st, 2, u->whole);
	sqlite3_bind_int64(st, 3, u->micro);
	sqlite3_bind_int64(st, 4, u->oldest);
	sqlite3_bind_int64(st, 5, u->newest);
	sqlite3_bind_int64(st, 6, u->id);
	return (sq_step_done(q, st));
}

int
sq_op_limit_usage_walk(struct store *s, int64_t after, const char *agent,
    int64_t limit, store_usage_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct limit_usage_row	 u;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_USAGE_WALK)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, after);
	sq_bind_text(st, 2, agent);
	sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		memset(&u, 0, sizeof(u));
		u.id = sqlite3_column_int64(st, 0);
		u.name = COL_TEXT(st, 1);
		u.key = COL_TEXT(st, 2);
		u.agent = COL_TEXT(st, 3);
		u.n = sqlite3_column_int64(st, 4);
		u.whole = sqlite3_column_int64(st, 5);
		u.micro = sqlite3_column_int64(st, 6);
		u.oldest = sqlite3_column_int64(st, 7);
		u.newest = sqlite3_column_int64(st, 8);
		if (u.name == NULL || u.key == NULL) {
			log_warnx("%s: usage row %lld is malformed", __func__,
			    (long long)u.id);
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(&u, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

static int
sq_parse_bucket(sqlite3_stmt *st, void *out)
{
	struct limit_bucket_row	*b = out;

	b->at = sqlite3_column_int64(st, 0);
	b->n = sqlite3_column_int64(st, 1);
	b->whole = sqlite3_column_int64(st, 2);
	b->micro = sqlite3_column_int64(st, 3);
	return (0);
}

int
sq_op_limit_bucket_get(struct store *s, int64_t usage_id, int64_t at,
    struct limit_bucket_row *b)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	memset(b, 0, sizeof(*b));
	if ((st = sq_stmt(q, SQL_BUCKET_GET)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, usage_id);
	sqlite3_bind_int64(st, 2, at);
	return (sq_one(q, st, sq_parse_bucket, b, __func__));
}

int
sq_op_limit_bucket_put(struct store *s, int64_t usage_id,
    const struct limit_bucket_row *b)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if (b->n == 0)
		return (sq_delete_by(q, SQL_BUCKET_DELETE, usage_id, b->at, 1));
	if ((st = sq_stmt(q, SQL_BUCKET_PUT)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, usage_id);
	sqlite3_bind_int64(st, 2, b->at);
	sqlite3_bind_int64(st, 3, b->n);
	sqlite3_bind_int64(st, 4, b->whole);
	sqlite3_bind_int64(st, 5, b->micro);
	return (sq_step_done(q, st));
}

int
sq_op_limit_buckets_walk(struct store *s, int64_t usage_id, int64_t after,
    store_bucket_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	struct limit_bucket_row	 b;
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_BUCKETS_WALK)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, usage_id);
	sqlite3_bind_int64(st, 2, after);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		(void)sq_parse_bucket(st, &b);
		stop = cb(&b, arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

int
sq_op_limit_buckets_drop(struct store *s, int64_t usage_id, int64_t upto)
{
	return (sq_delete_by(SQ(s), SQL_BUCKETS_DROP, usage_id, upto, 1));
}

int
sq_op_limit_defs_walk(struct store *s, store_def_cb cb, void *arg)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	int			 rc, stop = 0;

	if ((st = sq_stmt(q, SQL_DEFS_WALK)) == NULL)
		return (-1);
	while (!stop && (rc = sq_step(q, st, __func__)) == SQLITE_ROW) {
		if (COL_TEXT(st, 0) == NULL || COL_TEXT(st, 1) == NULL) {
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(COL_TEXT(st, 0), COL_TEXT(st, 1), arg);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}

int
sq_op_limit_def_put(struct store *s, const char *name, const char *def)
{
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;

	if ((st = sq_stmt(q, SQL_DEF_PUT)) == NULL)
		return (-1);
	sq_bind_text(st, 1, name);
	sq_bind_text(st, 2, def);
	return (sq_step_done(q, st));
}

int
sq_op_limit_forget(struct store *s, const char *name)
{
	static const char *const sqls[] = { SQL_FORGET_BUCKETS,
	    SQL_FORGET_USAGE, SQL_FORGET_DEF };
	struct sqlite_store	*q = SQ(s);
	sqlite3_stmt		*st;
	size_t			 i;

	for (i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		if ((st = sq_stmt(q, sqls[i])) == NULL)
			return (-1);
		sq_bind_text(st, 1, name);
		if (sq_step_done(q, st) == -1)
			return (-1);
	}
	return (0);
}
