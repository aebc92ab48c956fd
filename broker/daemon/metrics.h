/*
 * metrics: per-thread counters (no shared cache lines on the request path)
 * summed into Prometheus text on demand, with the gauges the database
 * holds (store_stats) read once per scrape.  proto/metrics.md documents
 * every series.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lifecycle.h"
#include "reason.h"
#include "store.h"

#define METRICS_BUCKETS 12

/* Why a TLS handshake did not complete. */
enum metrics_tls {
	METRICS_TLS_REFUSED,	/* we refused it (certificate, limit, ...) */
	METRICS_TLS_CLOSED,	/* the client went away first */
	METRICS_TLS__COUNT
};

/* Which limit answered 429. */
enum metrics_limit {
	METRICS_LIMIT_RATE,	/* rate-limit / rate-burst */
	METRICS_LIMIT_WAITS,	/* held long-polls */
	METRICS_LIMIT__COUNT
};

struct metrics {
	uint64_t	 decisions[3];		/* by enum outcome */
	uint64_t	 errors[REASON__COUNT];
	uint64_t	 latency[METRICS_BUCKETS];	/* cumulative at render */
	uint64_t	 latency_count;
	uint64_t	 latency_sum_us;
	uint64_t	 waits_answered;	/* long-polls answered */
	int64_t		 waits_held;	/* gauge: long-polls held now */
	uint64_t	 views;		/* intent views rendered */
	/* committed lifecycle events (lc_changes) */
	uint64_t	 approvals, rejections, expiries, redemptions;
	uint64_t	 tls_failures[METRICS_TLS__COUNT];
	uint64_t	 rate_limited[METRICS_LIMIT__COUNT];
};

/* What a scrape reads besides the counters. */
struct metrics_gauges {
	struct store_stats	 db;	/* from the database, any process's */
	int64_t			 now;
	const char		*version;	/* toolgate_build_info */
};

void	metrics_decision(struct metrics *m, int outcome);
void	metrics_error(struct metrics *m, enum reason r);
void	metrics_latency(struct metrics *m, uint64_t us);
/* n held long-polls answered; one more or less held (delta +1, -1);
 * one intent view rendered. */
void	metrics_waits(struct metrics *m, size_t n);
void	metrics_held(struct metrics *m, int delta);
void	metrics_view(struct metrics *m);
/* The events a committed transaction recorded (any thread: atomic). */
void	metrics_changes(struct metrics *m, const struct lc_changes *ch);
void	metrics_tls_failure(struct metrics *m, enum metrics_tls why);
void	metrics_rate_limited(struct metrics *m, enum metrics_limit which);
/* Render the sum of n per-thread metrics and the gauges; malloc'd
 * text. */
char	*metrics_render(const struct metrics *const *all, size_t n,
	    const struct metrics_gauges *g, size_t *len);
