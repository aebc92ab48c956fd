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
#include "policy.h"
#include "server.h"

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
	char		 id[40], sha[65], *grant;
	json_t		*view, *args;
	int64_t		 exp;
	int		 i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "no randomness");
		return;
	}
	memcpy(id, "in_", 3);
	for (i = 0; i < 16; i++)
		snprintf(id + 3 + 2 * i, 3, "%02x", rnd[i]);
	canon_sha256_hex(call->args_canon, strlen(call->args_canon), sha);
	args = call->args ? json_incref(call->args) : json_object();
	view = json_pack("{ss ss ss so s[] ss}", "id", id, "agent",
	    call->identity, "tool", call->tool, "args", args, "approvals",
	    "intent_sha256", sha);
	grant = view ? grant_sign(&call->w->broker->grant, view, clock_now(),
	    &exp) : NULL;
	json_decref(view);
	if (grant == NULL) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "cannot sign");
		return;
	}
	mcp_call_forward(call, id, grant, hook_done, NULL);
	free(grant);
}

void
mcp_call_decide(struct mcp_call *call)
{
	struct worker		*w = call->w;
	struct evaluation	 ev;

	if (api_policy_refresh(w) == -1 || w->policy == NULL) {
		mcp_call_fail(call, JSONRPC_INTERNAL_ERROR, "no policy");
		return;
	}
	policy_evaluate(w->policy, call->identity, call->tool, NULL, &ev);
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
