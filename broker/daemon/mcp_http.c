/*
 * mcp_http: the HTTP/1.1 client the gateway speaks to its upstreams over
 * (plain or bufferevent_openssl), one exchange per connection at a time,
 * with keep-alive reuse of recently idle connections.  It frames
 * responses (Content-Length, chunked, or until close), and splits their
 * bodies into messages: an application/json body is one message, a
 * text/event-stream body one message per SSE event with data.  Every
 * size is bounded (status line and headers, body, each event) and every
 * exchange has a deadline, so an upstream that hangs, floods or talks
 * nonsense costs one connection and ends with a clear error.
 *
 * What a message means is mcp_upstream.c's business; this file knows no
 * JSON-RPC.  Runs on the upstream thread only.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "mcp_http.h"

#define MH_MAX_HEAD	(16 * 1024)	/* status line and headers */
#define MH_IDLE_REUSE	4		/* s: reuse an idle connection */
#define MH_IDLE_KEEP	30		/* s: then close it */

enum mh_state {
	MH_STATUS, MH_HEADERS, MH_BODY_LENGTH, MH_BODY_EOF, MH_CHUNK_SIZE,
	MH_CHUNK_DATA, MH_CHUNK_END, MH_TRAILERS, MH_DONE, MH_IDLE,
};

enum mh_sink { SINK_JSON, SINK_SSE, SINK_DISCARD };

struct mhttp {
	TAILQ_ENTRY(mhttp)	 idle;
	struct mhttp_pool	*pool;
	struct bufferevent	*bev;
	struct event		*deadline;
	enum mh_state		 state;
	int			 reusable;	/* keep-alive after this one */
	int			 started;	/* bytes of a response seen */
	time_t			 idle_since;
	size_t			 head_bytes;
	/* the response */
	int			 status;
	int			 chunked;
	int64_t			 length;	/* -1: none given */
	int64_t			 left;		/* of length or chunk */
	enum mh_sink		 sink;
	struct evbuffer		*body;		/* JSON body, or SSE line */
	struct evbuffer		*data;		/* SSE: the event's data */
	struct evbuffer		*req;		/* the request, composed */
	size_t			 max_body;
	/* the exchange */
	const struct mhttp_cbs	*cbs;
	void			*arg;
};

struct mhttp_pool {
	struct mhttp_target	 t;
	TAILQ_HEAD(, mhttp)	 idle;
	int			 n_idle;
};

struct mhttp_pool *
mhttp_pool_new(const struct mhttp_target *t)
{
	struct mhttp_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return (NULL);
	p->t = *t;
	TAILQ_INIT(&p->idle);
	return (p);
}

static void
mh_free(struct mhttp *h)
{
	if (h->state == MH_IDLE) {
		TAILQ_REMOVE(&h->pool->idle, h, idle);
		h->pool->n_idle--;
	}
	if (h->bev != NULL)
		bufferevent_free(h->bev);
	if (h->deadline != NULL)
		event_free(h->deadline);
	if (h->body != NULL)
		evbuffer_free(h->body);
	if (h->data != NULL)
		evbuffer_free(h->data);
	if (h->req != NULL)
		evbuffer_free(h->req);
	free(h);
}

void
mhttp_pool_free(struct mhttp_pool *p)
{
	struct mhttp	*h;

	if (p == NULL)
		return;
	while ((h = TAILQ_FIRST(&p->idle)) != NULL)
		mh_free(h);
	free(p);
}

void
mhttp_cancel(struct mhttp *h)
{
	if (h != NULL)
		mh_free(h);
}

/* The exchange is over: tell the owner once, then free or park. */
static void
mh_end(struct mhttp *h, const char *error)
{
	const struct mhttp_cbs	*cbs = h->cbs;
	void			*arg = h->arg;
	struct mhttp_pool	*p = h->pool;
	struct timeval		 keep = { MH_IDLE_KEEP, 0 };

	h->cbs = NULL;
	evtimer_del(h->deadline);
	if (error == NULL && h->state == MH_DONE && h->reusable &&
	    p->n_idle < p->t.max_idle) {
		h->state = MH_IDLE;
		h->idle_since = time(NULL);
		TAILQ_INSERT_HEAD(&p->idle, h, idle);
		p->n_idle++;
		bufferevent_set_timeouts(h->bev, &keep, NULL);
		bufferevent_enable(h->bev, EV_READ);
	} else
		mh_free(h);
	if (cbs != NULL && cbs->on_end != NULL)
		cbs->on_end(error, arg);
}

/* The owner saw what it came for: stop, without reading the rest. */
static void
mh_stop(struct mhttp *h)
{
	if (h->state != MH_DONE)
		h->reusable = 0;
	mh_end(h, NULL);
}

/* Deliver one message; -1 when the exchange ended inside the callback. */
static int
mh_deliver(struct mhttp *h, struct evbuffer *b)
{
	size_t		 len = evbuffer_get_length(b);
	const char	*text = (const char *)evbuffer_pullup(b, -1);
	int		 rc;

	if (h->cbs == NULL || h->cbs->on_message == NULL)
		return (0);
	rc = h->cbs->on_message(text ? text : "", len, h->arg);
	evbuffer_drain(b, len);
	if (rc == 1) {
		mh_stop(h);
		return (-1);
	}
	return (0);
}

/* One SSE line (without its end of line). */
static int
mh_sse_line(struct mhttp *h, const char *line, size_t n)
{
	const char	*v;
	size_t		 vn;

	if (n == 0) {
		if (evbuffer_get_length(h->data) == 0)
			return (0);
		return (mh_deliver(h, h->data));
	}
	if (line[0] == ':')
		return (0);
	v = memchr(line, ':', n);
	vn = v ? n - (size_t)(v - line) - 1 : 0;
	if (v != NULL && vn > 0 && v[1] == ' ') {
		v++;
		vn--;
	}
	if ((size_t)((v ? v - 1 : line + n) - line) == 4 &&
	    strncmp(line, "data", 4) == 0) {
		if (evbuffer_get_length(h->data) > 0)
			evbuffer_add(h->data, "\n", 1);
		if (v != NULL)
			evbuffer_add(h->data, v + 1, vn);
	}
	/* event, id and retry are not needed: MCP's events are all
	 * "message", and streams are not resumed. */
	return (0);
}

/* Decoded body bytes into the sink; -1 when the exchange ended. */
static int
mh_body(struct mhttp *h, const char *p, size_t n)
{
	const char	*nl;
	size_t		 k, len;
	char		*line;

	switch (h->sink) {
	case SINK_DISCARD:
		return (0);
	case SINK_JSON:
		if (evbuffer_get_length(h->body) + n > h->max_body) {
			mh_end(h, "the answer is larger than the limit");
			return (-1);
		}
		evbuffer_add(h->body, p, n);
		return (0);
	case SINK_SSE:
		break;
	}
	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl ? (size_t)(nl - p) : n;
		if (evbuffer_get_length(h->body) + k > h->max_body ||
		    evbuffer_get_length(h->data) + k > h->max_body) {
			mh_end(h, "an event of the answer is larger than the "
			    "limit");
			return (-1);
		}
		evbuffer_add(h->body, p, k);
		if (nl == NULL)
			return (0);
		p += k + 1;
		n -= k + 1;
		len = evbuffer_get_length(h->body);
		line = (char *)evbuffer_pullup(h->body, -1);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (mh_sse_line(h, line ? line : "", len) == -1)
			return (-1);
		evbuffer_drain(h->body, evbuffer_get_length(h->body));
	}
	return (0);
}

/* The body is complete. */
static void
mh_body_end(struct mhttp *h)
{
	h->state = MH_DONE;
	if (h->sink == SINK_JSON && evbuffer_get_length(h->body) > 0 &&
	    mh_deliver(h, h->body) == -1)
		return;
	if (h->sink == SINK_SSE && evbuffer_get_length(h->data) > 0 &&
	    mh_deliver(h, h->data) == -1)
		return;
	mh_end(h, NULL);
}

static int
mh_header_is(const char *line, const char *name, const char **val)
{
	size_t	 n = strlen(name);

	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return (0);
	*val = line + n + 1 + strspn(line + n + 1, " \t");
	return (1);
}

/* "text/event-stream; charset=utf-8" is text/event-stream. */
static int
mh_media_is(const char *v, const char *type)
{
	size_t	 n = strlen(type);

	return (strncasecmp(v, type, n) == 0 && (v[n] == '\0' ||
	    v[n] == ';' || v[n] == ' '));
}

static const char *
mh_header(struct mhttp *h, const char *line)
{
	const char	*v;
	char		*end;
	long long	 n;

	if (mh_header_is(line, "Content-Length", &v)) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end != '\0' || errno != 0 ||
		    (h->length != -1 && h->length != n))
			return ("a bad Content-Length");
		h->length = n;
	} else if (mh_header_is(line, "Transfer-Encoding", &v)) {
		if (strcasecmp(v, "chunked") != 0)
			return ("a transfer encoding other than chunked");
		h->chunked = 1;
	} else if (mh_header_is(line, "Connection", &v)) {
		if (strcasestr(v, "close") != NULL)
			h->reusable = 0;
	} else if (mh_header_is(line, "Content-Type", &v)) {
		h->sink = mh_media_is(v, "text/event-stream") ? SINK_SSE :
		    mh_media_is(v, "application/json") ? SINK_JSON :
		    SINK_DISCARD;
	} else if (h->cbs != NULL && h->cbs->on_header != NULL)
		h->cbs->on_header(line, h->arg);
	return (NULL);
}

/* The head is complete: choose how the body is framed. */
static int
mh_head_done(struct mhttp *h)
{
	if (h->chunked && h->length != -1) {
		mh_end(h, "both Content-Length and chunked: refused");
		return (-1);
	}
	if (h->cbs != NULL && h->cbs->on_status != NULL &&
	    h->cbs->on_status(h->status, h->arg) == -1) {
		h->reusable = 0;
		mh_stop(h);
		return (-1);
	}
	if (h->status == 204 || h->status == 304 || h->length == 0) {
		h->state = MH_DONE;
		mh_end(h, NULL);
		return (-1);
	}
	if (h->chunked)
		h->state = MH_CHUNK_SIZE;
	else if (h->length > 0) {
		if (h->length > (int64_t)h->max_body && h->sink != SINK_SSE) {
			mh_end(h, "the answer is larger than the limit");
			return (-1);
		}
		h->left = h->length;
		h->state = MH_BODY_LENGTH;
	} else {
		h->state = MH_BODY_EOF;
		h->reusable = 0;
	}
	return (0);
}

/* One line of the head or of chunked framing, or NULL for "not yet". */
static char *
mh_line(struct mhttp *h, struct evbuffer *in, size_t *n)
{
	char	*line;

	*n = 0;
	line = evbuffer_readln(in, n, EVBUFFER_EOL_CRLF);
	if (line != NULL)
		h->head_bytes += *n + 2;
	else if (evbuffer_get_length(in) + h->head_bytes > MH_MAX_HEAD) {
		mh_end(h, "the answer's head is too long");
		*n = (size_t)-1;
	}
	if (line != NULL && h->head_bytes > MH_MAX_HEAD) {
		free(line);
		mh_end(h, "the answer's head is too long");
		*n = (size_t)-1;
		return (NULL);
	}
	return (line);
}

static int
mh_status_line(struct mhttp *h, const char *line)
{
	if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' &&
	    line[7] != '1') || line[8] != ' ' || !isdigit((unsigned char)
	    line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || (line[12] != ' ' &&
	    line[12] != '\0')) {
		mh_end(h, "the answer is not HTTP");
		return (-1);
	}
	h->status = atoi(line + 9);
	if (line[7] == '0')
		h->reusable = 0;
	h->state = MH_HEADERS;
	return (0);
}

/* Parse as much of in as there is; -1 when the exchange ended. */
static int
mh_parse(struct mhttp *h, struct evbuffer *in)
{
	char		*line, *end;
	const char	*why;
	size_t		 n;
	unsigned char	 buf[16384];
	int		 got;

	for (;;) {
		switch (h->state) {
		case MH_STATUS:
		case MH_HEADERS:
		case MH_CHUNK_SIZE:
		case MH_CHUNK_END:
		case MH_TRAILERS:
			if ((line = mh_line(h, in, &n)) == NULL)
				return (n == (size_t)-1 ? -1 : 0);
			if (h->state == MH_STATUS) {
				got = mh_status_line(h, line);
				free(line);
				if (got == -1)
					return (-1);
			} else if (h->state == MH_HEADERS) {
				if (n == 0) {
					free(line);
					if (h->status >= 100 && h->status < 200) {
						h->state = MH_STATUS;
						continue;
					}
					if (mh_head_done(h) == -1)
						return (-1);
					continue;
				}
				why = mh_header(h, line);
				free(line);
				if (why != NULL) {
					mh_end(h, why);
					return (-1);
				}
			} else if (h->state == MH_CHUNK_SIZE) {
				errno = 0;
				h->left = (int64_t)strtoll(line, &end, 16);
				got = !isxdigit((unsigned char)line[0]) ||
				    errno != 0 || h->left < 0 ||
				    (*end != '\0' && *end != ';');
				free(line);
				if (got) {
					mh_end(h, "bad chunked framing");
					return (-1);
				}
				h->head_bytes = 0;
				h->state = h->left == 0 ? MH_TRAILERS :
				    MH_CHUNK_DATA;
			} else if (h->state == MH_CHUNK_END) {
				free(line);
				if (n != 0) {
					mh_end(h, "bad chunked framing");
					return (-1);
				}
				h->state = MH_CHUNK_SIZE;
			} else {
				free(line);
				if (n == 0) {
					mh_body_end(h);
					return (-1);
				}
			}
			continue;
		case MH_BODY_LENGTH:
		case MH_CHUNK_DATA:
		case MH_BODY_EOF:
			n = evbuffer_get_length(in);
			if (n == 0)
				return (0);
			if (h->state != MH_BODY_EOF && (int64_t)n > h->left)
				n = (size_t)h->left;
			if (n > sizeof(buf))
				n = sizeof(buf);
			evbuffer_remove(in, buf, n);
			if (mh_body(h, (const char *)buf, n) == -1)
				return (-1);
			if (h->state == MH_BODY_EOF)
				continue;
			h->left -= (int64_t)n;
			if (h->left > 0)
				continue;
			if (h->state == MH_CHUNK_DATA) {
				h->state = MH_CHUNK_END;
				continue;
			}
			mh_body_end(h);
			return (-1);
		case MH_DONE:
		case MH_IDLE:
			/* Nothing may come unasked: close it. */
			if (evbuffer_get_length(in) > 0) {
				h->reusable = 0;
				if (h->state == MH_IDLE) {
					mh_free(h);
					return (-1);
				}
			}
			return (0);
		}
	}
}

static void
mh_read_cb(struct bufferevent *bev, void *arg)
{
	struct mhttp	*h = arg;

	h->started = 1;
	(void)mh_parse(h, bufferevent_get_input(bev));
}

static void
mh_error_text(struct mhttp *h, short what, char *buf, size_t len)
{
	unsigned long	 e = bufferevent_get_openssl_error(h->bev);
	char		 ssl[200];

	if (e != 0) {
		ERR_error_string_n(e, ssl, sizeof(ssl));
		snprintf(buf, len, "TLS failed: %s", ssl);
	} else if (what & BEV_EVENT_TIMEOUT)
		snprintf(buf, len, "the connection timed out");
	else if (!h->started)
		snprintf(buf, len, "cannot connect to %s:%d: %s",
		    h->pool->t.host, h->pool->t.port, errno ?
		    strerror(errno) : "closed");
	else
		snprintf(buf, len, "the connection closed in the middle of "
		    "the answer");
}

static void
mh_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mhttp	*h = arg;
	char		 why[300];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (h->state == MH_IDLE) {
		mh_free(h);
		return;
	}
	if (h->state == MH_DONE)
		return;
	/* Bytes may still sit in the input: parse them first. */
	if (mh_parse(h, bufferevent_get_input(bev)) == -1)
		return;
	if ((what & BEV_EVENT_EOF) && h->state == MH_BODY_EOF) {
		mh_body_end(h);
		return;
	}
	mh_error_text(h, what, why, sizeof(why));
	h->reusable = 0;
	mh_end(h, why);
}

static void
mh_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mhttp	*h = arg;
	char		 why[80];

	snprintf(why, sizeof(why), "no complete answer within %d s",
	    h->pool->t.timeout);
	h->reusable = 0;
	mh_end(h, why);
}

static int
mh_is_ip(const char *host)
{
	unsigned char	 buf[16];

	return (evutil_inet_pton(AF_INET, host, buf) == 1 ||
	    evutil_inet_pton(AF_INET6, host, buf) == 1);
}

/* A fresh connection, connecting (and handshaking) in the background. */
static struct mhttp *
mh_connect(struct mhttp_pool *p)
{
	const struct mhttp_target *t = &p->t;
	struct mhttp		*h;
	SSL			*ssl = NULL;
	X509_VERIFY_PARAM	*vp;
	int			 flags = BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return (NULL);
	h->pool = p;
	if (t->ssl_ctx != NULL) {
		if ((ssl = SSL_new(t->ssl_ctx)) == NULL)
			goto fail;
		vp = SSL_get0_param(ssl);
		/* The certificate must name the host of the URL. */
		if (mh_is_ip(t->host)) {
			if (X509_VERIFY_PARAM_set1_ip_asc(vp, t->host) != 1)
				goto fail;
		} else if (SSL_set1_host(ssl, t->host) != 1 ||
		    SSL_set_tlsext_host_name(ssl, t->host) != 1)
			goto fail;
		h->bev = bufferevent_openssl_socket_new(t->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, flags);
		ssl = NULL;	/* the bufferevent owns it, or freed it */
		if (h->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
	} else
		h->bev = bufferevent_socket_new(t->base, -1, flags);
	if (h->bev == NULL || (h->deadline = evtimer_new(t->base,
	    mh_deadline_cb, h)) == NULL)
		goto fail;
	bufferevent_setcb(h->bev, mh_read_cb, NULL, mh_event_cb, h);
	if (bufferevent_socket_connect_hostname(h->bev, t->dns, AF_UNSPEC,
	    t->host, t->port) == -1)
		goto fail;
	return (h);
 fail:
	SSL_free(ssl);
	mh_free(h);
	return (NULL);
}

/* A parked connection idle for less than MH_IDLE_REUSE (*reused set),
 * else a new one. */
static struct mhttp *
mh_get(struct mhttp_pool *p, int reuse, int *reused)
{
	struct mhttp	*h;
	time_t		 now = time(NULL);

	*reused = 0;
	while (reuse && (h = TAILQ_FIRST(&p->idle)) != NULL) {
		TAILQ_REMOVE(&p->idle, h, idle);
		p->n_idle--;
		if (now - h->idle_since < MH_IDLE_REUSE) {
			bufferevent_set_timeouts(h->bev, NULL, NULL);
			*reused = 1;
			return (h);
		}
		h->state = MH_DONE;
		mh_free(h);
	}
	return (mh_connect(p));
}

/* On a kept-alive plain connection the request is written at once, not
 * on the loop's next turn (write event on, a wait, the write, the event
 * off again).  Whatever does not leave, or meets an error, goes the
 * bufferevent's usual way. */
static void
mh_send_now(struct mhttp *h, struct evbuffer *req, int reused)
{
	if (reused && h->pool->t.ssl_ctx == NULL)
		(void)evbuffer_write(req, bufferevent_getfd(h->bev));
}

struct mhttp *
mhttp_send(struct mhttp_pool *p, const struct mhttp_request *rq,
    const struct mhttp_cbs *cbs, void *arg)
{
	struct mhttp	*h;
	struct evbuffer	*req;
	struct timeval	 tv = { p->t.timeout, 0 };
	int		 reused, left;

	if ((h = mh_get(p, rq->reuse, &reused)) == NULL)
		return (NULL);
	h->state = MH_STATUS;
	h->reusable = 1;
	h->started = 0;
	h->head_bytes = 0;
	h->status = 0;
	h->chunked = 0;
	h->length = -1;
	h->sink = SINK_DISCARD;
	h->max_body = rq->max_body;
	h->cbs = cbs;
	h->arg = arg;
	if ((h->body == NULL && (h->body = evbuffer_new()) == NULL) ||
	    (h->data == NULL && (h->data = evbuffer_new()) == NULL) ||
	    (h->req == NULL && (h->req = evbuffer_new()) == NULL)) {
		mh_free(h);
		return (NULL);
	}
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	evbuffer_drain(h->data, evbuffer_get_length(h->data));
	req = h->req;
	evbuffer_add_printf(req, "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: toolgate\r\n", rq->method, p->t.path, p->t.authority);
	if (rq->body != NULL)
		evbuffer_add_printf(req, "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\n", rq->body_len);
	if (rq->headers != NULL)
		evbuffer_add(req, rq->headers, strlen(rq->headers));
	evbuffer_add(req, "\r\n", 2);
	if (rq->body != NULL)
		evbuffer_add(req, rq->body, rq->body_len);
	if (!rq->no_deadline)
		evtimer_add(h->deadline, &tv);
	mh_send_now(h, req, reused);
	left = evbuffer_get_length(req) > 0;
	evbuffer_add_buffer(bufferevent_get_output(h->bev), req);
	bufferevent_enable(h->bev, left ? EV_READ | EV_WRITE : EV_READ);
	return (h);
}
