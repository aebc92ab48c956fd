/*
 * store_pg: the PostgreSQL engine behind store.h, for several brokers on
 * one database (CONTRACT §11).  Only store.c opens it.
 */
#pragma once

#include <stddef.h>

#include "store.h"

/* uri: a postgresql:// or postgres:// URI (libpq's syntax). */
struct store	*store_pg_open(const char *uri, unsigned flags, char *err,
		    size_t errlen);
/* store_ping for a PostgreSQL URI. */
int		 store_pg_ping(const char *uri, char *why, size_t whylen);
/* uri without its password, for messages (store_display). */
void		 store_pg_display(const char *uri, char *out, size_t outlen);
