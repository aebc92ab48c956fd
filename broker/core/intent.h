/*
 * intent: a compact JWS from a connection's peer → verified, validated
 * claims (CONTRACT §3).  The algorithm comes from the certificate's key,
 * never from the token header.  libjwt 1.10 lets the header pick (alg
 * "none", HS256 keyed with the public PEM — the classic forgery — would
 * verify), decodes base64 laxly (malleable signatures), allocas segments
 * and re-parses the PEM on every call; so libjwt is never asked to verify
 * an intent: the allow-list check and the EVP verification with the
 * connection's parsed key are done here and in jose.c.  No policy, no I/O,
 * no clock of its own.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "amount.h"
#include "jose.h"
#include "reason.h"

#define INTENT_MAX_BYTES	(64 * 1024)
#define INTENT_SKEW		30
#define INTENT_MAX_LIFETIME	300
#define INTENT_MAX_JTI		128
#define INTENT_MAX_TOOL		128
#define INTENT_MAX_REASON	1024
/* args are copied into audit records and grants, which add levels of
 * their own; jansson reads back at most 2048. */
#define INTENT_MAX_ARGS_DEPTH	32
#define INTENT_DEFAULT_AUDIENCE	"toolgate"

/* What the connection proved: its identity and its certificate's key. */
struct peer_key {
	EVP_PKEY	*pkey;		/* borrowed */
	enum jose_alg	 alg;		/* from jose_alg_for_key */
};

struct intent {
	char		*iss;
	char		*jti;
	char		*tool;
	json_t		*args;		/* object or NULL */
	/* The args claim exactly as signed: its JSON text inside the
	 * payload (NUL-terminated), or NULL.  Numbers in args keep their
	 * original digits here (jansson's args hold doubles): read them with
	 * jsontext_number_at(args_json, args_json_len, pointer, ...). */
	char		*args_json;
	size_t		 args_json_len;
	int		 has_amount;
	struct amount	 amount;
	char		 amount_text[AMOUNT_MAX_TEXT];	/* as signed */
	char		*reason;	/* or NULL */
	int64_t		 iat, exp;
	char		 payload_sha256[65];	/* of the decoded payload */
	/* The broker made jti itself (an MCP call): nothing to replay, so
	 * the replay guard is not asked (and keeps no row for it). */
	int		 fresh_jti;
};

/*
 * Verify tok (len bytes, the request body) against the peer key and check
 * every claim rule for identity at time now with the given audience.  On
 * success fills *out (release with intent_clear) and returns 0; otherwise
 * returns the E_* code to answer with and points *msg at a human message:
 * static text, or this thread's buffer, valid until the thread's next
 * intent_verify (a number in args the canonical form cannot keep is
 * named there by its JSON Pointer into args).
 */
enum reason intent_verify(const char *tok, size_t len,
	    const struct peer_key *peer, const char *identity,
	    const char *audience, int64_t now, struct intent *out,
	    const char **msg);

/*
 * The call part of intent claims — tool, args (with their exact text, the
 * numbers checked as intent_verify checks them) and amount — from a JSON
 * object that is not signed (policy explain, CONTRACT §8.4): the same
 * rules and messages as intent_verify's.  Other members are the caller's
 * to check.  0 with *out (iss, jti, times unset; intent_clear it), or the
 * E_* code with *msg as intent_verify.
 */
enum reason intent_call_parse(const char *text, size_t len,
	    struct intent *out, const char **msg);

/* Signature layer only (shape, header and alg rules, verification),
 * exposed for the interop test: 0 and a malloc'd payload, or the E_* code. */
enum reason intent_verify_signature(const char *tok, size_t len,
	    const struct peer_key *peer, unsigned char **payload,
	    size_t *payload_len, const char **msg);

void	intent_clear(struct intent *in);
