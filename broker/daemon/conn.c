/*
 * conn: per-connection state, hung on the SSL object — the count against
 * max-connections (over it, the handshake is refused with an alert; never
 * a NULL bufferevent, which would make evhttp serve plaintext), the
 * deadline by which a complete request must arrive (slowloris: evhttp's
 * own timeout restarts with every byte), the verified peer, computed
 * once — and how a connection ends: a handshake that does not complete
 * is logged with the client's address and why; a connection whose
 * certificate a reload (SIGHUP) revoked or no longer trusts, or that is
 * older than max-connection-age, is closed once its in-flight request is
 * answered.  It also owns the swap of the server TLS context on reload.
 * Everything here runs on the connection's worker thread, except
 * conn_tls_swap (main thread).
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>

#include "broker.h"
#include "conn.h"
#include "log.h"

struct conn {
	struct worker		*w;
	struct bufferevent	*bev;
	struct event		*deadline;
	struct event		*age_ev;	/* max-connection-age */
	struct evhttp_request	*req;		/* being answered, or NULL */
	LIST_ENTRY(conn)	 entry;		/* on w->conns */
	struct tls_peer		 peer;
	uint64_t		 tls_gen;	/* context it was checked against */
	int			 peer_state;	/* 0 unknown, 1 ok, -1 refused */
	int			 established;	/* TLS handshake done */
	int			 closing;	/* no more requests; close after
						 * the one in flight */
	int			 close_next;	/* close after the next answer */
	char			 addr[64];	/* the client, "ip:port" */
	char			 why[384];	/* why the handshake failed */
};

static int	conn_idx = -1;

/* A handshake that never completed: say who and why, once, at info. */
static void
conn_log_unfinished(const struct conn *c)
{
	const char	*addr = c->addr[0] ? c->addr : "an unknown address";

	if (c->why[0] != '\0')
		log_info("refused TLS handshake from %s%s", addr, c->why);
	else
		log_info("TLS handshake from %s not completed: the client "
		    "closed the connection", addr);
}

static void
conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct conn	*c = ptr;

	if (c == NULL)
		return;
	if (!c->established) {
		conn_log_unfinished(c);
		metrics_tls_failure(&c->w->metrics, c->why[0] != '\0' ?
		    METRICS_TLS_REFUSED : METRICS_TLS_CLOSED);
	}
	LIST_REMOVE(c, entry);
	c->w->nconns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->age_ev != NULL)
		event_free(c->age_ev);
	tls_peer_clear(&c->peer);
	free(c);
}

int
conn_init(void)
{
	if (tls_init() == -1)
		return (-1);
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	return (conn_idx < 0 ? -1 : 0);
}

/* The current server context (a reference the caller frees) and its
 * generation, which every reload increments. */
static SSL_CTX *
conn_tls_get(struct broker *b, uint64_t *gen)
{
	SSL_CTX	*ctx;

	pthread_mutex_lock(&b->tls_lock);
	ctx = b->ssl_ctx;
	SSL_CTX_up_ref(ctx);
	*gen = b->tls_gen;
	pthread_mutex_unlock(&b->tls_lock);
	return (ctx);
}

/* Shut the socket down: evhttp sees EOF and frees the connection. */
static void
conn_shutdown(struct conn *c)
{
	evutil_socket_t	 s = bufferevent_getfd(c->bev);

	if (s != -1)
		shutdown(s, SHUT_RDWR);
}

/* Serve no more requests: close now when idle, else once the request in
 * flight is answered (evhttp closes after a "Connection: close"). */
static void
conn_close(struct conn *c)
{
	c->closing = 1;
	if (c->req != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(c->req),
		    "Connection", "close");
	else
		conn_shutdown(c);
}

/* Too slow: a handshake or a request that does not finish in time. */
static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (!c->established && c->why[0] == '\0')
		snprintf(c->why, sizeof(c->why), ": no handshake within "
		    "request-timeout (%d s)",
		    c->w->broker->limits.request_timeout);
	log_debug("closing a connection that sent no complete request in "
	    "time");
	conn_shutdown(c);
}

/* max-connection-age: a connection is checked again at its next
 * handshake at the latest, whatever keeps it busy. */
static void
conn_age_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	evutil_socket_t	 s = bufferevent_getfd(c->bev);
	int		 unread = 0;

	log_debug("closing the connection from %s: older than "
	    "max-connection-age (%d s)", c->addr,
	    c->w->broker->limits.max_conn_age);
	/* A request on its way in is served first, then the connection
	 * closes (only a revoked connection refuses new requests). */
	if (c->req == NULL && (evbuffer_get_length(bufferevent_get_input(
	    c->bev)) > 0 || (s != -1 && ioctl(s, FIONREAD, &unread) == 0 &&
	    unread > 0))) {
		c->close_next = 1;
		return;
	}
	conn_close(c);
}

static void
conn_arm(struct conn *c)
{
	struct timeval	 tv = { c->w->broker->limits.request_timeout, 0 };

	evtimer_add(c->deadline, &tv);
}

/* The client's address as "ip:port" ("[ip6]:port"), from the socket. */
static void
conn_note_addr(struct conn *c, int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 host[NI_MAXHOST], port[NI_MAXSERV];

	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
	    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(c->addr, sizeof(c->addr), ss.ss_family == AF_INET6 ?
	    "[%s]:%s" : "%s:%s", host, port);
}

/* Why our side failed the handshake: the certificate check's verdict in
 * words, else OpenSSL's reason ("no shared cipher", "http request"),
 * else the alert we sent. */
static void
conn_note_refusal(struct conn *c, const SSL *ssl, int alert)
{
	const char	*name = tls_refused_name(ssl), *text;
	unsigned long	 e = ERR_peek_last_error();
	long		 vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK)
		text = tls_verify_text(vr);
	else if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		text = "no client certificate";
	else if (e != 0 && ERR_reason_error_string(e) != NULL)
		text = ERR_reason_error_string(e);
	else
		text = alert >= 0 ? SSL_alert_desc_string_long(alert) :
		    "TLS error";
	snprintf(c->why, sizeof(c->why), "%s%s%s: %s", name ? " (" : "",
	    name ? name : "", name ? ")" : "", text);
}

/*
 * OpenSSL's progress report on a handshake: remember the client's
 * address early (the socket is gone by the time the SSL is freed), that
 * the handshake completed, or why it failed.
 */
static void
conn_info_cb(const SSL *ssl, int where, int ret)
{
	struct conn	*c = SSL_get_ex_data(ssl, conn_idx);

	if (c == NULL || c->established)
		return;
	if (c->addr[0] == '\0')
		conn_note_addr(c, SSL_get_fd(ssl));
	if (where & SSL_CB_HANDSHAKE_DONE) {
		c->established = 1;
		return;
	}
	if (c->why[0] != '\0')
		return;
	if ((where & SSL_CB_ALERT) && (ret >> 8) == SSL3_AL_FATAL) {
		if (where & SSL_CB_READ)
			snprintf(c->why, sizeof(c->why), ": the client "
			    "refused it (alert: %s; does it trust the CA of "
			    "--cert?)", SSL_alert_desc_string_long(ret));
		else
			conn_note_refusal(c, ssl, ret & 0xff);
	} else if ((where & SSL_CB_EXIT) && ret <= 0 &&
	    ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_SSL)
		/* A failure without an alert ("http request"); waiting for
		 * more bytes leaves no error. */
		conn_note_refusal(c, ssl, -1);
}

struct bufferevent *
conn_bevcb(struct event_base *base, void *arg)
{
	struct worker	*w = arg;
	struct broker	*b = w->broker;
	SSL_CTX		*ctx = NULL;
	SSL		*ssl;
	struct conn	*c;
	uint64_t	 gen = 0;
	int		 over = w->nconns >= b->limits.max_conns_per_thread;

	if (!over)
		ctx = conn_tls_get(b, &gen);
	ssl = SSL_new(over ? b->refuse_ctx : ctx);
	SSL_CTX_free(ctx);
	if (ssl == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
		/* Still a TLS bufferevent: evhttp must never go plaintext;
		 * without an SSL this connection fails in conn_peer(). */
		log_ssl("SSL_new");
		SSL_free(ssl);
		ssl = SSL_new(b->refuse_ctx);
		return (bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
	}
	c->w = w;
	c->tls_gen = gen;
	w->nconns++;
	LIST_INSERT_HEAD(&w->conns, c, entry);
	if (over)
		snprintf(c->why, sizeof(c->why), ": over max-connections (%d)",
		    b->limits.max_connections);
	SSL_set_ex_data(ssl, conn_idx, c);
	SSL_set_info_callback(ssl, conn_info_cb);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev != NULL && (c->deadline = evtimer_new(base,
	    conn_deadline_cb, c)) != NULL)
		conn_arm(c);
	if (c->bev != NULL && !over && (c->age_ev = evtimer_new(base,
	    conn_age_cb, c)) != NULL) {
		struct timeval	 age = { b->limits.max_conn_age, 0 };

		evtimer_add(c->age_ev, &age);
	}
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

/*
 * Is c's certificate still good under ctx (generation gen)?  0 and c is
 * marked checked; -1 (logged) when the reloaded CA or CRL refuses it.
 */
static int
conn_recheck(struct conn *c, SSL_CTX *ctx, uint64_t gen)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(c->bev);
	long	 vr;

	if (ssl != NULL && tls_peer_recheck(ctx, ssl, &vr) == 0) {
		c->tls_gen = gen;
		return (0);
	}
	log_info("closing the connection of %s from %s: %s",
	    c->peer_state == 1 ? c->peer.identity : "a client", c->addr,
	    ssl != NULL ? tls_verify_text(vr) : "no TLS");
	return (-1);
}

/* After a reload, on each worker: every established connection checked
 * against the new CA and CRL.  Those still in a handshake are checked
 * at their first request (conn_peer). */
static void
conn_recheck_all_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct conn	*c;
	SSL_CTX		*ctx;
	uint64_t	 gen;

	ctx = conn_tls_get(w->broker, &gen);
	/* conn_close never frees a connection here: evhttp does, later. */
	LIST_FOREACH(c, &w->conns, entry)
		if (c->established && !c->closing && c->tls_gen != gen &&
		    conn_recheck(c, ctx, gen) == -1)
			conn_close(c);
	SSL_CTX_free(ctx);
}

void
conn_tls_swap(struct broker *b, SSL_CTX *fresh)
{
	SSL_CTX	*old;
	int	 i;

	pthread_mutex_lock(&b->tls_lock);
	old = b->ssl_ctx;
	b->ssl_ctx = fresh;
	__atomic_add_fetch(&b->tls_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->tls_lock);
	/* Connections hold their own references. */
	SSL_CTX_free(old);
	for (i = 0; i < b->nworkers; i++)
		if (event_base_once(b->workers[i].base, -1, EV_TIMEOUT,
		    conn_recheck_all_cb, &b->workers[i], NULL) == -1)
			log_warnx("%s: thread %d will check its connections "
			    "at their next request only", __func__, i);
}

/* The answer is out: close if the connection was condemned meanwhile,
 * else re-arm the deadline (the next request must arrive complete within
 * request_timeout of it). */
static void
conn_answered_cb(struct evhttp_request *req, void *arg)
{
	struct conn	*c = arg;

	c->req = NULL;
	/* evhttp decides to close after this callback, from the headers. */
	if (c->closing)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
	else if (c->deadline != NULL)
		conn_arm(c);
}

const struct tls_peer *
conn_peer(struct evhttp_request *req)
{
	struct broker	*b;
	struct conn	*c;
	SSL		*ssl = NULL;
	SSL_CTX		*ctx;
	uint64_t	 gen;
	int		 r;

	/* Fail closed: no TLS, no conn state, no verified certificate. */
	if ((c = conn_of(req, &ssl)) == NULL || c->closing)
		return (NULL);
	if (c->peer_state == 0)
		c->peer_state = tls_peer_fill(ssl, &c->peer) == 0 ? 1 : -1;
	if (c->peer_state != 1)
		return (NULL);
	/* Verified against an older CA or CRL (its handshake was under way
	 * during a reload): check it against the current ones first. */
	b = c->w->broker;
	if (c->tls_gen != __atomic_load_n(&b->tls_gen, __ATOMIC_ACQUIRE)) {
		ctx = conn_tls_get(b, &gen);
		r = conn_recheck(c, ctx, gen);
		SSL_CTX_free(ctx);
		if (r == -1) {
			c->closing = 1;
			return (NULL);
		}
	}
	c->req = req;
	if (c->close_next)
		conn_close(c);
	log_debug("request from %s at %s: %s", c->peer.identity, c->addr,
	    evhttp_request_get_uri(req));
	/* The request is complete: no deadline while we work on it. */
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	evhttp_request_set_on_complete_cb(req, conn_answered_cb, c);
	return (&c->peer);
}
