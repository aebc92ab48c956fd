/*
 * ops: placeholder until the kill switch, redemption and audit endpoints
 * land.
 */
#include "server.h"

void api_killswitch_get(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_killswitch_trip(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_killswitch_reset(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_grant_redeem(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_audit_list(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
