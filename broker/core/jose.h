/*
 * jose: the JOSE building blocks we do ourselves — strict base64url, compact
 * JWS shape checks, ES256/RS256 signing with an already parsed EVP_PKEY, key
 * loading, and the JWK / RFC 7638 thumbprint of the grant key.  Verification
 * of agent intents goes through intent.c (which adds the alg rules).
 */
#pragma once

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

enum jose_alg { JOSE_ALG_NONE_OK = 0, JOSE_ES256, JOSE_RS256 };

/* base64url without padding.  Returns a malloc'd NUL-terminated string. */
char	*jose_b64url_encode(const unsigned char *in, size_t len);
/*
 * Strict decode: only [A-Za-z0-9_-], no padding, no length that base64
 * cannot produce.  Returns a malloc'd buffer (NUL-terminated for
 * convenience, *outlen excludes the NUL) or NULL.
 */
unsigned char *jose_b64url_decode(const char *in, size_t len, size_t *outlen);
/* One base64url segment of a JWS (header or claims) as a strict JSON
 * object (duplicate names refused): a new reference, or NULL. */
json_t	*jose_segment_json(const char *seg, size_t len);

/*
 * Compact JWS shape: three dot-separated base64url segments, none empty
 * except that nothing is allowed to be empty here, total <= maxlen, no NUL.
 * On success fills the segment offsets (header = tok[0..dot1), payload =
 * tok[dot1+1..dot2), signature = tok[dot2+1..len)) and returns 0.
 */
int	jose_split(const char *tok, size_t len, size_t *dot1, size_t *dot2);

/* The alg a certificate key must use: ES256 for EC P-256, RS256 for RSA of
 * 2048 bits or more, JOSE_ALG_NONE_OK (= unusable) for anything else. */
enum jose_alg jose_alg_for_key(EVP_PKEY *pkey);
const char *jose_alg_name(enum jose_alg alg);

/*
 * Sign header.payload (already base64url-encoded signing input) with pkey
 * using alg; returns the malloc'd base64url signature (raw R||S for ES256).
 */
char	*jose_sign(EVP_PKEY *pkey, enum jose_alg alg, const char *input,
	    size_t len);
/* Build a compact JWS from a header object and payload bytes. */
char	*jose_sign_compact(EVP_PKEY *pkey, enum jose_alg alg, json_t *header,
	    const char *payload, size_t payload_len);
/* Verify a compact JWS signature with pkey and alg via OpenSSL: 0 ok. */
int	jose_verify(EVP_PKEY *pkey, enum jose_alg alg, const char *tok,
	    size_t len);

/* Load a PEM private key; NULL with *why set (static text) on failure. */
EVP_PKEY *jose_load_private_key(const char *path, const char **why);
/* Public key as PEM text (malloc'd, NUL-terminated). */
char	*jose_public_pem(EVP_PKEY *pkey, size_t *len);
/* JWK of an EC P-256 public key: {kty, crv, x, y} (new reference). */
json_t	*jose_ec_public_jwk(EVP_PKEY *pkey);
/* The public key of an EC P-256 JWK, or NULL (not one, or not a point
 * of the curve). */
EVP_PKEY *jose_ec_public_from_jwk(const json_t *jwk);
/* RFC 7638 thumbprint of the EC public key, base64url (malloc'd). */
char	*jose_thumbprint(EVP_PKEY *pkey);
