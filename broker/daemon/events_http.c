/*
 * events_http: one sink's HTTP(S) client — a kept-alive evhttp
 * connection (over bufferevent_openssl for https, the peer verified
 * against the sink's CA and its host name or address) and one POST at a
 * time with a hard deadline of its own: evhttp's timeout only bounds
 * each read and write, so a receiver that trickles bytes, or accepts and
 * never answers, is cut off by the deadline all the same.  The outcome
 * is handed back from a deferred event, never from inside evhttp's
 * callbacks, so the caller may start the next request or free the
 * connection there.  A request that a kept-alive connection loses before
 * any answer (the receiver closed it as the request went out: HTTP/1.0
 * servers, idle timeouts) is sent once more on a fresh connection, as
 * HTTP clients do; that is not a failed attempt.  A redirect is an answer
 * like any other non-2xx: not followed.  Answers are read into bounded
 * buffers and thrown away.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "events_http.h"
#include "version.h"

#define WEBHOOK_MAX_HEADERS	(16 * 1024)
#define WEBHOOK_MAX_BODY	(64 * 1024)

struct webhook_conn {
	struct event_base		*base;
	struct evdns_base		*dns;
	const struct events_sink	*sink;
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;	/* evcon's */
	int				 stale;	/* reconnect before the next */
	int				 served;	/* answers on evcon */
	int				 reused;	/* req went on a used one */
	int				 retry;	/* send req again, afresh */
	struct evhttp_request		*req;	/* in flight, or NULL */
	struct webhook_post		 post;	/* borrowed until done */
	int				 timeout;
	struct event			*deadline;
	struct event			*done_ev;
	int				 have_err;
	enum evhttp_request_error	 err;
	struct webhook_result		 result;
	webhook_done_fn			 done;
	void				*arg;
};

static void	webhook_deadline_cb(evutil_socket_t, short, void *);
static void	webhook_done_cb(evutil_socket_t, short, void *);

struct webhook_conn *
webhook_conn_new(struct event_base *base, struct evdns_base *dns,
    const struct events_sink *sink)
{
	struct webhook_conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	c->base = base;
	c->dns = dns;
	c->sink = sink;
	if ((c->deadline = evtimer_new(base, webhook_deadline_cb, c)) ==
	    NULL || (c->done_ev = event_new(base, -1, 0, webhook_done_cb,
	    c)) == NULL) {
		webhook_conn_free(c);
		return (NULL);
	}
	return (c);
}

static void
webhook_drop_connection(struct webhook_conn *c)
{
	if (c->evcon != NULL)
		evhttp_connection_free(c->evcon);
	c->evcon = NULL;
	c->bev = NULL;
	c->stale = 0;
	c->served = 0;
}

void
webhook_conn_free(struct webhook_conn *c)
{
	if (c == NULL)
		return;
	if (c->req != NULL) {
		/* Abandoned: its callback must not run any more. */
		struct evhttp_request *req = c->req;

		c->req = NULL;
		evhttp_cancel_request(req);
	}
	webhook_drop_connection(c);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->done_ev != NULL)
		event_free(c->done_ev);
	free(c);
}

/* evhttp saw the connection close (the receiver hung up an idle one). */
static void
webhook_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct webhook_conn	*c = arg;

	c->stale = 1;
}

/* A TLS bufferevent for the sink's host, checked by name or address. */
static struct bufferevent *
webhook_tls_bev(struct webhook_conn *c)
{
	const struct events_sink	*s = c->sink;
	struct bufferevent		*bev;
	unsigned char			 ip[16];
	SSL				*ssl;

	if ((ssl = SSL_new(s->ssl)) == NULL)
		return (NULL);
	if (inet_pton(AF_INET, s->host, ip) == 1 ||
	    inet_pton(AF_INET6, s->host, ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), s->host);
	else {
		X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), s->host, 0);
		SSL_set_tlsext_host_name(ssl, s->host);
	}
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl. */
	if ((bev = bufferevent_openssl_socket_new(c->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		SSL_free(ssl);
		return (NULL);
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return (bev);
}

static int
webhook_connect(struct webhook_conn *c)
{
	const struct events_sink	*s = c->sink;
	struct bufferevent		*bev = NULL;

	if (s->https && (bev = webhook_tls_bev(c)) == NULL)
		return (-1);
	c->evcon = evhttp_connection_base_bufferevent_new(c->base, c->dns,
	    bev, s->host, (unsigned short)s->port);
	if (c->evcon == NULL) {
		if (bev != NULL)
			bufferevent_free(bev);
		return (-1);
	}
	c->bev = evhttp_connection_get_bufferevent(c->evcon);
	evhttp_connection_set_retries(c->evcon, 0);
	evhttp_connection_set_timeout(c->evcon, c->timeout);
	evhttp_connection_set_max_headers_size(c->evcon, WEBHOOK_MAX_HEADERS);
	evhttp_connection_set_max_body_size(c->evcon, WEBHOOK_MAX_BODY);
	evhttp_connection_set_closecb(c->evcon, webhook_closed_cb, c);
	return (0);
}

/* Hand the outcome back from the loop, not from evhttp's callback. */
static void
webhook_finish(struct webhook_conn *c)
{
	c->req = NULL;
	evtimer_del(c->deadline);
	event_active(c->done_ev, 0, 0);
}

static int	webhook_start(struct webhook_conn *c);

static void
webhook_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook_conn	*c = arg;
	struct webhook_result	 r;

	if (c->retry) {
		c->retry = 0;
		webhook_drop_connection(c);
		if (webhook_start(c) == 0)
			return;
		snprintf(c->result.error, sizeof(c->result.error),
		    "cannot connect");
	}
	r = c->result;
	c->done(c->arg, &r);
}

/* Why a request that got no answer failed, into c->result.error. */
static void
webhook_no_answer(struct webhook_conn *c, int saved_errno)
{
	unsigned long	 e = 0, last;
	char		 tls[200] = "";

	/* bufferevent_openssl hands its errors back newest first; the
	 * oldest is the SSL_ERROR_* code, not a library error. */
	if (c->sink->https && c->bev != NULL) {
		while ((last = bufferevent_get_openssl_error(c->bev)) != 0)
			if (e == 0 && ERR_GET_LIB(last) != 0)
				e = last;
		if (e != 0)
			ERR_error_string_n(e, tls, sizeof(tls));
	}
	if (tls[0] != '\0')
		snprintf(c->result.error, sizeof(c->result.error), "TLS: %s",
		    tls);
	else if (c->have_err && c->err == EVREQ_HTTP_TIMEOUT)
		snprintf(c->result.error, sizeof(c->result.error),
		    "no answer within %d s", c->timeout);
	else if (c->have_err && c->err == EVREQ_HTTP_DATA_TOO_LONG)
		snprintf(c->result.error, sizeof(c->result.error),
		    "the answer is too large");
	else if (c->have_err && c->err == EVREQ_HTTP_INVALID_HEADER)
		snprintf(c->result.error, sizeof(c->result.error),
		    "the answer is not HTTP");
	else if (saved_errno != 0)
		snprintf(c->result.error, sizeof(c->result.error),
		    "connection failed: %s", strerror(saved_errno));
	else
		snprintf(c->result.error, sizeof(c->result.error),
		    "the connection closed without an answer");
}

static void
webhook_request_cb(struct evhttp_request *req, void *arg)
{
	struct webhook_conn	*c = arg;
	int			 saved = errno, code;

	if (c->req == NULL)
		return;		/* cut off by the deadline already */
	memset(&c->result, 0, sizeof(c->result));
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	c->result.status = code;
	if (code >= 200 && code <= 299)
		c->result.ok = 1;
	else if (code >= 300 && code <= 399)
		snprintf(c->result.error, sizeof(c->result.error),
		    "HTTP %d: redirects are not followed", code);
	else if (code > 0)
		snprintf(c->result.error, sizeof(c->result.error),
		    "HTTP %d", code);
	else
		webhook_no_answer(c, saved);
	/* Lost on a kept-alive connection before any answer: once more on
	 * a fresh one. */
	if (code == 0 && c->reused && !(c->have_err &&
	    c->err == EVREQ_HTTP_TIMEOUT))
		c->retry = 1;
	/* Only a delivered event's connection is worth keeping. */
	if (c->result.ok)
		c->served++;
	else
		c->stale = 1;
	webhook_finish(c);
}

static void
webhook_error_cb(enum evhttp_request_error err, void *arg)
{
	struct webhook_conn	*c = arg;

	c->have_err = 1;
	c->err = err;
}

static void
webhook_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook_conn	*c = arg;
	struct evhttp_request	*req = c->req;

	if (req == NULL)
		return;
	c->req = NULL;		/* its callbacks are ignored from now on */
	evhttp_cancel_request(req);
	c->stale = 1;
	memset(&c->result, 0, sizeof(c->result));
	snprintf(c->result.error, sizeof(c->result.error),
	    "no answer within %d s", c->timeout);
	webhook_finish(c);
}

/* Send c->post on c's connection (made now if there is none). */
static int
webhook_start(struct webhook_conn *c)
{
	const struct webhook_post	*p = &c->post;
	struct evhttp_request		*req;
	struct evkeyvalq		*h;
	struct timeval			 tv;
	char				 len[24];

	if (c->evcon != NULL && c->stale)
		webhook_drop_connection(c);
	if (c->evcon == NULL && webhook_connect(c) == -1)
		return (-1);
	if ((req = evhttp_request_new(webhook_request_cb, c)) == NULL)
		return (-1);
	evhttp_request_set_error_cb(req, webhook_error_cb);
	h = evhttp_request_get_output_headers(req);
	snprintf(len, sizeof(len), "%zu", p->len);
	if (evhttp_add_header(h, "Host", c->sink->authority) == -1 ||
	    evhttp_add_header(h, "Content-Type", "application/json") == -1 ||
	    evhttp_add_header(h, "Content-Length", len) == -1 ||
	    evhttp_add_header(h, "User-Agent", "toolgate/"
	    TOOLGATE_VERSION) == -1 ||
	    evhttp_add_header(h, "Toolgate-Event", p->type) == -1 ||
	    evhttp_add_header(h, "Toolgate-Delivery", p->delivery) == -1 ||
	    evhttp_add_header(h, "Toolgate-Signature", p->signature) == -1 ||
	    evbuffer_add(evhttp_request_get_output_buffer(req), p->body,
	    p->len) == -1) {
		evhttp_request_free(req);
		return (-1);
	}
	c->have_err = 0;
	c->reused = c->served > 0;
	c->req = req;
	if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST,
	    c->sink->path) == -1) {
		/* evhttp has let go of req (freed or failed it). */
		c->req = NULL;
		c->stale = 1;
		return (-1);
	}
	/* evhttp's own timeout bounds each read and write; this bounds
	 * the whole attempt (unless it failed at once: then the outcome is
	 * on its way already). */
	tv.tv_sec = p->timeout;
	tv.tv_usec = 0;
	if (c->req != NULL)
		evtimer_add(c->deadline, &tv);
	return (0);
}

int
webhook_post(struct webhook_conn *c, const struct webhook_post *p,
    webhook_done_fn done, void *arg)
{
	if (c->req != NULL)
		return (-1);
	c->post = *p;
	c->timeout = p->timeout;
	c->done = done;
	c->arg = arg;
	c->retry = 0;
	return (webhook_start(c));
}
