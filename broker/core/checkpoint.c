/*
 * checkpoint: sign, parse and verify checkpoint tokens.  Parsing is
 * strict (jose_split's shape, duplicate members refused, exact claim
 * types) and never trusts the header's alg: only ES256 is ever verified.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "checkpoint.h"
#include "jose.h"

char *
checkpoint_sign(EVP_PKEY *key, json_t *header, int64_t seq, const char *hash,
    int64_t now)
{
	json_t	*claims;
	char	*payload, *tok = NULL;

	claims = json_pack("{ss sI ss sI}", "iss", CHECKPOINT_ISSUER, "seq",
	    (json_int_t)seq, "hash", hash, "iat", (json_int_t)now);
	if (claims == NULL)
		return (NULL);
	if ((payload = canon_dump(claims)) != NULL)
		tok = jose_sign_compact(key, JOSE_ES256, header, payload,
		    strlen(payload));
	free(payload);
	json_decref(claims);
	return (tok);
}

static int
is_hex64(const char *s)
{
	size_t	 i;

	if (s == NULL || strlen(s) != 64)
		return (0);
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return (0);
	return (1);
}

int
checkpoint_parse(const char *jws, struct checkpoint *cp, const char **why)
{
	json_t		*hdr = NULL, *cl = NULL, *seq, *iat;
	const char	*alg, *kid, *iss, *hash;
	size_t		 len, dot1, dot2;
	int		 rc = -1;

	memset(cp, 0, sizeof(*cp));
	*why = "not a compact JWS";
	if (jws == NULL || (len = strlen(jws)) > CHECKPOINT_MAX ||
	    jose_split(jws, len, &dot1, &dot2) == -1 ||
	    (hdr = jose_segment_json(jws, dot1)) == NULL ||
	    (cl = jose_segment_json(jws + dot1 + 1, dot2 - dot1 - 1)) == NULL)
		goto done;
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	*why = "its header is not ES256 with a kid";
	if (alg == NULL || strcmp(alg, "ES256") != 0 || kid == NULL ||
	    strlen(kid) >= sizeof(cp->kid) ||
	    json_object_get(hdr, "crit") != NULL)
		goto done;
	iss = json_string_value(json_object_get(cl, "iss"));
	hash = json_string_value(json_object_get(cl, "hash"));
	seq = json_object_get(cl, "seq");
	iat = json_object_get(cl, "iat");
	*why = "its claims are not a toolgate checkpoint (iss \"toolgate\", "
	    "seq, hash, iat)";
	if (iss == NULL || strcmp(iss, CHECKPOINT_ISSUER) != 0 ||
	    !json_is_integer(seq) || json_integer_value(seq) < 0 ||
	    !is_hex64(hash) || !json_is_integer(iat))
		goto done;
	cp->seq = json_integer_value(seq);
	memcpy(cp->hash, hash, 65);
	cp->iat = json_integer_value(iat);
	memcpy(cp->kid, kid, strlen(kid) + 1);
	*why = NULL;
	rc = 0;
 done:
	json_decref(hdr);
	json_decref(cl);
	return (rc);
}

int
checkpoint_verify(EVP_PKEY *key, const char *jws, struct checkpoint *cp,
    const char **why)
{
	if (checkpoint_parse(jws, cp, why) == -1)
		return (-1);
	if (key == NULL || jose_alg_for_key(key) != JOSE_ES256 ||
	    jose_verify(key, JOSE_ES256, jws, strlen(jws)) != 0) {
		*why = "its signature does not verify";
		return (-1);
	}
	return (0);
}

int
checkpoint_verify_jwks(const json_t *jwks, const char *jws,
    struct checkpoint *cp, const char **why)
{
	const json_t	*jwk;
	const char	*kid;
	EVP_PKEY	*key = NULL;
	size_t		 i;
	int		 rc;

	if (checkpoint_parse(jws, cp, why) == -1)
		return (-1);
	json_array_foreach(json_object_get(jwks, "keys"), i, jwk) {
		kid = json_string_value(json_object_get(jwk, "kid"));
		if (kid != NULL && strcmp(kid, cp->kid) == 0) {
			key = jose_ec_public_from_jwk(jwk);
			break;
		}
	}
	if (key == NULL) {
		*why = "no key of the JWK Set has its kid";
		return (-1);
	}
	rc = checkpoint_verify(key, jws, cp, why);
	EVP_PKEY_free(key);
	return (rc);
}
