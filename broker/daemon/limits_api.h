/*
 * limits_api: the endpoints of CONTRACT §8.3-§8.4 — the usage of
 * cumulative limits (GET /v1/limits) and what the policy would answer a
 * call (POST /v1/policy/explain).  Both only read.
 */
#pragma once

#include "http.h"

void	api_limits_list(struct request *rq);
void	api_policy_explain(struct request *rq);
