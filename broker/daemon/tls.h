/*
 * tls: the server SSL_CTX (mutual TLS, TLS 1.2+, our CA only, optional
 * CRL) and the verified peer of a request.  A context never changes after
 * use: reload builds a new one (LIBRARY-NOTES).
 */
#pragma once

#include <stddef.h>

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
	enum ident_source source;	/* URI SAN or CN, for messages */
	struct peer_key	 key;
};

/* Once, before any context is built. 0 or -1. */
int	tls_init(void);

/* Build the server context; NULL with a one-line reason naming the file. */
SSL_CTX	*tls_server_ctx(const struct tls_files *f, char *err, size_t errlen);

/* Fill p from a verified peer: 0, or -1 when the handshake did not verify
 * a client certificate or it names no usable identity. */
int	tls_peer_fill(SSL *ssl, struct tls_peer *p);
void	tls_peer_clear(struct tls_peer *p);

/*
 * Verify ssl's established peer again, against ctx's CA and CRL as they
 * are now (after a reload), with every check of the handshake.  0 when it
 * would still be accepted; -1 with the verify error in *vr.
 */
int	tls_peer_recheck(SSL_CTX *ctx, SSL *ssl, long *vr);

/* Why verification error vr refused a client certificate, for logs. */
const char *tls_verify_text(long vr);

/* The identity of the certificate ssl's handshake refused, or NULL. */
const char *tls_refused_name(const SSL *ssl);

/* A context that fails every handshake: how connections over the limit
 * are refused (evhttp would serve plaintext if the bevcb returned NULL). */
SSL_CTX	*tls_refusing_ctx(void);
