/*
 * ops: the operator's and the tool's endpoints of CONTRACT §3-§4 — kill
 * switch status, trip and reset, single-use grant redemption, and the
 * audit trail.  Handlers only parse, authorise and answer: the switches
 * live in killswitch.c, the chain in audit.c.  Every change runs in one
 * BEGIN IMMEDIATE transaction and is answered only after it commits.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "audit.h"
#include "clock.h"
#include "jose.h"
#include "killswitch.h"
#include "log.h"
#include "server.h"

#define OPS_AUDIT_LIMIT		100
#define OPS_AUDIT_LIMIT_MAX	1000
#define OPS_BODY_MAX		(64 * 1024)

static const char SQL_REDEEM[] =
    "UPDATE intents SET redeemed_at = ?, redeemed_by = ? "
    "WHERE id = ? AND status = 'allowed' AND redeemed_at IS NULL";

/* Authorise: refreshes the policy; answers 403/503 itself and returns 0. */
static int
ops_require(struct request *rq, int approver_ok, const char *what)
{
	struct worker	*w = rq->w;
	const char	*who = rq->peer->identity;
	char		 msg[128];

	if (api_policy_refresh(w) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return (0);
	}
	if (w->policy != NULL && (policy_is_operator(w->policy, who) ||
	    (approver_ok && policy_is_approver(w->policy, who))))
		return (1);
	snprintf(msg, sizeof(msg), "only %s may %s",
	    approver_ok ? "operators and approvers" : "an operator", what);
	log_info("%s: %s refused: %s", __func__, who, what);
	http_reply_error(rq, E_FORBIDDEN, msg);
	return (0);
}

/*
 * The JSON object body of rq, parsed strictly (duplicate keys refused).
 * Every key must be in allowed (NULL-terminated).  On failure answers 4xx
 * itself and returns NULL; otherwise a new reference.
 */
static json_t *
ops_json_body(struct request *rq, const char *const *allowed)
{
	json_t		*doc, *v;
	json_error_t	 err;
	const char	*body, *key;
	size_t		 len, i;
	char		 msg[256];

	if (!http_content_type_is(rq, "application/json")) {
		http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
		    "this endpoint takes Content-Type: application/json");
		return (NULL);
	}
	body = http_body(rq, &len);
	if (len > OPS_BODY_MAX) {
		http_reply_error(rq, E_PAYLOAD_TOO_LARGE,
		    "the body is at most 64 KiB");
		return (NULL);
	}
	doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err);
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		http_reply_error(rq, E_BAD_REQUEST,
		    "the body must be one JSON object");
		return (NULL);
	}
	json_object_foreach(doc, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			/* %.64s: the key is the caller's text. */
			snprintf(msg, sizeof(msg), "unknown field \"%.64s\"",
			    key);
			json_decref(doc);
			http_reply_error(rq, E_BAD_REQUEST, msg);
			return (NULL);
		}
	}
	return (doc);
}

/* A string field (absent or null → *out NULL).  0, or answers 400 and -1. */
static int
ops_string_field(struct request *rq, json_t *doc, const char *name,
    const char **out)
{
	json_t	*v = json_object_get(doc, name);
	char	 msg[128];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_string(v)) {
		snprintf(msg, sizeof(msg), "\"%s\" must be a string", name);
		http_reply_error(rq, E_BAD_REQUEST, msg);
		return (-1);
	}
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v)) {
		snprintf(msg, sizeof(msg), "\"%s\" has a NUL character", name);
		http_reply_error(rq, E_BAD_REQUEST, msg);
		return (-1);
	}
	return (0);
}

void
api_killswitch_get(struct request *rq)
{
	json_t	*status;

	if (!ops_require(rq, 1, "read the kill switches"))
		return;
	if ((status = ks_status(rq->w->db)) == NULL) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	http_reply_json(rq, 200, status);
}

void
api_killswitch_trip(struct request *rq)
{
	static const char *const keys[] = { "scope", "target", "reason",
	    "reject_pending", NULL };
	struct ks_trip_result	 res;
	enum ks_scope		 scope;
	json_t			*doc, *rp, *sw;
	const char		*scope_s, *target, *reason, *why = NULL;
	int			 rc;

	if (!ops_require(rq, 0, "trip a kill switch"))
		return;
	if ((doc = ops_json_body(rq, keys)) == NULL)
		return;
	if (ops_string_field(rq, doc, "scope", &scope_s) == -1 ||
	    ops_string_field(rq, doc, "target", &target) == -1 ||
	    ops_string_field(rq, doc, "reason", &reason) == -1)
		goto done;
	rp = json_object_get(doc, "reject_pending");
	if (rp != NULL && !json_is_boolean(rp)) {
		http_reply_error(rq, E_BAD_REQUEST,
		    "\"reject_pending\" must be true or false");
		goto done;
	}
	if (scope_s == NULL || ks_scope_parse(scope_s, &scope) == -1) {
		http_reply_error(rq, E_BAD_REQUEST,
		    "\"scope\" must be \"global\", \"agent\" or \"tool\"");
		goto done;
	}
	rc = ks_trip(rq->w->db, rq->peer->identity, scope, target, reason,
	    json_is_true(rp), &res, &why);
	if (rc == -2) {
		http_reply_error(rq, E_BAD_REQUEST, why);
		goto done;
	}
	if (rc == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	log_info("kill switch %lld tripped by %s: %s%s%s, %zu pending "
	    "rejected", (long long)res.id, rq->peer->identity, scope_s,
	    target ? " " : "", target ? target : "",
	    json_array_size(res.rejected));
	/* This thread's next decision would re-read the counter anyway;
	 * refreshing now just saves it the reload. */
	(void)ks_refresh(rq->w->db, &rq->w->ks);
	if ((sw = ks_get(rq->w->db, res.id)) == NULL) {
		json_decref(res.rejected);
		http_reply_error(rq, E_INTERNAL, "the switch is engaged but "
		    "could not be read back: GET /v1/killswitch");
		goto done;
	}
	json_object_set_new(sw, "rejected", res.rejected);
	http_reply_json(rq, 201, sw);
 done:
	json_decref(doc);
}

/* The {id} of /v1/killswitch/{id}/reset: 1..INT64_MAX, digits only. */
static int64_t
ops_ks_id(const char *s)
{
	char		*end;
	long long	 v;

	if (s == NULL || s[0] < '1' || s[0] > '9' || strlen(s) > 18)
		return (0);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return (0);
	return ((int64_t)v);
}

void
api_killswitch_reset(struct request *rq)
{
	static const char *const keys[] = { "reason", NULL };
	json_t		*doc, *sw;
	const char	*reason, *why = NULL;
	int64_t		 id;
	int		 rc;

	if (!ops_require(rq, 0, "reset a kill switch"))
		return;
	if ((doc = ops_json_body(rq, keys)) == NULL)
		return;
	if (ops_string_field(rq, doc, "reason", &reason) == -1)
		goto done;
	if (reason == NULL) {
		http_reply_error(rq, E_BAD_REQUEST,
		    "\"reason\" is required to reset a kill switch");
		goto done;
	}
	if ((id = ops_ks_id(rq->id)) == 0)
		rc = 1;
	else
		rc = ks_reset(rq->w->db, rq->peer->identity, id, reason, &why);
	if (rc == -2) {
		http_reply_error(rq, E_BAD_REQUEST, why);
		goto done;
	}
	if (rc == 1) {
		http_reply_error(rq, E_NOT_FOUND, "no such engaged kill switch");
		goto done;
	}
	if (rc == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	log_info("kill switch %lld reset by %s", (long long)id,
	    rq->peer->identity);
	(void)ks_refresh(rq->w->db, &rq->w->ks);
	if ((sw = ks_get(rq->w->db, id)) == NULL) {
		http_reply_error(rq, E_INTERNAL, "the switch is reset but "
		    "could not be read back");
		goto done;
	}
	http_reply_json(rq, 200, sw);
 done:
	json_decref(doc);
}

/* Decode one base64url segment as a strict JSON object, or NULL. */
static json_t *
ops_segment_json(const char *seg, size_t len)
{
	unsigned char	*raw;
	size_t		 rawlen;
	json_t		*o;

	if ((raw = jose_b64url_decode(seg, len, &rawlen)) == NULL)
		return (NULL);
	o = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    NULL);
	free(raw);
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

/*
 * A grant is ours: ES256 with our key and kid, iss "toolgate", not yet
 * expired (no skew: we set exp).  Returns the claims (new reference) or
 * NULL with *why set.  The header is checked before the signature so that
 * nothing but our exact alg ever reaches a verifier.
 */
static json_t *
ops_grant_claims(const struct grant_signer *g, const char *tok, int64_t now,
    const char **why)
{
	json_t		*hdr = NULL, *cl = NULL, *exp;
	size_t		 len = strlen(tok), dot1, dot2;
	const char	*alg, *kid;

	*why = "the grant is not a well-formed compact JWS";
	if (jose_split(tok, len, &dot1, &dot2) == -1)
		return (NULL);
	if ((hdr = ops_segment_json(tok, dot1)) == NULL)
		return (NULL);
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	*why = "the grant was not issued by this broker";
	if (alg == NULL || strcmp(alg, "ES256") != 0 || kid == NULL ||
	    strcmp(kid, g->kid) != 0 || json_object_get(hdr, "crit") != NULL)
		goto bad;
	*why = "the grant's signature does not verify";
	if (jose_verify(g->key, JOSE_ES256, tok, len) != 0)
		goto bad;
	*why = "the grant's claims are malformed";
	if ((cl = ops_segment_json(tok + dot1 + 1, dot2 - dot1 - 1)) == NULL)
		goto bad;
	exp = json_object_get(cl, "exp");
	if (!json_is_string(json_object_get(cl, "iss")) ||
	    strcmp(json_string_value(json_object_get(cl, "iss")),
	    GRANT_ISSUER) != 0 || !json_is_integer(exp) ||
	    !json_is_string(json_object_get(cl, "jti")) ||
	    !json_is_string(json_object_get(cl, "sub")) ||
	    !json_is_string(json_object_get(cl, "tool")))
		goto bad;
	if (json_integer_value(exp) <= now) {
		*why = "the grant has expired";
		goto bad;
	}
	json_decref(hdr);
	*why = NULL;
	return (cl);
 bad:
	json_decref(hdr);
	json_decref(cl);
	return (NULL);
}

/*
 * Inside the caller's transaction: authorise the redeemer against the
 * current policy and switches, then mark the intent used.  REASON_OK, or
 * the error to answer (the caller rolls back).
 */
static enum reason
ops_redeem_txn(struct request *rq, const char *id, const char *agent,
    const char *tool, int64_t now)
{
	struct worker	*w = rq->w;
	sqlite3_stmt	*st;
	json_t		*d;
	int		 rc;

	if (api_policy_refresh(w) == -1)
		return (E_UNAVAILABLE);
	if (w->policy == NULL ||
	    !policy_may_redeem(w->policy, rq->peer->identity, tool))
		return (E_NOT_PERMITTED);
	if (ks_refresh(w->db, &w->ks) == -1)
		return (E_UNAVAILABLE);
	if (ks_covers(&w->ks, agent, tool))
		return (R_KILL_SWITCH);
	if ((st = db_stmt(w->db, SQL_REDEEM)) == NULL)
		return (E_UNAVAILABLE);
	sqlite3_bind_int64(st, 1, now);
	db_bind_text(st, 2, rq->peer->identity);
	db_bind_text(st, 3, id);
	if (db_step_done(w->db, st) == -1)
		return (E_UNAVAILABLE);
	if (sqlite3_changes(w->db->sql) != 1)
		return (E_ALREADY_REDEEMED);
	if ((d = json_pack("{ss ss}", "by", rq->peer->identity, "tool",
	    tool)) == NULL)
		return (E_UNAVAILABLE);
	rc = audit_append(w->db, now, rq->peer->identity, "redemption", id, d);
	json_decref(d);
	if (rc == -1 || db_commit(w->db) == -1)
		return (E_UNAVAILABLE);
	return (REASON_OK);
}

void
api_grant_redeem(struct request *rq)
{
	static const char *const keys[] = { "grant", NULL };
	json_t		*doc, *cl = NULL;
	const char	*tok, *why, *id, *agent, *tool;
	char		 at[RFC3339_LEN];
	int64_t		 now = clock_now();
	enum reason	 r;

	if ((doc = ops_json_body(rq, keys)) == NULL)
		return;
	if (ops_string_field(rq, doc, "grant", &tok) == -1)
		goto done;
	if (tok == NULL) {
		http_reply_error(rq, E_BAD_REQUEST, "\"grant\" is required");
		goto done;
	}
	if ((cl = ops_grant_claims(&rq->w->broker->grant, tok, now,
	    &why)) == NULL) {
		log_info("redeem refused: %s: %s", rq->peer->identity, why);
		http_reply_error(rq, E_INVALID_GRANT, why);
		goto done;
	}
	id = json_string_value(json_object_get(cl, "jti"));
	agent = json_string_value(json_object_get(cl, "sub"));
	tool = json_string_value(json_object_get(cl, "tool"));
	if (db_begin(rq->w->db) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	if ((r = ops_redeem_txn(rq, id, agent, tool, now)) != REASON_OK) {
		db_rollback(rq->w->db);
		log_info("redeem %s by %s refused: %s", id,
		    rq->peer->identity, reason_code(r));
		http_reply_error(rq, r, r == R_KILL_SWITCH ? "a kill switch "
		    "covers this grant" : r == E_NOT_PERMITTED ? "this "
		    "identity may not redeem grants for this tool" :
		    r == E_ALREADY_REDEEMED ? "this grant was already "
		    "redeemed" : NULL);
		goto done;
	}
	log_info("grant %s redeemed by %s (%s)", id, rq->peer->identity,
	    tool);
	clock_rfc3339(now, at);
	http_reply_json(rq, 200, json_pack("{ss ss ss ss ss}", "status",
	    "redeemed", "intent_id", id, "tool", tool, "agent", agent,
	    "redeemed_at", at));
 done:
	json_decref(cl);
	json_decref(doc);
}

/* A query number: digits only, at most 18 of them.  0, or -1. */
static int
ops_query_int(const char *s, int64_t *out)
{
	size_t	 i, n = s ? strlen(s) : 0;
	int64_t	 v = 0;

	if (n == 0 || n > 18)
		return (-1);
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return (0);
}

struct audit_page {
	json_t	*items;
	int64_t	 last;
	int	 failed;
};

static int
ops_audit_cb(json_t *rec, void *arg)
{
	struct audit_page	*pg = arg;

	pg->last = json_integer_value(json_object_get(rec, "seq"));
	if (json_array_append(pg->items, rec) == -1)
		pg->failed = 1;
	return (pg->failed);
}

void
api_audit_list(struct request *rq)
{
	struct evkeyvalq	 q;
	struct evkeyval		*kv;
	struct audit_page	 pg;
	int64_t			 after = 0, limit = OPS_AUDIT_LIMIT;
	const char		*msg = NULL;

	if (!ops_require(rq, 0, "read the audit trail"))
		return;
	TAILQ_INIT(&q);
	if (rq->query != NULL && evhttp_parse_query_str(rq->query, &q) == -1)
		msg = "the query string is malformed";
	TAILQ_FOREACH(kv, &q, next) {
		if (msg != NULL)
			break;
		if (strcmp(kv->key, "after") == 0) {
			if (ops_query_int(kv->value, &after) == -1)
				msg = "after must be a sequence number";
		} else if (strcmp(kv->key, "limit") == 0) {
			if (ops_query_int(kv->value, &limit) == -1 ||
			    limit < 1 || limit > OPS_AUDIT_LIMIT_MAX)
				msg = "limit must be 1 to 1000";
		} else
			msg = "unknown query parameter: use after and limit";
	}
	evhttp_clear_headers(&q);
	if (msg != NULL) {
		http_reply_error(rq, E_BAD_REQUEST, msg);
		return;
	}
	pg.items = json_array();
	pg.last = after;
	pg.failed = 0;
	if (pg.items == NULL || audit_each(rq->w->db, after, limit,
	    ops_audit_cb, &pg) == -1 || pg.failed) {
		json_decref(pg.items);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	http_reply_json(rq, 200, json_pack("{so sI}", "items", pg.items,
	    "next_after", (json_int_t)pg.last));
}
