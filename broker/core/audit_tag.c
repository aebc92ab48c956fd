/*
 * audit_tag: audit keys (the --audit-key file), HMAC-SHA256 through
 * OpenSSL's EVP_MAC, and the "tag" member at the end of a record's
 * canonical bytes.  A record's tag is found by its exact place: RFC 8785
 * sorts "tag" after every other member of a record (actor, at, details,
 * event, format, intent_id, seq), so a tagged record's bytes end with
 * ,"tag":"KID.MAC"} and the bytes without it are what precedes, closed
 * with "}".  No parsing, so checking a tag costs one MAC.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "audit_tag.h"
#include "canon.h"

#define TAG_OPEN	",\"tag\":\""
#define TAG_OPEN_LEN	(sizeof(TAG_OPEN) - 1)
/* ,"tag":"KID.MAC"} */
#define TAG_SUFFIX_LEN	(TAG_OPEN_LEN + AUDIT_TAG_LEN + 2)

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	c = tolower(c);
	return (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
}

/* One key line (64 hex digits) into k.  0 or -1. */
static int
key_from_hex(const char *line, size_t n, struct audit_key *k)
{
	char	 sha[65];
	size_t	 i;
	int	 hi, lo;

	if (n != 2 * AUDIT_KEY_LEN)
		return (-1);
	for (i = 0; i < AUDIT_KEY_LEN; i++) {
		if ((hi = hexval((unsigned char)line[2 * i])) < 0 ||
		    (lo = hexval((unsigned char)line[2 * i + 1])) < 0)
			return (-1);
		k->key[i] = (unsigned char)(hi << 4 | lo);
	}
	canon_sha256_hex(k->key, AUDIT_KEY_LEN, sha);
	memcpy(k->kid, sha, AUDIT_KID_LEN);
	k->kid[AUDIT_KID_LEN] = '\0';
	explicit_bzero(sha, sizeof(sha));
	return (0);
}

/* One HMAC-SHA256 context per key, keyed. */
static int
keys_init_macs(struct audit_keys *ks)
{
	char		 digest[] = "SHA256";
	OSSL_PARAM	 params[2];
	int		 i;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ks->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return (-1);
	for (i = 0; i < ks->n; i++)
		if ((ks->ctx[i] = EVP_MAC_CTX_new(ks->mac)) == NULL ||
		    EVP_MAC_init(ks->ctx[i], ks->k[i].key, AUDIT_KEY_LEN,
		    params) != 1)
			return (-1);
	return (0);
}

int
audit_keys_parse(struct audit_keys *ks, const char *text, size_t len,
    const char **why)
{
	const char	*p = text, *end = text + len, *nl;
	size_t		 n;
	int		 i;

	memset(ks, 0, sizeof(*ks));
	if (memchr(text, '\0', len) != NULL) {
		*why = "holds a NUL byte: want lines of 64 hex digits";
		return (-1);
	}
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' ||
		    p[n - 1] == '\t'))
			n--;
		if (n == 0 || p[0] == '#')
			continue;
		if (ks->n == AUDIT_KEYS_MAX) {
			*why = "holds more than 8 keys";
			goto bad;
		}
		if (key_from_hex(p, n, &ks->k[ks->n]) == -1) {
			*why = "a key line is not 64 hex digits (make one "
			    "with: openssl rand -hex 32)";
			goto bad;
		}
		for (i = 0; i < ks->n; i++)
			if (strcmp(ks->k[i].kid, ks->k[ks->n].kid) == 0) {
				*why = "holds the same key twice";
				goto bad;
			}
		ks->n++;
	}
	if (ks->n == 0) {
		*why = "holds no key (want a line of 64 hex digits: "
		    "openssl rand -hex 32)";
		goto bad;
	}
	if (keys_init_macs(ks) == -1) {
		*why = "OpenSSL has no HMAC-SHA256";
		goto bad;
	}
	return (0);
 bad:
	audit_keys_clear(ks);
	return (-1);
}

int
audit_keys_load(struct audit_keys *ks, const char *path, char *why,
    size_t whylen)
{
	struct stat	 st;
	char		 buf[AUDIT_KEY_FILE_MAX + 1];
	const char	*msg;
	ssize_t		 n;
	int		 fd, rc = -1;

	memset(ks, 0, sizeof(*ks));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(why, whylen, "cannot read key: %s", strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto done;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, whylen, "key file is accessible by group or "
		    "others (mode %04o): chmod 600 it",
		    (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if ((n = read(fd, buf, sizeof(buf))) < 0) {
		snprintf(why, whylen, "cannot read key: %s", strerror(errno));
		goto done;
	}
	if ((size_t)n > AUDIT_KEY_FILE_MAX) {
		snprintf(why, whylen, "larger than %d bytes",
		    AUDIT_KEY_FILE_MAX);
		goto done;
	}
	if (audit_keys_parse(ks, buf, (size_t)n, &msg) == -1)
		snprintf(why, whylen, "%s", msg);
	else
		rc = 0;
 done:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return (rc);
}

void
audit_keys_clear(struct audit_keys *ks)
{
	int	 i;

	for (i = 0; i < AUDIT_KEYS_MAX; i++)
		EVP_MAC_CTX_free(ks->ctx[i]);
	EVP_MAC_free(ks->mac);
	explicit_bzero(ks, sizeof(*ks));
}

const struct audit_key *
audit_keys_find(const struct audit_keys *ks, const char *kid, size_t kidlen)
{
	int	 i;

	if (ks == NULL || kidlen != AUDIT_KID_LEN)
		return (NULL);
	for (i = 0; i < ks->n; i++)
		if (memcmp(ks->k[i].kid, kid, AUDIT_KID_LEN) == 0)
			return (&ks->k[i]);
	return (NULL);
}

int
audit_mac(const struct audit_keys *ks, const struct audit_key *k,
    const char *label, const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen, char out[65])
{
	static const char	 hex[] = "0123456789abcdef";
	EVP_MAC_CTX		*ctx;
	unsigned char		 md[32];
	size_t			 mdlen = 0, i;
	int			 ok;

	/* Copied, never used in place: threads share the keyed ones. */
	if (k < ks->k || k >= ks->k + ks->n ||
	    (ctx = EVP_MAC_CTX_dup(ks->ctx[k - ks->k])) == NULL)
		return (-1);
	ok = EVP_MAC_update(ctx, (const unsigned char *)label,
	    strlen(label)) == 1 &&
	    (alen == 0 || EVP_MAC_update(ctx, a, alen) == 1) &&
	    (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) &&
	    (clen == 0 || EVP_MAC_update(ctx, c, clen) == 1) &&
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) == 1 &&
	    mdlen == sizeof(md);
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return (-1);
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
	return (0);
}

int
audit_tag_make(const struct audit_keys *ks, const char *prev,
    const char *text, size_t len, char out[AUDIT_TAG_LEN + 1])
{
	const struct audit_key	*k = &ks->k[0];

	memcpy(out, k->kid, AUDIT_KID_LEN);
	out[AUDIT_KID_LEN] = '.';
	return (audit_mac(ks, k, AUDIT_MAC_RECORD, prev, 64, text, len, NULL,
	    0, out + AUDIT_KID_LEN + 1));
}

int
audit_tag_insert(char **text, size_t *len, const char *tag)
{
	char	*t;
	size_t	 n = *len;

	if (n < 2 || (*text)[n - 1] != '}' ||
	    (t = malloc(n - 1 + TAG_SUFFIX_LEN + 1)) == NULL)
		return (-1);
	memcpy(t, *text, n - 1);
	snprintf(t + n - 1, TAG_SUFFIX_LEN + 1, "%s%s\"}", TAG_OPEN, tag);
	free(*text);
	*text = t;
	*len = n - 1 + TAG_SUFFIX_LEN;
	return (0);
}

/* 1 if s[0..n) are lowercase hex digits. */
static int
is_hex(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return (0);
	return (1);
}

enum audit_tag_verdict
audit_tag_check(const struct audit_keys *ks, const char *prev,
    const char *text, size_t len, char kid[AUDIT_KID_LEN + 1])
{
	const struct audit_key	*k;
	const char		*tag;
	char			 mac[65];
	size_t			 body;

	if (len < TAG_SUFFIX_LEN + 2 || text[len - 1] != '}' ||
	    text[len - 2] != '"')
		return (AUDIT_TAG_NONE);
	body = len - TAG_SUFFIX_LEN;
	tag = text + body + TAG_OPEN_LEN;
	if (memcmp(text + body, TAG_OPEN, TAG_OPEN_LEN) != 0)
		return (AUDIT_TAG_NONE);
	if (!is_hex(tag, AUDIT_KID_LEN) || tag[AUDIT_KID_LEN] != '.' ||
	    !is_hex(tag + AUDIT_KID_LEN + 1, 64))
		return (AUDIT_TAG_BAD);
	if ((k = audit_keys_find(ks, tag, AUDIT_KID_LEN)) == NULL)
		return (AUDIT_TAG_UNKNOWN);
	if (audit_mac(ks, k, AUDIT_MAC_RECORD, prev, 64, text, body, "}", 1,
	    mac) == -1 ||
	    !canon_ct_equal(mac, tag + AUDIT_KID_LEN + 1, 64))
		return (AUDIT_TAG_BAD);
	if (kid != NULL)
		memcpy(kid, k->kid, AUDIT_KID_LEN + 1);
	return (AUDIT_TAG_OK);
}
