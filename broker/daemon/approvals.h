/*
 * approvals: the human-approval queue (CONTRACT §4) — list, approve,
 * reject — and the sweeper that expires what nobody decided in time.
 */
#pragma once

#include "http.h"

struct worker;

void	api_approvals_list(struct request *rq);
void	api_approve(struct request *rq);
void	api_reject(struct request *rq);
/* Expire intents past their deadline (one worker, 1 Hz). */
void	approvals_sweep(struct worker *w);
