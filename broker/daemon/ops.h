/*
 * ops: the operator's and the tool's endpoints of CONTRACT §3-§4 — kill
 * switch status, trip and reset, single-use grant redemption, and the
 * audit trail.
 */
#pragma once

#include "http.h"

void	api_killswitch_get(struct request *rq);
void	api_killswitch_trip(struct request *rq);
void	api_killswitch_reset(struct request *rq);
void	api_grant_redeem(struct request *rq);
void	api_audit_list(struct request *rq);
