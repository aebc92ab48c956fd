/*
 * test-grant: broker/core/grant.c — the signer accepts only EC P-256
 * keys; a grant carries the claims of CONTRACT §3 from the intent's row
 * (approvers in approval order, amount only when there is one, args {}
 * when none); grant_verify accepts exactly our grants: ES256, our kid,
 * our signature, iss toolgate, the claims it needs, not expired; the
 * JWKS names the same kid.  Keyrings: the first key signs, every key
 * verifies and is in the JWKS (signing key first), a swap keeps grants
 * of a key still listed and refuses those of a dropped one; files are
 * checked (mode, curve, twice) before anything is swapped.
 */
#undef NDEBUG
#include <sys/stat.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "canon.h"
#include "grant.h"
#include "jose.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

#define NOW	1795736400

static void
row(struct intent_row *r, int with_amount)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "in_%032d", 42);
	r->agent = strdup("agent-payments");
	r->tool = strdup("payments.transfer");
	if (with_amount) {
		r->amount_value = strdup("5000.00");
		r->amount_currency = strdup("USD");
	}
	snprintf(r->intent_sha256, sizeof(r->intent_sha256), "%064d", 9);
}

/* The claims segment of tok, parsed (new reference). */
static json_t *
claims_of(const char *tok)
{
	size_t		 d1, d2, n;
	unsigned char	*raw;
	json_t		*c;

	CHECK(jose_split(tok, strlen(tok), &d1, &d2) == 0);
	raw = jose_b64url_decode(tok + d1 + 1, d2 - d1 - 1, &n);
	CHECK(raw != NULL);
	c = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	CHECK(c != NULL);
	return (c);
}

static void
test_keys(void)
{
	struct grant_signer	 g;
	const char		*why = NULL;

	CHECK(grant_signer_init(&g, EVP_RSA_gen(2048), &why) == -1);
	CHECK(why != NULL);
	why = NULL;
	CHECK(grant_signer_init(&g, EVP_EC_gen("P-384"), &why) == -1);
	CHECK(why != NULL);
	CHECK(grant_signer_init(&g, EVP_EC_gen("P-256"), &why) == 0);
	CHECK(g.ring->keys[0].kid != NULL && strlen(g.ring->keys[0].kid) == 43);
	CHECK(strstr(g.ring->jwks, g.ring->keys[0].kid) != NULL);
	CHECK(strstr(g.ring->jwks, "\"alg\":\"ES256\"") != NULL);
	grant_signer_deinit(&g);
}

static void
test_claims(void)
{
	struct grant_signer	 g;
	struct intent_row	 r;
	const char		*why;
	json_t			*c, *args = json_pack("{ss}", "to", "DE89");
	char			*tok;
	int64_t			 exp;

	CHECK(grant_signer_init(&g, EVP_EC_gen("P-256"), &why) == 0);
	row(&r, 1);
	CHECK(intent_row_add_approval(&r, "approver-bob", NOW - 5, "ok") == 0);
	CHECK(intent_row_add_approval(&r, "approver-alice", NOW - 1,
	    NULL) == 0);
	tok = grant_sign(&g, &r, args, NOW, &exp);
	CHECK(tok != NULL && exp == NOW + GRANT_TTL);
	c = claims_of(tok);
	CHECK(strcmp(json_string_value(json_object_get(c, "iss")),
	    "toolgate") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "sub")),
	    "agent-payments") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "aud")),
	    "payments.transfer") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "jti")), r.id) == 0);
	CHECK(json_integer_value(json_object_get(c, "iat")) == NOW);
	CHECK(json_integer_value(json_object_get(c, "exp")) == NOW + 60);
	CHECK(json_equal(json_object_get(c, "args"), args));
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(c,
	    "approvers"), 0)), "approver-bob") == 0);
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(c,
	    "approvers"), 1)), "approver-alice") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(c,
	    "amount"), "value")), "5000.00") == 0);
	CHECK(strcmp(json_string_value(json_object_get(c, "intent_sha256")),
	    r.intent_sha256) == 0);
	json_decref(c);
	free(tok);
	intent_row_clear(&r);
	/* No amount, no approvals, no args. */
	row(&r, 0);
	tok = grant_sign(&g, &r, NULL, NOW, &exp);
	c = claims_of(tok);
	CHECK(json_object_get(c, "amount") == NULL);
	CHECK(json_array_size(json_object_get(c, "approvers")) == 0);
	CHECK(json_is_object(json_object_get(c, "args")) &&
	    json_object_size(json_object_get(c, "args")) == 0);
	json_decref(c);
	free(tok);
	intent_row_clear(&r);
	json_decref(args);
	grant_signer_deinit(&g);
}

static void
test_verify(void)
{
	struct grant_signer	 g, other;
	struct intent_row	 r;
	const char		*why;
	json_t			*c, *hdr;
	char			*tok, *bad;
	int64_t			 exp;
	size_t			 d1, d2;

	CHECK(grant_signer_init(&g, EVP_EC_gen("P-256"), &why) == 0);
	CHECK(grant_signer_init(&other, EVP_EC_gen("P-256"), &why) == 0);
	row(&r, 1);
	tok = grant_sign(&g, &r, NULL, NOW, &exp);
	c = grant_verify(&g, tok, NOW, &why);
	CHECK(c != NULL && why == NULL);
	CHECK(strcmp(json_string_value(json_object_get(c, "jti")), r.id) == 0);
	json_decref(c);
	/* Up to, not at, its exp. */
	CHECK((c = grant_verify(&g, tok, exp - 1, &why)) != NULL);
	json_decref(c);
	CHECK(grant_verify(&g, tok, exp, &why) == NULL);
	CHECK(strstr(why, "expired") != NULL);
	/* Another broker's grant, however well signed. */
	CHECK(grant_verify(&other, tok, NOW, &why) == NULL);
	CHECK(strstr(why, "not issued by this broker") != NULL);
	/* One flipped byte in the payload breaks the signature. */
	bad = strdup(tok);
	CHECK(jose_split(bad, strlen(bad), &d1, &d2) == 0);
	bad[d1 + 5] = bad[d1 + 5] == 'A' ? 'B' : 'A';
	CHECK(grant_verify(&g, bad, NOW, &why) == NULL);
	free(bad);
	/* Our key and kid but another alg, or a crit header: refused
	 * before any signature is checked. */
	hdr = json_pack("{ss ss ss}", "alg", "ES256", "kid", g.ring->keys[0].kid, "crit",
	    "exp");
	bad = jose_sign_compact(g.ring->keys[0].key, JOSE_ES256, hdr, "{}", 2);
	CHECK(grant_verify(&g, bad, NOW, &why) == NULL);
	free(bad);
	json_decref(hdr);
	/* Claims it must have: a signed {} is ours but useless. */
	bad = jose_sign_compact(g.ring->keys[0].key, JOSE_ES256, g.ring->keys[0].header, "{}", 2);
	CHECK(grant_verify(&g, bad, NOW, &why) == NULL);
	CHECK(strstr(why, "malformed") != NULL);
	free(bad);
	CHECK(grant_verify(&g, "not.a.jws!", NOW, &why) == NULL);
	CHECK(grant_verify(&g, "", NOW, &why) == NULL);
	free(tok);
	intent_row_clear(&r);
	grant_signer_deinit(&other);
	grant_signer_deinit(&g);
}

/* A fresh P-256 key in a file of mode; its path in path. */
static void
key_file(char *path, size_t len, const char *curve, mode_t mode)
{
	EVP_PKEY	*k = EVP_EC_gen(curve);
	FILE		*f;
	int		 fd;

	snprintf(path, len, "/tmp/test-grant-XXXXXX");
	CHECK((fd = mkstemp(path)) >= 0);
	CHECK((f = fdopen(fd, "w")) != NULL);
	CHECK(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
	CHECK(chmod(path, mode) == 0);
	EVP_PKEY_free(k);
}

static struct grant_keyring *
ring_of(const char *a, const char *b)
{
	const char		*paths[2] = { a, b };
	char			 err[512];
	struct grant_keyring	*r;

	r = grant_keyring_load(paths, b ? 2 : 1, err, sizeof(err));
	if (r == NULL)
		fprintf(stderr, "keyring: %s\n", err);
	CHECK(r != NULL);
	return (r);
}

static void
test_rotation(void)
{
	struct grant_signer	 g;
	struct intent_row	 r;
	struct grant_keyring	*ring;
	char			 old[64], fresh[64], loose[64], p384[64];
	char			 same[80];
	char			 err[512], *tok_old, *tok_new;
	const char		*paths[GRANT_KEYS_MAX + 1], *why;
	json_t			*c, *jwks;
	int64_t			 exp;
	size_t			 i;

	key_file(old, sizeof(old), "P-256", 0600);
	key_file(fresh, sizeof(fresh), "P-256", 0400);
	key_file(loose, sizeof(loose), "P-256", 0640);
	key_file(p384, sizeof(p384), "P-384", 0600);
	row(&r, 0);

	/* one key: it signs */
	CHECK(grant_signer_init_ring(&g, ring_of(old, NULL)) == 0);
	tok_old = grant_sign(&g, &r, NULL, NOW, &exp);
	CHECK(tok_old != NULL);

	/* the new key added second: the old one still signs, both publish */
	grant_signer_swap(&g, ring_of(old, fresh));
	ring = grant_signer_keys(&g);
	CHECK(ring->n == 2);
	jwks = json_loads(ring->jwks, 0, NULL);
	CHECK(json_array_size(json_object_get(jwks, "keys")) == 2);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(
	    json_object_get(jwks, "keys"), 0), "kid")), ring->keys[0].kid) ==
	    0);
	json_decref(jwks);
	grant_keyring_unref(ring);
	tok_new = grant_sign(&g, &r, NULL, NOW, &exp);
	CHECK(strncmp(tok_new, tok_old, strchr(tok_old, '.') - tok_old) == 0);
	free(tok_new);

	/* the new one made first: it signs, the old grant still verifies */
	grant_signer_swap(&g, ring_of(fresh, old));
	tok_new = grant_sign(&g, &r, NULL, NOW, &exp);
	CHECK(strncmp(tok_new, tok_old, strchr(tok_old, '.') - tok_old) != 0);
	CHECK((c = grant_verify(&g, tok_old, NOW, &why)) != NULL);
	json_decref(c);
	CHECK((c = grant_verify(&g, tok_new, NOW, &why)) != NULL);
	json_decref(c);

	/* the old one dropped: its grants are no longer ours */
	grant_signer_swap(&g, ring_of(fresh, NULL));
	CHECK(grant_verify(&g, tok_old, NOW, &why) == NULL);
	CHECK(strcmp(why, "the grant was not issued by this broker") == 0);
	CHECK((c = grant_verify(&g, tok_new, NOW, &why)) != NULL);
	json_decref(c);

	/* what a keyring refuses, naming the file */
	paths[0] = fresh;
	paths[1] = loose;
	CHECK(grant_keyring_load(paths, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, loose) != NULL && strstr(err, "chmod 600"));
	paths[1] = p384;
	CHECK(grant_keyring_load(paths, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, p384) != NULL && strstr(err, "P-256"));
	paths[1] = fresh;
	CHECK(grant_keyring_load(paths, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "listed twice") != NULL);
	/* the same key under another name */
	snprintf(same, sizeof(same), "%s.same", fresh);
	CHECK(link(fresh, same) == 0);
	paths[1] = same;
	CHECK(grant_keyring_load(paths, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "the same grant key is listed twice"));
	unlink(same);
	paths[1] = "/nonexistent/grant.key";
	CHECK(grant_keyring_load(paths, 2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/grant.key: cannot read key: No such "
	    "file") != NULL);
	for (i = 0; i <= GRANT_KEYS_MAX; i++)
		paths[i] = fresh;
	CHECK(grant_keyring_load(paths, GRANT_KEYS_MAX + 1, err,
	    sizeof(err)) == NULL);
	CHECK(grant_keyring_load(paths, 0, err, sizeof(err)) == NULL);

	free(tok_old);
	free(tok_new);
	intent_row_clear(&r);
	grant_signer_deinit(&g);
	unlink(old);
	unlink(fresh);
	unlink(loose);
	unlink(p384);
}

int
main(void)
{
	test_keys();
	test_claims();
	test_verify();
	test_rotation();
	printf("grant: %d passed, 0 failed\n", passed);
	return (0);
}
