/*
 * events_config: the notify lines of --config (proto/config.md, "Events
 * out").  Everything about a sink is checked at start, where an operator
 * sees it, never at the first delivery: the name, the URL (http or
 * https, a host, no user info or fragment), the options, the CA file
 * (it must load), the patterns, and the HMAC key file (private: a key
 * readable by group or others is refused, like a TLS key).  Any problem
 * stops the daemon with exit 2 and one line naming the file and line.
 * A URL's path is a secret for Slack: it is kept for the requests and
 * never written to a log or an answer.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/err.h>

#include "events.h"
#include "file.h"

static void __attribute__((noreturn, format(printf, 2, 3)))
events_fail(const char *where, const char *fmt, ...)
{
	char	 msg[768];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "toolgated: %s: %s\n", where, msg);
	exit(2);
}

static char *
xstrdup(const char *where, const char *s)
{
	char	*c = strdup(s);

	if (c == NULL)
		events_fail(where, "out of memory");
	return (c);
}

/* The client context of an https sink: TLS 1.2+, peers verified against
 * ca (a PEM file) or else the system's CA store. */
static SSL_CTX *
events_ssl_ctx(const char *where, const char *ca)
{
	SSL_CTX		*ctx;
	char		 why[256];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		events_fail(where, "notify: cannot make a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			events_fail(where, "notify: cannot load the system CA "
			    "store (give ca=FILE)");
		return (ctx);
	}
	if (file_readable(ca, why, sizeof(why)) == -1)
		events_fail(where, "notify: ca=%s: %s", ca, why);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		ERR_clear_error();
		events_fail(where, "notify: ca=%s: not a PEM CA certificate "
		    "(%s)", ca, why);
	}
	return (ctx);
}

/* The URL of sink s: http or https, a host, no user or fragment. */
static void
events_url(struct events_sink *s, const char *url)
{
	struct evhttp_uri	*u;
	const char		*scheme, *host, *path, *query;
	char			 h[256];
	size_t			 n;
	int			 port;

	if (strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-._~:/?[]@!$&'()*+,;=%") != strlen(url) ||
	    (u = evhttp_uri_parse_with_flags(url, 0)) == NULL)
		events_fail(s->where, "notify %s: not a URL: write "
		    "https://HOST[:PORT]/PATH", s->name);
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0))
		events_fail(s->where, "notify %s: the URL must start with "
		    "http:// or https://", s->name);
	if (host == NULL || host[0] == '\0')
		events_fail(s->where, "notify %s: the URL names no host",
		    s->name);
	if (evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL)
		events_fail(s->where, "notify %s: the URL may not hold a user "
		    "name or a #fragment", s->name);
	s->https = strcmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(u);
	s->port = port > 0 ? port : s->https ? 443 : 80;
	if (port == 0 || port > 65535)
		events_fail(s->where, "notify %s: the URL's port must be "
		    "1..65535", s->name);
	/* evhttp keeps an IPv6 literal's brackets. */
	n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']')
		snprintf(h, sizeof(h), "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(h, sizeof(h), "%s", host);
	s->host = xstrdup(s->where, h);
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	if (asprintf(&s->path, "%s%s%s", path && *path ? path : "/",
	    query ? "?" : "", query ? query : "") == -1 ||
	    asprintf(&s->authority, "%s:%d", host, s->port) == -1)
		events_fail(s->where, "out of memory");
	snprintf(s->target, sizeof(s->target), "%s://%s:%d", scheme, host,
	    s->port);
	evhttp_uri_free(u);
}

/* "key=value" options after the URL. */
static void
events_options(struct events_sink *s, char *opts)
{
	const char	*ca = NULL, *why;
	char		*tok, *save = NULL, *eq;
	int		 seen_format = 0;

	for (tok = strtok_r(opts, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if ((eq = strchr(tok, '=')) == NULL || eq == tok ||
		    eq[1] == '\0')
			events_fail(s->where, "notify %s: \"%s\" is not "
			    "KEY=VALUE (format=, events=, ca=, secret-file=)",
			    s->name, tok);
		*eq++ = '\0';
		if (strcmp(tok, "format") == 0 && !seen_format) {
			if (webhook_format_parse(eq, &s->format) == -1)
				events_fail(s->where, "notify %s: format must "
				    "be json or slack, not %s", s->name, eq);
			seen_format = 1;
		} else if (strcmp(tok, "events") == 0 && s->events == NULL) {
			if (outbox_patterns(eq, &s->types, &why) == -1)
				events_fail(s->where, "notify %s: events=%s: "
				    "%s", s->name, eq, why);
			s->events = xstrdup(s->where, eq);
		} else if (strcmp(tok, "ca") == 0 && ca == NULL)
			ca = eq;
		else if (strcmp(tok, "secret-file") == 0 &&
		    s->secret_file == NULL)
			s->secret_file = xstrdup(s->where, eq);
		else
			events_fail(s->where, "notify %s: unknown or repeated "
			    "option %s= (format=, events=, ca=, secret-file=)",
			    s->name, tok);
	}
	if (ca != NULL && !s->https)
		events_fail(s->where, "notify %s: ca= is for https:// URLs",
		    s->name);
	if (s->https)
		s->ssl = events_ssl_ctx(s->where, ca);
	if (s->events == NULL) {
		s->types = EV_DEFAULT;
		s->events = xstrdup(s->where, "intent.*,killswitch.*,"
		    "policy.*,audit.checkpoint");
	}
}

static void
events_notify(struct events_config *c, const char *where, const char *value)
{
	struct events_sink	*s;
	char			*copy, *name, *url, *rest, *save = NULL;
	size_t			 i;

	if (c->n == OUTBOX_SINKS_MAX)
		events_fail(where, "notify: at most %d sinks",
		    OUTBOX_SINKS_MAX);
	s = &c->sink[c->n];
	memset(s, 0, sizeof(*s));
	snprintf(s->where, sizeof(s->where), "%s", where);
	copy = xstrdup(where, value);
	name = strtok_r(copy, " \t", &save);
	url = strtok_r(NULL, " \t", &save);
	rest = strtok_r(NULL, "", &save);
	if (name == NULL || url == NULL)
		events_fail(where, "notify needs NAME URL [format=json|slack] "
		    "[events=PATTERN,...] [ca=FILE] [secret-file=FILE]");
	if (!outbox_sink_name_valid(name))
		events_fail(where, "notify: the name \"%s\" must be 1-64 of "
		    "a-z 0-9 _ -", name);
	for (i = 0; i < c->n; i++)
		if (strcmp(c->sink[i].name, name) == 0)
			events_fail(where, "notify %s: named twice (also at "
			    "%s)", name, c->sink[i].where);
	snprintf(s->name, sizeof(s->name), "%s", name);
	events_url(s, url);
	events_options(s, rest ? rest : (char *)"");
	free(copy);
	c->n++;
}

int
events_config_is(const char *name)
{
	return (strcmp(name, "notify") == 0 ||
	    strcmp(name, "notify-secret-file") == 0);
}

int
events_config_line(struct events_config *c, const char *file, int line,
    const char *name, const char *value)
{
	char	 where[300];

	snprintf(where, sizeof(where), "%s:%d", file, line);
	if (strcmp(name, "notify") == 0) {
		events_notify(c, where, value);
		return (1);
	}
	if (strcmp(name, "notify-secret-file") == 0) {
		if (c->secret_file != NULL)
			events_fail(where, "notify-secret-file is given twice "
			    "(also at %s)", c->secret_where);
		if (value[0] == '\0')
			events_fail(where, "notify-secret-file needs a FILE");
		c->secret_file = xstrdup(where, value);
		snprintf(c->secret_where, sizeof(c->secret_where), "%s",
		    where);
		return (1);
	}
	return (0);
}

/*
 * The HMAC key in path: the file's bytes without one trailing newline
 * ("\n" or "\r\n").  The file must be private (mode 0600 or stricter).
 */
static void
events_read_secret(const char *where, const char *path, unsigned char **key,
    size_t *keylen)
{
	FILE		*f;
	unsigned char	*buf;
	mode_t		 mode;
	char		 why[256];
	size_t		 n;

	if (file_check(path, &mode, why, sizeof(why)) == -1)
		events_fail(where, "notify secret %s: %s", path, why);
	if (mode & (S_IRWXG | S_IRWXO))
		events_fail(where, "notify secret %s is accessible by group or "
		    "others (mode %04o): chmod 600 it", path,
		    (unsigned)(mode & 07777));
	if ((buf = malloc(EVENTS_SECRET_MAX + 1)) == NULL ||
	    (f = fopen(path, "rb")) == NULL)
		events_fail(where, "notify secret %s: cannot read it", path);
	n = fread(buf, 1, EVENTS_SECRET_MAX + 1, f);
	fclose(f);
	if (n > EVENTS_SECRET_MAX)
		events_fail(where, "notify secret %s is larger than %d bytes",
		    path, EVENTS_SECRET_MAX);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0)
		events_fail(where, "notify secret %s is empty", path);
	*key = buf;
	*keylen = n;
}

void
events_config_finish(struct events_config *c)
{
	struct events_sink	*s;
	unsigned char		*key;
	size_t			 i, keylen;

	memset(&c->rules, 0, sizeof(c->rules));
	for (i = 0; i < c->n; i++) {
		s = &c->sink[i];
		if (s->secret_file != NULL)
			events_read_secret(s->where, s->secret_file, &s->key,
			    &s->keylen);
		else if (c->secret_file != NULL)
			events_read_secret(c->secret_where, c->secret_file,
			    &s->key, &s->keylen);
		else
			events_fail(s->where, "notify %s: no HMAC key: set "
			    "notify-secret-file = FILE (or secret-file=FILE "
			    "on this line); every delivery is signed",
			    s->name);
		if (outbox_rules_add(&c->rules, s->name, s->types) == -1)
			events_fail(s->where, "notify %s: cannot be added",
			    s->name);
	}
	/* A key nobody uses yet is still checked now, not at the day a
	 * notify line is added. */
	if (c->n == 0 && c->secret_file != NULL) {
		events_read_secret(c->secret_where, c->secret_file, &key,
		    &keylen);
		explicit_bzero(key, keylen);
		free(key);
	}
}

void
events_config_free(struct events_config *c)
{
	struct events_sink	*s;
	size_t			 i;

	for (i = 0; i < c->n; i++) {
		s = &c->sink[i];
		free(s->host);
		free(s->path);
		free(s->authority);
		free(s->events);
		free(s->secret_file);
		if (s->key != NULL)
			explicit_bzero(s->key, s->keylen);
		free(s->key);
		SSL_CTX_free(s->ssl);
	}
	free(c->secret_file);
	memset(c, 0, sizeof(*c));
}
