/*
 * db: the SQLite connection — open with our pragmas (WAL, busy timeout,
 * foreign keys, synchronous), schema migrations from migrations/ (embedded
 * at build time), a per-connection cache of prepared statements, and
 * transactions.  One struct db per thread; never shared.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define DB_BUSY_TIMEOUT_MS	5000
#define DB_STMT_CACHE		64

struct migration {
	int		 version;
	const char	*name;
	const char	*sql;
};
extern const struct migration db_migrations[];
extern const int db_migrations_count;

struct db {
	sqlite3		*sql;
	const char	*stmt_sql[DB_STMT_CACHE];
	sqlite3_stmt	*stmt[DB_STMT_CACHE];
	int		 n_stmt;
};

/*
 * Open (creating if needed) the database at path, set the pragmas and apply
 * pending migrations in one BEGIN IMMEDIATE transaction each.  A database
 * whose user_version is newer than this binary is refused.  On failure
 * returns NULL with a one-line reason in err.
 */
struct db	*db_open(const char *path, char *err, size_t errlen);
void		 db_close(struct db *db);
/* synchronous = FULL (1: an answered decision survives power loss) or
 * NORMAL (0: it survives a process crash; WAL keeps it consistent).  0/-1. */
int		 db_set_synchronous(struct db *db, int full);

/*
 * The cached prepared statement for sql, reset and with bindings cleared.
 * sql must be a string literal (the cache is keyed by its address).  NULL on
 * a prepare error (logged).
 */
sqlite3_stmt	*db_stmt(struct db *db, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK: 0 or -1 (logged). */
int	db_begin(struct db *db);
int	db_commit(struct db *db);
void	db_rollback(struct db *db);

/* Run a statement that returns no rows to completion: 0 or -1 (logged). */
int	db_step_done(struct db *db, sqlite3_stmt *st);
/* Bind a text of unknown length (or NULL) at position i. */
int	db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Schema version of this binary (highest embedded migration). */
int	db_schema_version(void);
