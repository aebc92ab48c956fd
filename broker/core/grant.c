/*
 * grant: sign grants, verify the ones presented for redemption, and
 * publish the keys that verify them.  A keyring's kids and JWKS body are
 * computed once, when it is built (at start and at each reload); a grant
 * costs one canonical dump of its claims and one ES256 signature, plus
 * a reference taken on the keyring under a mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "file.h"
#include "grant.h"
#include "jose.h"
#include "log.h"

/* {"keys": [every key's JWK, the signing key first]}, compact. */
static char *
grant_jwks_text(const struct grant_keyring *r)
{
	json_t	*keys = json_array(), *jwk, *set;
	char	*text = NULL;
	size_t	 i;

	for (i = 0; keys != NULL && i < r->n; i++) {
		if ((jwk = jose_ec_public_jwk(r->keys[i].key)) == NULL ||
		    json_array_append_new(keys, jwk) == -1) {
			json_decref(keys);
			return (NULL);
		}
		json_object_set_new(jwk, "kid", json_string(r->keys[i].kid));
		json_object_set_new(jwk, "alg", json_string("ES256"));
		json_object_set_new(jwk, "use", json_string("sig"));
	}
	set = keys ? json_pack("{so}", "keys", keys) : NULL;
	if (set != NULL)
		text = json_dumps(set, JSON_COMPACT);
	json_decref(set);
	return (text);
}

void
grant_keyring_unref(struct grant_keyring *r)
{
	size_t	 i;

	if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < r->n; i++) {
		EVP_PKEY_free(r->keys[i].key);
		free(r->keys[i].kid);
		json_decref(r->keys[i].header);
	}
	free(r->jwks);
	free(r);
}

struct grant_keyring *
grant_keyring_new(EVP_PKEY **keys, size_t n, const char **why)
{
	struct grant_keyring	*r;
	struct grant_key	*k;
	size_t			 i, j;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*why = "out of memory";
		goto bad;
	}
	r->refs = 1;
	*why = n == 0 ? "no grant key" : "more grant keys than 8";
	if (n == 0 || n > GRANT_KEYS_MAX)
		goto bad;
	for (i = 0; i < n; i++) {
		k = &r->keys[r->n++];
		k->key = keys[i];
		keys[i] = NULL;
		*why = "grant key must be an EC P-256 private key";
		if (jose_alg_for_key(k->key) != JOSE_ES256)
			goto bad;
		*why = "cannot derive the grant key's JWK";
		if ((k->kid = jose_thumbprint(k->key)) == NULL ||
		    (k->header = json_pack("{ss ss ss}", "alg", "ES256",
		    "typ", "JWT", "kid", k->kid)) == NULL)
			goto bad;
		*why = "the same grant key is listed twice";
		for (j = 0; j < i; j++)
			if (strcmp(r->keys[j].kid, k->kid) == 0)
				goto bad;
	}
	*why = "cannot derive the grant keys' JWKS";
	if ((r->jwks = grant_jwks_text(r)) == NULL)
		goto bad;
	*why = NULL;
	return (r);
 bad:
	/* Whatever was not taken yet is still ours to free. */
	for (i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
	grant_keyring_unref(r);
	return (NULL);
}

struct grant_keyring *
grant_keyring_load(const char *const *paths, size_t n, char *err,
    size_t errlen)
{
	EVP_PKEY	*keys[GRANT_KEYS_MAX] = { NULL };
	const char	*why = NULL;
	char		 e[256];
	size_t		 i, j;
	struct grant_keyring *r;

	if (n == 0 || n > GRANT_KEYS_MAX) {
		snprintf(err, errlen, "give 1 to %d grant keys, not %zu",
		    GRANT_KEYS_MAX, n);
		return (NULL);
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(paths[i], paths[j]) == 0) {
				snprintf(err, errlen, "%s: listed twice",
				    paths[i]);
				goto bad;
			}
		if (file_check_secret(paths[i], e, sizeof(e)) == -1) {
			snprintf(err, errlen, "%s: %s", paths[i], e);
			goto bad;
		}
		if ((keys[i] = jose_load_private_key(paths[i], &why)) ==
		    NULL) {
			snprintf(err, errlen, "%s: %s", paths[i], why ? why :
			    "cannot load grant key");
			goto bad;
		}
		if (jose_alg_for_key(keys[i]) != JOSE_ES256) {
			snprintf(err, errlen, "%s: grant key must be an EC "
			    "P-256 private key", paths[i]);
			goto bad;
		}
	}
	if ((r = grant_keyring_new(keys, n, &why)) == NULL)
		snprintf(err, errlen, "%s", why);
	return (r);
 bad:
	for (i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
	return (NULL);
}

int
grant_signer_init_ring(struct grant_signer *g, struct grant_keyring *ring)
{
	g->ring = ring;
	return (pthread_mutex_init(&g->lock, NULL) == 0 ? 0 : -1);
}

int
grant_signer_init(struct grant_signer *g, EVP_PKEY *key, const char **why)
{
	struct grant_keyring	*r;

	memset(g, 0, sizeof(*g));
	if ((r = grant_keyring_new(&key, 1, why)) == NULL)
		return (-1);
	if (grant_signer_init_ring(g, r) == -1) {
		*why = "cannot initialise a mutex";
		grant_keyring_unref(r);
		return (-1);
	}
	return (0);
}

void
grant_signer_swap(struct grant_signer *g, struct grant_keyring *ring)
{
	struct grant_keyring	*old;

	pthread_mutex_lock(&g->lock);
	old = g->ring;
	g->ring = ring;
	pthread_mutex_unlock(&g->lock);
	grant_keyring_unref(old);
}

struct grant_keyring *
grant_signer_keys(struct grant_signer *g)
{
	struct grant_keyring	*r;

	pthread_mutex_lock(&g->lock);
	r = g->ring;
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&g->lock);
	return (r);
}

void
grant_signer_deinit(struct grant_signer *g)
{
	if (g->ring == NULL)
		return;
	grant_keyring_unref(g->ring);
	pthread_mutex_destroy(&g->lock);
	memset(g, 0, sizeof(*g));
}

char *
grant_sign_payload(struct grant_signer *g, const char *payload, size_t len)
{
	struct grant_keyring	*r = grant_signer_keys(g);
	char			*tok;

	tok = jose_sign_compact(r->keys[0].key, JOSE_ES256, r->keys[0].header,
	    payload, len);
	grant_keyring_unref(r);
	return (tok);
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
grant_sign(struct grant_signer *g, const struct intent_row *r,
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
		tok = grant_sign_payload(g, payload, strlen(payload));
	free(payload);
	*exp = now + GRANT_TTL;
	return (tok);
}

EVP_PKEY *
grant_keyring_find(const struct grant_keyring *r, const char *kid)
{
	size_t	 i;

	for (i = 0; kid != NULL && i < r->n; i++)
		if (strcmp(r->keys[i].kid, kid) == 0)
			return (r->keys[i].key);
	return (NULL);
}

/* The header is checked before the signature so that nothing but our
 * exact alg ever reaches a verifier, and only with the key its kid
 * names: a kid no longer in the keyring (dropped after a rotation) is
 * not ours any more. */
json_t *
grant_verify(struct grant_signer *g, const char *tok, int64_t now,
    const char **why)
{
	struct grant_keyring	*r = NULL;
	json_t			*hdr = NULL, *cl = NULL, *exp;
	size_t			 len = strlen(tok), dot1, dot2;
	const char		*alg;
	EVP_PKEY		*key;

	*why = "the grant is not a well-formed compact JWS";
	if (jose_split(tok, len, &dot1, &dot2) == -1)
		return (NULL);
	if ((hdr = jose_segment_json(tok, dot1)) == NULL)
		return (NULL);
	r = grant_signer_keys(g);
	alg = json_string_value(json_object_get(hdr, "alg"));
	key = grant_keyring_find(r, json_string_value(json_object_get(hdr, "kid")));
	*why = "the grant was not issued by this broker";
	if (alg == NULL || strcmp(alg, "ES256") != 0 || key == NULL ||
	    json_object_get(hdr, "crit") != NULL)
		goto bad;
	*why = "the grant's signature does not verify";
	if (jose_verify(key, JOSE_ES256, tok, len) != 0)
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
	grant_keyring_unref(r);
	*why = NULL;
	return (cl);
 bad:
	grant_keyring_unref(r);
	json_decref(hdr);
	json_decref(cl);
	return (NULL);
}
