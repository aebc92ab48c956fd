/*
 * mcp_decide: the decision path of the MCP gateway, behind the seam
 * mcp_call_decide() (mcp.h).  Every checked tools/call is decided exactly
 * like an intent — by the lifecycle (lc_mcp_call: identity, tool, args
 * with their exact text, amount_from, conditions, limits, kill switch,
 * audit, redaction), on the group commit's writer, answered only after
 * the commit — and then:
 *   allowed   forwarded once with Toolgate-Grant (the decision's own
 *             transaction redeemed it; signed while that transaction
 *             commits, sent only once it has); the agent gets the
 *             upstream's result at once and the forward's outcome is
 *             audited by a deferred job (commit.h: no fsync of its own,
 *             so one fsync per call);
 *   denied    refused with an isError result that tells an LLM what
 *             happened and what to do, and _meta.toolgate;
 *   pending   held up to mcp-hold seconds (wait.c's mechanism: woken by
 *             any change of the intent's status, whoever made it), with
 *             notifications/progress every 10 s when asked for; decided
 *             meanwhile → as above, else a still-pending result.  A
 *             repeat of the same call joins that intent (the lifecycle
 *             finds it).
 * One struct mcp_decision carries a call through these phases and owns
 * it.  Nothing here changes state but through the lifecycle, and nothing
 * here speaks MCP but through the mcp_call_* answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "clock.h"
#include "log.h"
#include "mcp.h"

#define MCP_PROGRESS_EVERY	10	/* s, CONTRACT §9 */

struct mcp_decision {
	struct commit_job	 job;		/* first: the mechanism's */
	struct mcp_call		*call;		/* owned */
	struct intent		 in;		/* the call as an intent */
	struct intent_row	 row;		/* where its intent stands */
	struct lc_mcp_result	 res;
	char			 held[INTENT_ID_LEN + 1];  /* "" until held */
	char			 why[POLICY_MESSAGE_MAX];  /* a policy 400's */
	int64_t			 until;		/* the hold ends */
	int64_t			 next_progress;
	char			*grant;		/* signed while the decision
						 * commits; sent only after */
	int			 stopped;	/* a switch tripped after the
						 * decision: not forwarded */
};

static enum reason md_decide_run(struct decider *d, struct commit_job *j);
static void	md_decide_ran(struct commit_job *j);
static void	md_decide_done(struct commit_job *j);

static void
md_free(struct mcp_decision *md)
{
	mcp_call_free(md->call);
	free(md->grant);
	intent_clear(&md->in);
	intent_row_clear(&md->row);
	free(md);
}

/* Queue md's decision to the group commit; the call's connection is
 * watched by the commit path meanwhile. */
static void
md_submit(struct mcp_decision *md)
{
	md->job.w = md->call->w;
	md->job.req = md->call->req;
	md->job.run = md_decide_run;
	md->job.ran = md_decide_ran;
	md->job.done = md_decide_done;
	commit_submit(md->call->w->broker, &md->job);
}

/* Back from the commit path: the agent may have hung up meanwhile. */
static void
md_returned(struct mcp_decision *md)
{
	if (md->job.req == NULL)
		mcp_call_hung_up(md->call);
}

/* ---- answers ---- */

static const char *
md_advice(enum reason r)
{
	switch (r) {
	case R_KILL_SWITCH:
		return ("An operator has stopped these calls with a kill "
		    "switch: do not retry; tell the user.");
	case R_LIMIT_EXCEEDED:
		return ("It would exceed a cumulative limit of the policy: do "
		    "not retry it now; wait until the limit frees, use a "
		    "smaller amount, or ask the user.");
	case R_AMOUNT_OVER_LIMIT:
		return ("The amount is above what the policy allows for this "
		    "tool: do not retry it unchanged; use a smaller amount "
		    "or ask the user.");
	case R_AMOUNT_REQUIRED:
	case R_CURRENCY_NOT_ALLOWED:
	case R_ARGS_NOT_ALLOWED:
		return ("Do not retry it unchanged: change the arguments as "
		    "the reason says, or ask the user.");
	default:
		return ("You may not make this call: do not retry it; tell "
		    "the user.");
	}
}

/* Refuse the call (freed) with decision "deny": id NULL when nothing was
 * stored; status the intent's when it was closed after its decision. */
static void
md_deny(struct mcp_decision *md, const char *id, const char *status,
    const char *reason_code, const char *what, const char *advice)
{
	json_t	*meta;
	char	*text;

	meta = json_pack("{ss ss}", "decision", "deny", "reason_code",
	    reason_code);
	if (meta != NULL && id != NULL)
		json_object_set_new(meta, "id", json_string(id));
	if (meta != NULL && status != NULL)
		json_object_set_new(meta, "status", json_string(status));
	if (asprintf(&text, "toolgate refused this call to %s: %s. Nothing "
	    "was sent to the tool. %s", md->call->tool, what, advice) == -1)
		text = NULL;
	mcp_call_refuse(md->call, text != NULL ? text : "toolgate refused "
	    "this call; nothing was sent to the tool", meta);
	free(text);
	md->call = NULL;
	md_free(md);
}

/* The intent was closed while held (or before a repeat came). */
static void
md_closed(struct mcp_decision *md)
{
	const struct intent_row	*r = &md->row;
	char			 what[600];

	if (r->status == ST_EXPIRED) {
		md_deny(md, r->id, "expired", "expired", "no human approved it "
		    "before its approval window closed", "Ask the user "
		    "whether to make it again: a new call asks for approval "
		    "anew.");
		return;
	}
	/* "rejected by an approver (not this week)", "rejected by a kill
	 * switch (kill switch: ...)", "rejected: the policy in force ..." */
	snprintf(what, sizeof(what), "%s%s%.300s%s", r->reason_text,
	    r->closed_reason != NULL ? " (" : "", r->closed_reason != NULL ?
	    r->closed_reason : "", r->closed_reason != NULL ? ")" : "");
	md_deny(md, r->id, "rejected", "rejected", what, "Do not retry it; "
	    "tell the user.");
}

/* The hold is over and the intent still waits for a human. */
static void
md_still_pending(struct mcp_decision *md, const char *why)
{
	const struct intent_row	*r = &md->row;
	struct mcp_call		*call = md->call;
	char			 at[RFC3339_LEN], *text;
	json_t			*meta;

	clock_rfc3339(r->expires_at, at);
	meta = json_pack("{ss ss si ss}", "id", r->id, "status", "pending",
	    "approvals_required", r->approvals_required, "expires_at", at);
	if (asprintf(&text, "toolgate is holding this call to %s until a "
	    "human approves it (intent %s, %d approval%s needed, until %s)%s. "
	    "It has not been sent to the tool. Tell the user that it waits "
	    "for approval, then call %s again with exactly the same "
	    "arguments: the repeat joins this request and runs it once, "
	    "when it is approved.", call->tool, r->id, r->approvals_required,
	    r->approvals_required == 1 ? "" : "s", at, why, call->tool) == -1)
		text = NULL;
	mcp_call_refuse(call, text != NULL ? text : "toolgate is holding "
	    "this call until a human approves it; call again with the same "
	    "arguments", meta);
	free(text);
	md->call = NULL;
	md_free(md);
}

/* ---- the forward ---- */

static const char *
md_outcome_name(enum mcp_forward_status st)
{
	switch (st) {
	case MCP_FORWARD_OK:
		return ("ok");
	case MCP_FORWARD_TOOL_ERROR:
		return ("tool_error");
	case MCP_FORWARD_FAILED:
		return ("failed");
	default:
		return ("not_sent");
	}
}

/* The forward's audit record, a job of its own: it outlives the call. */
struct md_outcome {
	struct commit_job	 job;
	char			 id[INTENT_ID_LEN + 1];
	enum mcp_forward_status	 status;
	char			 detail[256];
};

static void
md_outcome_lost(const char *id, enum mcp_forward_status st)
{
	log_warnx("mcp forward %s: its outcome (%s) could not be audited",
	    id, md_outcome_name(st));
}

static enum reason
md_outcome_run(struct decider *d, struct commit_job *j)
{
	struct md_outcome	*o = (struct md_outcome *)j;

	return (lc_mcp_forwarded(d, o->id, md_outcome_name(o->status),
	    o->detail, clock_now()));
}

static void
md_outcome_done(struct commit_job *j)
{
	struct md_outcome	*o = (struct md_outcome *)j;

	if (j->result != REASON_OK)
		md_outcome_lost(o->id, o->status);
	free(o);
}

/* The outcome's record, copied out of the call (which the answer frees);
 * NULL, and said in the log, when it cannot be kept. */
static struct md_outcome *
md_outcome_new(struct worker *w, const char *id,
    const struct mcp_forward_outcome *fo)
{
	struct md_outcome	*o;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		md_outcome_lost(id, fo->status);
		return (NULL);
	}
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->status = fo->status;
	snprintf(o->detail, sizeof(o->detail), "%s", fo->detail);
	o->job.w = w;
	o->job.run = md_outcome_run;
	o->job.done = md_outcome_done;
	return (o);
}

/* Queue the record as a deferred job: neither the agent's answer nor
 * the next decision waits for a second fsync (proto/mcp.md, "Audit"). */
static void
md_outcome_submit(struct md_outcome *o)
{
	if (o != NULL)
		commit_submit_deferred(o->job.w->broker, &o->job);
}

/* The upstream answered or failed (or the call never left): answer. */
static void
md_forwarded(struct mcp_call *call, const struct mcp_forward_outcome *o,
    void *arg)
{
	struct mcp_decision	*md = arg;
	struct md_outcome	*rec = md_outcome_new(call->w, md->row.id, o);

	if (md->stopped) {
		md_outcome_submit(rec);
		md_deny(md, md->row.id, NULL, reason_code(R_KILL_SWITCH),
		    reason_text(R_KILL_SWITCH), md_advice(R_KILL_SWITCH));
		return;
	}
	/* The answer leaves first: queuing the record wakes the writer, a
	 * syscall the agent need not wait for. */
	mcp_call_finish(call);
	md->call = NULL;
	md_outcome_submit(rec);
	md_free(md);
}

/* A switch this process tripped after the batch began is checked now
 * (the batch could not see it): no forward after a trip was answered. */
static int
md_stopped_since(struct mcp_decision *md)
{
	struct worker	*w = md->call->w;

	if (__atomic_load_n(&w->broker->ks_epoch, __ATOMIC_ACQUIRE) ==
	    md->job.ks_epoch)
		return (0);
	return (decider_refresh(&w->dec) == -1 ||
	    ks_covers(&w->dec.ks, md->row.agent, md->row.tool));
}

/* The grant of this forward (malloc'd), or NULL. */
static char *
md_sign(struct mcp_decision *md)
{
	int64_t	 exp;

	/* No arguments sign as {} (grant_sign's own rule). */
	return (grant_sign(&md->call->w->broker->grant, &md->row,
	    md->call->args, clock_now(), &exp));
}

/* The batch has run and its commit is under way: a call to forward has
 * its grant signed meanwhile rather than after (after the commit, the
 * signature was the slowest step before the forward).  Nothing leaves
 * before md_decide_done. */
static void
md_decide_ran(struct commit_job *j)
{
	struct mcp_decision	*md = (struct mcp_decision *)j;

	if (md->res.forward && md->grant == NULL)
		md->grant = md_sign(md);
}

/* Allowed and redeemed for this forward: sign, send, audit, answer. */
static void
md_forward(struct mcp_decision *md)
{
	struct mcp_call	*call = md->call;
	char		*grant;

	if (md_stopped_since(md)) {
		md->stopped = 1;
		mcp_call_not_sent(call, md->row.id, "a kill switch was "
		    "tripped before the forward", md_forwarded, md);
		return;
	}
	if ((grant = md->grant) != NULL)
		md->grant = NULL;
	else
		grant = md_sign(md);
	if (grant == NULL) {
		mcp_call_not_sent(call, md->row.id, "the grant could not be "
		    "signed", md_forwarded, md);
		return;
	}
	mcp_call_forward(call, md->row.id, grant, md_forwarded, md);
	free(grant);
}

/* ---- holding ---- */

static void	md_hold(struct mcp_decision *md);

/* wait.c: the intents of these held calls changed, or their tick came. */
static void
md_woken(struct worker *w, const char *id, const struct wait_reply *r,
    size_t n)
{
	struct mcp_decision	*md;
	enum intent_status	 st = ST_PENDING;
	size_t			 i;
	int			 found;

	found = w->store->ops->intent_status(w->store, id, &st);
	for (i = 0; i < n; i++) {
		md = r[i].arg;
		if (r[i].closing)
			md_still_pending(md, "; toolgate is restarting");
		else if (found == 1 && st != ST_PENDING) {
			/* Decided: take it through the lifecycle again. */
			snprintf(md->held, sizeof(md->held), "%s", id);
			md_submit(md);
		} else
			md_hold(md);	/* the tick, or no read: go on */
	}
}

/* wait.c: a held call's agent hung up; its intent stays for a repeat. */
static void
md_gone(struct worker *w, void *arg)
{
	struct mcp_decision	*md = arg;

	mcp_call_hung_up(md->call);
	log_info("mcp call %s: %s hung up while it was held", md->row.id,
	    md->call->identity);
	md_free(md);
}

/* Hold the pending call until the next progress tick or the end of the
 * hold, whichever comes first. */
static void
md_hold(struct mcp_decision *md)
{
	struct mcp_call	*call = md->call;
	int64_t		 now = clock_now(), next;
	char		 msg[160];

	if (call->req == NULL) {
		md_free(md);
		return;
	}
	if (now >= md->until) {
		md_still_pending(md, "");
		return;
	}
	if (now >= md->next_progress) {
		snprintf(msg, sizeof(msg), "waiting for a human to approve "
		    "%s (%d approval%s needed)", md->row.id,
		    md->row.approvals_required,
		    md->row.approvals_required == 1 ? "" : "s");
		if (mcp_call_progress(call, (double)(now - call->received),
		    msg) == -1) {
			md_free(md);
			return;
		}
		md->next_progress = now + MCP_PROGRESS_EVERY;
	}
	next = md->next_progress < md->until ? md->next_progress : md->until;
	if (wait_hold_req(call->w, call->req, call->identity, md->row.id,
	    (int)(next > now ? next - now : 1), md_woken, md_gone, md) == -1)
		md_still_pending(md, "; toolgate holds too many calls right "
		    "now to wait longer");
}

/* ---- the decision ---- */

static enum reason
md_decide_run(struct decider *d, struct commit_job *j)
{
	struct mcp_decision	*md = (struct mcp_decision *)j;

	intent_row_clear(&md->row);
	return (lc_mcp_call(d, &md->in, md->held[0] ? md->held : NULL,
	    clock_now(), &md->row, md->why, &md->res));
}

/* The policy refused the call with a 400 of the intent path: nothing
 * was stored (invalid_amount, amount_mismatch). */
static void
md_refused_input(struct mcp_decision *md, enum reason r)
{
	char	 what[POLICY_MESSAGE_MAX + 64];

	snprintf(what, sizeof(what), "%s", md->why[0] ? md->why :
	    reason_text(r));
	md_deny(md, NULL, NULL, reason_code(r), what, "Nothing was "
	    "recorded: fix the arguments and call again.");
}

static void
md_log(const struct mcp_decision *md)
{
	const struct intent_row	*r = &md->row;

	if (md->res.joined || md->held[0])
		log_info("mcp call %s: %s %s -> %s%s", r->id, r->agent, r->tool,
		    intent_status_name(r->status), md->res.forward ?
		    ", forwarding" : "");
	else {
		metrics_decision(&md->call->w->metrics, (int)r->decision);
		log_info("decision %s: %s %s -> %s (%s) via mcp", r->id,
		    r->agent, r->tool, intent_status_name(r->status),
		    reason_code(r->reason));
	}
}

/* Back from the commit: go on as the intent now stands. */
static void
md_decide_done(struct commit_job *j)
{
	struct mcp_decision	*md = (struct mcp_decision *)j;
	const struct intent_row	*r = &md->row;

	md_returned(md);
	if (j->result == E_INVALID_AMOUNT || j->result == E_AMOUNT_MISMATCH) {
		md_refused_input(md, j->result);
		return;
	}
	if (j->result != REASON_OK) {
		mcp_call_fail(md->call, JSONRPC_INTERNAL_ERROR, "toolgate cannot "
		    "record decisions right now, so nothing was sent to the "
		    "tool; try again in a moment");
		md->call = NULL;
		md_free(md);
		return;
	}
	md_log(md);
	if (md->res.forward)
		md_forward(md);
	else if (md->res.killed)
		md_deny(md, r->id, intent_status_name(r->status),
		    reason_code(R_KILL_SWITCH), reason_text(R_KILL_SWITCH),
		    md_advice(R_KILL_SWITCH));
	else if (r->status == ST_PENDING)
		md_hold(md);
	else if (r->status == ST_DENIED)
		md_deny(md, r->id, NULL, reason_code(r->reason),
		    r->reason_text, md_advice(r->reason));
	else if (r->status == ST_REJECTED || r->status == ST_EXPIRED)
		md_closed(md);
	else
		md_deny(md, r->id, intent_status_name(r->status),
		    "not_forwardable", "it is allowed but can no longer be "
		    "forwarded", "Call it again to make a new request.");
}

void
mcp_call_decide(struct mcp_call *call)
{
	struct mcp_decision	*md;

	if ((md = calloc(1, sizeof(*md))) == NULL) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	md->call = call;
	if (lc_mcp_intent(&md->in, call->identity, call->tool, call->args,
	    call->args_json, call->args_json_len, clock_now()) == -1) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "out of memory");
		md->call = NULL;
		md_free(md);
		return;
	}
	md->until = call->received + mcp_hold_seconds(call->w->broker);
	md_submit(md);
}
