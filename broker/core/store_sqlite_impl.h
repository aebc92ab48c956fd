/*
 * store_sqlite_impl: what the two files of the SQLite engine share and
 * nobody else may use — the connection with its statement cache
 * (store_sqlite_db.c: open, pragmas, migrations, transactions) and the
 * embedded migrations.  The statements themselves are in store_sqlite.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "migration.h"
#include "store.h"

#define SQ_BUSY_TIMEOUT_MS	5000
/* Every statement the engine has (66 call sites) fits: the writer's one
 * connection now runs every kind of write, and a full cache re-prepares. */
#define SQ_STMT_CACHE		128

extern const struct migration db_migrations[];
extern const int db_migrations_count;
/* The engine's ops (store.h); extern for test-store's completeness check. */
extern const struct store_ops sqlite_ops;

struct sqlite_store {
	struct store	 base;
	sqlite3		*sql;
	const char	*stmt_sql[SQ_STMT_CACHE];
	sqlite3_stmt	*stmt[SQ_STMT_CACHE];
	int		 n_stmt;
	/* The audit chain head after this transaction's own last append:
	 * under BEGIN IMMEDIATE nobody else can move it, so a batch of
	 * decisions reads it from the table once, not once per record. */
	int		 head_valid;
	int64_t		 head_seq;
	char		 head_hash[65];
	/* Durability (sq_set_synchronous), and whether a commit under
	 * NORMAL wrote to the WAL since the last fsync of it (sq_flush). */
	int		 full;
	int		 unsynced;
	sqlite3_int64	 changes_at_begin;
};

#define SQ(s)	((struct sqlite_store *)(s))

/*
 * Open path (creating it mode 0600 with STORE_CREATE, else it must exist),
 * set the pragmas and migrate.  0, or -1 with a line in err.
 */
int	sq_open(struct sqlite_store *q, const char *path, unsigned flags,
	    char *err, size_t errlen);
void	sq_close(struct sqlite_store *q);
int	sq_set_synchronous(struct sqlite_store *q, int full);
int	sq_set_read_only(struct sqlite_store *q);
/* fsync the WAL when a commit under NORMAL left frames unsynced. */
int	sq_flush(struct sqlite_store *q);

/*
 * The cached prepared statement for sql, reset and with bindings cleared.
 * sql must be a string literal (the cache is keyed by its address).  NULL on
 * a prepare error (logged).
 */
sqlite3_stmt	*sq_stmt(struct sqlite_store *q, const char *sql);

/* BEGIN IMMEDIATE / COMMIT (rolled back on failure) / ROLLBACK. */
int	sq_begin(struct sqlite_store *q);
int	sq_commit(struct sqlite_store *q);
void	sq_rollback(struct sqlite_store *q);

/* Step st once expecting a row or the end (SQLITE_ROW, SQLITE_DONE);
 * anything else is logged with fn. */
int	sq_step(struct sqlite_store *q, sqlite3_stmt *st, const char *fn);

typedef int (*sq_parse_fn)(sqlite3_stmt *st, void *out);
/*
 * Step a bound lookup once: 1 when its row was parsed into out, 0 when
 * there was none, -1 on a storage error or a row that does not parse.
 */
int	sq_one(struct sqlite_store *q, sqlite3_stmt *st, sq_parse_fn parse,
	    void *out, const char *fn);

/* The ops of the limit usage tables (store_sqlite_limits.c; store.h). */
int	sq_op_limit_usage_get(struct store *s, const char *name,
	    const char *key, unsigned flags, struct limit_usage_row *u);
int	sq_op_limit_usage_put(struct store *s, struct limit_usage_row *u);
int	sq_op_limit_usage_walk(struct store *s, int64_t after,
	    const char *agent, int64_t limit, store_usage_cb cb, void *arg);
int	sq_op_limit_bucket_get(struct store *s, int64_t usage_id, int64_t at,
	    struct limit_bucket_row *b);
int	sq_op_limit_bucket_put(struct store *s, int64_t usage_id,
	    const struct limit_bucket_row *b);
int	sq_op_limit_buckets_walk(struct store *s, int64_t usage_id,
	    int64_t after, store_bucket_cb cb, void *arg);
int	sq_op_limit_buckets_drop(struct store *s, int64_t usage_id,
	    int64_t upto);
int	sq_op_limit_defs_walk(struct store *s, store_def_cb cb, void *arg);
int	sq_op_limit_def_put(struct store *s, const char *name,
	    const char *def);
int	sq_op_limit_forget(struct store *s, const char *name);

/* Run a statement that returns no rows to completion: 0 or -1 (logged). */
int	sq_step_done(struct sqlite_store *q, sqlite3_stmt *st);
/* Bind a text of unknown length (or NULL) at position i. */
int	sq_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Bind a time: 0 is SQL NULL. */
void	sq_bind_time(sqlite3_stmt *st, int i, int64_t t);
