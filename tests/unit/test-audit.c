/*
 * test-audit: canonical JSON and the hash chain on a real SQLite file —
 * appends verify, the first altered or missing record is named, the hash
 * is exactly SHA-256(prev_hash || stored canonical bytes), and records of
 * both formats (proto/audit.md) verify in the order they may appear.
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

	/* Sorted keys, no spaces, UTF-8 kept as is (RFC 8785). */
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

/* A record row written by hand (as an older broker or an attacker
 * would), continuing the chain from prev; its hash into prev. */
static void
insert_raw(struct store *db, int64_t seq, const char *record, char prev[65])
{
	sqlite3_stmt	*st;
	json_t		*rec = json_loads(record, 0, NULL);
	char		 hash[65];

	CHECK(rec != NULL);
	canon_sha256_hex2(prev, 64, record, strlen(record), hash);
	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "INSERT INTO audit "
	    "(seq, event, intent_id, record, prev_hash, hash) VALUES (?, ?, "
	    "NULL, ?, ?, ?)", -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, json_string_value(json_object_get(rec,
	    "event")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, record, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, hash, -1, SQLITE_STATIC);
	CHECK(sqlite3_step(st) == SQLITE_DONE);
	sqlite3_finalize(st);
	json_decref(rec);
	memcpy(prev, hash, 65);
}

/* The legacy (format 1) text of a record with these details. */
static char *
legacy_record(int64_t seq, const char *details)
{
	json_t	*rec = json_pack("{sI ss ss ss sn so}", "seq", (json_int_t)seq,
		    "at", "2026-11-26T23:44:10Z", "actor", "old-broker",
		    "event", "decision", "intent_id", "details",
		    json_loads(details, 0, NULL));
	char	*text = canon_dump_legacy(rec);

	CHECK(text != NULL);
	json_decref(rec);
	return (text);
}

static int64_t
last_hash(struct store *db, char prev[65])
{
	sqlite3_stmt	*st;
	int64_t		 seq = 0;

	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT seq, hash "
	    "FROM audit ORDER BY seq DESC LIMIT 1", -1, &st, NULL) ==
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0);
		snprintf(prev, 65, "%s", sqlite3_column_text(st, 1));
	} else
		snprintf(prev, 65, "%s", AUDIT_GENESIS);
	sqlite3_finalize(st);
	return (seq);
}

static void
expect_broken(struct store *db, int64_t seq, const char *why)
{
	struct audit_check	 r;

	CHECK(audit_verify(db, &r) == 1);
	if (r.bad_seq != seq || strstr(r.why, why) == NULL)
		fprintf(stderr, "bad_seq %lld (%s), want %lld (%s)\n",
		    (long long)r.bad_seq, r.why, (long long)seq, why);
	CHECK(r.bad_seq == seq && strstr(r.why, why) != NULL);
}

/*
 * Records of format 1 (no "format" member, jansson's sorted form: byte
 * order of names, \u001F, reals with 17 digits) written before RFC 8785
 * keep verifying; records appended now are format 2 (RFC 8785); a format
 * 1 record after a format 2 one, an unknown format, or bytes that are not
 * the canonical form of their record break the chain there.
 */
static void
test_formats(void)
{
	char			 path[64], prev[65], *text, *rec;
	struct store		*db = open_temp(path, sizeof(path));
	struct audit_check	 r;
	json_t			*d;
	sqlite3_stmt		*st;
	const char		*stored;

	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	text = legacy_record(1, "{\"args\":{\"x\":0.1,\"\\ufb33\":1,"
	    "\"\\ud83d\\ude00\":2,\"c\":\"\\u001f\"}}");
	CHECK(strstr(text, "0.10000000000000001") != NULL);
	CHECK(strstr(text, "\\u001F") != NULL);
	CHECK(strstr(text, "\"\xef\xac\xb3\":1,\"\xf0\x9f\x98\x80\":2") !=
	    NULL);
	insert_raw(db, 1, text, prev);
	free(text);
	text = legacy_record(2, "{\"n\":1e21}");
	insert_raw(db, 2, text, prev);
	free(text);
	CHECK(audit_verify(db, &r) == 0 && r.count == 2);

	/* Now format 2: the same details in RFC 8785 form. */
	d = json_loads("{\"args\":{\"x\":0.1,\"\\ufb33\":1,"
	    "\"\\ud83d\\ude00\":2,\"c\":\"\\u001f\",\"n\":1e21}}", 0,
	    NULL);
	CHECK(store_begin(db) == 0);
	CHECK(audit_append(db, 1795736400, "agent-a", "decision", NULL, d) ==
	    0);
	CHECK(store_commit(db) == 0);
	json_decref(d);
	CHECK(audit_verify(db, &r) == 0 && r.count == 3);
	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT record "
	    "FROM audit WHERE seq = 3", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	stored = (const char *)sqlite3_column_text(st, 0);
	CHECK(strstr(stored, "{\"args\":{\"c\":\"\\u001f\",\"n\":1e+21,"
	    "\"x\":0.1,\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":1}}") != NULL);
	CHECK(strstr(stored, "\"format\":2") != NULL);
	sqlite3_finalize(st);

	/* A format 1 record may not follow. */
	last_hash(db, prev);
	text = legacy_record(4, "{}");
	insert_raw(db, 4, text, prev);
	free(text);
	expect_broken(db, 4, "format 1 record follows a format 2");
	store_close(db);
	unlink(path);

	/* An unknown format; and right hash over non-canonical bytes. */
	db = open_temp(path, sizeof(path));
	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	insert_raw(db, 1, "{\"actor\":\"a\",\"at\":\"2026-11-26T23:44:10Z\","
	    "\"details\":{},\"event\":\"decision\",\"format\":3,"
	    "\"intent_id\":null,\"seq\":1}", prev);
	expect_broken(db, 1, "unknown format");
	store_close(db);
	unlink(path);
	db = open_temp(path, sizeof(path));
	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	rec = "{\"actor\":\"a\", \"at\":\"2026-11-26T23:44:10Z\","
	    "\"details\":{},\"event\":\"decision\",\"format\":2,"
	    "\"intent_id\":null,\"seq\":1}";
	insert_raw(db, 1, rec, prev);
	expect_broken(db, 1, "not in its canonical form");
	store_close(db);
	unlink(path);
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
	test_formats();
	test_each();
	printf("audit: %d passed, 0 failed\n", passed);
	return (0);
}
