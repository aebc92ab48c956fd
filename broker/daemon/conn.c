/*
 * conn: per-connection state, hung on the SSL object — the count against
 * max-connections (over it, the handshake is refused with an alert; never
 * a NULL bufferevent, which would make evhttp serve plaintext), the
 * deadline by which a complete request must arrive (slowloris: evhttp's
 * own timeout restarts with every byte), and the verified peer, computed
 * once.
 */
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "broker.h"
#include "conn.h"
#include "log.h"

struct conn {
	struct worker		*w;
	struct bufferevent	*bev;
	struct event		*deadline;
	struct tls_peer		 peer;
	int			 peer_state;	/* 0 unknown, 1 ok, -1 refused */
};

static int	conn_idx = -1;

static void
conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct conn	*c = ptr;

	if (c == NULL)
		return;
	c->w->nconns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	tls_peer_clear(&c->peer);
	free(c);
}

int
conn_init(void)
{
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	return (conn_idx < 0 ? -1 : 0);
}

/* Too slow: shut the socket down; evhttp sees EOF and frees it cleanly. */
static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	evutil_socket_t	 s = bufferevent_getfd(c->bev);

	log_debug("closing a connection that sent no complete request in "
	    "time");
	if (s != -1)
		shutdown(s, SHUT_RDWR);
}

static void
conn_arm(struct conn *c)
{
	struct timeval	 tv = { c->w->broker->limits.request_timeout, 0 };

	evtimer_add(c->deadline, &tv);
}

struct bufferevent *
conn_bevcb(struct event_base *base, void *arg)
{
	struct worker	*w = arg;
	struct broker	*b = w->broker;
	SSL_CTX		*ctx;
	SSL		*ssl;
	struct conn	*c;

	ctx = w->nconns >= b->limits.max_conns_per_thread ? b->refuse_ctx :
	    __atomic_load_n(&b->ssl_ctx, __ATOMIC_ACQUIRE);
	if ((ssl = SSL_new(ctx)) == NULL || (c = calloc(1, sizeof(*c))) ==
	    NULL) {
		/* Still a TLS bufferevent: evhttp must never go plaintext;
		 * without an SSL this connection fails in conn_peer(). */
		log_ssl("SSL_new");
		SSL_free(ssl);
		ssl = SSL_new(b->refuse_ctx);
		return (bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
	}
	c->w = w;
	w->nconns++;
	SSL_set_ex_data(ssl, conn_idx, c);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev != NULL && (c->deadline = evtimer_new(base,
	    conn_deadline_cb, c)) != NULL)
		conn_arm(c);
	return (c->bev);
}

static struct conn *
conn_of(struct evhttp_request *req, SSL **sslp)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	SSL				*ssl;

	if ((evcon = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return (NULL);
	*sslp = ssl;
	return (SSL_get_ex_data(ssl, conn_idx));
}

/* Re-arm the deadline once the answer is out: the next request must
 * arrive complete within request_timeout of it. */
static void
conn_answered_cb(struct evhttp_request *req, void *arg)
{
	conn_arm(arg);
}

const struct tls_peer *
conn_peer(struct evhttp_request *req)
{
	struct conn	*c;
	SSL		*ssl = NULL;

	/* Fail closed: no TLS, no conn state, no verified certificate. */
	if ((c = conn_of(req, &ssl)) == NULL)
		return (NULL);
	if (c->peer_state == 0)
		c->peer_state = tls_peer_fill(ssl, &c->peer) == 0 ? 1 : -1;
	if (c->peer_state != 1)
		return (NULL);
	/* The request is complete: no deadline while we work on it. */
	if (c->deadline != NULL) {
		evtimer_del(c->deadline);
		evhttp_request_set_on_complete_cb(req, conn_answered_cb, c);
	}
	return (&c->peer);
}
