/*
 * store_sqlite_db: one SQLite connection with our settings — the SQLite
 * engine's connection half (the statements are in store_sqlite.c).
 * Pragmas are per connection (LIBRARY-NOTES), so every open sets them;
 * migrations run each in one BEGIN IMMEDIATE transaction together with
 * PRAGMA user_version, so a crash mid-migration leaves the previous version
 * intact.  A new database file is created mode 0600 before SQLite sees it:
 * SQLite gives its -wal and -shm files the main file's mode, whatever the
 * umask.  Prepared statements are cached per connection, keyed by the
 * address of their SQL literal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_sqlite_impl.h"

int
store_schema_version(void)
{
	return (db_migrations[db_migrations_count - 1].version);
}

static int
sq_exec(struct sqlite_store *q, const char *sql, char *err, size_t errlen)
{
	char	*msg = NULL;

	if (sqlite3_exec(q->sql, sql, NULL, NULL, &msg) == SQLITE_OK)
		return (0);
	snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(q->sql));
	sqlite3_free(msg);
	return (-1);
}

static int
sq_user_version(struct sqlite_store *q, int *version)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(q->sql, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK)
		return (-1);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return (rc);
}

static int
sq_migrate_one(struct sqlite_store *q, const struct migration *m, char *err,
    size_t errlen)
{
	char	 pragma[64], why[200];
	int	 current;

	if (sq_exec(q, "BEGIN IMMEDIATE", why, sizeof(why)) == -1)
		goto bad;
	/* Re-read under the lock: another process may have migrated. */
	if (sq_user_version(q, &current) == -1) {
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(q->sql));
		goto rollback;
	}
	if (current >= m->version)
		return (sq_exec(q, "COMMIT", err, errlen));
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
	    m->version);
	if (sq_exec(q, m->sql, why, sizeof(why)) == -1 ||
	    sq_exec(q, pragma, why, sizeof(why)) == -1 ||
	    sq_exec(q, "COMMIT", why, sizeof(why)) == -1)
		goto rollback;
	log_info("database migrated to schema %d (%s)", m->version, m->name);
	return (0);
 rollback:
	sqlite3_exec(q->sql, "ROLLBACK", NULL, NULL, NULL);
 bad:
	snprintf(err, errlen, "migration %s failed: %s", m->name, why);
	return (-1);
}

static int
sq_migrate(struct sqlite_store *q, char *err, size_t errlen)
{
	int	 current, i;

	if (sq_user_version(q, &current) == -1) {
		snprintf(err, errlen, "cannot read schema version: %s",
		    sqlite3_errmsg(q->sql));
		return (-1);
	}
	if (current > store_schema_version()) {
		snprintf(err, errlen, "database schema %d is newer than this "
		    "binary (%d): upgrade toolgate", current,
		    store_schema_version());
		return (-1);
	}
	for (i = 0; i < db_migrations_count; i++)
		if (db_migrations[i].version > current &&
		    sq_migrate_one(q, &db_migrations[i], err, errlen) == -1)
			return (-1);
	return (0);
}

/*
 * The file must exist (no STORE_CREATE: a typo must not silently make an
 * empty database), or is created here, private, if it does not.
 */
static int
sq_prepare_file(const char *path, unsigned flags, char *err, size_t errlen)
{
	int	 fd;

	if (strcmp(path, ":memory:") == 0)
		return (0);
	if (!(flags & STORE_CREATE)) {
		if (access(path, F_OK) == 0)
			return (0);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd != -1)
		close(fd);
	else if (errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	return (0);
}

int
sq_open(struct sqlite_store *q, const char *path, unsigned flags, char *err,
    size_t errlen)
{
	char	 why[256];

	if (sq_prepare_file(path, flags, err, errlen) == -1)
		return (-1);
	if (sqlite3_open_v2(path, &q->sql, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, q->sql ?
		    sqlite3_errmsg(q->sql) : "cannot open");
		return (-1);
	}
	sqlite3_extended_result_codes(q->sql, 1);
	sqlite3_busy_timeout(q->sql, SQ_BUSY_TIMEOUT_MS);
	/* FULL: an answered decision survives power loss, not just a crash. */
	if (sq_exec(q, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA trusted_schema = OFF", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return (-1);
	}
	q->full = 1;
	if (sq_migrate(q, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return (-1);
	}
	return (0);
}

int
sq_set_synchronous(struct sqlite_store *q, int full)
{
	char	 why[128];

	/* The writer switches around each lazy commit: a PRAGMA only when
	 * it changes something. */
	if (q->full == full)
		return (0);
	if (sq_exec(q, full ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", why, sizeof(why)) == -1)
		return (-1);
	q->full = full;
	return (0);
}

int
sq_set_read_only(struct sqlite_store *q)
{
	char	 why[128];

	return (sq_exec(q, "PRAGMA query_only = ON", why, sizeof(why)));
}

int
sq_flush(struct sqlite_store *q)
{
	sqlite3_file	*wal = NULL;

	if (!q->unsynced)
		return (0);
	/* The WAL's own file handle: an fsync of it covers every frame
	 * written so far, whichever commit wrote it. */
	if (sqlite3_file_control(q->sql, "main", SQLITE_FCNTL_JOURNAL_POINTER,
	    &wal) != SQLITE_OK || wal == NULL || wal->pMethods == NULL ||
	    wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK)
		return (-1);
	q->unsynced = 0;
	return (0);
}

void
sq_close(struct sqlite_store *q)
{
	int	 i;

	for (i = 0; i < q->n_stmt; i++)
		sqlite3_finalize(q->stmt[i]);
	q->n_stmt = 0;
	sqlite3_close(q->sql);
	q->sql = NULL;
}

sqlite3_stmt *
sq_stmt(struct sqlite_store *q, const char *sql)
{
	sqlite3_stmt	*st;
	int		 i;

	for (i = 0; i < q->n_stmt; i++)
		if (q->stmt_sql[i] == sql) {
			sqlite3_reset(q->stmt[i]);
			sqlite3_clear_bindings(q->stmt[i]);
			return (q->stmt[i]);
		}
	if (sqlite3_prepare_v3(q->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st, NULL) != SQLITE_OK) {
		log_warnx("%s: prepare: %s", __func__, sqlite3_errmsg(q->sql));
		return (NULL);
	}
	if (q->n_stmt == SQ_STMT_CACHE) {
		/* Cache full: a bug in the caller set; keep working, slower. */
		log_warnx("%s: statement cache full", __func__);
		sqlite3_finalize(q->stmt[SQ_STMT_CACHE - 1]);
		q->n_stmt--;
	}
	q->stmt_sql[q->n_stmt] = sql;
	q->stmt[q->n_stmt++] = st;
	return (st);
}

static int
sq_simple(struct sqlite_store *q, const char *sql)
{
	sqlite3_stmt	*st = sq_stmt(q, sql);

	return (st == NULL ? -1 : sq_step_done(q, st));
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int
sq_begin(struct sqlite_store *q)
{
	q->head_valid = 0;
	q->changes_at_begin = sqlite3_total_changes64(q->sql);
	return (sq_simple(q, SQL_BEGIN));
}

int
sq_commit(struct sqlite_store *q)
{
	q->head_valid = 0;
	if (sq_simple(q, SQL_COMMIT) == 0) {
		/* A commit that changed rows wrote WAL frames: under FULL it
		 * fsynced them and every older one, under NORMAL it did not.
		 * (No savepoints or temporary tables here, so changed rows
		 * mean written frames.) */
		if (sqlite3_total_changes64(q->sql) != q->changes_at_begin)
			q->unsynced = !q->full;
		return (0);
	}
	sq_rollback(q);
	return (-1);
}

void
sq_rollback(struct sqlite_store *q)
{
	q->head_valid = 0;
	if (!sqlite3_get_autocommit(q->sql))
		(void)sq_simple(q, SQL_ROLLBACK);
}

int
sq_step_done(struct sqlite_store *q, sqlite3_stmt *st)
{
	int	 rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return (0);
	log_warnx("%s: %s", __func__, sqlite3_errmsg(q->sql));
	return (-1);
}

int
sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return (sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : -1);
	return (sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK ? 0 : -1);
}

void
sq_bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t == 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, t);
}
