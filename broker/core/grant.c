/*
 * grant: sign grants, verify the ones presented for redemption, and
 * publish the key that verifies them.  The kid and the JWKS body are
 * computed once at start; a grant costs one canonical dump of its claims
 * and one ES256 signature.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "grant.h"
#include "jose.h"
#include "log.h"

static char *
grant_jwks_text(EVP_PKEY *key, const char *kid)
{
	json_t	*jwk, *set;
	char	*text;

	if ((jwk = jose_ec_public_jwk(key)) == NULL)
		return (NULL);
	json_object_set_new(jwk, "kid", json_string(kid));
	json_object_set_new(jwk, "alg", json_string("ES256"));
	json_object_set_new(jwk, "use", json_string("sig"));
	set = json_pack("{s[o]}", "keys", jwk);
	text = set ? json_dumps(set, JSON_COMPACT) : NULL;
	json_decref(set);
	return (text);
}

int
grant_signer_init(struct grant_signer *g, EVP_PKEY *key, const char **why)
{
	memset(g, 0, sizeof(*g));
	if (jose_alg_for_key(key) != JOSE_ES256) {
		*why = "grant key must be an EC P-256 private key";
		EVP_PKEY_free(key);
		return (-1);
	}
	g->key = key;
	g->kid = jose_thumbprint(key);
	if (g->kid != NULL) {
		g->header = json_pack("{ss ss ss}", "alg", "ES256",
		    "typ", "JWT", "kid", g->kid);
		g->jwks = grant_jwks_text(key, g->kid);
	}
	if (g->kid == NULL || g->header == NULL || g->jwks == NULL) {
		*why = "cannot derive the grant key's JWK";
		grant_signer_deinit(g);
		return (-1);
	}
	return (0);
}

void
grant_signer_deinit(struct grant_signer *g)
{
	EVP_PKEY_free(g->key);
	free(g->kid);
	json_decref(g->header);
	free(g->jwks);
	memset(g, 0, sizeof(*g));
}

static json_t *
grant_claims(const struct intent_row *r, json_t *args, int64_t now)
{
	json_t	*approvers = json_array(), *claims;
	size_t	 i;

	if (approvers == NULL)
		return (NULL);
	for (i = 0; i < r->n_approvals; i++)
		if (json_array_append_new(approvers,
		    json_string(r->approvals[i].by)) == -1) {
			json_decref(approvers);
			return (NULL);
		}
	claims = json_pack("{ss ss ss ss sI sI ss sO so ss}",
	    "iss", GRANT_ISSUER,
	    "sub", r->agent,
	    "aud", r->tool,
	    "jti", r->id,
	    "iat", (json_int_t)now,
	    "exp", (json_int_t)(now + GRANT_TTL),
	    "tool", r->tool,
	    "args", args,
	    "approvers", approvers,
	    "intent_sha256", r->intent_sha256);
	if (claims != NULL && r->amount_value != NULL &&
	    r->amount_currency != NULL &&
	    json_object_set_new(claims, "amount", json_pack("{ss ss}",
	    "value", r->amount_value, "currency", r->amount_currency)) == -1) {
		json_decref(claims);
		return (NULL);
	}
	return (claims);
}

char *
grant_sign(const struct grant_signer *g, const struct intent_row *r,
    json_t *args, int64_t now, int64_t *exp)
{
	json_t	*claims, *empty = NULL;
	char	*payload, *tok = NULL;

	/* "O" takes a reference: an empty object made here is dropped. */
	if (args == NULL && (args = empty = json_object()) == NULL)
		return (NULL);
	claims = grant_claims(r, args, now);
	json_decref(empty);
	if (claims == NULL)
		return (NULL);
	payload = canon_dump(claims);
	json_decref(claims);
	if (payload != NULL)
		tok = jose_sign_compact(g->key, JOSE_ES256, g->header,
		    payload, strlen(payload));
	free(payload);
	*exp = now + GRANT_TTL;
	return (tok);
}

/* The header is checked before the signature so that nothing but our
 * exact alg ever reaches a verifier. */
json_t *
grant_verify(const struct grant_signer *g, const char *tok, int64_t now,
    const char **why)
{
	json_t		*hdr = NULL, *cl = NULL, *exp;
	size_t		 len = strlen(tok), dot1, dot2;
	const char	*alg, *kid;

	*why = "the grant is not a well-formed compact JWS";
	if (jose_split(tok, len, &dot1, &dot2) == -1)
		return (NULL);
	if ((hdr = jose_segment_json(tok, dot1)) == NULL)
		return (NULL);
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	*why = "the grant was not issued by this broker";
	if (alg == NULL || strcmp(alg, "ES256") != 0 || kid == NULL ||
	    strcmp(kid, g->kid) != 0 || json_object_get(hdr, "crit") != NULL)
		goto bad;
	*why = "the grant's signature does not verify";
	if (jose_verify(g->key, JOSE_ES256, tok, len) != 0)
		goto bad;
	*why = "the grant's claims are malformed";
	if ((cl = jose_segment_json(tok + dot1 + 1, dot2 - dot1 - 1)) == NULL)
		goto bad;
	exp = json_object_get(cl, "exp");
	if (!json_is_string(json_object_get(cl, "iss")) ||
	    strcmp(json_string_value(json_object_get(cl, "iss")),
	    GRANT_ISSUER) != 0 || !json_is_integer(exp) ||
	    !json_is_string(json_object_get(cl, "jti")) ||
	    !json_is_string(json_object_get(cl, "sub")) ||
	    !json_is_string(json_object_get(cl, "tool")))
		goto bad;
	if (json_integer_value(exp) <= now) {
		*why = "the grant has expired";
		goto bad;
	}
	json_decref(hdr);
	*why = NULL;
	return (cl);
 bad:
	json_decref(hdr);
	json_decref(cl);
	return (NULL);
}
