/*
 * mcp_config: the gateway's --config lines (proto/config.md) — upstreams
 * (mcp-upstream = NAME URL), the CA file they are verified against, and
 * the gateway's timings and bounds.  Every problem ends start-up with
 * exit 2 and a line naming the file, the line and what to write instead;
 * nothing here connects anywhere.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>

#include "mcp.h"

static void __attribute__((noreturn, format(printf, 3, 4)))
conf_exit(const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "toolgated: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int
conf_name_valid(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n >= sizeof(((struct mcp_upstream_conf *)0)->name))
		return (0);
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-'))
			return (0);
	return (1);
}

/* URL: http:// or https://, a host, an optional port, a path; no user
 * info, no fragment.  0 or -1 with *why. */
static int
conf_url(struct mcp_upstream_conf *u, const char *url, const char **why)
{
	struct evhttp_uri	*uri;
	const char		*scheme, *host, *path, *query;
	int			 rc = -1;

	*why = "is not a URL";
	if (strlen(url) > 2048 || strpbrk(url, " \t\"<>\\^`{|}") != NULL)
		return (-1);
	if ((uri = evhttp_uri_parse_with_flags(url, 0)) == NULL)
		return (-1);
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	path = evhttp_uri_get_path(uri);
	query = evhttp_uri_get_query(uri);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0))
		*why = "must start with http:// or https://";
	else if (host == NULL || host[0] == '\0')
		*why = "has no host";
	else if (evhttp_uri_get_userinfo(uri) != NULL)
		*why = "must not carry a user name or password";
	else if (evhttp_uri_get_fragment(uri) != NULL)
		*why = "must not have a #fragment";
	else if (evhttp_uri_get_port(uri) == 0 ||
	    evhttp_uri_get_port(uri) > 65535)
		*why = "has a port outside 1..65535";
	else {
		u->https = strcmp(scheme, "https") == 0;
		u->port = evhttp_uri_get_port(uri) > 0 ?
		    evhttp_uri_get_port(uri) : (u->https ? 443 : 80);
		u->url = strdup(url);
		/* evhttp keeps IPv6 literals in brackets */
		if (host[0] == '[')
			u->host = strndup(host + 1, strlen(host) - 2);
		else
			u->host = strdup(host);
		if (asprintf(&u->path, "%s%s%s", path && *path ? path : "/",
		    query ? "?" : "", query ? query : "") == -1)
			u->path = NULL;
		if (u->url == NULL || u->host == NULL || u->path == NULL)
			*why = "could not be stored (out of memory)";
		else
			rc = 0;
	}
	evhttp_uri_free(uri);
	return (rc);
}

static void
conf_upstream(struct mcp_conf *c, const char *val, const char *file,
    int line)
{
	struct mcp_upstream_conf *u;
	const char		*sp, *url, *why;
	size_t			 n;
	int			 i;

	n = strcspn(val, " \t");
	sp = val + n;
	url = sp + strspn(sp, " \t");
	if (n == 0 || *url == '\0' || url[strcspn(url, " \t")] != '\0')
		conf_exit(file, line, "mcp-upstream must be \"NAME URL\", "
		    "for example: mcp-upstream = pay https://pay.internal/mcp");
	if (!conf_name_valid(val, n))
		conf_exit(file, line, "mcp-upstream name \"%.*s\" must be "
		    "1 to 63 of [a-z0-9_-]: it becomes the tools' prefix "
		    "(NAME.tool)", (int)(n > 64 ? 64 : n), val);
	if (c->n_up >= MCP_MAX_UPSTREAMS)
		conf_exit(file, line, "at most %d mcp-upstream lines",
		    MCP_MAX_UPSTREAMS);
	for (i = 0; i < c->n_up; i++)
		if (strlen(c->up[i].name) == n &&
		    strncmp(c->up[i].name, val, n) == 0)
			conf_exit(file, line, "mcp-upstream %.*s is already "
			    "defined on line %d: names must be unique",
			    (int)n, val, c->up[i].line);
	u = &c->up[c->n_up];
	memset(u, 0, sizeof(*u));
	memcpy(u->name, val, n);
	u->line = line;
	if (conf_url(u, url, &why) == -1)
		conf_exit(file, line, "mcp-upstream %s: URL %.200s %s", u->name,
		    url, why);
	c->n_up++;
}

static int
conf_number(const char *val, long min, long max, const char *file, int line,
    const char *name)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(val, &end, 10);
	if (*val == '\0' || *end != '\0' || errno != 0 || n < min || n > max)
		conf_exit(file, line, "%s must be a number in %ld..%ld, not "
		    "%.64s", name, min, max, val);
	return ((int)n);
}

static const struct {
	const char	*name;
	size_t		 off;
	long		 min, max;
} numbers[] = {
	{ "mcp-hold", offsetof(struct mcp_conf, hold), 1, 3600 },
	{ "mcp-timeout", offsetof(struct mcp_conf, timeout), 1, 3600 },
	{ "mcp-refresh", offsetof(struct mcp_conf, refresh), 1, 86400 },
	{ "mcp-max-sessions", offsetof(struct mcp_conf, max_sessions), 1,
	  1000000 },
	{ "mcp-session-idle", offsetof(struct mcp_conf, session_idle), 10,
	  604800 },
};

int
mcp_config_is(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		if (strcmp(name, numbers[i].name) == 0)
			return (1);
	return (strcmp(name, "mcp-upstream") == 0 ||
	    strcmp(name, "mcp-upstream-ca") == 0);
}

int
mcp_config_line(struct mcp_conf *c, const char *name, const char *val,
    const char *file, int line)
{
	size_t	 i;

	if (strcmp(name, "mcp-upstream") == 0) {
		conf_upstream(c, val, file, line);
		return (1);
	}
	if (strcmp(name, "mcp-upstream-ca") == 0) {
		if (*val == '\0')
			conf_exit(file, line, "mcp-upstream-ca needs a file");
		if (access(val, R_OK) == -1)
			conf_exit(file, line, "mcp-upstream-ca %.512s: cannot "
			    "read it: %s", val, strerror(errno));
		c->ca_file = val;
		return (1);
	}
	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		if (strcmp(name, numbers[i].name) == 0) {
			*(int *)((char *)c + numbers[i].off) = conf_number(
			    val, numbers[i].min, numbers[i].max, file, line,
			    name);
			return (1);
		}
	return (0);
}

void
mcp_config_finish(struct mcp_conf *c)
{
	if (c->hold == 0)
		c->hold = 50;
	if (c->timeout == 0)
		c->timeout = 30;
	if (c->refresh == 0)
		c->refresh = 300;
	if (c->max_sessions == 0)
		c->max_sessions = 10000;
	if (c->session_idle == 0)
		c->session_idle = 3600;
}

void
mcp_config_free(struct mcp_conf *c)
{
	int	 i;

	for (i = 0; i < c->n_up; i++) {
		free(c->up[i].url);
		free(c->up[i].host);
		free(c->up[i].path);
	}
	c->n_up = 0;
}
