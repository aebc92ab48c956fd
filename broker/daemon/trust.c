/*
 * trust: start-up verification, the anchor, periodic checks, the
 * checkpoint endpoint and the break's metrics.  Appends check the head
 * themselves (lc_audit); the tick catches what happens while nothing is
 * appended — a truncation, a rollback, a policy body edited in place —
 * within seconds, so a break shows on /metrics and in the log without
 * waiting for the next decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_trust.h"
#include "broker.h"
#include "clock.h"
#include "log.h"
#include "trust.h"

#define TRUST_POLICY_EVERY	5	/* ticks between policy checks */
#define TRUST_ANCHOR_EVERY	60	/* ticks between anchor writes */

int
trust_start(struct broker *b, char *err, size_t errlen)
{
	struct audit_start	 st;
	struct grant_keyring	*ring;
	struct store		*s;
	int			 rc;

	if ((s = store_open(b->db_path, STORE_CREATE, err, errlen)) == NULL)
		return (-1);
	ring = grant_signer_keys(&b->grant);
	rc = audit_trust_start(&b->trust, s, b->anchor_path, ring, &st);
	grant_keyring_unref(ring);
	store_close(s);
	if (rc == -1) {
		snprintf(err, errlen, "%s: cannot read the audit chain",
		    b->db_path);
		return (-1);
	}
	if (audit_trust_broken(&b->trust))
		return (0);
	log_info("audit chain verified: %lld record%s after record %lld "
	    "(%s) in %.3f s, %lld tag%s", (long long)st.records,
	    st.records == 1 ? "" : "s", (long long)st.from.seq, st.from_what,
	    st.seconds, (long long)st.tagged, st.tagged == 1 ? "" : "s");
	if (strcmp(st.from_what, "anchor") != 0 && st.records > 0)
		log_warnx("no audit anchor %s: the chain was verified from "
		    "the %s; a truncation or an older copy of the database "
		    "put in place before this start could not be noticed "
		    "(keep checkpoints off this host)", b->anchor_path ?
		    b->anchor_path : "(none configured)", st.from_what);
	if (b->anchor_path != NULL)
		(void)audit_trust_save_anchor(&b->trust, b->anchor_path,
		    clock_now());
	return (0);
}

/* The policy in force must still be what its record applied: an edit in
 * place would otherwise show only at the next load. */
static void
trust_check_policy(struct worker *w)
{
	struct store	*s = w->store;
	int64_t		 version;
	char		*body;
	size_t		 len;

	if (s->ops->policy_current(s, &version, &body, &len) == -1)
		return;
	(void)audit_trust_policy(&w->broker->trust, s, version, body, len);
	free(body);
}

void
trust_tick(struct worker *w)
{
	struct broker	*b = w->broker;

	if (audit_trust_broken(&b->trust))
		return;
	b->trust_ticks++;
	(void)audit_trust_refresh(&b->trust, w->store);
	if (b->trust_ticks % TRUST_POLICY_EVERY == 0)
		trust_check_policy(w);
	if (b->trust_ticks % TRUST_ANCHOR_EVERY == 0 && b->anchor_path)
		(void)audit_trust_save_anchor(&b->trust, b->anchor_path,
		    clock_now());
}

void
trust_stop(struct broker *b)
{
	struct store	*s;
	char		 err[512];

	if (b->anchor_path == NULL || audit_trust_broken(&b->trust))
		return;
	if ((s = store_open(b->db_path, 0, err, sizeof(err))) == NULL) {
		log_warnx("audit anchor not updated: %s", err);
		return;
	}
	if (audit_trust_refresh(&b->trust, s) == 0)
		(void)audit_trust_save_anchor(&b->trust, b->anchor_path,
		    clock_now());
	store_close(s);
}

void
trust_metrics(struct broker *b, char *buf, size_t cap, size_t *used)
{
	struct audit_head	 known;
	int64_t			 bad;
	int			 n;

	audit_trust_state(&b->trust, &bad, NULL, 0, &known);
	n = snprintf(buf + *used, *used < cap ? cap - *used : 0,
	    "# HELP toolgate_audit_chain_broken 1 once the broker found the "
	    "audit chain broken, or a row contradicting its tagged records: "
	    "it then refuses decisions (503) until restarted.\n"
	    "# TYPE toolgate_audit_chain_broken gauge\n"
	    "toolgate_audit_chain_broken %d\n"
	    "# HELP toolgate_audit_bad_record The first audit record found "
	    "bad (0: none, or not one record).\n"
	    "# TYPE toolgate_audit_bad_record gauge\n"
	    "toolgate_audit_bad_record %lld\n"
	    "# HELP toolgate_audit_verified_seq The newest audit record this "
	    "broker has verified.\n"
	    "# TYPE toolgate_audit_verified_seq gauge\n"
	    "toolgate_audit_verified_seq %lld\n",
	    audit_trust_broken(&b->trust), (long long)bad,
	    (long long)known.seq);
	if (n > 0)
		*used += (size_t)n;
}

char *
trust_checkpoint(struct broker *b, struct store *s, int64_t now,
    struct checkpoint *cp)
{
	struct grant_keyring	*ring = grant_signer_keys(&b->grant);
	char			*jws;

	/* keys[0] signs, as it signs grants: /v1/jwks has every key. */
	jws = audit_trust_checkpoint(&b->trust, s, ring->keys[0].key,
	    ring->keys[0].header, now, cp);
	grant_keyring_unref(ring);
	return (jws);
}

void
api_audit_checkpoint(struct request *rq)
{
	struct broker		*b = rq->w->broker;
	struct checkpoint	 cp;
	char			*jws, why[AUDIT_WHY_MAX], msg[AUDIT_WHY_MAX + 96];
	int64_t			 bad;

	if ((jws = trust_checkpoint(b, rq->w->store, clock_now(), &cp)) ==
	    NULL) {
		if (!audit_trust_broken(&b->trust)) {
			http_reply_error(rq, E_UNAVAILABLE, NULL);
			return;
		}
		audit_trust_state(&b->trust, &bad, why, sizeof(why), NULL);
		snprintf(msg, sizeof(msg), "the audit chain is broken (record "
		    "%lld: %s): no checkpoint is signed", (long long)bad, why);
		http_reply_error(rq, E_UNAVAILABLE, msg);
		return;
	}
	http_reply_json(rq, 200, json_pack("{ss sI ss sI}", "checkpoint", jws,
	    "seq", (json_int_t)cp.seq, "hash", cp.hash, "iat",
	    (json_int_t)cp.iat));
	free(jws);
}
