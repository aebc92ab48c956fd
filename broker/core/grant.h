/*
 * grant: the signed, short-lived permission a tool verifies (CONTRACT §3
 * Grants).  ES256 with the grant keys, header kid = RFC 7638 thumbprint.
 * Grants are not stored: each answer that carries one signs it afresh from
 * the intent's row, with the same jti (the intent id).
 *
 * Keys rotate without an outage (CONTRACT §12): a keyring holds every
 * --grant-key; the first signs, all are published in the JWKS and verify
 * at redemption.  A keyring never changes once built; a reload builds a
 * new one and swaps it into the signer, so a thread that holds the old
 * one (a reference) finishes with it.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rows.h"

#define GRANT_TTL	60
#define GRANT_ISSUER	"toolgate"
#define GRANT_KEYS_MAX	8

struct grant_key {
	EVP_PKEY	*key;
	char		*kid;
	json_t		*header;	/* {"alg","typ","kid"} */
};

/* Immutable once built; shared by reference (grant_keyring_unref). */
struct grant_keyring {
	int		 refs;		/* atomic */
	size_t		 n;
	struct grant_key keys[GRANT_KEYS_MAX];	/* keys[0] signs */
	char		*jwks;		/* GET /v1/jwks body: every key */
};

/*
 * A keyring of keys[0..n) (1..GRANT_KEYS_MAX, each EC P-256, no two the
 * same): owns them from now on, also on failure.  NULL with *why set.
 */
struct grant_keyring *grant_keyring_new(EVP_PKEY **keys, size_t n,
	    const char **why);
/*
 * The keyring of the private key files paths[0..n), the first signing:
 * each must be readable, accessible by its owner only (mode 0600 or
 * stricter: a key that leaked once is not a key), and an EC P-256 key;
 * no file twice, no key twice.  NULL with one line in err naming the
 * file ("PATH: private key is accessible by group or others...").
 */
struct grant_keyring *grant_keyring_load(const char *const *paths, size_t n,
	    char *err, size_t errlen);
void	grant_keyring_unref(struct grant_keyring *r);
/* The key of r whose kid is kid (borrowed), or NULL. */
EVP_PKEY *grant_keyring_find(const struct grant_keyring *r, const char *kid);

/* The broker's current keyring, swapped on reload; any thread. */
struct grant_signer {
	pthread_mutex_t		 lock;
	struct grant_keyring	*ring;
};

/* One key (EC P-256), owned from now on.  0, or -1 with *why set. */
int	grant_signer_init(struct grant_signer *g, EVP_PKEY *key,
	    const char **why);
/* A keyring (its reference is taken).  0, or -1. */
int	grant_signer_init_ring(struct grant_signer *g,
	    struct grant_keyring *ring);
/* Swap in ring (its reference is taken); the old one is released when
 * its last user is done. */
void	grant_signer_swap(struct grant_signer *g, struct grant_keyring *ring);
/* The current keyring: a reference, released with grant_keyring_unref. */
struct grant_keyring *grant_signer_keys(struct grant_signer *g);
void	grant_signer_deinit(struct grant_signer *g);

/*
 * A compact JWS (ES256, header {"alg","typ","kid"} of the signing key)
 * over payload, signed by the current signing key: for anything else
 * the broker signs with the grant key (audit checkpoints).  malloc'd, or
 * NULL.
 */
char	*grant_sign_payload(struct grant_signer *g, const char *payload,
	    size_t len);

/*
 * Sign a grant for an allowed intent at time now: claims from r (agent,
 * tool, id, amount, approvers in approval order, intent_sha256) and args
 * (the intent's args as JSON, borrowed; NULL means {}).  Returns the
 * compact JWS (malloc'd) and its exp in *exp, or NULL.  Whether the
 * intent may have a grant now is the lifecycle's question (lc_may_grant).
 */
char	*grant_sign(struct grant_signer *g, const struct intent_row *r,
	    json_t *args, int64_t now, int64_t *exp);

/*
 * A grant presented for redemption is ours: ES256 with one of our keys
 * (any of the keyring: one signed before a rotation still redeems), kid
 * naming it, iss "toolgate", jti, sub and tool strings, not yet expired
 * at now (no skew: we set exp).  Returns the claims (new reference) or
 * NULL with *why set to a static message.
 */
json_t	*grant_verify(struct grant_signer *g, const char *tok,
	    int64_t now, const char **why);
