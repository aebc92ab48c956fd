/*
 * grant: the signed, short-lived permission a tool verifies (CONTRACT §3
 * Grants).  ES256 with the --grant-key, header kid = RFC 7638 thumbprint.
 * Grants are not stored: each answer that carries one signs it afresh from
 * the intent's view, with the same jti (the intent id).
 */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define GRANT_TTL	60
#define GRANT_ISSUER	"toolgate"

struct grant_signer {
	EVP_PKEY	*key;		/* owned */
	char		*kid;
	json_t		*header;	/* {"alg","typ","kid"} */
	char		*jwks;		/* precomputed GET /v1/jwks body */
};

/* Take ownership of key (must be EC P-256).  0, or -1 with *why set. */
int	grant_signer_init(struct grant_signer *g, EVP_PKEY *key,
	    const char **why);
void	grant_signer_deinit(struct grant_signer *g);

/*
 * Sign a grant for an allowed intent from its API view (agent, tool, args,
 * amount, approvals, intent_sha256, id) at time now.  Returns the compact
 * JWS (malloc'd) and its exp in *exp, or NULL.
 */
char	*grant_sign(const struct grant_signer *g, json_t *view, int64_t now,
	    int64_t *exp);

/* Add "grant" and "grant_expires_at" to an allowed view.  0 or -1. */
int	grant_attach(const struct grant_signer *g, json_t *view, int64_t now);
