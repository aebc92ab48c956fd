/*
 * store_pg_limits: the PostgreSQL engine's statements for the usage of
 * cumulative limits (migrations/postgresql/0004, store.h "Usage of
 * cumulative limits").  Like store_pg.c it stores what it is told —
 * usage.c does every sum and comparison, in C, in 128-bit integers —
 * and like every op that writes or locks, each op here takes the write
 * lock first (pg_tx_lock: the chain head's row, one lock order for all).
 *
 * Row locks per (limit, key): limit_usage_get with STORE_FOR_UPDATE
 * locks the usage row (SELECT ... FOR UPDATE) until the transaction
 * ends; when there is none yet it inserts an empty one (ON CONFLICT DO
 * NOTHING waits for a broker inserting the same key, and then finds
 * its row) and locks that, so two brokers deciding on one key take
 * turns whatever else they lock.  usage.c deletes a row left empty.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store_pg_impl.h"

#define PG_USAGE_CHUNK	1000	/* rows or buckets per round trip */

#define USAGE_COLUMNS	"id, n, whole, micro, oldest, newest"
static const struct pg_stmt SQL_USAGE_GET = {
    "SELECT " USAGE_COLUMNS " FROM limit_usage "
    "WHERE name = $1 AND key = $2", 2 };
static const struct pg_stmt SQL_USAGE_GET_LOCK = {
    "SELECT " USAGE_COLUMNS " FROM limit_usage "
    "WHERE name = $1 AND key = $2 FOR UPDATE", 2 };
/* An empty row to lock; nothing when another broker has one. */
static const struct pg_stmt SQL_USAGE_CLAIM = {
    "INSERT INTO limit_usage (name, key, agent, n, whole, micro, oldest, "
    "newest) VALUES ($1, $2, NULL, 0, 0, 0, 0, 0) "
    "ON CONFLICT (name, key) DO NOTHING", 2 };
static const struct pg_stmt SQL_USAGE_INSERT = {
    "INSERT INTO limit_usage (name, key, agent, n, whole, micro, oldest, "
    "newest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id", 8 };
static const struct pg_stmt SQL_USAGE_UPDATE = {
    "UPDATE limit_usage SET agent = $1, n = $2, whole = $3, micro = $4, "
    "oldest = $5, newest = $6 WHERE id = $7", 7 };
static const struct pg_stmt SQL_USAGE_DELETE = {
    "DELETE FROM limit_usage WHERE id = $1", 1 };
static const struct pg_stmt SQL_USAGE_WALK = {
    "SELECT id, name, key, agent, n, whole, micro, oldest, newest "
    "FROM limit_usage WHERE id > $1 AND ($2::text IS NULL OR agent = $2) "
    "ORDER BY id LIMIT $3", 3 };
static const struct pg_stmt SQL_BUCKET_GET = {
    "SELECT at, n, whole, micro FROM limit_buckets "
    "WHERE usage_id = $1 AND at = $2", 2 };
static const struct pg_stmt SQL_BUCKET_PUT = {
    "INSERT INTO limit_buckets (usage_id, at, n, whole, micro) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (usage_id, at) "
    "DO UPDATE SET n = excluded.n, whole = excluded.whole, "
    "micro = excluded.micro", 5 };
static const struct pg_stmt SQL_BUCKET_DELETE = {
    "DELETE FROM limit_buckets WHERE usage_id = $1 AND at = $2", 2 };
static const struct pg_stmt SQL_BUCKETS_WALK = {
    "SELECT at, n, whole, micro FROM limit_buckets "
    "WHERE usage_id = $1 AND at > $2 ORDER BY at LIMIT $3", 3 };
static const struct pg_stmt SQL_BUCKETS_DROP = {
    "DELETE FROM limit_buckets WHERE usage_id = $1 AND at <= $2", 2 };
static const struct pg_stmt SQL_DEFS_WALK = {
    "SELECT name, def FROM limit_defs ORDER BY name", 0 };
static const struct pg_stmt SQL_DEF_PUT = {
    "INSERT INTO limit_defs (name, def) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET def = excluded.def", 2 };
static const struct pg_stmt SQL_FORGET_BUCKETS = {
    "DELETE FROM limit_buckets WHERE usage_id IN "
    "(SELECT id FROM limit_usage WHERE name = $1)", 1 };
static const struct pg_stmt SQL_FORGET_USAGE = {
    "DELETE FROM limit_usage WHERE name = $1", 1 };
static const struct pg_stmt SQL_FORGET_DEF = {
    "DELETE FROM limit_defs WHERE name = $1", 1 };

/* Run st with (name, key): the result, or NULL (logged). */
static PGresult *
pg_usage_run(struct pg_store *p, const struct pg_stmt *st, const char *name,
    const char *key)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_text(&a, name);
	pg_text(&a, key);
	return (pg_run(p, st, &a, "limit_usage_get"));
}

/* Row 0 of a USAGE_COLUMNS result into *u: 1, or 0 when there is none. */
static int
pg_usage_row(const PGresult *r, struct limit_usage_row *u)
{
	if (PQntuples(r) != 1)
		return (0);
	u->id = pg_get_int(r, 0, 0);
	u->n = pg_get_int(r, 0, 1);
	u->whole = pg_get_int(r, 0, 2);
	u->micro = pg_get_int(r, 0, 3);
	u->oldest = pg_get_int(r, 0, 4);
	u->newest = pg_get_int(r, 0, 5);
	return (1);
}

int
pg_op_limit_usage_get(struct store *s, const char *name, const char *key,
    unsigned flags, struct limit_usage_row *u)
{
	struct pg_store	*p = PG(s);
	PGresult	*r;
	int		 found, lock = (flags & STORE_FOR_UPDATE) && p->in_tx;

	memset(u, 0, sizeof(*u));
	u->name = name;
	u->key = key;
	if (lock && pg_tx_lock(p) == -1)
		return (-1);
	if ((r = pg_usage_run(p, lock ? &SQL_USAGE_GET_LOCK : &SQL_USAGE_GET,
	    name, key)) == NULL)
		return (-1);
	found = pg_usage_row(r, u);
	PQclear(r);
	if (found || !lock)
		return (found);
	/* None: claim the key with an empty row, then lock what is there
	 * (ours, or the one a broker that raced us committed). */
	if ((r = pg_usage_run(p, &SQL_USAGE_CLAIM, name, key)) == NULL)
		return (-1);
	PQclear(r);
	if ((r = pg_usage_run(p, &SQL_USAGE_GET_LOCK, name, key)) == NULL)
		return (-1);
	found = pg_usage_row(r, u);
	PQclear(r);
	if (!found) {
		log_warnx("%s: the usage row of %s %s cannot be claimed",
		    __func__, name, key);
		return (-1);
	}
	return (1);
}

/* Run st with (id) or (id, at) for its count: 0 or -1. */
static int
pg_delete_by(struct pg_store *p, const struct pg_stmt *st, int64_t id,
    int64_t at, const char *fn)
{
	struct pg_params	 a;

	pg_params_init(&a);
	pg_int(&a, id);
	if (st->nparams == 2)
		pg_int(&a, at);
	return (pg_run_count(p, st, &a, fn) == -1 ? -1 : 0);
}

int
pg_op_limit_usage_put(struct store *s, struct limit_usage_row *u)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	PGresult		*r;
	int			 ok;

	if (pg_tx_lock(p) == -1)
		return (-1);
	if (u->n == 0) {
		if (u->id == 0)
			return (0);
		if (pg_delete_by(p, &SQL_BUCKETS_DROP, u->id, INT64_MAX,
		    __func__) == -1 || pg_delete_by(p, &SQL_USAGE_DELETE,
		    u->id, 0, __func__) == -1)
			return (-1);
		u->id = 0;
		return (0);
	}
	pg_params_init(&a);
	if (u->id == 0) {
		pg_text(&a, u->name);
		pg_text(&a, u->key);
	}
	pg_text(&a, u->agent);
	pg_int(&a, u->n);
	pg_int(&a, u->whole);
	pg_int(&a, u->micro);
	pg_int(&a, u->oldest);
	pg_int(&a, u->newest);
	if (u->id != 0) {
		pg_int(&a, u->id);
		return (pg_run_count(p, &SQL_USAGE_UPDATE, &a, __func__) == 1 ?
		    0 : -1);
	}
	if ((r = pg_run(p, &SQL_USAGE_INSERT, &a, __func__)) == NULL)
		return (-1);
	if ((ok = PQntuples(r) == 1))
		u->id = pg_get_int(r, 0, 0);
	PQclear(r);
	return (ok ? 0 : -1);
}

int
pg_op_limit_usage_walk(struct store *s, int64_t after, const char *agent,
    int64_t limit, store_usage_cb cb, void *arg)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	struct limit_usage_row	 u;
	PGresult		*r;
	int64_t			 left = limit > 0 ? limit : INT64_MAX, chunk;
	int			 i, n, stop = 0, rc = 0;

	do {
		chunk = left < PG_USAGE_CHUNK ? left : PG_USAGE_CHUNK;
		pg_params_init(&a);
		pg_int(&a, after);
		pg_text(&a, agent);
		pg_int(&a, chunk);
		if ((r = pg_run(p, &SQL_USAGE_WALK, &a, __func__)) == NULL)
			return (-1);
		n = PQntuples(r);
		for (i = 0; i < n && !stop; i++) {
			memset(&u, 0, sizeof(u));
			u.id = after = pg_get_int(r, i, 0);
			u.name = pg_get(r, i, 1);
			u.key = pg_get(r, i, 2);
			u.agent = pg_get(r, i, 3);
			u.n = pg_get_int(r, i, 4);
			u.whole = pg_get_int(r, i, 5);
			u.micro = pg_get_int(r, i, 6);
			u.oldest = pg_get_int(r, i, 7);
			u.newest = pg_get_int(r, i, 8);
			if (u.name == NULL || u.key == NULL) {
				log_warnx("%s: usage row %lld is malformed",
				    __func__, (long long)u.id);
				rc = -1;
				break;
			}
			stop = cb(&u, arg);
		}
		PQclear(r);
		left -= n;
	} while (rc == 0 && !stop && n == chunk && left > 0);
	return (rc);
}

static void
pg_bucket_row(const PGresult *r, int i, struct limit_bucket_row *b)
{
	b->at = pg_get_int(r, i, 0);
	b->n = pg_get_int(r, i, 1);
	b->whole = pg_get_int(r, i, 2);
	b->micro = pg_get_int(r, i, 3);
}

int
pg_op_limit_bucket_get(struct store *s, int64_t usage_id, int64_t at,
    struct limit_bucket_row *b)
{
	struct pg_params	 a;
	PGresult		*r;
	int			 found;

	memset(b, 0, sizeof(*b));
	pg_params_init(&a);
	pg_int(&a, usage_id);
	pg_int(&a, at);
	if ((r = pg_run(PG(s), &SQL_BUCKET_GET, &a, __func__)) == NULL)
		return (-1);
	if ((found = PQntuples(r) == 1))
		pg_bucket_row(r, 0, b);
	PQclear(r);
	return (found);
}

int
pg_op_limit_bucket_put(struct store *s, int64_t usage_id,
    const struct limit_bucket_row *b)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	if (pg_tx_lock(p) == -1)
		return (-1);
	if (b->n == 0)
		return (pg_delete_by(p, &SQL_BUCKET_DELETE, usage_id, b->at,
		    __func__));
	pg_params_init(&a);
	pg_int(&a, usage_id);
	pg_int(&a, b->at);
	pg_int(&a, b->n);
	pg_int(&a, b->whole);
	pg_int(&a, b->micro);
	return (pg_run_count(p, &SQL_BUCKET_PUT, &a, __func__) == 1 ? 0 : -1);
}

/* In chunks: a long window's buckets are never all held at once. */
int
pg_op_limit_buckets_walk(struct store *s, int64_t usage_id, int64_t after,
    store_bucket_cb cb, void *arg)
{
	struct pg_params	 a;
	struct limit_bucket_row	 b;
	PGresult		*r;
	int			 i, n, stop = 0;

	do {
		pg_params_init(&a);
		pg_int(&a, usage_id);
		pg_int(&a, after);
		pg_int(&a, PG_USAGE_CHUNK);
		if ((r = pg_run(PG(s), &SQL_BUCKETS_WALK, &a, __func__)) ==
		    NULL)
			return (-1);
		n = PQntuples(r);
		for (i = 0; i < n && !stop; i++) {
			pg_bucket_row(r, i, &b);
			after = b.at;
			stop = cb(&b, arg);
		}
		PQclear(r);
	} while (!stop && n == PG_USAGE_CHUNK);
	return (0);
}

int
pg_op_limit_buckets_drop(struct store *s, int64_t usage_id, int64_t upto)
{
	struct pg_store	*p = PG(s);

	if (pg_tx_lock(p) == -1)
		return (-1);
	return (pg_delete_by(p, &SQL_BUCKETS_DROP, usage_id, upto, __func__));
}

int
pg_op_limit_defs_walk(struct store *s, store_def_cb cb, void *arg)
{
	struct pg_params	 a;
	PGresult		*r;
	int			 i, rc = 0;

	pg_params_init(&a);
	if ((r = pg_run(PG(s), &SQL_DEFS_WALK, &a, __func__)) == NULL)
		return (-1);
	for (i = 0; i < PQntuples(r); i++) {
		if (pg_get(r, i, 0) == NULL || pg_get(r, i, 1) == NULL) {
			rc = -1;
			break;
		}
		if (cb(pg_get(r, i, 0), pg_get(r, i, 1), arg) != 0)
			break;
	}
	PQclear(r);
	return (rc);
}

int
pg_op_limit_def_put(struct store *s, const char *name, const char *def)
{
	struct pg_store		*p = PG(s);
	struct pg_params	 a;

	if (pg_tx_lock(p) == -1)
		return (-1);
	pg_params_init(&a);
	pg_text(&a, name);
	pg_text(&a, def);
	return (pg_run_count(p, &SQL_DEF_PUT, &a, __func__) == 1 ? 0 : -1);
}

int
pg_op_limit_forget(struct store *s, const char *name)
{
	static const struct pg_stmt *const sqls[] = { &SQL_FORGET_BUCKETS,
	    &SQL_FORGET_USAGE, &SQL_FORGET_DEF };
	struct pg_store		*p = PG(s);
	struct pg_params	 a;
	size_t			 i;

	if (pg_tx_lock(p) == -1)
		return (-1);
	for (i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		pg_params_init(&a);
		pg_text(&a, name);
		if (pg_run_count(p, sqls[i], &a, __func__) == -1)
			return (-1);
	}
	return (0);
}
