/*
 * audit_verify: checking the hash chain (proto/audit.md), from the
 * database's rows or from records given as JSON (an export, GET
 * /v1/audit, an archive).  A row's stored bytes are hashed as they are,
 * must be the canonical form of the record they hold (so every exported
 * record verifies for a third party too), and must agree with the seq,
 * event and intent_id columns, so editing any stored field shows.  Tags
 * are checked with the audit keys when given: a tag that does not verify
 * breaks the chain, and once a tag has verified, so does a record that
 * widens what is allowed without one.  Nothing here decides what the
 * broker does about a break (audit_trust.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
#include "log.h"

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

/*
 * The tag of the record rec whose canonical bytes are text, after prev:
 * NULL, or why it breaks the chain.  *tag_ok: it verified.
 */
static const char *
audit_check_tag(const json_t *rec, const char *prev, const char *text,
    size_t len, const struct audit_keys *keys, int *tagged, int *tag_ok)
{
	*tag_ok = 0;
	switch (audit_tag_check(keys, prev, text, len, NULL)) {
	case AUDIT_TAG_BAD:
		return ("its tag does not verify: the record was altered or "
		    "forged");
	case AUDIT_TAG_OK:
		*tag_ok = 1;
		*tagged = 1;
		return (NULL);
	case AUDIT_TAG_NONE:
	case AUDIT_TAG_UNKNOWN:
		break;
	}
	if (keys == NULL || !*tagged || !audit_widens(rec))
		return (NULL);
	return ("it widens what is allowed but has no tag that verifies "
	    "under the audit key: forged, or written without the key");
}

/*
 * Going back from end (exclusive) in text, the string member `name`:
 * ,"NAME":"VALUE" with a VALUE free of '"' and '\\'.  The start of the
 * member, or NULL; *v and *vlen the value.
 */
static const char *
tail_string(const char *text, const char *end, const char *name,
    const char **v, size_t *vlen)
{
	const char	*q;
	size_t		 n = strlen(name);

	if (end - text < 2 || end[-1] != '"')
		return (NULL);
	for (q = end - 2; q > text && *q != '"'; q--)
		if (*q == '\\')
			return (NULL);
	/* q is the value's opening quote: ,"NAME": precedes it. */
	if (q <= text || (size_t)(q - text) < n + 4 ||
	    memcmp(q - n - 4, ",\"", 2) != 0 ||
	    memcmp(q - n - 2, name, n) != 0 || memcmp(q - 2, "\":", 2) != 0)
		return (NULL);
	*v = q + 1;
	*vlen = (size_t)(end - 1 - (q + 1));
	return (q - n - 4);
}

/* Going back from end, the literal member text; its start or NULL. */
static const char *
tail_literal(const char *text, const char *end, const char *lit)
{
	size_t	 n = strlen(lit);

	if ((size_t)(end - text) < n || memcmp(end - n, lit, n) != 0)
		return (NULL);
	return (end - n);
}

/*
 * The seq, event and intent_id of a tagged record's bytes, read from
 * their end: a record the broker tagged is RFC 8785, so its last members
 * are ,"event":E,"format":2,"intent_id":I,"seq":N,"tag":T}.  Saves
 * parsing the whole record at start-up.  0, or -1 (then parse it).
 */
static int
audit_tail(const char *text, size_t len, int64_t *seq, const char **event,
    size_t *elen, const char **intent, size_t *ilen)
{
	const char	*end, *p;
	int64_t		 n = 0, mul = 1;

	if (len < AUDIT_TAG_LEN + 12)
		return (-1);
	end = text + len - (AUDIT_TAG_LEN + 10);	/* ,"tag":"...."} */
	for (p = end; p > text && p[-1] >= '0' && p[-1] <= '9' &&
	    end - p < 18; p--) {
		n += (p[-1] - '0') * mul;
		mul *= 10;
	}
	if (p == end || (end = tail_literal(text, p, ",\"seq\":")) == NULL)
		return (-1);
	*seq = n;
	*intent = NULL;
	*ilen = 0;
	if ((p = tail_literal(text, end, ",\"intent_id\":null")) == NULL &&
	    (p = tail_string(text, end, "intent_id", intent, ilen)) == NULL)
		return (-1);
	if ((p = tail_literal(text, p, ",\"format\":2")) == NULL ||
	    tail_string(text, p, "event", event, elen) == NULL)
		return (-1);
	return (0);
}

/* The columns of row say what its tagged bytes say (fast path). */
static const char *
audit_check_tagged_row(const struct audit_row *row, int64_t expect_seq)
{
	const char	*event, *intent;
	size_t		 elen, ilen;
	int64_t		 seq;

	if (audit_tail(row->record, row->record_len, &seq, &event, &elen,
	    &intent, &ilen) == -1)
		return ("record is not a valid audit body");
	if (seq != expect_seq)
		return ("record's seq differs from its position");
	if (strlen(row->event) != elen || memcmp(row->event, event, elen) != 0)
		return ("event column differs from the hashed record");
	if ((row->intent_id == NULL) != (intent == NULL) ||
	    (intent != NULL && (strlen(row->intent_id) != ilen ||
	    memcmp(row->intent_id, intent, ilen) != 0)))
		return ("intent_id column differs from the hashed record");
	return (NULL);
}

static const char *
audit_check_row(const struct audit_row *row, const char *expect_prev,
    int64_t expect_seq, struct audit_walk_spec *spec, int *format,
    int *tag_ok, char hash_out[65])
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
	/* A tag that verifies: bytes the broker wrote, canonical by
	 * construction, so their last members name the columns. */
	if (spec->fast && spec->keys != NULL && audit_tag_check(spec->keys,
	    expect_prev, row->record, row->record_len, NULL) == AUDIT_TAG_OK) {
		*tag_ok = 1;
		spec->tagged = 1;
		*format = AUDIT_FORMAT;
		return (audit_check_tagged_row(row, expect_seq));
	}
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
	else if (!spec->fast && (why = audit_check_canonical(rec,
	    row->record, row->record_len, format)) != NULL)
		;
	else
		why = audit_check_tag(rec, expect_prev, row->record,
		    row->record_len, spec->keys, &spec->tagged, tag_ok);
	json_decref(rec);
	return (why);
}

struct audit_walk {
	struct audit_walk_spec	*spec;
	struct audit_check	*r;
	char			 prev[65];
	int64_t			 seq;		/* of the previous record */
	int			 format;	/* of the previous record */
	int			 broken;
};

static int
audit_verify_cb(const struct audit_row *row, void *arg)
{
	struct audit_walk	*v = arg;
	char			 hash[65];
	const char		*why;
	int			 tag_ok;

	why = audit_check_row(row, v->prev, v->seq + 1, v->spec, &v->format,
	    &tag_ok, hash);
	if (why != NULL) {
		v->r->bad_seq = v->seq + 1;
		snprintf(v->r->why, sizeof(v->r->why), "%s", why);
		v->broken = 1;
		return (1);
	}
	memcpy(v->prev, hash, sizeof(v->prev));
	v->seq++;
	v->r->count++;
	v->r->tagged += tag_ok;
	return (0);
}

int
audit_verify_walk(struct store *s, struct audit_walk_spec *spec,
    struct audit_check *r)
{
	struct audit_walk	 v;

	memset(r, 0, sizeof(*r));
	memset(&v, 0, sizeof(v));
	v.spec = spec;
	v.r = r;
	v.seq = spec->from.seq;
	memcpy(v.prev, spec->from.hash, sizeof(v.prev));
	/* After a cut the earlier formats are unknown: a format 1 record
	 * may still follow. */
	if (s->ops->audit_walk(s, spec->from.seq, 0, audit_verify_cb,
	    &v) == -1)
		return (-1);
	spec->last.seq = v.seq;
	memcpy(spec->last.hash, v.prev, sizeof(spec->last.hash));
	return (v.broken);
}

int
audit_verify_keyed(struct store *s, const struct audit_keys *keys,
    struct audit_check *r)
{
	struct audit_walk_spec	 spec;
	struct audit_cut	 cut;
	int			 found;

	memset(&spec, 0, sizeof(spec));
	spec.keys = keys;
	snprintf(spec.from.hash, sizeof(spec.from.hash), "%s",
	    AUDIT_GENESIS);
	if ((found = s->ops->audit_cut_get(s, &cut)) == -1)
		return (-1);
	if (found) {
		spec.from.seq = cut.seq;
		memcpy(spec.from.hash, cut.hash, sizeof(spec.from.hash));
		free(cut.checkpoint);
	}
	return (audit_verify_walk(s, &spec, r));
}

int
audit_verify(struct store *s, struct audit_check *r)
{
	return (audit_verify_keyed(s, NULL, r));
}

const char *
audit_check_json(const json_t *rec, const char *prev, int64_t expect,
    const struct audit_keys *keys, int *format, int *tagged, int *tag_ok,
    char hash[65])
{
	const char	*ph = json_string_value(json_object_get(rec,
			    "prev_hash"));
	const char	*h = json_string_value(json_object_get(rec, "hash"));
	const char	*why;
	json_t		*body;
	char		*text;
	size_t		 len;

	*tag_ok = 0;
	if (!json_is_integer(json_object_get(rec, "seq")) ||
	    json_integer_value(json_object_get(rec, "seq")) != expect)
		return ("sequence gap: a record is missing");
	if (ph == NULL || h == NULL)
		return ("a column is NULL");
	if (strlen(ph) != 64 || strcmp(ph, prev) != 0)
		return ("prev_hash does not match the previous record's hash");
	/* The hashed body is the record without its two hashes. */
	if ((body = json_copy((json_t *)(uintptr_t)rec)) == NULL)
		return ("out of memory");
	json_object_del(body, "prev_hash");
	json_object_del(body, "hash");
	if ((why = audit_canonical(body, format, &text, &len)) == NULL) {
		canon_sha256_hex2(prev, 64, text, len, hash);
		if (strcmp(h, hash) != 0)
			why = "hash does not match the record's contents";
		else
			why = audit_check_tag(body, prev, text, len, keys,
			    tagged, tag_ok);
		free(text);
	}
	json_decref(body);
	return (why);
}
