/*
 * rows: the typed records the store reads and writes — an intent with its
 * approvals, a kill switch — and the one name table of every enum kept in
 * them (intent status, decision, kill switch scope).  Strings in a row are
 * owned by it (row_clear frees them); nothing here knows SQL or JSON.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "reason.h"

#define INTENT_ID_LEN	35	/* "in_" and 32 lowercase hex digits */

/* Where an intent stands now (CONTRACT §3); names in rows.c. */
enum intent_status {
	ST_PENDING,
	ST_ALLOWED,
	ST_DENIED,
	ST_REJECTED,
	ST_EXPIRED,
	ST__COUNT
};

const char	*intent_status_name(enum intent_status st);
/* 0 and *out, or -1 for a name that is not a status. */
int		 intent_status_parse(const char *s, enum intent_status *out);
/* The status a fresh decision leaves an intent in. */
enum intent_status intent_status_of(enum outcome o);

/* "allow" | "pending" | "deny" (the intent's decision field). */
const char	*outcome_name(enum outcome o);
int		 outcome_parse(const char *s, enum outcome *out);

/* A fresh id: "in_", 48 bits of milliseconds, 80 random bits, in hex.
 * 0, or -1 when no randomness is available. */
int	intent_id_new(char out[INTENT_ID_LEN + 1]);
/* 1 if s has the shape of an intent id. */
int	intent_id_valid(const char *s);

struct approval_row {
	char		*by;
	int64_t		 at;
	char		*comment;	/* or NULL */
};

/* One intent.  Times are unix seconds, 0 = not set. */
struct intent_row {
	char		 id[INTENT_ID_LEN + 1];
	char		*agent;
	char		*jti;
	char		*tool;
	char		*args;		/* canonical JSON object text, or NULL */
	char		*args_sha256;	/* set when args were not kept */
	char		*amount_value;	/* canonical decimal text, or NULL */
	char		*amount_currency;
	char		*agent_reason;	/* the intent's reason claim */
	enum intent_status status;
	enum outcome	 decision;	/* what the policy said on arrival */
	enum reason	 reason;	/* the decision's R_* code */
	char		*reason_text;	/* human text, follows the status */
	int64_t		 policy_version;
	char		*rule;		/* JSON object text, or NULL */
	int		 approvals_required;
	char		*approver_roles;	/* JSON array text */
	char		 intent_sha256[65];
	int64_t		 created_at;
	int64_t		 expires_at;
	int64_t		 decided_at;
	int64_t		 redeemed_at;
	char		*redeemed_by;
	char		*closed_by;	/* who rejected it */
	char		*closed_reason;
	char		*limit_json;	/* the limit the decision named
					 * (JSON object text), or NULL */
	struct approval_row *approvals;	/* in the order counted */
	size_t		 n_approvals;
};

/* Free what r owns and zero it (r may be zeroed already). */
void	intent_row_clear(struct intent_row *r);
/* Append an approval (strings copied).  0 or -1. */
int	intent_row_add_approval(struct intent_row *r, const char *by,
	    int64_t at, const char *comment);

/* Kill switch scopes (CONTRACT §4). */
enum ks_scope { KS_GLOBAL, KS_AGENT, KS_TOOL };

const char	*ks_scope_name(enum ks_scope s);
/* Parse "global" | "agent" | "tool".  0 or -1. */
int		 ks_scope_parse(const char *s, enum ks_scope *out);

/* One kill switch; reset_at 0 while engaged. */
struct ks_row {
	int64_t		 id;
	enum ks_scope	 scope;
	char		*target;	/* NULL for global */
	char		*reason;
	char		*by;
	int64_t		 at;
	char		*reset_by;
	int64_t		 reset_at;
	char		*reset_reason;
};

void	ks_row_clear(struct ks_row *r);
