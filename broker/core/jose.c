/*
 * jose: the JOSE building blocks we do ourselves.  Owns strict base64url
 * (RFC 4648 section 5, no padding, canonical trailing bits only), the compact
 * JWS shape check, ES256/RS256 signing and verification with an already
 * parsed EVP_PKEY through OpenSSL 3's EVP interface, private key loading, and
 * the JWK / RFC 7638 thumbprint of an EC P-256 public key.
 *
 * It knows nothing of claims, policy or the network, and it does not log:
 * every function returns NULL / -1 and leaves OpenSSL's error queue for the
 * caller's log_ssl(), except that a failed verification clears the queue,
 * since a bad signature is an expected outcome and not an event.
 * Everything here is thread-safe (no shared state besides const tables).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jose.h"
#include "jsonw.h"

/* Same cap as INTENT_MAX_BYTES (intent.h): the contract's 64 KiB body. */
#define JOSE_MAX_BYTES		(64 * 1024)
/* P-256 field element and raw R||S signature sizes. */
#define JOSE_P256_LEN		32
#define JOSE_ES256_SIGLEN	(2 * JOSE_P256_LEN)
#define JOSE_RSA_MIN_BITS	2048

static const char b64url_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reverse table, stored + 1: 1..64 for the url alphabet, 0 for every
 * other byte (including '+', '/', '=', NUL and everything >= 0x80). */
static const uint8_t b64url_rev[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27,
	['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47,
	['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
	['-'] = 63, ['_'] = 64,
};

/* The 6-bit value of c, or -1 if c is not in the url alphabet. */
static inline int
b64url_value(unsigned char c)
{
	return ((int)b64url_rev[c] - 1);
}

/*
 * base64url without padding.  Returns a malloc'd NUL-terminated string of
 * ceil(len * 4 / 3) characters, or NULL on allocation failure.
 */
char *
jose_b64url_encode(const unsigned char *in, size_t len)
{
	char		*out, *p;
	size_t		 i, rem = len % 3;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return (NULL);
	if ((out = malloc(len / 3 * 4 + (rem ? rem + 1 : 0) + 1)) == NULL)
		return (NULL);
	p = out;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		*p++ = b64url_alphabet[v >> 18];
		*p++ = b64url_alphabet[(v >> 12) & 63];
		*p++ = b64url_alphabet[(v >> 6) & 63];
		*p++ = b64url_alphabet[v & 63];
	}
	if (rem == 1) {
		*p++ = b64url_alphabet[in[i] >> 2];
		*p++ = b64url_alphabet[(in[i] & 3) << 4];
	} else if (rem == 2) {
		*p++ = b64url_alphabet[in[i] >> 2];
		*p++ = b64url_alphabet[(in[i] & 3) << 4 | in[i + 1] >> 4];
		*p++ = b64url_alphabet[(in[i + 1] & 15) << 2];
	}
	*p = '\0';
	return (out);
}

/*
 * Strict decode.  Refuses any byte outside [A-Za-z0-9_-] (so padding, the
 * standard alphabet, whitespace and NUL), a length of 1 mod 4, and a final
 * group whose unused low bits are not zero: exactly one text per byte string,
 * unlike libb64 which skips what it does not know (malleable signatures).
 * Returns a malloc'd buffer, NUL-terminated for convenience, with *outlen
 * excluding the NUL; NULL on any error.
 */
unsigned char *
jose_b64url_decode(const char *in, size_t len, size_t *outlen)
{
	const unsigned char	*s = (const unsigned char *)in;
	unsigned char		*out = NULL, *p;
	size_t			 i, rem = len % 4;
	int			 a, b, c, d;

	if (in == NULL || outlen == NULL || rem == 1)
		goto bad;
	if ((out = malloc(len / 4 * 3 + (rem ? rem - 1 : 0) + 1)) == NULL)
		goto bad;
	p = out;
	for (i = 0; i + 4 <= len; i += 4) {
		a = b64url_value(s[i]);
		b = b64url_value(s[i + 1]);
		c = b64url_value(s[i + 2]);
		d = b64url_value(s[i + 3]);
		if ((a | b | c | d) < 0)
			goto bad;
		*p++ = (unsigned char)(a << 2 | b >> 4);
		*p++ = (unsigned char)((b & 15) << 4 | c >> 2);
		*p++ = (unsigned char)((c & 3) << 6 | d);
	}
	if (rem >= 2) {
		a = b64url_value(s[i]);
		b = b64url_value(s[i + 1]);
		c = rem == 3 ? b64url_value(s[i + 2]) : 0;
		if ((a | b | c) < 0)
			goto bad;
		*p++ = (unsigned char)(a << 2 | b >> 4);
		if (rem == 2) {
			/* 12 bits carry 8: the low 4 bits of b must be 0. */
			if (b & 15)
				goto bad;
		} else {
			/* 18 bits carry 16: the low 2 bits of c must be 0. */
			if (c & 3)
				goto bad;
			*p++ = (unsigned char)((b & 15) << 4 | c >> 2);
		}
	}
	*p = '\0';
	*outlen = (size_t)(p - out);
	return (out);
 bad:
	free(out);
	return (NULL);
}

/*
 * Compact JWS shape: exactly three non-empty segments of the base64url
 * alphabet, each of a length base64 can produce, separated by '.', the whole
 * at most 64 KiB (the contract's cap) and free of NUL.  On success fills
 * *dot1 and *dot2 with the offsets of the two dots and returns 0; -1 else.
 */
int
jose_split(const char *tok, size_t len, size_t *dot1, size_t *dot2)
{
	const unsigned char	*s = (const unsigned char *)tok;
	size_t			 i, start = 0, dots[2];
	int			 ndots = 0;

	if (tok == NULL || len == 0 || len > JOSE_MAX_BYTES)
		return (-1);
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (b64url_value(s[i]) < 0)
				return (-1);
			continue;
		}
		/* End of a segment at i. */
		if (i == start || (i - start) % 4 == 1)
			return (-1);
		if (i < len) {
			if (ndots == 2)
				return (-1);
			dots[ndots++] = i;
		}
		start = i + 1;
	}
	if (ndots != 2)
		return (-1);
	if (dot1 != NULL)
		*dot1 = dots[0];
	if (dot2 != NULL)
		*dot2 = dots[1];
	return (0);
}

/*
 * The alg a key must use, from the key alone: ES256 for EC on P-256, RS256
 * for RSA (PKCS#1 v1.5 capable, not RSA-PSS-only keys) of 2048 bits or more,
 * JOSE_ALG_NONE_OK (= unusable) for anything else, including NULL.
 */
enum jose_alg
jose_alg_for_key(EVP_PKEY *pkey)
{
	char	group[64];
	size_t	glen = 0;

	if (pkey == NULL)
		return (JOSE_ALG_NONE_OK);
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		    &glen) != 1) {
			ERR_clear_error();
			return (JOSE_ALG_NONE_OK);
		}
		if (strcmp(group, "prime256v1") == 0)
			return (JOSE_ES256);
		return (JOSE_ALG_NONE_OK);
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) >= JOSE_RSA_MIN_BITS)
			return (JOSE_RS256);
		return (JOSE_ALG_NONE_OK);
	default:
		return (JOSE_ALG_NONE_OK);
	}
}

/* The JOSE "alg" text of alg, or NULL for JOSE_ALG_NONE_OK. */
const char *
jose_alg_name(enum jose_alg alg)
{
	switch (alg) {
	case JOSE_ES256:
		return ("ES256");
	case JOSE_RS256:
		return ("RS256");
	default:
		return (NULL);
	}
}

/*
 * A digest context set up for SHA-256 signing or verifying with pkey.  The
 * alg must be the one the key calls for: alg comes from the key, never from a
 * token header, so a mismatch is refused here too.  RSA padding is pinned to
 * PKCS#1 v1.5 rather than left to the key's defaults.
 */
static EVP_MD_CTX *
jose_md_ctx(EVP_PKEY *pkey, enum jose_alg alg, int sign)
{
	EVP_MD_CTX	*ctx = NULL;
	EVP_PKEY_CTX	*pctx = NULL;
	int		 rv;

	if (alg == JOSE_ALG_NONE_OK || jose_alg_for_key(pkey) != alg)
		goto bad;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto bad;
	if (sign)
		rv = EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pkey);
	else
		rv = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL,
		    pkey);
	if (rv != 1)
		goto bad;
	if (alg == JOSE_RS256 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto bad;
	return (ctx);
 bad:
	EVP_MD_CTX_free(ctx);
	return (NULL);
}

/*
 * Sign the signing input (base64url header "." base64url payload) with pkey
 * using alg (which must be jose_alg_for_key(pkey)).  Returns the malloc'd
 * base64url signature: raw R||S, each 32 bytes, for ES256 (RFC 7518 3.4),
 * PKCS#1 v1.5 for RS256.  NULL on failure.
 */
char *
jose_sign(EVP_PKEY *pkey, enum jose_alg alg, const char *input, size_t len)
{
	EVP_MD_CTX		*ctx = NULL;
	ECDSA_SIG		*esig = NULL;
	const BIGNUM		*r, *s;
	const unsigned char	*der;
	unsigned char		*sig = NULL, raw[JOSE_ES256_SIGLEN];
	size_t			 siglen = 0;
	char			*out = NULL;

	if (input == NULL || (ctx = jose_md_ctx(pkey, alg, 1)) == NULL)
		goto done;
	if (EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)input,
	    len) != 1 || (sig = malloc(siglen)) == NULL)
		goto done;
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input,
	    len) != 1)
		goto done;
	if (alg == JOSE_ES256) {
		/* OpenSSL gives DER; JOSE wants fixed-size R||S. */
		der = sig;
		if ((esig = d2i_ECDSA_SIG(NULL, &der, (long)siglen)) == NULL ||
		    der != sig + siglen)
			goto done;
		ECDSA_SIG_get0(esig, &r, &s);
		if (BN_bn2binpad(r, raw, JOSE_P256_LEN) != JOSE_P256_LEN ||
		    BN_bn2binpad(s, raw + JOSE_P256_LEN, JOSE_P256_LEN) !=
		    JOSE_P256_LEN)
			goto done;
		out = jose_b64url_encode(raw, sizeof(raw));
	} else
		out = jose_b64url_encode(sig, siglen);
 done:
	ECDSA_SIG_free(esig);
	free(sig);
	EVP_MD_CTX_free(ctx);
	return (out);
}

/*
 * Build a compact JWS: base64url(compact JSON of header) "." base64url(the
 * payload bytes) "." signature.  header is borrowed.  Returns a malloc'd
 * NUL-terminated string or NULL.
 */
char *
jose_sign_compact(EVP_PKEY *pkey, enum jose_alg alg, json_t *header,
    const char *payload, size_t payload_len)
{
	char	*hjson = NULL, *h = NULL, *p = NULL, *input = NULL;
	char	*sig = NULL, *out = NULL;
	size_t	 hlen, plen, slen;

	if (!json_is_object(header) || (payload == NULL && payload_len > 0))
		goto done;
	if ((hjson = jsonw_dump(header, JSONW_PLAIN, NULL)) == NULL)
		goto done;
	if ((h = jose_b64url_encode((const unsigned char *)hjson,
	    strlen(hjson))) == NULL)
		goto done;
	if ((p = jose_b64url_encode((const unsigned char *)payload,
	    payload_len)) == NULL)
		goto done;
	hlen = strlen(h);
	plen = strlen(p);
	if ((input = malloc(hlen + 1 + plen + 1)) == NULL)
		goto done;
	memcpy(input, h, hlen);
	input[hlen] = '.';
	memcpy(input + hlen + 1, p, plen + 1);
	if ((sig = jose_sign(pkey, alg, input, hlen + 1 + plen)) == NULL)
		goto done;
	slen = strlen(sig);
	if ((out = malloc(hlen + 1 + plen + 1 + slen + 1)) == NULL)
		goto done;
	memcpy(out, input, hlen + 1 + plen);
	out[hlen + 1 + plen] = '.';
	memcpy(out + hlen + 1 + plen + 1, sig, slen + 1);
 done:
	free(sig);
	free(input);
	free(p);
	free(h);
	free(hjson);
	return (out);
}

/*
 * Verify the signature of the compact JWS tok (len bytes, shape checked
 * here) with pkey and alg, which must be jose_alg_for_key(pkey): the header's
 * alg is not read.  ES256 wants exactly 64 raw bytes; RS256 exactly the key's
 * size.  Returns 0 when the signature verifies, -1 otherwise, without
 * logging and with OpenSSL's error queue cleared.
 */
int
jose_verify(EVP_PKEY *pkey, enum jose_alg alg, const char *tok, size_t len)
{
	EVP_MD_CTX	*ctx = NULL;
	ECDSA_SIG	*esig = NULL;
	BIGNUM		*r = NULL, *s = NULL;
	unsigned char	*sig = NULL, *der = NULL;
	const unsigned char *vsig;
	size_t		 dot1, dot2, siglen, vlen;
	int		 derlen, rv = -1;

	if (jose_split(tok, len, &dot1, &dot2) == -1)
		goto done;
	if ((sig = jose_b64url_decode(tok + dot2 + 1, len - dot2 - 1,
	    &siglen)) == NULL)
		goto done;
	if ((ctx = jose_md_ctx(pkey, alg, 0)) == NULL)
		goto done;
	if (alg == JOSE_ES256) {
		if (siglen != JOSE_ES256_SIGLEN)
			goto done;
		if ((esig = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(sig, JOSE_P256_LEN, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + JOSE_P256_LEN, JOSE_P256_LEN,
		    NULL)) == NULL)
			goto done;
		if (ECDSA_SIG_set0(esig, r, s) != 1)
			goto done;
		r = s = NULL;	/* owned by esig now */
		if ((derlen = i2d_ECDSA_SIG(esig, &der)) <= 0)
			goto done;
		vsig = der;
		vlen = (size_t)derlen;
	} else {
		if (EVP_PKEY_get_size(pkey) <= 0 ||
		    siglen != (size_t)EVP_PKEY_get_size(pkey))
			goto done;
		vsig = sig;
		vlen = siglen;
	}
	/* Signing input: header "." payload, as they appear in the token. */
	if (EVP_DigestVerify(ctx, vsig, vlen, (const unsigned char *)tok,
	    dot2) == 1)
		rv = 0;
 done:
	if (rv == -1)
		ERR_clear_error();
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(esig);
	free(sig);
	EVP_MD_CTX_free(ctx);
	return (rv);
}

/* Never prompt on a terminal for an encrypted key: fail instead. */
static int
jose_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return (-1);
}

/*
 * Load a PEM private key from path.  Encrypted keys are refused (no prompt).
 * Returns a new EVP_PKEY, or NULL with *why (if why is not NULL) set to
 * static text.  Whether the key is usable for signing is jose_alg_for_key's
 * business; file permissions are the caller's.
 */
EVP_PKEY *
jose_load_private_key(const char *path, const char **why)
{
	BIO		*bio = NULL;
	EVP_PKEY	*pkey = NULL;
	const char	*reason = NULL;

	if (path == NULL) {
		reason = "no file given";
		goto done;
	}
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		reason = "cannot open file";
		goto done;
	}
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, jose_no_passphrase,
	    NULL)) == NULL) {
		reason = "not a PEM private key (or encrypted)";
		goto done;
	}
 done:
	BIO_free(bio);
	if (why != NULL)
		*why = reason;
	return (pkey);
}

/*
 * The public half of pkey as PEM SubjectPublicKeyInfo text.  Returns a
 * malloc'd NUL-terminated string and its length (without the NUL) in *len
 * when len is not NULL; NULL on failure.
 */
char *
jose_public_pem(EVP_PKEY *pkey, size_t *len)
{
	BIO	*bio = NULL;
	BUF_MEM	*mem = NULL;
	char	*out = NULL;

	if (pkey == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		goto done;
	if (PEM_write_bio_PUBKEY(bio, pkey) != 1)
		goto done;
	if (BIO_get_mem_ptr(bio, &mem) != 1 || mem == NULL)
		goto done;
	if ((out = malloc(mem->length + 1)) == NULL)
		goto done;
	memcpy(out, mem->data, mem->length);
	out[mem->length] = '\0';
	if (len != NULL)
		*len = mem->length;
 done:
	BIO_free(bio);
	return (out);
}

/*
 * The affine coordinates of an EC P-256 public key as base64url of exactly
 * 32 bytes each (left-padded, RFC 7518 6.2.1.2).  *x and *y are malloc'd.
 */
static int
jose_ec_xy(EVP_PKEY *pkey, char **x, char **y)
{
	BIGNUM		*bx = NULL, *by = NULL;
	unsigned char	 buf[JOSE_P256_LEN];
	int		 rv = -1;

	*x = *y = NULL;
	if (jose_alg_for_key(pkey) != JOSE_ES256)
		goto done;
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1)
		goto done;
	if (BN_bn2binpad(bx, buf, sizeof(buf)) != sizeof(buf) ||
	    (*x = jose_b64url_encode(buf, sizeof(buf))) == NULL)
		goto done;
	if (BN_bn2binpad(by, buf, sizeof(buf)) != sizeof(buf) ||
	    (*y = jose_b64url_encode(buf, sizeof(buf))) == NULL)
		goto done;
	rv = 0;
 done:
	if (rv == -1) {
		free(*x);
		free(*y);
		*x = *y = NULL;
	}
	BN_free(bx);
	BN_free(by);
	return (rv);
}

/*
 * JWK of an EC P-256 public key: {"kty":"EC","crv":"P-256","x":...,"y":...}
 * in that order.  Returns a new reference, or NULL for any other key.
 */
json_t *
jose_ec_public_jwk(EVP_PKEY *pkey)
{
	json_t	*jwk = NULL;
	char	*x = NULL, *y = NULL;

	if (jose_ec_xy(pkey, &x, &y) == -1)
		goto done;
	jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
	    "x", x, "y", y);
 done:
	free(x);
	free(y);
	return (jwk);
}

/*
 * RFC 7638 thumbprint of an EC P-256 public key: base64url of SHA-256 over
 * the required members in lexicographic order, no whitespace.  Returns a
 * malloc'd string (43 characters) or NULL.
 */
char *
jose_thumbprint(EVP_PKEY *pkey)
{
	char		*x = NULL, *y = NULL, *out = NULL;
	char		 canon[128];
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	int		 n;

	if (jose_ec_xy(pkey, &x, &y) == -1)
		goto done;
	n = snprintf(canon, sizeof(canon),
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
	    x, y);
	if (n < 0 || (size_t)n >= sizeof(canon))
		goto done;
	if (EVP_Digest(canon, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
		goto done;
	out = jose_b64url_encode(md, mdlen);
 done:
	free(x);
	free(y);
	return (out);
}

/*
 * The public key of an EC P-256 JWK {"kty":"EC","crv":"P-256","x","y"}
 * (x and y base64url of exactly 32 bytes), or NULL.  OpenSSL refuses a
 * point that is not on the curve.
 */
EVP_PKEY *
jose_ec_public_from_jwk(const json_t *jwk)
{
	const char	*kty = json_string_value(json_object_get(jwk, "kty"));
	const char	*crv = json_string_value(json_object_get(jwk, "crv"));
	const char	*x = json_string_value(json_object_get(jwk, "x"));
	const char	*y = json_string_value(json_object_get(jwk, "y"));
	unsigned char	 point[1 + 2 * JOSE_P256_LEN], *bx = NULL, *by = NULL;
	char		 group[] = "prime256v1";
	size_t		 xl = 0, yl = 0;
	OSSL_PARAM	 params[3];
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pkey = NULL;

	if (kty == NULL || crv == NULL || x == NULL || y == NULL ||
	    strcmp(kty, "EC") != 0 || strcmp(crv, "P-256") != 0)
		return (NULL);
	if ((bx = jose_b64url_decode(x, strlen(x), &xl)) == NULL ||
	    (by = jose_b64url_decode(y, strlen(y), &yl)) == NULL ||
	    xl != JOSE_P256_LEN || yl != JOSE_P256_LEN)
		goto done;
	point[0] = 0x04;	/* uncompressed */
	memcpy(point + 1, bx, JOSE_P256_LEN);
	memcpy(point + 1 + JOSE_P256_LEN, by, JOSE_P256_LEN);
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
 done:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	free(bx);
	free(by);
	return (pkey);
}

json_t *
jose_segment_json(const char *seg, size_t len)
{
	unsigned char	*raw;
	size_t		 rawlen;
	json_t		*o;

	if ((raw = jose_b64url_decode(seg, len, &rawlen)) == NULL)
		return (NULL);
	o = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    NULL);
	free(raw);
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}
