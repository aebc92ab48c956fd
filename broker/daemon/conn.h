/*
 * conn: per-connection state, hung on the SSL object — the count against
 * max-connections, the complete-request deadline (slowloris), the
 * verified peer, computed once, and how a connection ends: refused
 * handshakes logged, connections a reload no longer trusts or older than
 * max-connection-age closed after their request in flight.  Also the swap
 * of the server TLS context on reload.
 */
#pragma once

#include <event2/event.h>
#include <event2/http.h>

#include "tls.h"

int	conn_init(void);
/* evhttp's bufferevent callback: always a TLS bufferevent (never NULL:
 * evhttp would serve plaintext). */
struct bufferevent *conn_bevcb(struct event_base *base, void *worker);
/* The verified peer of req's connection, or NULL (fail closed). */
const struct tls_peer *conn_peer(struct evhttp_request *req);

struct broker;
/*
 * Main thread, SIGHUP: make fresh (stolen) the context of new connections,
 * then have every worker close the established connections whose
 * certificate fresh's CA and CRL refuse (after answering the request in
 * flight).
 */
void	conn_tls_swap(struct broker *b, SSL_CTX *fresh);
