/*
 * api: the handlers of CONTRACT §3 and the policy endpoints of §4.  The
 * decision path is: verify the intent (intent.c), then in one BEGIN
 * IMMEDIATE transaction refresh the policy snapshot, claim (iss, jti),
 * evaluate, store the intent and its audit record, commit — and only then
 * answer.  Nothing here parses JWS or policy text itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "log.h"
#include "server.h"
#include "store.h"

void
api_answer_job(struct job *job)
{
	struct request	 rq = { .req = job->req, .w = job->w };
	struct decision	*d = &job->d;
	json_t		*view;

	if (job->result != REASON_OK) {
		/* the policy's own words for a 400 it found (decide_in_tx) */
		http_reply_error(&rq, job->result, job->result == d->ev.error &&
		    d->ev.message[0] ? d->ev.message : NULL);
		return;
	}
	metrics_decision(&rq.w->metrics, (int)d->ev.outcome);
	log_info("decision %s: %s %s -> %s (%s)", d->rec.id, d->rec.agent,
	    d->rec.tool, d->rec.status, d->rec.reason_code);
	view = store_intent_json(&d->rec);
	if (view == NULL || (d->ev.outcome == OUTCOME_ALLOW &&
	    grant_attach(&rq.w->broker->grant, view, job->now) == -1)) {
		json_decref(view);
		http_reply_error(&rq, E_INTERNAL, "the decision is recorded "
		    "but its answer could not be built: GET it");
		return;
	}
	http_reply_json(&rq, reason_status(d->ev.reason), view);
}

void
api_intent_post(struct request *rq)
{
	struct job	*job;
	const char	*body, *msg = NULL;
	size_t		 len;
	enum reason	 r;

	if (!http_content_type_is(rq, "application/jose")) {
		http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
		    "POST /v1/intents takes Content-Type: application/jose");
		return;
	}
	body = http_body(rq, &len);
	if (len > INTENT_MAX_BYTES) {
		http_reply_error(rq, E_PAYLOAD_TOO_LARGE,
		    "an intent is at most 64 KiB");
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return;
	}
	job->now = clock_now();
	r = intent_verify(body ? body : "", len, &rq->peer->key,
	    rq->peer->identity, rq->w->broker->audience, job->now, &job->in,
	    &msg);
	if (r != REASON_OK) {
		free(job);
		log_info("intent refused: %s: %s (%s)", rq->peer->identity,
		    reason_code(r), msg);
		http_reply_error(rq, r, msg);
		return;
	}
	/* Answered from commit_done_cb once the decision is committed. */
	job->w = rq->w;
	job->req = rq->req;
	commit_submit(rq->w->broker, job);
}

static int
api_id_valid(const char *id)
{
	size_t	 i;

	if (id == NULL || strlen(id) != 35 || strncmp(id, "in_", 3) != 0)
		return (0);
	for (i = 3; i < 35; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return (0);
	return (1);
}

/* Agents see their own intents; approvers and operators see all. */
static int
api_may_read(struct worker *w, const char *who, json_t *view)
{
	if (strcmp(json_string_value(json_object_get(view, "agent")),
	    who) == 0)
		return (1);
	if (api_policy_refresh(w) == -1 || w->policy == NULL)
		return (0);
	return (policy_is_approver(w->policy, who) ||
	    policy_is_operator(w->policy, who));
}

void
api_intent_answer(struct request *rq, json_t *view, int is_agent)
{
	/* Each answer to the agent carries a freshly signed grant while it
	 * can still be redeemed: a late approval still gives a full minute.
	 * Approvers and operators read the intent, never its grant. */
	if (is_agent && strcmp(json_string_value(json_object_get(view,
	    "status")), "allowed") == 0 &&
	    json_object_get(view, "redeemed_at") == NULL &&
	    grant_attach(&rq->w->broker->grant, view, clock_now()) == -1) {
		json_decref(view);
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	http_reply_json(rq, 200, view);
}

/* ?wait=N (0..60) or -1 when malformed. */
static int
api_wait_seconds(const char *query)
{
	struct evkeyvalq	 q;
	const char		*v;
	char			*end;
	long			 n = 0;

	if (query == NULL)
		return (0);
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) != 0)
		return (-1);
	if ((v = evhttp_find_header(&q, "wait")) != NULL) {
		n = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || n < 0 ||
		    n > WAIT_MAX_SECONDS)
			n = -1;
	}
	evhttp_clear_headers(&q);
	return ((int)n);
}

void
api_intent_get(struct request *rq)
{
	json_t	*view = NULL;
	int	 found, is_agent, wait = api_wait_seconds(rq->query);

	if (wait < 0) {
		http_reply_error(rq, E_BAD_REQUEST, "wait must be 0..60 "
		    "seconds");
		return;
	}
	found = api_id_valid(rq->id) ?
	    store_intent_get(rq->w->db, rq->id, &view) : 0;
	if (found == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	if (found == 0 || !api_may_read(rq->w, rq->peer->identity, view)) {
		json_decref(view);
		http_reply_error(rq, E_NOT_FOUND, "no such intent");
		return;
	}
	is_agent = strcmp(json_string_value(json_object_get(view, "agent")),
	    rq->peer->identity) == 0;
	if (wait > 0 && strcmp(json_string_value(json_object_get(view,
	    "status")), "pending") == 0) {
		json_decref(view);
		if (wait_hold(rq, rq->id, wait, is_agent) == -1) {
			evhttp_add_header(evhttp_request_get_output_headers(
			    rq->req), "Retry-After", "1");
			http_reply_error(rq, E_RATE_LIMITED, "too many "
			    "waiting requests; retry later");
		}
		return;
	}
	api_intent_answer(rq, view, is_agent);
}

void
api_jwks(struct request *rq)
{
	const char	*jwks = rq->w->broker->grant.jwks;

	http_reply_text(rq, 200, "application/jwk-set+json", jwks,
	    strlen(jwks));
}

void
api_healthz(struct request *rq)
{
	http_reply_json(rq, 200, json_pack("{ss}", "status", "ok"));
}

void
api_metrics(struct request *rq)
{
	const struct metrics	*all[SERVER_MAX_THREADS];
	struct broker		*b = rq->w->broker;
	char			*text;
	size_t			 len;
	int			 i;

	for (i = 0; i < b->nworkers; i++)
		all[i] = &b->workers[i].metrics;
	if ((text = metrics_render(all, (size_t)b->nworkers, &len)) == NULL) {
		http_reply_error(rq, E_INTERNAL, NULL);
		return;
	}
	http_reply_text(rq, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

static int
api_require_operator(struct request *rq)
{
	if (api_policy_refresh(rq->w) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return (0);
	}
	if (rq->w->policy == NULL ||
	    !policy_is_operator(rq->w->policy, rq->peer->identity)) {
		http_reply_error(rq, E_FORBIDDEN, "only an operator may "
		    "read or change the policy");
		return (0);
	}
	return (1);
}

void
api_policy_get(struct request *rq)
{
	int64_t	 version;
	char	*body = NULL, sha[65];
	size_t	 len = 0;
	json_t	*doc;

	if (!api_require_operator(rq))
		return;
	if (store_policy_current(rq->w->db, &version, &body, &len) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	canon_sha256_hex(body, len, sha);
	doc = json_loadb(body, len, 0, NULL);
	free(body);
	http_reply_json(rq, 200, json_pack("{sI ss so}", "version",
	    (json_int_t)version, "sha256", sha, "policy",
	    doc ? doc : json_null()));
}

void
api_policy_put(struct request *rq)
{
	struct policy	*p;
	json_t		*problems = NULL;
	const char	*body;
	size_t		 len;
	int64_t		 version;
	char		 sha[65];

	if (!api_require_operator(rq))
		return;
	if (!http_content_type_is(rq, "application/json")) {
		http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
		    "PUT /v1/policy takes Content-Type: application/json");
		return;
	}
	body = http_body(rq, &len);
	if ((p = policy_parse(body ? body : "", len, &problems)) == NULL) {
		metrics_error(&rq->w->metrics, E_INVALID_POLICY);
		http_reply_json(rq, 400, json_pack("{ss ss so}", "error",
		    reason_code(E_INVALID_POLICY), "message", "the policy is "
		    "invalid; nothing was applied", "problems",
		    problems ? problems : json_array()));
		return;
	}
	policy_free(p);
	if (store_policy_apply(rq->w->db, body, len, rq->peer->identity,
	    &version) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	canon_sha256_hex(body, len, sha);
	log_info("policy version %lld applied by %s", (long long)version,
	    rq->peer->identity);
	http_reply_json(rq, 200, json_pack("{sI ss}", "version",
	    (json_int_t)version, "sha256", sha));
}
