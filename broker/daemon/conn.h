/*
 * conn: per-connection state, hung on the SSL object — the count against
 * max-connections, the complete-request deadline (slowloris) and the
 * verified peer, computed once.
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
