/*
 * cmd_mcp: toolgatectl mcp stdio — an MCP server on standard input and
 * output (the MCP stdio transport: one JSON-RPC message per line) that
 * relays every message to the broker's POST /mcp over mutual TLS with
 * the configured certificate, so that MCP hosts which only start local
 * servers (desktop assistants, IDEs) reach the gateway with one line of
 * configuration.  It keeps the broker's Mcp-Session-Id and protocol
 * version, turns SSE answers back into lines (each event as it arrives,
 * so that a held call's progress reaches the host while it waits),
 * starts a new session by itself when the broker has forgotten the old
 * one (404), and answers a request it cannot deliver with a JSON-RPC
 * error, so the host never waits forever.  Nothing but MCP messages is written to stdout; notes
 * go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ctl.h"
#include "jsonrpc.h"

#define RELAY_MAX_LINE	(1024 * 1024)	/* the broker's limit too */
#define RELAY_TIMEOUT	300	/* s: held calls take up to mcp-hold */

struct relay {
	struct ctl	 ctl;
	char		 session[257];
	char		 version[16];
	char		*init;		/* the host's initialize, for a new
					 * session after a 404 */
	size_t		 init_len;
};

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

/* One message on stdout: a line, whatever whitespace it held. */
static void
relay_out(const char *text, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		putchar(text[i] == '\n' || text[i] == '\r' ? ' ' : text[i]);
	putchar('\n');
	fflush(stdout);
}

/* A JSON-RPC error to the host for its request id (NULL: null). */
static void
relay_error(const struct jsonrpc_span *id, int code, const char *msg)
{
	size_t	 len;
	char	*t = jsonrpc_write_error(id, code, msg, NULL, &len);

	if (t != NULL)
		relay_out(t, len);
	free(t);
}

/* Each SSE event with data in body, as a line. */
static void
relay_sse(const char *body, size_t len)
{
	const char	*p = body, *end = body + len, *nl;
	char		*data = NULL;
	size_t		 dlen = 0, n, k;

	while (p <= end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		k = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
		if (k == 0) {
			if (dlen > 0)
				relay_out(data, dlen);
			dlen = 0;
		} else if (k >= 5 && strncmp(p, "data:", 5) == 0) {
			const char *v = p + 5 + (k > 5 && p[5] == ' ');
			size_t vn = k - (size_t)(v - p);
			char *grown = realloc(data, dlen + vn + 2);

			if (grown == NULL)
				break;
			data = grown;
			if (dlen > 0)
				data[dlen++] = '\n';
			memcpy(data + dlen, v, vn);
			dlen += vn;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (dlen > 0)
		relay_out(data, dlen);
	free(data);
}

static int
is_sse(const struct client_answer *ans)
{
	char	 ct[128];

	return (client_answer_header(ans, "Content-Type", ct, sizeof(ct)) !=
	    NULL && strncasecmp(ct, "text/event-stream", 17) == 0);
}

/* A streamed answer's bytes not relayed yet. */
struct relay_stream {
	char	*buf;
	size_t	 len;
	int	 failed;	/* out of memory, or over the limit */
};

/* client.c: the next chunk of a streamed answer.  Each complete SSE event
 * is relayed at once — a held call's progress reaches the host while it
 * waits; anything else is kept for the end. */
static void
relay_chunk(const struct client_answer *ans, const char *data, size_t len,
    void *arg)
{
	struct relay_stream	*st = arg;
	char			*grown, *end;
	size_t			 n;

	if (st->failed || st->len + len > RELAY_MAX_LINE * 4 ||
	    (grown = realloc(st->buf, st->len + len + 1)) == NULL) {
		st->failed = 1;
		return;
	}
	st->buf = grown;
	memcpy(st->buf + st->len, data, len);
	st->len += len;
	st->buf[st->len] = '\0';
	if (!is_sse(ans))
		return;
	while ((end = memmem(st->buf, st->len, "\n\n", 2)) != NULL) {
		n = (size_t)(end - st->buf) + 2;
		relay_sse(st->buf, n);
		memmove(st->buf, st->buf + n, st->len - n + 1);
		st->len -= n;
	}
}

/* POST body; a streamed answer's events are relayed as they come, and
 * what is left of it is ans->body. */
static int
relay_post(struct relay *r, const char *body, size_t len,
    struct client_answer *ans, char *err, size_t errlen)
{
	struct relay_stream	 st = { NULL, 0, 0 };
	char			 headers[512];
	int			 rc;

	snprintf(headers, sizeof(headers), "Accept: application/json, "
	    "text/event-stream\r\n%s%s%s%s%s%s",
	    r->session[0] ? "Mcp-Session-Id: " : "", r->session,
	    r->session[0] ? "\r\n" : "",
	    r->version[0] ? "MCP-Protocol-Version: " : "", r->version,
	    r->version[0] ? "\r\n" : "");
	rc = client_request_stream(&r->ctl, "POST", "/mcp",
	    "application/json", headers, body, len, relay_chunk, &st, ans,
	    err, errlen);
	if (rc == CTL_OK && st.failed) {
		client_answer_free(ans);
		snprintf(err, errlen, "an answer from the broker is too "
		    "large");
		rc = CTL_FAIL;
	} else if (rc == CTL_OK && st.buf != NULL) {
		free(ans->body);
		ans->body = st.buf;
		ans->len = st.len;
		st.buf = NULL;
	}
	free(st.buf);
	return (rc);
}

/* After an initialize went through: the session and version it set. */
static void
relay_learn(struct relay *r, const struct client_answer *ans)
{
	char		 v[257];
	json_t		*j;
	const char	*pv;

	if (client_answer_header(ans, "Mcp-Session-Id", v, sizeof(v)) != NULL)
		snprintf(r->session, sizeof(r->session), "%s", v);
	/* The body is JSON or one SSE event: find the result either way. */
	j = json_loadb(ans->body, ans->len, 0, NULL);
	if (j == NULL && strstr(ans->body, "data: ") != NULL)
		j = json_loads(strstr(ans->body, "data: ") + 6,
		    JSON_DISABLE_EOF_CHECK, NULL);
	pv = json_string_value(json_object_get(json_object_get(j, "result"),
	    "protocolVersion"));
	if (pv != NULL)
		snprintf(r->version, sizeof(r->version), "%s", pv);
	json_decref(j);
}

/* The broker forgot the session: initialize again as the host did. */
static int
relay_reinit(struct relay *r)
{
	static const char note[] =
	    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
	struct client_answer	 ans;
	char			 err[512];
	int			 ok;

	r->session[0] = '\0';
	r->version[0] = '\0';
	if (r->init == NULL || relay_post(r, r->init, r->init_len, &ans, err,
	    sizeof(err)) != CTL_OK)
		return (-1);
	ok = ans.status == 200;
	if (ok)
		relay_learn(r, &ans);
	client_answer_free(&ans);
	if (!ok || relay_post(r, note, sizeof(note) - 1, &ans, err,
	    sizeof(err)) != CTL_OK)
		return (-1);
	client_answer_free(&ans);
	fprintf(stderr, "toolgatectl: mcp stdio: the broker ended the "
	    "session; a new one was started\n");
	return (0);
}

/* One message from the host: relay it, write what comes back. */
static void
relay_one(struct relay *r, const char *line, size_t len)
{
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	struct client_answer	 ans;
	char			 err[512], msg[700];
	int			 is_init, tries = 0;

	if (jsonrpc_parse(line, len, 10000, &m, &f) == -1) {
		relay_error(f.id.text ? &f.id : NULL, f.code, f.message);
		return;
	}
	is_init = m.kind == JSONRPC_REQUEST &&
	    strcmp(m.method, "initialize") == 0;
	if (is_init) {
		r->session[0] = '\0';
		r->version[0] = '\0';
	}
 again:
	if (relay_post(r, line, len, &ans, err, sizeof(err)) != CTL_OK) {
		snprintf(msg, sizeof(msg), "toolgate is unreachable: %s", err);
		if (m.kind == JSONRPC_REQUEST)
			relay_error(&m.id, -32000, msg);
		else
			fprintf(stderr, "toolgatectl: mcp stdio: %s\n", msg);
		return;
	}
	if (ans.status == 404 && r->session[0] && !is_init && tries++ == 0 &&
	    relay_reinit(r) == 0) {
		client_answer_free(&ans);
		goto again;
	}
	if (is_init && ans.status == 200) {
		relay_learn(r, &ans);
		free(r->init);
		if ((r->init = malloc(len)) != NULL) {
			memcpy(r->init, line, len);
			r->init_len = len;
		}
	}
	if (ans.status == 202 || ans.len == 0) {
		if (ans.status >= 300 && m.kind == JSONRPC_REQUEST) {
			snprintf(msg, sizeof(msg), "toolgate answered HTTP %d",
			    ans.status);
			relay_error(&m.id, -32000, msg);
		}
	} else if (is_sse(&ans))
		relay_sse(ans.body, ans.len);
	else if (m.kind == JSONRPC_REQUEST || ans.status < 300)
		relay_out(ans.body, ans.len);
	else
		fprintf(stderr, "toolgatectl: mcp stdio: HTTP %d: %.300s\n",
		    ans.status, ans.body);
	client_answer_free(&ans);
}

/* Read one line of at most RELAY_MAX_LINE bytes; a longer one is read
 * to its end and reported in *too_long.  -1 at the end of input. */
static ssize_t
relay_read(char *buf, size_t cap, int *too_long)
{
	size_t	 n = 0;
	int	 c;

	*too_long = 0;
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 < cap)
			buf[n++] = (char)c;
		else
			*too_long = 1;
	}
	if (c == EOF && n == 0 && !*too_long)
		return (-1);
	buf[n] = '\0';
	return ((ssize_t)n);
}

static int
mcp_stdio(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	struct relay		 r;
	struct client_answer	 ans;
	char			*buf, err[512], headers[300];
	ssize_t			 n;
	int			 rc, too_long;

	if ((rc = ctl_online(ctl, cmd)) != 0)
		return (rc);
	memset(&r, 0, sizeof(r));
	r.ctl = *ctl;
	if (r.ctl.timeout < RELAY_TIMEOUT)
		r.ctl.timeout = RELAY_TIMEOUT;
	if ((buf = malloc(RELAY_MAX_LINE + 2)) == NULL)
		return (ctl_fail("out of memory"));
	while ((n = relay_read(buf, RELAY_MAX_LINE + 1, &too_long)) != -1) {
		if (too_long) {
			relay_error(NULL, JSONRPC_INVALID_REQUEST, "a message "
			    "is at most 1 MiB");
			continue;
		}
		while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' '))
			buf[--n] = '\0';
		if (n > 0)
			relay_one(&r, buf, (size_t)n);
	}
	/* The host is gone: end the session rather than let it idle. */
	if (r.session[0] != '\0') {
		snprintf(headers, sizeof(headers), "Mcp-Session-Id: %s\r\n",
		    r.session);
		if (client_request_headers(&r.ctl, "DELETE", "/mcp", NULL,
		    headers, NULL, 0, &ans, err, sizeof(err)) == CTL_OK)
			client_answer_free(&ans);
	}
	free(r.init);
	free(buf);
	return (CTL_OK);
}

const struct ctl_cmd cmd_mcp[] = {
	{ "stdio", "mcp stdio", "",
	    "an MCP server on stdin/stdout that relays to the broker's "
	    "gateway (TOOLGATE_URL/mcp) with the configured certificate",
	    "toolgatectl --url https://toolgate:8443 --cert agent.pem "
	    "--key agent.key --ca ca.pem mcp stdio",
	    opts_none, 0, mcp_stdio, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};
