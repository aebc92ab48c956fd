/*
 * answer: the one function that turns an intent row into the answer of
 * POST /v1/intents, GET /v1/intents/{id}, a woken long-poll and an item
 * of the approval queue (proto/decision.schema.json): the view, and for
 * the intent's own agent a freshly signed grant while the lifecycle says
 * it may have one ("grant": null while a kill switch stops it).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "rows.h"
#include "wait.h"

#define ANSWER_READER	0	/* approvers, operators: never a grant */
#define ANSWER_AGENT	1	/* the intent's agent */

/* What the view says about a grant. */
enum answer_grant {
	GRANT_NONE,		/* no grant fields (not allowed, redeemed,
				 * or not the agent) */
	GRANT_FRESH,		/* a grant signed now */
	GRANT_WITHHELD		/* "grant": null (a kill switch stops it) */
};

struct worker;

/* The view of r without grant fields (new reference, NULL on ENOMEM). */
json_t	*answer_view(const struct intent_row *r);
/*
 * What audience gets for r at now: the lifecycle's lc_may_grant with w's
 * decider, whose kill switch cache the caller has refreshed.
 */
enum answer_grant answer_grant_for(struct worker *w,
	    const struct intent_row *r, int audience, int64_t now);
/* r's view with grant g, as JSON text (malloc'd, *len), or NULL. */
char	*answer_render(struct worker *w, const struct intent_row *r,
	    enum answer_grant g, int64_t now, size_t *len);
/* Answer rq with status and r's view with grant g. */
void	answer_intent(struct request *rq, int status,
	    const struct intent_row *r, enum answer_grant g);
/* Answer n woken long-polls of r with 200: each audience rendered once
 * (the caller has refreshed w's decider). */
void	answer_waiters(struct worker *w, const struct intent_row *r,
	    const struct wait_reply *rs, size_t n);
