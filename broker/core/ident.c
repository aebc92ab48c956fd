/*
 * ident: the caller's identity from a certificate (CONTRACT §2).  First URI
 * SAN, else subject CN.  Anything with NULs or control characters is refused
 * rather than cleaned, so two certificates can never map to one name by
 * truncation.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ident.h"

static int
ident_copy(const unsigned char *s, int len, char *out, size_t outlen)
{
	int	 i;

	if (len <= 0 || (size_t)len >= outlen || len >= IDENT_MAX)
		return (-1);
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return (-1);
	memcpy(out, s, (size_t)len);
	out[len] = '\0';
	return (0);
}

static int
ident_uri_san(X509 *cert, char *out, size_t outlen, int *found)
{
	GENERAL_NAMES	*names;
	int		 i, rc = -1;

	*found = 0;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return (0);
	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_URI)
			continue;
		*found = 1;
		rc = ident_copy(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
		    ASN1_STRING_length(gn->d.uniformResourceIdentifier),
		    out, outlen);
		break;
	}
	GENERAL_NAMES_free(names);
	return (*found ? rc : 0);
}

const char *
ident_source_name(enum ident_source src)
{
	return (src == IDENT_URI_SAN ? "URI SAN" : "subject CN");
}

int
ident_from_cert(X509 *cert, char *out, size_t outlen)
{
	enum ident_source	 src;

	return (ident_from_cert_source(cert, out, outlen, &src));
}

int
ident_from_cert_source(X509 *cert, char *out, size_t outlen,
    enum ident_source *src)
{
	X509_NAME	*subject;
	X509_NAME_ENTRY	*entry;
	ASN1_STRING	*cn;
	int		 found, idx;

	*src = IDENT_URI_SAN;
	if (cert == NULL)
		return (-1);
	if (ident_uri_san(cert, out, outlen, &found) == -1)
		return (-1);
	if (found)
		return (0);
	*src = IDENT_CN;
	subject = X509_get_subject_name(cert);
	idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (idx < 0)
		return (-1);
	/* A second CN would make "the" CN ambiguous. */
	if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0)
		return (-1);
	entry = X509_NAME_get_entry(subject, idx);
	cn = X509_NAME_ENTRY_get_data(entry);
	return (ident_copy(ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn),
	    out, outlen));
}

int
ident_from_file(const char *path, char *out, size_t outlen)
{
	FILE	*f;
	X509	*cert;
	int	 rc;

	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL)
		return (-1);
	rc = ident_from_cert(cert, out, outlen);
	X509_free(cert);
	return (rc);
}
