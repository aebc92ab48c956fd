/*
 * store_pg_db: one PostgreSQL connection with our settings — the
 * PostgreSQL engine's connection half (the statements are in store_pg.c):
 * connecting (the URI's password never reaches a message: every message
 * names the database as store_display shows it), the session settings,
 * migrations, prepared statements, transactions, reconnection with
 * backoff, and LISTEN for the change feed.
 *
 * Migrations run each in one transaction holding a transaction-scoped
 * advisory lock, re-reading schema_version under it, so brokers starting
 * together migrate once and a crash mid-migration leaves the previous
 * version intact (PostgreSQL's DDL is transactional).
 *
 * Transactions are READ COMMITTED whatever the server's default: every
 * statement sees what committed before it began, which is what the
 * chain-head lock (store_pg.c) relies on — after waiting for the lock, the
 * next statement sees the holder's commit.
 *
 * A lost connection is dropped at once; outside a transaction the next
 * call reconnects, first at once, then no more often than every backoff
 * (doubling up to PG_BACKOFF_MAX_MS), so a database that is down costs a
 * failed connect at most that often, and every call in between fails
 * fast (the daemon answers 503).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_pg_impl.h"

#define PG_BACKOFF_MIN_MS	100
#define PG_BACKOFF_MAX_MS	2000
#define PG_MIN_SERVER		110000	/* identity columns, EXECUTE FUNCTION */
/* pg_advisory_xact_lock key of migrations: "toolgate" in ASCII. */
#define PG_MIGRATE_LOCK		"8389754676633367653"

/*
 * Settings of every session.  A transaction that sits idle is one whose
 * broker hung or died without closing the socket (a host gone): the
 * server ends it, releasing its locks, before the others' lock_timeout,
 * so they wait rather than fail.  statement_timeout bounds everything.
 */
static const char PG_SESSION[] =
    "SET idle_in_transaction_session_timeout = '15s'; "
    "SET lock_timeout = '20s'; SET statement_timeout = '30s'";

static int64_t
pg_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* libpq's message on one line: its line breaks and tabs become one
 * space each run, without a trailing one. */
static void
pg_oneline(const char *msg, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	int	 space = 0;

	if (msg == NULL || *msg == '\0')
		msg = "unknown error";
	for (i = 0; msg[i] != '\0' && o + 1 < outlen; i++) {
		if (msg[i] == '\n' || msg[i] == '\r' || msg[i] == '\t' ||
		    msg[i] == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < outlen)
			out[o++] = ' ';
		space = 0;
		out[o++] = msg[i];
	}
	out[o] = '\0';
}

/* --- the URI as it may be shown ------------------------------------- */

/*
 * "postgresql://USER@HOST:PORT/DB" from what libpq parses out of uri;
 * the password and every other option are left out.  -1 when libpq
 * cannot parse it (its message is not shown: it may quote the password).
 */
static int
pg_display(const char *uri, char *out, size_t outlen)
{
	PQconninfoOption	*opts, *o;
	const char		*user = NULL, *host = NULL, *port = NULL;
	const char		*db = NULL;
	char			*msg = NULL;

	if ((opts = PQconninfoParse(uri, &msg)) == NULL) {
		PQfreemem(msg);
		snprintf(out, outlen, "postgresql://(a URI libpq cannot read)");
		return (-1);
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	/* A socket directory is a query parameter, not an authority. */
	snprintf(out, outlen, "postgresql://%s%s%s%s%s/%s%s%s",
	    user ? user : "", user ? "@" : "",
	    host && host[0] != '/' ? host : "", port ? ":" : "",
	    port ? port : "", db ? db : "", host && host[0] == '/' ?
	    "?host=" : "", host && host[0] == '/' ? host : "");
	PQconninfoFree(opts);
	return (0);
}

void
store_pg_display(const char *uri, char *out, size_t outlen)
{
	(void)pg_display(uri, out, outlen);
}

/* Blank every copy of the URI's password out of a message of libpq's. */
static void
pg_scrub(const char *uri, char *msg)
{
	PQconninfoOption	*opts, *o;
	char			*at;
	size_t			 n;

	if ((opts = PQconninfoParse(uri, NULL)) == NULL)
		return;
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL &&
		    (n = strlen(o->val)) > 0)
			while ((at = strstr(msg, o->val)) != NULL)
				memset(at, '*', n);
	PQconninfoFree(opts);
}

/* --- connecting ---------------------------------------------------- */

static int	pg_exec(PGconn *c, const char *sql, ExecStatusType want,
		    PGresult **out, char *why, size_t whylen);

/*
 * The connection parameters: defaults first (the URI may override them),
 * then the URI, then what toolgate needs whatever the URI says.
 */
static const char *const pg_keys[] = { "connect_timeout", "application_name",
    "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "dbname", "client_encoding",
    NULL };
#define PG_KEY_DBNAME	7

static void
pg_values(const char *uri, const char *vals[])
{
	static const char *const defaults[] = { "5", "toolgated", "1", "10",
	    "5", "3", "20000", NULL, "UTF8", NULL };

	memcpy(vals, defaults, sizeof(defaults));
	vals[PG_KEY_DBNAME] = uri;
}

int
store_pg_ping(const char *uri, char *why, size_t whylen)
{
	const char	*vals[sizeof(pg_keys) / sizeof(pg_keys[0])];
	char		*msg = NULL;
	PQconninfoOption *opts;

	if ((opts = PQconninfoParse(uri, &msg)) == NULL) {
		PQfreemem(msg);
		return (-1);
	}
	PQconninfoFree(opts);
	pg_values(uri, vals);
	switch (PQpingParams(pg_keys, vals, 1)) {
	case PQPING_OK:
		return (1);
	case PQPING_REJECT:
		snprintf(why, whylen, "the server is not accepting connections "
		    "(starting up, shutting down or in recovery)");
		return (0);
	case PQPING_NO_RESPONSE:
		snprintf(why, whylen, "the server does not answer");
		return (0);
	default:
		return (-1);
	}
}

/* A new connection to p->uri with the session settings, into p->conn.
 * 0, or -1 with why. */
static int
pg_connect(struct pg_store *p, char *why, size_t whylen)
{
	const char	*vals[sizeof(pg_keys) / sizeof(pg_keys[0])];
	const char	*enc;
	PGresult	*r;
	PGconn		*c;

	pg_values(p->uri, vals);
	c = PQconnectdbParams(pg_keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		pg_oneline(c ? PQerrorMessage(c) : "out of memory", why,
		    whylen);
		pg_scrub(p->uri, why);
		PQfinish(c);
		return (-1);
	}
	/* The exact bytes of records and policies go in and come out as
	 * they are only where the server stores what it is given. */
	enc = PQparameterStatus(c, "server_encoding");
	if (enc == NULL || (strcmp(enc, "UTF8") != 0 &&
	    strcmp(enc, "SQL_ASCII") != 0)) {
		snprintf(why, whylen, "the database's encoding is %s, not "
		    "UTF8 (create it with: createdb -E UTF8 -T template0)",
		    enc ? enc : "unknown");
		PQfinish(c);
		return (-1);
	}
	if (PQserverVersion(c) < PG_MIN_SERVER) {
		snprintf(why, whylen, "PostgreSQL %d is too old: toolgate "
		    "needs 11 or newer", PQserverVersion(c) / 10000);
		PQfinish(c);
		return (-1);
	}
	r = PQexec(c, PG_SESSION);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_oneline(PQerrorMessage(c), why, whylen);
		PQclear(r);
		PQfinish(c);
		return (-1);
	}
	PQclear(r);
	p->conn = c;
	p->n_prepared = 0;
	p->listening = 0;
	if (pg_set_durability(p, p->full) == -1 ||
	    (p->read_only && pg_set_read_only(p) == -1)) {
		snprintf(why, whylen, "cannot set synchronous_commit or "
		    "default_transaction_read_only");
		PQfinish(c);
		p->conn = NULL;
		return (-1);
	}
	return (0);
}

/* Run sql (no parameters) for its status: 0, or -1 with why. */
static int
pg_exec(PGconn *c, const char *sql, ExecStatusType want, PGresult **out,
    char *why, size_t whylen)
{
	PGresult	*r = PQexec(c, sql);

	if (PQresultStatus(r) == want) {
		if (out != NULL)
			*out = r;
		else
			PQclear(r);
		return (0);
	}
	pg_oneline(r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) :
	    NULL, why, whylen);
	if (r == NULL || PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ==
	    NULL)
		pg_oneline(PQerrorMessage(c), why, whylen);
	PQclear(r);
	return (-1);
}

/*
 * The schema version under the migration lock: -1 when there is no
 * schema_version table (or the read failed: why says so).
 */
static int
pg_schema_read(PGconn *c, int *version, char *why, size_t whylen)
{
	PGresult	*r;
	int		 rc = -1;

	if (pg_exec(c, "SELECT to_regclass('schema_version') IS NOT NULL",
	    PGRES_TUPLES_OK, &r, why, whylen) == -1)
		return (-1);
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		PQclear(r);
		*version = -1;
		return (0);
	}
	PQclear(r);
	if (pg_exec(c, "SELECT version FROM schema_version", PGRES_TUPLES_OK,
	    &r, why, whylen) == -1)
		return (-1);
	if (PQntuples(r) == 1) {
		*version = atoi(PQgetvalue(r, 0, 0));
		rc = 0;
	} else
		snprintf(why, whylen, "schema_version has %d rows, not 1",
		    PQntuples(r));
	PQclear(r);
	return (rc);
}

/*
 * One step: lock, re-read the version, apply the next migration (or
 * create schema_version first), commit.  1 when a step was made, 0 when
 * the schema is current, -1 with why.
 */
static int
pg_migrate_step(struct pg_store *p, unsigned flags, char *why, size_t whylen)
{
	const struct migration	*m;
	PGconn			*c = p->conn;
	char			 sql[96];
	int			 current, i;

	if (pg_exec(c, "BEGIN ISOLATION LEVEL READ COMMITTED",
	    PGRES_COMMAND_OK, NULL, why, whylen) == -1 ||
	    pg_exec(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")",
	    PGRES_TUPLES_OK, NULL, why, whylen) == -1 ||
	    pg_schema_read(c, &current, why, whylen) == -1)
		goto bad;
	if (current == -1) {
		if (!(flags & STORE_CREATE)) {
			snprintf(why, whylen, "this database has no toolgate "
			    "schema: start toolgated on it first, or run "
			    "toolgatectl --db URI policy apply FILE");
			goto bad;
		}
		if (pg_exec(c, "CREATE TABLE schema_version (version integer "
		    "NOT NULL); INSERT INTO schema_version VALUES (0)",
		    PGRES_COMMAND_OK, NULL, why, whylen) == -1)
			goto bad;
		current = 0;
	}
	if (current > pg_migrations[pg_migrations_count - 1].version) {
		snprintf(why, whylen, "database schema %d is newer than this "
		    "binary (%d): upgrade toolgate", current,
		    pg_migrations[pg_migrations_count - 1].version);
		goto bad;
	}
	if (current == pg_migrations[pg_migrations_count - 1].version)
		return (pg_exec(c, "COMMIT", PGRES_COMMAND_OK, NULL, why,
		    whylen) == -1 ? -1 : 0);
	/* The first one above current: numbers rise but may skip. */
	for (i = 0; pg_migrations[i].version <= current; i++)
		continue;
	m = &pg_migrations[i];
	snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d",
	    m->version);
	if (pg_exec(c, m->sql, PGRES_COMMAND_OK, NULL, why, whylen) == -1 ||
	    pg_exec(c, sql, PGRES_COMMAND_OK, NULL, why, whylen) == -1 ||
	    pg_exec(c, "COMMIT", PGRES_COMMAND_OK, NULL, why, whylen) == -1)
		goto bad;
	log_info("database migrated to schema %d (postgresql/%s)",
	    m->version, m->name);
	return (1);
 bad:
	PQclear(PQexec(c, "ROLLBACK"));
	return (-1);
}

static int
pg_migrate(struct pg_store *p, unsigned flags, char *why, size_t whylen)
{
	int	 rc;

	while ((rc = pg_migrate_step(p, flags, why, whylen)) == 1)
		;
	return (rc);
}

int
pg_open(struct pg_store *p, unsigned flags, char *err, size_t errlen)
{
	char	 why[512];

	p->full = 1;
	p->backoff = PG_BACKOFF_MIN_MS;
	if (pg_display(p->uri, p->name, sizeof(p->name)) == -1) {
		snprintf(err, errlen, "--db: libpq cannot read this "
		    "PostgreSQL URI (not shown: it may hold a password); see "
		    "libpq's \"Connection URIs\"");
		return (-1);
	}
	if (pg_connect(p, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", p->name, why);
		return (-1);
	}
	if (pg_migrate(p, flags, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s%s", p->name, why,
		    strstr(why, "permission denied") ? " (the user must own "
		    "the database: createdb -O USER)" : "");
		return (-1);
	}
	return (0);
}

void
pg_close(struct pg_store *p)
{
	PQfinish(p->conn);
	p->conn = NULL;
}

int
pg_set_read_only(struct pg_store *p)
{
	char	 why[256];

	p->read_only = 1;
	if (p->conn == NULL)
		return (0);	/* applied when it connects */
	return (pg_exec(p->conn, "SET default_transaction_read_only = on",
	    PGRES_COMMAND_OK, NULL, why, sizeof(why)));
}

int
pg_set_durability(struct pg_store *p, int full)
{
	PGresult	*r;
	char		 why[256];
	int		 rc = 0;

	p->full = full;
	if (p->conn == NULL)
		return (0);	/* applied when it connects */
	/* Crash-safe only: the server may lose the newest commits if it
	 * crashes, never corrupt anything (SQLite's NORMAL). */
	if (!full)
		return (pg_exec(p->conn, "SET synchronous_commit = off",
		    PGRES_COMMAND_OK, NULL, why, sizeof(why)));
	/* Full: at least "on"; a stronger setting of the server's (on with
	 * synchronous standbys, remote_apply, ...) is kept as it is. */
	if (pg_exec(p->conn, "SHOW synchronous_commit", PGRES_TUPLES_OK, &r,
	    why, sizeof(why)) == -1)
		return (-1);
	if (strcmp(PQgetvalue(r, 0, 0), "off") == 0)
		rc = pg_exec(p->conn, "SET synchronous_commit = on",
		    PGRES_COMMAND_OK, NULL, why, sizeof(why));
	PQclear(r);
	return (rc);
}

/* --- losing and regaining the connection ---------------------------- */

static void
pg_lost(struct pg_store *p, const char *why)
{
	char	 msg[512];

	pg_oneline(why, msg, sizeof(msg));
	if (!p->down)
		log_warnx("database %s: connection lost: %s", p->name, msg);
	p->down = 1;
	PQfinish(p->conn);
	p->conn = NULL;
	p->n_prepared = 0;
	p->listening = 0;
	/* The first attempt at once: a restart is often already over. */
	p->retry_at = 0;
	p->backoff = PG_BACKOFF_MIN_MS;
}

/* The schema may have moved on while we were away: never run old
 * statements against a newer schema. */
static int
pg_still_current(struct pg_store *p, char *why, size_t whylen)
{
	int	 v;

	if (pg_schema_read(p->conn, &v, why, whylen) == -1)
		return (-1);
	if (v != pg_migrations[pg_migrations_count - 1].version) {
		snprintf(why, whylen, "database schema is %d, this binary's "
		    "%d", v, pg_migrations[pg_migrations_count - 1].version);
		return (-1);
	}
	return (0);
}

int
pg_ready(struct pg_store *p)
{
	char	 why[512];
	int64_t	 now;

	if (p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK)
		return (0);
	if (p->conn != NULL)
		pg_lost(p, PQerrorMessage(p->conn));
	if (p->in_tx)
		return (-1);	/* the transaction went with the connection */
	now = pg_now_ms();
	if (now < p->retry_at)
		return (-1);
	if (pg_connect(p, why, sizeof(why)) == -1 ||
	    pg_still_current(p, why, sizeof(why)) == -1) {
		PQfinish(p->conn);
		p->conn = NULL;
		log_debug("database %s: reconnecting failed: %s", p->name, why);
		p->retry_at = now + p->backoff;
		p->backoff = p->backoff * 2 > PG_BACKOFF_MAX_MS ?
		    PG_BACKOFF_MAX_MS : p->backoff * 2;
		return (-1);
	}
	log_info("database %s: connection restored", p->name);
	p->down = 0;
	p->backoff = PG_BACKOFF_MIN_MS;
	return (0);
}

/*
 * A failed statement: log it (the server's primary message and its
 * SQLSTATE, never the parameters), or drop a connection that is gone: 1
 * then, else 0.  An error without a SQLSTATE is libpq's own (the socket
 * closed, say): the connection cannot be trusted either.
 */
static int
pg_failed(struct pg_store *p, const PGresult *r, const char *fn)
{
	const char	*state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) :
			    NULL;
	const char	*msg = r ? PQresultErrorField(r,
			    PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char		 line[512];

	/* Class 08: connection exceptions; 57P0x: the server shut down. */
	if (PQstatus(p->conn) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
		pg_lost(p, msg ? msg : PQerrorMessage(p->conn));
		return (1);
	}
	pg_oneline(msg, line, sizeof(line));
	log_warnx("%s: %s (SQLSTATE %s)", fn, line, state);
	return (0);
}

/* --- statements ---------------------------------------------------- */

void
pg_params_init(struct pg_params *a)
{
	a->n = 0;
}

static int
pg_param_slot(struct pg_params *a)
{
	if (a->n == PG_MAX_PARAMS)
		fatalx("pg_params: more than %d parameters", PG_MAX_PARAMS);
	a->len[a->n] = 0;
	a->fmt[a->n] = 0;
	return (a->n++);
}

void
pg_text(struct pg_params *a, const char *s)
{
	a->v[pg_param_slot(a)] = s;
}

void
pg_bytes(struct pg_params *a, const char *s, size_t len)
{
	int	 i = pg_param_slot(a);

	/* Binary format of text is its bytes: the length is what counts. */
	a->v[i] = s;
	a->len[i] = (int)len;
	a->fmt[i] = 1;
}

void
pg_int(struct pg_params *a, int64_t v)
{
	int	 i = pg_param_slot(a);

	snprintf(a->num[i], sizeof(a->num[i]), "%lld", (long long)v);
	a->v[i] = a->num[i];
}

void
pg_time(struct pg_params *a, int64_t t)
{
	if (t == 0)
		pg_text(a, NULL);
	else
		pg_int(a, t);
}

const char *
pg_get(const PGresult *r, int row, int col)
{
	return (PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col));
}

int64_t
pg_get_int(const PGresult *r, int row, int col)
{
	return (PQgetisnull(r, row, col) ? 0 :
	    (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10));
}

/*
 * The name st is prepared under on this connection (preparing it now);
 * "" when the cache is full (run it unprepared: still with bound
 * parameters, only slower); NULL on failure.
 */
static const char *
pg_prepared(struct pg_store *p, const struct pg_stmt *st, char name[16],
    const char *fn)
{
	PGresult	*r;
	int		 i;

	for (i = 0; i < p->n_prepared; i++)
		if (p->prepared[i] == st) {
			snprintf(name, 16, "tg%d", i);
			return (name);
		}
	if (p->n_prepared == PG_STMT_CACHE) {
		log_warnx("%s: statement cache full", __func__);
		return ("");
	}
	snprintf(name, 16, "tg%d", p->n_prepared);
	r = PQprepare(p->conn, name, st->sql, st->nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_failed(p, r, fn);
		PQclear(r);
		return (NULL);
	}
	PQclear(r);
	p->prepared[p->n_prepared++] = st;
	return (name);
}

PGresult *
pg_run(struct pg_store *p, const struct pg_stmt *st,
    const struct pg_params *a, const char *fn)
{
	PGresult	*r;
	const char	*name;
	char		 buf[16];
	int		 tries, lost;

	if (a->n != st->nparams)
		fatalx("%s: %d parameters bound, %d expected", fn, a->n,
		    st->nparams);
	for (tries = 0; tries < 2; tries++) {
		if (pg_ready(p) == -1)
			break;
		if ((name = pg_prepared(p, st, buf, fn)) == NULL) {
			if (p->conn == NULL && !p->in_tx)
				continue;	/* lost: as below */
			break;
		}
		if (name[0] != '\0')
			r = PQexecPrepared(p->conn, name, a->n, a->v, a->len,
			    a->fmt, 0);
		else
			r = PQexecParams(p->conn, st->sql, a->n, NULL, a->v,
			    a->len, a->fmt, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK ||
		    PQresultStatus(r) == PGRES_COMMAND_OK)
			return (r);
		lost = pg_failed(p, r, fn);
		PQclear(r);
		/* A connection that died while idle (the server restarted)
		 * is found by its first statement: outside a transaction
		 * that one runs again on a new connection, once. */
		if (!lost || p->in_tx)
			break;
	}
	return (NULL);
}

int64_t
pg_run_count(struct pg_store *p, const struct pg_stmt *st,
    const struct pg_params *a, const char *fn)
{
	PGresult	*r = pg_run(p, st, a, fn);
	int64_t		 n;

	if (r == NULL)
		return (-1);
	n = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) :
	    strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return (n);
}

/* --- transactions -------------------------------------------------- */

static void
pg_tx_reset(struct pg_store *p)
{
	p->in_tx = 0;
	p->head_locked = 0;
	p->head_dirty = 0;
}

int
pg_begin(struct pg_store *p)
{
	PGresult	*r;

	int		 tries, lost;

	pg_tx_reset(p);
	for (tries = 0; tries < 2; tries++) {
		if (pg_ready(p) == -1)
			return (-1);
		r = PQexec(p->conn, "BEGIN ISOLATION LEVEL READ COMMITTED");
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			PQclear(r);
			p->in_tx = 1;
			return (0);
		}
		lost = pg_failed(p, r, __func__);
		PQclear(r);
		if (!lost)
			break;	/* else once more, on a new connection */
	}
	return (-1);
}

int
pg_commit(struct pg_store *p)
{
	PGresult	*r;
	int		 ok;

	if (!p->in_tx || p->conn == NULL) {
		pg_rollback(p);
		return (-1);
	}
	if (p->head_dirty && pg_head_write(p) == -1) {
		pg_rollback(p);
		return (-1);
	}
	r = PQexec(p->conn, "COMMIT");
	/* A transaction that failed earlier "commits" as ROLLBACK. */
	ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			pg_failed(p, r, __func__);
		else
			log_warnx("%s: the transaction had failed: rolled "
			    "back", __func__);
	}
	PQclear(r);
	pg_tx_reset(p);
	if (!ok)
		pg_rollback(p);
	return (ok ? 0 : -1);
}

void
pg_rollback(struct pg_store *p)
{
	PGTransactionStatusType	 ts;

	pg_tx_reset(p);
	if (p->conn == NULL)
		return;
	ts = PQtransactionStatus(p->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* --- the change feed ------------------------------------------------- */

int
pg_listen(struct pg_store *p)
{
	PGresult	*r;

	if (pg_ready(p) == -1)
		return (-1);
	if (!p->listening) {
		r = PQexec(p->conn, "LISTEN " PG_CHANNEL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_failed(p, r, __func__);
			PQclear(r);
			return (-1);
		}
		PQclear(r);
		p->listening = 1;
	}
	return (PQsocket(p->conn));
}

/*
 * Payloads (store_pg.c sends them): "k" a kill switch tripped or reset,
 * "p" a policy version applied, "i" + id an intent's status moved.
 */
int
pg_heard(struct pg_store *p, store_heard_cb cb, void *arg)
{
	PGnotify	*n;

	if (p->conn == NULL || !p->listening)
		return (-1);
	if (PQconsumeInput(p->conn) == 0 ||
	    PQstatus(p->conn) != CONNECTION_OK) {
		pg_lost(p, PQerrorMessage(p->conn));
		return (-1);
	}
	while ((n = PQnotifies(p->conn)) != NULL) {
		if (strcmp(n->relname, PG_CHANNEL) == 0 && n->extra != NULL) {
			if (strcmp(n->extra, "k") == 0)
				cb(STORE_GEN_KILLSWITCH, NULL, arg);
			else if (strcmp(n->extra, "p") == 0)
				cb(STORE_GEN_POLICY, NULL, arg);
			else if (strcmp(n->extra, "q") == 0)
				cb(STORE_GEN_QUEUE, NULL, arg);
			else if (n->extra[0] == 'i')
				cb(STORE_GEN_DATA, n->extra + 1, arg);
		}
		PQfreemem(n);
	}
	return (0);
}
