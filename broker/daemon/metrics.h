/*
 * metrics: per-thread counters (no shared cache lines on the request path)
 * summed into Prometheus text on demand.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "reason.h"

#define METRICS_BUCKETS 12

struct metrics {
	uint64_t	 decisions[3];		/* by enum outcome */
	uint64_t	 errors[REASON__COUNT];
	uint64_t	 latency[METRICS_BUCKETS];	/* cumulative at render */
	uint64_t	 latency_count;
	uint64_t	 latency_sum_us;
	uint64_t	 waits_answered;	/* long-polls answered */
	int64_t		 waits_held;	/* gauge: long-polls held now */
	uint64_t	 views;		/* intent views rendered */
};

void	metrics_decision(struct metrics *m, int outcome);
void	metrics_error(struct metrics *m, enum reason r);
void	metrics_latency(struct metrics *m, uint64_t us);
/* n held long-polls answered; one more or less held (delta +1, -1);
 * one intent view rendered. */
void	metrics_waits(struct metrics *m, size_t n);
void	metrics_held(struct metrics *m, int delta);
void	metrics_view(struct metrics *m);
/* Render the sum of n per-thread metrics; malloc'd text. */
char	*metrics_render(const struct metrics *const *all, size_t n,
	    size_t *len);
