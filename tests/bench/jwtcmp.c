/*
 * jwtcmp: what an ES256 verification and signature cost through libjwt 1.10
 * (the key handed over as PEM on every call, as its API wants) against
 * toolgate's jose path (the key parsed once, OpenSSL EVP directly), on the
 * same token, in one run.  scripts/bench prints its machine line:
 *
 *   jwtcmp libjwt_verify_us=… jose_verify_us=… libjwt_sign_us=… jose_sign_us=…
 *
 * Each figure is the mean over --iterations calls (default 2000) after a
 * short warm-up; every verification is checked to succeed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jose.h"

static const char payload[] = "{\"iss\":\"agent-payments\",\"jti\":\"bench-1\","
    "\"aud\":\"toolgate\",\"tool\":\"crm.lookup\",\"args\":{\"id\":42},"
    "\"iat\":1795700000,\"exp\":1795700060}";

struct pems {
	char	*pub, *priv;
	long	 publen, privlen;
	BIO	*bpub, *bpriv;
};

static double
now_us(void)
{
	struct timespec	 t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3);
}

static void __attribute__((noreturn))
die(const char *what)
{
	fprintf(stderr, "jwtcmp: %s\n", what);
	exit(1);
}

static void
pems_make(EVP_PKEY *key, struct pems *p)
{
	p->bpub = BIO_new(BIO_s_mem());
	p->bpriv = BIO_new(BIO_s_mem());
	if (p->bpub == NULL || p->bpriv == NULL ||
	    PEM_write_bio_PUBKEY(p->bpub, key) != 1 ||
	    PEM_write_bio_PrivateKey(p->bpriv, key, NULL, NULL, 0, NULL,
	    NULL) != 1)
		die("cannot write the key as PEM");
	p->publen = BIO_get_mem_data(p->bpub, &p->pub);
	p->privlen = BIO_get_mem_data(p->bpriv, &p->priv);
}

static void
libjwt_verify(const char *tok, const struct pems *p)
{
	jwt_t	*jwt = NULL;

	if (jwt_decode(&jwt, tok, (const unsigned char *)p->pub,
	    (int)p->publen) != 0)
		die("libjwt did not verify the token");
	jwt_free(jwt);
}

static void
libjwt_sign(const struct pems *p)
{
	jwt_t	*jwt = NULL;
	char	*tok = NULL;

	if (jwt_new(&jwt) != 0 || jwt_set_alg(jwt, JWT_ALG_ES256,
	    (const unsigned char *)p->priv, (int)p->privlen) != 0 ||
	    jwt_add_grants_json(jwt, payload) != 0 ||
	    (tok = jwt_encode_str(jwt)) == NULL)
		die("libjwt did not sign");
	free(tok);
	jwt_free(jwt);
}

static void
jose_verify_once(EVP_PKEY *key, const char *tok)
{
	if (jose_verify(key, JOSE_ES256, tok, strlen(tok)) != 0)
		die("jose did not verify the token");
}

static void
jose_sign_once(EVP_PKEY *key, json_t *header)
{
	char	*tok = jose_sign_compact(key, JOSE_ES256, header, payload,
		    sizeof(payload) - 1);

	if (tok == NULL)
		die("jose did not sign");
	free(tok);
}

int
main(int argc, char **argv)
{
	struct pems	 p;
	EVP_PKEY	*key;
	json_t		*header;
	char		*tok;
	double		 t[5];
	long		 i, n = 2000;

	if (argc == 3 && strcmp(argv[1], "--iterations") == 0)
		n = strtol(argv[2], NULL, 10);
	else if (argc != 1) {
		fprintf(stderr, "usage: jwtcmp [--iterations N]\n");
		return (2);
	}
	if (n < 1)
		die("--iterations wants a positive number");
	if ((key = EVP_EC_gen("P-256")) == NULL)
		die("cannot make a P-256 key");
	pems_make(key, &p);
	header = json_pack("{ss ss}", "alg", "ES256", "typ", "JWT");
	tok = jose_sign_compact(key, JOSE_ES256, header, payload,
	    sizeof(payload) - 1);
	if (header == NULL || tok == NULL)
		die("cannot sign the test token");
	for (i = 0; i < n / 10 + 1; i++) {	/* warm-up */
		libjwt_verify(tok, &p);
		jose_verify_once(key, tok);
	}
	t[0] = now_us();
	for (i = 0; i < n; i++)
		libjwt_verify(tok, &p);
	t[1] = now_us();
	for (i = 0; i < n; i++)
		jose_verify_once(key, tok);
	t[2] = now_us();
	for (i = 0; i < n; i++)
		libjwt_sign(&p);
	t[3] = now_us();
	for (i = 0; i < n; i++)
		jose_sign_once(key, header);
	t[4] = now_us();
	printf("jwtcmp libjwt_verify_us=%.1f jose_verify_us=%.1f "
	    "libjwt_sign_us=%.1f jose_sign_us=%.1f\n", (t[1] - t[0]) / n,
	    (t[2] - t[1]) / n, (t[3] - t[2]) / n, (t[4] - t[3]) / n);
	free(tok);
	json_decref(header);
	BIO_free(p.bpub);
	BIO_free(p.bpriv);
	EVP_PKEY_free(key);
	return (0);
}
