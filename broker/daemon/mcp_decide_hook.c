/*
 * mcp_decide_hook: a stand-in for the decision path, linked only into
 * the test daemon toolgated-mcp-hook (never installed), so that the
 * gateway's allowed path — a forward with a grant, the upstream's result
 * passed back unchanged — and its refusal shapes are tested before the
 * real path is wired in.  It asks the policy snapshot (no store, no
 * audit, no limits, no kill switch) and signs a grant for a made-up
 * intent id.  Do not use it for anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "canon.h"
#include "clock.h"
#include "log.h"
#include "mcp.h"
#include "broker.h"
#include "policy.h"

static void
hook_done(struct mcp_call *call, const struct mcp_forward_outcome *o,
    void *arg)
{
	log_info("mcp hook: forward of %s: %s", call->tool, o->detail);
	mcp_call_finish(call);
}

static void
hook_allow(struct mcp_call *call)
{
	unsigned char	 rnd[16];
	struct intent_row row;
	char		*grant;
	json_t		*args;
	int64_t		 exp;
	int		 i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "no randomness");
		return;
	}
	memset(&row, 0, sizeof(row));
	memcpy(row.id, "in_", 3);
	for (i = 0; i < 16; i++)
		snprintf(row.id + 3 + 2 * i, 3, "%02x", rnd[i]);
	canon_sha256_hex(call->args_canon, strlen(call->args_canon),
	    row.intent_sha256);
	row.agent = call->identity;
	row.tool = call->tool;
	args = call->args ? json_incref(call->args) : json_object();
	grant = grant_sign(&call->w->broker->grant, &row, args, clock_now(),
	    &exp);
	json_decref(args);
	if (grant == NULL) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "cannot sign");
		return;
	}
	mcp_call_forward(call, row.id, grant, hook_done, NULL);
	free(grant);
}

void
mcp_call_decide(struct mcp_call *call)
{
	struct worker		*w = call->w;
	struct policy_call	 pc;
	struct evaluation	 ev;

	if (decider_refresh(&w->dec) == -1 || w->dec.policy == NULL) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "no policy");
		return;
	}
	memset(&pc, 0, sizeof(pc));
	pc.principal = call->identity;
	pc.tool = call->tool;
	pc.args = call->args;
	pc.args_json = call->args_json;
	pc.args_json_len = call->args_json_len;
	policy_evaluate(w->dec.policy, &pc, &ev);
	switch (ev.outcome) {
	case OUTCOME_ALLOW:
		hook_allow(call);
		return;
	case OUTCOME_PENDING:
		mcp_call_progress(call, 0, "waiting for a human (hook)");
		mcp_call_refuse(call, "a human must approve this call; call "
		    "again with the same arguments once approved (hook)",
		    json_pack("{ss ss si}", "id", "in_hook", "status",
		    "pending", "approvals_required", ev.approvals_required));
		return;
	case OUTCOME_DENY:
		mcp_call_refuse(call, "toolgate refused this call (hook)",
		    json_pack("{ss ss ss}", "id", "in_hook", "decision", "deny",
		    "reason_code", reason_code(ev.reason)));
		return;
	}
}
