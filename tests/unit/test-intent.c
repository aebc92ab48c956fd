/*
 * test-intent: the intent verifier (broker/core/intent.c) and grants
 * (broker/core/grant.c) against real keys.  The RFC 7515 A.3 token, produced
 * by an independent implementation, must verify; the libjwt 1.10 traps
 * (header-chosen alg, HS256 keyed with the public PEM) must be refused, and
 * the test first shows libjwt itself would accept that forgery; every claim
 * rule gives its error code; our grants verify with libjwt.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "grant.h"
#include "intent.h"
#include "rfc7515.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)
#define NOW	1795736400

static char *
b64(const char *s)
{
	return (jose_b64url_encode((const unsigned char *)s, strlen(s)));
}

/* header and payload are JSON texts; signs with key under alg. */
static char *
make_token(EVP_PKEY *key, enum jose_alg alg, const char *header,
    const char *payload)
{
	char	*h = b64(header), *p = b64(payload), *input, *sig, *tok;

	assert(asprintf(&input, "%s.%s", h, p) > 0);
	sig = jose_sign(key, alg, input, strlen(input));
	assert(sig != NULL);
	assert(asprintf(&tok, "%s.%s", input, sig) > 0);
	free(h);
	free(p);
	free(input);
	free(sig);
	return (tok);
}

static EVP_PKEY *
new_ec_key(void)
{
	EVP_PKEY	*k = EVP_EC_gen("P-256");

	assert(k != NULL);
	return (k);
}

static void
test_rfc7515_a3(void)
{
	EVP_PKEY	*pub = ec_key_from_jwk(A3_X, A3_Y, NULL);
	struct peer_key	 peer = { pub, JOSE_ES256 };
	unsigned char	*payload;
	size_t		 len;
	const char	*msg = NULL;

	CHECK(pub != NULL);
	CHECK(intent_verify_signature(A3_JWS, strlen(A3_JWS), &peer, &payload,
	    &len, &msg) == REASON_OK);
	CHECK(len == 70 && memcmp(payload, "{\"iss\":\"joe\",\r\n \"exp\"", 20)
	    == 0);
	free(payload);
	/* Not RS256 material: the same token on an "RSA" peer is refused. */
	peer.alg = JOSE_RS256;
	CHECK(intent_verify_signature(A3_JWS, strlen(A3_JWS), &peer, &payload,
	    &len, &msg) == E_BAD_SIGNATURE);
	EVP_PKEY_free(pub);
}

static char *
hs256_with_public_pem(EVP_PKEY *key, const char *payload)
{
	size_t		 pemlen;
	char		*pem = jose_public_pem(key, &pemlen);
	char		*h = b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	char		*p = b64(payload), *input, *sig, *tok;
	unsigned char	 mac[32];
	unsigned int	 maclen = sizeof(mac);

	assert(asprintf(&input, "%s.%s", h, p) > 0);
	HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)input,
	    strlen(input), mac, &maclen);
	sig = jose_b64url_encode(mac, maclen);
	assert(asprintf(&tok, "%s.%s", input, sig) > 0);
	free(pem);
	free(h);
	free(p);
	free(input);
	free(sig);
	return (tok);
}

static void
test_alg_confusion(void)
{
	EVP_PKEY	*key = new_ec_key();
	struct peer_key	 peer = { key, JOSE_ES256 };
	const char	*claims = "{\"iss\":\"agent-a\",\"aud\":\"toolgate\","
	    "\"jti\":\"j1\",\"iat\":1795736400,\"exp\":1795736460,"
	    "\"tool\":\"crm.lookup\"}";
	char		*tok = hs256_with_public_pem(key, claims), *pem;
	const char	*msg = NULL;
	struct intent	 in;
	jwt_t		*jwt = NULL;
	size_t		 pemlen;

	/* The trap is real: libjwt 1.10 accepts the forgery... */
	pem = jose_public_pem(key, &pemlen);
	CHECK(jwt_decode(&jwt, tok, (unsigned char *)pem, (int)pemlen) == 0);
	CHECK(jwt_get_alg(jwt) == JWT_ALG_HS256);
	jwt_free(jwt);
	free(pem);
	/* ...and our verifier refuses it. */
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == E_BAD_SIGNATURE);
	free(tok);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"none\"}", claims);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == E_BAD_SIGNATURE);
	free(tok);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"es256\"}", claims);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == E_BAD_SIGNATURE);
	free(tok);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"RS256\"}", claims);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == E_BAD_SIGNATURE);
	free(tok);
	/* alg none with an empty signature is not even a compact JWS. */
	CHECK(intent_verify("eyJhbGciOiJub25lIn0.e30.", 24, &peer, "agent-a",
	    "toolgate", NOW, &in, &msg) == E_INVALID_JWS);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}", claims);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == REASON_OK);
	CHECK(strcmp(in.tool, "crm.lookup") == 0 && !in.has_amount);
	intent_clear(&in);
	free(tok);
	EVP_PKEY_free(key);
}

static const struct claim_case {
	const char	*claims;	/* %s: nothing; iat/exp are literal */
	enum reason	 want;
} claim_cases[] = {
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", REASON_OK },
	{ "{\"iss\":\"agent-a\",\"aud\":[\"x\",\"toolgate\"],\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", REASON_OK },
	{ "{\"iss\":\"agent-b\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_IDENTITY_MISMATCH },
	{ "{\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"other\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":[1],\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	/* exp 31 s in the past: beyond the 30 s skew. */
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736300,\"exp\":1795736369,\"tool\":\"a.b\"}", E_EXPIRED },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736300,\"exp\":1795736370,\"tool\":\"a.b\"}", REASON_OK },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736431,\"exp\":1795736460,\"tool\":\"a.b\"}", E_EXPIRED },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736701,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736700,\"tool\":\"a.b\"}", REASON_OK },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":\"1795736400\",\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400.0,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"A.b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a..b\"}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"args\":[1]}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"reason\":7}", E_BAD_REQUEST },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":\"12.50\",\"currency\":\"USD\"}}", REASON_OK },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":12.5,\"currency\":\"USD\"}}", E_INVALID_AMOUNT },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":\"-1\",\"currency\":\"USD\"}}", E_INVALID_AMOUNT },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":\"1e3\",\"currency\":\"USD\"}}", E_INVALID_AMOUNT },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":\"1\",\"currency\":\"usd\"}}", E_INVALID_AMOUNT },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":{\"value\":\"1\",\"currency\":\"USD\",\"x\":1}}", E_INVALID_AMOUNT },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"amount\":\"12.50\"}", E_INVALID_AMOUNT },
	/* exp - iat must not overflow into a short lifetime. */
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":-9223372036854775808,\"exp\":9223372036854775807,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	/* args nest at most 32 levels (audit records and grants add more). */
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"args\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", REASON_OK },
	{ "{\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\",\"args\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", E_BAD_REQUEST },
	/* Duplicate keys: "last one wins" is refused, not resolved. */
	{ "{\"iss\":\"agent-a\",\"iss\":\"agent-a\",\"aud\":\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":\"a.b\"}", E_BAD_REQUEST },
	{ "[\"iss\"]", E_BAD_REQUEST },
};

static void
test_claims(void)
{
	EVP_PKEY	*key = new_ec_key();
	struct peer_key	 peer = { key, JOSE_ES256 };
	struct intent	 in;
	const char	*msg;
	enum reason	 got;
	size_t		 i;
	char		*tok, big[1100], *payload;

	for (i = 0; i < sizeof(claim_cases) / sizeof(claim_cases[0]); i++) {
		tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}",
		    claim_cases[i].claims);
		msg = NULL;
		got = intent_verify(tok, strlen(tok), &peer, "agent-a",
		    "toolgate", NOW, &in, &msg);
		if (got != claim_cases[i].want)
			fprintf(stderr, "case %zu: got %s (%s)\n", i,
			    reason_code(got), msg ? msg : "");
		CHECK(got == claim_cases[i].want);
		CHECK(got == REASON_OK || msg != NULL);
		intent_clear(&in);
		free(tok);
	}
	/* reason: 1024 characters pass, 1025 do not. */
	memset(big, 'r', sizeof(big));
	big[1024] = '\0';
	assert(asprintf(&payload, "{\"iss\":\"agent-a\",\"aud\":\"toolgate\","
	    "\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":"
	    "\"a.b\",\"reason\":\"%s\"}", big) > 0);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}", payload);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == REASON_OK);
	intent_clear(&in);
	free(tok);
	free(payload);
	big[1024] = 'r';
	big[1025] = '\0';
	assert(asprintf(&payload, "{\"iss\":\"agent-a\",\"aud\":\"toolgate\","
	    "\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":"
	    "\"a.b\",\"reason\":\"%s\"}", big) > 0);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}", payload);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == E_BAD_REQUEST);
	free(tok);
	free(payload);
	EVP_PKEY_free(key);
}

/* args as text: numbers the canonical form would change are refused by
 * their pointer into args; args_json is args exactly as signed. */
static void
test_args_numbers(void)
{
	static const struct {
		const char	*args;
		enum reason	 want;
		const char	*names;		/* in the message */
	} t[] = {
		{ "{\"a\":0.1,\"b\":1e3,\"c\":-0,\"d\":1e21}", REASON_OK, NULL },
		{ "{\"x\":{\"y\":[1,12345678901234567.89]}}", E_BAD_REQUEST,
		    "at /x/y/1 in args has more than 17 significant digits" },
		{ "{\"tiny\":1e-400}", E_BAD_REQUEST, "at /tiny in args is too "
		    "small" },
		{ "{\"n\":9007199254740993}", E_BAD_REQUEST, "at /n in args is "
		    "an integer above 2^53" },
		{ "{\"big\":1e400}", E_BAD_REQUEST, "at /big in args is beyond" },
		{ "{\"a/b\":{\"~\":0.10000000000000001}}", E_BAD_REQUEST,
		    "at /a~1b/~0 in args is not kept exactly" },
		{ "{\"k\\nl\":1e400}", E_BAD_REQUEST, "at /k?l in args" },
		{ "1e400", E_BAD_REQUEST, "must be a JSON object" },
	};
	EVP_PKEY	*key = new_ec_key();
	struct peer_key	 peer = { key, JOSE_ES256 };
	struct intent	 in;
	const char	*msg;
	char		*tok, *payload;
	enum reason	 got;
	size_t		 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert(asprintf(&payload, "{\"iss\":\"agent-a\",\"aud\":"
		    "\"toolgate\",\"jti\":\"j\",\"iat\":1795736400,\"exp\":"
		    "1795736460,\"tool\":\"a.b\",\"args\": %s ,\"n\":1e999}",
		    t[i].args) > 0);
		tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}",
		    payload);
		msg = NULL;
		got = intent_verify(tok, strlen(tok), &peer, "agent-a",
		    "toolgate", NOW, &in, &msg);
		/* 1e999 outside args: jansson refuses the whole payload. */
		if (t[i].want == REASON_OK)
			CHECK(got == E_BAD_REQUEST && strstr(msg, "one JSON "
			    "object") != NULL);
		else {
			if (got != t[i].want || strstr(msg, t[i].names) == NULL)
				fprintf(stderr, "%s: %s\n", t[i].args, msg);
			CHECK(got == t[i].want && strstr(msg, t[i].names));
		}
		free(tok);
		free(payload);
	}
	/* Kept numbers: args_json holds them as written. */
	assert(asprintf(&payload, "{\"iss\":\"agent-a\",\"aud\":\"toolgate\","
	    "\"jti\":\"j\",\"iat\":1795736400,\"exp\":1795736460,\"tool\":"
	    "\"a.b\",\"args\": {\"amount\": 12345678901234.56, \"e\": 1e3} }")
	    > 0);
	tok = make_token(key, JOSE_ES256, "{\"alg\":\"ES256\"}", payload);
	CHECK(intent_verify(tok, strlen(tok), &peer, "agent-a", "toolgate",
	    NOW, &in, &msg) == REASON_OK);
	CHECK(in.args_json != NULL && strcmp(in.args_json, "{\"amount\": "
	    "12345678901234.56, \"e\": 1e3}") == 0);
	CHECK(in.args_json_len == strlen(in.args_json));
	CHECK(json_real_value(json_object_get(in.args, "e")) == 1000.0);
	intent_clear(&in);
	CHECK(in.args_json == NULL);
	free(tok);
	free(payload);
	EVP_PKEY_free(key);
}

static void
test_grant_verifies_with_libjwt(void)
{
	struct grant_signer	 g;
	EVP_PKEY		*key = new_ec_key();
	const char		*why = NULL;
	struct intent_row	 r;
	json_t			*args;
	char			*tok, *pem;
	size_t			 pemlen;
	int64_t			 exp;
	jwt_t			*jwt = NULL;

	pem = jose_public_pem(key, &pemlen);
	CHECK(grant_signer_init(&g, key, &why) == 0);
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "in_0123456789abcdef0123456789abcdef");
	r.agent = strdup("agent-a");
	r.tool = strdup("payments.transfer");
	r.amount_value = strdup("5000.00");
	r.amount_currency = strdup("USD");
	snprintf(r.intent_sha256, sizeof(r.intent_sha256), "ab");
	CHECK(intent_row_add_approval(&r, "alice", NOW, NULL) == 0);
	CHECK(intent_row_add_approval(&r, "bob", NOW, "ok") == 0);
	args = json_pack("{si}", "n", 1);
	tok = grant_sign(&g, &r, args, NOW, &exp);
	CHECK(tok != NULL && exp == NOW + 60);
	/* An independent verifier agrees. */
	CHECK(jwt_decode(&jwt, tok, (unsigned char *)pem, (int)pemlen) == 0);
	CHECK(jwt_get_alg(jwt) == JWT_ALG_ES256);
	CHECK(strcmp(jwt_get_header(jwt, "kid"), g.ring->keys[0].kid) == 0);
	CHECK(strcmp(jwt_get_grant(jwt, "sub"), "agent-a") == 0);
	CHECK(strcmp(jwt_get_grant(jwt, "aud"), "payments.transfer") == 0);
	CHECK(jwt_get_grant_int(jwt, "exp") == NOW + 60);
	CHECK(strstr(tok, ".") != NULL);
	jwt_free(jwt);
	free(tok);
	/* The JWKS carries the same kid. */
	CHECK(strstr(g.ring->jwks, g.ring->keys[0].kid) != NULL);
	json_decref(args);
	intent_row_clear(&r);
	free(pem);
	grant_signer_deinit(&g);
}

int
main(void)
{
	test_rfc7515_a3();
	test_alg_confusion();
	test_claims();
	test_args_numbers();
	test_grant_verifies_with_libjwt();
	printf("intent: %d passed, 0 failed\n", passed);
	return (0);
}
