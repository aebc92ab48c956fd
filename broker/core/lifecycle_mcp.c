/*
 * lifecycle_mcp: the MCP gateway's tools/call (CONTRACT §9) as lifecycle
 * transitions — the call joins the open intent of the same call or is
 * decided like an intent (lc_decide), an allowed one is redeemed by its
 * forward in the same transaction, and the forward's outcome is audited.
 * The hash that names "the same call" is here too, so that the decision
 * and the join can never disagree about it.  No HTTP and no MCP protocol:
 * the daemon's mcp_decide.c drives this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "lifecycle_impl.h"
#include "log.h"

int
lc_mcp_call_sha256(const char *agent, const char *tool, json_t *args,
    char out[65])
{
	json_t	*call;
	char	*text;

	call = json_pack("{so ss ss}", "args", args != NULL ?
	    json_incref(args) : json_object(), "iss", agent, "tool", tool);
	if (call == NULL || (text = canon_dump(call)) == NULL) {
		json_decref(call);
		return (-1);
	}
	canon_sha256_hex(text, strlen(text), out);
	free(text);
	json_decref(call);
	return (0);
}

int
lc_mcp_intent(struct intent *out, const char *agent, const char *tool,
    json_t *args, const char *args_json, size_t args_json_len, int64_t now)
{
	memset(out, 0, sizeof(*out));
	out->iss = strdup(agent);
	out->tool = strdup(tool);
	out->args = args != NULL ? json_incref(args) : NULL;
	if (args_json != NULL && (out->args_json = strndup(args_json,
	    args_json_len)) != NULL)
		out->args_json_len = args_json_len;
	/* No JWS, so nothing to replay: lc_mcp_decide makes the jti. */
	out->iat = out->exp = now;
	out->fresh_jti = 1;
	if (out->iss == NULL || out->tool == NULL || (args_json != NULL &&
	    out->args_json == NULL) || lc_mcp_call_sha256(agent, tool, args,
	    out->payload_sha256) == -1) {
		intent_clear(out);
		return (-1);
	}
	return (0);
}

int
lc_mcp_is_call(const struct intent_row *r)
{
	json_t	*args = NULL;
	char	 sha[65];
	int	 rc;

	if (r->jti == NULL || strncmp(r->jti, LC_MCP_JTI_PREFIX,
	    strlen(LC_MCP_JTI_PREFIX)) != 0)
		return (0);
	/* An intent whose jti an agent chose to look like ours is told
	 * apart by its hash, which is over its JWS payload; anything that
	 * cannot be checked counts as an MCP call (no grant: fail closed). */
	if (r->args != NULL && (args = json_loads(r->args,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return (1);
	rc = lc_mcp_call_sha256(r->agent, r->tool, args, sha) == -1 ||
	    strcmp(sha, r->intent_sha256) == 0;
	json_decref(args);
	return (rc);
}

/*
 * The intent r (locked, in this transaction) stands for the call: note a
 * kill switch that covers it while it is open, and redeem it for the
 * forward when it may be granted now.  A joined intent was read from the
 * database, so its allowing record is checked (lc_may_grant); one decided
 * by this transaction is what the decision just wrote.
 */
static enum reason
lc_mcp_take(struct decider *d, struct intent_row *r, int joined, int64_t now,
    struct lc_mcp_result *res)
{
	enum reason	 rc;

	if ((r->status == ST_PENDING || (r->status == ST_ALLOWED &&
	    r->redeemed_at == 0)) && ks_covers(&d->ks, r->agent, r->tool)) {
		res->killed = 1;
		return (REASON_OK);
	}
	if (joined ? !lc_may_grant(d, r, now) : !lc_grantable(d, r, now))
		return (REASON_OK);
	rc = lc_redeem_apply(d, r->id, LC_ACTOR_BROKER, r->tool, "mcp", now);
	if (rc == E_ALREADY_REDEEMED)
		return (REASON_OK);	/* impossible under the lock */
	if (rc != REASON_OK)
		return (rc);
	free(r->redeemed_by);
	if ((r->redeemed_by = strdup(LC_ACTOR_BROKER)) == NULL)
		return (E_UNAVAILABLE);
	r->redeemed_at = now;
	res->forward = 1;
	return (REASON_OK);
}

/*
 * The open intent id or of the call's hash, loaded under the lock and
 * expired when due: 1 and *r when it can still be joined, 0 when there is
 * none (any more), or -1.
 */
static int
lc_mcp_open(struct decider *d, const struct intent *in, const char *held,
    int64_t now, struct intent_row *r)
{
	struct store	*s = d->store;
	int		 found, expired;

	if (held != NULL)
		found = s->ops->intent_get(s, held, STORE_FOR_UPDATE |
		    STORE_APPROVALS, r);
	else
		found = s->ops->intent_open_call(s, in->iss,
		    in->payload_sha256, r);
	if (found != 1)
		return (found);
	if (lc_expire_touched(d, r, now, &expired) != REASON_OK) {
		intent_row_clear(r);
		return (-1);
	}
	/* A held request learns how its intent ended; a new call does not
	 * join a closed one. */
	if (held != NULL && !(r->status == ST_ALLOWED && r->redeemed_at != 0))
		return (1);
	if (held == NULL && !expired)
		return (1);
	intent_row_clear(r);
	return (0);
}

/*
 * Decide in as a new intent.  Each decision gets a jti of its own: one
 * request may decide twice (its held intent was forwarded by another
 * request), and a jti is claimed once.
 */
static enum reason
lc_mcp_decide(struct decider *d, const struct intent *in, int64_t now,
    struct intent_row *out, char why[POLICY_MESSAGE_MAX])
{
	struct intent	 call = *in;
	char		 id[INTENT_ID_LEN + 1];
	char		 jti[sizeof(LC_MCP_JTI_PREFIX) + INTENT_ID_LEN];

	if (intent_id_new(id) == -1)
		return (E_UNAVAILABLE);
	snprintf(jti, sizeof(jti), "%s%s", LC_MCP_JTI_PREFIX, id);
	call.jti = jti;
	return (lc_decide(d, &call, now, out, why));
}

enum reason
lc_mcp_call(struct decider *d, const struct intent *in, const char *held,
    int64_t now, struct intent_row *out, char why[POLICY_MESSAGE_MAX],
    struct lc_mcp_result *res)
{
	enum reason	 rc;
	int		 found;

	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	if (why != NULL)
		why[0] = '\0';
	/* The held intent first; when another request has forwarded it,
	 * this one is a call of its own again. */
	found = held != NULL ? lc_mcp_open(d, in, held, now, out) : 0;
	if (found == 0)
		found = lc_mcp_open(d, in, NULL, now, out);
	if (found == -1)
		return (E_UNAVAILABLE);
	res->joined = found == 1;
	if (found == 0 && (rc = lc_mcp_decide(d, in, now, out, why)) !=
	    REASON_OK)
		return (rc);
	if ((rc = lc_mcp_take(d, out, res->joined, now, res)) != REASON_OK)
		intent_row_clear(out);
	return (rc);
}

enum reason
lc_mcp_forwarded(struct decider *d, const char *id, const char *outcome,
    const char *detail, int64_t now)
{
	json_t		*det;
	enum reason	 rc;

	if ((det = json_pack("{ss ss}", "outcome", outcome, "detail",
	    detail != NULL ? detail : "")) == NULL)
		return (E_UNAVAILABLE);
	rc = lc_audit(d, now, LC_ACTOR_BROKER, "mcp.forward", id, det);
	json_decref(det);
	return (rc);
}
