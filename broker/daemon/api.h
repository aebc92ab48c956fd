/*
 * api: the agent's endpoints (CONTRACT §3: intents, JWKS), health and
 * metrics, and the operator's policy endpoints (§4).
 */
#pragma once

#include "http.h"

void	api_intent_post(struct request *rq);
void	api_intent_get(struct request *rq);
void	api_jwks(struct request *rq);
void	api_healthz(struct request *rq);
void	api_metrics(struct request *rq);
void	api_policy_get(struct request *rq);
void	api_policy_put(struct request *rq);
void	api_policy_history(struct request *rq);
