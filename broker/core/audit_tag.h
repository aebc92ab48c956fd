/*
 * audit_tag: the broker's own authentication of audit records (CONTRACT
 * §10, proto/audit.md "Tags").  The hash chain has no key: whoever can
 * write the database can recompute it.  So the records the broker relies
 * on also carry a tag, HMAC-SHA256 under a key kept outside the database
 * (--audit-key FILE), over the record's previous hash and its canonical
 * bytes without the tag.  Because the tag covers prev_hash, a tagged
 * record also vouches for every record before it.
 *
 * The key file holds one key per line, 64 hex digits (32 random bytes:
 * `openssl rand -hex 32`); blank lines and '#' comments are skipped.  The
 * first key tags new records, every key verifies, each known by its key
 * id (the first 16 hex digits of SHA-256 of the key): rotation is a new
 * first line, the old one kept below until nothing relies on it.
 *
 * Only bytes and MACs here: which records must be tagged, and what the
 * broker does when one does not verify, is audit_trust.h's.  Keys are
 * wiped when released and never logged.
 */
#pragma once

#include <stddef.h>

#include <openssl/evp.h>

#define AUDIT_KEY_LEN		32	/* bytes of one key */
#define AUDIT_KEYS_MAX		8	/* keys in one file */
#define AUDIT_KEY_FILE_MAX	4096	/* bytes of a key file */
#define AUDIT_KID_LEN		16	/* hex digits of a key id */
/* "KID.MAC": 16 + 1 + 64 */
#define AUDIT_TAG_LEN		(AUDIT_KID_LEN + 1 + 64)

/* Domain separation: what a MAC is of (proto/audit.md). */
#define AUDIT_MAC_RECORD	"toolgate audit tag v1\n"
#define AUDIT_MAC_ARGS		"toolgate audit args v1\n"
#define AUDIT_MAC_ANCHOR	"toolgate audit anchor v1\n"

struct audit_key {
	unsigned char	 key[AUDIT_KEY_LEN];
	char		 kid[AUDIT_KID_LEN + 1];
};

struct audit_keys {
	struct audit_key k[AUDIT_KEYS_MAX];	/* k[0] tags */
	int		 n;
	EVP_MAC		*mac;			/* HMAC, fetched once */
	/* Each key's HMAC, initialised once: a MAC copies it (setting a
	 * key and looking up its digest costs more than the MAC). */
	EVP_MAC_CTX	*ctx[AUDIT_KEYS_MAX];
};

/*
 * Read the key file at path: it must not be accessible by group or others
 * (like every private key the broker reads).  0, or -1 with one line in
 * why naming the problem (never the key).
 */
int	audit_keys_load(struct audit_keys *ks, const char *path, char *why,
	    size_t whylen);
/* The same from the file's text (len bytes); why is static text. */
int	audit_keys_parse(struct audit_keys *ks, const char *text, size_t len,
	    const char **why);
/* Wipe and release (ks may be zeroed already). */
void	audit_keys_clear(struct audit_keys *ks);
/* The key with key id kid (kidlen bytes), or NULL. */
const struct audit_key *audit_keys_find(const struct audit_keys *ks,
	    const char *kid, size_t kidlen);

/*
 * Lowercase hex HMAC-SHA256 under k of label, a (alen bytes), b (blen)
 * and c (clen) in that order, into out[65].  0, or -1 (OpenSSL failed).
 */
int	audit_mac(const struct audit_keys *ks, const struct audit_key *k,
	    const char *label, const void *a, size_t alen, const void *b,
	    size_t blen, const void *c, size_t clen, char out[65]);

/*
 * The tag of a record whose canonical bytes without the tag are text
 * (len bytes, a JSON object) and whose prev_hash is prev: "KID.MAC" under
 * the first key, into out.  0 or -1.
 */
int	audit_tag_make(const struct audit_keys *ks, const char *prev,
	    const char *text, size_t len, char out[AUDIT_TAG_LEN + 1]);
/*
 * Append tag to a record's canonical bytes without it (*text, malloc'd,
 * *len bytes): the "tag" member sorts after every other member of a
 * record, so it goes last.  Frees the old text.  0 or -1 (ENOMEM).
 */
int	audit_tag_insert(char **text, size_t *len, const char *tag);

/* What audit_tag_check found. */
enum audit_tag_verdict {
	AUDIT_TAG_NONE,		/* no tag member at the end */
	AUDIT_TAG_UNKNOWN,	/* tagged under a key we do not hold */
	AUDIT_TAG_OK,		/* verifies */
	AUDIT_TAG_BAD		/* does not verify: forged or altered */
};

/*
 * Check the tag of a record's stored bytes (text, len) that follow prev.
 * The kid of a tag that verifies goes into kid (when not NULL).  ks may be
 * NULL: then any tag is AUDIT_TAG_UNKNOWN.
 */
enum audit_tag_verdict audit_tag_check(const struct audit_keys *ks,
	    const char *prev, const char *text, size_t len,
	    char kid[AUDIT_KID_LEN + 1]);
