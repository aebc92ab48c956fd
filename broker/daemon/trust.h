/*
 * trust: the daemon's side of audit_trust.h — the start-up verification
 * and its anchor file, the periodic checks while nothing is appended,
 * GET /v1/audit/checkpoint, and the metrics of a break.  What a break
 * refuses is the lifecycle's: this file only runs the checks and says
 * what they found.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "http.h"
#include "store.h"

struct broker;
struct worker;

/*
 * Verify the chain before the first request (from the anchor, the cut or
 * genesis) and write the anchor.  A break does not stop the start: the
 * broker then answers 503 to every decision.  0, or -1 with err (the
 * database cannot be read).
 */
int	trust_start(struct broker *b, char *err, size_t errlen);
/* Worker 0, every second: a head check; the policy and the anchor less
 * often. */
void	trust_tick(struct worker *w);
/* After the last request: a last head check and the anchor. */
void	trust_stop(struct broker *b);

#define TRUST_METRICS_MAX	1024	/* bytes trust_metrics may add */

/* Prometheus lines of the trust (toolgate_audit_*), appended to buf of
 * cap bytes at *used. */
void	trust_metrics(struct broker *b, char *buf, size_t cap, size_t *used);

/*
 * A signed checkpoint of the newest verified record, read through s (one
 * of the caller's thread), by the grant signing key: the compact JWS
 * (malloc'd) and its claims in *cp, or NULL when the chain is broken (or
 * on error).  For GET /v1/audit/checkpoint and for anyone who sends
 * checkpoints off the host (audit.checkpoint events).
 */
char	*trust_checkpoint(struct broker *b, struct store *s, int64_t now,
	    struct checkpoint *cp);

/* GET /v1/audit/checkpoint (operator). */
void	api_audit_checkpoint(struct request *rq);
