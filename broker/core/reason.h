/*
 * reason: the contract's decision reason codes and error codes, each with
 * its HTTP status and wire string, in one table (reason.c) so that every
 * answer is rendered from the same source.
 */
#pragma once

enum reason {
	REASON_OK,		/* no error: what validators return on success */
	/* decisions: 403 deny */
	R_UNKNOWN_PRINCIPAL,
	R_PRINCIPAL_DISABLED,
	R_NO_PERMISSION,
	R_AMOUNT_REQUIRED,
	R_CURRENCY_NOT_ALLOWED,
	R_AMOUNT_OVER_LIMIT,
	R_KILL_SWITCH,
	R_ARGS_NOT_ALLOWED,
	R_DENIED_BY_RULE,
	R_LIMIT_EXCEEDED,
	/* decisions: allow and pending */
	R_POLICY_ALLOW,
	R_APPROVAL_REQUIRED,
	/* errors: {"error": CODE, "message": TEXT} */
	E_BAD_REQUEST,
	E_INVALID_AMOUNT,
	E_AMOUNT_MISMATCH,
	E_BAD_SIGNATURE,
	E_IDENTITY_MISMATCH,
	E_EXPIRED,
	E_INVALID_JWS,
	E_UNAUTHENTICATED,
	E_FORBIDDEN,
	E_NOT_FOUND,
	E_METHOD_NOT_ALLOWED,
	E_REPLAY,
	E_PAYLOAD_TOO_LARGE,
	E_UNSUPPORTED_MEDIA_TYPE,
	E_RATE_LIMITED,
	E_NOT_AN_APPROVER,
	E_SELF_APPROVAL,
	E_ALREADY_DECIDED,
	E_ALREADY_APPROVED,
	E_ALREADY_REDEEMED,
	E_NOT_PERMITTED,
	E_INVALID_GRANT,
	E_INVALID_POLICY,
	E_KILL_SWITCH_LOCKED,
	E_POLICY_CHANGED,
	E_UNKNOWN_TARGET,
	E_UNAVAILABLE,
	E_INTERNAL,
	REASON__COUNT
};

/* Wire string of a code ("no_permission", "replay", ...). */
const char	*reason_code(enum reason r);
/* HTTP status the code is answered with. */
int		 reason_status(enum reason r);
/* Default human text for the code. */
const char	*reason_text(enum reason r);
/* The decision reason (R_*) whose wire string is s: 0 and *out, or -1. */
int		 reason_parse_decision(const char *s, enum reason *out);
