/*
 * client: a small blocking HTTPS/1.1 client for toolgatectl — one request
 * per connection (Connection: close) over mutual TLS.  The broker is
 * verified against --ca only (never the system store) and against the
 * URL's host name or IP address.  It says why a transport failed (exit 3)
 * and hands back any HTTP answer untouched: what a status means is
 * output.c's business.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "file.h"

#define CLIENT_MAX_HEAD		(64 * 1024)
#define CLIENT_MAX_BODY		(16 * 1024 * 1024)

struct url {
	char	 host[256];	/* without brackets */
	char	 authority[272];	/* as written, for Host: */
	char	 port[8];
	char	 prefix[256];	/* path prefix without trailing '/' */
};

struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return (rc);
}

/* The last OpenSSL error as text (the queue is cleared). */
static const char *
ssl_why(char *out, size_t outlen)
{
	unsigned long	 e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(out, outlen, "%s", errno ? strerror(errno) :
		    "connection closed");
	else if (ERR_reason_error_string(last) != NULL)
		snprintf(out, outlen, "%s", ERR_reason_error_string(last));
	else
		ERR_error_string_n(last, out, outlen);
	return (out);
}

/*
 * What to do about a TLS failure whose reason (OpenSSL's text, e.g. the
 * broker's alert "sslv3 alert unsupported certificate") is why: a hint
 * starting with "; ", or "".  An alert says only which check failed;
 * the broker's log says more.
 */
static const char *
tls_hint(const char *why)
{
	static const struct {
		const char	*match;
		const char	*hint;
	} hints[] = {
		{ "unsupported certificate", "; the broker refused --cert: a "
		    "client certificate needs the clientAuth extended key "
		    "usage (proto/identities.md)" },
		{ "unknown ca", "; the broker does not trust the CA that "
		    "issued --cert" },
		{ "certificate revoked", "; --cert is revoked in the broker's "
		    "CRL" },
		{ "certificate expired", "; --cert has expired (or is not "
		    "valid yet)" },
		{ "certificate required", "; the broker needs a client "
		    "certificate (--cert, --key)" },
		{ "bad certificate", "; the broker refused --cert (its log "
		    "says why)" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strstr(why, hints[i].match) != NULL)
			return (hints[i].hint);
	return ("");
}

/* The hint for a broker certificate that did not verify (error vr). */
static const char *
verify_hint(long vr)
{
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return ("; is --ca (TOOLGATE_CA) the CA that issued the "
		    "broker's certificate?");
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return ("; the host in --url (TOOLGATE_URL) must be a name or "
		    "address the broker's certificate holds");
	default:
		return ("");
	}
}

/* https://host[:port][/prefix], host a name, IPv4 or [IPv6].  0 or -1. */
static int
url_parse(const char *s, struct url *u)
{
	const char	*auth, *end, *h, *he, *p, *port = "443";
	size_t		 alen, plen = 3;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) != 0)
		return (-1);
	auth = s + 8;
	end = auth + strcspn(auth, "/?#");
	alen = (size_t)(end - auth);
	if (*end == '?' || *end == '#' || memchr(auth, '@', alen) != NULL ||
	    alen == 0 || alen >= sizeof(u->authority))
		return (-1);
	memcpy(u->authority, auth, alen);
	if (*auth == '[') {
		h = auth + 1;
		if ((he = memchr(h, ']', alen)) == NULL)
			return (-1);
		p = he + 1;
	} else {
		h = auth;
		if ((he = memchr(h, ':', alen)) == NULL)
			he = end;
		p = he;
	}
	if (p < end) {
		if (*p != ':')
			return (-1);
		port = p + 1;
		plen = (size_t)(end - port);
	}
	if (he == h || (size_t)(he - h) >= sizeof(u->host) || plen == 0 ||
	    plen > 5 || strspn(port, "0123456789") < plen)
		return (-1);
	memcpy(u->host, h, (size_t)(he - h));
	memcpy(u->port, port, plen);
	if (atoi(u->port) < 1 || atoi(u->port) > 65535 ||
	    strlen(end) >= sizeof(u->prefix))
		return (-1);
	snprintf(u->prefix, sizeof(u->prefix), "%s", end);
	while ((alen = strlen(u->prefix)) > 0 && u->prefix[alen - 1] == '/')
		u->prefix[alen - 1] = '\0';
	return (0);
}

/* Non-blocking connect to one address, waiting at most timeout s. */
static int
connect_one(const struct addrinfo *ai, int timeout)
{
	struct pollfd	 pfd;
	socklen_t	 sl = sizeof(int);
	int		 fd, flags, soerr = 0;

	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol)) == -1)
		return (-1);
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS)
			goto bad;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout * 1000) != 1) {
			errno = ETIMEDOUT;
			goto bad;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 ||
		    soerr != 0) {
			errno = soerr;
			goto bad;
		}
	}
	fcntl(fd, F_SETFL, flags);
	return (fd);
 bad:
	soerr = errno;
	close(fd);
	errno = soerr;
	return (-1);
}

/* TCP connection with read/write timeouts set; fd or -1 with err. */
static int
tcp_connect(const struct ctl *ctl, const struct url *u, char *err,
    size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	struct timeval	 tv = { ctl->timeout, 0 };
	int		 fd = -1, gai, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(u->host, u->port, &hints, &res)) != 0)
		return (fail(err, errlen, -1, "cannot connect to %s: %s",
		    ctl->url, gai_strerror(gai)));
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
		if ((fd = connect_one(ai, ctl->timeout)) == -1)
			saved = errno;
	freeaddrinfo(res);
	if (fd == -1)
		return (fail(err, errlen, -1, "cannot connect to %s: %s",
		    ctl->url, strerror(saved)));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return (fd);
}

/* A local file the TLS context needs: "--cert FILE: reason" into err
 * unless it can be read.  0 or -1. */
static int
tls_file(const char *flag, const char *path, char *err, size_t errlen)
{
	char	 why[256];

	if (file_readable(path, why, sizeof(why)) == 0)
		return (0);
	return (fail(err, errlen, -1, "%s %s: %s", flag, path, why));
}

/* After a failed SSL_CTX_use_PrivateKey_file: 1 when the key itself
 * loaded and only does not fit the certificate loaded before it. */
static int
tls_key_mismatch(void)
{
	unsigned long	 e = ERR_peek_last_error();

	return (ERR_GET_LIB(e) == ERR_LIB_X509 &&
	    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH);
}

/* TLS 1.2+ context with our certificate and key, trusting only --ca.
 * NULL with err (exit 2: these are local files). */
static SSL_CTX *
tls_ctx(const struct ctl *ctl, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	char		 why[256];

	if (tls_file("--ca", ctl->ca, err, errlen) == -1 ||
	    tls_file("--cert", ctl->cert, err, errlen) == -1 ||
	    tls_file("--key", ctl->key, err, errlen) == -1)
		return (NULL);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		fail(err, errlen, 0, "TLS: %s", ssl_why(why, sizeof(why)));
		return (NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ctl->ca, NULL) != 1)
		fail(err, errlen, 0, "--ca %s: not a PEM CA certificate (%s)",
		    ctl->ca, ssl_why(why, sizeof(why)));
	else if (SSL_CTX_use_certificate_chain_file(ctx, ctl->cert) != 1)
		fail(err, errlen, 0, "--cert %s: not a PEM certificate (%s)",
		    ctl->cert, ssl_why(why, sizeof(why)));
	else if (SSL_CTX_use_PrivateKey_file(ctx, ctl->key,
	    SSL_FILETYPE_PEM) != 1 && !tls_key_mismatch())
		fail(err, errlen, 0, "--key %s: not a PEM private key, or "
		    "encrypted (%s)", ctl->key, ssl_why(why, sizeof(why)));
	else if (SSL_CTX_check_private_key(ctx) != 1) {
		/* Both files load: it is the pair that is wrong. */
		ERR_clear_error();
		fail(err, errlen, 0, "--cert %s and --key %s do not belong "
		    "together: the key is not the one the certificate names",
		    ctl->cert, ctl->key);
	} else
		return (ctx);
	SSL_CTX_free(ctx);
	return (NULL);
}

/* Handshake on fd, checking the broker's name or address.  0 or -1. */
static int
tls_open(const struct ctl *ctl, SSL *ssl, int fd, const struct url *u,
    char *err, size_t errlen)
{
	X509_VERIFY_PARAM	*param = SSL_get0_param(ssl);
	unsigned char		 ip[16];
	char			 why[256];
	long			 vr;

	if (inet_pton(AF_INET, u->host, ip) == 1 ||
	    inet_pton(AF_INET6, u->host, ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(param, u->host);
	else {
		X509_VERIFY_PARAM_set1_host(param, u->host, 0);
		SSL_set_tlsext_host_name(ssl, u->host);
	}
	SSL_set_fd(ssl, fd);
	errno = 0;
	if (SSL_connect(ssl) == 1)
		return (0);
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		ERR_clear_error();
		return (fail(err, errlen, -1, "certificate verify failed for "
		    "%s: %s%s", ctl->url, X509_verify_cert_error_string(vr),
		    verify_hint(vr)));
	}
	ssl_why(why, sizeof(why));
	return (fail(err, errlen, -1, "TLS handshake with %s failed: %s%s",
	    ctl->url, why, tls_hint(why)));
}

static int
buf_reserve(struct buf *b, size_t more)
{
	char	*p;
	size_t	 cap = b->cap ? b->cap : 8192;

	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap == b->cap)
		return (0);
	if ((p = realloc(b->p, cap)) == NULL)
		return (-1);
	b->p = p;
	b->cap = cap;
	return (0);
}

/* Read until EOF, until want bytes are there (want != 0) or until the
 * head ends (head set).  1 at EOF, 0 when satisfied, -1 with err. */
static int
read_more(const struct ctl *ctl, SSL *ssl, struct buf *b, size_t want,
    int head, char *err, size_t errlen)
{
	char	 why[256];
	int	 n, e;

	for (;;) {
		if (head && b->len >= 4 && memmem(b->p, b->len, "\r\n\r\n", 4))
			return (0);
		if (want != 0 && b->len >= want)
			return (0);
		if (b->len > CLIENT_MAX_HEAD + CLIENT_MAX_BODY)
			return (fail(err, errlen, -1, "answer from %s is too "
			    "large", ctl->url));
		if (buf_reserve(b, 16384) == -1)
			return (fail(err, errlen, -1, "out of memory"));
		errno = 0;
		if ((n = SSL_read(ssl, b->p + b->len, 16384)) > 0) {
			b->len += (size_t)n;
			b->p[b->len] = '\0';
			continue;
		}
		e = SSL_get_error(ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && errno == 0))
			return (1);
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return (fail(err, errlen, -1, "no answer from %s within "
			    "%d s", ctl->url, ctl->timeout));
		ssl_why(why, sizeof(why));
		return (fail(err, errlen, -1, "TLS failure talking to %s: %s%s",
		    ctl->url, why, tls_hint(why)));
	}
}

/* Value of header name in the head (NUL-terminated), or NULL. */
static const char *
head_value(const char *head, const char *name, char *out, size_t outlen)
{
	const char	*line, *v;
	size_t		 nlen = strlen(name), vlen;

	for (line = strstr(head, "\r\n"); line != NULL;
	    line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
			continue;
		v = line + nlen + 1;
		v += strspn(v, " \t");
		vlen = strcspn(v, "\r\n");
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		snprintf(out, outlen, "%.*s", (int)vlen, v);
		return (out);
	}
	return (NULL);
}

/* Undo chunked transfer coding in place (body from off to b->len). */
static int
dechunk(struct buf *b, size_t off)
{
	char	*r = b->p + off, *w = r, *end = b->p + b->len, *nl;
	unsigned long size;

	for (;;) {
		if ((nl = memmem(r, (size_t)(end - r), "\r\n", 2)) == NULL)
			return (-1);
		errno = 0;
		size = strtoul(r, NULL, 16);
		if (errno != 0 || size > (unsigned long)(end - nl - 2))
			return (-1);
		if (size == 0)
			break;
		memmove(w, nl + 2, size);
		w += size;
		r = nl + 2 + size;
		if (end - r < 2 || r[0] != '\r' || r[1] != '\n')
			return (-1);
		r += 2;
	}
	b->len = (size_t)(w - b->p);
	b->p[b->len] = '\0';
	return (0);
}

/*
 * The head of an answer in b (NUL-terminated at b->len): its status into
 * ans, where the body starts (*off) and how it is delimited (chunked, or
 * *clen bytes when has_len).  Cuts b at the end of the head.  0 or -1
 * with err.
 */
static int
answer_head(const char *url, struct buf *b, struct client_answer *ans,
    size_t *off, int *chunked, int *has_len, size_t *clen, char *err,
    size_t errlen)
{
	char	 v[64], *eoh;

	if (b->len == 0 || (eoh = memmem(b->p, b->len, "\r\n\r\n", 4)) ==
	    NULL || eoh - b->p > CLIENT_MAX_HEAD || sscanf(b->p,
	    "HTTP/1.%*1[01] %3d", &ans->status) != 1 || ans->status < 100 ||
	    ans->status > 599)
		return (fail(err, errlen, -1, "%s did not answer with HTTP "
		    "(connection closed or bad status line)", url));
	*eoh = '\0';
	*off = (size_t)(eoh - b->p) + 4;
	free(ans->head);
	if ((ans->head = strdup(b->p)) == NULL)
		return (fail(err, errlen, -1, "out of memory"));
	*clen = 0;
	*chunked = head_value(b->p, "Transfer-Encoding", v, sizeof(v)) !=
	    NULL && strcasecmp(v, "chunked") == 0;
	*has_len = !*chunked && head_value(b->p, "Content-Length", v,
	    sizeof(v)) != NULL;
	if (*has_len && (strspn(v, "0123456789") != strlen(v) ||
	    v[0] == '\0' || (*clen = strtoul(v, NULL, 10)) > CLIENT_MAX_BODY))
		return (fail(err, errlen, -1, "bad Content-Length from %s",
		    url));
	return (0);
}

/* The body of an answer whose bytes are all in b, as answer_head found
 * it: de-chunked or cut to its length and handed to ans (which then owns
 * b->p).  0 or -1 with err (b untouched but for the de-chunking). */
static int
answer_body(const char *url, struct buf *b, size_t off, int chunked,
    int has_len, size_t clen, struct client_answer *ans, char *err,
    size_t errlen)
{
	if ((has_len && b->len < off + clen) || (chunked && dechunk(b, off)))
		return (fail(err, errlen, -1, "%s closed the connection before "
		    "the whole answer", url));
	if (has_len)
		b->len = off + clen;
	ans->len = b->len - off;
	memmove(b->p, b->p + off, ans->len);
	b->p[ans->len] = '\0';
	ans->body = b->p;
	return (0);
}

/*
 * A chunked body from off on, handed to stream chunk by chunk as each
 * arrives (b keeps only what is not handed over yet).  0 at the last
 * chunk, or -1 with err.
 */
static int
read_chunks(const struct ctl *ctl, SSL *ssl, struct buf *b, size_t off,
    const struct client_answer *ans, client_stream_fn stream, void *arg,
    char *err, size_t errlen)
{
	char		*p, *end, *nl;
	unsigned long	 size;
	int		 r = 0;

	for (;;) {
		p = b->p + off;
		end = b->p + b->len;
		while ((nl = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
			errno = 0;
			size = strtoul(p, NULL, 16);
			if (strchr("0123456789abcdefABCDEF", *p) == NULL ||
			    errno != 0 || size > CLIENT_MAX_BODY)
				return (fail(err, errlen, -1, "%s sent a bad "
				    "chunked answer", ctl->url));
			if (size == 0)
				return (0);
			if ((size_t)(end - nl - 2) < size + 2)
				break;
			if (nl[2 + size] != '\r' || nl[3 + size] != '\n')
				return (fail(err, errlen, -1, "%s sent a bad "
				    "chunked answer", ctl->url));
			stream(ans, nl + 2, size, arg);
			p = nl + 4 + size;
		}
		memmove(b->p + off, p, (size_t)(end - p));
		b->len = off + (size_t)(end - p);
		b->p[b->len] = '\0';
		if (r == 1)
			return (fail(err, errlen, -1, "%s closed the connection "
			    "before the whole answer", ctl->url));
		if ((r = read_more(ctl, ssl, b, b->len + 1, 0, err, errlen)) ==
		    -1)
			return (-1);
	}
}

/* Read and parse one answer into ans; a chunked body goes to stream
 * instead when one is given.  0 or -1 with err. */
static int
read_answer(const struct ctl *ctl, SSL *ssl, struct client_answer *ans,
    client_stream_fn stream, void *arg, char *err, size_t errlen)
{
	struct buf	 b = { NULL, 0, 0 };
	size_t		 off, clen;
	int		 r, chunked, has_len;

	if ((r = read_more(ctl, ssl, &b, 0, 1, err, errlen)) == -1 ||
	    answer_head(ctl->url, &b, ans, &off, &chunked, &has_len, &clen,
	    err, errlen) == -1)
		goto bad;
	if (chunked && stream != NULL) {
		if (read_chunks(ctl, ssl, &b, off, ans, stream, arg, err,
		    errlen) == -1)
			goto bad;
		b.p[0] = '\0';
		ans->body = b.p;
		ans->len = 0;
		return (0);
	}
	if (r == 0 && (r = read_more(ctl, ssl, &b, has_len ? off + clen : 0,
	    0, err, errlen)) == -1)
		goto bad;
	if (answer_body(ctl->url, &b, off, chunked, has_len, clen, ans, err,
	    errlen) == -1)
		goto bad;
	return (0);
 bad:
	free(b.p);
	return (-1);
}

/*
 * Parse a whole answer as read up to the broker's close (len bytes of data,
 * may hold NULs) exactly as client_request would: for the fuzzer and tests.
 * Fills ans (free with client_answer_free) and returns 0, or -1 with err.
 */
int
client_parse_answer(const char *data, size_t len, struct client_answer *ans,
    char *err, size_t errlen)
{
	struct buf	 b = { NULL, 0, 0 };
	size_t		 off, clen;
	int		 chunked, has_len;

	memset(ans, 0, sizeof(*ans));
	if (len > CLIENT_MAX_HEAD + CLIENT_MAX_BODY)
		return (fail(err, errlen, -1, "answer is too large"));
	if (buf_reserve(&b, len) == -1)
		return (fail(err, errlen, -1, "out of memory"));
	memcpy(b.p, data, len);
	b.len = len;
	b.p[len] = '\0';
	if (answer_head("the broker", &b, ans, &off, &chunked, &has_len,
	    &clen, err, errlen) == -1 || answer_body("the broker", &b, off,
	    chunked, has_len, clen, ans, err, errlen) == -1) {
		free(b.p);
		client_answer_free(ans);
		return (-1);
	}
	return (0);
}

/* Write the request head and body.  0 or -1 with err. */
static int
send_request(const struct ctl *ctl, SSL *ssl, const struct url *u,
    const char *method, const char *path, const char *ctype,
    const char *headers, const char *body, size_t len, char *err,
    size_t errlen)
{
	char	*head = NULL, why[256];
	int	 n, rc = 0;

	n = asprintf(&head, "%s %s%s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: toolgatectl\r\n%s"
	    "Connection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n",
	    method, u->prefix, path, u->authority,
	    headers ? headers : "Accept: application/json\r\n",
	    ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", body ? len : 0);
	if (n < 0)
		return (fail(err, errlen, -1, "out of memory"));
	errno = 0;
	if (SSL_write(ssl, head, n) != n ||
	    (body != NULL && len > 0 && SSL_write(ssl, body, (int)len) !=
	    (int)len)) {
		/* With TLS 1.3 a refused client certificate shows up only
		 * now: read the broker's alert, it says why. */
		ERR_clear_error();
		SSL_read(ssl, why, 1);
		ssl_why(why, sizeof(why));
		rc = fail(err, errlen, -1, "TLS failure talking to %s: %s%s",
		    ctl->url, why, tls_hint(why));
	}
	free(head);
	return (rc);
}

/*
 * Send one request (body may be NULL) and read the answer into ans (free
 * with client_answer_free).  Returns CTL_OK for any HTTP answer, whatever
 * its status; otherwise the exit code with a one-line reason in err:
 * CTL_USAGE for a bad URL or unusable local files, CTL_CONN for
 * connection, TLS and timeout failures.
 */
int
client_request(const struct ctl *ctl, const char *method, const char *path,
    const char *ctype, const char *body, size_t len,
    struct client_answer *ans, char *err, size_t errlen)
{
	return (client_request_headers(ctl, method, path, ctype, NULL, body,
	    len, ans, err, errlen));
}

int
client_request_headers(const struct ctl *ctl, const char *method,
    const char *path, const char *ctype, const char *headers,
    const char *body, size_t len, struct client_answer *ans, char *err,
    size_t errlen)
{
	return (client_request_stream(ctl, method, path, ctype, headers, body,
	    len, NULL, NULL, ans, err, errlen));
}

int
client_request_stream(const struct ctl *ctl, const char *method,
    const char *path, const char *ctype, const char *headers,
    const char *body, size_t len, client_stream_fn stream, void *arg,
    struct client_answer *ans, char *err, size_t errlen)
{
	struct url	 u;
	SSL_CTX		*ctx = NULL;
	SSL		*ssl = NULL;
	int		 fd = -1, rc = CTL_CONN;

	memset(ans, 0, sizeof(*ans));
	if (url_parse(ctl->url, &u) == -1)
		return (fail(err, errlen, CTL_USAGE, "bad URL '%s' (want "
		    "https://HOST[:PORT])", ctl->url));
	if (len > INT32_MAX)
		return (fail(err, errlen, CTL_FAIL, "request too large"));
	if ((ctx = tls_ctx(ctl, err, errlen)) == NULL)
		return (CTL_USAGE);
	if ((fd = tcp_connect(ctl, &u, err, errlen)) == -1)
		goto done;
	if ((ssl = SSL_new(ctx)) == NULL) {
		fail(err, errlen, 0, "out of memory");
		goto done;
	}
	if (tls_open(ctl, ssl, fd, &u, err, errlen) == -1 ||
	    send_request(ctl, ssl, &u, method, path, ctype, headers, body, len,
	    err, errlen) == -1 || read_answer(ctl, ssl, ans, stream, arg, err,
	    errlen) == -1)
		goto done;
	rc = CTL_OK;
 done:
	if (rc != CTL_OK)
		client_answer_free(ans);
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd != -1)
		close(fd);
	SSL_CTX_free(ctx);
	return (rc);
}

void
client_answer_free(struct client_answer *ans)
{
	free(ans->body);
	free(ans->head);
	ans->body = NULL;
	ans->head = NULL;
	ans->len = 0;
}

const char *
client_answer_header(const struct client_answer *ans, const char *name,
    char *out, size_t outlen)
{
	return (ans->head ? head_value(ans->head, name, out, outlen) : NULL);
}
