/*
 * rows: name tables and the memory of typed rows.  Each enum has exactly
 * one table here; the store writes and reads these names, the HTTP edge
 * shows them, and nothing else spells them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "rows.h"

static const char *const status_names[ST__COUNT] = {
	[ST_PENDING] = "pending",
	[ST_ALLOWED] = "allowed",
	[ST_DENIED] = "denied",
	[ST_REJECTED] = "rejected",
	[ST_EXPIRED] = "expired",
};

static const char *const outcome_names[] = {
	[OUTCOME_ALLOW] = "allow",
	[OUTCOME_PENDING] = "pending",
	[OUTCOME_DENY] = "deny",
};
#define N_OUTCOMES (sizeof(outcome_names) / sizeof(outcome_names[0]))

static const char *const scope_names[] = {
	[KS_GLOBAL] = "global", [KS_AGENT] = "agent", [KS_TOOL] = "tool"
};
#define N_SCOPES (sizeof(scope_names) / sizeof(scope_names[0]))

/* Index of s in names[n], or -1. */
static int
name_index(const char *const *names, size_t n, const char *s)
{
	size_t	 i;

	if (s == NULL)
		return (-1);
	for (i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return ((int)i);
	return (-1);
}

const char *
intent_status_name(enum intent_status st)
{
	return ((unsigned)st < ST__COUNT ? status_names[st] : "unknown");
}

int
intent_status_parse(const char *s, enum intent_status *out)
{
	int	 i = name_index(status_names, ST__COUNT, s);

	if (i < 0)
		return (-1);
	*out = (enum intent_status)i;
	return (0);
}

enum intent_status
intent_status_of(enum outcome o)
{
	switch (o) {
	case OUTCOME_ALLOW:
		return (ST_ALLOWED);
	case OUTCOME_PENDING:
		return (ST_PENDING);
	case OUTCOME_DENY:
		break;
	}
	return (ST_DENIED);
}

const char *
outcome_name(enum outcome o)
{
	return ((unsigned)o < N_OUTCOMES ? outcome_names[o] : "deny");
}

int
outcome_parse(const char *s, enum outcome *out)
{
	int	 i = name_index(outcome_names, N_OUTCOMES, s);

	if (i < 0)
		return (-1);
	*out = (enum outcome)i;
	return (0);
}

const char *
ks_scope_name(enum ks_scope s)
{
	return ((unsigned)s < N_SCOPES ? scope_names[s] : "unknown");
}

int
ks_scope_parse(const char *s, enum ks_scope *out)
{
	int	 i = name_index(scope_names, N_SCOPES, s);

	if (i < 0)
		return (-1);
	*out = (enum ks_scope)i;
	return (0);
}

int
intent_id_new(char out[INTENT_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char	 rnd[16];
	struct timespec	 ts;
	uint64_t	 ms;
	size_t		 i;

	/*
	 * 48 bits of milliseconds, then 80 random bits: ids still cannot be
	 * guessed, but new rows land at the end of the id B-trees instead of
	 * on a random page each, so a group commit dirties a few pages
	 * rather than one per decision (and a big table stays cheap).
	 */
	if (RAND_bytes(rnd + 6, sizeof(rnd) - 6) != 1)
		return (-1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (i = 0; i < 6; i++)
		rnd[i] = (unsigned char)(ms >> (40 - 8 * i));
	memcpy(out, "in_", 3);
	for (i = 0; i < sizeof(rnd); i++) {
		out[3 + 2 * i] = hex[rnd[i] >> 4];
		out[4 + 2 * i] = hex[rnd[i] & 15];
	}
	out[INTENT_ID_LEN] = '\0';
	return (0);
}

int
intent_id_valid(const char *s)
{
	size_t	 i;

	if (s == NULL || strlen(s) != INTENT_ID_LEN ||
	    strncmp(s, "in_", 3) != 0)
		return (0);
	for (i = 3; i < INTENT_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return (0);
	return (1);
}

void
intent_row_clear(struct intent_row *r)
{
	size_t	 i;

	free(r->agent);
	free(r->jti);
	free(r->tool);
	free(r->args);
	free(r->args_sha256);
	free(r->amount_value);
	free(r->amount_currency);
	free(r->agent_reason);
	free(r->reason_text);
	free(r->rule);
	free(r->approver_roles);
	free(r->redeemed_by);
	free(r->closed_by);
	free(r->closed_reason);
	free(r->limit_json);
	for (i = 0; i < r->n_approvals; i++) {
		free(r->approvals[i].by);
		free(r->approvals[i].comment);
	}
	free(r->approvals);
	memset(r, 0, sizeof(*r));
}

int
intent_row_add_approval(struct intent_row *r, const char *by, int64_t at,
    const char *comment)
{
	struct approval_row	*v, *a;

	if ((v = reallocarray(r->approvals, r->n_approvals + 1,
	    sizeof(*v))) == NULL)
		return (-1);
	r->approvals = v;
	a = &v[r->n_approvals];
	a->at = at;
	a->by = strdup(by);
	a->comment = comment ? strdup(comment) : NULL;
	if (a->by == NULL || (comment != NULL && a->comment == NULL)) {
		free(a->by);
		free(a->comment);
		return (-1);
	}
	r->n_approvals++;
	return (0);
}

void
ks_row_clear(struct ks_row *r)
{
	free(r->target);
	free(r->reason);
	free(r->by);
	free(r->reset_by);
	free(r->reset_reason);
	memset(r, 0, sizeof(*r));
}
