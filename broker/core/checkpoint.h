/*
 * checkpoint: a signed statement that the audit chain held record `seq`
 * with hash `hash` (CONTRACT §10, proto/audit.md "Checkpoints"): a
 * compact JWS, ES256 by the grant key with its kid, claims {"seq",
 * "hash", "iat", "iss": "toolgate"}, verifiable with GET /v1/jwks by any
 * JOSE library.  Anyone who keeps one can later show that a chain which
 * no longer holds that record with that hash was truncated, rewritten or
 * rolled back.  It carries no aud, sub or jti, so it can never pass for a
 * grant (grant.h), nor a grant for it.  Only the token here: which head
 * the broker signs, and when, is audit_trust.h's.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define CHECKPOINT_ISSUER	"toolgate"
#define CHECKPOINT_MAX		2048	/* bytes of a token we accept */

struct checkpoint {
	int64_t		 seq;		/* 0: the empty chain */
	char		 hash[65];
	int64_t		 iat;
	char		 kid[64];
};

/*
 * Sign a checkpoint of (seq, hash) at now with key (EC P-256) and header
 * ({"alg": "ES256", "kid": ...}, borrowed).  The compact JWS (malloc'd)
 * or NULL.
 */
char	*checkpoint_sign(EVP_PKEY *key, json_t *header, int64_t seq,
	    const char *hash, int64_t now);
/*
 * The header and claims of a checkpoint token, strictly: compact form,
 * alg ES256, a kid, iss "toolgate", seq an integer >= 0, hash 64
 * lowercase hex digits, iat an integer.  The signature is NOT checked.
 * 0, or -1 with *why (static text).
 */
int	checkpoint_parse(const char *jws, struct checkpoint *cp,
	    const char **why);
/* checkpoint_parse, and the signature verifies with key.  0 or -1. */
int	checkpoint_verify(EVP_PKEY *key, const char *jws, struct checkpoint *cp,
	    const char **why);
/* The same with the key of the JWK Set jwks ({"keys": [...]}) whose kid
 * is the token's. */
int	checkpoint_verify_jwks(const json_t *jwks, const char *jws,
	    struct checkpoint *cp, const char **why);
