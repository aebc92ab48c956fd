/*
 * test-grant: broker/core/grant.c — the signer accepts only EC P-256
 * keys; a grant carries the claims of CONTRACT §3 from the intent's row
 * (approvers in approval order, amount only when there is one, args {}
 * when none); grant_verify accepts exactly our grants: ES256, our kid,
 * our signature, iss toolgate, the claims it needs, not expired; the
 * JWKS names the same kid.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>

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
	CHECK(g.kid != NULL && strlen(g.kid) == 43);
	CHECK(strstr(g.jwks, g.kid) != NULL);
	CHECK(strstr(g.jwks, "\"alg\":\"ES256\"") != NULL);
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
	hdr = json_pack("{ss ss ss}", "alg", "ES256", "kid", g.kid, "crit",
	    "exp");
	bad = jose_sign_compact(g.key, JOSE_ES256, hdr, "{}", 2);
	CHECK(grant_verify(&g, bad, NOW, &why) == NULL);
	free(bad);
	json_decref(hdr);
	/* Claims it must have: a signed {} is ours but useless. */
	bad = jose_sign_compact(g.key, JOSE_ES256, g.header, "{}", 2);
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

int
main(void)
{
	test_keys();
	test_claims();
	test_verify();
	printf("grant: %d passed, 0 failed\n", passed);
	return (0);
}
