/*
 * grant: sign grants and publish the key that verifies them.  The kid and
 * the JWKS body are computed once at start; a grant costs one canonical
 * dump of its claims and one ES256 signature.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "clock.h"
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
grant_claims(json_t *view, int64_t now)
{
	json_t	*approvers = json_array(), *a, *claims;
	size_t	 i;

	json_array_foreach(json_object_get(view, "approvals"), i, a)
		json_array_append(approvers, json_object_get(a, "by"));
	claims = json_pack("{ss sO sO sO sI sI sO sO so sO}",
	    "iss", GRANT_ISSUER,
	    "sub", json_object_get(view, "agent"),
	    "aud", json_object_get(view, "tool"),
	    "jti", json_object_get(view, "id"),
	    "iat", (json_int_t)now,
	    "exp", (json_int_t)(now + GRANT_TTL),
	    "tool", json_object_get(view, "tool"),
	    "args", json_object_get(view, "args"),
	    "approvers", approvers,
	    "intent_sha256", json_object_get(view, "intent_sha256"));
	if (claims != NULL && json_is_object(json_object_get(view, "amount")))
		json_object_set(claims, "amount",
		    json_object_get(view, "amount"));
	return (claims);
}

char *
grant_sign(const struct grant_signer *g, json_t *view, int64_t now,
    int64_t *exp)
{
	json_t	*claims;
	char	*payload, *tok = NULL;

	if ((claims = grant_claims(view, now)) == NULL)
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

int
grant_attach(const struct grant_signer *g, json_t *view, int64_t now)
{
	char	*tok, at[RFC3339_LEN];
	int64_t	 exp;

	if ((tok = grant_sign(g, view, now, &exp)) == NULL) {
		log_warnx("%s: cannot sign grant", __func__);
		return (-1);
	}
	clock_rfc3339(exp, at);
	json_object_set_new(view, "grant", json_string(tok));
	json_object_set_new(view, "grant_expires_at", json_string(at));
	free(tok);
	return (0);
}
