/*
 * test-audit: canonical JSON and the hash chain on a real SQLite file —
 * appends verify, the first altered or missing record is named, and the
 * hash is exactly SHA-256(prev_hash || stored canonical bytes).
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "canon.h"
#include "store.h"
#include "store_sqlite.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

static struct store *
open_temp(char *path, size_t len)
{
	char		 err[256];
	struct store	*db;
	int		 fd;

	snprintf(path, len, "/tmp/test-audit-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	db = store_open(path, STORE_CREATE, err, sizeof(err));
	CHECK(db != NULL);
	return (db);
}

static void
append_n(struct store *db, int n)
{
	int	 i;

	CHECK(store_begin(db) == 0);
	for (i = 0; i < n; i++) {
		json_t *d = json_pack("{si ss}", "i", i, "note", "x\"y\\z");

		CHECK(audit_append(db, 1795736400 + i, "agent-payments",
		    "decision", i % 2 ? "in_0123" : NULL, d) == 0);
		json_decref(d);
	}
	CHECK(store_commit(db) == 0);
}

static void
test_canonical(void)
{
	json_t	*a = json_pack("{si sb s[ii] s{ss}}", "z", 1, "a", 1, "m", 1, 2,
	    "k", "y", "\u00e9");
	char	*text = canon_dump(a);

	/* Sorted keys, no spaces, UTF-8 kept as is. */
	CHECK(strcmp(text, "{\"a\":true,\"k\":{\"y\":\"\xc3\xa9\"},\"m\":[1,2],"
	    "\"z\":1}") == 0);
	free(text);
	json_decref(a);
}

static void
test_chain_verifies(void)
{
	char			 path[64], hash[65];
	struct store		*db = open_temp(path, sizeof(path));
	struct audit_check	 r;
	sqlite3_stmt		*st;

	append_n(db, 10);
	CHECK(audit_verify(db, &r) == 0);
	CHECK(r.count == 10 && r.bad_seq == 0);
	/* Record 1 links to the genesis hash and hashes its stored bytes. */
	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT prev_hash, record, hash "
	    "FROM audit WHERE seq = 1", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK(strcmp((const char *)sqlite3_column_text(st, 0),
	    AUDIT_GENESIS) == 0);
	canon_sha256_hex2(AUDIT_GENESIS, 64, sqlite3_column_text(st, 1),
	    (size_t)sqlite3_column_bytes(st, 1), hash);
	CHECK(strcmp(hash, (const char *)sqlite3_column_text(st, 2)) == 0);
	CHECK(strstr((const char *)sqlite3_column_text(st, 1),
	    "\"intent_id\":null") != NULL);
	sqlite3_finalize(st);
	/* Append-only triggers stop accidents. */
	CHECK(sqlite3_exec(store_sqlite_handle(db), "DELETE FROM audit WHERE seq = 3", NULL,
	    NULL, NULL) != SQLITE_OK);
	store_close(db);
	unlink(path);
}

static void
tamper(const char *sql, int64_t want_bad)
{
	char			 path[64];
	struct store		*db = open_temp(path, sizeof(path));
	struct audit_check	 r;

	append_n(db, 8);
	CHECK(sqlite3_exec(store_sqlite_handle(db), "DROP TRIGGER audit_no_update; "
	    "DROP TRIGGER audit_no_delete", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(store_sqlite_handle(db), sql, NULL, NULL, NULL) == SQLITE_OK);
	CHECK(audit_verify(db, &r) == 1);
	if (r.bad_seq != want_bad)
		fprintf(stderr, "%s: bad_seq %lld (%s)\n", sql,
		    (long long)r.bad_seq, r.why);
	CHECK(r.bad_seq == want_bad);
	CHECK(r.count == want_bad - 1);
	CHECK(r.why[0] != '\0');
	store_close(db);
	unlink(path);
}

static void
test_tampering_is_named(void)
{
	tamper("UPDATE audit SET record = replace(record, 'agent-payments', "
	    "'agent-evil') WHERE seq = 5", 5);
	tamper("UPDATE audit SET event = 'approval' WHERE seq = 4", 4);
	tamper("UPDATE audit SET intent_id = 'in_other' WHERE seq = 2", 2);
	tamper("DELETE FROM audit WHERE seq = 6", 6);
	tamper("DELETE FROM audit WHERE seq = 1", 1);
	tamper("UPDATE audit SET hash = prev_hash WHERE seq = 7", 7);
	/* Re-hashing one record still breaks the link of the next. */
	tamper("UPDATE audit SET record = replace(record, '\"i\":2', "
	    "'\"i\":9'), hash = 'ff' || substr(hash, 3) WHERE seq = 3", 3);
}

static int
count_cb(json_t *rec, void *arg)
{
	int	*n = arg;

	CHECK(json_is_string(json_object_get(rec, "hash")));
	CHECK(json_integer_value(json_object_get(rec, "seq")) > 3);
	return (++*n == 4);
}

static void
test_each(void)
{
	char		 path[64];
	struct store	*db = open_temp(path, sizeof(path));
	int		 n = 0;

	append_n(db, 10);
	CHECK(audit_each(db, 3, 0, count_cb, &n) == 0);
	CHECK(n == 4);
	store_close(db);
	unlink(path);
}

int
main(void)
{
	test_canonical();
	test_chain_verifies();
	test_tampering_is_named();
	test_each();
	printf("audit: %d passed, 0 failed\n", passed);
	return (0);
}
