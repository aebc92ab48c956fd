/*
 * store_sqlite: the SQLite engine behind store.h.  Only store.c opens it;
 * tests that tamper with a database on purpose reach the raw connection
 * through store_sqlite_handle.
 */
#pragma once

#include <stddef.h>

#include <sqlite3.h>

#include "store.h"

struct store	*store_sqlite_open(const char *path, unsigned flags,
		    char *err, size_t errlen);
/* The connection of a store opened by store_sqlite_open (tests only). */
sqlite3		*store_sqlite_handle(struct store *s);
/* The statement behind stats, for tests that check it reads indexes
 * only (EXPLAIN QUERY PLAN). */
const char	*store_sqlite_stats_sql(void);
