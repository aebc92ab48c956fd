/*
 * mcp_decide: the seam between the MCP gateway and the decision path.
 * mcp_call_decide() receives every checked tools/call (mcp.h, struct
 * mcp_call) and must decide it exactly like an intent: the caller's
 * identity, tool call->tool, args call->args (their exact text in
 * call->args_json), the amount from the deciding rule's amount_from,
 * conditions, limits, the kill switch, the audit record and redaction,
 * through the same group-commit path — and answer only once that is
 * committed, with mcp_call_forward (allowed; the grant's jti is the
 * intent id), mcp_call_refuse (denied, or still pending after mcp-hold
 * seconds, with _meta.toolgate) or mcp_call_fail.
 *
 * Until that path is wired in, every call is refused with an isError
 * result that says so: nothing reaches an upstream undecided.
 */
#include <jansson.h>

#include "log.h"
#include "mcp.h"

void
mcp_call_decide(struct mcp_call *call)
{
	log_info("mcp call refused: %s %s: the gateway's decision path is "
	    "not wired yet", call->identity, call->tool);
	mcp_call_refuse(call, "toolgate refused this call: its MCP gateway "
	    "cannot decide tool calls yet (the decision path is not wired "
	    "in), so nothing was sent to the tool. Do not retry; tell the "
	    "user.", json_pack("{ss ss}", "decision", "deny", "reason_code",
	    "not_wired"));
}
