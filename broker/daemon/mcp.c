/*
 * mcp: the gateway's endpoint, POST/GET/DELETE /mcp (MCP Streamable
 * HTTP, revisions 2025-06-18 and 2025-11-25), and its shared state: the
 * agents' sessions, the published catalog of upstream tools, and each
 * worker's inbox for finished forwards.  It answers initialize, ping,
 * notifications and tools/list itself, and checks every tools/call
 * (known tool, arguments an object whose numbers keep their value)
 * before it hands the call to the decision path (mcp_call_decide).
 * Protocol errors are JSON-RPC errors with a 4xx status; nothing here
 * answers 5xx but 503 for "too many sessions".
 *
 * Sessions are this broker's own (random ids, bounded in number per
 * identity and in all, expired when idle) and bound to the identity that
 * made them: another identity presenting the id gets 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "broker.h"
#include "canon.h"
#include "clock.h"
#include "http.h"
#include "jsonrpc.h"
#include "jsontext.h"
#include "jsonw.h"
#include "log.h"
#include "mcp.h"

#define SESSION_BUCKETS		4096
#define SESSIONS_PER_IDENTITY	64
#define MCP_SERVER_VERSION	"0.1.0"

struct msession {
	char			 id[MCP_SESSION_ID_LEN + 1];
	char			 identity[IDENT_MAX];
	char			 version[16];
	time_t			 last;
	struct msession		*hnext;
	TAILQ_ENTRY(msession)	 lru;		/* least recently used first */
};

struct inbox {
	pthread_mutex_t		 lock;
	struct mcp_call		*head, **tail;
	struct event		*ev;
};

struct mcp_gateway {
	const struct mcp_conf	*conf;
	pthread_mutex_t		 lock;		/* catalog and sessions */
	struct mcp_catalog	*catalog;
	struct msession		*buckets[SESSION_BUCKETS];
	TAILQ_HEAD(, msession)	 lru;
	int			 n_sessions;
	struct mcp_upstreams	*up;
	struct inbox		 inbox[BROKER_MAX_THREADS];
	int			 n_inbox;
};

/* ---- the catalog ---- */

static void
catalog_free(struct mcp_catalog *c)
{
	size_t	 i;

	for (i = 0; i < c->n_tools; i++)
		free(c->tools[i].text);
	free(c->tools);
	free(c);
}

void
mcp_catalog_put(struct mcp_catalog *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) ==
	    0)
		catalog_free(c);
}

struct mcp_catalog *
mcp_catalog_get(struct broker *b)
{
	struct mcp_gateway	*g = b->mcp;
	struct mcp_catalog	*c;

	pthread_mutex_lock(&g->lock);
	if ((c = g->catalog) != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&g->lock);
	return (c);
}

/* Upstream thread: swap in a new catalog (its reference is stolen). */
static void
catalog_publish(struct broker *b, struct mcp_catalog *c)
{
	struct mcp_gateway	*g = b->mcp;
	struct mcp_catalog	*old;

	pthread_mutex_lock(&g->lock);
	old = g->catalog;
	g->catalog = c;
	pthread_mutex_unlock(&g->lock);
	mcp_catalog_put(old);
}

const struct mcp_tool *
mcp_catalog_find(const struct mcp_catalog *c, const char *name)
{
	size_t	 lo = 0, hi, mid;
	int	 cmp;

	if (c == NULL)
		return (NULL);
	hi = c->n_tools;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcmp(name, c->tools[mid].name);
		if (cmp == 0)
			return (&c->tools[mid]);
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return (NULL);
}

struct mcp_upstreams *
mcp_upstreams_of(struct broker *b)
{
	return (b->mcp->up);
}

/* ---- sessions ---- */

static unsigned
session_bucket(const char *id)
{
	unsigned	 h = 0;

	for (; *id != '\0'; id++)
		h = h * 31 + (unsigned char)*id;
	return (h % SESSION_BUCKETS);
}

static void
session_remove(struct mcp_gateway *g, struct msession *s)
{
	struct msession	**pp = &g->buckets[session_bucket(s->id)];

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp == s)
		*pp = s->hnext;
	TAILQ_REMOVE(&g->lru, s, lru);
	g->n_sessions--;
	free(s);
}

/* Under g->lock: drop sessions idle for longer than the limit. */
static void
session_expire(struct mcp_gateway *g, time_t now)
{
	struct msession	*s, *next;

	for (s = TAILQ_FIRST(&g->lru); s != NULL &&
	    now - s->last > g->conf->session_idle; s = next) {
		next = TAILQ_NEXT(s, lru);
		session_remove(g, s);
	}
}

/* Under g->lock: the session id of identity, or NULL. */
static struct msession *
session_find(struct mcp_gateway *g, const char *id, const char *identity,
    time_t now)
{
	struct msession	*s;

	session_expire(g, now);
	if (strlen(id) != MCP_SESSION_ID_LEN)
		return (NULL);
	for (s = g->buckets[session_bucket(id)]; s != NULL; s = s->hnext)
		if (canon_ct_equal(s->id, id, MCP_SESSION_ID_LEN))
			break;
	if (s == NULL || strcmp(s->identity, identity) != 0)
		return (NULL);
	s->last = now;
	TAILQ_REMOVE(&g->lru, s, lru);
	TAILQ_INSERT_TAIL(&g->lru, s, lru);
	return (s);
}

/* A new session for identity: 0 with its id in out, -1 when full. */
static int
session_new(struct mcp_gateway *g, const char *identity, const char *version,
    char out[MCP_SESSION_ID_LEN + 1])
{
	struct msession	*s, *o, *oldest = NULL;
	unsigned char	 rnd[16];
	time_t		 now = time(NULL);
	int		 mine = 0, i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return (-1);
	memcpy(s->id, "ms_", 3);
	for (i = 0; i < 16; i++)
		snprintf(s->id + 3 + 2 * i, 3, "%02x", rnd[i]);
	snprintf(s->identity, sizeof(s->identity), "%s", identity);
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->last = now;
	pthread_mutex_lock(&g->lock);
	session_expire(g, now);
	TAILQ_FOREACH(o, &g->lru, lru)
		if (strcmp(o->identity, identity) == 0 && mine++ == 0)
			oldest = o;
	/* One identity's many sessions push out its own oldest, never
	 * anyone else's. */
	if (mine >= SESSIONS_PER_IDENTITY)
		session_remove(g, oldest);
	else if (g->n_sessions >= g->conf->max_sessions) {
		pthread_mutex_unlock(&g->lock);
		free(s);
		return (-1);
	}
	s->hnext = g->buckets[session_bucket(s->id)];
	g->buckets[session_bucket(s->id)] = s;
	TAILQ_INSERT_TAIL(&g->lru, s, lru);
	g->n_sessions++;
	memcpy(out, s->id, MCP_SESSION_ID_LEN + 1);
	pthread_mutex_unlock(&g->lock);
	return (0);
}

/* ---- answers ---- */

void
mcp_send(struct worker *w, struct evhttp_request *req, int sse, int status,
    const char *text, size_t len)
{
	struct request	 rq = { .req = req, .w = w };
	struct evbuffer	*b;

	if (!sse || status != 200) {
		http_reply_text(&rq, status, "application/json", text, len);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		http_reply_text(&rq, status, "application/json", text, len);
		return;
	}
	evbuffer_add_printf(b, "event: message\ndata: ");
	evbuffer_add(b, text, len);
	evbuffer_add(b, "\n\n", 2);
	http_reply_text(&rq, 200, "text/event-stream",
	    (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

/* A JSON-RPC error with an HTTP status (id NULL: null). */
static void
mcp_error(struct request *rq, int status, const struct jsonrpc_span *id,
    int code, const char *message)
{
	size_t	 len;
	char	*text = jsonrpc_write_error(id, code, message, NULL, &len);

	if (text == NULL) {
		http_reply_error(rq, E_INTERNAL, "out of memory");
		return;
	}
	http_reply_text(rq, status, "application/json", text, len);
	free(text);
}

static void
mcp_result(struct request *rq, int sse, const struct jsonrpc_span *id,
    json_t *result)
{
	size_t	 len;
	char	*text = result ? jsonrpc_write_result_json(id, result, &len) :
	    NULL;

	json_decref(result);
	if (text == NULL) {
		mcp_error(rq, 200, id, JSONRPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	mcp_send(rq->w, rq->req, sse, 200, text, len);
	free(text);
}

/* ---- checks every request passes ---- */

static const char *
header(struct request *rq, const char *name)
{
	return (evhttp_find_header(evhttp_request_get_input_headers(rq->req),
	    name));
}

/* 1 if the comma-separated media ranges of accept include type (or a
 * wildcard that covers it). */
static int
accepts(const char *accept, const char *type)
{
	const char	*p = accept;
	size_t		 n, tn = strlen(type);
	const char	*slash = strchr(type, '/');

	while (*p != '\0') {
		p += strspn(p, " \t,");
		n = strcspn(p, ",;");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if ((n == tn && strncasecmp(p, type, n) == 0) ||
		    (n == 3 && strncmp(p, "*/*", 3) == 0) ||
		    (slash && n == (size_t)(slash - type) + 2 &&
		    strncasecmp(p, type, n - 1) == 0 && p[n - 1] == '*'))
			return (1);
		p += strcspn(p, ",");
	}
	return (0);
}

/* JSON (0) or SSE (1) answers, from Accept; -1 answered 406. */
static int
answer_mode(struct request *rq)
{
	const char	*a = header(rq, "Accept");

	if (a == NULL || accepts(a, "application/json"))
		return (0);
	if (accepts(a, "text/event-stream"))
		return (1);
	mcp_error(rq, 406, NULL, JSONRPC_INVALID_REQUEST, "Not Acceptable: "
	    "the MCP endpoint answers application/json or text/event-stream; "
	    "send Accept: application/json, text/event-stream");
	return (-1);
}

static int
version_supported(const char *v)
{
	return (strcmp(v, MCP_PROTOCOL_LATEST) == 0 ||
	    strcmp(v, MCP_PROTOCOL_OLDEST) == 0);
}

/* Browsers send Origin; toolgate's endpoint is for agents with client
 * certificates, and a page must never reach it (DNS rebinding). */
static int
origin_refused(struct request *rq)
{
	if (header(rq, "Origin") == NULL)
		return (0);
	mcp_error(rq, 403, NULL, JSONRPC_INVALID_REQUEST, "Forbidden: "
	    "requests with an Origin header are refused; the MCP endpoint "
	    "is not for web pages");
	return (1);
}

/* The caller's session (copied into s), or answered 400/404. */
static int
session_check(struct request *rq, const struct jsonrpc_span *id,
    struct msession *out)
{
	struct mcp_gateway	*g = rq->w->broker->mcp;
	const char		*sid = header(rq, "Mcp-Session-Id");
	const char		*v = header(rq, "MCP-Protocol-Version");
	struct msession		*s;

	if (sid == NULL) {
		mcp_error(rq, 400, id, JSONRPC_INVALID_REQUEST, "Bad Request: "
		    "Mcp-Session-Id header is required; send initialize "
		    "first");
		return (-1);
	}
	if (v != NULL && !version_supported(v)) {
		mcp_error(rq, 400, id, JSONRPC_INVALID_REQUEST, "Bad Request: "
		    "unsupported MCP-Protocol-Version; this gateway speaks "
		    MCP_PROTOCOL_LATEST " and " MCP_PROTOCOL_OLDEST);
		return (-1);
	}
	pthread_mutex_lock(&g->lock);
	if ((s = session_find(g, sid, rq->peer->identity, time(NULL))) !=
	    NULL)
		*out = *s;
	pthread_mutex_unlock(&g->lock);
	if (s == NULL) {
		mcp_error(rq, 404, id, -32001, "Session not found: it expired "
		    "or was ended; send initialize again");
		return (-1);
	}
	return (0);
}

/* ---- methods ---- */

static void
mcp_initialize(struct request *rq, int sse, const struct jsonrpc_msg *m)
{
	struct mcp_gateway	*g = rq->w->broker->mcp;
	json_t			*p = jsonrpc_span_json(&m->params);
	const char		*want = json_string_value(json_object_get(p,
	    "protocolVersion"));
	const char		*v;
	char			 sid[MCP_SESSION_ID_LEN + 1];

	if (want == NULL) {
		json_decref(p);
		mcp_error(rq, 200, &m->id, JSONRPC_INVALID_PARAMS, "initialize "
		    "needs params.protocolVersion");
		return;
	}
	/* The client's version when we speak it, else our latest. */
	v = version_supported(want) ? (strcmp(want, MCP_PROTOCOL_OLDEST) == 0 ?
	    MCP_PROTOCOL_OLDEST : MCP_PROTOCOL_LATEST) : MCP_PROTOCOL_LATEST;
	json_decref(p);
	if (session_new(g, rq->peer->identity, v, sid) == -1) {
		mcp_error(rq, 503, &m->id, -32000, "too many MCP sessions; end "
		    "unused ones (DELETE /mcp) or retry later");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(rq->req),
	    "Mcp-Session-Id", sid);
	log_info("mcp session %.11s... for %s (protocol %s)", sid,
	    rq->peer->identity, v);
	mcp_result(rq, sse, &m->id, json_pack("{ss s{s{sb}} s{ss ss ss} ss}",
	    "protocolVersion", v,
	    "capabilities", "tools", "listChanged", 0,
	    "serverInfo", "name", "toolgate", "title", "toolgate MCP gateway",
	    "version", MCP_SERVER_VERSION,
	    "instructions", "Every tool call goes through toolgate, which "
	    "decides it by policy. A result that says a human must approve "
	    "means: tell the user, and call again with the same arguments "
	    "once they have approved. A refused call must not be retried "
	    "unchanged."));
}

static void
mcp_tools_list(struct request *rq, int sse, const struct jsonrpc_msg *m)
{
	struct worker		*w = rq->w;
	struct mcp_catalog	*c;
	json_t			*p = jsonrpc_span_json(&m->params);
	struct evbuffer		*b;
	size_t			 i, len;
	int			 first = 1;
	char			*text;

	if (json_object_get(p, "cursor") != NULL) {
		json_decref(p);
		mcp_error(rq, 200, &m->id, JSONRPC_INVALID_PARAMS, "invalid "
		    "cursor: this gateway lists every tool in one page");
		return;
	}
	json_decref(p);
	if (decider_refresh(&w->dec) == -1) {
		mcp_error(rq, 200, &m->id, JSONRPC_INTERNAL_ERROR, "the "
		    "policy cannot be read right now; retry later");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		mcp_error(rq, 200, &m->id, JSONRPC_INTERNAL_ERROR,
		    "out of memory");
		return;
	}
	evbuffer_add_printf(b, "{\"tools\":[");
	c = mcp_catalog_get(w->broker);
	for (i = 0; c != NULL && i < c->n_tools; i++) {
		if (!policy_offers(w->dec.policy, rq->peer->identity,
		    c->tools[i].name))
			continue;
		if (!first)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, c->tools[i].text, c->tools[i].text_len);
		first = 0;
	}
	mcp_catalog_put(c);
	evbuffer_add_printf(b, "]}");
	len = evbuffer_get_length(b);
	text = jsonrpc_write_result(&m->id, (const char *)evbuffer_pullup(b,
	    -1), len, &len);
	evbuffer_free(b);
	if (text == NULL) {
		mcp_error(rq, 200, &m->id, JSONRPC_INTERNAL_ERROR,
		    "out of memory");
		return;
	}
	mcp_send(w, rq->req, sse, 200, text, len);
	free(text);
}

int
mcp_hold_seconds(const struct broker *b)
{
	return (b->mcp->conf->hold);
}

/* A copy of the JSON text at ptr in the body, or NULL when absent. */
static char *
body_member(const char *body, size_t len, const char *ptr, size_t *out_len)
{
	struct jsontext_value	 v;
	char			*s;

	if (jsontext_find(body, len, ptr, strlen(ptr), &v) != JSONTEXT_OK ||
	    (s = malloc(v.len + 1)) == NULL)
		return (NULL);
	memcpy(s, v.text, v.len);
	s[v.len] = '\0';
	if (out_len != NULL)
		*out_len = v.len;
	return (s);
}

/* The checks of tools/call params that need no catalog; NULL or why. */
static const char *
call_params_check(const char *body, size_t len, json_t *p, char *why,
    size_t whylen)
{
	enum canon_number	 bad;
	char			 where[128];
	json_t			*args, *meta, *tok;

	switch (canon_numbers_check(body, len, "/params/arguments", &bad,
	    where, sizeof(where))) {
	case 1:
		snprintf(why, whylen, "the number at %s in arguments %s",
		    where[0] ? where : "/", canon_number_problem(bad));
		return (why);
	case -1:
		return ("the message cannot be read");
	default:
		break;
	}
	if (p == NULL)
		return ("params has a member twice, or a number that cannot "
		    "be read");
	if (!json_is_string(json_object_get(p, "name")))
		return ("tools/call needs params.name, a string");
	args = json_object_get(p, "arguments");
	if (args != NULL && !json_is_object(args))
		return ("arguments must be a JSON object");
	if (args != NULL && canon_depth(args, MCP_MAX_ARGS_DEPTH + 1) >
	    MCP_MAX_ARGS_DEPTH)
		return ("arguments may nest at most 32 levels deep");
	meta = json_object_get(p, "_meta");
	if (meta != NULL && !json_is_object(meta))
		return ("_meta must be an object");
	tok = json_object_get(meta, "progressToken");
	if (tok != NULL && !json_is_string(tok) && !json_is_integer(tok))
		return ("_meta.progressToken must be a string or an integer");
	return (NULL);
}

static struct mcp_call *
call_new(struct request *rq, int sse, const struct jsonrpc_msg *m,
    const struct msession *s, const struct mcp_tool *t, json_t *p,
    const char *body, size_t len)
{
	struct mcp_call	*call;
	json_t		*args = json_object_get(p, "arguments");
	json_t		*tok = json_object_get(json_object_get(p, "_meta"),
	    "progressToken");

	if ((call = calloc(1, sizeof(*call))) == NULL)
		return (NULL);
	call->w = rq->w;
	call->req = rq->req;
	call->sse = sse;
	call->sse_ok = sse || (header(rq, "Accept") != NULL &&
	    accepts(header(rq, "Accept"), "text/event-stream"));
	call->upstream = t->upstream;
	call->received = clock_now();
	snprintf(call->identity, sizeof(call->identity), "%s",
	    rq->peer->identity);
	snprintf(call->session, sizeof(call->session), "%s", s->id);
	snprintf(call->tool, sizeof(call->tool), "%s", t->name);
	call->id_text = strndup(m->id.text, m->id.len);
	call->id_len = m->id.len;
	call->upstream_tool = strdup(t->upstream_name);
	if (args != NULL) {
		call->args = json_incref(args);
		call->args_json = body_member(body, len, "/params/arguments",
		    &call->args_json_len);
		call->args_canon = canon_dump(args);
	} else
		call->args_canon = strdup("{}");
	if (tok != NULL)
		call->progress_token = jsonw_dump(tok, JSONW_PLAIN, NULL);
	if (call->id_text == NULL || call->upstream_tool == NULL ||
	    call->args_canon == NULL || (args != NULL && call->args_json ==
	    NULL) || (tok != NULL && call->progress_token == NULL)) {
		mcp_call_free(call);
		return (NULL);
	}
	return (call);
}

static void
mcp_tools_call(struct request *rq, int sse, const struct jsonrpc_msg *m,
    const struct msession *s, const char *body, size_t len)
{
	struct mcp_catalog	*c;
	const struct mcp_tool	*t;
	struct mcp_call		*call = NULL;
	json_t			*p = jsonrpc_span_json(&m->params);
	const char		*why;
	char			 buf[300], msg[400];

	if ((why = call_params_check(body, len, p, buf, sizeof(buf))) !=
	    NULL) {
		json_decref(p);
		mcp_error(rq, 200, &m->id, JSONRPC_INVALID_PARAMS, why);
		return;
	}
	c = mcp_catalog_get(rq->w->broker);
	t = mcp_catalog_find(c, json_string_value(json_object_get(p, "name")));
	if (t == NULL) {
		snprintf(msg, sizeof(msg), "Unknown tool: %.200s; tools/list "
		    "names the tools this gateway offers",
		    json_string_value(json_object_get(p, "name")));
		mcp_catalog_put(c);
		json_decref(p);
		mcp_error(rq, 200, &m->id, JSONRPC_INVALID_PARAMS, msg);
		return;
	}
	call = call_new(rq, sse, m, s, t, p, body, len);
	mcp_catalog_put(c);
	json_decref(p);
	if (call == NULL) {
		mcp_error(rq, 200, &m->id, JSONRPC_INTERNAL_ERROR,
		    "out of memory");
		return;
	}
	/* As an intent's args: they are stored, audited and granted. */
	if (strlen(call->args_canon) > INTENT_MAX_BYTES) {
		mcp_call_free(call);
		mcp_error(rq, 200, &m->id, JSONRPC_INVALID_PARAMS, "arguments "
		    "are at most 64 KiB (as RFC 8785 text)");
		return;
	}
	mcp_call_watch(call);
	mcp_call_decide(call);
}

static void
mcp_request(struct request *rq, int sse, const struct jsonrpc_msg *m,
    const char *body, size_t len)
{
	struct msession	 s;

	if (strcmp(m->method, "initialize") == 0) {
		mcp_initialize(rq, sse, m);
		return;
	}
	if (session_check(rq, &m->id, &s) == -1)
		return;
	if (strcmp(m->method, "ping") == 0)
		mcp_result(rq, sse, &m->id, json_object());
	else if (strcmp(m->method, "tools/list") == 0)
		mcp_tools_list(rq, sse, m);
	else if (strcmp(m->method, "tools/call") == 0)
		mcp_tools_call(rq, sse, m, &s, body, len);
	else
		mcp_error(rq, 200, &m->id, JSONRPC_METHOD_NOT_FOUND, "Method "
		    "not found: this gateway offers initialize, ping, "
		    "tools/list and tools/call");
}

void
mcp_post(struct request *rq)
{
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	struct msession		 s;
	const char		*body;
	size_t			 len;
	int			 sse;

	if (origin_refused(rq))
		return;
	if (!http_content_type_is(rq, "application/json")) {
		mcp_error(rq, 415, NULL, JSONRPC_INVALID_REQUEST, "Unsupported "
		    "Media Type: POST /mcp takes Content-Type: "
		    "application/json");
		return;
	}
	if ((sse = answer_mode(rq)) == -1)
		return;
	body = http_body(rq, &len);
	if (len > MCP_MAX_BODY) {
		mcp_error(rq, 413, NULL, JSONRPC_INVALID_REQUEST, "Payload Too "
		    "Large: an MCP message is at most 1 MiB");
		return;
	}
	if (jsonrpc_parse(body, len, MCP_MAX_DEPTH, &m, &f) == -1) {
		mcp_error(rq, f.code == JSONRPC_INTERNAL_ERROR ? 503 : 400,
		    &f.id, f.code, f.message);
		return;
	}
	if (m.kind == JSONRPC_REQUEST) {
		mcp_request(rq, sse, &m, body, len);
		return;
	}
	/* Notifications, and answers to requests we never send. */
	if (session_check(rq, NULL, &s) == -1)
		return;
	http_reply_text(rq, 202, "application/json", "", 0);
}

void
mcp_get(struct request *rq)
{
	if (origin_refused(rq))
		return;
	/* No server-initiated stream: the spec's answer for that is 405. */
	evhttp_add_header(evhttp_request_get_output_headers(rq->req), "Allow",
	    "POST, DELETE");
	mcp_error(rq, 405, NULL, JSONRPC_INVALID_REQUEST, "Method Not "
	    "Allowed: this gateway sends no messages of its own; POST "
	    "requests to /mcp");
}

void
mcp_delete(struct request *rq)
{
	struct mcp_gateway	*g = rq->w->broker->mcp;
	const char		*sid = header(rq, "Mcp-Session-Id");
	struct msession		*s;

	if (origin_refused(rq))
		return;
	if (sid == NULL) {
		mcp_error(rq, 400, NULL, JSONRPC_INVALID_REQUEST, "Bad Request: "
		    "DELETE /mcp ends the session named by Mcp-Session-Id");
		return;
	}
	pthread_mutex_lock(&g->lock);
	if ((s = session_find(g, sid, rq->peer->identity, time(NULL))) !=
	    NULL)
		session_remove(g, s);
	pthread_mutex_unlock(&g->lock);
	if (s == NULL) {
		mcp_error(rq, 404, NULL, -32001, "Session not found");
		return;
	}
	log_info("mcp session %.11s... ended by %s", sid, rq->peer->identity);
	http_reply_text(rq, 204, "application/json", "", 0);
}

/* ---- finished forwards, back on their worker ---- */

void
mcp_forward_done(struct mcp_call *call)
{
	struct inbox	*in = &call->w->broker->mcp->inbox[call->w->idx];

	call->next = NULL;
	pthread_mutex_lock(&in->lock);
	*in->tail = call;
	in->tail = &call->next;
	pthread_mutex_unlock(&in->lock);
	event_active(in->ev, 0, 0);
}

static void
inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct inbox	*in = arg;
	struct mcp_call	*call, *next;

	pthread_mutex_lock(&in->lock);
	call = in->head;
	in->head = NULL;
	in->tail = &in->head;
	pthread_mutex_unlock(&in->lock);
	for (; call != NULL; call = next) {
		next = call->next;
		mcp_call_delivered(call);
	}
}

/* ---- start and stop ---- */

int
mcp_start(struct broker *b, struct mcp_conf *conf)
{
	struct mcp_gateway	*g;
	int			 i;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return (-1);
	g->conf = conf;
	pthread_mutex_init(&g->lock, NULL);
	TAILQ_INIT(&g->lru);
	b->mcp = g;
	for (i = 0; i < b->nworkers; i++) {
		pthread_mutex_init(&g->inbox[i].lock, NULL);
		g->inbox[i].tail = &g->inbox[i].head;
		if ((g->inbox[i].ev = event_new(b->workers[i].base, -1, 0,
		    inbox_cb, &g->inbox[i])) == NULL)
			return (-1);
		g->n_inbox++;
	}
	if (conf->n_up > 0 && (g->up = mcp_upstreams_start(b, conf,
	    catalog_publish)) == NULL)
		return (-1);
	for (i = 0; i < conf->n_up; i++)
		log_info("mcp upstream %s: %s", conf->up[i].name,
		    conf->up[i].url);
	return (0);
}

void
mcp_stop(struct broker *b)
{
	struct mcp_gateway	*g = b->mcp;
	struct msession		*s;
	struct mcp_call		*call, *next;
	int			 i;

	if (g == NULL)
		return;
	mcp_upstreams_stop(g->up);
	for (i = 0; i < g->n_inbox; i++) {
		for (call = g->inbox[i].head; call != NULL; call = next) {
			next = call->next;
			mcp_call_free(call);
		}
		event_free(g->inbox[i].ev);
		pthread_mutex_destroy(&g->inbox[i].lock);
	}
	for (i = 0; i < SESSION_BUCKETS; i++)
		while ((s = g->buckets[i]) != NULL) {
			g->buckets[i] = s->hnext;
			free(s);
		}
	mcp_catalog_put(g->catalog);
	pthread_mutex_destroy(&g->lock);
	free(g);
	b->mcp = NULL;
}
