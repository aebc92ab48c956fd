/*
 * tls: the server SSL_CTX (mutual TLS, TLS 1.2+, our CA only, optional
 * CRL) and the verified peer of a request.  A context never changes after
 * use: reload builds a new one (LIBRARY-NOTES).
 */
#pragma once

#include <stddef.h>

#include <event2/http.h>
#include <openssl/ssl.h>

#include "ident.h"
#include "intent.h"

struct tls_files {
	const char	*ca;
	const char	*cert;
	const char	*key;
	const char	*crl;		/* or NULL */
};

/* What a connection proved, computed once per connection and cached on
 * its SSL object. */
struct tls_peer {
	char		 identity[IDENT_MAX];
	struct peer_key	 key;
};

/* Build the server context; NULL with a one-line reason naming the file. */
SSL_CTX	*tls_server_ctx(const struct tls_files *f, char *err, size_t errlen);

/* evhttp_set_bevcb callback: a TLS bufferevent for each new connection.
 * arg is a pointer to the SSL_CTX * to use. */
struct bufferevent *tls_bevcb(struct event_base *base, void *arg);

/*
 * The verified peer of req's connection, or NULL when the connection is not
 * TLS, has no certificate, failed verification, or its certificate names
 * no usable identity.  evhttp falls back to plaintext if the bevcb ever
 * fails, so every request goes through this check (fail closed).
 */
const struct tls_peer *tls_peer(struct evhttp_request *req);

/* Register the SSL ex_data slot; call once before threads start. */
int	tls_init(void);
