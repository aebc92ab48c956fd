/*
 * grant: the signed, short-lived permission a tool verifies (CONTRACT §3
 * Grants).  ES256 with the --grant-key, header kid = RFC 7638 thumbprint.
 * Grants are not stored: each answer that carries one signs it afresh from
 * the intent's row, with the same jti (the intent id).
 */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rows.h"

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
 * Sign a grant for an allowed intent at time now: claims from r (agent,
 * tool, id, amount, approvers in approval order, intent_sha256) and args
 * (the intent's args as JSON, borrowed; NULL means {}).  Returns the
 * compact JWS (malloc'd) and its exp in *exp, or NULL.  Whether the
 * intent may have a grant now is the lifecycle's question (lc_may_grant).
 */
char	*grant_sign(const struct grant_signer *g, const struct intent_row *r,
	    json_t *args, int64_t now, int64_t *exp);

/*
 * A grant presented for redemption is ours: ES256 with our key and kid,
 * iss "toolgate", jti, sub and tool strings, not yet expired at now (no
 * skew: we set exp).  Returns the claims (new reference) or NULL with
 * *why set to a static message.
 */
json_t	*grant_verify(const struct grant_signer *g, const char *tok,
	    int64_t now, const char **why);
