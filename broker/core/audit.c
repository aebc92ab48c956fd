/*
 * audit: append to the hash chain of CONTRACT §6 (proto/audit.md), the
 * canonical bytes of both record formats, and reading records back as
 * JSON.  The record column holds the exact canonical bytes that were
 * hashed, tag included.  Appends must run inside the caller's write
 * transaction.  Verification is audit_verify.c's.  No SQL here: the rows
 * come and go through the store.
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
	return (audit_append_tagged(s, NULL, now, actor, event, intent_id,
	    details, NULL));
}

int
audit_append_tagged(struct store *s, const struct audit_keys *keys,
    int64_t now, const char *actor, const char *event, const char *intent_id,
    json_t *details, struct audit_head *out)
{
	struct audit_row	 row;
	json_t			*body = NULL;
	char			*text = NULL, prev[65], hash[65];
	char			 tag[AUDIT_TAG_LEN + 1];
	size_t			 len;
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
	len = strlen(text);
	/* The tag covers prev_hash and the bytes without it, and goes
	 * last: the bytes stay the record's RFC 8785 form. */
	if (keys != NULL && (audit_tag_make(keys, prev, text, len,
	    tag) == -1 || audit_tag_insert(&text, &len, tag) == -1)) {
		log_warnx("%s: cannot tag record %s", __func__, event);
		goto done;
	}
	canon_sha256_hex2(prev, 64, text, len, hash);
	row.seq = seq + 1;
	row.event = event;
	row.intent_id = intent_id;
	row.record = text;
	row.record_len = len;
	row.prev_hash = prev;
	row.hash = hash;
	if ((rc = s->ops->audit_insert(s, &row)) == 0 && out != NULL) {
		out->seq = row.seq;
		memcpy(out->hash, hash, sizeof(out->hash));
	}
 done:
	free(text);
	json_decref(body);
	return (rc);
}

int
audit_widens(const json_t *rec)
{
	const char	*event = json_string_value(json_object_get(rec,
			    "event"));
	const char	*status;

	if (event == NULL)
		return (0);
	if (strcmp(event, "approval") == 0 ||
	    strcmp(event, "policy.apply") == 0 ||
	    strcmp(event, "killswitch.reset") == 0)
		return (1);
	status = json_string_value(json_object_get(json_object_get(rec,
	    "details"), "status"));
	return (strcmp(event, "decision") == 0 && status != NULL &&
	    strcmp(status, "allowed") == 0);
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
