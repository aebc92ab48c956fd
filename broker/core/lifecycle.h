/*
 * lifecycle: the one owner of every change of state.  An intent is born
 * decided (lc_decide) and then only moves through these functions —
 * approve, reject, expire (by the sweeper and on touch: one path),
 * redeem, rejected by a kill switch — and so do kill switches (trip,
 * reset) and policy versions (apply).  Each function runs inside a
 * transaction the caller opened (lc_begin) and closes (lc_finish, or
 * lc_commit / lc_rollback), writes through the store, appends the audit
 * record of what it did, and returns a typed reason; the ids whose status
 * changed are collected in the decider's `changed` list so the daemon can
 * wake every waiter on every thread after the commit, whoever made the
 * change.
 *
 * Results: REASON_OK, or the error the caller answers with.  After
 * E_UNAVAILABLE (storage failed) the transaction must be rolled back; any
 * other result leaves the transaction as it must be committed — nothing
 * written (e.g. E_ALREADY_APPROVED), or a change that stands although the
 * request is refused (an approval refused with E_POLICY_CHANGED has
 * rejected the intent; one refused with E_ALREADY_DECIDED may have
 * expired it).  lc_finish does exactly that.
 *
 * Approve, reject and redeem bring the decider up to date themselves
 * (decider_refresh) inside the transaction; lc_decide expects the caller
 * to have done so, once per batch.
 *
 * No HTTP, no JSON views, no threads: the daemon and toolgatectl --db
 * both drive it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit_trust.h"
#include "intent.h"
#include "killswitch.h"
#include "usage.h"
#include "policy.h"
#include "reason.h"
#include "rows.h"
#include "store.h"

#define LC_GRANT_WINDOW_DEFAULT	3600	/* seconds (config grant-window) */
#define LC_SWEEP_BATCH		100	/* expiries per sweep transaction */

struct outbox_rules;

struct lc_config {
	/* An allowed intent mints grants for this long after it was
	 * allowed; not redeemed by then, it becomes expired. */
	int64_t		 grant_window;
	/* Which sinks want which events (outbox.h); NULL: none. */
	const struct outbox_rules *outbox;
	/* What the lifecycle does not take on trust (audit_trust.h),
	 * shared by the process; borrowed.  NULL (tests, toolgatectl
	 * commands that only narrow): records are not tagged, policies
	 * load as stored, and no grant is ever handed out. */
	struct audit_trust *trust;
};

/* What the current transaction changed, for after the commit. */
struct lc_changes {
	char		(*ids)[INTENT_ID_LEN + 1];	/* status changed */
	size_t		 n, cap;
	int		 overflow;	/* ids lost to ENOMEM: wake everyone */
	int		 killswitch;	/* a switch was tripped or reset */
	int		 policy;	/* a policy version was applied */
	/* audit records of these events written (the daemon's /metrics
	 * counts them once committed) */
	unsigned	 approvals, rejections, expiries, redemptions;
	int		 events;	/* outbox rows were written */
	int		 queue;		/* the approval queue changed */
};

/*
 * Everything a thread needs to decide: its store connection, the policy
 * snapshot and the engaged kill switches, each cached at the store
 * generation it was read at, and the changes of its open transaction.
 * One per thread (worker, commit writer, CLI); never shared.
 */
struct decider {
	struct store		*store;		/* borrowed */
	const char		*name;		/* for logs: "writer", ... */
	struct lc_config	 cfg;
	struct policy		*policy;	/* NULL: none applied */
	int64_t			 policy_version;	/* -1: not loaded */
	struct ks_cache		 ks;
	struct lc_changes	 changed;
	int			 wrote_state;	/* policy/switches this tx */
	struct audit_tx		 atx;		/* this tx's appends */
	struct usage_tx	*limits;	/* usage this tx holds (lazy) */
};

void	decider_init(struct decider *d, struct store *s, const char *name,
	    const struct lc_config *cfg);
/* Frees the snapshot, the cache and the change list; not the store. */
void	decider_deinit(struct decider *d);
/*
 * Bring the policy snapshot and the kill switch cache up to date with the
 * store: one read of the generations when nothing changed.  Inside the
 * transaction whose decisions depend on them.  0 or -1 (fail closed: the
 * caller refuses to decide).
 */
int	decider_refresh(struct decider *d);

/* Open a write transaction and start a new change list.  0 or -1. */
int	lc_begin(struct decider *d);
/* Commit (d->changed then holds what it changed).  0 or -1 (rolled
 * back, change list emptied). */
int	lc_commit(struct decider *d);
void	lc_rollback(struct decider *d);
/* Commit, or roll back after E_UNAVAILABLE, as the rules above say; r
 * is returned, or E_UNAVAILABLE when the commit failed. */
enum reason lc_finish(struct decider *d, enum reason r);

/*
 * Decide a verified intent at time now (after decider_refresh in the same
 * transaction): evaluate against the policy and kill switches (the policy
 * sees the whole call: args, their exact text as signed, the amount
 * claim), claim (iss, jti), store the intent and its "decision" record.
 * The stored amount is the one the policy judged (from args when the
 * deciding rule binds it).  Fills *out (owned; release with
 * intent_row_clear) on REASON_OK.  E_REPLAY (nothing written),
 * E_INVALID_AMOUNT or E_AMOUNT_MISMATCH (the policy refuses the call with
 * a 400: nothing written, the jti not claimed; why, when not NULL, gets
 * the policy's words, "" if none), or E_UNAVAILABLE.
 */
enum reason lc_decide(struct decider *d, const struct intent *in,
	    int64_t now, struct intent_row *out,
	    char why[POLICY_MESSAGE_MAX]);

/* What an approve or reject did. */
struct lc_verdict {
	int			 approvals;	/* counted toward release */
	int			 required;
	enum intent_status	 status;	/* the intent's status after */
};

/*
 * Approve (comment may be NULL) or reject (reason required) intent id as
 * who at time now.  Checked in this order, under the policy in force:
 * E_FORBIDDEN (neither approver nor operator), E_NOT_FOUND,
 * E_SELF_APPROVAL, E_NOT_AN_APPROVER (none of the intent's approver
 * roles), E_KILL_SWITCH_LOCKED, E_ALREADY_DECIDED (not pending, or expired
 * just now: then recorded as expired), E_POLICY_CHANGED (the policy in
 * force no longer allows the call: the intent is rejected, audited),
 * E_NOT_AN_APPROVER (not an approver under the current rule),
 * E_ALREADY_APPROVED.  An approval counts only while its approver still
 * holds an approver role of the current rule, and the current rule's
 * approvals_required applies when it asks for more: never weaker than
 * the policy in force.  Rejecting only narrows: it is checked against
 * the roles the intent was decided with and never re-decided; a blank or
 * over-long reason is E_BAD_REQUEST before anything is read.
 */
enum reason lc_approve(struct decider *d, const char *who, const char *id,
	    const char *comment, int64_t now, struct lc_verdict *out);
enum reason lc_reject(struct decider *d, const char *who, const char *id,
	    const char *reason, int64_t now, struct lc_verdict *out);

/*
 * 1 if r is past its deadline at now: pending beyond expires_at, or
 * allowed, unredeemed and beyond the grant window.
 */
int	lc_is_due(const struct decider *d, const struct intent_row *r,
	    int64_t now);
/*
 * Expire r if it is due (lc_is_due), updating r to what was stored: the
 * on-touch half of expiry.  REASON_OK (expired or not due; *expired says
 * which), or E_UNAVAILABLE.
 */
enum reason lc_expire_touched(struct decider *d, struct intent_row *r,
	    int64_t now, int *expired);
/* The sweeper's half: expire up to LC_SWEEP_BATCH due intents; *n how
 * many.  REASON_OK or E_UNAVAILABLE. */
enum reason lc_expire_due(struct decider *d, int64_t now, size_t *n);

/*
 * Mark the grant for intent id (of agent, for tool) redeemed by who:
 * E_NOT_PERMITTED (who may not redeem tool), R_KILL_SWITCH (a switch
 * covers it), E_ALREADY_REDEEMED (redeemed before, not allowed, or its
 * grant window has closed: then recorded as expired).
 */
enum reason lc_redeem(struct decider *d, const char *who, const char *id,
	    const char *agent, const char *tool, int64_t now);

/*
 * 1 if the agent may be handed a (fresh) grant for r now: allowed, not
 * redeemed, inside the grant window, no kill switch covers it (the
 * decider's cache: refresh it first), and its allowing record is tagged
 * and matches r (audit_trust_grant; never without a trust).
 */
int	lc_may_grant(const struct decider *d, const struct intent_row *r,
	    int64_t now);

/* lc_trip flags */
#define LC_TRIP_REJECT_PENDING	0x1	/* reject the pending intents covered */
#define LC_TRIP_FORCE		0x2	/* even a target the policy lacks */

/* Why a trip was refused: E_BAD_REQUEST and E_UNKNOWN_TARGET. */
struct lc_trip_refusal {
	char		 message[768];	/* says what is wrong and what to do */
	char		 closest[POLICY_MAX_NAME_TEXT];	/* or "" */
};

/*
 * Trip a switch: target and reason as killswitch.h checks them, else
 * E_BAD_REQUEST; an agent that is not a principal of the policy in force
 * (or any agent when none is applied), or a tool pattern no rule of it
 * covers, is E_UNKNOWN_TARGET — a switch that stops nothing must not
 * say it is engaged — unless LC_TRIP_FORCE.  why (may be NULL) says
 * which and names the closest known name.  With LC_TRIP_REJECT_PENDING
 * every pending intent it covers is rejected, each audited; *id gets the
 * switch's id.  The rejected ids are in d->changed.
 */
enum reason lc_trip(struct decider *d, const char *actor, enum ks_scope scope,
	    const char *target, const char *reason, unsigned flags,
	    int64_t now, int64_t *id, struct lc_trip_refusal *why);
/* Reset switch id: E_NOT_FOUND when it is not engaged, E_BAD_REQUEST
 * (*why) for a bad reason. */
enum reason lc_reset(struct decider *d, const char *actor, int64_t id,
	    const char *reason, int64_t now, const char **why);

/*
 * The database side of a prune whose archive is written (audit_prune.h):
 * record cut as the chain's cut and delete the records up to it, the
 * intents that are over with every time before `before` (*intents of
 * them), and the replay rows past their use; audited "audit.prune".
 */
enum reason lc_prune(struct decider *d, const struct audit_cut *cut,
	    int64_t archived, int64_t before, const char *actor, int64_t now,
	    int64_t *intents);

/*
 * What the broker would answer call at now, and why (CONTRACT §8.4): the
 * decision of d's policy and kill switches (the caller refreshes them, or
 * sets a policy of its own, e.g. a file not yet applied), the deciding
 * rule with its tier and each of its conditions, and every limit that
 * applies with its usage in d's store (NULL store: usage unknown).
 * Records nothing — no intent, audit record, usage or jti — and opens no
 * transaction.  A new object (proto/explain.schema.json), or NULL when
 * storage failed or memory ran out.
 */
json_t	*lc_explain(struct decider *d, const struct policy_call *call,
	    int64_t now);

/*
 * Store an already validated policy text as a new version (*version),
 * audited "policy.apply" with its SHA-256 and what changed from the
 * version before (policy_changes) — unless it is byte for byte the newest
 * version: then nothing is stored or audited, *version is that version
 * and d->changed.policy stays 0 (so `policy show > p.json && policy
 * apply p.json` makes no new version).
 */
enum reason lc_policy_apply(struct decider *d, const char *text, size_t len,
	    const char *actor, int64_t now, int64_t *version);

/* --- the MCP gateway (CONTRACT §9; lifecycle_mcp.c) ---------------------- */

/* The jti of an MCP call's intent: this prefix and a fresh intent id. */
#define LC_MCP_JTI_PREFIX	"mcp:"

/*
 * An MCP tools/call of agent as the intent the lifecycle decides: tool
 * "NAME.X", args the call's arguments (borrowed: a reference is taken;
 * NULL reads as {}), args_json their exact text (copied; NULL when
 * absent).  No JWS stands behind it: its jti is left NULL (lc_mcp_call
 * gives each decision a fresh one: LC_MCP_JTI_PREFIX and an intent id, so
 * the replay guard of signed intents is untouched), and its
 * payload_sha256 — the intent's intent_sha256 — is the hash of the call
 * itself (lc_mcp_call_sha256).  0 and *out (intent_clear), or -1.
 */
int	lc_mcp_intent(struct intent *out, const char *agent, const char *tool,
	    json_t *args, const char *args_json, size_t args_json_len,
	    int64_t now);
/*
 * What names "the same call": SHA-256 (hex) of the RFC 8785 text of
 * {"args": args (NULL: {}), "iss": agent, "tool": tool}.  A grant's own
 * sub, tool and args give it back.  0 or -1.
 */
int	lc_mcp_call_sha256(const char *agent, const char *tool, json_t *args,
	    char out[65]);
/* 1 if r is an MCP call's intent: its grant is its forward's alone, never
 * handed to its agent. */
int	lc_mcp_is_call(const struct intent_row *r);

/* What lc_mcp_call did. */
struct lc_mcp_result {
	int	 joined;	/* an open intent of the same call was found */
	int	 forward;	/* redeemed now for the forward: send it, once */
	int	 killed;	/* a kill switch covers the open intent */
};

/*
 * Decide MCP call in (lc_mcp_intent) at now, after decider_refresh in the
 * same transaction.  held: the intent a held request of this call waits
 * on, or NULL.  The call takes held (how it stands now) unless another
 * request has forwarded it meanwhile; else it joins the newest open
 * intent of the same call (intent_open_call: decided pending, not
 * closed, not redeemed; expired first when due); else it is decided like
 * any intent (lc_decide).  When the intent it ends with is allowed and
 * may be granted now (lc_may_grant for a joined one, whose records are
 * read back and checked; one it decided itself is what it just wrote),
 * it is redeemed for the forward in this same
 * transaction (res->forward, audited "redemption" by the broker "via"
 * mcp): each allowed intent reaches an upstream at most once, however
 * many requests carry it.  *out: that intent (owned).  Results as
 * lc_decide's.
 */
enum reason lc_mcp_call(struct decider *d, const struct intent *in,
	    const char *held, int64_t now, struct intent_row *out,
	    char why[POLICY_MESSAGE_MAX], struct lc_mcp_result *res);
/*
 * The forward of MCP intent id is over: outcome ("ok", "tool_error",
 * "failed", "not_sent") and detail (human text, never the tool's result)
 * audited "mcp.forward" by the broker.  REASON_OK or E_UNAVAILABLE.
 */
enum reason lc_mcp_forwarded(struct decider *d, const char *id,
	    const char *outcome, const char *detail, int64_t now);
