/*
 * ident: who a certificate names.  CONTRACT §2: the first URI SAN if the
 * certificate has one, else its subject CN.  Shared by the daemon (peer
 * certificates) and the CLI (its own --cert, to fill the intent's iss).
 */
#pragma once

#include <stddef.h>

#include <openssl/x509.h>

#define IDENT_MAX 256

/* Where in the certificate the identity was found. */
enum ident_source {
	IDENT_URI_SAN,
	IDENT_CN
};

/*
 * Write the identity of cert into out (outlen >= IDENT_MAX).  Refuses (-1)
 * names with embedded NULs or control characters, empty names, names longer
 * than IDENT_MAX - 1, and certificates with neither a URI SAN nor a CN.
 */
int	ident_from_cert(X509 *cert, char *out, size_t outlen);
/* The same, and where it was found into *src (so that an operator told
 * "not in the policy" can see which name of the certificate counted). */
int	ident_from_cert_source(X509 *cert, char *out, size_t outlen,
	    enum ident_source *src);
/* "URI SAN" or "subject CN", for messages. */
const char *ident_source_name(enum ident_source src);

/* Same, for a PEM certificate file (used by the CLI). */
int	ident_from_file(const char *path, char *out, size_t outlen);
