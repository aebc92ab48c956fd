/*
 * mcp_call: what can happen to one tools/call once mcp.c has checked it —
 * the answers the decision path gives through the seam (forward with a
 * grant, refuse with an isError result, fail with a JSON-RPC error,
 * progress while held) and the forward's way to the upstream thread and
 * back.  Every function here runs on the call's worker thread, except
 * that the upstream thread fills the fwd_* fields before it hands the
 * call back (mcp_forward_done).  It decides nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "broker.h"
#include "http.h"
#include "jsonrpc.h"
#include "jsonw.h"
#include "log.h"
#include "mcp.h"

void
mcp_call_hung_up(struct mcp_call *call)
{
	/* The request dies with its connection; the call may not. */
	call->req = NULL;
}

static void
mcp_call_closed(struct evhttp_connection *conn, void *arg)
{
	mcp_call_hung_up(arg);
}

void
mcp_call_watch(struct mcp_call *call)
{
	struct evhttp_connection	*conn;

	if (call->req != NULL &&
	    (conn = evhttp_request_get_connection(call->req)) != NULL)
		evhttp_connection_set_closecb(conn, mcp_call_closed, call);
}

void
mcp_call_free(struct mcp_call *call)
{
	struct evhttp_connection	*conn;

	if (call == NULL)
		return;
	if (call->req != NULL &&
	    (conn = evhttp_request_get_connection(call->req)) != NULL)
		evhttp_connection_set_closecb(conn, NULL, NULL);
	free(call->id_text);
	free(call->upstream_tool);
	json_decref(call->args);
	free(call->args_json);
	free(call->args_canon);
	free(call->progress_token);
	free(call->answer);
	free(call->fwd_body);
	free(call->fwd_grant);
	free(call->fwd_result);
	free(call);
}

static struct jsonrpc_span
call_id(const struct mcp_call *call)
{
	struct jsonrpc_span	 id = { call->id_text, call->id_len };

	return (id);
}

/* Send text as the answer (if the agent is still there), free call. */
static void
call_answer(struct mcp_call *call, char *text, size_t len)
{
	struct evbuffer	*buf;

	if (text == NULL) {
		text = jsonrpc_write_error(NULL, JSONRPC_INTERNAL_ERROR,
		    "out of memory", NULL, &len);
	}
	if (call->req != NULL && text != NULL) {
		if (!call->streaming)
			mcp_send(call->w, call->req, call->sse, 200, text,
			    len);
		else if ((buf = evbuffer_new()) != NULL) {
			evbuffer_add_printf(buf, "event: message\ndata: %s\n\n",
			    text);
			evhttp_send_reply_chunk(call->req, buf);
			evbuffer_free(buf);
			evhttp_send_reply_end(call->req);
		} else
			evhttp_send_reply_end(call->req);
	}
	free(text);
	mcp_call_free(call);
}

/* {"content": [{"type": "text", "text": text}], "isError": true,
 * "_meta": {"toolgate": meta}} (meta stolen, may be NULL). */
static json_t *
call_error_result(const char *text, json_t *meta)
{
	json_t	*r = json_pack("{s[{ss ss}] sb}", "content", "type", "text",
	    "text", text, "isError", 1);

	if (r != NULL && meta != NULL)
		json_object_set_new(r, "_meta", json_pack("{so}", "toolgate",
		    meta));
	else
		json_decref(meta);
	return (r);
}

void
mcp_call_refuse(struct mcp_call *call, const char *text, json_t *meta)
{
	struct jsonrpc_span	 id = call_id(call);
	json_t			*r = call_error_result(text, meta);
	size_t			 len = 0;
	char			*out = r ? jsonrpc_write_result_json(&id, r,
	    &len) : NULL;

	json_decref(r);
	call_answer(call, out, len);
}

void
mcp_call_fail(struct mcp_call *call, int code, const char *message)
{
	struct jsonrpc_span	 id = call_id(call);
	size_t			 len = 0;
	char			*out = jsonrpc_write_error(&id, code, message,
	    NULL, &len);

	call_answer(call, out, len);
}

int
mcp_call_progress(struct mcp_call *call, double progress, const char *message)
{
	struct evkeyvalq	*h;
	struct evbuffer		*buf;
	json_t			*params, *tok;
	char			*text;

	if (call->req == NULL)
		return (-1);
	if (call->progress_token == NULL || !call->sse_ok)
		return (0);
	tok = json_loadb(call->progress_token, strlen(call->progress_token),
	    JSON_DECODE_ANY, NULL);
	params = json_pack("{so sf}", "progressToken", tok ? tok : json_null(),
	    "progress", progress);
	if (params != NULL && message != NULL)
		json_object_set_new(params, "message", json_string(message));
	text = params ? jsonrpc_write_request(NULL, "notifications/progress",
	    params, NULL) : NULL;
	json_decref(params);
	if (text == NULL || (buf = evbuffer_new()) == NULL) {
		free(text);
		return (0);
	}
	if (!call->streaming) {
		h = evhttp_request_get_output_headers(call->req);
		evhttp_add_header(h, "Content-Type", "text/event-stream");
		evhttp_add_header(h, "Cache-Control", "no-store");
		evhttp_send_reply_start(call->req, 200, "OK");
		call->streaming = 1;
	}
	evbuffer_add_printf(buf, "event: message\ndata: %s\n\n", text);
	evhttp_send_reply_chunk(call->req, buf);
	evbuffer_free(buf);
	free(text);
	return (1);
}

/* Take the call back for its forward; counted like a decision in
 * flight (SIGTERM waits for it) until mcp_call_delivered. */
static void
call_forward_begin(struct mcp_call *call, const char *intent_id,
    mcp_forward_done_fn done, void *arg)
{
	mcp_call_watch(call);
	call->done = done;
	call->done_arg = arg;
	snprintf(call->intent_id, sizeof(call->intent_id), "%s",
	    intent_id ? intent_id : "");
	call->w->inflight++;
}

/* The forward ends before it left: done sees MCP_FORWARD_NOT_SENT. */
static void
call_not_sent(struct mcp_call *call, const char *detail)
{
	call->fwd_status = MCP_FORWARD_NOT_SENT;
	snprintf(call->fwd_detail, sizeof(call->fwd_detail), "%s", detail);
	mcp_call_delivered(call);
}

void
mcp_call_not_sent(struct mcp_call *call, const char *intent_id,
    const char *detail, mcp_forward_done_fn done, void *arg)
{
	call_forward_begin(call, intent_id, done, arg);
	call_not_sent(call, detail);
}

void
mcp_call_forward(struct mcp_call *call, const char *intent_id,
    const char *grant, mcp_forward_done_fn done, void *arg)
{
	json_t	*name = json_string(call->upstream_tool);
	char	*ntext = name ? jsonw_dump(name, JSONW_PLAIN, NULL) : NULL;

	json_decref(name);
	call_forward_begin(call, intent_id, done, arg);
	if (ntext == NULL || asprintf(&call->fwd_body, "{\"name\":%s,"
	    "\"arguments\":%s}", ntext, call->args_canon) == -1 ||
	    (call->fwd_grant = strdup(grant)) == NULL) {
		free(ntext);
		call->fwd_body = NULL;
		call_not_sent(call, "out of memory");
		return;
	}
	free(ntext);
	call->fwd_len = strlen(call->fwd_body);
	if (mcp_upstreams_of(call->w->broker) == NULL) {
		call_not_sent(call, "no upstream is configured");
		return;
	}
	mcp_upstreams_forward(mcp_upstreams_of(call->w->broker), call);
}

/* The answer for a forward, from what the upstream thread found. */
static void
call_forward_answer(struct mcp_call *call)
{
	struct jsonrpc_span	 id = call_id(call);
	char			 text[600];
	json_t			*r, *meta;

	if ((call->fwd_status == MCP_FORWARD_OK || call->fwd_status ==
	    MCP_FORWARD_TOOL_ERROR) && call->fwd_result != NULL) {
		call->answer = jsonrpc_write_result(&id, call->fwd_result,
		    call->fwd_result_len, &call->answer_len);
		return;
	}
	if (call->fwd_status == MCP_FORWARD_NOT_SENT)
		snprintf(text, sizeof(text), "toolgate allowed this call, but "
		    "could not send it to the tool: %s. It did not run; try "
		    "again later.", call->fwd_detail);
	else
		snprintf(text, sizeof(text), "toolgate allowed this call, but "
		    "it did not complete: %s. It may or may not have run; "
		    "check before you call again.", call->fwd_detail);
	meta = json_pack("{ss ss ss}", "id", call->intent_id, "decision",
	    "allow", "forward", call->fwd_status == MCP_FORWARD_NOT_SENT ?
	    "not_sent" : "failed");
	r = call_error_result(text, meta);
	call->answer = r ? jsonrpc_write_result_json(&id, r,
	    &call->answer_len) : NULL;
	json_decref(r);
}

void
mcp_call_delivered(struct mcp_call *call)
{
	struct mcp_forward_outcome	 o;

	call->w->inflight--;
	call_forward_answer(call);
	o.status = call->fwd_status;
	o.detail = call->fwd_detail;
	log_info("mcp forward %s%s%s: %s %s -> %s", call->intent_id,
	    call->intent_id[0] ? " " : "", call->identity, call->tool,
	    o.status == MCP_FORWARD_OK ? "ok" : o.status ==
	    MCP_FORWARD_TOOL_ERROR ? "tool error" : o.status ==
	    MCP_FORWARD_FAILED ? "failed" : "not sent", o.detail);
	if (call->done != NULL)
		call->done(call, &o, call->done_arg);
	else
		mcp_call_finish(call);
}

void
mcp_call_finish(struct mcp_call *call)
{
	char	*text = call->answer;
	size_t	 len = call->answer_len;

	call->answer = NULL;
	call_answer(call, text, len);
}
