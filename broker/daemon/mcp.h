/*
 * mcp: the MCP gateway (CONTRACT §9) inside toolgated — what its files
 * share.  Agents speak MCP Streamable HTTP to POST /mcp (mcp.c: sessions,
 * initialize, ping, tools/list, tools/call checks); each tools/call
 * becomes a struct mcp_call handed to the decision path through ONE seam,
 * mcp_call_decide() (mcp_decide.c), which answers it through the
 * mcp_call_* functions (mcp_call.c): forward to the upstream with a
 * grant, refuse with an isError result, or fail with a JSON-RPC error.
 * Upstreams (mcp_upstream.c) are MCP servers toolgated is a client of,
 * their sessions driven on one thread of their own over a small
 * HTTP/1.1 + SSE client (mcp_http.c); their tool lists are published to
 * the workers as an immutable catalog.  --config lines are read by
 * mcp_config.c.
 *
 * Threads: the handlers and every mcp_call_* function run on the worker
 * thread that owns the request, and so does a forward sent on a ready
 * session (the worker's own connections); the upstream thread never
 * touches a request, and hands the outcome of a forward it sent (one
 * that waited for a session) back through the worker's inbox.
 */
#pragma once

#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ident.h"
#include "intent.h"
#include "jsonrpc.h"

struct broker;
struct worker;
struct request;
struct evhttp_request;

#define MCP_MAX_UPSTREAMS	32
#define MCP_MAX_BODY		(1024 * 1024)	/* POST /mcp */
#define MCP_MAX_DEPTH		64	/* JSON-RPC message nesting */
#define MCP_MAX_ARGS_DEPTH	32	/* arguments, as intents' args */
#define MCP_UPSTREAM_MAX_BODY	(4 * 1024 * 1024)
#define MCP_UPSTREAM_MAX_TOOLS	1000
#define MCP_SESSION_ID_LEN	35	/* "ms_" + 32 hex */
#define MCP_PROTOCOL_LATEST	"2025-11-25"
#define MCP_PROTOCOL_OLDEST	"2025-06-18"

/* ---- configuration (mcp_config.c) ---- */

struct mcp_upstream_conf {
	char		 name[64];
	char		*url;
	int		 https;
	char		*host;		/* without brackets */
	int		 port;
	char		*path;		/* path and query, at least "/" */
	int		 line;		/* of --config, for messages */
};

struct mcp_conf {
	struct mcp_upstream_conf up[MCP_MAX_UPSTREAMS];
	int		 n_up;
	const char	*ca_file;	/* NULL: the system CA store */
	int		 hold;		/* s, mcp-hold */
	int		 timeout;	/* s, one upstream request */
	int		 refresh;	/* s, tools/list refresh */
	int		 max_sessions;
	int		 session_idle;	/* s */
};

/*
 * One "--config" line: 1 if name is an mcp-* setting (checked, stored in
 * c; a bad one exits 2 with a message naming file and line), 0 if it is
 * not an MCP setting.
 */
int	mcp_config_line(struct mcp_conf *c, const char *name, const char *val,
	    const char *file, int line);
/* 1 when name is a setting mcp_config_line takes (nothing checked). */
int	mcp_config_is(const char *name);
/* After the whole file (or none): the defaults of what was not set. */
void	mcp_config_finish(struct mcp_conf *c);
void	mcp_config_free(struct mcp_conf *c);

/* ---- the catalog: every upstream's tools, as offered ---- */

struct mcp_tool {
	char		 name[INTENT_MAX_TOOL + 1];	/* "NAME.X" */
	const char	*upstream_name;	/* "X", inside the catalog */
	int		 upstream;	/* index in the configuration */
	char		*text;		/* the tool object, renamed, as JSON */
	size_t		 text_len;
};

/* Immutable once published; workers hold a reference while they use it. */
struct mcp_catalog {
	int		 refs;		/* atomic */
	struct mcp_tool	*tools;		/* sorted by name */
	size_t		 n_tools;
};

struct mcp_catalog *mcp_catalog_get(struct broker *b);
void	mcp_catalog_put(struct mcp_catalog *c);
const struct mcp_tool *mcp_catalog_find(const struct mcp_catalog *c,
	    const char *name);

/* ---- one tools/call on its way through the gateway ---- */

struct mcp_call;

/* How a forward went, for the decision path's audit record. */
enum mcp_forward_status {
	MCP_FORWARD_OK,		/* the upstream answered a result */
	MCP_FORWARD_TOOL_ERROR,	/* ... with "isError": true */
	MCP_FORWARD_FAILED,	/* sent, then: timed out, garbage, error */
	MCP_FORWARD_NOT_SENT,	/* not connected, busy: it never left */
};

struct mcp_forward_outcome {
	enum mcp_forward_status	 status;
	const char		*detail;	/* human text: what happened */
};

/*
 * Called on the worker thread once the upstream answered or failed; the
 * answer to the agent is held until the decision path calls
 * mcp_call_finish(call) (from here, or later).  call->req may be NULL by
 * then: the agent hung up, and the outcome still counts.
 */
typedef void (*mcp_forward_done_fn)(struct mcp_call *call,
	    const struct mcp_forward_outcome *outcome, void *arg);

struct mcp_call {
	struct worker		*w;
	struct evhttp_request	*req;		/* NULL once the agent hung up */
	int			 sse;		/* answer as an SSE stream */
	int			 sse_ok;	/* the agent accepts one */
	int			 streaming;	/* its head is sent */
	/* The request, checked by mcp.c: */
	char			 identity[IDENT_MAX];	/* the agent */
	char			 session[MCP_SESSION_ID_LEN + 1];
	char			*id_text;	/* JSON-RPC id as written */
	size_t			 id_len;
	char			 tool[INTENT_MAX_TOOL + 1];	/* "NAME.X" */
	int			 upstream;	/* index in the configuration */
	char			*upstream_tool;	/* "X" */
	json_t			*args;		/* object, or NULL when absent */
	/* arguments exactly as the agent wrote them (NUL-terminated), for
	 * amount_from: jsontext_number_at(args_json, args_json_len, ...) */
	char			*args_json;
	size_t			 args_json_len;
	/* RFC 8785 text of args ("{}" when absent): what the grant, the
	 * audit and the forward carry */
	char			*args_canon;
	char			*progress_token;	/* JSON text, or NULL */
	int64_t			 received;	/* clock_now() */
	/* The forward (mcp_call.c, then mcp_upstream.c): */
	mcp_forward_done_fn	 done;
	void			*done_arg;
	char			 intent_id[40];
	char			*answer;	/* what mcp_call_finish sends */
	size_t			 answer_len;
	char			*fwd_body;	/* the tools/call params */
	size_t			 fwd_len;
	char			*fwd_grant;
	int			 fwd_retried;	/* once, after a lost session */
	int			 fwd_gone;	/* its session ended: the
						 * upstream thread retries */
	int64_t			 fwd_gen;	/* the session it was sent on */
	enum mcp_forward_status	 fwd_status;
	char			 fwd_detail[256];
	char			*fwd_result;	/* the upstream's result, as sent */
	size_t			 fwd_result_len;
	struct mcp_call		*next;		/* queue and inbox link */
};

/*
 * THE SEAM (mcp_decide.c): decide call like an intent — identity
 * call->identity, tool call->tool, args call->args (exact text in
 * call->args_json), amount via the rule's amount_from — and answer it
 * with exactly one of mcp_call_forward, mcp_call_refuse, mcp_call_fail,
 * now or later (held), on the worker thread.  Takes ownership of call.
 */
void	mcp_call_decide(struct mcp_call *call);

/*
 * Allowed: send tools/call (name call->upstream_tool, arguments
 * call->args_canon) to the upstream with header "Toolgate-Grant: grant",
 * at most once.  done (may be NULL: then the answer goes out at once)
 * sees the outcome; the agent then gets the upstream's result unchanged,
 * or an isError result saying the upstream failed, with
 * _meta.toolgate {"id": intent_id, "decision": "allow"}.
 */
void	mcp_call_forward(struct mcp_call *call, const char *intent_id,
	    const char *grant, mcp_forward_done_fn done, void *arg);
/* Allowed, but it will not be sent (detail says why): done sees
 * MCP_FORWARD_NOT_SENT and the answer says it did not run. */
void	mcp_call_not_sent(struct mcp_call *call, const char *intent_id,
	    const char *detail, mcp_forward_done_fn done, void *arg);
/* Send what the forward got, and free call. */
void	mcp_call_finish(struct mcp_call *call);
/*
 * Refused or still pending: a tool result {"content": [{"type": "text",
 * "text": text}], "isError": true, "_meta": {"toolgate": meta}}, meta
 * stolen (NULL: no _meta).  Frees call.
 */
void	mcp_call_refuse(struct mcp_call *call, const char *text, json_t *meta);
/* A JSON-RPC error (code, message) instead of a result.  Frees call. */
void	mcp_call_fail(struct mcp_call *call, int code, const char *message);
/*
 * While held: notifications/progress {progressToken, progress, message}
 * to the agent, when the call carried a progressToken and the agent
 * accepts SSE (the answer becomes an SSE stream from the first one).
 * 1 sent, 0 not applicable, -1 the agent is gone.
 */
int	mcp_call_progress(struct mcp_call *call, double progress,
	    const char *message);
/* Free a call without answering (the agent is gone). */
void	mcp_call_free(struct mcp_call *call);
/*
 * The agent's connection closed: call->req becomes NULL and nothing is
 * answered.  mcp_call_watch registers it as the connection's close
 * callback; a decision path that lets another close callback take the
 * connection (commit_submit and wait_hold_req do) must call it when that
 * one reports the close.
 */
void	mcp_call_hung_up(struct mcp_call *call);
/* (Re)register mcp_call_hung_up as the close callback of call's
 * connection: mcp.c does before the seam, mcp_call_forward for the
 * forward. */
void	mcp_call_watch(struct mcp_call *call);
/* mcp-hold: how long a pending call is held, in seconds. */
int	mcp_hold_seconds(const struct broker *b);

/* ---- the gateway (mcp.c) ---- */

/* Start the upstream thread (after the workers exist); -1 on failure. */
int	mcp_start(struct broker *b, struct mcp_conf *conf);
/* Stop it and free what the workers' bases hold: after the workers
 * stopped, before their bases are freed. */
void	mcp_stop(struct broker *b);

/* The handlers (http.c's route table). */
void	mcp_post(struct request *rq);
void	mcp_get(struct request *rq);
void	mcp_delete(struct request *rq);

/* ---- the upstream side (mcp_upstream.c), used by mcp_call.c ---- */

struct mcp_upstreams;
struct mcp_upstreams *mcp_upstreams_start(struct broker *b,
	    const struct mcp_conf *conf, void (*publish)(struct broker *,
	    struct mcp_catalog *));
void	mcp_upstreams_stop(struct mcp_upstreams *u);
/*
 * Worker thread: send call->fwd_body to the call's upstream with header
 * Toolgate-Grant: call->fwd_grant.  The outcome (fwd_status, fwd_detail,
 * fwd_result) comes back through mcp_forward_done, from the upstream
 * thread.
 */
void	mcp_upstreams_forward(struct mcp_upstreams *u, struct mcp_call *call);
/* Any thread: the forward of call is over; answer it on its worker. */
void	mcp_forward_done(struct mcp_call *call);

/* mcp_call.c, for mcp.c: the worker's inbox took call back. */
void	mcp_call_delivered(struct mcp_call *call);
/* mcp.c, for mcp_call.c: send a JSON-RPC message as the answer to req,
 * as JSON or as a one-event SSE stream. */
void	mcp_send(struct worker *w, struct evhttp_request *req, int sse,
	    int status, const char *text, size_t len);
struct mcp_upstreams *mcp_upstreams_of(struct broker *b);
