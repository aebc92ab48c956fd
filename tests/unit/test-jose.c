/*
 * test-jose: unit tests for broker/core/jose.c — strict base64url, compact JWS
 * shape, the RFC 7515 A.3 ES256 interop vector, ES256/RS256 round trips and
 * key/alg pairing, key loading, PEM export, JWK and RFC 7638 thumbprint.
 * Real OpenSSL keys throughout; nothing is mocked.
 */

#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "jose.h"

static int passed;

#define CHECK(e) do { assert(e); passed++; } while (0)

#include "rfc7515.h"

/* Decode s strictly; returns 1 if it decodes to exactly want/wantlen. */
static int
decodes_to(const char *s, const char *want, size_t wantlen)
{
	unsigned char	*out;
	size_t		 n = 0;
	int		 ok;

	if ((out = jose_b64url_decode(s, strlen(s), &n)) == NULL)
		return (0);
	ok = n == wantlen && memcmp(out, want, n) == 0 && out[n] == '\0';
	free(out);
	return (ok);
}

static int
refused(const char *s, size_t len)
{
	unsigned char	*out;
	size_t		 n = 12345;

	out = jose_b64url_decode(s, len, &n);
	free(out);
	return (out == NULL);
}

static void
test_b64url(void)
{
	static const struct {
		const char	*raw;
		size_t		 rawlen;
		const char	*enc;
	} vec[] = {
		/* RFC 4648 section 10, without padding. */
		{ "", 0, "" },
		{ "f", 1, "Zg" },
		{ "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg" },
		{ "fooba", 5, "Zm9vYmE" },
		{ "foobar", 6, "Zm9vYmFy" },
		/* The two characters where the url alphabet differs. */
		{ "\xfb\xef\xbe", 3, "----" },
		{ "\xff\xff\xff", 3, "____" },
		{ "\xfb\xff", 2, "-_8" },
		{ "\x00\x00\x00", 3, "AAAA" },
		{ "\x00", 1, "AA" },
	};
	static const char *bad[] = {
		"Zm9v+A", "Zm9v/A", "Zg==", "Zm8=", "Zm9v!", "Zm*v", "Zm9~",
		"Zm 9v", " Zm9v", "Zm9v\n", "Zm9v\r", "Zm9vY\xc3\xa9",
		/* Length 1 mod 4: no byte string encodes to it. */
		"Z", "Zm9vY", "Zm9vYmFyZ",
		/* Non-canonical trailing bits (low 4 of 2 chars, 2 of 3). */
		"Zh", "Zm9", "Zm9vYh", "Zm9vYmF", "AB", "AAB", "__", "___",
	};
	unsigned char	 buf[101], *dec;
	char		*enc;
	size_t		 i, n, len;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		enc = jose_b64url_encode((const unsigned char *)vec[i].raw,
		    vec[i].rawlen);
		CHECK(enc != NULL && strcmp(enc, vec[i].enc) == 0);
		free(enc);
		CHECK(decodes_to(vec[i].enc, vec[i].raw, vec[i].rawlen));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(refused(bad[i], strlen(bad[i])));
	/* Embedded NUL, counted in the length. */
	CHECK(refused("Zm9v\0Zm9v", 9));
	CHECK(refused("Zm\0v", 4));
	/* The canonical neighbours of the non-canonical ones do decode. */
	CHECK(decodes_to("Zg", "f", 1));
	CHECK(decodes_to("Zm8", "fo", 2));
	CHECK(decodes_to("_w", "\xff", 1));
	CHECK(decodes_to("__8", "\xff\xff", 2));
	/* NULL arguments. */
	CHECK(jose_b64url_decode(NULL, 0, &n) == NULL);
	CHECK(jose_b64url_decode("Zg", 2, NULL) == NULL);

	/* Random round trips for every length 0..100. */
	for (len = 0; len <= 100; len++) {
		assert(RAND_bytes(buf, sizeof(buf)) == 1);
		enc = jose_b64url_encode(buf, len);
		CHECK(enc != NULL);
		CHECK(strlen(enc) == (len * 4 + 2) / 3);
		CHECK(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
		    "qrstuvwxyz0123456789-_") == strlen(enc));
		dec = jose_b64url_decode(enc, strlen(enc), &n);
		CHECK(dec != NULL && n == len && memcmp(dec, buf, len) == 0);
		free(dec);
		free(enc);
	}
}

static int
split_ok(const char *tok, size_t *d1, size_t *d2)
{
	return (jose_split(tok, strlen(tok), d1, d2) == 0);
}

static void
test_split(void)
{
	static const char *bad[] = {
		"", ".", "..", "...", "abcd", "abcd.efgh",
		"abcd.efgh.ijkl.mnop", "abcd..ijkl", ".efgh.ijkl",
		"abcd.efgh.", "abcd.efgh.ijkl=", "abcd.efgh=.ijkl",
		"abcd.ef+h.ijkl", "abcd.ef/h.ijkl", "abcd.efgh.ij kl",
		"abcd.efgh.ijkl\n", "abcd.e.ijkl", "abcd.efgh.ijklm",
	};
	size_t		 d1 = 0, d2 = 0, i, big;
	char		*tok;

	CHECK(split_ok("abcd.efgh.ijkl", &d1, &d2));
	CHECK(d1 == 4 && d2 == 9);
	CHECK(split_ok("ab.c-_.de", &d1, &d2));
	CHECK(d1 == 2 && d2 == 6);
	CHECK(split_ok(A3_JWS, &d1, &d2));
	CHECK(d1 == 20 && d2 == strlen(A3_JWS) - 86 - 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!split_ok(bad[i], &d1, &d2));
	/* NUL inside the counted length. */
	CHECK(jose_split("abcd.ef\0h.ijkl", 14, &d1, &d2) == -1);
	CHECK(jose_split(NULL, 10, &d1, &d2) == -1);

	/* 64 KiB exactly is allowed; one byte more is not (segment lengths
	 * 100, 100 and 65335 or 65336 are all ones base64 can produce). */
	big = 64 * 1024;
	assert((tok = malloc(big + 2)) != NULL);
	memset(tok, 'A', big + 1);
	tok[100] = '.';
	tok[201] = '.';
	tok[big + 1] = '\0';
	CHECK(jose_split(tok, big, &d1, &d2) == 0);
	CHECK(d1 == 100 && d2 == 201);
	CHECK(jose_split(tok, big + 1, &d1, &d2) == -1);
	free(tok);
}

static void
test_rfc7515_a3(void)
{
	EVP_PKEY	*pub, *priv;
	char		 tok[sizeof(A3_JWS) + 1];
	size_t		 len = strlen(A3_JWS), i;
	char		*jws, *sig;
	json_t		*hdr;

	pub = ec_key_from_jwk(A3_X, A3_Y, NULL);
	CHECK(pub != NULL);
	CHECK(jose_alg_for_key(pub) == JOSE_ES256);
	CHECK(jose_verify(pub, JOSE_ES256, A3_JWS, len) == 0);
	/* The alg comes from the key: RS256 on an EC key never verifies. */
	CHECK(jose_verify(pub, JOSE_RS256, A3_JWS, len) == -1);
	CHECK(jose_verify(pub, JOSE_ALG_NONE_OK, A3_JWS, len) == -1);

	/* Flip a signature character (first one: all 6 bits significant). */
	memcpy(tok, A3_JWS, len + 1);
	tok[len - 86] = tok[len - 86] == 'D' ? 'E' : 'D';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	/* Flip a payload character. */
	memcpy(tok, A3_JWS, len + 1);
	tok[30] = tok[30] == 'a' ? 'b' : 'a';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	/* Flip a header character. */
	memcpy(tok, A3_JWS, len + 1);
	tok[5] = tok[5] == 'a' ? 'b' : 'a';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	/* Padding, junk libb64 would skip, truncation. */
	memcpy(tok, A3_JWS, len + 1);
	tok[len] = '=';
	tok[len + 1] = '\0';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len + 1) == -1);
	memcpy(tok, A3_JWS, len + 1);
	tok[len - 10] = '~';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	CHECK(jose_verify(pub, JOSE_ES256, A3_JWS, len - 1) == -1);
	CHECK(jose_verify(pub, JOSE_ES256, A3_JWS, len - 2) == -1);
	/* Non-canonical last character ('Q' = 16; 'R' = 17 sets a low bit). */
	memcpy(tok, A3_JWS, len + 1);
	assert(tok[len - 1] == 'Q');
	tok[len - 1] = 'R';
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	/* Every single-character substitution in the signature fails. */
	for (i = len - 86; i < len; i++) {
		memcpy(tok, A3_JWS, len + 1);
		tok[i] = tok[i] == 'A' ? 'B' : 'A';
		CHECK(jose_verify(pub, JOSE_ES256, tok, len) == -1);
	}

	/* The private half signs tokens that the public half verifies. */
	CHECK(ec_key_from_jwk(A3_X, A3_Y, BAD_D) == NULL);
	priv = ec_key_from_jwk(A3_X, A3_Y, A3_D);
	CHECK(priv != NULL);
	CHECK(EVP_PKEY_eq(pub, priv) == 1);
	hdr = json_pack("{s:s}", "alg", "ES256");
	jws = jose_sign_compact(priv, JOSE_ES256, hdr, "{\"iss\":\"joe\"}",
	    13);
	CHECK(jws != NULL);
	CHECK(strncmp(jws, "eyJhbGciOiJFUzI1NiJ9.", 21) == 0);
	CHECK(jose_verify(pub, JOSE_ES256, jws, strlen(jws)) == 0);
	/* jose_sign over the RFC's own signing input verifies too. */
	sig = jose_sign(priv, JOSE_ES256, A3_JWS, len - 87);
	CHECK(sig != NULL && strlen(sig) == 86);
	memcpy(tok, A3_JWS, len - 86);
	memcpy(tok + len - 86, sig, 87);
	CHECK(jose_verify(pub, JOSE_ES256, tok, len) == 0);
	free(sig);
	free(jws);
	json_decref(hdr);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

/* Sign, verify, and check tampering and a wrong key with one key pair. */
static void
round_trip(EVP_PKEY *key, EVP_PKEY *other, enum jose_alg alg, size_t siglen)
{
	json_t		*hdr;
	char		*jws, *p, saved;
	const char	*payload = "{\"iss\":\"agent-payments\",\"n\":1}";
	size_t		 len, d1, d2;
	unsigned char	*dec;
	size_t		 declen;

	CHECK(jose_alg_for_key(key) == alg);
	hdr = json_pack("{s:s, s:s}", "alg", jose_alg_name(alg), "typ", "JWT");
	jws = jose_sign_compact(key, alg, hdr, payload, strlen(payload));
	CHECK(jws != NULL);
	len = strlen(jws);
	CHECK(jose_split(jws, len, &d1, &d2) == 0);
	CHECK(len - d2 - 1 == siglen);
	/* Header and payload decode back to what went in. */
	dec = jose_b64url_decode(jws, d1, &declen);
	CHECK(dec != NULL);
	CHECK(strcmp((char *)dec, alg == JOSE_ES256 ?
	    "{\"alg\":\"ES256\",\"typ\":\"JWT\"}" :
	    "{\"alg\":\"RS256\",\"typ\":\"JWT\"}") == 0);
	free(dec);
	dec = jose_b64url_decode(jws + d1 + 1, d2 - d1 - 1, &declen);
	CHECK(dec != NULL && declen == strlen(payload) &&
	    memcmp(dec, payload, declen) == 0);
	free(dec);

	CHECK(jose_verify(key, alg, jws, len) == 0);
	CHECK(jose_verify(other, alg, jws, len) == -1);
	CHECK(jose_verify(key, alg == JOSE_ES256 ? JOSE_RS256 : JOSE_ES256,
	    jws, len) == -1);
	p = jws + d1 + 3;
	saved = *p;
	*p = saved == 'A' ? 'B' : 'A';
	CHECK(jose_verify(key, alg, jws, len) == -1);
	*p = saved;
	CHECK(jose_verify(key, alg, jws, len) == 0);
	/* A signature one byte short (4 chars fewer). */
	CHECK(jose_verify(key, alg, jws, len - 4) == -1);
	/* Signing with an alg that does not fit the key is refused. */
	p = jose_sign(key, alg == JOSE_ES256 ? JOSE_RS256 : JOSE_ES256,
	    "a.b", 3);
	CHECK(p == NULL);
	CHECK(jose_sign(key, JOSE_ALG_NONE_OK, "a.b", 3) == NULL);
	/* A header that is not an object is refused. */
	json_decref(hdr);
	hdr = json_string("ES256");
	CHECK(jose_sign_compact(key, alg, hdr, "x", 1) == NULL);
	json_decref(hdr);
	free(jws);
}

static void
test_keys(void)
{
	EVP_PKEY	*ec1, *ec2, *ec384, *rsa1024, *rsa1, *rsa2;

	ec1 = EVP_EC_gen("P-256");
	ec2 = EVP_EC_gen("P-256");
	ec384 = EVP_EC_gen("P-384");
	rsa1 = EVP_RSA_gen(2048);
	rsa2 = EVP_RSA_gen(2048);
	rsa1024 = EVP_RSA_gen(1024);
	assert(ec1 && ec2 && ec384 && rsa1 && rsa2 && rsa1024);

	CHECK(jose_alg_for_key(ec1) == JOSE_ES256);
	CHECK(jose_alg_for_key(ec384) == JOSE_ALG_NONE_OK);
	CHECK(jose_alg_for_key(rsa1024) == JOSE_ALG_NONE_OK);
	CHECK(jose_alg_for_key(rsa1) == JOSE_RS256);
	CHECK(jose_alg_for_key(NULL) == JOSE_ALG_NONE_OK);
	CHECK(strcmp(jose_alg_name(JOSE_ES256), "ES256") == 0);
	CHECK(strcmp(jose_alg_name(JOSE_RS256), "RS256") == 0);
	CHECK(jose_alg_name(JOSE_ALG_NONE_OK) == NULL);

	round_trip(ec1, ec2, JOSE_ES256, 86);
	round_trip(rsa1, rsa2, JOSE_RS256, 342);	/* 256 bytes */
	/* Unusable keys neither sign nor verify. */
	CHECK(jose_sign(ec384, JOSE_ES256, "a.b", 3) == NULL);
	CHECK(jose_sign(rsa1024, JOSE_RS256, "a.b", 3) == NULL);
	CHECK(jose_ec_public_jwk(ec384) == NULL);
	CHECK(jose_ec_public_jwk(rsa1) == NULL);
	CHECK(jose_thumbprint(rsa1) == NULL);

	EVP_PKEY_free(ec1);
	EVP_PKEY_free(ec2);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(rsa1);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(rsa1024);
}

/* Write text to a fresh temporary file; returns its malloc'd path. */
static char *
write_temp(const char *text, size_t len)
{
	char	*path;
	int	 fd;

	assert((path = strdup("/tmp/test-jose-XXXXXX")) != NULL);
	assert((fd = mkstemp(path)) != -1);
	assert(write(fd, text, len) == (ssize_t)len);
	assert(close(fd) == 0);
	return (path);
}

static void
test_load_and_pem(void)
{
	EVP_PKEY	*key, *loaded, *pub;
	BIO		*bio;
	BUF_MEM		*mem;
	const char	*why = NULL;
	char		*path, *pem;
	size_t		 pemlen = 0;

	key = EVP_EC_gen("P-256");
	assert(key != NULL);

	/* Plain PKCS#8 PEM loads and is the same key. */
	assert((bio = BIO_new(BIO_s_mem())) != NULL);
	assert(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
	    NULL) == 1);
	BIO_get_mem_ptr(bio, &mem);
	path = write_temp(mem->data, mem->length);
	BIO_free(bio);
	loaded = jose_load_private_key(path, &why);
	CHECK(loaded != NULL && why == NULL);
	CHECK(EVP_PKEY_eq(key, loaded) == 1);
	CHECK(jose_alg_for_key(loaded) == JOSE_ES256);
	EVP_PKEY_free(loaded);
	unlink(path);
	free(path);

	/* An encrypted key is refused without prompting. */
	assert((bio = BIO_new(BIO_s_mem())) != NULL);
	assert(PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(),
	    (unsigned char *)"secret", 6, NULL, NULL) == 1);
	BIO_get_mem_ptr(bio, &mem);
	path = write_temp(mem->data, mem->length);
	BIO_free(bio);
	why = NULL;
	CHECK(jose_load_private_key(path, &why) == NULL && why != NULL);
	unlink(path);
	free(path);

	/* Not PEM at all; a public key is not a private key. */
	path = write_temp("hello\n", 6);
	why = NULL;
	CHECK(jose_load_private_key(path, &why) == NULL);
	CHECK(why != NULL && strstr(why, "not a PEM private key") != NULL);
	unlink(path);
	free(path);

	pem = jose_public_pem(key, &pemlen);
	CHECK(pem != NULL && pemlen == strlen(pem));
	CHECK(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
	CHECK(strstr(pem, "PRIVATE") == NULL);
	path = write_temp(pem, pemlen);
	why = NULL;
	CHECK(jose_load_private_key(path, &why) == NULL && why != NULL);
	unlink(path);
	free(path);
	/* The PEM reads back as the same public key. */
	assert((bio = BIO_new_mem_buf(pem, (int)pemlen)) != NULL);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	CHECK(pub != NULL && EVP_PKEY_eq(key, pub) == 1);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	free(pem);

	why = NULL;
	CHECK(jose_load_private_key("/nonexistent/dir/key.pem", &why) ==
	    NULL);
	CHECK(why != NULL && strcmp(why, "cannot open file") == 0);
	CHECK(jose_public_pem(NULL, &pemlen) == NULL);
	EVP_PKEY_free(key);
}

static void
test_jwk_thumbprint(void)
{
	static const char canon[] =
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X
	    "\",\"y\":\"" A3_Y "\"}";
	EVP_PKEY	*pub, *again, *gen;
	json_t		*jwk;
	unsigned char	 md[32];
	char		*want, *tp, *tp2;
	const char	*x, *y;

	pub = ec_key_from_jwk(A3_X, A3_Y, NULL);
	assert(pub != NULL);
	jwk = jose_ec_public_jwk(pub);
	CHECK(jwk != NULL && json_object_size(jwk) == 4);
	CHECK(strcmp(json_string_value(json_object_get(jwk, "kty")), "EC")
	    == 0);
	CHECK(strcmp(json_string_value(json_object_get(jwk, "crv")),
	    "P-256") == 0);
	x = json_string_value(json_object_get(jwk, "x"));
	y = json_string_value(json_object_get(jwk, "y"));
	CHECK(x != NULL && strcmp(x, A3_X) == 0);
	CHECK(y != NULL && strcmp(y, A3_Y) == 0);
	/* x/y round trip into the same key. */
	again = ec_key_from_jwk(x, y, NULL);
	CHECK(again != NULL && EVP_PKEY_eq(pub, again) == 1);
	EVP_PKEY_free(again);
	json_decref(jwk);

	/* RFC 7638: SHA-256 of the exact canonical members, independently. */
	assert(EVP_Digest(canon, strlen(canon), md, NULL, EVP_sha256(),
	    NULL) == 1);
	want = jose_b64url_encode(md, sizeof(md));
	tp = jose_thumbprint(pub);
	CHECK(tp != NULL && want != NULL && strcmp(tp, want) == 0);
	CHECK(strlen(tp) == 43);
	free(want);
	free(tp);
	EVP_PKEY_free(pub);

	/* Fresh keys: coordinates are always 32 bytes (43 chars), and the
	 * thumbprint follows the key. */
	gen = EVP_EC_gen("P-256");
	assert(gen != NULL);
	jwk = jose_ec_public_jwk(gen);
	CHECK(jwk != NULL);
	x = json_string_value(json_object_get(jwk, "x"));
	y = json_string_value(json_object_get(jwk, "y"));
	CHECK(strlen(x) == 43 && strlen(y) == 43);
	again = ec_key_from_jwk(x, y, NULL);
	CHECK(again != NULL && EVP_PKEY_eq(gen, again) == 1);
	tp = jose_thumbprint(gen);
	tp2 = jose_thumbprint(again);
	CHECK(tp != NULL && tp2 != NULL && strcmp(tp, tp2) == 0);
	free(tp2);
	CHECK(jose_thumbprint(NULL) == NULL);
	CHECK(jose_ec_public_jwk(NULL) == NULL);
	free(tp);
	EVP_PKEY_free(again);
	json_decref(jwk);
	EVP_PKEY_free(gen);
}

int
main(void)
{
	test_b64url();
	test_split();
	test_rfc7515_a3();
	test_keys();
	test_load_and_pem();
	test_jwk_thumbprint();
	printf("jose: %d passed, 0 failed\n", passed);
	return (0);
}
