/*
 * limits_api: reading what the limits hold and what the policy would
 * say.  GET /v1/limits pages usage rows (core usage_list) — an agent its
 * own, approvers and operators anyone's; POST /v1/policy/explain reads
 * the call as an intent's claims are read (intent_call_parse) and
 * answers the lifecycle's lc_explain.  Nothing here writes: no
 * transaction, no intent, no audit record, no usage, no jti.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "input.h"
#include "limits_api.h"
#include "log.h"

#define LIMITS_PAGE_DEFAULT	100
#define LIMITS_PAGE_MAX		1000
#define LIMITS_NAME_MAX		256	/* a principal's name, bytes */

/* 1 if who may see everyone's usage (approvers and operators). */
static int
limits_staff(const struct decider *d, const char *who)
{
	return (d->policy != NULL && (policy_is_operator(d->policy, who) ||
	    policy_is_approver(d->policy, who)));
}

void
api_limits_list(struct request *rq)
{
	static const char *const keys[] = { "principal", "limit", "cursor",
	    NULL };
	struct decider	*d = &rq->w->dec;
	struct evkeyvalq q;
	const char	*who = rq->peer->identity, *principal;
	int64_t		 limit, cursor, next = 0;
	json_t		*items;
	char		 nextc[24];

	if (input_query(rq, keys, &q) == -1 ||
	    input_query_int(rq, &q, "limit", 1, LIMITS_PAGE_MAX,
	    LIMITS_PAGE_DEFAULT, "limit must be 1 to 1000", &limit) == -1 ||
	    input_query_int(rq, &q, "cursor", 0, INT64_MAX, 0, "cursor must "
	    "be a next_cursor from an earlier page", &cursor) == -1)
		goto done;
	principal = evhttp_find_header(&q, "principal");
	if (principal != NULL && (principal[0] == '\0' ||
	    strlen(principal) > LIMITS_NAME_MAX)) {
		http_reply_error(rq, E_BAD_REQUEST, "principal must be a "
		    "principal's name (1 to 256 bytes)");
		goto done;
	}
	if (decider_refresh(d) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	/* An agent sees its own usage: counters keyed by its name. */
	if (!limits_staff(d, who)) {
		if (principal != NULL && strcmp(principal, who) != 0) {
			http_reply_error(rq, E_FORBIDDEN, "an agent sees only "
			    "its own usage: leave out principal");
			goto done;
		}
		principal = who;
	}
	if ((items = json_array()) == NULL ||
	    usage_list(rq->w->store, d->policy, principal, clock_now(),
	    cursor, limit, items, &next) == -1) {
		json_decref(items);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		goto done;
	}
	snprintf(nextc, sizeof(nextc), "%lld", (long long)next);
	http_reply_json(rq, 200, json_pack("{so so}", "items", items,
	    "next_cursor", next != 0 ? json_string(nextc) : json_null()));
 done:
	evhttp_clear_headers(&q);
}

void
api_policy_explain(struct request *rq)
{
	static const char *const keys[] = { "principal", "tool", "args",
	    "amount", NULL };
	struct decider		*d = &rq->w->dec;
	struct policy_call	 call;
	struct intent		 in;
	const char		*principal, *body, *msg = NULL;
	json_t			*doc, *answer;
	size_t			 len;
	enum reason		 r;

	if ((doc = input_json(rq, keys, INPUT_BODY_MAX, 0)) == NULL)
		return;
	if (input_string(rq, doc, "principal", LIMITS_NAME_MAX,
	    INPUT_REQUIRED | INPUT_NOT_BLANK, &principal) == -1)
		goto done;
	/* The call is read as an intent's claims are: the same rules. */
	body = http_body(rq, &len);
	if ((r = intent_call_parse(body ? body : "", len, &in, &msg)) !=
	    REASON_OK) {
		http_reply_error(rq, r, msg);
		goto done;
	}
	memset(&call, 0, sizeof(call));
	call.principal = principal;
	call.tool = in.tool;
	call.args = in.args;
	call.args_json = in.args_json;
	call.args_json_len = in.args_json_len;
	call.amount = in.has_amount ? &in.amount : NULL;
	call.amount_text = in.has_amount ? in.amount_text : NULL;
	answer = decider_refresh(d) == -1 ? NULL : lc_explain(d, &call,
	    clock_now());
	intent_clear(&in);
	if (answer == NULL)
		http_reply_error(rq, E_UNAVAILABLE, NULL);
	else
		http_reply_json(rq, 200, answer);
 done:
	json_decref(doc);
}
