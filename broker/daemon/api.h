/*
 * api: the agent's endpoints (CONTRACT §3: intents, JWKS), health and
 * metrics, and the operator's policy endpoints (§4).
 */
#pragma once

#include "http.h"

void	api_intent_post(struct request *rq);
void	api_intent_get(struct request *rq);
/* GET /v1/jwks: Cache-Control max-age, in seconds (rotation waits it). */
#define JWKS_MAX_AGE	300
void	api_jwks(struct request *rq);
void	api_healthz(struct request *rq);
void	api_metrics(struct request *rq);
void	api_policy_get(struct request *rq);
void	api_policy_put(struct request *rq);
void	api_policy_history(struct request *rq);
