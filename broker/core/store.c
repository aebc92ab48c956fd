/*
 * store: picks the engine a --db string names and opens it: a
 * "postgresql://" or "postgres://" URI is PostgreSQL (store_pg.c),
 * anything else a SQLite file path (store_sqlite.c).  It also says how a
 * --db string may be shown: a URI can hold a password.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "store_pg.h"
#include "store_sqlite.h"

static int
store_is_postgres(const char *spec)
{
	return (strncmp(spec, "postgresql://", 13) == 0 ||
	    strncmp(spec, "postgres://", 11) == 0);
}

int
store_spec_is_file(const char *spec)
{
	return (spec != NULL && spec[0] != '\0' && !store_is_postgres(spec));
}

void
store_display(const char *spec, char *out, size_t outlen)
{
	if (spec == NULL)
		snprintf(out, outlen, "(no database)");
	else if (store_is_postgres(spec))
		store_pg_display(spec, out, outlen);
	else
		snprintf(out, outlen, "%s", spec);
}

int
store_ping(const char *spec, char *why, size_t whylen)
{
	if (spec == NULL || !store_is_postgres(spec))
		return (-1);
	return (store_pg_ping(spec, why, whylen));
}

struct store *
store_open(const char *spec, unsigned flags, char *err, size_t errlen)
{
	if (spec == NULL || spec[0] == '\0') {
		snprintf(err, errlen, "no database given");
		return (NULL);
	}
	if (store_is_postgres(spec))
		return (store_pg_open(spec, flags, err, errlen));
	return (store_sqlite_open(spec, flags, err, errlen));
}

void
store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}
