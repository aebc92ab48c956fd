/*
 * routes: which handler answers which request, and who may call it.  The
 * "who" column is checked here, once, against the policy in force,
 * before any handler runs; handlers only check what depends on the object
 * they touch (an agent reads only its own intents; an approval needs the
 * rule's approver roles; redeeming needs the tool's redeem pattern).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "approvals.h"
#include "broker.h"
#include "events.h"
#include "limits_api.h"
#include "log.h"
#include "mcp.h"
#include "ops.h"
#include "routes.h"
#include "trust.h"

enum who {
	WHO_ANY,	/* any verified peer */
	WHO_STAFF,	/* approvers and operators */
	WHO_OPERATOR	/* operators only */
};

enum { M_GET = EVHTTP_REQ_GET, M_POST = EVHTTP_REQ_POST,
    M_PUT = EVHTTP_REQ_PUT, M_DELETE = EVHTTP_REQ_DELETE };

typedef void (*route_fn)(struct request *rq);

static const struct route {
	int		 method;
	enum who	 who;
	const char	*pattern;	/* '*' matches one path segment */
	const char	*what;		/* "only ... may <what>" */
	route_fn	 fn;
} routes[] = {
	{ M_POST, WHO_ANY, "/v1/intents", NULL, api_intent_post },
	{ M_GET, WHO_ANY, "/v1/intents/*", NULL, api_intent_get },
	{ M_GET, WHO_ANY, "/v1/jwks", NULL, api_jwks },
	{ M_GET, WHO_OPERATOR, "/v1/policy", "read or change the policy",
	    api_policy_get },
	{ M_PUT, WHO_OPERATOR, "/v1/policy", "read or change the policy",
	    api_policy_put },
	{ M_GET, WHO_OPERATOR, "/v1/policy/history",
	    "read or change the policy", api_policy_history },
	{ M_POST, WHO_OPERATOR, "/v1/policy/explain", "explain the policy",
	    api_policy_explain },
	/* an agent its own usage, staff anyone's: checked by the handler */
	{ M_GET, WHO_ANY, "/v1/limits", NULL, api_limits_list },
	{ M_GET, WHO_STAFF, "/v1/approvals", "use the approval queue",
	    api_approvals_list },
	{ M_POST, WHO_STAFF, "/v1/approvals/*/approve",
	    "use the approval queue", api_approve },
	{ M_POST, WHO_STAFF, "/v1/approvals/*/reject",
	    "use the approval queue", api_reject },
	{ M_GET, WHO_STAFF, "/v1/killswitch", "read the kill switches",
	    api_killswitch_get },
	{ M_POST, WHO_OPERATOR, "/v1/killswitch", "trip a kill switch",
	    api_killswitch_trip },
	{ M_POST, WHO_OPERATOR, "/v1/killswitch/*/reset",
	    "reset a kill switch", api_killswitch_reset },
	{ M_POST, WHO_ANY, "/v1/grants/redeem", NULL, api_grant_redeem },
	{ M_GET, WHO_OPERATOR, "/v1/audit", "read the audit trail",
	    api_audit_list },
	{ M_GET, WHO_OPERATOR, "/v1/events/status",
	    "read the event delivery status", api_events_status },
	{ M_GET, WHO_OPERATOR, "/v1/audit/checkpoint",
	    "read the audit trail", api_audit_checkpoint },
	{ M_GET, WHO_ANY, "/healthz", NULL, api_healthz },
	{ M_GET, WHO_ANY, "/metrics", NULL, api_metrics },
	/* the MCP gateway: what a caller may call is the policy's, per tool */
	{ M_POST, WHO_ANY, "/mcp", NULL, mcp_post },
	{ M_GET, WHO_ANY, "/mcp", NULL, mcp_get },
	{ M_DELETE, WHO_ANY, "/mcp", NULL, mcp_delete },
};

/* Match path against pattern; a '*' segment is copied into id. */
static int
routes_match(const char *pattern, const char *path, char *id, size_t idlen)
{
	while (*pattern && *path) {
		if (*pattern == '*') {
			size_t n = strcspn(path, "/");

			if (n == 0 || n >= idlen)
				return (0);
			memcpy(id, path, n);
			id[n] = '\0';
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return (0);
	}
	return (*pattern == '\0' && *path == '\0');
}

/* 1 if the caller may use rt; otherwise answers 403 or 503 itself. */
static int
routes_allowed(struct request *rq, const struct route *rt)
{
	struct decider	*d = &rq->w->dec;
	const char	*who = rq->peer->identity;
	const char	*src = ident_source_name(rq->peer->source);
	char		 msg[512];

	if (rt->who == WHO_ANY)
		return (1);
	if (decider_refresh(d) == -1) {
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return (0);
	}
	if (d->policy != NULL && (policy_is_operator(d->policy, who) ||
	    (rt->who == WHO_STAFF && policy_is_approver(d->policy, who))))
		return (1);
	/* Say which identity was seen: a certificate whose URI SAN (which
	 * counts before its CN) is not the name the policy lists. */
	snprintf(msg, sizeof(msg), "only %s may %s; this certificate's "
	    "identity is \"%s\" (its %s), which %s", rt->who == WHO_STAFF ?
	    "approvers and operators" : "an operator", rt->what, who, src,
	    d->policy == NULL ? "no policy lists: none is applied" :
	    !policy_knows(d->policy, who) ? "is not a principal of the policy "
	    "in force" : "holds no such role");
	log_info("%s refused: %s (%s) may not %s", rq->path, who, src,
	    rt->what);
	http_reply_error(rq, E_FORBIDDEN, msg);
	return (0);
}

void
routes_dispatch(struct request *rq)
{
	enum evhttp_cmd_type	 method = evhttp_request_get_command(rq->req);
	char			 id[128];
	size_t			 i;
	int			 path_known = 0;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!routes_match(routes[i].pattern, rq->path, id, sizeof(id)))
			continue;
		path_known = 1;
		if ((int)method != routes[i].method)
			continue;
		rq->id = strchr(routes[i].pattern, '*') ? id : NULL;
		if (routes_allowed(rq, &routes[i]))
			routes[i].fn(rq);
		return;
	}
	http_reply_error(rq, path_known ? E_METHOD_NOT_ALLOWED : E_NOT_FOUND,
	    NULL);
}
