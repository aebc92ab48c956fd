/*
 * tls: server-side mutual TLS.  Only our CA is trusted (never the system
 * store); client certificates must carry the clientAuth EKU; TLS 1.2 gets
 * ECDHE+AEAD ciphers only; renegotiation and compression are off.  What a
 * verified peer proved (identity, parsed public key) is extracted here;
 * conn.c caches it per connection.  Also: why a certificate was refused,
 * in words, and the re-check of an established peer against a reloaded
 * CA and CRL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "file.h"
#include "log.h"
#include "tls.h"

/* The identity of the certificate a handshake refused, kept on its SSL
 * until the connection logs why (conn.c). */
static int	tls_refused_idx = -1;

static void
tls_refused_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	free(ptr);
}

int
tls_init(void)
{
	tls_refused_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_refused_free);
	return (tls_refused_idx < 0 ? -1 : 0);
}

/* Note who the certificate being refused names (once per handshake;
 * nothing when this is a re-check, not a handshake). */
static void
tls_note_refused(X509_STORE_CTX *xs)
{
	SSL	*ssl = X509_STORE_CTX_get_ex_data(xs,
		    SSL_get_ex_data_X509_STORE_CTX_idx());
	char	 name[IDENT_MAX];

	if (ssl == NULL || tls_refused_idx < 0 ||
	    SSL_get_ex_data(ssl, tls_refused_idx) != NULL)
		return;
	if (ident_from_cert(X509_STORE_CTX_get0_cert(xs), name,
	    sizeof(name)) == -1)
		snprintf(name, sizeof(name), "no usable identity");
	SSL_set_ex_data(ssl, tls_refused_idx, strdup(name));
}

const char *
tls_refused_name(const SSL *ssl)
{
	return (tls_refused_idx < 0 ? NULL :
	    SSL_get_ex_data(ssl, tls_refused_idx));
}

/* Depth 0 must be a client certificate in the strict sense: EKU present
 * and naming clientAuth (OpenSSL lets a certificate without EKU pass). */
static int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	X509	*cert;

	if (ok && X509_STORE_CTX_get_error_depth(xs) == 0) {
		cert = X509_STORE_CTX_get_current_cert(xs);
		if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
		    !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT)) {
			X509_STORE_CTX_set_error(xs,
			    X509_V_ERR_INVALID_PURPOSE);
			ok = 0;
		}
	}
	if (!ok)
		tls_note_refused(xs);
	return (ok);
}

const char *
tls_verify_text(long vr)
{
	switch (vr) {
	case X509_V_ERR_INVALID_PURPOSE:
		return ("the client certificate lacks the clientAuth extended "
		    "key usage (see proto/identities.md)");
	case X509_V_ERR_CERT_REVOKED:
		return ("the client certificate is revoked (--crl)");
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return ("the client certificate was not issued by a CA in "
		    "--ca");
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return ("no CRL of the client certificate's issuer in --crl "
		    "(with --crl, every issuer needs one)");
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return ("the client certificate has expired");
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return ("the client certificate is not valid yet");
	default:
		return (X509_verify_cert_error_string(vr));
	}
}

static const char *
tls_ssl_error(void)
{
	static __thread char	 buf[256];
	unsigned long		 e = ERR_peek_last_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return (buf);
}

/* Every CRL in the PEM file (one per issuing CA) into ctx's store, and
 * CRL checking on.  0 or -1 with err. */
static int
tls_load_crl(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	X509_STORE	*store = SSL_CTX_get_cert_store(ctx);
	X509_CRL	*crl;
	BIO		*bio;
	int		 n = 0, ok = 1;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "--crl %s: cannot read CRL (%s)", path,
		    tls_ssl_error());
		return (-1);
	}
	while (ok && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL,
	    NULL)) != NULL) {
		ok = X509_STORE_add_crl(store, crl) == 1;
		X509_CRL_free(crl);
		n++;
	}
	BIO_free(bio);
	/* A clean end of the file reads as PEM "no start line". */
	if (n > 0 && ok && ERR_GET_REASON(ERR_peek_last_error()) ==
	    PEM_R_NO_START_LINE)
		ERR_clear_error();
	else {
		snprintf(err, errlen, "--crl %s: not a PEM CRL (%s)", path,
		    tls_ssl_error());
		return (-1);
	}
	/* Fails closed: a CA without a CRL makes its leaves unverifiable. */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return (0);
}

/* After a failed SSL_CTX_use_PrivateKey_file: 1 when the key itself
 * loaded and only does not fit the certificate loaded before it. */
static int
tls_key_mismatch(void)
{
	unsigned long	 e = ERR_peek_last_error();

	return (ERR_GET_LIB(e) == ERR_LIB_X509 &&
	    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH);
}

/* "--flag FILE: reason" into err unless path can be read.  0 or -1. */
static int
tls_file(const char *flag, const char *path, char *err, size_t errlen)
{
	char	 why[256];

	if (file_readable(path, why, sizeof(why)) == 0)
		return (0);
	snprintf(err, errlen, "%s %s: %s", flag, path, why);
	return (-1);
}

static int
tls_load_files(SSL_CTX *ctx, const struct tls_files *f, char *err,
    size_t errlen)
{
	if (tls_file("--cert", f->cert, err, errlen) == -1 ||
	    tls_file("--key", f->key, err, errlen) == -1 ||
	    tls_file("--ca", f->ca, err, errlen) == -1 ||
	    (f->crl != NULL && tls_file("--crl", f->crl, err, errlen) == -1))
		return (-1);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		snprintf(err, errlen, "--cert %s: not a PEM certificate (%s)",
		    f->cert, tls_ssl_error());
		return (-1);
	}
	/* A key that loads but does not fit fails here already (OpenSSL
	 * checks it against the certificate): that is the pairing's fault,
	 * said below. */
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1 &&
	    !tls_key_mismatch()) {
		snprintf(err, errlen, "--key %s: not a PEM private key, or "
		    "encrypted (%s)", f->key, tls_ssl_error());
		return (-1);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		/* Both files load: it is the pair that is wrong. */
		snprintf(err, errlen, "--cert %s and --key %s do not belong "
		    "together: the key is not the one the certificate names",
		    f->cert, f->key);
		ERR_clear_error();
		return (-1);
	}
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
		snprintf(err, errlen, "--ca %s: not a PEM CA certificate (%s)",
		    f->ca, tls_ssl_error());
		return (-1);
	}
	if (f->crl != NULL && tls_load_crl(ctx, f->crl, err, errlen) == -1)
		return (-1);
	return (0);
}

SSL_CTX *
tls_server_ctx(const struct tls_files *f, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "toolgated";
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new: %s", tls_ssl_error());
		return (NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
		goto bad;
	/* Without a session id context, resuming a client-cert session
	 * fails the handshake (LIBRARY-NOTES). */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* Resumed sessions are not re-verified: keep them short-lived.  The
	 * session cache and the ticket keys belong to this context, and a
	 * reload (SIGHUP) builds a new one, so no session from before a CRL
	 * or CA change resumes: it does a full, verified handshake. */
	SSL_CTX_set_timeout(ctx, 300);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	if (tls_load_files(ctx, f, err, errlen) == -1) {
		SSL_CTX_free(ctx);
		return (NULL);
	}
	return (ctx);
 bad:
	snprintf(err, errlen, "TLS setup: %s", tls_ssl_error());
	SSL_CTX_free(ctx);
	return (NULL);
}

int
tls_peer_recheck(SSL_CTX *ctx, SSL *ssl, long *vr)
{
	X509_STORE_CTX	*xs;
	X509		*cert = SSL_get0_peer_certificate(ssl);
	int		 ok = 0;

	*vr = X509_V_ERR_UNSPECIFIED;
	if (cert == NULL || (xs = X509_STORE_CTX_new()) == NULL)
		return (-1);
	/* What the handshake does (ssl_verify_cert_chain): the peer's own
	 * chain as untrusted certificates, the "SSL client" purpose, the
	 * context's depth, our clientAuth check. */
	if (X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), cert,
	    SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_default(xs, "ssl_client") == 1 &&
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs),
	    SSL_CTX_get0_param(ctx)) == 1) {
		X509_STORE_CTX_set_verify_cb(xs, tls_verify_cb);
		ok = X509_verify_cert(xs) == 1;
		*vr = X509_STORE_CTX_get_error(xs);
	}
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return (ok ? 0 : -1);
}

int
tls_peer_fill(SSL *ssl, struct tls_peer *p)
{
	X509	*cert = SSL_get0_peer_certificate(ssl);

	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return (-1);
	if (ident_from_cert_source(cert, p->identity, sizeof(p->identity),
	    &p->source) == -1 ||
	    (p->key.pkey = X509_get_pubkey(cert)) == NULL) {
		log_warnx("%s: client certificate names no usable identity",
		    __func__);
		return (-1);
	}
	p->key.alg = jose_alg_for_key(p->key.pkey);
	return (0);
}

void
tls_peer_clear(struct tls_peer *p)
{
	EVP_PKEY_free(p->key.pkey);
	memset(p, 0, sizeof(*p));
}

SSL_CTX *
tls_refusing_ctx(void)
{
	SSL_CTX	*ctx = SSL_CTX_new(TLS_server_method());

	/* No certificate: every handshake fails with an alert at once. */
	if (ctx != NULL)
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return (ctx);
}
