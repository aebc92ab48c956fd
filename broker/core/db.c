/*
 * db: one SQLite connection with our settings.  Pragmas are per connection
 * (LIBRARY-NOTES), so every open sets them; migrations run each in one
 * BEGIN IMMEDIATE transaction together with PRAGMA user_version, so a crash
 * mid-migration leaves the previous version intact.  Prepared statements are
 * cached per connection, keyed by the address of their SQL literal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

int
db_schema_version(void)
{
	return (db_migrations[db_migrations_count - 1].version);
}

static int
db_exec(struct db *db, const char *sql, char *err, size_t errlen)
{
	char	*msg = NULL;

	if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) == SQLITE_OK)
		return (0);
	snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db->sql));
	sqlite3_free(msg);
	return (-1);
}

static int
db_user_version(struct db *db, int *version)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st,
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
db_migrate_one(struct db *db, const struct migration *m, char *err,
    size_t errlen)
{
	char	 pragma[64], why[200];
	int	 current;

	if (db_exec(db, "BEGIN IMMEDIATE", why, sizeof(why)) == -1)
		goto bad;
	/* Re-read under the lock: another process may have migrated. */
	if (db_user_version(db, &current) == -1) {
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->sql));
		goto rollback;
	}
	if (current >= m->version)
		return (db_exec(db, "COMMIT", err, errlen));
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
	    m->version);
	if (db_exec(db, m->sql, why, sizeof(why)) == -1 ||
	    db_exec(db, pragma, why, sizeof(why)) == -1 ||
	    db_exec(db, "COMMIT", why, sizeof(why)) == -1)
		goto rollback;
	log_info("database migrated to schema %d (%s)", m->version, m->name);
	return (0);
 rollback:
	sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
 bad:
	snprintf(err, errlen, "migration %s failed: %s", m->name, why);
	return (-1);
}

static int
db_migrate(struct db *db, char *err, size_t errlen)
{
	int	 current, i;

	if (db_user_version(db, &current) == -1) {
		snprintf(err, errlen, "cannot read schema version: %s",
		    sqlite3_errmsg(db->sql));
		return (-1);
	}
	if (current > db_schema_version()) {
		snprintf(err, errlen, "database schema %d is newer than this "
		    "binary (%d): upgrade toolgate", current,
		    db_schema_version());
		return (-1);
	}
	for (i = 0; i < db_migrations_count; i++)
		if (db_migrations[i].version > current &&
		    db_migrate_one(db, &db_migrations[i], err, errlen) == -1)
			return (-1);
	return (0);
}

struct db *
db_open(const char *path, char *err, size_t errlen)
{
	struct db	*db;
	char		 why[256];

	if ((db = calloc(1, sizeof(*db))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db->sql ?
		    sqlite3_errmsg(db->sql) : "cannot open");
		goto bad;
	}
	sqlite3_extended_result_codes(db->sql, 1);
	sqlite3_busy_timeout(db->sql, DB_BUSY_TIMEOUT_MS);
	/* FULL: an answered decision survives power loss, not just a crash. */
	if (db_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA trusted_schema = OFF", why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto bad;
	}
	if (db_migrate(db, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto bad;
	}
	return (db);
 bad:
	db_close(db);
	return (NULL);
}

int
db_set_synchronous(struct db *db, int full)
{
	char	 why[128];

	return (db_exec(db, full ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", why, sizeof(why)));
}

void
db_close(struct db *db)
{
	int	 i;

	if (db == NULL)
		return;
	for (i = 0; i < db->n_stmt; i++)
		sqlite3_finalize(db->stmt[i]);
	sqlite3_close(db->sql);
	free(db);
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql)
{
	sqlite3_stmt	*st;
	int		 i;

	for (i = 0; i < db->n_stmt; i++)
		if (db->stmt_sql[i] == sql) {
			sqlite3_reset(db->stmt[i]);
			sqlite3_clear_bindings(db->stmt[i]);
			return (db->stmt[i]);
		}
	if (sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st, NULL) != SQLITE_OK) {
		log_warnx("%s: prepare: %s", __func__, sqlite3_errmsg(db->sql));
		return (NULL);
	}
	if (db->n_stmt == DB_STMT_CACHE) {
		/* Cache full: a bug in the caller set; keep working, slower. */
		log_warnx("%s: statement cache full", __func__);
		sqlite3_finalize(db->stmt[DB_STMT_CACHE - 1]);
		db->n_stmt--;
	}
	db->stmt_sql[db->n_stmt] = sql;
	db->stmt[db->n_stmt++] = st;
	return (st);
}

static int
db_simple(struct db *db, const char *sql)
{
	sqlite3_stmt	*st = db_stmt(db, sql);

	return (st == NULL ? -1 : db_step_done(db, st));
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int
db_begin(struct db *db)
{
	return (db_simple(db, SQL_BEGIN));
}

int
db_commit(struct db *db)
{
	if (db_simple(db, SQL_COMMIT) == 0)
		return (0);
	db_rollback(db);
	return (-1);
}

void
db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->sql))
		(void)db_simple(db, SQL_ROLLBACK);
}

int
db_step_done(struct db *db, sqlite3_stmt *st)
{
	int	 rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return (0);
	log_warnx("%s: %s", __func__, sqlite3_errmsg(db->sql));
	return (-1);
}

int
db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return (sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : -1);
	return (sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK ? 0 : -1);
}
