/*
 * http: evhttp wiring for one worker — limits, the route table, the
 * fail-closed peer check every request passes, and the reply writers that
 * all answers go through (JSON bodies, error objects, no-store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "jsonw.h"
#include "log.h"
#include "mcp.h"
#include "server.h"

/* One TLS record's worth of plaintext. */
#define HTTP_COALESCE_MAX	16384

enum { M_GET = EVHTTP_REQ_GET, M_POST = EVHTTP_REQ_POST,
    M_PUT = EVHTTP_REQ_PUT, M_DELETE = EVHTTP_REQ_DELETE };

static const struct route {
	int		 method;
	const char	*pattern;	/* '*' matches one path segment */
	route_fn	 fn;
} routes[] = {
	{ M_POST,	"/v1/intents",		api_intent_post },
	{ M_GET,	"/v1/intents/*",	api_intent_get },
	{ M_GET,	"/v1/jwks",		api_jwks },
	{ M_GET,	"/v1/policy",		api_policy_get },
	{ M_PUT,	"/v1/policy",		api_policy_put },
	{ M_GET,	"/v1/approvals",	api_approvals_list },
	{ M_POST,	"/v1/approvals/*/approve", api_approve },
	{ M_POST,	"/v1/approvals/*/reject", api_reject },
	{ M_GET,	"/v1/killswitch",	api_killswitch_get },
	{ M_POST,	"/v1/killswitch",	api_killswitch_trip },
	{ M_POST,	"/v1/killswitch/*/reset", api_killswitch_reset },
	{ M_POST,	"/v1/grants/redeem",	api_grant_redeem },
	{ M_GET,	"/v1/audit",		api_audit_list },
	{ M_GET,	"/healthz",		api_healthz },
	{ M_GET,	"/metrics",		api_metrics },
	{ M_POST,	"/mcp",			mcp_post },
	{ M_GET,	"/mcp",			mcp_get },
	{ M_DELETE,	"/mcp",			mcp_delete },
};

static const char *
http_status_text(int status)
{
	switch (status) {
	case 200: return ("OK");
	case 201: return ("Created");
	case 202: return ("Accepted");
	case 204: return ("No Content");
	case 400: return ("Bad Request");
	case 401: return ("Unauthorized");
	case 403: return ("Forbidden");
	case 404: return ("Not Found");
	case 405: return ("Method Not Allowed");
	case 406: return ("Not Acceptable");
	case 409: return ("Conflict");
	case 413: return ("Payload Too Large");
	case 415: return ("Unsupported Media Type");
	case 423: return ("Locked");
	case 429: return ("Too Many Requests");
	case 503: return ("Service Unavailable");
	default: return ("Internal Server Error");
	}
}

/*
 * evhttp queues the head and the body as two buffer chains, and
 * bufferevent_openssl turns each chain into its own TLS record, write(2)
 * and TCP segment.  Nothing is written before the event loop runs again,
 * so joining a small answer into one chain here halves the records and
 * system calls per answer (and the client's wake-ups).
 */
static void
http_coalesce(struct bufferevent *bev)
{
	struct evbuffer	*out = bev ? bufferevent_get_output(bev) : NULL;

	if (out != NULL && evbuffer_get_length(out) <= HTTP_COALESCE_MAX)
		(void)evbuffer_pullup(out, -1);
}

void
http_reply_text(struct request *rq, int status, const char *ctype,
    const char *text, size_t len)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(rq->req);
	struct evhttp_connection *conn = evhttp_request_get_connection(rq->req);
	struct evbuffer		*buf = evbuffer_new();

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (buf != NULL)
		evbuffer_add(buf, text, len);
	evhttp_send_reply(rq->req, status, http_status_text(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
	if (conn != NULL)
		http_coalesce(evhttp_connection_get_bufferevent(conn));
}

void
http_reply_json(struct request *rq, int status, json_t *body)
{
	size_t	 len = 0;
	char	*text = body ? jsonw_dump(body, JSONW_PLAIN, &len) : NULL;

	json_decref(body);
	if (text == NULL) {
		static const char oom[] =
		    "{\"error\":\"internal_error\",\"message\":\"out of memory\"}";
		http_reply_text(rq, 500, "application/json", oom,
		    sizeof(oom) - 1);
		return;
	}
	http_reply_text(rq, status, "application/json", text, len);
	free(text);
}

void
http_reply_error(struct request *rq, enum reason r, const char *msg)
{
	metrics_error(&rq->w->metrics, r);
	http_reply_json(rq, reason_status(r), json_pack("{ss ss}",
	    "error", reason_code(r), "message", msg ? msg : reason_text(r)));
}

const char *
http_body(struct request *rq, size_t *len)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(rq->req);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return (NULL);
	return ((const char *)evbuffer_pullup(in, -1));
}

int
http_content_type_is(struct request *rq, const char *mime)
{
	const char	*ct = evhttp_find_header(
	    evhttp_request_get_input_headers(rq->req), "Content-Type");
	size_t		 n = strlen(mime);

	return (ct != NULL && strncasecmp(ct, mime, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '));
}

/* Match path against pattern; a '*' segment is copied into id. */
static int
http_match(const char *pattern, const char *path, char *id, size_t idlen)
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

static uint64_t
http_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

static void
http_dispatch(struct request *rq, const char *path, char *id, size_t idlen)
{
	enum evhttp_cmd_type	 method = evhttp_request_get_command(rq->req);
	size_t			 i;
	int			 path_known = 0;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!http_match(routes[i].pattern, path, id, idlen))
			continue;
		path_known = 1;
		if ((int)method == routes[i].method) {
			rq->id = strchr(routes[i].pattern, '*') ? id : NULL;
			routes[i].fn(rq);
			return;
		}
	}
	http_reply_error(rq, path_known ? E_METHOD_NOT_ALLOWED : E_NOT_FOUND,
	    NULL);
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct request		 rq = { .req = req, .w = arg };
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	char			 id[128], retry[16];
	uint64_t		 t0 = http_now_us();
	int			 wait;

	/* Fail closed: evhttp serves plaintext if TLS setup ever failed. */
	if ((rq.peer = conn_peer(req)) == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		http_reply_error(&rq, E_UNAUTHENTICATED, NULL);
		return;
	}
	if ((wait = ratelimit_take(rq.w->broker->rl, rq.peer->identity,
	    t0)) > 0) {
		snprintf(retry, sizeof(retry), "%d", wait);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", retry);
		http_reply_error(&rq, E_RATE_LIMITED, "too many requests from "
		    "this identity; retry after the Retry-After seconds");
		return;
	}
	rq.path = uri ? evhttp_uri_get_path(uri) : NULL;
	rq.query = uri ? evhttp_uri_get_query(uri) : NULL;
	if (rq.path == NULL) {
		http_reply_error(&rq, E_BAD_REQUEST, "no path");
		return;
	}
	http_dispatch(&rq, rq.path, id, sizeof(id));
	metrics_latency(&rq.w->metrics, http_now_us() - t0);
}

void
http_setup(struct worker *w)
{
	evhttp_set_bevcb(w->http, conn_bevcb, w);
	evhttp_set_max_headers_size(w->http, SERVER_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, SERVER_MAX_BODY);
	evhttp_set_timeout(w->http, w->broker->limits.idle_timeout);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_default_content_type(w->http, "application/json");
	evhttp_set_gencb(w->http, http_request_cb, w);
}
