/*
 * intent: compact JWS → verified claims.  Order matters and is the
 * contract's: the token's shape, then the header (alg must be exactly what
 * the certificate's key demands — never what the header asks for), then
 * the signature over the exact signing input with the connection's key,
 * and only then the claims: first read as text (jsontext), so that a
 * number in args whose value the canonical form would change is refused
 * by its pointer and args' exact text is kept, then parsed again by
 * jansson with duplicate keys refused.  Nothing here touches policy,
 * storage or the clock.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "intent.h"
#include "jsontext.h"
#include "policy.h"
#include "text.h"

#define FAIL(code, text) do { *msg = (text); return (code); } while (0)

#define INTENT_MAX_WHY		384	/* a message naming a pointer */
#define INTENT_MAX_WHERE	128	/* of which the pointer, at most */

/* Messages built for one refusal; each thread answers its own. */
static _Thread_local char intent_why[INTENT_MAX_WHY];

static json_t *
intent_json_segment(const char *seg, size_t len)
{
	unsigned char	*bytes;
	size_t		 n;
	json_t		*v;

	if ((bytes = jose_b64url_decode(seg, len, &n)) == NULL)
		return (NULL);
	v = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	free(bytes);
	return (v);
}

static enum reason
intent_check_header(const char *tok, size_t hlen, enum jose_alg want,
    const char **msg)
{
	json_t		*hdr;
	const char	*alg, *typ;
	enum reason	 r = REASON_OK;

	if ((hdr = intent_json_segment(tok, hlen)) == NULL)
		FAIL(E_INVALID_JWS, "the JWS header is not a JSON object");
	alg = json_string_value(json_object_get(hdr, "alg"));
	typ = json_string_value(json_object_get(hdr, "typ"));
	if (alg == NULL) {
		*msg = "the JWS header has no alg";
		r = E_INVALID_JWS;
	} else if (want == JOSE_ALG_NONE_OK) {
		*msg = "the client certificate's key is not EC P-256 or "
		    "RSA >= 2048";
		r = E_BAD_SIGNATURE;
	} else if (strcmp(alg, jose_alg_name(want)) != 0) {
		/* Exact, case-sensitive: none, HS*, "es256", RS256 on an EC
		 * key... all end here, before any verifier sees the token. */
		*msg = want == JOSE_ES256 ? "alg must be ES256 for this "
		    "certificate's EC P-256 key" : "alg must be RS256 for "
		    "this certificate's RSA key";
		r = E_BAD_SIGNATURE;
	} else if (json_object_get(hdr, "typ") != NULL &&
	    (typ == NULL || strcmp(typ, "JWT") != 0)) {
		*msg = "typ, when present, must be \"JWT\"";
		r = E_INVALID_JWS;
	} else if (json_object_get(hdr, "crit") != NULL) {
		*msg = "no crit header parameter is understood";
		r = E_INVALID_JWS;
	}
	json_decref(hdr);
	return (r);
}

enum reason
intent_verify_signature(const char *tok, size_t len,
    const struct peer_key *peer, unsigned char **payload, size_t *payload_len,
    const char **msg)
{
	size_t		 d1, d2;
	enum reason	 r;

	*payload = NULL;
	if (len > INTENT_MAX_BYTES)
		FAIL(E_PAYLOAD_TOO_LARGE, "the intent is larger than 64 KiB");
	if (jose_split(tok, len, &d1, &d2) == -1)
		FAIL(E_INVALID_JWS, "the body is not a compact JWS "
		    "(three base64url segments, no padding)");
	if ((r = intent_check_header(tok, d1, peer->alg, msg)) != REASON_OK)
		return (r);
	if (jose_verify(peer->pkey, peer->alg, tok, len) == -1)
		FAIL(E_BAD_SIGNATURE, "the signature does not verify with "
		    "the client certificate's key");
	*payload = jose_b64url_decode(tok + d1 + 1, d2 - d1 - 1, payload_len);
	if (*payload == NULL)
		FAIL(E_INVALID_JWS, "the JWS payload is not base64url");
	return (REASON_OK);
}

static int
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return (0);
	return (1);
}

static enum reason
intent_claim_times(json_t *c, int64_t now, struct intent *out,
    const char **msg)
{
	json_t	*iat = json_object_get(c, "iat"), *exp = json_object_get(c, "exp");

	if (!json_is_integer(iat) || !json_is_integer(exp))
		FAIL(E_BAD_REQUEST, "iat and exp are required integers");
	out->iat = json_integer_value(iat);
	out->exp = json_integer_value(exp);
	/* Unsigned difference: exact once exp > iat, where exp - iat as
	 * int64 overflows (iat INT64_MIN, exp INT64_MAX passed as -1). */
	if (out->exp <= out->iat ||
	    (uint64_t)out->exp - (uint64_t)out->iat > INTENT_MAX_LIFETIME)
		FAIL(E_BAD_REQUEST, "exp must be after iat and at most 300 s "
		    "later");
	if (out->exp < now - INTENT_SKEW)
		FAIL(E_EXPIRED, "the intent has expired (exp is past)");
	if (out->iat > now + INTENT_SKEW)
		FAIL(E_EXPIRED, "iat is in the future: check the agent's "
		    "clock");
	return (REASON_OK);
}

static int
intent_audience_ok(json_t *aud, const char *audience)
{
	size_t	 i;
	json_t	*v;

	if (json_is_string(aud))
		return (strcmp(json_string_value(aud), audience) == 0);
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return (0);
	json_array_foreach(aud, i, v)
		if (!json_is_string(v))
			return (0);
	json_array_foreach(aud, i, v)
		if (strcmp(json_string_value(v), audience) == 0)
			return (1);
	return (0);
}

static enum reason
intent_claim_amount(json_t *c, struct intent *out, const char **msg)
{
	json_t		*a = json_object_get(c, "amount");
	const char	*value, *cur;

	if (a == NULL)
		return (REASON_OK);
	value = json_string_value(json_object_get(a, "value"));
	cur = json_string_value(json_object_get(a, "currency"));
	if (!json_is_object(a) || json_object_size(a) != 2 || value == NULL ||
	    cur == NULL)
		FAIL(E_INVALID_AMOUNT, "amount must be {\"value\": \"decimal "
		    "string\", \"currency\": \"ABC\"} and nothing else");
	if (amount_parse_value(value, json_string_length(
	    json_object_get(a, "value")), &out->amount) == -1)
		FAIL(E_INVALID_AMOUNT, "amount value must be a decimal string "
		    "like \"12500.00\": no sign, exponent, or more than 6 "
		    "decimals or 15 integer digits");
	if (!amount_currency_valid(cur))
		FAIL(E_INVALID_AMOUNT, "amount currency must be three capital "
		    "letters (ISO 4217)");
	memcpy(out->amount.currency, cur, 4);
	memcpy(out->amount_text, value, strlen(value) + 1);
	out->has_amount = 1;
	return (REASON_OK);
}

/* The call itself: tool and args. */
static enum reason
intent_claim_call(json_t *c, struct intent *out, const char **msg)
{
	const char	*tool = json_string_value(json_object_get(c, "tool"));
	json_t		*args = json_object_get(c, "args");

	if (tool == NULL || !policy_tool_name_valid(tool))
		FAIL(E_BAD_REQUEST, "tool is required: lowercase dotted name "
		    "like payments.transfer, at most 128 characters");
	if (args != NULL && !json_is_object(args))
		FAIL(E_BAD_REQUEST, "args, when present, must be a JSON object");
	if (args != NULL && canon_depth(args, INTENT_MAX_ARGS_DEPTH + 1) >
	    INTENT_MAX_ARGS_DEPTH)
		FAIL(E_BAD_REQUEST, "args may nest at most 32 levels deep");
	if ((out->tool = strdup(tool)) == NULL)
		FAIL(E_INTERNAL, "out of memory");
	if (args != NULL)
		out->args = json_incref(args);
	return (REASON_OK);
}

static enum reason
intent_claim_strings(json_t *c, struct intent *out, const char **msg)
{
	const char	*jti = json_string_value(json_object_get(c, "jti"));
	json_t		*reason = json_object_get(c, "reason");
	enum reason	 r;

	if (jti == NULL || jti[0] == '\0' || strlen(jti) > INTENT_MAX_JTI ||
	    !printable(jti))
		FAIL(E_BAD_REQUEST, "jti is required: 1 to 128 printable "
		    "characters");
	if ((r = intent_claim_call(c, out, msg)) != REASON_OK)
		return (r);
	/* Code points, and never blank: the rules of every reason (text.h). */
	if (reason != NULL && (!json_is_string(reason) ||
	    text_check(json_string_value(reason), INTENT_MAX_REASON,
	    TEXT_NOT_BLANK) != NULL))
		FAIL(E_BAD_REQUEST, "reason, when present, must be a string of "
		    "1 to 1024 characters, not blank");
	out->jti = strdup(jti);
	out->reason = reason ? strdup(json_string_value(reason)) : NULL;
	if (out->jti == NULL || (reason != NULL && out->reason == NULL))
		FAIL(E_INTERNAL, "out of memory");
	return (REASON_OK);
}

static enum reason
intent_claims(json_t *c, const char *identity, const char *audience,
    int64_t now, struct intent *out, const char **msg)
{
	const char	*iss = json_string_value(json_object_get(c, "iss"));
	enum reason	 r;

	if (iss == NULL)
		FAIL(E_BAD_REQUEST, "iss is required (a string)");
	if (strcmp(iss, identity) != 0)
		FAIL(E_IDENTITY_MISMATCH, "iss must equal the identity of the "
		    "client certificate");
	if ((out->iss = strdup(iss)) == NULL)
		FAIL(E_INTERNAL, "out of memory");
	if (!intent_audience_ok(json_object_get(c, "aud"), audience))
		FAIL(E_BAD_REQUEST, "aud must name this broker");
	if ((r = intent_claim_times(c, now, out, msg)) != REASON_OK ||
	    (r = intent_claim_strings(c, out, msg)) != REASON_OK)
		return (r);
	return (intent_claim_amount(c, out, msg));
}

/* A pointer fit for a message: controls shown as '?', a cut one marked. */
static void
intent_where_clean(char *where, size_t size)
{
	size_t	 n = strlen(where);
	char	*p;

	for (p = where; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (n == size - 1)
		memcpy(where + size - 4, "...", 3);
}

/*
 * The args as text, before jansson turns their numbers into doubles:
 * every number must keep its value in the RFC 8785 form args are stored,
 * audited and granted in (CONTRACT §10), else 400 naming it; and the
 * exact text is kept for reading amounts from it.
 */
static enum reason
intent_args_text(const unsigned char *payload, size_t plen,
    struct intent *out, const char **msg)
{
	struct jsontext_value	 v;
	enum canon_number	 bad;
	char			 where[INTENT_MAX_WHERE];

	switch (canon_numbers_check((const char *)payload, plen, "/args", &bad,
	    where, sizeof(where))) {
	case -1:
		FAIL(E_BAD_REQUEST, "the claims must be one JSON object "
		    "without duplicate keys");
	case 1:
		if (where[0] == '\0')
			FAIL(E_BAD_REQUEST, "args, when present, must be a JSON "
			    "object");
		intent_where_clean(where, sizeof(where));
		snprintf(intent_why, sizeof(intent_why), "the number at %s in "
		    "args %s", where, canon_number_problem(bad));
		FAIL(E_BAD_REQUEST, intent_why);
	default:
		break;
	}
	if (jsontext_find((const char *)payload, plen, "/args", 5, &v) !=
	    JSONTEXT_OK)
		return (REASON_OK);	/* none; or two, which jansson refuses */
	if ((out->args_json = malloc(v.len + 1)) == NULL)
		FAIL(E_INTERNAL, "out of memory");
	memcpy(out->args_json, v.text, v.len);
	out->args_json[v.len] = '\0';
	out->args_json_len = v.len;
	return (REASON_OK);
}

enum reason
intent_verify(const char *tok, size_t len, const struct peer_key *peer,
    const char *identity, const char *audience, int64_t now,
    struct intent *out, const char **msg)
{
	unsigned char	*payload;
	size_t		 plen;
	json_t		*claims;
	enum reason	 r;

	memset(out, 0, sizeof(*out));
	r = intent_verify_signature(tok, len, peer, &payload, &plen, msg);
	if (r != REASON_OK)
		return (r);
	canon_sha256_hex(payload, plen, out->payload_sha256);
	if ((r = intent_args_text(payload, plen, out, msg)) != REASON_OK) {
		free(payload);
		intent_clear(out);
		return (r);
	}
	claims = json_loadb((const char *)payload, plen,
	    JSON_REJECT_DUPLICATES, NULL);
	free(payload);
	/* Duplicate keys refused: "last one wins" would let a signer hide
	 * a claim from one reader and show it to another. */
	if (claims == NULL || !json_is_object(claims)) {
		json_decref(claims);
		intent_clear(out);
		FAIL(E_BAD_REQUEST, "the claims must be one JSON object "
		    "without duplicate keys");
	}
	r = intent_claims(claims, identity, audience, now, out, msg);
	json_decref(claims);
	if (r != REASON_OK)
		intent_clear(out);
	return (r);
}

enum reason
intent_call_parse(const char *text, size_t len, struct intent *out,
    const char **msg)
{
	json_t		*doc;
	enum reason	 r;

	memset(out, 0, sizeof(*out));
	if ((r = intent_args_text((const unsigned char *)text, len, out,
	    msg)) != REASON_OK) {
		intent_clear(out);
		return (r);
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL || !json_is_object(doc)) {
		*msg = "the body must be one JSON object without duplicate "
		    "keys";
		r = E_BAD_REQUEST;
	} else if ((r = intent_claim_call(doc, out, msg)) == REASON_OK)
		r = intent_claim_amount(doc, out, msg);
	json_decref(doc);
	if (r != REASON_OK)
		intent_clear(out);
	return (r);
}

void
intent_clear(struct intent *in)
{
	free(in->iss);
	free(in->jti);
	free(in->tool);
	free(in->reason);
	free(in->args_json);
	json_decref(in->args);
	memset(in, 0, sizeof(*in));
}
