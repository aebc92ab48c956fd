/*
 * audit: append and verify the hash chain of CONTRACT §6 (proto/audit.md).
 * The record column holds the exact canonical bytes that were hashed;
 * verification recomputes every hash from them, checks that they are the
 * canonical form of the record they hold (so every exported record
 * verifies for a third party too), and checks the linkage and the seq,
 * event and intent_id columns against them, so editing any stored field
 * shows.  Appends must run inside the caller's BEGIN IMMEDIATE
 * transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "log.h"

static const char SQL_LAST[] =
    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char SQL_INSERT[] =
    "INSERT INTO audit (seq, event, intent_id, record, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_WALK[] =
    "SELECT seq, event, intent_id, record, prev_hash, hash FROM audit "
    "WHERE seq > ? ORDER BY seq LIMIT ?";

static json_t *
audit_body(int64_t seq, int64_t now, const char *actor, const char *event,
    const char *intent_id, json_t *details)
{
	char	 at[RFC3339_LEN];

	clock_rfc3339(now, at);
	return (json_pack("{sI ss ss ss ss? sO si}", "seq", (json_int_t)seq,
	    "at", at, "actor", actor, "event", event, "intent_id", intent_id,
	    "details", details, "format", AUDIT_FORMAT));
}

int
audit_append(struct db *db, int64_t now, const char *actor,
    const char *event, const char *intent_id, json_t *details)
{
	sqlite3_stmt	*st;
	json_t		*body = NULL;
	char		*text = NULL, prev[65], hash[65];
	int64_t		 seq = 1;
	int		 rc = -1;

	if ((st = db_stmt(db, SQL_LAST)) == NULL)
		return (-1);
	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	if (sqlite3_step(st) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0) + 1;
		snprintf(prev, sizeof(prev), "%s",
		    (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	/* json_pack's "O" takes a reference; a NULL details became {}. */
	/* A record must read back (verify, export): bound its nesting. */
	if (details != NULL && canon_depth(details, AUDIT_MAX_DEPTH + 1) >
	    AUDIT_MAX_DEPTH) {
		log_warnx("%s: %s details nest too deep to store", __func__,
		    event);
		return (-1);
	}
	if (details == NULL)
		details = json_object();
	else
		json_incref(details);
	body = audit_body(seq, now, actor, event, intent_id, details);
	json_decref(details);
	if (body == NULL || (text = canon_dump(body)) == NULL) {
		log_warnx("%s: cannot encode record %s", __func__, event);
		goto done;
	}
	canon_sha256_hex2(prev, 64, text, strlen(text), hash);
	if ((st = db_stmt(db, SQL_INSERT)) == NULL)
		goto done;
	sqlite3_bind_int64(st, 1, seq);
	db_bind_text(st, 2, event);
	db_bind_text(st, 3, intent_id);
	db_bind_text(st, 4, text);
	db_bind_text(st, 5, prev);
	db_bind_text(st, 6, hash);
	rc = db_step_done(db, st);
 done:
	free(text);
	json_decref(body);
	return (rc);
}

const char *
audit_canonical(const json_t *body, int *last, char **text, size_t *len)
{
	const json_t	*f = json_object_get(body, "format");
	int		 format = f == NULL ? 1 : AUDIT_FORMAT;

	*text = NULL;
	if (f != NULL && (!json_is_integer(f) ||
	    json_integer_value(f) != AUDIT_FORMAT))
		return ("record has an unknown format");
	if (format < *last)
		return ("a format 1 record follows a format 2 record");
	*last = format;
	*text = format == 1 ? canon_dump_legacy(body) : canon_dump(body);
	if (*text == NULL)
		return ("record has no canonical form");
	*len = strlen(*text);
	return (NULL);
}

/* Why the stored bytes are not the canonical form of the record they
 * hold (in its format), or NULL. */
static const char *
audit_check_canonical(const json_t *rec, const char *record, size_t len,
    int *last)
{
	const char	*why;
	char		*text;
	size_t		 tlen;

	if ((why = audit_canonical(rec, last, &text, &tlen)) != NULL)
		return (why);
	if (tlen != len || memcmp(text, record, len) != 0)
		why = "record is not in its canonical form";
	free(text);
	return (why);
}

static const char *
audit_check_row(sqlite3_stmt *st, const char *expect_prev, int64_t expect_seq,
    int *format, char hash_out[65])
{
	const char	*event = (const char *)sqlite3_column_text(st, 1);
	const char	*intent = (const char *)sqlite3_column_text(st, 2);
	const char	*record = (const char *)sqlite3_column_text(st, 3);
	const char	*prev = (const char *)sqlite3_column_text(st, 4);
	const char	*hash = (const char *)sqlite3_column_text(st, 5);
	json_t		*rec;
	json_error_t	 jerr;
	const char	*why = NULL, *r_event, *r_intent;
	json_int_t	 r_seq;

	if (sqlite3_column_int64(st, 0) != expect_seq)
		return ("sequence gap: a record is missing");
	if (record == NULL || prev == NULL || hash == NULL || event == NULL)
		return ("a column is NULL");
	if (strlen(prev) != 64 || strcmp(prev, expect_prev) != 0)
		return ("prev_hash does not match the previous record's hash");
	canon_sha256_hex2(prev, 64, record, (size_t)sqlite3_column_bytes(st, 3),
	    hash_out);
	if (strlen(hash) != 64 || strcmp(hash, hash_out) != 0)
		return ("hash does not match the record's contents");
	rec = json_loads(record, JSON_REJECT_DUPLICATES, &jerr);
	r_intent = json_string_value(json_object_get(rec, "intent_id"));
	if (rec == NULL || json_unpack(rec, "{sI ss}", "seq", &r_seq,
	    "event", &r_event) != 0)
		why = "record is not a valid audit body";
	else if (r_seq != expect_seq)
		why = "record's seq differs from its position";
	else if (strcmp(r_event, event) != 0)
		why = "event column differs from the hashed record";
	else if ((intent == NULL) != (r_intent == NULL) ||
	    (intent != NULL && strcmp(intent, r_intent) != 0))
		why = "intent_id column differs from the hashed record";
	else
		why = audit_check_canonical(rec, record,
		    (size_t)sqlite3_column_bytes(st, 3), format);
	json_decref(rec);
	return (why);
}

int
audit_verify(struct db *db, struct audit_check *r)
{
	sqlite3_stmt	*st;
	char		 prev[65], hash[65];
	const char	*why;
	int		 rc, format = 0;

	memset(r, 0, sizeof(*r));
	snprintf(prev, sizeof(prev), "%s", AUDIT_GENESIS);
	if ((st = db_stmt(db, SQL_WALK)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, 0);
	sqlite3_bind_int64(st, 2, -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		why = audit_check_row(st, prev, r->count + 1, &format, hash);
		if (why != NULL) {
			r->bad_seq = r->count + 1;
			snprintf(r->why, sizeof(r->why), "%s", why);
			sqlite3_reset(st);
			return (1);
		}
		memcpy(prev, hash, sizeof(prev));
		r->count++;
	}
	sqlite3_reset(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

static json_t *
audit_row_json(sqlite3_stmt *st)
{
	json_t	*rec;

	rec = json_loads((const char *)sqlite3_column_text(st, 3),
	    JSON_REJECT_DUPLICATES, NULL);
	if (rec == NULL)
		return (NULL);
	json_object_set_new(rec, "prev_hash",
	    json_string((const char *)sqlite3_column_text(st, 4)));
	json_object_set_new(rec, "hash",
	    json_string((const char *)sqlite3_column_text(st, 5)));
	return (rec);
}

int
audit_each(struct db *db, int64_t after, int64_t limit,
    int (*cb)(json_t *rec, void *arg), void *arg)
{
	sqlite3_stmt	*st;
	json_t		*rec;
	int		 rc, stop = 0;

	if ((st = db_stmt(db, SQL_WALK)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rec = audit_row_json(st)) == NULL) {
			rc = SQLITE_ERROR;
			break;
		}
		stop = cb(rec, arg);
		json_decref(rec);
	}
	sqlite3_reset(st);
	return (stop || rc == SQLITE_DONE ? 0 : -1);
}
