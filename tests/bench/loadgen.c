/*
 * loadgen: the load generator of issue 5.  Drives an HTTPS (mutual TLS)
 * server on a loopback address with pre-built requests and measures what
 * it answers: throughput, a latency histogram and every unexpected status.
 *
 * Modes:
 *   closed loop   each connection sends its next request when the previous
 *                 answer arrived (maximum throughput);
 *   open loop     each connection has a fixed schedule (rate / connections
 *                 per second); latency is counted from the INTENDED send
 *                 time, so a busy connection queues and the wait shows;
 *   --new-conn    a fresh TLS connection per request (closed loop), with
 *                 --resume offering the last session ticket;
 *   --idle K      open K connections, report when all are up, hold them.
 *
 * Requests are intents for POST /v1/intents (compact JWS ES256 signed with
 * --key, unique jti each) in a mix of allow / pending / deny kinds, one
 * fixed GET (--get PATH), or one fixed MCP tools/call (--mcp TOOL: POST to
 * the URL's path in an MCP session opened before the run, over https or,
 * for an upstream MCP server itself, plain http; CONTRACT §9).  All
 * intents are signed before the measured phase: signing is never on the
 * measured path.  The expected status of each kind is 200 / 202 / 403 (200
 * for --get and --mcp, whose answer must also be a JSON-RPC result that is
 * not isError); anything else, a dropped connection or a request
 * unanswered at the end of the grace period is an error.
 *
 * It owns nothing of the broker and only links toolgate-core for the JOSE
 * helpers (jose_sign_compact, jose_load_private_key).  Bounded: it stops by
 * itself after --duration or --requests and refuses non-loopback targets.
 */

#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "jose.h"

#define NS		1000000000ULL
#define MAX_THREADS	64
#define MAX_HDR		(64 * 1024)
#define IDLE_BATCH	128	/* handshakes in flight per thread, --idle */
#define MCP_BODY_MAX	(64 * 1024)	/* an MCP answer we read whole */
#define MCP_PROTOCOL	"2025-06-18"

/* Log-linear histogram in microseconds: values below 2*SUB exact, above
 * that SUB buckets per power of two, so the relative error is <= 1/SUB. */
#define HIST_SUB	128
#define HIST_SHIFTS	40
#define HIST_BUCKETS	((HIST_SHIFTS + 2) * HIST_SUB)

enum kind { K_ALLOW, K_PENDING, K_DENY, K_GET, K_MCP, K__N };
static const char *kind_name[K__N] = { "allow", "pending", "deny", "get",
    "mcp" };
static const int kind_status[K__N] = { 200, 202, 403, 200, 200 };

enum mode { M_CLOSED, M_OPEN };

struct options {
	const char	*url, *ca, *cert, *key, *iss, *get, *aud, *mcp;
	char		 host[64];
	const char	*path;		/* the URL's, "/" when it has none */
	int		 port, tls;
	int		 conns, threads, mode, new_conn, resume, idle;
	double		 duration, warmup, rate, grace;
	long		 requests;	/* 0 = run for --duration */
	long		 presign;	/* 0 = estimate */
	int		 mix[3];	/* allow, pending, deny weights */
	int		 expect;	/* --get's expected status */
	int		 quiet, verbose;
} opt = {
	.conns = 64, .threads = 1, .mode = M_CLOSED, .duration = 10,
	.grace = 5, .mix = { 100, 0, 0 }, .expect = 200, .aud = "toolgate",
};

struct req {
	char		*buf;
	uint32_t	 len;
	uint8_t		 kind;
};

struct hist {
	uint64_t	 c[HIST_BUCKETS];
	uint64_t	 n, max;
};

struct worker;

struct conn {
	struct worker		*w;
	struct bufferevent	*bev;
	struct event		*tick;		/* open loop schedule */
	int			 up;		/* handshake done */
	int			 busy;		/* a request is in flight */
	int			 dead;		/* retired (end of run) */
	/* in-flight request */
	uint64_t		 t_start;	/* intended (open) or sent time */
	int			 kind;
	int			 counted;	/* inside the measured window */
	/* response parser */
	int			 hdr_done, status, close_after;
	size_t			 body_left;
	struct evbuffer		*body;		/* --mcp: the answer so far */
	int			 bad;		/* --mcp: not a plain result */
	/* open loop queue of intended send times */
	uint64_t		*q;
	size_t			 qhead, qlen, qcap;
	uint64_t		 next_at, interval;
	uint64_t		 t_conn;	/* --new-conn: connect time */
};

struct worker {
	int			 id;
	pthread_t		 tid;
	struct event_base	*base;
	struct conn		*conns;
	int			 nconns;
	struct event		*ender, *poll;
	SSL_SESSION		*session;	/* --resume: last ticket */
	int			 started;	/* past the start barrier */
	int			 ending;	/* measured phase over */
	int			 grace_armed;
	int			 nready;	/* connections up before start */
	int			 idle_started, idle_up, idle_failed, idle_lost;
	struct hist		 h;
	uint64_t		 ok, errors, timeouts, conn_errors, drops, bad;
	uint64_t		 by_status[600], by_kind[K__N];
	uint64_t		 handshakes, resumed;
	uint64_t		 last_done;
};

static SSL_CTX		*ctx;
static struct sockaddr_in target;
static struct req	*pool;
static size_t		 pool_len;
static size_t		 pool_next;	/* atomic */
static int		 pool_dry;	/* atomic: ran out */
static long		 issued;	/* atomic, --requests */
static struct req	 get_req;
static uint64_t		 t0, t_measure, t_end, t_grace;
static int		 ready_count;	/* atomic */
static int		 idle_release;	/* atomic: --idle hold is over */
static pthread_barrier_t bar_ready, bar_go;
static int		 ssl_ex_conn;
static struct worker	 workers[MAX_THREADS];

static void	conn_open(struct conn *);
static void	conn_send(struct conn *);
static void	idle_next(struct worker *);

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
die_ssl(const char *what)
{
	char	 buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	die("%s: %s", what, buf);
}

/* -------------------------------------------------------------------- */
/* Histogram */

static int
hist_index(uint64_t v)
{
	int	 msb, shift;

	if (v < 2 * HIST_SUB)
		return ((int)v);
	msb = 63 - __builtin_clzll(v);
	shift = msb - 7;		/* keep the top 8 bits */
	if (shift > HIST_SHIFTS)
		return (HIST_BUCKETS - 1);
	return (shift * HIST_SUB + (int)(v >> shift));
}

/* Highest value that falls in bucket i. */
static uint64_t
hist_upper(int i)
{
	int	 shift;

	if (i < 2 * HIST_SUB)
		return ((uint64_t)i);
	shift = i / HIST_SUB - 1;
	return ((((uint64_t)(i - shift * HIST_SUB)) << shift) +
	    ((1ULL << shift) - 1));
}

static void
hist_add(struct hist *h, uint64_t ns)
{
	uint64_t	 us = (ns + 999) / 1000;

	h->c[hist_index(us)]++;
	h->n++;
	if (us > h->max)
		h->max = us;
}

static void
hist_merge(struct hist *into, const struct hist *from)
{
	int	 i;

	for (i = 0; i < HIST_BUCKETS; i++)
		into->c[i] += from->c[i];
	into->n += from->n;
	if (from->max > into->max)
		into->max = from->max;
}

/* Value (µs) at quantile q in [0, 1]. */
static uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	 want, seen = 0, v;
	int		 i;

	if (h->n == 0)
		return (0);
	want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->c[i];
		if (seen >= want) {
			v = hist_upper(i);
			return (v > h->max ? h->max : v);
		}
	}
	return (h->max);
}

/* -------------------------------------------------------------------- */
/* Requests */

static int
kind_of(uint64_t *rng)
{
	int	 total = opt.mix[0] + opt.mix[1] + opt.mix[2], r, k;

	/* xorshift64: a fixed sequence, so runs are comparable */
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	r = (int)(*rng % (uint64_t)total);
	for (k = 0; k < 3; k++) {
		if (r < opt.mix[k])
			return (k);
		r -= opt.mix[k];
	}
	return (K_ALLOW);
}

/* extra: more header lines, each ending in CRLF, or NULL. */
static char *
http_request(const char *method, const char *path, const char *ctype,
    const char *extra, const char *body, uint32_t *len)
{
	char	*buf;
	int	 n;

	if (extra == NULL)
		extra = "";
	if (body != NULL)
		n = asprintf(&buf, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n"
		    "Content-Type: %s\r\n%sContent-Length: %zu\r\n\r\n%s",
		    method, path, opt.host, opt.port, ctype, extra,
		    strlen(body), body);
	else
		n = asprintf(&buf, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n"
		    "%s\r\n", method, path, opt.host, opt.port, extra);
	if (n < 0)
		die("out of memory");
	*len = (uint32_t)n;
	return (buf);
}

struct signer {
	pthread_t	 tid;
	EVP_PKEY	*pkey;
	const char	*iss;
	size_t		 from, to;
	long		 epoch;
	int		 fail;
};

static void *
signer_main(void *arg)
{
	struct signer	*s = arg;
	json_t		*hdr;
	char		 payload[512], *jws;
	size_t		 i;
	int		 n;
	long		 iat = (long)time(NULL);

	hdr = json_pack("{ss ss}", "alg", "ES256", "typ", "JWT");
	for (i = s->from; i < s->to; i++) {
		switch (pool[i].kind) {
		case K_PENDING:
			n = snprintf(payload, sizeof(payload),
			    "{\"iss\":\"%s\",\"aud\":\"%s\",\"jti\":"
			    "\"lg-%ld-%d-%zu\",\"iat\":%ld,\"exp\":%ld,"
			    "\"tool\":\"payments.transfer\",\"args\":"
			    "{\"to\":\"acct-%zu\",\"amount\":\"5000.00\","
			    "\"currency\":\"USD\"},\"amount\":{\"value\":"
			    "\"5000.00\",\"currency\":\"USD\"},\"reason\":"
			    "\"load test\"}", s->iss, opt.aud, s->epoch,
			    (int)getpid(), i, iat, iat + 300, i % 1000);
			break;
		case K_DENY:
			n = snprintf(payload, sizeof(payload),
			    "{\"iss\":\"%s\",\"aud\":\"%s\",\"jti\":"
			    "\"lg-%ld-%d-%zu\",\"iat\":%ld,\"exp\":%ld,"
			    "\"tool\":\"email.send\",\"args\":{\"to\":"
			    "\"someone@example.com\"}}", s->iss, opt.aud,
			    s->epoch, (int)getpid(), i, iat, iat + 300);
			break;
		default:
			n = snprintf(payload, sizeof(payload),
			    "{\"iss\":\"%s\",\"aud\":\"%s\",\"jti\":"
			    "\"lg-%ld-%d-%zu\",\"iat\":%ld,\"exp\":%ld,"
			    "\"tool\":\"crm.lookup\",\"args\":{\"customer\":"
			    "\"c-%zu\"}}", s->iss, opt.aud, s->epoch,
			    (int)getpid(), i, iat, iat + 300, i % 1000);
			break;
		}
		if (n < 0 || (size_t)n >= sizeof(payload) || (jws =
		    jose_sign_compact(s->pkey, JOSE_ES256, hdr, payload,
		    (size_t)n)) == NULL) {
			s->fail = 1;
			break;
		}
		pool[i].buf = http_request("POST", "/v1/intents",
		    "application/jose", NULL, jws, &pool[i].len);
		free(jws);
	}
	json_decref(hdr);
	return (NULL);
}

/* The caller's identity as the broker sees it: first URI SAN, else CN. */
static char *
cert_identity(const char *path)
{
	FILE			*f;
	X509			*x;
	GENERAL_NAMES		*sans;
	const GENERAL_NAME	*gn;
	char			 cn[256], *out = NULL;
	int			 i;

	if ((f = fopen(path, "r")) == NULL)
		die("cannot read %s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		die("%s: not a PEM certificate", path);
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type == GEN_URI) {
			out = strndup((const char *)ASN1_STRING_get0_data(
			    gn->d.uniformResourceIdentifier),
			    (size_t)ASN1_STRING_length(
			    gn->d.uniformResourceIdentifier));
			break;
		}
	}
	GENERAL_NAMES_free(sans);
	if (out == NULL && X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof(cn)) > 0)
		out = strdup(cn);
	X509_free(x);
	if (out == NULL)
		die("%s: no identity (URI SAN or CN)", path);
	return (out);
}

/* Decisions/s this machine could at most reach: every intent is at least
 * one ES256 verification, spread over all cores. */
static double
verify_ceiling(EVP_PKEY *pkey)
{
	unsigned char	 md[32] = { 1 }, sig[80];
	size_t		 siglen = sizeof(sig);
	EVP_PKEY_CTX	*pc;
	uint64_t	 t;
	int		 i, n = 200;
	long		 cores = sysconf(_SC_NPROCESSORS_ONLN);

	pc = EVP_PKEY_CTX_new(pkey, NULL);
	if (pc == NULL || EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_sign(pc, sig, &siglen, md, sizeof(md)) != 1 ||
	    EVP_PKEY_verify_init(pc) != 1)
		die_ssl("verify_ceiling");
	t = now_ns();
	for (i = 0; i < n; i++)
		if (EVP_PKEY_verify(pc, sig, siglen, md, sizeof(md)) != 1)
			die_ssl("verify_ceiling");
	t = now_ns() - t;
	EVP_PKEY_CTX_free(pc);
	return ((double)(cores < 1 ? 1 : cores) * n * (double)NS /
	    (double)(t ? t : 1));
}

/* -------------------------------------------------------------------- */
/* --mcp: the session, opened before the run on connections of its own */

/* An MCP POST of body to the URL's path, in session sid ("" before
 * initialize has given one). */
static char *
mcp_request(const char *sid, const char *body, uint32_t *len)
{
	char	 extra[512];

	snprintf(extra, sizeof(extra), "Accept: application/json, "
	    "text/event-stream\r\n%s%s%s", *sid ? "Mcp-Session-Id: " : "",
	    sid, *sid ? "\r\nMcp-Protocol-Version: " MCP_PROTOCOL "\r\n" :
	    "");
	return (http_request("POST", opt.path, "application/json", extra,
	    body, len));
}

/* The value of header name in the header block h ("" when absent). */
static void
header_value(const char *h, const char *name, char *out, size_t outlen)
{
	const char	*p;
	size_t		 n, len = strlen(name);

	out[0] = '\0';
	for (p = strstr(h, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, len) != 0 || p[len] != ':')
			continue;
		p += len + 1;
		p += strspn(p, " \t");
		n = strcspn(p, "\r\n");
		if (n < outlen)
			snprintf(out, outlen, "%.*s", (int)n, p);
		return;
	}
}

/* A blocking connection (TLS when the target is) for one exchange. */
static int
sync_io(SSL **ssl)
{
	int	 fd;

	*ssl = NULL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&target, sizeof(target)) == -1)
		die("cannot connect to %s: %s", opt.url, strerror(errno));
	if (opt.tls && ((*ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_fd(*ssl, fd) != 1 || SSL_connect(*ssl) != 1))
		die_ssl("TLS handshake");
	return (fd);
}

/*
 * Send req on a connection of its own and read the answer whole (bounded:
 * MCP_BODY_MAX); its status, with the header block in head and the body
 * in body (both NUL-terminated).
 */
static int
sync_exchange(const char *req, uint32_t len, char *head, size_t headlen,
    char *body, size_t bodylen)
{
	static char	 buf[MAX_HDR + MCP_BODY_MAX];
	SSL		*ssl;
	char		*end;
	size_t		 got = 0, need = 0, hl = 0;
	int		 fd = sync_io(&ssl), n, status = 0;

	if ((ssl ? SSL_write(ssl, req, (int)len) : (int)write(fd, req, len))
	    != (int)len)
		die("%s: cannot send", opt.url);
	for (;;) {
		n = ssl ? SSL_read(ssl, buf + got, (int)(sizeof(buf) - got -
		    1)) : (int)read(fd, buf + got, sizeof(buf) - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (hl == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			hl = (size_t)(end - buf) + 4;
			header_value(buf, "Content-Length", head, headlen);
			need = hl + strtoul(head, NULL, 10);
		}
		if ((hl > 0 && got >= need) || got == sizeof(buf) - 1)
			break;
	}
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
	if (hl == 0 || got < need || sscanf(buf, "HTTP/1.%*d %d", &status)
	    != 1)
		die("%s: no complete HTTP answer", opt.url);
	snprintf(head, headlen, "%.*s", (int)hl, buf);
	snprintf(body, bodylen, "%.*s", (int)(need - hl), buf + hl);
	return (status);
}

/* A JSON-RPC result that is not a tool's isError: what a call should get. */
static int
mcp_result_ok(const char *text, size_t len)
{
	json_t	*m = json_loadb(text, len, 0, NULL), *r;
	int	 ok;

	r = json_object_get(m, "result");
	ok = json_is_object(r) && !json_is_true(json_object_get(r, "isError"));
	json_decref(m);
	return (ok);
}

/*
 * initialize and notifications/initialized, then the call itself until it
 * succeeds (a gateway lists an upstream's tools once it has read them):
 * the request every connection sends, in that session.
 */
static void
mcp_setup(void)
{
	static const char init[] = "{\"jsonrpc\":\"2.0\",\"id\":0,"
	    "\"method\":\"initialize\",\"params\":{\"protocolVersion\":\""
	    MCP_PROTOCOL "\",\"capabilities\":{},\"clientInfo\":{\"name\":"
	    "\"loadgen\",\"version\":\"1\"}}}";
	static const char inited[] = "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"notifications/initialized\"}";
	static char	 head[MAX_HDR], body[MCP_BODY_MAX];
	char		 sid[256], call[512], *req;
	uint32_t	 len;
	int		 st, tries;

	req = mcp_request("", init, &len);
	st = sync_exchange(req, len, head, sizeof(head), body, sizeof(body));
	free(req);
	header_value(head, "Mcp-Session-Id", sid, sizeof(sid));
	if (st != 200 || !mcp_result_ok(body, strlen(body)))
		die("%s: initialize answered %d: %.200s", opt.url, st, body);
	req = mcp_request(sid, inited, &len);
	if ((st = sync_exchange(req, len, head, sizeof(head), body,
	    sizeof(body))) / 100 != 2)
		die("%s: notifications/initialized answered %d", opt.url, st);
	free(req);
	snprintf(call, sizeof(call), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
	    "\"arguments\":{\"id\":\"c-1\"}}}", opt.mcp);
	get_req.buf = mcp_request(sid, call, &get_req.len);
	get_req.kind = K_MCP;
	for (tries = 0;; tries++) {
		st = sync_exchange(get_req.buf, get_req.len, head,
		    sizeof(head), body, sizeof(body));
		if (st == 200 && mcp_result_ok(body, strlen(body)))
			return;
		if (tries == 300)
			die("%s: tools/call %s answered %d: %.300s", opt.url,
			    opt.mcp, st, body);
		usleep(100000);
	}
}

static void
build_pool(void)
{
	struct signer	 s[MAX_THREADS];
	EVP_PKEY	*pkey;
	const char	*why = NULL;
	char		*iss;
	uint64_t	 rng = 0x9e3779b97f4a7c15ULL, t;
	size_t		 i, per;
	int		 j, nsig;
	long		 cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (opt.get != NULL) {
		get_req.buf = http_request("GET", opt.get, NULL, NULL, NULL,
		    &get_req.len);
		get_req.kind = K_GET;
		return;
	}
	if ((pkey = jose_load_private_key(opt.key, &why)) == NULL)
		die("%s: %s", opt.key, why ? why : "cannot load key");
	if (jose_alg_for_key(pkey) != JOSE_ES256)
		die("%s: the load generator signs ES256 only (EC P-256)",
		    opt.key);
	iss = opt.iss ? strdup(opt.iss) : cert_identity(opt.cert);
	if (opt.presign > 0)
		pool_len = (size_t)opt.presign;
	else if (opt.requests > 0)
		pool_len = (size_t)opt.requests;
	else if (opt.idle > 0)
		pool_len = 0;
	else if (opt.mode == M_OPEN)
		pool_len = (size_t)(opt.rate * (opt.warmup + opt.duration) *
		    1.02) + (size_t)opt.conns * 4 + 16;
	else
		/* No server can answer faster than it verifies. */
		pool_len = (size_t)(verify_ceiling(pkey) * 1.1 *
		    (opt.warmup + opt.duration)) + (size_t)opt.conns * 4;
	if (pool_len == 0) {
		EVP_PKEY_free(pkey);
		free(iss);
		return;
	}
	if ((pool = calloc(pool_len, sizeof(*pool))) == NULL)
		die("out of memory for %zu requests", pool_len);
	for (i = 0; i < pool_len; i++)
		pool[i].kind = (uint8_t)kind_of(&rng);
	nsig = (int)(cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS :
	    cores);
	per = (pool_len + (size_t)nsig - 1) / (size_t)nsig;
	t = now_ns();
	for (j = 0; j < nsig; j++) {
		s[j] = (struct signer){ .pkey = pkey, .iss = iss,
		    .from = (size_t)j * per, .epoch = (long)time(NULL) };
		s[j].to = s[j].from + per > pool_len ? pool_len :
		    s[j].from + per;
		if (s[j].from > s[j].to)
			s[j].from = s[j].to;
		if (pthread_create(&s[j].tid, NULL, signer_main, &s[j]) != 0)
			die("pthread_create");
	}
	for (j = 0; j < nsig; j++) {
		pthread_join(s[j].tid, NULL);
		if (s[j].fail)
			die_ssl("signing intents");
	}
	if (!opt.quiet)
		fprintf(stderr, "loadgen: pre-signed %zu intents as %s in "
		    "%.2f s\n", pool_len, iss, (double)(now_ns() - t) / NS);
	EVP_PKEY_free(pkey);
	free(iss);
}

/* Next request for this worker, or NULL when none is left. */
static struct req *
next_request(void)
{
	size_t	 i;

	if (opt.requests > 0 && __atomic_fetch_add(&issued, 1,
	    __ATOMIC_RELAXED) >= opt.requests)
		return (NULL);
	if (opt.get != NULL || opt.mcp != NULL)
		return (&get_req);
	i = __atomic_fetch_add(&pool_next, 1, __ATOMIC_RELAXED);
	if (i >= pool_len) {
		__atomic_store_n(&pool_dry, 1, __ATOMIC_RELAXED);
		return (NULL);
	}
	return (&pool[i]);
}

/* -------------------------------------------------------------------- */
/* Connections */

static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct conn	*c = SSL_get_ex_data(ssl, ssl_ex_conn);

	if (c == NULL || !opt.resume)
		return (0);
	if (c->w->session != NULL)
		SSL_SESSION_free(c->w->session);
	c->w->session = sess;
	return (1);	/* we keep the reference */
}

static void
conn_close(struct conn *c)
{
	SSL	*ssl;

	if (c->bev != NULL) {
		/* A clean close_notify keeps the session resumable. */
		if ((ssl = bufferevent_openssl_get_ssl(c->bev)) != NULL &&
		    c->up)
			SSL_shutdown(ssl);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->body != NULL)
		evbuffer_drain(c->body, evbuffer_get_length(c->body));
	c->up = 0;
	c->hdr_done = 0;
	c->close_after = 0;
}

static int
run_over(struct worker *w)
{
	if (w->ending)
		return (1);
	if (opt.idle)
		return (0);
	if (opt.requests > 0)
		w->ending = __atomic_load_n(&issued, __ATOMIC_RELAXED) >=
		    opt.requests;
	else
		w->ending = now_ns() >= t_end;
	if (__atomic_load_n(&pool_dry, __ATOMIC_RELAXED))
		w->ending = 1;
	return (w->ending);
}

/* Stop the loop once no connection has work left. */
static void
worker_maybe_done(struct worker *w)
{
	int	 i;

	if (!w->ending)
		return;
	for (i = 0; i < w->nconns; i++)
		if (w->conns[i].busy || w->conns[i].qlen > 0)
			return;
	event_base_loopbreak(w->base);
}

static void
record(struct conn *c, int status)
{
	struct worker	*w = c->w;
	uint64_t	 t = now_ns();

	c->busy = 0;
	if (c->bad) {
		c->bad = 0;
		if (c->counted) {
			w->bad++;
			status = 0;	/* an error, whatever its status */
		}
	}
	if (!c->counted)
		return;
	w->last_done = t;
	hist_add(&w->h, t - c->t_start);
	w->by_kind[c->kind]++;
	if (status > 0 && status < 600)
		w->by_status[status]++;
	if (status == kind_status[c->kind] || (c->kind == K_GET &&
	    status == opt.expect))
		w->ok++;
	else
		w->errors++;
}

/* The connection failed: count what was in flight, then reconnect. */
static void
conn_fail(struct conn *c)
{
	struct worker	*w = c->w;

	if (!w->started && !opt.idle && !opt.new_conn)
		die("cannot connect to %s (TLS handshake or connection "
		    "failed)", opt.url);
	w->conn_errors++;
	if (!c->busy)
		w->drops++;	/* the server hung up between requests */
	if (c->busy) {
		record(c, 0);
		if (opt.mode == M_OPEN && c->qlen > 0) {
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
		}
	}
	conn_close(c);
	if (opt.idle) {
		if (c->t_conn != 0) {
			w->idle_failed++;	/* never got established */
			idle_next(w);
		} else {
			w->idle_lost++;		/* dropped while held */
		}
		c->dead = 1;
		return;
	}
	if (run_over(w) && c->qlen == 0) {
		worker_maybe_done(w);
		return;
	}
	conn_open(c);
}

/* n bytes of the body: kept for an MCP answer (up to MCP_BODY_MAX),
 * dropped otherwise. */
static void
conn_take_body(struct conn *c, struct evbuffer *in, size_t n)
{
	if (c->kind != K_MCP || c->bad) {
		evbuffer_drain(in, n);
		return;
	}
	if (c->body == NULL && (c->body = evbuffer_new()) == NULL)
		die("out of memory");
	if (evbuffer_get_length(c->body) + n > MCP_BODY_MAX) {
		c->bad = 1;
		evbuffer_drain(in, n);
		return;
	}
	evbuffer_remove_buffer(in, c->body, n);
}

/* A whole MCP answer: bad unless it is the tool's plain result. */
static void
conn_judge_mcp(struct conn *c)
{
	size_t	 n = c->body != NULL ? evbuffer_get_length(c->body) : 0;

	if (!c->bad && (n == 0 || !mcp_result_ok((const char *)
	    evbuffer_pullup(c->body, -1), n)))
		c->bad = 1;
	if (c->body != NULL)
		evbuffer_drain(c->body, n);
}

/* Parse as much of the answer as is there; 1 when it is complete. */
static int
conn_parse(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr	 p;
	char			*h, *line, *save, *v;
	size_t			 hlen, avail;

	if (!c->hdr_done) {
		p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) > MAX_HDR)
				return (-1);
			return (0);
		}
		hlen = (size_t)p.pos + 4;
		if ((h = malloc(hlen + 1)) == NULL)
			return (-1);
		evbuffer_remove(in, h, hlen);
		h[hlen] = '\0';
		c->status = 0;
		c->body_left = 0;
		c->close_after = 0;
		line = strtok_r(h, "\r\n", &save);
		if (line == NULL || strncmp(line, "HTTP/1.", 7) != 0 ||
		    strlen(line) < 12) {
			free(h);
			return (-1);
		}
		c->status = atoi(line + 9);
		if (strncmp(line, "HTTP/1.0", 8) == 0)
			c->close_after = 1;
		while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
			if ((v = strchr(line, ':')) == NULL)
				continue;
			*v++ = '\0';
			v += strspn(v, " \t");
			if (strcasecmp(line, "Content-Length") == 0)
				c->body_left = strtoul(v, NULL, 10);
			else if (strcasecmp(line, "Connection") == 0 &&
			    strncasecmp(v, "close", 5) == 0)
				c->close_after = 1;
			else if (strcasecmp(line, "Transfer-Encoding") == 0) {
				free(h);
				return (-1);	/* not needed here */
			}
		}
		free(h);
		c->hdr_done = 1;
	}
	avail = evbuffer_get_length(in);
	if (avail < c->body_left) {
		conn_take_body(c, in, avail);
		c->body_left -= avail;
		return (0);
	}
	conn_take_body(c, in, c->body_left);
	c->body_left = 0;
	c->hdr_done = 0;
	if (c->kind == K_MCP)
		conn_judge_mcp(c);
	return (1);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct worker	*w = c->w;
	int		 r;

	r = conn_parse(c, bufferevent_get_input(bev));
	if (r == 0)
		return;
	if (r == -1 || !c->busy) {
		conn_fail(c);
		return;
	}
	record(c, c->status);
	if (opt.idle) {
		if (!c->dead && c->t_conn != 0) {
			c->t_conn = 0;
			if (c->status == opt.expect) {
				w->idle_up++;
				__atomic_fetch_add(&ready_count, 1,
				    __ATOMIC_RELAXED);
			} else {
				w->errors++;
				w->idle_failed++;
				conn_close(c);
				c->dead = 1;
			}
			idle_next(w);
		}
		return;
	}
	if (opt.mode == M_OPEN) {
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	if (opt.new_conn || c->close_after) {
		conn_close(c);
		if (run_over(w) && c->qlen == 0) {
			worker_maybe_done(w);
			return;
		}
		conn_open(c);
		return;
	}
	if (opt.mode == M_OPEN) {
		if (c->qlen > 0)
			conn_send(c);
		else
			worker_maybe_done(w);
		return;
	}
	if (run_over(w)) {
		worker_maybe_done(w);
		return;
	}
	conn_send(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	struct worker	*w = c->w;
	SSL		*ssl;
	int		 fd, one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		c->up = 1;
		fd = bufferevent_getfd(bev);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ssl = bufferevent_openssl_get_ssl(bev);
		w->handshakes++;
		if (ssl != NULL && SSL_session_reused(ssl))
			w->resumed++;
		if (opt.idle) {
			if (opt.get != NULL) {
				c->kind = K_GET;
				c->counted = 0;
				c->busy = 1;
				bufferevent_write(bev, get_req.buf,
				    get_req.len);
			} else {
				c->t_conn = 0;	/* established */
				w->idle_up++;
				__atomic_fetch_add(&ready_count, 1,
				    __ATOMIC_RELAXED);
			}
			idle_next(w);
			return;
		}
		if (!opt.new_conn && !w->started) {
			w->nready++;
			return;
		}
		/* A reconnect during the run, or --new-conn. */
		if (opt.new_conn || opt.mode == M_CLOSED || c->qlen > 0)
			conn_send(c);
		else
			worker_maybe_done(w);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		if (opt.verbose)
			fprintf(stderr, "loadgen: connection %s (%s, %s)\n",
			    what & BEV_EVENT_EOF ? "closed by the server" :
			    "failed", c->busy ? "request in flight" : "idle",
			    c->up ? "after the handshake" : "in the handshake");
		conn_fail(c);
	}
}

static void
conn_open(struct conn *c)
{
	struct worker	*w = c->w;
	SSL		*ssl;
	int		 fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (!opt.tls) {
		if ((c->bev = bufferevent_socket_new(w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL)
			die("bufferevent_socket_new");
	} else {
		if ((ssl = SSL_new(ctx)) == NULL)
			die_ssl("SSL_new");
		SSL_set_ex_data(ssl, ssl_ex_conn, c);
		if (opt.resume && w->session != NULL)
			SSL_set_session(ssl, w->session);
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL)
			die("bufferevent_openssl_socket_new");
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	}
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->t_conn = now_ns();
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&target,
	    sizeof(target)) == -1)
		conn_fail(c);
}

static void
conn_send(struct conn *c)
{
	struct worker	*w = c->w;
	struct req	*r;
	uint64_t	 t;

	if (c->busy || !c->up)
		return;
	if ((r = next_request()) == NULL) {
		/* Nothing left to send: drop what is queued. */
		c->qlen = 0;
		w->ending = 1;
		worker_maybe_done(w);
		return;
	}
	t = now_ns();
	if (opt.mode == M_OPEN)
		c->t_start = c->q[c->qhead];
	else if (opt.new_conn)
		c->t_start = c->t_conn;
	else
		c->t_start = t;
	c->counted = c->t_start >= t_measure;
	c->kind = r->kind;
	c->busy = 1;
	bufferevent_write(c->bev, r->buf, r->len);
}

/* Open loop: queue every tick that is due and send if idle. */
static void
conn_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct worker	*w = c->w;
	uint64_t	 t = now_ns(), wait;
	struct timeval	 tv;

	while (c->next_at <= t && c->next_at < t_end) {
		if (c->qlen == c->qcap) {
			uint64_t	*nq;
			size_t		 i, ncap = c->qcap * 2;

			if ((nq = malloc(ncap * sizeof(*nq))) == NULL)
				die("out of memory");
			for (i = 0; i < c->qlen; i++)
				nq[i] = c->q[(c->qhead + i) % c->qcap];
			free(c->q);
			c->q = nq;
			c->qhead = 0;
			c->qcap = ncap;
		}
		c->q[(c->qhead + c->qlen) % c->qcap] = c->next_at;
		c->qlen++;
		c->next_at += c->interval;
	}
	if (c->qlen > 0 && !c->busy && c->up)
		conn_send(c);
	if (c->next_at >= t_end)
		return;
	wait = c->next_at - t;
	tv.tv_sec = (time_t)(wait / NS);
	tv.tv_usec = (suseconds_t)((wait % NS) / 1000);
	evtimer_add(c->tick, &tv);
	(void)w;
}

/* End of the measured phase: stop issuing; the grace timer follows. */
static void
worker_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct timeval	 tv;
	uint64_t	 t = now_ns();
	int		 i;

	if (!w->grace_armed && t < t_grace) {
		w->grace_armed = 1;
		w->ending = 1;
		tv.tv_sec = (time_t)((t_grace - t) / NS);
		tv.tv_usec = (suseconds_t)(((t_grace - t) % NS) / 1000);
		evtimer_add(w->ender, &tv);
		worker_maybe_done(w);
		return;
	}
	/* Grace is over: whatever is unanswered is an error. */
	for (i = 0; i < w->nconns; i++) {
		struct conn	*c = &w->conns[i];

		if (c->busy) {
			w->timeouts++;
			record(c, 0);
		}
		if (opt.mode == M_OPEN)
			for (; c->qlen > 0; c->qlen--) {
				c->t_start = c->q[c->qhead];
				c->qhead = (c->qhead + 1) % c->qcap;
				c->counted = c->t_start >= t_measure;
				c->busy = 1;
				w->timeouts++;
				record(c, 0);
			}
	}
	event_base_loopbreak(w->base);
}

/* --idle: keep IDLE_BATCH handshakes in flight until all are started. */
static void
idle_next(struct worker *w)
{
	int	 inflight;

	for (;;) {
		inflight = w->idle_started - w->idle_up - w->idle_failed;
		if (w->idle_started >= w->nconns || inflight >= IDLE_BATCH)
			return;
		conn_open(&w->conns[w->idle_started++]);
	}
}

static void
idle_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	if (__atomic_load_n(&idle_release, __ATOMIC_RELAXED))
		event_base_loopbreak(w->base);
}

static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct event_config	*cfg;
	struct timeval		 tv;
	uint64_t		 t;
	int			 i;

	if ((cfg = event_config_new()) == NULL)
		die("event_config_new");
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER |
	    EVENT_BASE_FLAG_NOLOCK);
	if ((w->base = event_base_new_with_config(cfg)) == NULL)
		die("event_base_new");
	event_config_free(cfg);
	for (i = 0; i < w->nconns; i++)
		w->conns[i].w = w;

	if (opt.idle) {
		w->poll = event_new(w->base, -1, EV_PERSIST, idle_poll_cb, w);
		tv.tv_sec = 0;
		tv.tv_usec = 50000;
		event_add(w->poll, &tv);
		idle_next(w);
		event_base_dispatch(w->base);
		goto out;
	}

	/* Keep-alive modes connect first; the clock starts once all are up. */
	if (!opt.new_conn) {
		for (i = 0; i < w->nconns; i++) {
			w->conns[i].qcap = 16;
			if ((w->conns[i].q = calloc(16, sizeof(uint64_t))) ==
			    NULL)
				die("out of memory");
			conn_open(&w->conns[i]);
		}
		/* The clock starts once every handshake is done. */
		t = now_ns() + 30 * NS;
		while (w->nready < w->nconns && now_ns() < t)
			event_base_loop(w->base, EVLOOP_ONCE);
		if (w->nready < w->nconns)
			die("only %d of %d connections came up in 30 s",
			    w->nready, w->nconns);
	}
	pthread_barrier_wait(&bar_ready);
	pthread_barrier_wait(&bar_go);
	w->started = 1;

	w->ender = evtimer_new(w->base, worker_end_cb, w);
	if (opt.requests == 0) {
		t = t_end > now_ns() ? t_end - now_ns() : 0;
		tv.tv_sec = (time_t)(t / NS);
		tv.tv_usec = (suseconds_t)((t % NS) / 1000);
	} else {
		/* --requests: the grace period bounds the whole run */
		t = t_grace - now_ns();
		tv.tv_sec = (time_t)(t / NS);
		tv.tv_usec = 0;
		w->ending = 0;
	}
	evtimer_add(w->ender, &tv);

	for (i = 0; i < w->nconns; i++) {
		struct conn	*c = &w->conns[i];

		if (opt.new_conn) {
			conn_open(c);
		} else if (opt.mode == M_CLOSED) {
			if (c->up)
				conn_send(c);
		} else {
			/* Stagger the schedules across connections. */
			c->interval = (uint64_t)((double)opt.conns * NS /
			    opt.rate);
			c->next_at = t0 + c->interval *
			    (uint64_t)(w->id + i * opt.threads) /
			    (uint64_t)opt.conns;
			c->tick = evtimer_new(w->base, conn_tick_cb, c);
			conn_tick_cb(-1, 0, c);
		}
	}
	event_base_dispatch(w->base);
 out:
	for (i = 0; i < w->nconns; i++) {
		conn_close(&w->conns[i]);
		if (w->conns[i].tick != NULL)
			event_free(w->conns[i].tick);
		free(w->conns[i].q);
	}
	if (w->ender != NULL)
		event_free(w->ender);
	if (w->poll != NULL)
		event_free(w->poll);
	if (w->session != NULL)
		SSL_SESSION_free(w->session);
	event_base_free(w->base);
	return (NULL);
}

/* -------------------------------------------------------------------- */
/* Set-up */

static void
setup_tls(void)
{
	X509_VERIFY_PARAM	*vp;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die_ssl("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1)
		die_ssl(opt.ca);
	if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1)
		die_ssl(opt.cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1)
		die_ssl(opt.key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		die_ssl("key does not match certificate");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	vp = SSL_CTX_get0_param(ctx);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, opt.host) != 1)
		die_ssl("server address check");
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	ssl_ex_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void
parse_url(const char *url)
{
	const char	*p, *colon;
	size_t		 hl;
	char		*end;
	long		 port;

	opt.tls = strncmp(url, "https://", 8) == 0;
	if (!opt.tls && strncmp(url, "http://", 7) != 0)
		die("--url must be https://HOST:PORT (or http:// with --mcp)");
	p = url + (opt.tls ? 8 : 7);
	if ((colon = strchr(p, ':')) == NULL)
		die("--url needs a port");
	hl = (size_t)(colon - p);
	if (hl == 0 || hl >= sizeof(opt.host))
		die("--url: bad host");
	memcpy(opt.host, p, hl);
	opt.host[hl] = '\0';
	if (strcmp(opt.host, "localhost") == 0)
		snprintf(opt.host, sizeof(opt.host), "127.0.0.1");
	port = strtol(colon + 1, &end, 10);
	if (port < 1 || port > 65535 || (*end != '\0' && *end != '/'))
		die("--url: bad port");
	opt.port = (int)port;
	opt.path = *end == '/' ? end : "/";
	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, opt.host, &target.sin_addr) != 1)
		die("--url: host must be an IPv4 address or localhost");
	/* Loopback only: this tool is not for loading other machines. */
	if ((ntohl(target.sin_addr.s_addr) >> 24) != 127)
		die("--url: only loopback targets (127.0.0.0/8)");
}

static void
parse_mix(const char *s)
{
	char	*copy = strdup(s), *tok, *save, *eq;
	int	 k, v;

	opt.mix[0] = opt.mix[1] = opt.mix[2] = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(tok, '=')) == NULL)
			die("--mix: expected kind=weight, got %s", tok);
		*eq++ = '\0';
		v = atoi(eq);
		for (k = 0; k < 3; k++)
			if (strcmp(tok, kind_name[k]) == 0)
				break;
		if (k == 3 || v < 0 || v > 1000000)
			die("--mix: unknown kind or bad weight: %s", tok);
		opt.mix[k] = v;
	}
	free(copy);
	if (opt.mix[0] + opt.mix[1] + opt.mix[2] == 0)
		die("--mix: all weights are zero");
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen --url https://127.0.0.1:PORT --ca FILE "
	    "--cert FILE --key FILE\n"
	    "         [--connections N] [--threads T] [--duration S | "
	    "--requests N]\n"
	    "         [--mode closed|open] [--rate R] [--warmup S] "
	    "[--grace S]\n"
	    "         [--mix allow=80,pending=10,deny=10] [--iss NAME] "
	    "[--presign N]\n"
	    "         [--new-conn [--resume]] [--idle K] "
	    "[--get PATH [--expect STATUS]] [--quiet] [--verbose]\n"
	    "       loadgen --mcp TOOL --url http[s]://127.0.0.1:PORT/PATH "
	    "[--ca FILE --cert FILE --key FILE] [...]\n");
	exit(2);
}

static double
num_arg(const char *name, const char *v, double lo, double hi)
{
	char	*end;
	double	 d = strtod(v, &end);

	if (*v == '\0' || *end != '\0' || !(d >= lo && d <= hi))
		die("%s: expected a number in [%g, %g], not %s", name, lo,
		    hi, v);
	return (d);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "url",	 required_argument, NULL, 'u' },
		{ "ca",		 required_argument, NULL, 'A' },
		{ "cert",	 required_argument, NULL, 'C' },
		{ "key",	 required_argument, NULL, 'K' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads",	 required_argument, NULL, 't' },
		{ "duration",	 required_argument, NULL, 'd' },
		{ "requests",	 required_argument, NULL, 'n' },
		{ "mode",	 required_argument, NULL, 'm' },
		{ "rate",	 required_argument, NULL, 'r' },
		{ "warmup",	 required_argument, NULL, 'w' },
		{ "grace",	 required_argument, NULL, 'g' },
		{ "mix",	 required_argument, NULL, 'x' },
		{ "iss",	 required_argument, NULL, 'i' },
		{ "aud",	 required_argument, NULL, 'a' },
		{ "presign",	 required_argument, NULL, 'p' },
		{ "new-conn",	 no_argument,	    NULL, 'N' },
		{ "resume",	 no_argument,	    NULL, 'R' },
		{ "idle",	 required_argument, NULL, 'I' },
		{ "get",	 required_argument, NULL, 'G' },
		{ "expect",	 required_argument, NULL, 'e' },
		{ "mcp",	 required_argument, NULL, 'M' },
		{ "quiet",	 no_argument,	    NULL, 'q' },
		{ "verbose",	 no_argument,	    NULL, 'v' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int	 ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': opt.url = optarg; break;
		case 'A': opt.ca = optarg; break;
		case 'C': opt.cert = optarg; break;
		case 'K': opt.key = optarg; break;
		case 'c': opt.conns = (int)num_arg("--connections", optarg,
		    1, 100000); break;
		case 't': opt.threads = (int)num_arg("--threads", optarg, 1,
		    MAX_THREADS); break;
		case 'd': opt.duration = num_arg("--duration", optarg, 0.1,
		    3600); break;
		case 'n': opt.requests = (long)num_arg("--requests", optarg,
		    1, 1e9); break;
		case 'm':
			if (strcmp(optarg, "closed") == 0)
				opt.mode = M_CLOSED;
			else if (strcmp(optarg, "open") == 0)
				opt.mode = M_OPEN;
			else
				die("--mode: closed or open");
			break;
		case 'r': opt.rate = num_arg("--rate", optarg, 1, 1e7); break;
		case 'w': opt.warmup = num_arg("--warmup", optarg, 0, 600);
			break;
		case 'g': opt.grace = num_arg("--grace", optarg, 0.1, 600);
			break;
		case 'x': parse_mix(optarg); break;
		case 'i': opt.iss = optarg; break;
		case 'a': opt.aud = optarg; break;
		case 'p': opt.presign = (long)num_arg("--presign", optarg, 1,
		    1e9); break;
		case 'N': opt.new_conn = 1; break;
		case 'R': opt.resume = 1; break;
		case 'I': opt.idle = (int)num_arg("--idle", optarg, 1,
		    1000000); break;
		case 'G': opt.get = optarg; break;
		case 'e': opt.expect = (int)num_arg("--expect", optarg, 100,
		    599); break;
		case 'M': opt.mcp = optarg; break;
		case 'q': opt.quiet = 1; break;
		case 'v': opt.verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc || opt.url == NULL)
		usage();
	parse_url(opt.url);
	if (opt.tls && (opt.ca == NULL || opt.cert == NULL || opt.key == NULL))
		usage();
	if (!opt.tls && opt.mcp == NULL)
		die("--url http:// goes with --mcp (an upstream MCP server)");
	if (opt.mcp != NULL && (opt.get != NULL || opt.idle))
		die("--mcp sends tools/call: not with --get or --idle");
	if (opt.mode == M_OPEN && opt.rate <= 0)
		die("--mode open needs --rate");
	if (opt.mode == M_OPEN && (opt.requests > 0 || opt.new_conn))
		die("--mode open runs for --duration on keep-alive "
		    "connections");
	if (opt.resume && !opt.new_conn)
		die("--resume goes with --new-conn");
	if (opt.idle && (opt.new_conn || opt.mode == M_OPEN))
		die("--idle holds keep-alive connections only");
	if (opt.idle)
		opt.conns = opt.idle;
	if (opt.requests > 0)
		opt.warmup = 0;
	if (opt.threads > opt.conns)
		opt.threads = opt.conns;
}

static void
raise_nofile(int need)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < (rlim_t)need + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)need + 64 ?
		    rl.rlim_max : (rlim_t)need + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)need + 16)
		die("need %d file descriptors, the limit is %lu (ulimit -n)",
		    need, (unsigned long)rl.rlim_cur);
}

/* -------------------------------------------------------------------- */

static void
report(double elapsed)
{
	struct hist	*h;
	uint64_t	 ok = 0, errors = 0, timeouts = 0, conn_errors = 0;
	uint64_t	 drops = 0, bad = 0;
	uint64_t	 hs = 0, resumed = 0, by_status[600] = { 0 };
	uint64_t	 by_kind[K__N] = { 0 }, total;
	double		 rps, q[5];
	const char	*mode;
	int		 i, s;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		die("out of memory");
	for (i = 0; i < opt.threads; i++) {
		struct worker	*w = &workers[i];

		hist_merge(h, &w->h);
		ok += w->ok;
		errors += w->errors;
		timeouts += w->timeouts;
		conn_errors += w->conn_errors;
		drops += w->drops;
		bad += w->bad;
		hs += w->handshakes;
		resumed += w->resumed;
		for (s = 0; s < 600; s++)
			by_status[s] += w->by_status[s];
		for (s = 0; s < K__N; s++)
			by_kind[s] += w->by_kind[s];
	}
	total = ok + errors;
	rps = elapsed > 0 ? (double)total / elapsed : 0;
	q[0] = (double)hist_quantile(h, 0.50) / 1000;
	q[1] = (double)hist_quantile(h, 0.90) / 1000;
	q[2] = (double)hist_quantile(h, 0.99) / 1000;
	q[3] = (double)hist_quantile(h, 0.999) / 1000;
	q[4] = (double)h->max / 1000;
	mode = opt.new_conn ? (opt.resume ? "newconn-resume" : "newconn") :
	    opt.mode == M_OPEN ? "open" : "closed";

	printf("loadgen: %s loop%s, %d connection(s), %d thread(s), "
	    "%.2f s measured\n", opt.mode == M_OPEN ? "open" : "closed",
	    opt.new_conn ? (opt.resume ? ", new TLS connection per request "
	    "with resumption" : ", new TLS connection per request") : "",
	    opt.conns, opt.threads, elapsed);
	if (opt.mode == M_OPEN)
		printf("  target rate   %.0f req/s\n", opt.rate);
	printf("  requests      %" PRIu64 "  (", total);
	for (s = 0; s < K__N; s++)
		if (by_kind[s])
			printf(" %s %" PRIu64, kind_name[s], by_kind[s]);
	printf(" )\n");
	printf("  errors        %" PRIu64 "  (unanswered %" PRIu64
	    ", connection failures %" PRIu64 ", of them between requests %"
	    PRIu64 ", MCP answers not a plain result %" PRIu64 ")\n",
	    errors + drops, timeouts, conn_errors, drops, bad);
	printf("  throughput    %.1f req/s\n", rps);
	printf("  latency ms    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
	    "max %.3f\n", q[0], q[1], q[2], q[3], q[4]);
	printf("  statuses     ");
	for (s = 0; s < 600; s++)
		if (by_status[s])
			printf(" %d×%" PRIu64, s, by_status[s]);
	printf("\n");
	if (opt.new_conn)
		printf("  handshakes    %" PRIu64 ", resumed %" PRIu64 "\n",
		    hs, resumed);
	if (__atomic_load_n(&pool_dry, __ATOMIC_RELAXED) && opt.requests == 0)
		printf("  WARNING: the pre-signed pool (%zu) ran out before "
		    "the end: rerun with a larger --presign\n", pool_len);
	printf("loadgen mode=%s conns=%d requests=%" PRIu64 " errors=%"
	    PRIu64 " rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
	    "p999_ms=%.3f max_ms=%.3f duration_s=%.3f handshakes=%" PRIu64
	    " resumed=%" PRIu64 " pool_dry=%d bad_answers=%" PRIu64 "\n",
	    mode, opt.conns, total, errors + drops, rps, q[0], q[1],
	    q[2], q[3], q[4], elapsed, hs, resumed,
	    __atomic_load_n(&pool_dry, __ATOMIC_RELAXED), bad);
	fflush(stdout);
	free(h);
}

static int
run_idle(void)
{
	uint64_t	 t, deadline;
	int		 i, up, failed, lost;

	t = now_ns();
	deadline = t + 120 * NS;
	for (;;) {
		up = __atomic_load_n(&ready_count, __ATOMIC_RELAXED);
		for (failed = 0, i = 0; i < opt.threads; i++)
			failed += __atomic_load_n(&workers[i].idle_failed,
			    __ATOMIC_RELAXED);
		if (up + failed >= opt.idle || now_ns() >= deadline)
			break;
		usleep(10000);
	}
	printf("loadgen idle established=%d of %d failed=%d in %.2f s\n", up,
	    opt.idle, failed, (double)(now_ns() - t) / NS);
	fflush(stdout);
	usleep((useconds_t)(opt.duration * 1e6));
	__atomic_store_n(&idle_release, 1, __ATOMIC_RELAXED);
	for (i = 0; i < opt.threads; i++)
		pthread_join(workers[i].tid, NULL);
	for (failed = 0, lost = 0, i = 0; i < opt.threads; i++) {
		failed += workers[i].idle_failed;
		lost += workers[i].idle_lost;
	}
	printf("loadgen mode=idle conns=%d established=%d errors=%d lost=%d "
	    "held_s=%.1f\n", opt.idle, up, failed + lost, lost, opt.duration);
	fflush(stdout);
	return (up == opt.idle && failed + lost == 0 ? 0 : 1);
}

int
main(int argc, char **argv)
{
	uint64_t	 t_done;
	int		 i, per, rest, at;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	raise_nofile(opt.conns + 16);
	if (evthread_use_pthreads() == -1)
		die("evthread_use_pthreads");
	json_object_seed(0);
	if (opt.tls)
		setup_tls();
	if (opt.mcp != NULL)
		mcp_setup();
	else
		build_pool();

	if (pthread_barrier_init(&bar_ready, NULL,
	    (unsigned)opt.threads + 1) != 0 ||
	    pthread_barrier_init(&bar_go, NULL,
	    (unsigned)opt.threads + 1) != 0)
		die("pthread_barrier_init");
	per = opt.conns / opt.threads;
	rest = opt.conns % opt.threads;
	for (at = 0, i = 0; i < opt.threads; i++) {
		struct worker	*w = &workers[i];

		w->id = i;
		w->nconns = per + (i < rest ? 1 : 0);
		if ((w->conns = calloc((size_t)w->nconns,
		    sizeof(*w->conns))) == NULL)
			die("out of memory");
		at += w->nconns;
	}
	if (opt.idle) {
		for (i = 0; i < opt.threads; i++)
			if (pthread_create(&workers[i].tid, NULL, worker_main,
			    &workers[i]) != 0)
				die("pthread_create");
		return (run_idle());
	}
	for (i = 0; i < opt.threads; i++)
		if (pthread_create(&workers[i].tid, NULL, worker_main,
		    &workers[i]) != 0)
			die("pthread_create");
	pthread_barrier_wait(&bar_ready);
	t0 = now_ns();
	t_measure = t0 + (uint64_t)(opt.warmup * NS);
	t_end = t_measure + (uint64_t)(opt.duration * NS);
	t_grace = opt.requests > 0 ? t0 + 600 * NS :
	    t_end + (uint64_t)(opt.grace * NS);
	pthread_barrier_wait(&bar_go);
	for (i = 0; i < opt.threads; i++)
		pthread_join(workers[i].tid, NULL);
	t_done = 0;
	for (i = 0; i < opt.threads; i++)
		if (workers[i].last_done > t_done)
			t_done = workers[i].last_done;
	if (opt.requests > 0)
		report((double)(t_done > t_measure ? t_done - t_measure : 0) /
		    NS);
	else
		report((double)((t_done > t_end ? t_done : t_end) -
		    t_measure) / NS);
	(void)at;
	return (0);
}
