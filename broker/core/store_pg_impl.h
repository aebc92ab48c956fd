/*
 * store_pg_impl: what the two files of the PostgreSQL engine share and
 * nobody else may use — the connection with its prepared statements,
 * reconnection and transactions (store_pg_db.c), and the helpers that
 * bind parameters and read results.  The statements themselves and the
 * ops are in store_pg.c.
 *
 * Adding an op: one `static const struct pg_stmt` (its SQL and how many
 * parameters it binds) and one small function that fills a pg_params,
 * calls pg_run / pg_run_count and reads the result.  Statements are
 * prepared on first use on each connection (again after a reconnect).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "migration.h"
#include "store.h"
#include "store_pg.h"

/* Every statement the engine has (71) fits: the writer's one connection
 * runs every kind of write; past a full cache they run unprepared. */
#define PG_STMT_CACHE	128
#define PG_MAX_PARAMS	24
#define PG_NAME_MAX	256	/* the URI as shown: never its password */
#define PG_CHANNEL	"toolgate"	/* LISTEN/NOTIFY channel */

extern const struct migration pg_migrations[];
extern const int pg_migrations_count;
/* The engine's ops (store.h); extern for test-store's completeness check. */
extern const struct store_ops pg_ops;

/* One SQL statement with $1..$n parameters. */
struct pg_stmt {
	const char	*sql;
	int		 nparams;
};

/*
 * Parameters as sent: text, except bytes of a known length (binary text,
 * so that the length is what counts).  NULL values are SQL NULL.
 */
struct pg_params {
	const char	*v[PG_MAX_PARAMS];
	int		 len[PG_MAX_PARAMS];
	int		 fmt[PG_MAX_PARAMS];
	char		 num[PG_MAX_PARAMS][24];
	int		 n;
};

struct pg_store {
	struct store		 base;
	PGconn			*conn;		/* NULL while disconnected */
	char			*uri;		/* as given: may hold a password */
	char			 name[PG_NAME_MAX];	/* for every message */
	int			 full;		/* durability (set_durability) */
	int			 read_only;	/* set_read_only */
	const struct pg_stmt	*prepared[PG_STMT_CACHE];	/* on conn */
	int			 n_prepared;
	int			 in_tx;		/* between begin and the end */
	int			 listening;	/* LISTEN on conn */
	/* Reconnection: not before retry_at (monotonic ms), then backoff
	 * doubles up to PG_BACKOFF_MAX_MS; down says a loss was logged. */
	int64_t			 retry_at, backoff;
	int			 down;
	/* The chain head as this transaction holds it (locked), and
	 * whether appends moved it (written back at commit). */
	int			 head_locked, head_dirty;
	int64_t			 head_seq;
	char			 head_hash[65];
};

#define PG(s)	((struct pg_store *)(s))

/*
 * Connect to p->uri (the password never reaches a message), check the
 * server, and migrate under the advisory lock; without STORE_CREATE a
 * database without toolgate's schema is refused.  0, or -1 with a line
 * in err.
 */
int	pg_open(struct pg_store *p, unsigned flags, char *err, size_t errlen);
void	pg_close(struct pg_store *p);
/* The session's synchronous_commit for full (on) or crash-only (off). */
int	pg_set_durability(struct pg_store *p, int full);
int	pg_set_read_only(struct pg_store *p);

/*
 * 0 when the connection is up.  Outside a transaction a lost connection
 * is re-established here, with backoff; inside one it stays lost (the
 * transaction is gone: the caller rolls back and answers 503).
 */
int	pg_ready(struct pg_store *p);

/* BEGIN / COMMIT (the chain head written back first; rolled back on
 * failure) / ROLLBACK. */
/* store_pg.c: write the chain head this transaction moved (at commit). */
int	pg_head_write(struct pg_store *p);
int	pg_begin(struct pg_store *p);
int	pg_commit(struct pg_store *p);
void	pg_rollback(struct pg_store *p);

/*
 * Run st with a, preparing it first on this connection.  The result
 * (PQclear it), or NULL on any failure, logged with fn and the server's
 * primary message (never the parameters), the connection dropped when
 * it was lost.
 */
PGresult	*pg_run(struct pg_store *p, const struct pg_stmt *st,
		    const struct pg_params *a, const char *fn);
/* Run a statement for its count of rows changed (or returned): n, -1. */
int64_t	pg_run_count(struct pg_store *p, const struct pg_stmt *st,
	    const struct pg_params *a, const char *fn);

/* Parameters, in order. */
void	pg_params_init(struct pg_params *a);
void	pg_text(struct pg_params *a, const char *s);	/* NULL: NULL */
void	pg_bytes(struct pg_params *a, const char *s, size_t len);
void	pg_int(struct pg_params *a, int64_t v);
void	pg_time(struct pg_params *a, int64_t t);	/* 0: NULL */

/* Result cells: NULL reads as NULL / 0. */
const char	*pg_get(const PGresult *r, int row, int col);
int64_t		 pg_get_int(const PGresult *r, int row, int col);

/*
 * Inside a transaction, take the write lock (the chain head's row) unless
 * this transaction holds it: every op that writes or locks calls this
 * first (store_pg.c).  0 or -1.
 */
int	pg_tx_lock(struct pg_store *p);

/* The ops of the limit usage tables (store_pg_limits.c; store.h). */
int	pg_op_limit_usage_get(struct store *s, const char *name,
	    const char *key, unsigned flags, struct limit_usage_row *u);
int	pg_op_limit_usage_put(struct store *s, struct limit_usage_row *u);
int	pg_op_limit_usage_walk(struct store *s, int64_t after,
	    const char *agent, int64_t limit, store_usage_cb cb, void *arg);
int	pg_op_limit_bucket_get(struct store *s, int64_t usage_id, int64_t at,
	    struct limit_bucket_row *b);
int	pg_op_limit_bucket_put(struct store *s, int64_t usage_id,
	    const struct limit_bucket_row *b);
int	pg_op_limit_buckets_walk(struct store *s, int64_t usage_id,
	    int64_t after, store_bucket_cb cb, void *arg);
int	pg_op_limit_buckets_drop(struct store *s, int64_t usage_id,
	    int64_t upto);
int	pg_op_limit_defs_walk(struct store *s, store_def_cb cb, void *arg);
int	pg_op_limit_def_put(struct store *s, const char *name,
	    const char *def);
int	pg_op_limit_forget(struct store *s, const char *name);

/* Listening for other brokers' changes (store.h listen, heard). */
int	pg_listen(struct pg_store *p);
int	pg_heard(struct pg_store *p, store_heard_cb cb, void *arg);
