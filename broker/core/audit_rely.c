/*
 * audit_rely: the checks the broker makes before it relies on a row it
 * did not just write — a grant for an allowed intent, a policy body to
 * load.  Rows can be edited by whoever can write the database; tagged
 * records cannot be made without the audit key.  So a row is used only
 * when a tagged record says the same.  Rows and their records are
 * committed together and records are never removed while still needed
 * (prune keeps them), so a row read before its records cannot be newer
 * than them: a row that contradicts them was changed behind the broker's
 * back, which is a break.  What can be a race — a record newer than the
 * row read just before — only refuses this one use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_trust.h"
#include "canon.h"
#include "log.h"

#define RELY_RECORDS_MAX	256	/* records of one intent we look at */

/* One record of an intent, parsed, with its tag checked. */
struct rely_rec {
	int64_t			 seq;
	json_t			*rec;
	enum audit_tag_verdict	 tag;
	char			 kid[AUDIT_KID_LEN + 1];
};

struct rely_list {
	const struct audit_keys	*keys;
	struct rely_rec		 v[RELY_RECORDS_MAX];
	size_t			 n;
	int			 failed;
};

static int
rely_collect_cb(const struct audit_row *row, void *arg)
{
	struct rely_list	*l = arg;
	struct rely_rec		*x;

	if (l->n == RELY_RECORDS_MAX || row->record == NULL ||
	    row->prev_hash == NULL || strlen(row->prev_hash) != 64) {
		l->failed = 1;
		return (1);
	}
	x = &l->v[l->n];
	memset(x, 0, sizeof(*x));
	x->seq = row->seq;
	x->tag = audit_tag_check(l->keys, row->prev_hash, row->record,
	    row->record_len, x->kid);
	if ((x->rec = json_loadb(row->record, row->record_len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		l->failed = 1;
		return (1);
	}
	l->n++;
	return (0);
}

static void
rely_list_clear(struct rely_list *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		json_decref(l->v[i].rec);
	l->n = 0;
}

static const char *
rely_str(const json_t *o, const char *key)
{
	return (json_string_value(json_object_get(o, key)));
}

/* 1 when member key of o is the string v (both absent counts too). */
static int
rely_same(const json_t *o, const char *key, const char *v)
{
	const char	*s = rely_str(o, key);

	if (s == NULL || v == NULL)
		return (s == NULL && v == NULL && json_object_get(o, key) ==
		    NULL);
	return (strcmp(s, v) == 0);
}

int
audit_trust_args_mac(const struct audit_trust *t, const char *args,
    char out[65])
{
	if (t == NULL || t->keys == NULL || args == NULL)
		return (-1);
	return (audit_mac(t->keys, &t->keys->k[0], AUDIT_MAC_ARGS, args,
	    strlen(args), NULL, 0, NULL, 0, out));
}

/* What of the row differs from its decision record x, or NULL. */
static const char *
rely_decision_differs(const struct audit_trust *t, const struct rely_rec *x,
    const struct intent_row *r)
{
	const json_t		*det = json_object_get(x->rec, "details");
	const json_t		*amount = json_object_get(det, "amount");
	const struct audit_key	*k;
	const char		*mac = rely_str(det, "args_mac");
	char			 want[65];

	if (!rely_same(x->rec, "actor", r->agent))
		return ("agent");
	if (!rely_same(det, "tool", r->tool))
		return ("tool");
	if (!rely_same(det, "intent_sha256", r->intent_sha256))
		return ("intent_sha256");
	if ((amount == NULL) != (r->amount_value == NULL) ||
	    (amount != NULL && (!rely_same(amount, "value", r->amount_value) ||
	    !rely_same(amount, "currency", r->amount_currency))))
		return ("amount");
	if ((mac == NULL) != (r->args == NULL))
		return ("args");
	if (mac != NULL && ((k = audit_keys_find(t->keys, x->kid,
	    AUDIT_KID_LEN)) == NULL || audit_mac(t->keys, k, AUDIT_MAC_ARGS,
	    r->args, strlen(r->args), NULL, 0, NULL, 0, want) == -1 ||
	    strlen(mac) != 64 || !canon_ct_equal(mac, want, 64)))
		return ("args");
	return (NULL);
}

/*
 * The approvals after the decision: each tagged, in order, the one that
 * released last.  1 when r's approvers are exactly theirs and one
 * released; 0 when a record is not authenticated (no grant, logged); -1
 * when the row contradicts them (*why).
 */
static int
rely_approvals(const struct rely_list *l, size_t from,
    const struct intent_row *r, const char **why)
{
	const struct rely_rec	*x;
	size_t			 i, n = 0;
	int			 released = 0;

	for (i = from; i < l->n; i++) {
		x = &l->v[i];
		if (!rely_same(x->rec, "event", "approval"))
			continue;
		if (x->tag != AUDIT_TAG_OK) {
			log_warnx("intent %s: approval record %lld is not "
			    "authenticated: no grant", r->id,
			    (long long)x->seq);
			return (0);
		}
		if (released || n >= r->n_approvals ||
		    !rely_same(json_object_get(x->rec, "details"), "by",
		    r->approvals[n].by)) {
			*why = "its approvers are not those of its approval "
			    "records";
			return (-1);
		}
		n++;
		released = rely_same(json_object_get(x->rec, "details"),
		    "status", "allowed");
	}
	if (!released) {
		*why = "it is allowed, but no approval record released it: "
		    "its status was changed behind the broker's back";
		return (-1);
	}
	if (n != r->n_approvals) {
		*why = "its approvers are not those of its approval records";
		return (-1);
	}
	return (1);
}

/* 1 if a later record closed the intent (the row read is stale). */
static int
rely_closed(const struct rely_list *l)
{
	static const char *const closing[] = { "redemption", "expiry",
	    "rejection" };
	size_t	 i, j;

	for (i = 0; i < l->n; i++)
		for (j = 0; j < sizeof(closing) / sizeof(closing[0]); j++)
			if (rely_same(l->v[i].rec, "event", closing[j]))
				return (1);
	return (0);
}

/* The verdict on r's records in l: 1 grant, 0 not, -1 break (*bad). */
static int
rely_grant(struct audit_trust *t, const struct rely_list *l,
    const struct intent_row *r, int64_t *bad, const char **why)
{
	const struct rely_rec	*d = NULL;
	const char		*status, *field;
	size_t			 i;

	for (i = 0; i < l->n && d == NULL; i++)
		if (rely_same(l->v[i].rec, "event", "decision"))
			d = &l->v[i];
	*bad = d != NULL ? d->seq : 0;
	if (d == NULL) {
		*why = "it is allowed, but the chain has no decision record "
		    "for it";
		return (-1);
	}
	if (d->tag == AUDIT_TAG_BAD) {
		*why = "the tag of its decision record does not verify";
		return (-1);
	}
	if (d->tag != AUDIT_TAG_OK) {
		log_warnx("intent %s: decision record %lld is not "
		    "authenticated (written without the audit key): no grant",
		    r->id, (long long)d->seq);
		return (0);
	}
	if ((field = rely_decision_differs(t, d, r)) != NULL) {
		log_warnx("intent %s: its %s differs from decision record "
		    "%lld", r->id, field, (long long)d->seq);
		*why = "its row differs from its tagged decision record";
		return (-1);
	}
	if (rely_closed(l))
		return (0);
	status = rely_str(json_object_get(d->rec, "details"), "status");
	if (status != NULL && strcmp(status, "allowed") == 0) {
		if (r->n_approvals == 0)
			return (1);
		*why = "it was allowed at once, but its row lists approvers";
		return (-1);
	}
	if (status != NULL && strcmp(status, "pending") == 0)
		return (rely_approvals(l, (size_t)(d - l->v) + 1, r, why));
	*why = "its decision record did not allow it: its status was changed "
	    "behind the broker's back";
	return (-1);
}

int
audit_trust_grant(struct audit_trust *t, const struct audit_tx *tx,
    struct store *s, const struct intent_row *r)
{
	struct rely_list	*l;
	const char		*why = NULL;
	int64_t			 bad = 0;
	int			 v = 0;

	if (t == NULL || t->keys == NULL)
		return (0);
	/* After an append of its own the transaction's head was checked
	 * (audit_trust_append), and the records past it are uncommitted:
	 * a refresh now would take them for verified ones and move the
	 * known head past what other connections can see, or onto records
	 * a rollback removes. */
	if ((tx == NULL || !tx->appended) && audit_trust_refresh(t, s) == -1)
		return (0);
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (0);
	l->keys = t->keys;
	if (s->ops->audit_intent(s, r->id, rely_collect_cb, l) == 0 &&
	    !l->failed && (v = rely_grant(t, l, r, &bad, &why)) == -1)
		audit_trust_break(t, bad, "intent %s: %s", r->id, why);
	rely_list_clear(l);
	free(l);
	return (v == 1);
}

/* The newest policy.apply record, copied. */
struct rely_policy {
	const struct audit_keys	*keys;
	int			 found, failed;
	struct rely_rec		 x;
};

static int
rely_policy_cb(const struct audit_row *row, void *arg)
{
	struct rely_policy	*p = arg;

	if (row->record == NULL || row->prev_hash == NULL ||
	    strlen(row->prev_hash) != 64 || (p->x.rec = json_loadb(
	    row->record, row->record_len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL) {
		p->failed = 1;
		return (1);
	}
	p->x.seq = row->seq;
	p->x.tag = audit_tag_check(p->keys, row->prev_hash, row->record,
	    row->record_len, p->x.kid);
	p->found = 1;
	return (1);
}

/* Not a break when the chain never had a tag: a policy applied before
 * toolgate checked them.  Says what to do.  -1. */
static int
rely_policy_untrusted(struct audit_trust *t, int64_t version, int64_t seq,
    const char *what)
{
	if (t->tagged) {
		audit_trust_break(t, seq, "policy version %lld: %s",
		    (long long)version, what);
		return (-1);
	}
	log_warnx("policy version %lld is not loaded: %s; re-apply it with "
	    "the audit key (toolgatectl --db DB --audit-key FILE policy "
	    "apply POLICY.json)", (long long)version, what);
	return (-1);
}

int
audit_trust_policy_tagged(const struct audit_trust *t, struct store *s,
    int64_t version, const char *body, size_t len)
{
	struct rely_policy	 p;
	const json_t		*det;
	char			 sha[65];
	int			 yes;

	if (t == NULL || t->keys == NULL)
		return (0);
	memset(&p, 0, sizeof(p));
	p.keys = t->keys;
	if (s->ops->audit_policy_newest(s, rely_policy_cb, &p) == -1 ||
	    p.failed || !p.found || p.x.tag != AUDIT_TAG_OK) {
		json_decref(p.x.rec);
		return (0);
	}
	det = json_object_get(p.x.rec, "details");
	canon_sha256_hex(body, len, sha);
	yes = json_integer_value(json_object_get(det, "version")) == version &&
	    rely_same(det, "sha256", sha);
	json_decref(p.x.rec);
	return (yes);
}

int
audit_trust_policy(struct audit_trust *t, struct store *s, int64_t version,
    const char *body, size_t len)
{
	struct rely_policy	 p;
	const json_t		*det;
	json_int_t		 rv;
	char			 sha[65];
	int			 rc = -1;

	/* Only a broker checks: a tool that only tags reads as stored. */
	if (version == 0 || (t != NULL && !t->guard))
		return (0);
	/* Checked even over a broken chain: reads may still go on with a
	 * policy that verifies; decisions are refused anyway. */
	if (t == NULL || t->keys == NULL)
		return (-1);
	memset(&p, 0, sizeof(p));
	p.keys = t->keys;
	if (s->ops->audit_policy_newest(s, rely_policy_cb, &p) == -1 ||
	    p.failed)
		goto done;
	if (!p.found) {
		rc = rely_policy_untrusted(t, version, 0, "the chain has no "
		    "policy.apply record");
		goto done;
	}
	det = json_object_get(p.x.rec, "details");
	rv = json_integer_value(json_object_get(det, "version"));
	canon_sha256_hex(body, len, sha);
	if (p.x.tag == AUDIT_TAG_BAD)
		audit_trust_break(t, p.x.seq, "the tag of the policy.apply "
		    "record does not verify");
	else if (p.x.tag != AUDIT_TAG_OK)
		rc = rely_policy_untrusted(t, version, p.x.seq, "its "
		    "policy.apply record is not authenticated by the audit "
		    "key");
	else if (rv > version)
		;	/* a newer version came meanwhile: the next refresh */
	else if (rv < version)
		audit_trust_break(t, p.x.seq, "policy version %lld has no "
		    "tagged policy.apply record (the newest applied version "
		    "%lld): it was added behind the broker's back",
		    (long long)version, (long long)rv);
	else if (!rely_same(det, "sha256", sha))
		audit_trust_break(t, p.x.seq, "the body of policy version %lld "
		    "is not the one its policy.apply record hashed: it was "
		    "edited behind the broker's back", (long long)version);
	else
		rc = 0;
 done:
	json_decref(p.x.rec);
	return (rc);
}
