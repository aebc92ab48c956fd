/*
 * http: evhttp wiring for one worker — limits, the checks every request
 * passes before any handler (a verified peer, the rate limit, one
 * unambiguous body length), and the reply writers that all answers go
 * through.  Handlers are chosen and authorised in routes.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "broker.h"
#include "conn.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "routes.h"

/* One TLS record's worth of plaintext. */
#define HTTP_COALESCE_MAX	16384

struct http_blob {
	int	 refs;
	char	*data;
	size_t	 len;
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

/* Send buf (may be NULL) as the answer to req; buf is freed.  req NULL:
 * a deferred request whose client left; the answer is dropped. */
static void
http_send(struct evhttp_request *req, int status, const char *ctype,
    struct evbuffer *buf)
{
	struct evkeyvalq		*h;
	struct evhttp_connection	*conn;

	if (req == NULL) {
		if (buf != NULL)
			evbuffer_free(buf);
		return;
	}
	h = evhttp_request_get_output_headers(req);
	conn = evhttp_request_get_connection(req);
	evhttp_add_header(h, "Content-Type", ctype);
	/* Nothing is cached unless its handler says so (the JWKS). */
	if (evhttp_find_header(h, "Cache-Control") == NULL)
		evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, status, http_status_text(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
	if (conn != NULL)
		http_coalesce(evhttp_connection_get_bufferevent(conn));
}

void
http_reply_text(struct request *rq, int status, const char *ctype,
    const char *text, size_t len)
{
	struct evbuffer	*buf = evbuffer_new();

	if (buf != NULL)
		evbuffer_add(buf, text, len);
	http_send(rq->req, status, ctype, buf);
}

void
http_reply_buffer(struct request *rq, int status, struct evbuffer *buf)
{
	http_send(rq->req, status, "application/json", buf);
}

static void
http_send_json(struct evhttp_request *req, int status, json_t *body)
{
	static const char oom[] =
	    "{\"error\":\"internal_error\",\"message\":\"out of memory\"}";
	struct evbuffer	*buf;
	size_t		 len = 0;
	char		*text = body ? jsonw_dump(body, JSONW_PLAIN, &len) : NULL;

	json_decref(body);
	if ((buf = evbuffer_new()) != NULL) {
		if (text != NULL)
			evbuffer_add(buf, text, len);
		else
			evbuffer_add(buf, oom, sizeof(oom) - 1);
	}
	http_send(req, text != NULL ? status : 500, "application/json", buf);
	free(text);
}

void
http_reply_json(struct request *rq, int status, json_t *body)
{
	http_send_json(rq->req, status, body);
}

void
http_reply_error_to(struct worker *w, struct evhttp_request *req,
    enum reason r, const char *msg)
{
	metrics_error(&w->metrics, r);
	http_send_json(req, reason_status(r), json_pack("{ss ss}",
	    "error", reason_code(r), "message", msg ? msg : reason_text(r)));
}

void
http_reply_error(struct request *rq, enum reason r, const char *msg)
{
	http_reply_error_to(rq->w, rq->req, r, msg);
}

struct http_blob *
http_blob_new(char *data, size_t len)
{
	struct http_blob	*b;

	if (data == NULL || (b = malloc(sizeof(*b))) == NULL) {
		free(data);
		return (NULL);
	}
	b->refs = 1;
	b->data = data;
	b->len = len;
	return (b);
}

void
http_blob_unref(struct http_blob *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	free(b->data);
	free(b);
}

static void
http_blob_cleanup(const void *data, size_t len, void *arg)
{
	http_blob_unref(arg);
}

void
http_reply_blob(struct worker *w, struct evhttp_request *req, int status,
    struct http_blob *b)
{
	struct evbuffer	*buf = evbuffer_new();

	/* Every answer shares the one rendering; the last one out frees it.
	 * Single-threaded: the blob never leaves its worker. */
	b->refs++;
	if (buf == NULL ||
	    evbuffer_add_reference(buf, b->data, b->len, http_blob_cleanup,
	    b) == -1) {
		http_blob_unref(b);
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_error_to(w, req, E_INTERNAL, NULL);
		return;
	}
	http_send(req, status, "application/json", buf);
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

uint64_t
http_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

void
http_record_latency(struct worker *w, uint64_t t0)
{
	metrics_latency(&w->metrics, http_now_us() - t0);
}

static void
http_job_done(struct commit_job *j)
{
	struct http_job	*hj = (struct http_job *)j;
	struct request	 rq = { .req = j->req, .w = j->w };

	/* Its logs and counters stand whether or not the client stayed. */
	hj->answer(&rq, hj);
	/* Counted until the answer, commit included. */
	if (j->req != NULL)
		http_record_latency(j->w, hj->t0);
	hj->release(hj);
}

void
http_submit(struct request *rq, struct http_job *hj)
{
	hj->t0 = rq->t0;
	hj->job.w = rq->w;
	hj->job.req = rq->req;
	hj->job.done = http_job_done;
	rq->deferred = 1;
	commit_submit(rq->w->broker, &hj->job);
}

/*
 * One body length, stated once (RFC 9112 §6.3): two Content-Length
 * headers, or Content-Length beside Transfer-Encoding, are how requests
 * are smuggled past a proxy that reads them differently.  evhttp reads
 * the first Content-Length (or the chunks) and keeps every header line,
 * so the check is made here, on the headers as received.
 */
static int
http_framing_ok(struct evhttp_request *req)
{
	struct evkeyvalq	*h = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	int			 cl = 0, te = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			cl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0)
			te++;
	}
	return (cl <= 1 && !(cl > 0 && te > 0));
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct request		 rq = { .req = req, .w = arg };
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	char			 retry[16];
	int			 wait;

	rq.t0 = http_now_us();
	/* Fail closed: evhttp serves plaintext if TLS setup ever failed. */
	if ((rq.peer = conn_peer(req)) == NULL) {
		evhttp_add_header(out, "Connection", "close");
		http_reply_error(&rq, E_UNAUTHENTICATED, NULL);
		return;
	}
	if (!http_framing_ok(req)) {
		/* What follows on this connection cannot be trusted. */
		evhttp_add_header(out, "Connection", "close");
		http_reply_error(&rq, E_BAD_REQUEST, "a request may have one "
		    "Content-Length, or Transfer-Encoding without one");
		return;
	}
	if ((wait = ratelimit_take(rq.w->broker->rl, rq.peer->identity,
	    rq.t0)) > 0) {
		snprintf(retry, sizeof(retry), "%d", wait);
		evhttp_add_header(out, "Retry-After", retry);
		metrics_rate_limited(&rq.w->metrics, METRICS_LIMIT_RATE);
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
	routes_dispatch(&rq);
	if (!rq.deferred)
		http_record_latency(rq.w, rq.t0);
}

void
http_setup(struct worker *w)
{
	evhttp_set_bevcb(w->http, conn_bevcb, w);
	evhttp_set_max_headers_size(w->http, BROKER_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, BROKER_MAX_BODY);
	evhttp_set_timeout(w->http, w->broker->limits.idle_timeout);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_default_content_type(w->http, "application/json");
	evhttp_set_gencb(w->http, http_request_cb, w);
}
