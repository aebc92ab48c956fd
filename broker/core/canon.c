/*
 * canon: canonical JSON bytes and SHA-256 hex.  What gets hashed (audit
 * records, policy texts, intent payloads) goes through here so there is one
 * definition of "the bytes".
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "canon.h"
#include "jsonw.h"

char *
canon_dump(const json_t *v)
{
	return (jsonw_dump(v, 1, NULL));
}

static void
canon_hex(const unsigned char *md, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	int	 i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

void
canon_sha256_hex2(const void *a, size_t alen, const void *b, size_t blen,
    char out[65])
{
	unsigned char	 md[32];
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		memset(md, 0, sizeof(md));	/* cannot happen; never matches */
	EVP_MD_CTX_free(ctx);
	canon_hex(md, out);
}

void
canon_sha256_hex(const void *data, size_t len, char out[65])
{
	canon_sha256_hex2(data, len, NULL, 0, out);
}

int
canon_ct_equal(const void *a, const void *b, size_t len)
{
	return (CRYPTO_memcmp(a, b, len) == 0);
}

int
canon_depth(const json_t *v, int limit)
{
	json_t		*child;
	const char	*key;
	json_t		*mv = (json_t *)v;	/* jansson's iterators are not const */
	size_t		 i;
	int		 d, max = 0;

	if (limit <= 0 || (!json_is_object(v) && !json_is_array(v)))
		return (0);
	if (json_is_object(v)) {
		json_object_foreach(mv, key, child)
			if ((d = canon_depth(child, limit - 1)) > max)
				max = d;
	} else {
		json_array_foreach(mv, i, child)
			if ((d = canon_depth(child, limit - 1)) > max)
				max = d;
	}
	return (max + 1);
}
