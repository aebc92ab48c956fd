/*
 * approvals: placeholder until the approval queue lands.
 */
#include "server.h"

void api_approvals_list(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_approve(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
void api_reject(struct request *rq) { http_reply_error(rq, E_NOT_FOUND, NULL); }
