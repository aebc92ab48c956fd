/*
 * mcp_upstream: toolgated as an MCP client of each configured upstream
 * (Streamable HTTP), on a thread and event base of its own.  Per
 * upstream: initialize (its own Mcp-Session-Id and protocol version),
 * notifications/initialized, tools/list (every page), a GET stream for
 * notifications/tools/list_changed where the server offers one, and a
 * refresh timer; after each list the catalog of every upstream's tools
 * is rebuilt and published to the workers, and so is the session (its
 * id, protocol version and generation).  Forwards (allowed tools/calls)
 * are sent once each by the worker that decided them, on a lane of its
 * own (its connections, on its own event base: no thread hop on the
 * call's path), while the upstream's session is ready; calls that find
 * it connecting, or whose session ended under them, are queued here and
 * sent when the next session is ready.  Either way the outcome ends on
 * the call's worker.
 *
 * An upstream that fails (refuses, hangs, answers garbage, drops the
 * stream, lists a tool twice) is retried with backoff and its failure is
 * kept as text for the calls that need it; nothing it sends is trusted
 * beyond the JSON-RPC reader's checks, and nothing here ever blocks.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "broker.h"
#include "http.h"
#include "jsonrpc.h"
#include "jsonw.h"
#include "log.h"
#include "mcp.h"
#include "mcp_http.h"
#include "policy.h"

#define UP_BACKOFF_MAX		60	/* s between reconnection attempts */
#define UP_MAX_PAGES		20	/* tools/list pages */
#define UP_MAX_INFLIGHT		64	/* forwards per upstream and thread */
#define UP_MAX_WAITING		256	/* forwards waiting for a session */
#define UP_MAX_SESSION_ID	256
#define UP_CLIENT_VERSION	"0.1.0"

enum up_state { UP_DOWN, UP_CONNECTING, UP_READY };

enum ux_kind { X_INIT, X_INITIALIZED, X_LIST, X_STREAM, X_CALL, X_REPLY };

struct upstream;

/*
 * The sending side of one thread's exchanges with one upstream: the
 * upstream thread's (setup, the stream, and forwards that waited for a
 * session) or a worker's (its forwards).  Each is used by its thread
 * alone; a worker's copies the published session before each send.
 */
struct lane {
	struct upstream		*up;
	struct worker		*w;		/* NULL: the upstream thread's */
	struct mhttp_pool	*pool;
	struct evdns_base	*dns;		/* a worker's own, or NULL */
	char			 session[UP_MAX_SESSION_ID + 1];
	char			 version[16];
	int64_t			 gen;		/* the session's generation */
	int			 inflight;	/* forwards */
	LIST_HEAD(, ux)		 calls;		/* forwards and replies */
};

/* One exchange with an upstream. */
struct ux {
	struct upstream		*up;
	struct lane		*lane;
	enum ux_kind		 kind;
	struct mhttp		*h;
	int64_t			 id;		/* our JSON-RPC id */
	int			 status;	/* HTTP */
	int			 with_session;
	char			 session[UP_MAX_SESSION_ID + 1];
	int			 answered;
	int			 failed_rpc;	/* a JSON-RPC error came */
	char			 rpc_error[200];
	char			*result;	/* the result's JSON text */
	size_t			 result_len;
	struct mcp_call		*call;		/* X_CALL */
	LIST_ENTRY(ux)		 entry;
};

struct upstream {
	struct mcp_upstreams	*u;
	int			 idx;
	const struct mcp_upstream_conf *c;
	SSL_CTX			*ssl_ctx;
	struct mhttp_target	 target;	/* workers' lanes swap in
						 * their base and dns */
	char			 authority[300];
	enum up_state		 state;
	struct lane		 lane;		/* the session is its own */
	int64_t			 next_id;	/* atomic: every lane's */
	/* What workers see, under u->lock: */
	int			 pub_ready;
	char			 pub_session[UP_MAX_SESSION_ID + 1];
	char			 pub_version[16];
	int64_t			 pub_gen;
	int			 refresh_asked;	/* atomic: a worker's stream
						 * said list_changed */
	struct ux		*setup;		/* init/initialized/list */
	struct ux		*stream;	/* the GET stream */
	int			 stream_refused;	/* 405 */
	int			 backoff, stream_backoff;
	struct event		*retry_ev, *refresh_ev, *stream_ev;
	int			 refresh_wanted;
	json_t			*listing;	/* pages so far */
	int			 pages;
	json_t			*tools;		/* as last listed */
	char			 last_error[256];
	struct mcp_call		*waiting;	/* forwards, until READY */
	int			 n_waiting;
};

struct mcp_upstreams {
	struct broker		*b;
	const struct mcp_conf	*conf;
	void			(*publish)(struct broker *, struct mcp_catalog *);
	pthread_t		 thread;
	int			 running;
	struct event_base	*base;
	struct evdns_base	*dns;
	struct event		*wake_ev, *stop_ev;
	pthread_mutex_t		 lock;
	struct mcp_call		*queue, **queue_tail;
	struct upstream		 up[MCP_MAX_UPSTREAMS];
	int			 n;
	struct lane		*lanes;		/* [worker][upstream] */
	int			 nworkers;
};

static void	up_connect(struct upstream *up);
static struct evdns_base *up_dns_new(struct event_base *base);
static void	up_list(struct upstream *up, const char *cursor);
static void	up_send_waiting(struct upstream *up);

/* ---- the catalog ---- */

static int
tool_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct mcp_tool *)a)->name,
	    ((const struct mcp_tool *)b)->name));
}

static int
tool_schema_ok(json_t *tool)
{
	json_t	*s = json_object_get(tool, "inputSchema");

	/* Agents' SDKs refuse a whole list with one tool that has none. */
	return (json_is_object(s) && json_is_string(json_object_get(s,
	    "type")) && strcmp(json_string_value(json_object_get(s, "type")),
	    "object") == 0);
}

/* How many tools of up's list are named name. */
static int
tool_count(json_t *tools, const char *name)
{
	size_t	 i;
	json_t	*t;
	int	 n = 0;

	json_array_foreach(tools, i, t)
		if (json_is_string(json_object_get(t, "name")) &&
		    strcmp(json_string_value(json_object_get(t, "name")),
		    name) == 0)
			n++;
	return (n);
}

/* The offered form of one tool of up, or -1 (logged) when not offered. */
static int
tool_offer(struct upstream *up, json_t *t, struct mcp_tool *out)
{
	const char	*name = json_string_value(json_object_get(t, "name"));
	json_t		*copy;
	int		 n;

	if (name == NULL) {
		log_warnx("mcp upstream %s: a tool without a name is not "
		    "offered", up->c->name);
		return (-1);
	}
	n = snprintf(out->name, sizeof(out->name), "%s.%s", up->c->name,
	    name);
	if (n < 0 || (size_t)n >= sizeof(out->name) ||
	    !policy_mcp_name_valid(out->name)) {
		log_warnx("mcp upstream %s: tool \"%.64s\" is not offered: "
		    "%s.NAME must be [A-Za-z0-9_-] in dotted segments, at most "
		    "%d characters", up->c->name, name, up->c->name,
		    INTENT_MAX_TOOL);
		return (-1);
	}
	if (tool_count(up->tools, name) > 1) {
		log_warnx("mcp upstream %s: lists tool %s more than once; "
		    "offering none of them", up->c->name, name);
		return (-1);
	}
	if (!tool_schema_ok(t)) {
		log_warnx("mcp upstream %s: tool %s is not offered: its "
		    "inputSchema is not an object schema", up->c->name, name);
		return (-1);
	}
	if ((copy = json_deep_copy(t)) == NULL ||
	    json_object_set_new(copy, "name", json_string(out->name)) == -1 ||
	    (out->text = jsonw_dump(copy, JSONW_PLAIN, &out->text_len)) ==
	    NULL) {
		json_decref(copy);
		return (-1);
	}
	json_decref(copy);
	out->upstream = up->idx;
	return (0);
}

/* Rebuild the catalog from every upstream's last list and publish it. */
static void
catalog_publish(struct mcp_upstreams *u)
{
	struct mcp_catalog	*c;
	size_t			 n = 0, i;
	json_t			*t;
	int			 k;

	for (k = 0; k < u->n; k++)
		n += json_array_size(u->up[k].tools);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (n > 0 && (c->tools = calloc(n, sizeof(*c->tools))) == NULL)) {
		free(c);
		log_warnx("%s: out of memory", __func__);
		return;
	}
	c->refs = 1;
	for (k = 0; k < u->n; k++)
		json_array_foreach(u->up[k].tools, i, t)
			if (tool_offer(&u->up[k], t, &c->tools[c->n_tools]) ==
			    0)
				c->n_tools++;
	qsort(c->tools, c->n_tools, sizeof(*c->tools), tool_cmp);
	/* After the sort: upstream names have no dot, so X follows the
	 * first one. */
	for (i = 0; i < c->n_tools; i++)
		c->tools[i].upstream_name = c->tools[i].name +
		    strcspn(c->tools[i].name, ".") + 1;
	u->publish(u->b, c);
}

/* ---- exchanges ---- */

static struct ux *
ux_new(struct lane *l, enum ux_kind kind)
{
	struct ux	*x = calloc(1, sizeof(*x));

	if (x == NULL)
		return (NULL);
	x->up = l->up;
	x->lane = l;
	x->kind = kind;
	/* Unique across lanes: the server matches answers to ids within
	 * the session. */
	x->id = __atomic_add_fetch(&l->up->next_id, 1, __ATOMIC_RELAXED);
	return (x);
}

static void
ux_free(struct ux *x)
{
	if (x == NULL)
		return;
	free(x->result);
	free(x);
}

static int
ux_on_status(int status, void *arg)
{
	struct ux	*x = arg;

	x->status = status;
	return (0);
}

static void
ux_on_header(const char *line, void *arg)
{
	struct ux	*x = arg;
	const char	*v;
	size_t		 n, i;

	if (strncasecmp(line, "Mcp-Session-Id:", 15) != 0)
		return;
	v = line + 15 + strspn(line + 15, " \t");
	n = strlen(v);
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return;		/* not a session id MCP allows */
	if (n > 0 && n <= UP_MAX_SESSION_ID)
		memcpy(x->session, v, n + 1);
}

/* The headers of a POST on lane l (malloc'd), extra (a grant) appended
 * whole however long it is; NULL when out of memory. */
static char *
ux_headers(const struct lane *l, const char *extra)
{
	char	*h;

	if (asprintf(&h, "Accept: application/json, text/event-stream\r\n"
	    "%s%s%s%s%s%s%s", l->session[0] ? "Mcp-Session-Id: " : "",
	    l->session, l->session[0] ? "\r\n" : "",
	    l->version[0] ? "MCP-Protocol-Version: " : "", l->version,
	    l->version[0] ? "\r\n" : "", extra != NULL ? extra : "") == -1)
		return (NULL);
	return (h);
}

static void	ux_on_end(const char *error, void *arg);
static int	ux_on_message(const char *text, size_t len, void *arg);

static const struct mhttp_cbs ux_cbs = {
	ux_on_status, ux_on_header, ux_on_message, ux_on_end,
};

/* Start x with body (may be NULL for GET).  0, or -1 (x freed). */
static int
ux_start(struct ux *x, const char *method, const char *body, size_t len,
    const char *extra_headers)
{
	struct lane		*l = x->lane;
	struct mhttp_request	 rq;
	char			*headers;

	if (x->kind == X_STREAM) {
		if (asprintf(&headers, "Accept: text/event-stream\r\n"
		    "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: %s\r\n",
		    l->session, l->version) == -1)
			headers = NULL;
	} else
		headers = ux_headers(l, extra_headers);
	if (headers == NULL) {
		ux_free(x);
		return (-1);
	}
	x->with_session = l->session[0] != '\0';
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.headers = headers;
	rq.body = body;
	rq.body_len = len;
	rq.max_body = MCP_UPSTREAM_MAX_BODY;
	/* Only connections idle for less than 4 s are reused (mcp_http.c),
	 * so the upstream is unlikely to close one under us; if it does, a
	 * tools/call fails and is not sent again: at most once. */
	rq.reuse = 1;
	rq.no_deadline = x->kind == X_STREAM;
	x->h = mhttp_send(l->pool, &rq, &ux_cbs, x);
	free(headers);
	if (x->h == NULL) {
		ux_free(x);
		return (-1);
	}
	return (0);
}

/* POST a request (id) or notification (id 0) with params text. */
static int
ux_post(struct ux *x, const char *method, const char *params_text,
    const char *extra_headers)
{
	struct jsonrpc_span	 id;
	char			 idtext[24], *body;
	size_t			 len;
	int			 rc;

	snprintf(idtext, sizeof(idtext), "%lld", (long long)x->id);
	id.text = idtext;
	id.len = strlen(idtext);
	body = jsonrpc_write_request_text(x->kind == X_INITIALIZED ? NULL :
	    &id, method, params_text, params_text ? strlen(params_text) : 0,
	    &len);
	if (body == NULL) {
		ux_free(x);
		return (-1);
	}
	rc = ux_start(x, "POST", body, len, extra_headers);
	free(body);
	return (rc);
}

/* The server asked us something: ping is answered, anything else
 * (sampling, roots, elicitation) refused; nothing is relayed to agents. */
static void
ux_answer_request(struct lane *l, const struct jsonrpc_msg *m)
{
	struct ux	*x;
	char		*body;
	size_t		 len;

	if ((x = ux_new(l, X_REPLY)) == NULL)
		return;
	if (strcmp(m->method, "ping") == 0)
		body = jsonrpc_write_result(&m->id, "{}", 2, &len);
	else
		body = jsonrpc_write_error(&m->id, JSONRPC_METHOD_NOT_FOUND,
		    "toolgate does not relay requests from servers to agents",
		    NULL, &len);
	if (body == NULL) {
		ux_free(x);
		x = NULL;
	} else if (ux_start(x, "POST", body, len, NULL) == -1)
		x = NULL;	/* freed */
	if (x == NULL)
		log_warnx("mcp upstream %s: cannot answer its %s request",
		    l->up->c->name, m->method);
	else
		LIST_INSERT_HEAD(&l->calls, x, entry);
	free(body);
}

static void
up_refresh_soon(struct upstream *up)
{
	struct timeval	 now = { 0, 0 };

	up->refresh_wanted = 1;
	if (up->state == UP_READY && up->setup == NULL)
		evtimer_add(up->refresh_ev, &now);
}

/* The tools are listed again soon: by the upstream thread, asked from
 * a worker's lane. */
static void
lane_refresh_soon(struct lane *l)
{
	if (l->w == NULL) {
		up_refresh_soon(l->up);
		return;
	}
	__atomic_store_n(&l->up->refresh_asked, 1, __ATOMIC_RELEASE);
	event_active(l->up->u->wake_ev, 0, 0);
}

static int
ux_on_message(const char *text, size_t len, void *arg)
{
	struct ux		*x = arg;
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	char			 idtext[24];
	struct jsonrpc_span	 want;
	json_t			*e;

	if (len == 0)
		return (0);	/* an SSE priming event */
	if (jsonrpc_parse(text, len, 10000, &m, &f) == -1) {
		snprintf(x->rpc_error, sizeof(x->rpc_error), "it answered "
		    "something that is not a JSON-RPC message (%s)", f.message);
		x->failed_rpc = 1;
		return (1);
	}
	switch (m.kind) {
	case JSONRPC_NOTIFICATION:
		if (strcmp(m.method, "notifications/tools/list_changed") == 0)
			lane_refresh_soon(x->lane);
		return (0);
	case JSONRPC_REQUEST:
		ux_answer_request(x->lane, &m);
		return (0);
	default:
		break;
	}
	snprintf(idtext, sizeof(idtext), "%lld", (long long)x->id);
	want.text = idtext;
	want.len = strlen(idtext);
	if (!jsonrpc_id_equal(&m.id, &want))
		return (0);	/* not ours: ignore */
	x->answered = 1;
	if (m.kind == JSONRPC_ERROR) {
		e = jsonrpc_span_json(&m.error);
		snprintf(x->rpc_error, sizeof(x->rpc_error), "it answered "
		    "error %lld: %.150s", (long long)m.error_code,
		    json_string_value(json_object_get(e, "message")));
		json_decref(e);
		x->failed_rpc = 1;
		return (1);
	}
	if ((x->result = malloc(m.result.len + 1)) != NULL) {
		memcpy(x->result, m.result.text, m.result.len);
		x->result[m.result.len] = '\0';
		x->result_len = m.result.len;
	}
	return (1);
}

/* ---- the session: initialize, initialized, tools/list ---- */

/* What the workers' lanes see of the session: whether calls may be sent
 * on it, and which it is. */
static void
up_publish(struct upstream *up)
{
	struct mcp_upstreams	*u = up->u;

	pthread_mutex_lock(&u->lock);
	up->pub_ready = up->state == UP_READY;
	memcpy(up->pub_session, up->lane.session, sizeof(up->pub_session));
	memcpy(up->pub_version, up->lane.version, sizeof(up->pub_version));
	up->pub_gen = up->lane.gen;
	pthread_mutex_unlock(&u->lock);
}

static void
up_fail(struct upstream *up, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
up_fail_waiting(struct upstream *up)
{
	struct mcp_call	*call, *next;

	for (call = up->waiting; call != NULL; call = next) {
		next = call->next;
		call->fwd_status = MCP_FORWARD_NOT_SENT;
		snprintf(call->fwd_detail, sizeof(call->fwd_detail),
		    "the upstream %s is not connected: %.150s", up->c->name,
		    up->last_error);
		mcp_forward_done(call);
	}
	up->waiting = NULL;
	up->n_waiting = 0;
}

static void
up_stream_close(struct upstream *up)
{
	if (up->stream == NULL)
		return;
	mhttp_cancel(up->stream->h);
	ux_free(up->stream);
	up->stream = NULL;
}

/* Connecting failed: keep the last tools, fail who waits, retry later. */
static void
up_fail(struct upstream *up, const char *fmt, ...)
{
	struct timeval	 tv;
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(up->last_error, sizeof(up->last_error), fmt, ap);
	va_end(ap);
	log_warnx("mcp upstream %s (%s): %s; retrying in %d s", up->c->name,
	    up->c->url, up->last_error, up->backoff);
	up->state = UP_DOWN;
	up->lane.session[0] = '\0';
	up->lane.version[0] = '\0';
	up_publish(up);
	json_decref(up->listing);
	up->listing = NULL;
	up_stream_close(up);
	up_fail_waiting(up);
	tv.tv_sec = up->backoff;
	tv.tv_usec = 0;
	evtimer_add(up->retry_ev, &tv);
	up->backoff = up->backoff * 2 > UP_BACKOFF_MAX ? UP_BACKOFF_MAX :
	    up->backoff * 2;
}

/* Why x did not bring a result, as the end of a sentence. */
static void
ux_why(const struct ux *x, const char *error, char *buf, size_t len)
{
	if (x->failed_rpc)
		snprintf(buf, len, "%s", x->rpc_error);
	else if (error != NULL)
		snprintf(buf, len, "%s", error);
	else if (x->status != 200 && x->status != 202)
		snprintf(buf, len, "it answered HTTP %d", x->status);
	else
		snprintf(buf, len, "it sent no answer to the request");
}

static int
up_version_ok(const char *v)
{
	return (v != NULL && (strcmp(v, "2025-11-25") == 0 ||
	    strcmp(v, "2025-06-18") == 0 || strcmp(v, "2025-03-26") == 0));
}

static void
up_initialized_done(struct upstream *up, struct ux *x, const char *error)
{
	char	 why[300];

	if (error != NULL || (x->status != 202 && x->status != 200)) {
		ux_why(x, error, why, sizeof(why));
		up_fail(up, "notifications/initialized failed: %s", why);
		return;
	}
	up_list(up, NULL);
}

static void
up_init_done(struct upstream *up, struct ux *x, const char *error)
{
	json_t		*r = NULL;
	const char	*v;
	char		 why[300];
	struct ux	*n;

	if (x->result == NULL || x->status != 200) {
		ux_why(x, error, why, sizeof(why));
		up_fail(up, "initialize failed: %s", why);
		return;
	}
	r = json_loadb(x->result, x->result_len, JSON_REJECT_DUPLICATES, NULL);
	v = json_string_value(json_object_get(r, "protocolVersion"));
	if (!up_version_ok(v)) {
		up_fail(up, "initialize: it speaks protocol version %.32s; "
		    "toolgate speaks 2025-11-25, 2025-06-18 and 2025-03-26",
		    v ? v : "(none)");
		json_decref(r);
		return;
	}
	snprintf(up->lane.version, sizeof(up->lane.version), "%s", v);
	snprintf(up->lane.session, sizeof(up->lane.session), "%s", x->session);
	up->lane.gen++;
	json_decref(r);
	if ((n = ux_new(&up->lane, X_INITIALIZED)) == NULL ||
	    ux_post(n, "notifications/initialized", NULL, NULL) == -1) {
		up_fail(up, "cannot send notifications/initialized");
		return;
	}
	up->setup = n;
}

static void
up_stream_open(struct upstream *up)
{
	struct ux	*x;

	if (up->stream != NULL || up->stream_refused || up->state !=
	    UP_READY || (x = ux_new(&up->lane, X_STREAM)) == NULL)
		return;
	if (ux_start(x, "GET", NULL, 0, NULL) == 0)
		up->stream = x;
}

static void
up_ready(struct upstream *up)
{
	struct timeval	 tv = { up->u->conf->refresh, 0 };
	int		 was = up->state;
	size_t		 before = json_array_size(up->tools);

	json_decref(up->tools);
	up->tools = up->listing;
	up->listing = NULL;
	up->state = UP_READY;
	up_publish(up);
	up->backoff = 1;
	up->stream_backoff = 1;
	if (was != UP_READY)
		log_info("mcp upstream %s: connected (protocol %s), %zu tools "
		    "listed", up->c->name, up->lane.version,
		    json_array_size(up->tools));
	else if (before != json_array_size(up->tools))
		log_info("mcp upstream %s: tools listed again, %zu tools",
		    up->c->name, json_array_size(up->tools));
	catalog_publish(up->u);
	evtimer_add(up->refresh_ev, &tv);
	up_stream_open(up);
	up_send_waiting(up);
	if (up->refresh_wanted)
		up_refresh_soon(up);
}

static void
up_list_done(struct upstream *up, struct ux *x, const char *error)
{
	json_t		*r, *tools, *t;
	const char	*cursor;
	char		 why[300], *next = NULL;
	size_t		 i;

	if (x->result == NULL || x->status != 200) {
		ux_why(x, error, why, sizeof(why));
		if (x->status == 404 && x->with_session) {
			up_fail(up, "its session ended (tools/list answered "
			    "404)");
			return;
		}
		up_fail(up, "tools/list failed: %s", why);
		return;
	}
	r = json_loadb(x->result, x->result_len, JSON_REJECT_DUPLICATES, NULL);
	tools = json_object_get(r, "tools");
	if (!json_is_array(tools)) {
		json_decref(r);
		up_fail(up, "tools/list: the result has no tools array");
		return;
	}
	if (up->listing == NULL)
		up->listing = json_array();
	json_array_foreach(tools, i, t)
		if (json_is_object(t) && json_array_size(up->listing) <
		    MCP_UPSTREAM_MAX_TOOLS)
			json_array_append(up->listing, t);
	cursor = json_string_value(json_object_get(r, "nextCursor"));
	if (cursor != NULL && ++up->pages < UP_MAX_PAGES &&
	    json_array_size(up->listing) < MCP_UPSTREAM_MAX_TOOLS)
		next = strdup(cursor);
	json_decref(r);
	if (next != NULL) {
		up_list(up, next);
		free(next);
		return;
	}
	up_ready(up);
}

/* tools/list, from cursor (NULL: the first page). */
static void
up_list(struct upstream *up, const char *cursor)
{
	struct ux	*x;
	json_t		*p = cursor ? json_pack("{ss}", "cursor", cursor) : NULL;
	char		*ptext = p ? jsonw_dump(p, JSONW_PLAIN, NULL) : NULL;

	json_decref(p);
	if (cursor == NULL) {
		json_decref(up->listing);
		up->listing = NULL;
		up->pages = 0;
		up->refresh_wanted = 0;
	}
	if ((x = ux_new(&up->lane, X_LIST)) == NULL ||
	    ux_post(x, "tools/list", ptext, NULL) == -1) {
		free(ptext);
		up_fail(up, "cannot send tools/list");
		return;
	}
	free(ptext);
	up->setup = x;
}

static void
up_connect(struct upstream *up)
{
	struct ux	*x;
	json_t		*p;
	char		*ptext;

	up->state = UP_CONNECTING;
	up->lane.session[0] = '\0';
	up->lane.version[0] = '\0';
	up_publish(up);
	up_stream_close(up);	/* the old session's */
	p = json_pack("{ss s{} s{ss ss}}", "protocolVersion",
	    MCP_PROTOCOL_LATEST, "capabilities", "clientInfo", "name",
	    "toolgate", "version", UP_CLIENT_VERSION);
	ptext = p ? jsonw_dump(p, JSONW_PLAIN, NULL) : NULL;
	json_decref(p);
	if (ptext == NULL || (x = ux_new(&up->lane, X_INIT)) == NULL ||
	    ux_post(x, "initialize", ptext, NULL) == -1) {
		free(ptext);
		up_fail(up, "cannot send initialize");
		return;
	}
	free(ptext);
	up->setup = x;
}

/* ---- forwards ---- */

static void
fwd_fail(struct mcp_call *call, enum mcp_forward_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
fwd_fail(struct mcp_call *call, enum mcp_forward_status st, const char *fmt,
    ...)
{
	va_list	 ap;

	call->fwd_status = st;
	va_start(ap, fmt);
	vsnprintf(call->fwd_detail, sizeof(call->fwd_detail), fmt, ap);
	va_end(ap);
	mcp_forward_done(call);
}

static void
fwd_send(struct lane *l, struct mcp_call *call)
{
	struct upstream	*up = l->up;
	struct ux	*x;
	char		*grant;

	if (l->inflight >= UP_MAX_INFLIGHT) {
		fwd_fail(call, MCP_FORWARD_NOT_SENT, "the upstream %s has %d "
		    "calls in flight already", up->c->name, UP_MAX_INFLIGHT);
		return;
	}
	if ((x = ux_new(l, X_CALL)) == NULL) {
		fwd_fail(call, MCP_FORWARD_NOT_SENT, "out of memory");
		return;
	}
	x->call = call;
	/* A grant carries the call's args: as long as they are. */
	if (asprintf(&grant, "Toolgate-Grant: %s\r\n",
	    call->fwd_grant ? call->fwd_grant : "") == -1) {
		x->call = NULL;
		ux_free(x);
		fwd_fail(call, MCP_FORWARD_NOT_SENT, "out of memory");
		return;
	}
	/* fwd_body holds the params; the id is this exchange's own, so
	 * that the answer matches it. */
	if (ux_post(x, "tools/call", call->fwd_body, grant) == -1) {
		free(grant);
		fwd_fail(call, MCP_FORWARD_NOT_SENT, "cannot open a connection "
		    "to the upstream %s", up->c->name);
		return;
	}
	free(grant);
	call->fwd_gen = l->gen;
	LIST_INSERT_HEAD(&l->calls, x, entry);
	l->inflight++;
}

static void
up_send_waiting(struct upstream *up)
{
	struct mcp_call	*call, *next;

	for (call = up->waiting; call != NULL; call = next) {
		next = call->next;
		fwd_send(&up->lane, call);
	}
	up->waiting = NULL;
	up->n_waiting = 0;
}

static void
up_wait(struct upstream *up, struct mcp_call *call)
{
	if (up->n_waiting >= UP_MAX_WAITING) {
		fwd_fail(call, MCP_FORWARD_NOT_SENT, "the upstream %s is "
		    "connecting and too many calls wait for it", up->c->name);
		return;
	}
	call->next = up->waiting;
	up->waiting = call;
	up->n_waiting++;
}

static void	upstreams_queue(struct mcp_upstreams *u,
		    struct mcp_call *call);

/* The session call was sent on is gone, so the server did not run it
 * (MCP: 404 for a terminated session): once more, on a new one, made
 * by the upstream thread unless it made one since. */
static void
fwd_session_gone(struct upstream *up, struct mcp_call *call)
{
	call->fwd_retried = 1;
	if (call->fwd_gen != up->lane.gen || up->state != UP_READY) {
		if (up->state == UP_READY)
			fwd_send(&up->lane, call);	/* a new session */
		else
			up_wait(up, call);
		return;
	}
	log_info("mcp upstream %s: session ended; reconnecting", up->c->name);
	up_wait(up, call);
	if (up->setup == NULL)
		up_connect(up);
}

/* Where a forward's answer goes: the result, or why there is none. */
static void
fwd_done(struct lane *l, struct ux *x, const char *error)
{
	struct upstream	*up = l->up;
	struct mcp_call	*call = x->call;
	json_t		*r;
	char		 why[300];

	LIST_REMOVE(x, entry);
	l->inflight--;
	x->call = NULL;
	if (x->status == 404 && x->with_session && !x->answered &&
	    !call->fwd_retried) {
		if (l->w == NULL)
			fwd_session_gone(up, call);
		else {
			/* The upstream thread owns the session. */
			call->fwd_gone = 1;
			upstreams_queue(up->u, call);
		}
		return;
	}
	if (x->result == NULL) {
		ux_why(x, error, why, sizeof(why));
		fwd_fail(call, MCP_FORWARD_FAILED, "the upstream %s failed: %s",
		    up->c->name, why);
		return;
	}
	r = json_loadb(x->result, x->result_len, JSON_DECODE_ANY, NULL);
	if (!json_is_object(r)) {
		json_decref(r);
		fwd_fail(call, MCP_FORWARD_FAILED, "the upstream %s failed: its "
		    "result is not an object", up->c->name);
		return;
	}
	call->fwd_status = json_is_true(json_object_get(r, "isError")) ?
	    MCP_FORWARD_TOOL_ERROR : MCP_FORWARD_OK;
	json_decref(r);
	snprintf(call->fwd_detail, sizeof(call->fwd_detail), "%s",
	    call->fwd_status == MCP_FORWARD_OK ? "the upstream answered" :
	    "the upstream answered with a tool error");
	call->fwd_result = x->result;
	call->fwd_result_len = x->result_len;
	x->result = NULL;
	mcp_forward_done(call);
}

static void
ux_on_end(const char *error, void *arg)
{
	struct ux	*x = arg;
	struct upstream	*up = x->up;
	struct timeval	 tv;

	x->h = NULL;
	switch (x->kind) {
	case X_INIT:
	case X_INITIALIZED:
	case X_LIST:
		up->setup = NULL;
		if (x->kind == X_INIT)
			up_init_done(up, x, error);
		else if (x->kind == X_INITIALIZED)
			up_initialized_done(up, x, error);
		else
			up_list_done(up, x, error);
		break;
	case X_STREAM:
		up->stream = NULL;
		if (x->status == 405) {
			up->stream_refused = 1;
			log_info("mcp upstream %s: offers no notification "
			    "stream; tools are listed again every %d s",
			    up->c->name, up->u->conf->refresh);
		} else if (x->status == 404 && up->state == UP_READY &&
		    up->setup == NULL) {
			up_connect(up);
		} else if (up->state == UP_READY) {
			tv.tv_sec = up->stream_backoff;
			tv.tv_usec = 0;
			evtimer_add(up->stream_ev, &tv);
			up->stream_backoff = up->stream_backoff * 2 >
			    UP_BACKOFF_MAX ? UP_BACKOFF_MAX :
			    up->stream_backoff * 2;
		}
		break;
	case X_CALL:
		fwd_done(x->lane, x, error);
		break;
	case X_REPLY:
		LIST_REMOVE(x, entry);
		break;
	}
	ux_free(x);
}

/* ---- timers and the queue ---- */

static void
up_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*up = arg;

	if (up->setup == NULL)
		up_connect(up);
}

static void
up_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*up = arg;

	if (up->state == UP_READY && up->setup == NULL)
		up_list(up, NULL);
}

static void
up_stream_cb(evutil_socket_t fd, short what, void *arg)
{
	up_stream_open(arg);
}

/* Workers' calls that found no ready session, or lost theirs, and
 * their lanes' asks for a new tools/list. */
static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mcp_upstreams	*u = arg;
	struct mcp_call		*call, *next;
	struct upstream		*up;
	int			 i;

	for (i = 0; i < u->n; i++)
		if (__atomic_exchange_n(&u->up[i].refresh_asked, 0,
		    __ATOMIC_ACQ_REL))
			up_refresh_soon(&u->up[i]);
	pthread_mutex_lock(&u->lock);
	call = u->queue;
	u->queue = NULL;
	u->queue_tail = &u->queue;
	pthread_mutex_unlock(&u->lock);
	for (; call != NULL; call = next) {
		next = call->next;
		call->next = NULL;
		up = &u->up[call->upstream];
		if (call->fwd_gone)
			fwd_session_gone(up, call);
		else if (up->state == UP_READY)
			fwd_send(&up->lane, call);
		else if (up->state == UP_CONNECTING)
			up_wait(up, call);
		else
			fwd_fail(call, MCP_FORWARD_NOT_SENT, "the upstream %s "
			    "is not connected: %.150s", up->c->name,
			    up->last_error);
	}
}

static void
upstreams_queue(struct mcp_upstreams *u, struct mcp_call *call)
{
	call->next = NULL;
	pthread_mutex_lock(&u->lock);
	*u->queue_tail = call;
	u->queue_tail = &call->next;
	pthread_mutex_unlock(&u->lock);
	event_active(u->wake_ev, 0, 0);
}

/* w's lane to upstream i, its connections made on first use (on w's
 * thread); NULL when they cannot be: the upstream thread sends then. */
static struct lane *
worker_lane(struct mcp_upstreams *u, struct worker *w, int i)
{
	struct lane		*l = &u->lanes[w->idx * u->n + i];
	struct mhttp_target	 t = u->up[i].target;

	if (l->pool != NULL)
		return (l);
	if (l->dns == NULL && (l->dns = up_dns_new(w->base)) == NULL)
		return (NULL);
	t.base = w->base;
	t.dns = l->dns;
	l->pool = mhttp_pool_new(&t);
	return (l->pool != NULL ? l : NULL);
}

/* The session as published, on w's lane: 1 when calls may be sent. */
static int
lane_sync(struct lane *l)
{
	struct upstream	*up = l->up;
	int		 ready;

	pthread_mutex_lock(&up->u->lock);
	if ((ready = up->pub_ready) && l->gen != up->pub_gen) {
		memcpy(l->session, up->pub_session, sizeof(l->session));
		memcpy(l->version, up->pub_version, sizeof(l->version));
		l->gen = up->pub_gen;
	}
	pthread_mutex_unlock(&up->u->lock);
	return (ready);
}

/* Worker thread: send call on its own lane while the session is ready,
 * else hand it to the upstream thread. */
void
mcp_upstreams_forward(struct mcp_upstreams *u, struct mcp_call *call)
{
	struct lane	*l = worker_lane(u, call->w, call->upstream);

	if (l != NULL && lane_sync(l))
		fwd_send(l, call);
	else
		upstreams_queue(u, call);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mcp_upstreams	*u = arg;

	event_base_loopexit(u->base, NULL);
}

static void *
upstreams_main(void *arg)
{
	struct mcp_upstreams	*u = arg;
	int			 i;

	for (i = 0; i < u->n; i++)
		up_connect(&u->up[i]);
	event_base_dispatch(u->base);
	return (NULL);
}

/* ---- set-up ---- */

/* resolv.conf may be missing: names then come from /etc/hosts */
static struct evdns_base *
up_dns_new(struct event_base *base)
{
	struct evdns_base	*dns;

	if ((dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) ==
	    NULL && (dns = evdns_base_new(base, 0)) != NULL)
		evdns_base_load_hosts(dns, NULL);
	return (dns);
}

static SSL_CTX *
up_ssl_ctx(const struct mcp_conf *conf)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return (NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((conf->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx,
	    conf->ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx)) !=
	    1) {
		log_ssl(conf->ca_file ? conf->ca_file : "system CA store");
		SSL_CTX_free(ctx);
		return (NULL);
	}
	return (ctx);
}

static int
up_init(struct mcp_upstreams *u, int i)
{
	struct upstream		*up = &u->up[i];
	const struct mcp_upstream_conf *c = &u->conf->up[i];
	struct mhttp_target	*t = &up->target;
	int			 v6 = strchr(c->host, ':') != NULL;
	int			 dflt = c->port == (c->https ? 443 : 80);

	up->u = u;
	up->idx = i;
	up->c = c;
	up->backoff = 1;
	up->lane.up = up;
	LIST_INIT(&up->lane.calls);
	snprintf(up->authority, sizeof(up->authority), "%s%s%s%s%.0d",
	    v6 ? "[" : "", c->host, v6 ? "]" : "", dflt ? "" : ":",
	    dflt ? 0 : c->port);
	if (c->https && (up->ssl_ctx = up_ssl_ctx(u->conf)) == NULL)
		return (-1);
	t->base = u->base;
	t->dns = u->dns;
	t->ssl_ctx = up->ssl_ctx;
	t->host = c->host;
	t->port = c->port;
	t->authority = up->authority;
	t->path = c->path;
	t->timeout = u->conf->timeout;
	/* As many as may be in flight: with fewer, calls beyond them would
	 * each open (and close) a connection of their own under load. */
	t->max_idle = UP_MAX_INFLIGHT;
	if ((up->lane.pool = mhttp_pool_new(t)) == NULL ||
	    (up->retry_ev = evtimer_new(u->base, up_retry_cb, up)) == NULL ||
	    (up->refresh_ev = evtimer_new(u->base, up_refresh_cb, up)) ==
	    NULL ||
	    (up->stream_ev = evtimer_new(u->base, up_stream_cb, up)) == NULL)
		return (-1);
	return (0);
}

/* Every worker's lane to every upstream, connections made on first use. */
static int
lanes_init(struct mcp_upstreams *u)
{
	struct lane	*l;
	int		 w, i;

	u->nworkers = u->b->nworkers;
	if ((u->lanes = calloc((size_t)u->nworkers * (size_t)u->n,
	    sizeof(*u->lanes))) == NULL)
		return (-1);
	for (w = 0; w < u->nworkers; w++)
		for (i = 0; i < u->n; i++) {
			l = &u->lanes[w * u->n + i];
			l->up = &u->up[i];
			l->w = &u->b->workers[w];
			LIST_INIT(&l->calls);
		}
	return (0);
}

struct mcp_upstreams *
mcp_upstreams_start(struct broker *b, const struct mcp_conf *conf,
    void (*publish)(struct broker *, struct mcp_catalog *))
{
	struct mcp_upstreams	*u;
	int			 i;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return (NULL);
	u->b = b;
	u->conf = conf;
	u->publish = publish;
	u->n = conf->n_up;
	u->queue_tail = &u->queue;
	pthread_mutex_init(&u->lock, NULL);
	if ((u->base = event_base_new()) == NULL)
		goto fail;
	if ((u->dns = up_dns_new(u->base)) == NULL ||
	    (u->wake_ev = event_new(u->base, -1, 0, wake_cb, u)) == NULL ||
	    (u->stop_ev = event_new(u->base, -1, 0, stop_cb, u)) == NULL)
		goto fail;
	for (i = 0; i < u->n; i++)
		if (up_init(u, i) == -1) {
			log_warnx("mcp upstream %s: cannot set it up (TLS "
			    "context or memory)", conf->up[i].name);
			goto fail;
		}
	if (lanes_init(u) == -1)
		goto fail;
	if (pthread_create(&u->thread, NULL, upstreams_main, u) != 0)
		goto fail;
	u->running = 1;
	return (u);
 fail:
	mcp_upstreams_stop(u);
	return (NULL);
}

/* A lane's exchanges abandoned (their calls freed unanswered: the
 * broker is stopping) and its connections closed. */
static void
lane_free(struct lane *l)
{
	struct ux	*x;

	while ((x = LIST_FIRST(&l->calls)) != NULL) {
		LIST_REMOVE(x, entry);
		mhttp_cancel(x->h);
		if (x->call != NULL)
			mcp_call_free(x->call);
		ux_free(x);
	}
	mhttp_pool_free(l->pool);
	if (l->dns != NULL)
		evdns_base_free(l->dns, 0);
}

static void
up_free(struct upstream *up)
{
	if (up->u == NULL)
		return;
	if (up->setup != NULL) {
		mhttp_cancel(up->setup->h);
		ux_free(up->setup);
	}
	if (up->stream != NULL) {
		mhttp_cancel(up->stream->h);
		ux_free(up->stream);
	}
	lane_free(&up->lane);
	while (up->waiting != NULL) {
		struct mcp_call *next = up->waiting->next;

		mcp_call_free(up->waiting);
		up->waiting = next;
	}
	SSL_CTX_free(up->ssl_ctx);
	json_decref(up->listing);
	json_decref(up->tools);
	if (up->retry_ev != NULL)
		event_free(up->retry_ev);
	if (up->refresh_ev != NULL)
		event_free(up->refresh_ev);
	if (up->stream_ev != NULL)
		event_free(up->stream_ev);
}

/* After the workers stopped: nobody queues forwards any more. */
void
mcp_upstreams_stop(struct mcp_upstreams *u)
{
	struct mcp_call	*call, *next;
	int		 i;

	if (u == NULL)
		return;
	if (u->running) {
		event_active(u->stop_ev, 0, 0);
		pthread_join(u->thread, NULL);
	}
	/* The workers' lanes first: their connections are on the workers'
	 * bases, freed after this, and their calls' session is freed next. */
	if (u->lanes != NULL)
		for (i = 0; i < u->nworkers * u->n; i++)
			lane_free(&u->lanes[i]);
	free(u->lanes);
	for (i = 0; i < u->n; i++)
		up_free(&u->up[i]);
	for (call = u->queue; call != NULL; call = next) {
		next = call->next;
		mcp_call_free(call);
	}
	if (u->wake_ev != NULL)
		event_free(u->wake_ev);
	if (u->stop_ev != NULL)
		event_free(u->stop_ev);
	if (u->dns != NULL)
		evdns_base_free(u->dns, 0);
	if (u->base != NULL)
		event_base_free(u->base);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
