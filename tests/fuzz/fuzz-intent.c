/*
 * fuzz-intent: everything between TLS and policy — compact JWS shape,
 * header and alg rules, signature, claims JSON, claim rules and amounts —
 * through intent_verify() for identity "agent-a", audience "toolgate" at a
 * fixed time, with an EC P-256 and an RSA-2048 peer key made once at start.
 *
 * The first byte picks a mode (the rest is the input proper):
 *   0, 1  the bytes are the token, verified with the EC / RSA key: random
 *         bytes cannot carry a valid signature, so success is a forgery;
 *   2, 3  the bytes are the claims: the harness signs them (ES256 with
 *         header {"alg":"ES256"}, RS256 with {"alg":"RS256","typ":"JWT"}),
 *         so the fuzzer reaches claim parsing and every claim rule;
 *   4     "HEADER\nCLAIMS": both signed as given with the EC key, to
 *         explore the header rules (alg, typ, crit) on signed tokens;
 *   5     the claims signed by the EC key but verified as the RSA peer:
 *         must fail whatever the claims say.
 * Invariants (abort when broken): a failure leaves *out empty and has a
 * code with a 4xx/5xx status and a message; a success satisfies every
 * claim rule of CONTRACT §3 as re-checked here, and its args have an RFC
 * 8785 form (what is stored and granted) that reads back as the same
 * value and the same bytes, with args_json (the args as signed) reading
 * as that value too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "canon.h"
#include "fuzz.h"
#include "intent.h"
#include "jose.h"
#include "log.h"
#include "policy.h"
#include "reason.h"

#define FUZZ_INTENT_MAX		(INTENT_MAX_BYTES + 1)
#define FUZZ_NOW		1795736680
#define FUZZ_IDENTITY		"agent-a"
#define FUZZ_AUDIENCE		"toolgate"

static struct peer_key	 ec_peer, rsa_peer;

/* Sign header and payload bytes as given; the compact token (malloc'd). */
static char *
sign_token(EVP_PKEY *pkey, enum jose_alg alg, const char *hdr, size_t hlen,
    const char *payload, size_t plen)
{
	char	*h = NULL, *p = NULL, *input = NULL, *sig = NULL, *tok = NULL;
	size_t	 hl, pl, sl;

	if ((h = jose_b64url_encode((const unsigned char *)hdr, hlen)) ==
	    NULL || (p = jose_b64url_encode((const unsigned char *)payload,
	    plen)) == NULL)
		goto done;
	hl = strlen(h);
	pl = strlen(p);
	if ((input = malloc(hl + 1 + pl + 1)) == NULL)
		goto done;
	memcpy(input, h, hl);
	input[hl] = '.';
	memcpy(input + hl + 1, p, pl + 1);
	if ((sig = jose_sign(pkey, alg, input, hl + 1 + pl)) == NULL)
		goto done;
	sl = strlen(sig);
	if ((tok = malloc(hl + 1 + pl + 1 + sl + 1)) == NULL)
		goto done;
	memcpy(tok, input, hl + 1 + pl);
	tok[hl + 1 + pl] = '.';
	memcpy(tok + hl + 1 + pl + 1, sig, sl + 1);
 done:
	free(h);
	free(p);
	free(input);
	free(sig);
	return (tok);
}

static int
is_empty(const struct intent *in)
{
	return (in->iss == NULL && in->jti == NULL && in->tool == NULL &&
	    in->args == NULL && in->args_json == NULL && in->reason == NULL &&
	    !in->has_amount);
}

/* What the broker stores, audits and grants is canon_dump(args): it must
 * exist, read back as the same value, and write back as the same bytes;
 * args_json, the signed text, is the same value. */
static void
check_args(const struct intent *in)
{
	json_t	*back, *signed_args;
	char	*canon, *again;

	if (in->args == NULL) {
		FUZZ_ASSERT(in->args_json == NULL);
		return;
	}
	FUZZ_ASSERT(in->args_json != NULL &&
	    strlen(in->args_json) == in->args_json_len);
	FUZZ_ASSERT((canon = canon_dump(in->args)) != NULL);
	FUZZ_ASSERT((back = json_loads(canon, JSON_REJECT_DUPLICATES,
	    NULL)) != NULL);
	FUZZ_ASSERT(fuzz_json_same(back, in->args));
	FUZZ_ASSERT((again = canon_dump(back)) != NULL);
	FUZZ_ASSERT(strcmp(canon, again) == 0);
	signed_args = json_loadb(in->args_json, in->args_json_len,
	    JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(signed_args != NULL && fuzz_json_same(signed_args, in->args));
	json_decref(signed_args);
	json_decref(back);
	free(again);
	free(canon);
}

static void
check_ok(const struct intent *in, const char *payload, size_t plen)
{
	struct amount	 again;
	char		 sha[65];
	size_t		 n;

	FUZZ_ASSERT(in->iss != NULL && strcmp(in->iss, FUZZ_IDENTITY) == 0);
	FUZZ_ASSERT(in->jti != NULL && (n = strlen(in->jti)) >= 1 &&
	    n <= INTENT_MAX_JTI);
	FUZZ_ASSERT(in->tool != NULL && policy_tool_name_valid(in->tool));
	FUZZ_ASSERT(in->args == NULL || json_is_object(in->args));
	FUZZ_ASSERT(in->exp > in->iat);
	/* exp > iat: the unsigned difference is exact, never overflows. */
	FUZZ_ASSERT((uint64_t)in->exp - (uint64_t)in->iat <=
	    INTENT_MAX_LIFETIME);
	FUZZ_ASSERT(in->exp >= FUZZ_NOW - INTENT_SKEW);
	FUZZ_ASSERT(in->iat <= FUZZ_NOW + INTENT_SKEW);
	if (in->has_amount) {
		FUZZ_ASSERT(amount_currency_valid(in->amount.currency));
		memset(&again, 0, sizeof(again));
		FUZZ_ASSERT(amount_parse_value(in->amount_text,
		    strlen(in->amount_text), &again) == 0);
		FUZZ_ASSERT(amount_cmp(&again, &in->amount) == 0);
	}
	check_args(in);
	FUZZ_ASSERT(strlen(in->payload_sha256) == 64);
	if (payload != NULL) {
		canon_sha256_hex(payload, plen, sha);
		FUZZ_ASSERT(strcmp(sha, in->payload_sha256) == 0);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(LOG_LVL_ERROR, "fuzz-intent");
	ec_peer.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa_peer.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (ec_peer.pkey == NULL || rsa_peer.pkey == NULL)
		fuzz_fail(__FILE__, __LINE__, "cannot make the peer keys");
	ec_peer.alg = jose_alg_for_key(ec_peer.pkey);
	rsa_peer.alg = jose_alg_for_key(rsa_peer.pkey);
	FUZZ_ASSERT(ec_peer.alg == JOSE_ES256 && rsa_peer.alg == JOSE_RS256);
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char es_hdr[] = "{\"alg\":\"ES256\"}";
	static const char rs_hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	const struct peer_key	*peer = &ec_peer;
	struct intent		 in;
	const char		*rest, *msg = NULL, *payload = NULL, *nl;
	char			*tok = NULL;
	size_t			 len, plen = 0;
	enum reason		 r;
	int			 mode, must_fail = 0;

	if (size < 1 || size > FUZZ_INTENT_MAX)
		return (0);
	mode = data[0] % 6;
	rest = (const char *)data + 1;
	len = size - 1;
	switch (mode) {
	case 0:
	case 1:
		peer = mode == 0 ? &ec_peer : &rsa_peer;
		must_fail = 1;
		break;
	case 2:
	case 5:
		payload = rest;
		plen = len;
		tok = sign_token(ec_peer.pkey, JOSE_ES256, es_hdr,
		    sizeof(es_hdr) - 1, payload, plen);
		if (mode == 5) {
			peer = &rsa_peer;
			must_fail = 1;
		}
		break;
	case 3:
		payload = rest;
		plen = len;
		peer = &rsa_peer;
		tok = sign_token(rsa_peer.pkey, JOSE_RS256, rs_hdr,
		    sizeof(rs_hdr) - 1, payload, plen);
		break;
	case 4:
		if ((nl = memchr(rest, '\n', len)) == NULL)
			return (0);
		payload = nl + 1;
		plen = len - (size_t)(payload - rest);
		tok = sign_token(ec_peer.pkey, JOSE_ES256, rest,
		    (size_t)(nl - rest), payload, plen);
		break;
	}
	if (mode >= 2) {
		FUZZ_ASSERT(tok != NULL);
		rest = tok;
		len = strlen(tok);
	}

	r = intent_verify(rest, len, peer, FUZZ_IDENTITY, FUZZ_AUDIENCE,
	    FUZZ_NOW, &in, &msg);
	if (r == REASON_OK) {
		FUZZ_ASSERT(!must_fail);
		check_ok(&in, payload, plen);
		intent_clear(&in);
		FUZZ_ASSERT(is_empty(&in));
	} else {
		FUZZ_ASSERT(is_empty(&in));
		FUZZ_ASSERT(msg != NULL && reason_code(r) != NULL);
		FUZZ_ASSERT(reason_status(r) >= 400 && reason_status(r) < 600);
	}
	free(tok);
	return (0);
}
