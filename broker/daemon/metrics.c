/*
 * metrics: counters owned by one thread each (and one broker-wide set
 * for what commits count, from any thread), read by the /metrics handler
 * of any thread with relaxed atomic loads; Prometheus text exposition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const uint64_t bucket_us[METRICS_BUCKETS - 1] = {
	250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000,
	1000000
};
static const char *const outcome_names[3] = { "allow", "pending", "deny" };
static const char *const tls_names[METRICS_TLS__COUNT] = { "refused",
    "closed" };
static const char *const limit_names[METRICS_LIMIT__COUNT] = { "rate",
    "waits" };

#define BUMP(x)	__atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define LOAD(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)

void
metrics_decision(struct metrics *m, int outcome)
{
	if (outcome >= 0 && outcome < 3)
		BUMP(m->decisions[outcome]);
}

void
metrics_error(struct metrics *m, enum reason r)
{
	if ((unsigned)r < REASON__COUNT)
		BUMP(m->errors[r]);
}

void
metrics_latency(struct metrics *m, uint64_t us)
{
	int	 i;

	for (i = 0; i < METRICS_BUCKETS - 1 && us > bucket_us[i]; i++)
		;
	BUMP(m->latency[i]);
	BUMP(m->latency_count);
	__atomic_fetch_add(&m->latency_sum_us, us, __ATOMIC_RELAXED);
}

void
metrics_waits(struct metrics *m, size_t n)
{
	__atomic_fetch_add(&m->waits_answered, n, __ATOMIC_RELAXED);
}

void
metrics_held(struct metrics *m, int delta)
{
	__atomic_fetch_add(&m->waits_held, delta, __ATOMIC_RELAXED);
}

void
metrics_view(struct metrics *m)
{
	BUMP(m->views);
}

void
metrics_changes(struct metrics *m, const struct lc_changes *ch)
{
	__atomic_fetch_add(&m->approvals, ch->approvals, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->rejections, ch->rejections, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->expiries, ch->expiries, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->redemptions, ch->redemptions,
	    __ATOMIC_RELAXED);
}

void
metrics_tls_failure(struct metrics *m, enum metrics_tls why)
{
	if ((unsigned)why < METRICS_TLS__COUNT)
		BUMP(m->tls_failures[why]);
}

void
metrics_rate_limited(struct metrics *m, enum metrics_limit which)
{
	if ((unsigned)which < METRICS_LIMIT__COUNT)
		BUMP(m->rate_limited[which]);
}

static void
metrics_sum(const struct metrics *const *all, size_t n, struct metrics *s)
{
	size_t	 i, j;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < n; i++) {
		for (j = 0; j < 3; j++)
			s->decisions[j] += LOAD(all[i]->decisions[j]);
		for (j = 0; j < REASON__COUNT; j++)
			s->errors[j] += LOAD(all[i]->errors[j]);
		for (j = 0; j < METRICS_BUCKETS; j++)
			s->latency[j] += LOAD(all[i]->latency[j]);
		s->latency_count += LOAD(all[i]->latency_count);
		s->latency_sum_us += LOAD(all[i]->latency_sum_us);
		s->waits_answered += LOAD(all[i]->waits_answered);
		s->views += LOAD(all[i]->views);
		s->waits_held += LOAD(all[i]->waits_held);
		s->approvals += LOAD(all[i]->approvals);
		s->rejections += LOAD(all[i]->rejections);
		s->expiries += LOAD(all[i]->expiries);
		s->redemptions += LOAD(all[i]->redemptions);
		for (j = 0; j < METRICS_TLS__COUNT; j++)
			s->tls_failures[j] += LOAD(all[i]->tls_failures[j]);
		for (j = 0; j < METRICS_LIMIT__COUNT; j++)
			s->rate_limited[j] += LOAD(all[i]->rate_limited[j]);
	}
}

char *
metrics_render(const struct metrics *const *all, size_t n,
    const struct metrics_gauges *g, size_t *len)
{
	struct metrics	 s;
	char		*buf;
	size_t		 cap = 16384, used = 0, j;
	uint64_t	 cum = 0;
	int64_t		 oldest = g->db.oldest_pending_at > 0 ?
			    g->now - g->db.oldest_pending_at : 0;

	metrics_sum(all, n, &s);
	if ((buf = malloc(cap)) == NULL)
		return (NULL);
#define OUT(...) used += (size_t)snprintf(buf + used, \
	    used < cap ? cap - used : 0, __VA_ARGS__)
	OUT("# HELP toolgate_decisions_total Decisions by outcome.\n"
	    "# TYPE toolgate_decisions_total counter\n");
	for (j = 0; j < 3; j++)
		OUT("toolgate_decisions_total{outcome=\"%s\"} %llu\n",
		    outcome_names[j], (unsigned long long)s.decisions[j]);
	OUT("# HELP toolgate_errors_total Error answers by code.\n"
	    "# TYPE toolgate_errors_total counter\n");
	for (j = E_BAD_REQUEST; j < REASON__COUNT; j++)
		OUT("toolgate_errors_total{code=\"%s\"} %llu\n",
		    reason_code((enum reason)j),
		    (unsigned long long)s.errors[j]);
	OUT("# HELP toolgate_request_seconds Request handling time, until the "
	    "answer is sent (a decision's includes its commit; a long-poll is "
	    "counted when held).\n"
	    "# TYPE toolgate_request_seconds histogram\n");
	for (j = 0; j < METRICS_BUCKETS - 1; j++) {
		cum += s.latency[j];
		OUT("toolgate_request_seconds_bucket{le=\"%llu.%06llu\"} %llu\n",
		    (unsigned long long)(bucket_us[j] / 1000000),
		    (unsigned long long)(bucket_us[j] % 1000000),
		    (unsigned long long)cum);
	}
	cum += s.latency[METRICS_BUCKETS - 1];
	OUT("toolgate_request_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "toolgate_request_seconds_sum %llu.%06llu\n"
	    "toolgate_request_seconds_count %llu\n",
	    (unsigned long long)cum,
	    (unsigned long long)(s.latency_sum_us / 1000000),
	    (unsigned long long)(s.latency_sum_us % 1000000),
	    (unsigned long long)s.latency_count);
	OUT("# HELP toolgate_waits_answered_total Long-polls answered.\n"
	    "# TYPE toolgate_waits_answered_total counter\n"
	    "toolgate_waits_answered_total %llu\n"
	    "# HELP toolgate_waits_held Long-polls held now.\n"
	    "# TYPE toolgate_waits_held gauge\n"
	    "toolgate_waits_held %lld\n"
	    "# HELP toolgate_intent_views_total Intent answers rendered (one "
	    "per woken intent and audience, not per long-poll).\n"
	    "# TYPE toolgate_intent_views_total counter\n"
	    "toolgate_intent_views_total %llu\n",
	    (unsigned long long)s.waits_answered,
	    (long long)s.waits_held, (unsigned long long)s.views);
	OUT("# HELP toolgate_approvals_total Approvals counted by this broker "
	    "(each approve call that counted, releasing or not).\n"
	    "# TYPE toolgate_approvals_total counter\n"
	    "toolgate_approvals_total %llu\n"
	    "# HELP toolgate_rejections_total Pending intents rejected by this "
	    "broker (by an approver, a kill switch, or a changed policy).\n"
	    "# TYPE toolgate_rejections_total counter\n"
	    "toolgate_rejections_total %llu\n"
	    "# HELP toolgate_expiries_total Intents this broker expired "
	    "(no approval in time, or not redeemed in the grant window).\n"
	    "# TYPE toolgate_expiries_total counter\n"
	    "toolgate_expiries_total %llu\n"
	    "# HELP toolgate_redemptions_total Grants redeemed through this "
	    "broker.\n"
	    "# TYPE toolgate_redemptions_total counter\n"
	    "toolgate_redemptions_total %llu\n",
	    (unsigned long long)s.approvals, (unsigned long long)s.rejections,
	    (unsigned long long)s.expiries, (unsigned long long)s.redemptions);
	OUT("# HELP toolgate_tls_handshake_failures_total TLS handshakes that "
	    "did not complete, by cause.\n"
	    "# TYPE toolgate_tls_handshake_failures_total counter\n");
	for (j = 0; j < METRICS_TLS__COUNT; j++)
		OUT("toolgate_tls_handshake_failures_total{cause=\"%s\"} "
		    "%llu\n", tls_names[j],
		    (unsigned long long)s.tls_failures[j]);
	OUT("# HELP toolgate_rate_limited_total Requests answered 429, by "
	    "the limit that refused them.\n"
	    "# TYPE toolgate_rate_limited_total counter\n");
	for (j = 0; j < METRICS_LIMIT__COUNT; j++)
		OUT("toolgate_rate_limited_total{limit=\"%s\"} %llu\n",
		    limit_names[j], (unsigned long long)s.rate_limited[j]);
	OUT("# HELP toolgate_pending_intents Intents waiting for approval now "
	    "(the database's: every process's changes).\n"
	    "# TYPE toolgate_pending_intents gauge\n"
	    "toolgate_pending_intents %lld\n"
	    "# HELP toolgate_pending_oldest_age_seconds Age of the oldest "
	    "pending intent (0 when none).\n"
	    "# TYPE toolgate_pending_oldest_age_seconds gauge\n"
	    "toolgate_pending_oldest_age_seconds %lld\n"
	    "# HELP toolgate_pending_past_half_ttl Pending intents older than "
	    "half their approval TTL (counted up to %d).\n"
	    "# TYPE toolgate_pending_past_half_ttl gauge\n"
	    "toolgate_pending_past_half_ttl %lld\n"
	    "# HELP toolgate_killswitches_engaged Kill switches engaged now.\n"
	    "# TYPE toolgate_killswitches_engaged gauge\n"
	    "toolgate_killswitches_engaged %lld\n",
	    (long long)g->db.pending, (long long)(oldest > 0 ? oldest : 0),
	    STORE_PAST_HALF_MAX, (long long)g->db.past_half_ttl,
	    (long long)g->db.killswitches);
	OUT("# HELP toolgate_build_info The toolgated version (always 1).\n"
	    "# TYPE toolgate_build_info gauge\n"
	    "toolgate_build_info{version=\"%s\"} 1\n", g->version);
#undef OUT
	if (used >= cap) {
		free(buf);
		return (NULL);
	}
	*len = used;
	return (buf);
}
