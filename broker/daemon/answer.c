/*
 * answer: intent rows into answers.  The view is built here and nowhere
 * else, so POST and GET answers, woken long-polls and the approval queue
 * cannot differ; whether it carries a grant is the lifecycle's answer
 * (lc_may_grant), never decided here.
 */
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "broker.h"
#include "clock.h"
#include "jsonw.h"
#include "log.h"

static json_t *
answer_time(int64_t t)
{
	char	 buf[RFC3339_LEN];

	clock_rfc3339(t, buf);
	return (json_string(buf));
}

static json_t *
answer_text(const char *s)
{
	return (s ? json_string(s) : json_null());
}

/* Stored JSON text back to a value; the text was written by us. */
static json_t *
answer_stored(const char *text, json_t *fallback)
{
	json_t	*v = text ? json_loads(text, 0, NULL) : NULL;

	if (v == NULL)
		return (fallback);
	json_decref(fallback);
	return (v);
}

static json_t *
answer_approvals(const struct intent_row *r)
{
	json_t	*list = json_array();
	size_t	 i;

	for (i = 0; list != NULL && i < r->n_approvals; i++)
		if (json_array_append_new(list, json_pack("{ss so so}",
		    "by", r->approvals[i].by,
		    "at", answer_time(r->approvals[i].at),
		    "comment", answer_text(r->approvals[i].comment))) == -1) {
			json_decref(list);
			return (NULL);
		}
	return (list);
}

static int
answer_optional(json_t *v, const struct intent_row *r)
{
	int	 rc = 0;

	if (r->expires_at != 0 && (r->status == ST_PENDING ||
	    r->status == ST_EXPIRED))
		rc |= json_object_set_new(v, "expires_at",
		    answer_time(r->expires_at));
	if (r->decided_at != 0)
		rc |= json_object_set_new(v, "decided_at",
		    answer_time(r->decided_at));
	if (r->redeemed_at != 0)
		rc |= json_object_set_new(v, "redeemed_at",
		    answer_time(r->redeemed_at));
	if (r->closed_by != NULL)
		rc |= json_object_set_new(v, "closed_by",
		    json_string(r->closed_by));
	if (r->closed_reason != NULL)
		rc |= json_object_set_new(v, "closed_reason",
		    json_string(r->closed_reason));
	if (r->args_sha256 != NULL)
		rc |= json_object_set_new(v, "args_sha256",
		    json_string(r->args_sha256));
	/* the cumulative limit that denied it or asked for approvals */
	if (r->limit_json != NULL)
		rc |= json_object_set_new(v, "limit",
		    answer_stored(r->limit_json, json_null()));
	return (rc);
}

json_t *
answer_view(const struct intent_row *r)
{
	json_t	*v, *amount = json_null();

	if (r->amount_value != NULL && r->amount_currency != NULL) {
		json_decref(amount);
		amount = json_pack("{ss ss}", "value", r->amount_value,
		    "currency", r->amount_currency);
	}
	v = json_pack("{ss ss ss ss ss sI ss ss so so so so sI so so so ss}",
	    "id", r->id,
	    "status", intent_status_name(r->status),
	    "decision", outcome_name(r->decision),
	    "reason_code", reason_code(r->reason),
	    "reason", r->reason_text,
	    "policy_version", (json_int_t)r->policy_version,
	    "agent", r->agent,
	    "tool", r->tool,
	    "args", answer_stored(r->args, json_object()),
	    "amount", amount,
	    "agent_reason", answer_text(r->agent_reason),
	    "created_at", answer_time(r->created_at),
	    "approvals_required", (json_int_t)r->approvals_required,
	    "approvals", answer_approvals(r),
	    "rule", answer_stored(r->rule, json_null()),
	    "approver_roles", answer_stored(r->approver_roles, json_array()),
	    "intent_sha256", r->intent_sha256);
	if (v != NULL && answer_optional(v, r) != 0) {
		json_decref(v);
		return (NULL);
	}
	return (v);
}

/* Add "grant" and "grant_expires_at", signed now from the view's args. */
static int
answer_grant(struct worker *w, json_t *view, const struct intent_row *r,
    int64_t now)
{
	char	*tok, at[RFC3339_LEN];
	int64_t	 exp;

	if ((tok = grant_sign(&w->broker->grant, r, json_object_get(view,
	    "args"), now, &exp)) == NULL) {
		log_warnx("%s: cannot sign grant", __func__);
		return (-1);
	}
	clock_rfc3339(exp, at);
	json_object_set_new(view, "grant", json_string(tok));
	json_object_set_new(view, "grant_expires_at", json_string(at));
	free(tok);
	return (0);
}

enum answer_grant
answer_grant_for(struct worker *w, const struct intent_row *r, int audience,
    int64_t now)
{
	/* Approvers and operators read the intent, never its grant; an
	 * MCP call's grant is its forward's alone (mcp_decide.c), so that
	 * the agent never holds one it could use around the gateway. */
	if (audience != ANSWER_AGENT || r->status != ST_ALLOWED ||
	    r->redeemed_at != 0 || lc_mcp_is_call(r))
		return (GRANT_NONE);
	return (lc_may_grant(&w->dec, r, now) ? GRANT_FRESH : GRANT_WITHHELD);
}

char *
answer_render(struct worker *w, const struct intent_row *r,
    enum answer_grant g, int64_t now, size_t *len)
{
	json_t	*view;
	char	*text;

	if ((view = answer_view(r)) == NULL)
		return (NULL);
	/* Each answer that carries a grant signs it afresh: a late
	 * approval still gives the agent a full minute. */
	if ((g == GRANT_FRESH && answer_grant(w, view, r, now) == -1) ||
	    (g == GRANT_WITHHELD && json_object_set_new(view, "grant",
	    json_null()) == -1)) {
		json_decref(view);
		return (NULL);
	}
	metrics_view(&w->metrics);
	text = jsonw_dump(view, JSONW_PLAIN, len);
	json_decref(view);
	return (text);
}

void
answer_intent(struct request *rq, int status, const struct intent_row *r,
    enum answer_grant g)
{
	char	*text;
	size_t	 len = 0;

	if ((text = answer_render(rq->w, r, g, clock_now(), &len)) == NULL) {
		http_reply_error(rq, E_INTERNAL, "the intent is recorded but "
		    "its answer could not be built: GET it");
		return;
	}
	http_reply_text(rq, status, "application/json", text, len);
	free(text);
}

void
answer_waiters(struct worker *w, const struct intent_row *r,
    const struct wait_reply *rs, size_t n)
{
	struct http_blob	*blob[2] = { NULL, NULL };
	char			*text;
	size_t			 i, len = 0;
	int			 a, tried[2] = { 0, 0 };
	int64_t			 now = clock_now();

	for (i = 0; i < n; i++) {
		a = rs[i].audience == ANSWER_AGENT;
		if (!tried[a]) {
			tried[a] = 1;
			text = answer_render(w, r, answer_grant_for(w, r,
			    rs[i].audience, now), now, &len);
			blob[a] = http_blob_new(text, len);
		}
		if (blob[a] != NULL)
			http_reply_blob(w, rs[i].req, 200, blob[a]);
		else
			http_reply_error_to(w, rs[i].req, E_INTERNAL, NULL);
	}
	http_blob_unref(blob[0]);
	http_blob_unref(blob[1]);
}
