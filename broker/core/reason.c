/*
 * reason: the one table of decision reasons and error codes — wire string,
 * HTTP status, default human text.  Every answer is rendered from here, so
 * a code and its status can never drift apart.
 */
#include <string.h>

#include "reason.h"

static const struct {
	const char	*code;
	int		 status;
	const char	*text;
} reasons[REASON__COUNT] = {
	[REASON_OK] = { "ok", 200, "ok" },
	[R_UNKNOWN_PRINCIPAL] = { "unknown_principal", 403,
	    "the caller is not in the policy" },
	[R_PRINCIPAL_DISABLED] = { "principal_disabled", 403,
	    "the caller is disabled in the policy" },
	[R_NO_PERMISSION] = { "no_permission", 403,
	    "no rule of the caller's roles allows this tool" },
	[R_AMOUNT_REQUIRED] = { "amount_required", 403,
	    "this tool needs an amount" },
	[R_CURRENCY_NOT_ALLOWED] = { "currency_not_allowed", 403,
	    "the policy does not allow this currency for this tool" },
	[R_AMOUNT_OVER_LIMIT] = { "amount_over_limit", 403,
	    "the amount is above the highest tier of the policy" },
	[R_KILL_SWITCH] = { "kill_switch", 403,
	    "a kill switch stops this call" },
	[R_ARGS_NOT_ALLOWED] = { "args_not_allowed", 403,
	    "the call's args do not meet the conditions of the rule that "
	    "would allow it" },
	[R_DENIED_BY_RULE] = { "denied_by_rule", 403,
	    "a deny rule of the policy refuses this call" },
	[R_LIMIT_EXCEEDED] = { "limit_exceeded", 403,
	    "the call would bring a cumulative limit above its maximum" },
	[R_POLICY_ALLOW] = { "policy_allow", 200,
	    "allowed by policy" },
	[R_APPROVAL_REQUIRED] = { "approval_required", 202,
	    "waiting for human approval" },
	[E_BAD_REQUEST] = { "bad_request", 400, "the request is malformed" },
	[E_INVALID_AMOUNT] = { "invalid_amount", 400,
	    "amount must be {\"value\": \"decimal string\", \"currency\": \"ABC\"}" },
	[E_AMOUNT_MISMATCH] = { "amount_mismatch", 400,
	    "the amount claim differs from the amount in args, which the "
	    "tool executes: send the same amount in both, or only in args" },
	[E_BAD_SIGNATURE] = { "bad_signature", 401,
	    "the signature does not verify with the client certificate's key" },
	[E_IDENTITY_MISMATCH] = { "identity_mismatch", 401,
	    "iss does not match the client certificate's identity" },
	[E_EXPIRED] = { "expired", 401, "the intent has expired" },
	[E_INVALID_JWS] = { "invalid_jws", 401,
	    "the body is not a valid compact JWS" },
	[E_UNAUTHENTICATED] = { "unauthenticated", 401,
	    "a verified client certificate is required" },
	[E_FORBIDDEN] = { "forbidden", 403,
	    "the caller's roles do not allow this request" },
	[E_NOT_FOUND] = { "not_found", 404, "no such resource" },
	[E_METHOD_NOT_ALLOWED] = { "method_not_allowed", 405,
	    "this method is not allowed on this path" },
	[E_REPLAY] = { "replay", 409,
	    "this jti was already used by this issuer" },
	[E_PAYLOAD_TOO_LARGE] = { "payload_too_large", 413,
	    "the body is too large" },
	[E_UNSUPPORTED_MEDIA_TYPE] = { "unsupported_media_type", 415,
	    "wrong Content-Type" },
	[E_RATE_LIMITED] = { "rate_limited", 429, "too many requests" },
	[E_NOT_AN_APPROVER] = { "not_an_approver", 403,
	    "the caller holds none of the rule's approver roles" },
	[E_SELF_APPROVAL] = { "self_approval", 403,
	    "an agent cannot approve its own intent" },
	[E_ALREADY_DECIDED] = { "already_decided", 409,
	    "the intent is no longer pending" },
	[E_ALREADY_APPROVED] = { "already_approved", 409,
	    "the caller already approved this intent" },
	[E_ALREADY_REDEEMED] = { "already_redeemed", 409,
	    "the grant was already redeemed" },
	[E_NOT_PERMITTED] = { "not_permitted", 403,
	    "the caller may not redeem grants for this tool" },
	[E_INVALID_GRANT] = { "invalid_grant", 401,
	    "the grant does not verify or has expired" },
	[E_INVALID_POLICY] = { "invalid_policy", 400,
	    "the policy is invalid" },
	[E_KILL_SWITCH_LOCKED] = { "kill_switch", 423,
	    "a kill switch freezes this intent" },
	[E_POLICY_CHANGED] = { "policy_changed", 409,
	    "the policy in force no longer allows this call: the intent is "
	    "rejected" },
	[E_UNKNOWN_TARGET] = { "unknown_target", 400,
	    "the kill switch's target is not in the policy in force" },
	[E_UNAVAILABLE] = { "unavailable", 503,
	    "the broker cannot record decisions right now; retry later" },
	[E_INTERNAL] = { "internal_error", 500, "internal error" },
};

const char *
reason_code(enum reason r)
{
	return ((unsigned)r < REASON__COUNT ? reasons[r].code : "internal_error");
}

int
reason_status(enum reason r)
{
	return ((unsigned)r < REASON__COUNT ? reasons[r].status : 500);
}

const char *
reason_text(enum reason r)
{
	return ((unsigned)r < REASON__COUNT ? reasons[r].text : "internal error");
}

int
reason_parse_decision(const char *s, enum reason *out)
{
	int	 r;

	if (s == NULL)
		return (-1);
	/* Decision codes only: "kill_switch" is also an error code (423). */
	for (r = R_UNKNOWN_PRINCIPAL; r <= R_APPROVAL_REQUIRED; r++)
		if (strcmp(reasons[r].code, s) == 0) {
			*out = (enum reason)r;
			return (0);
		}
	return (-1);
}
