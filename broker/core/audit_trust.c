/*
 * audit_trust: the known head, the break, the start-up verification,
 * head checks and tagged appends.  The known head only moves forward:
 * it is read before the database's head, and advanced only after a
 * commit or a verification, so a head read later is never older unless
 * records were removed.  The reliance checks (grants, policies) are in
 * audit_rely.c, the anchor file in audit_anchor.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_trust.h"
#include "audit_trust_impl.h"
#include "log.h"

int
audit_trust_init(struct audit_trust *t, const struct audit_keys *keys,
    int guard)
{
	memset(t, 0, sizeof(*t));
	t->keys = keys;
	t->guard = guard;
	snprintf(t->known.hash, sizeof(t->known.hash), "%s", AUDIT_GENESIS);
	return (pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -1);
}

void
audit_trust_deinit(struct audit_trust *t)
{
	pthread_mutex_destroy(&t->lock);
}

int
audit_trust_broken(struct audit_trust *t)
{
	return (__atomic_load_n(&t->broken, __ATOMIC_ACQUIRE));
}

void
audit_trust_state(struct audit_trust *t, int64_t *bad_seq, char *why,
    size_t whylen, struct audit_head *known)
{
	pthread_mutex_lock(&t->lock);
	if (bad_seq != NULL)
		*bad_seq = t->bad_seq;
	if (why != NULL)
		snprintf(why, whylen, "%s", t->why);
	if (known != NULL)
		*known = t->known;
	pthread_mutex_unlock(&t->lock);
}

void
audit_trust_break(struct audit_trust *t, int64_t seq, const char *fmt, ...)
{
	va_list	 ap;
	char	 why[AUDIT_WHY_MAX];
	int	 first;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&t->lock);
	if ((first = !t->broken)) {
		t->bad_seq = seq;
		snprintf(t->why, sizeof(t->why), "%s", why);
		__atomic_store_n(&t->broken, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&t->lock);
	if (!first)
		return;
	if (seq > 0)
		log_warnx("audit chain broken at record %lld: %s; refusing "
		    "decisions, grants and changes (503) until the database "
		    "is repaired and toolgated restarted", (long long)seq,
		    why);
	else
		log_warnx("audit chain broken: %s; refusing decisions, grants "
		    "and changes (503) until the database is repaired and "
		    "toolgated restarted", why);
}

/* Advance the known head to h if h is newer (never backwards). */
static void
trust_advance(struct audit_trust *t, const struct audit_head *h, int tagged)
{
	pthread_mutex_lock(&t->lock);
	if (h->seq > t->known.seq)
		t->known = *h;
	if (tagged)
		t->tagged = 1;
	pthread_mutex_unlock(&t->lock);
}

/*
 * The chain's head as this connection sees it is (seq, hash), read after
 * *known was: it must be known, or extend it through records that verify.
 */
static int
trust_check_head(struct audit_trust *t, struct store *s,
    const struct audit_head *known, int tagged, int64_t seq,
    const char *hash)
{
	struct audit_walk_spec	 spec;
	struct audit_check	 r;
	int			 v;

	if (seq < known->seq) {
		audit_trust_break(t, seq + 1, "the chain now ends at record "
		    "%lld, but this broker had verified it up to record %lld: "
		    "records were removed, or an older copy of the database "
		    "was put in place", (long long)seq,
		    (long long)known->seq);
		return (-1);
	}
	if (seq == known->seq) {
		if (strcmp(hash, known->hash) == 0)
			return (0);
		audit_trust_break(t, seq, "record %lld is not the one this "
		    "broker verified (its hash changed): the chain was "
		    "rewritten, or replaced by another copy", (long long)seq);
		return (-1);
	}
	memset(&spec, 0, sizeof(spec));
	spec.from = *known;
	spec.keys = t->keys;
	spec.tagged = tagged;
	spec.fast = 1;	/* see audit_trust_start */
	if ((v = audit_verify_walk(s, &spec, &r)) == -1)
		return (-1);
	if (v == 1) {
		audit_trust_break(t, r.bad_seq, "%s", r.why);
		return (-1);
	}
	/* Every record up to the head committed before the walk began
	 * (where the head is kept apart from the records, PostgreSQL's
	 * audit_head, they could disagree). */
	if (spec.last.seq < seq) {
		audit_trust_break(t, spec.last.seq + 1, "the chain ends at "
		    "record %lld, but its head says record %lld: records were "
		    "removed", (long long)spec.last.seq, (long long)seq);
		return (-1);
	}
	trust_advance(t, &spec.last, spec.tagged);
	return (0);
}

/* A copy of the known head and the tagged mode. */
static void
trust_known(struct audit_trust *t, struct audit_head *known, int *tagged)
{
	pthread_mutex_lock(&t->lock);
	*known = t->known;
	*tagged = t->tagged;
	pthread_mutex_unlock(&t->lock);
}

int
audit_trust_refresh(struct audit_trust *t, struct store *s)
{
	struct audit_head	 known;
	char			 hash[65];
	int64_t			 seq;
	int			 tagged;

	if (audit_trust_broken(t))
		return (-1);
	if (!t->guard)
		return (0);
	/* The known head first: it only moves after a commit, so the
	 * database's head, read next, is at least as new. */
	trust_known(t, &known, &tagged);
	if (s->ops->audit_head(s, &seq, hash) == -1)
		return (-1);
	return (trust_check_head(t, s, &known, tagged, seq, hash));
}

void
audit_tx_reset(struct audit_tx *tx)
{
	memset(tx, 0, sizeof(*tx));
}

int
audit_trust_append(struct audit_trust *t, struct audit_tx *tx,
    struct store *s, int64_t now, const char *actor, const char *event,
    const char *intent_id, json_t *details)
{
	struct audit_head	 h;

	if (audit_trust_broken(t))
		return (-1);
	/* Under the transaction's hold on the head nobody else appends:
	 * one check per transaction is enough. */
	if (!tx->checked) {
		if (audit_trust_refresh(t, s) == -1)
			return (-1);
		tx->checked = 1;
	}
	if (audit_append_tagged(s, t->keys, now, actor, event, intent_id,
	    details, &h) == -1)
		return (-1);
	tx->appended = 1;
	tx->head = h;
	return (0);
}

void
audit_trust_committed(struct audit_trust *t, struct audit_tx *tx)
{
	if (tx->appended && t->guard)
		trust_advance(t, &tx->head, t->keys != NULL);
	audit_tx_reset(tx);
}

/* The record at seq of s into *h: 1 found, 0 not, -1 error. */
struct trust_find {
	int64_t			 seq;
	struct audit_head	*h;
	int			 found;
};

static int
trust_find_cb(const struct audit_row *row, void *arg)
{
	struct trust_find	*f = arg;

	if (row->seq == f->seq && row->hash != NULL &&
	    strlen(row->hash) == 64) {
		f->h->seq = row->seq;
		memcpy(f->h->hash, row->hash, 65);
		f->found = 1;
	}
	return (1);
}

static int
trust_record_at(struct store *s, int64_t seq, struct audit_head *h)
{
	struct trust_find	 f = { seq, h, 0 };

	if (s->ops->audit_walk(s, seq - 1, 1, trust_find_cb, &f) == -1)
		return (-1);
	return (f.found);
}

/*
 * The cut, if any, into *cut: its checkpoint must verify with the grant
 * key it names (by kid: one of grant_keys) and name the cut's record.  1 cut, 0 none, -1 error (a bad cut is a
 * break, returned as 1 with the trust broken).
 */
static int
trust_cut(struct audit_trust *t, struct store *s,
    const struct grant_keyring *grant_keys, struct audit_head *cut)
{
	struct audit_cut	 c;
	struct checkpoint	 cp;
	EVP_PKEY		*key = NULL;
	const char		*why;
	int			 found;

	if ((found = s->ops->audit_cut_get(s, &c)) != 1)
		return (found);
	cut->seq = c.seq;
	memcpy(cut->hash, c.hash, sizeof(cut->hash));
	if (checkpoint_parse(c.checkpoint, &cp, &why) == 0 &&
	    (key = grant_keyring_find(grant_keys, cp.kid)) == NULL)
		why = "signed by a key that is not among the grant keys";
	if (key == NULL ||
	    checkpoint_verify(key, c.checkpoint, &cp, &why) == -1)
		audit_trust_break(t, c.seq + 1, "the checkpoint of the cut "
		    "after record %lld does not verify with the grant key: "
		    "%s", (long long)c.seq, why);
	else if (cp.seq != c.seq || strcmp(cp.hash, c.hash) != 0)
		audit_trust_break(t, c.seq + 1, "the cut after record %lld "
		    "is not the one its checkpoint names", (long long)c.seq);
	free(c.checkpoint);
	return (1);
}

/* Where verification starts: the anchor, checked against the chain. */
static int
trust_from_anchor(struct audit_trust *t, struct store *s,
    const struct trust_anchor *a, struct audit_head *from)
{
	struct audit_head	 at;
	char			 hash[65];
	int64_t			 head;
	int			 found;

	memset(&at, 0, sizeof(at));
	if (a->head.seq == 0) {
		*from = a->head;
		return (0);
	}
	if ((found = trust_record_at(s, a->head.seq, &at)) == -1 ||
	    s->ops->audit_head(s, &head, hash) == -1)
		return (-1);
	if (!found)
		audit_trust_break(t, head + 1, "the chain ends at record %lld, "
		    "but this broker's anchor holds record %lld: records were "
		    "removed, or an older copy of the database was put in "
		    "place", (long long)head, (long long)a->head.seq);
	else if (strcmp(at.hash, a->head.hash) != 0)
		audit_trust_break(t, a->head.seq, "record %lld is not the one "
		    "this broker's anchor holds (its hash differs): the chain "
		    "was rewritten, or replaced by another copy",
		    (long long)a->head.seq);
	*from = a->head;
	return (0);
}

static double
trust_seconds(const struct timespec *t0)
{
	struct timespec	 t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
}

int
audit_trust_start(struct audit_trust *t, struct store *s,
    const char *anchor_path, const struct grant_keyring *grant_keys,
    struct audit_start *out)
{
	struct trust_anchor	 a;
	struct audit_head	 cut;
	struct audit_walk_spec	 spec;
	struct audit_check	 r;
	struct timespec		 t0;
	int			 have_cut, have_anchor = 0, v;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(out, 0, sizeof(*out));
	memset(&cut, 0, sizeof(cut));
	memset(&spec, 0, sizeof(spec));
	spec.keys = t->keys;
	/* Hashes, links, columns and tags are what the broker relies on;
	 * that the bytes are also their canonical form (for exports) is
	 * toolgatectl audit verify's to check, at half the cost. */
	spec.fast = 1;
	snprintf(spec.from.hash, sizeof(spec.from.hash), "%s", AUDIT_GENESIS);
	out->from_what = "genesis";
	if ((have_cut = trust_cut(t, s, grant_keys, &cut)) == -1)
		return (-1);
	if (anchor_path != NULL && (have_anchor = trust_anchor_read(t,
	    anchor_path, &a)) == -1)
		have_anchor = 0;	/* broken: said why */
	if (have_anchor && (!have_cut || a.head.seq > cut.seq)) {
		if (trust_from_anchor(t, s, &a, &spec.from) == -1)
			return (-1);
		spec.tagged = a.tagged;
		out->from_what = "anchor";
	} else if (have_cut) {
		spec.from = cut;
		spec.tagged = have_anchor && a.tagged;
		out->from_what = "cut";
	}
	out->from = spec.from;
	if (audit_trust_broken(t))
		return (0);
	if ((v = audit_verify_walk(s, &spec, &r)) == -1)
		return (-1);
	out->records = r.count;
	out->tagged = r.tagged;
	out->seconds = trust_seconds(&t0);
	if (v == 1) {
		audit_trust_break(t, r.bad_seq, "%s", r.why);
		return (0);
	}
	pthread_mutex_lock(&t->lock);
	t->known = spec.last;
	t->tagged = spec.tagged;
	pthread_mutex_unlock(&t->lock);
	return (0);
}

char *
audit_trust_checkpoint(struct audit_trust *t, struct store *s, EVP_PKEY *key,
    json_t *header, int64_t now, struct checkpoint *cp)
{
	struct audit_head	 known;
	const char		*why;
	char			*jws;
	int			 tagged;

	if (audit_trust_refresh(t, s) == -1)
		return (NULL);
	trust_known(t, &known, &tagged);
	if ((jws = checkpoint_sign(key, header, known.seq, known.hash,
	    now)) != NULL && checkpoint_parse(jws, cp, &why) == -1) {
		free(jws);
		jws = NULL;
	}
	return (jws);
}
