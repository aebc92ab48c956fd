/*
 * store: picks the engine a --db string names and opens it.  A SQLite
 * path today; "postgresql://" and "postgres://" URIs are reserved for the
 * PostgreSQL engine (CONTRACT §11) and refused clearly until it exists.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"
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

struct store *
store_open(const char *spec, unsigned flags, char *err, size_t errlen)
{
	if (spec == NULL || spec[0] == '\0') {
		snprintf(err, errlen, "no database given");
		return (NULL);
	}
	if (store_is_postgres(spec)) {
		/* Never echo the URI: it may hold a password. */
		snprintf(err, errlen, "PostgreSQL databases are not supported "
		    "by this build: give a SQLite file path");
		return (NULL);
	}
	return (store_sqlite_open(spec, flags, err, errlen));
}

void
store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}
