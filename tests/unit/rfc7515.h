/*
 * rfc7515: the RFC 7515 appendix A.3 ES256 example (key and compact JWS),
 * an independent implementation's output that our verifiers must accept,
 * and a builder for EC keys from JWK members.  Shared by unit tests.
 */
#pragma once

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "jose.h"

/* RFC 7515 appendix A.3: the ES256 example key (JWK members). */
#define A3_X	"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y	"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D	"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
/* Same first 22 characters as A3_D, different scalar: does not match x/y. */
#define BAD_D	"jpsQnnGQmL-YBIffH1136cLvcRX7ZQ9q0dU6_qchLIg"
/* RFC 7515 A.3.1: the resulting compact JWS. */
#define A3_JWS	"eyJhbGciOiJFUzI1NiJ9" \
	"." \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt" \
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
	"." \
	"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA" \
	"pmWQxfKTUJqPP3-Kg6NU1Q"

/*
 * Build an EC P-256 EVP_PKEY from JWK members (base64url x, y and optional
 * d) with OSSL_PARAM_BLD / EVP_PKEY_fromdata.  fromdata does not check that
 * d belongs to x/y, so a key pair must pass EVP_PKEY_pairwise_check.  Kept
 * self-contained so other tests can reuse the RFC 7515 A.3 vector.  Returns
 * NULL on failure.
 */
static EVP_PKEY *
ec_key_from_jwk(const char *x, const char *y, const char *d)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pkey = NULL;
	BIGNUM		*priv = NULL;
	unsigned char	*bx = NULL, *by = NULL, *bd = NULL, pub[65];
	size_t		 xl, yl, dl;

	bx = jose_b64url_decode(x, strlen(x), &xl);
	by = jose_b64url_decode(y, strlen(y), &yl);
	if (bx == NULL || by == NULL || xl != 32 || yl != 32)
		goto done;
	pub[0] = 0x04;
	memcpy(pub + 1, bx, 32);
	memcpy(pub + 33, by, 32);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto done;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    pub, sizeof(pub)) != 1)
		goto done;
	if (d != NULL) {
		if ((bd = jose_b64url_decode(d, strlen(d), &dl)) == NULL ||
		    dl != 32 || (priv = BN_bin2bn(bd, 32, NULL)) == NULL ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY,
		    priv) != 1)
			goto done;
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto done;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, d != NULL ? EVP_PKEY_KEYPAIR :
	    EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto done;
	if (d != NULL) {
		EVP_PKEY_CTX_free(ctx);
		if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) ==
		    NULL || EVP_PKEY_pairwise_check(ctx) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
 done:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(priv);
	free(bx);
	free(by);
	free(bd);
	return (pkey);
}

