/*
 * audit: append and verify the hash chain of CONTRACT §6 (proto/audit.md).
 * The record column holds the exact canonical bytes that were hashed;
 * verification recomputes every hash from them, checks that they are the
 * canonical form of the record they hold (so every exported record
 * verifies for a third party too), and checks the linkage and the seq,
 * event and intent_id columns against them, so editing any stored field
 * shows.  Appends must run inside the caller's write transaction.  No SQL
 * here: the rows come and go through the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "log.h"

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
audit_append(struct store *s, int64_t now, const char *actor,
    const char *event, const char *intent_id, json_t *details)
{
	struct audit_row	 row;
	json_t			*body = NULL;
	char			*text = NULL, prev[65], hash[65];
	int64_t			 seq;
	int			 rc = -1;

	/* A record must read back (verify, export): bound its nesting. */
	if (details != NULL && canon_depth(details, AUDIT_MAX_DEPTH + 1) >
	    AUDIT_MAX_DEPTH) {
		log_warnx("%s: %s details nest too deep to store", __func__,
		    event);
		return (-1);
	}
	if (s->ops->audit_head(s, &seq, prev) == -1)
		return (-1);
	/* json_pack's "O" takes a reference; a NULL details became {}. */
	if (details == NULL)
		details = json_object();
	else
		json_incref(details);
	body = audit_body(seq + 1, now, actor, event, intent_id, details);
	json_decref(details);
	if (body == NULL || (text = canon_dump(body)) == NULL) {
		log_warnx("%s: cannot encode record %s", __func__, event);
		goto done;
	}
	canon_sha256_hex2(prev, 64, text, strlen(text), hash);
	row.seq = seq + 1;
	row.event = event;
	row.intent_id = intent_id;
	row.record = text;
	row.record_len = strlen(text);
	row.prev_hash = prev;
	row.hash = hash;
	rc = s->ops->audit_insert(s, &row);
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
audit_check_row(const struct audit_row *row, const char *expect_prev,
    int64_t expect_seq, int *format, char hash_out[65])
{
	json_t		*rec;
	json_error_t	 jerr;
	const char	*why = NULL, *r_event, *r_intent;
	json_int_t	 r_seq;

	if (row->seq != expect_seq)
		return ("sequence gap: a record is missing");
	if (row->record == NULL || row->prev_hash == NULL ||
	    row->hash == NULL || row->event == NULL)
		return ("a column is NULL");
	if (strlen(row->prev_hash) != 64 ||
	    strcmp(row->prev_hash, expect_prev) != 0)
		return ("prev_hash does not match the previous record's hash");
	canon_sha256_hex2(row->prev_hash, 64, row->record, row->record_len,
	    hash_out);
	if (strlen(row->hash) != 64 || strcmp(row->hash, hash_out) != 0)
		return ("hash does not match the record's contents");
	rec = json_loadb(row->record, row->record_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	r_intent = json_string_value(json_object_get(rec, "intent_id"));
	if (rec == NULL || json_unpack(rec, "{sI ss}", "seq", &r_seq,
	    "event", &r_event) != 0)
		why = "record is not a valid audit body";
	else if (r_seq != expect_seq)
		why = "record's seq differs from its position";
	else if (strcmp(r_event, row->event) != 0)
		why = "event column differs from the hashed record";
	else if ((row->intent_id == NULL) != (r_intent == NULL) ||
	    (row->intent_id != NULL && strcmp(row->intent_id, r_intent) != 0))
		why = "intent_id column differs from the hashed record";
	else
		why = audit_check_canonical(rec, row->record, row->record_len,
		    format);
	json_decref(rec);
	return (why);
}

struct audit_walk {
	struct audit_check	*r;
	char			 prev[65];
	int			 format;	/* of the previous record */
	int			 broken;
};

static int
audit_verify_cb(const struct audit_row *row, void *arg)
{
	struct audit_walk	*v = arg;
	char			 hash[65];
	const char		*why;

	why = audit_check_row(row, v->prev, v->r->count + 1, &v->format,
	    hash);
	if (why != NULL) {
		v->r->bad_seq = v->r->count + 1;
		snprintf(v->r->why, sizeof(v->r->why), "%s", why);
		v->broken = 1;
		return (1);
	}
	memcpy(v->prev, hash, sizeof(v->prev));
	v->r->count++;
	return (0);
}

int
audit_verify(struct store *s, struct audit_check *r)
{
	struct audit_walk	 v;

	memset(r, 0, sizeof(*r));
	memset(&v, 0, sizeof(v));
	v.r = r;
	snprintf(v.prev, sizeof(v.prev), "%s", AUDIT_GENESIS);
	if (s->ops->audit_walk(s, 0, 0, audit_verify_cb, &v) == -1)
		return (-1);
	return (v.broken);
}

struct audit_each {
	int	(*cb)(json_t *rec, void *arg);
	void	*arg;
	int	 failed;
};

static int
audit_each_cb(const struct audit_row *row, void *arg)
{
	struct audit_each	*e = arg;
	json_t			*rec;
	int			 stop;

	rec = row->record ? json_loadb(row->record, row->record_len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (rec == NULL) {
		e->failed = 1;
		return (1);
	}
	json_object_set_new(rec, "prev_hash", json_string(row->prev_hash));
	json_object_set_new(rec, "hash", json_string(row->hash));
	stop = e->cb(rec, e->arg);
	json_decref(rec);
	return (stop);
}

int
audit_each(struct store *s, int64_t after, int64_t limit,
    int (*cb)(json_t *rec, void *arg), void *arg)
{
	struct audit_each	 e = { cb, arg, 0 };

	if (s->ops->audit_walk(s, after, limit, audit_each_cb, &e) == -1 ||
	    e.failed)
		return (-1);
	return (0);
}
