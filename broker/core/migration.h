/*
 * migration: one schema step as embed-migrations.py builds it into the
 * binaries, for every engine (each has its own dialect's array).
 */
#pragma once

struct migration {
	int		 version;
	const char	*name;
	const char	*sql;
};
