/*
 * ratelimit: token buckets per identity in an open-addressing table under
 * one mutex (a bucket update is a few dozen nanoseconds; identities are
 * few).  Tokens are kept in micro-tokens so refill is exact integer math.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"
#include "ratelimit.h"

#define RL_SLOTS	4096	/* power of two; distinct live identities */
#define RL_IDLE_US	(60ULL * 1000000)

struct bucket {
	char		 id[IDENT_MAX];
	uint64_t	 micro_tokens;
	uint64_t	 last_us;
	int		 used;
};

struct ratelimit {
	pthread_mutex_t	 lock;
	uint64_t	 rate, burst;	/* tokens/s, tokens */
	struct bucket	 slot[RL_SLOTS];
};

struct ratelimit *
ratelimit_new(uint32_t rate, uint32_t burst)
{
	struct ratelimit	*rl;

	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return (NULL);
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl);
		return (NULL);
	}
	rl->rate = rate;
	rl->burst = burst ? burst : rate;
	return (rl);
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static uint32_t
rl_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return (h);
}

/* The bucket for id: found, or a free or long-idle slot taken over. */
static struct bucket *
rl_find(struct ratelimit *rl, const char *id, uint64_t now)
{
	uint32_t	 i, h = rl_hash(id);
	struct bucket	*b, *reuse = NULL;

	for (i = 0; i < 16; i++) {
		b = &rl->slot[(h + i) & (RL_SLOTS - 1)];
		if (b->used && strcmp(b->id, id) == 0)
			return (b);
		if (reuse == NULL && (!b->used || now - b->last_us > RL_IDLE_US))
			reuse = b;
	}
	if (reuse == NULL)
		return (NULL);
	snprintf(reuse->id, sizeof(reuse->id), "%s", id);
	reuse->used = 1;
	reuse->micro_tokens = rl->burst * 1000000;
	reuse->last_us = now;
	return (reuse);
}

int
ratelimit_take(struct ratelimit *rl, const char *identity, uint64_t now_us)
{
	struct bucket	*b;
	uint64_t	 cap, refill;
	int		 wait = 0;

	if (rl == NULL || rl->rate == 0)
		return (0);
	cap = rl->burst * 1000000;
	pthread_mutex_lock(&rl->lock);
	if ((b = rl_find(rl, identity, now_us)) == NULL) {
		/* Table region full of live identities: fail open for this
		 * one rather than lock out a legitimate caller. */
		pthread_mutex_unlock(&rl->lock);
		return (0);
	}
	refill = (now_us - b->last_us) * rl->rate;
	b->micro_tokens = b->micro_tokens + refill > cap ? cap :
	    b->micro_tokens + refill;
	b->last_us = now_us;
	if (b->micro_tokens >= 1000000)
		b->micro_tokens -= 1000000;
	else	/* whole seconds until one token, rounded up, not past it */
		wait = (int)((1000000 - b->micro_tokens + rl->rate * 1000000 -
		    1) / (rl->rate * 1000000));
	pthread_mutex_unlock(&rl->lock);
	return (wait);
}
