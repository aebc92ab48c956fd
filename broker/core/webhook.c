/*
 * webhook: the body and the signature of one delivery (webhook.h).  The
 * JSON envelope is RFC 8785 text, the same bytes for every sink that
 * gets it.  A Slack message is written for people: every piece of text
 * that came from an agent, an approver or an operator (reasons, args,
 * names) passes through slack_put, which escapes what Slack's mrkdwn
 * gives meaning to (&, <, > — a "<!channel>" or a "<https://x|label>" in
 * an agent's reason stays text) and cuts it to a bounded length, so the
 * message always fits Slack's limits (3000 characters a section).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "canon.h"
#include "clock.h"
#include "rows.h"
#include "webhook.h"

#define SLACK_NAME_MAX		128	/* code points of a name or a tool */
#define SLACK_REASON_MAX	300	/* of a reason */
#define SLACK_ARGS_MAX		500	/* of the args' JSON text */

int
webhook_format_parse(const char *s, enum webhook_format *f)
{
	if (strcmp(s, "json") == 0)
		*f = WEBHOOK_JSON;
	else if (strcmp(s, "slack") == 0)
		*f = WEBHOOK_SLACK;
	else
		return (-1);
	return (0);
}

const char *
webhook_format_name(enum webhook_format f)
{
	return (f == WEBHOOK_SLACK ? "slack" : "json");
}

/* --- a growing text -------------------------------------------------------- */

struct sb {
	char	*p;
	size_t	 len, cap;
	int	 failed;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/*
 * s as mrkdwn text: &, < and > as entities, control characters as
 * spaces (newlines too unless keep_lines), at most max code points, then
 * "…".  NULL s writes "-".
 */
static void
slack_put(struct sb *b, const char *s, size_t max, int keep_lines)
{
	size_t	 chars = 0;

	if (s == NULL) {
		sb_puts(b, "-");
		return;
	}
	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80 && chars++ == max) {
			sb_puts(b, "\xe2\x80\xa6");
			return;
		}
		switch (*s) {
		case '&': sb_puts(b, "&amp;"); break;
		case '<': sb_puts(b, "&lt;"); break;
		case '>': sb_puts(b, "&gt;"); break;
		case '\n':
			sb_puts(b, keep_lines ? "\n" : " ");
			break;
		default:
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				sb_puts(b, " ");
			else
				sb_add(b, s, 1);
		}
	}
}

static const char *
str(const json_t *data, const char *key)
{
	return (json_string_value(json_object_get(data, key)));
}

/* "5000.00 USD", or NULL when the data has no amount. */
static void
slack_amount(struct sb *b, const json_t *data, const char *none)
{
	const json_t	*a = json_object_get(data, "amount");

	if (!json_is_object(a) || str(a, "value") == NULL) {
		sb_puts(b, none);
		return;
	}
	slack_put(b, str(a, "value"), 32, 0);
	sb_puts(b, " ");
	slack_put(b, str(a, "currency"), 8, 0);
}

/* Who did what to which intent: "`tool` for *agent* (amount)". */
static void
slack_intent_line(struct sb *b, const json_t *data)
{
	sb_puts(b, "`");
	slack_put(b, str(data, "tool"), SLACK_NAME_MAX, 0);
	sb_puts(b, "` for *");
	slack_put(b, str(data, "agent"), SLACK_NAME_MAX, 0);
	sb_puts(b, "* (");
	slack_amount(b, data, "no amount");
	sb_puts(b, ")");
}

/* The commands of proto/events.md, only for an id of the right shape
 * (it goes into a shell command line). */
static int
slack_id_ok(const char *id)
{
	return (id != NULL && intent_id_valid(id));
}

static json_t *
slack_section(const char *mrkdwn)
{
	return (json_pack("{ss s{ss ss}}", "type", "section", "text", "type",
	    "mrkdwn", "text", mrkdwn));
}

static json_t *
slack_context(const char *mrkdwn)
{
	return (json_pack("{ss s[{ss ss}]}", "type", "context", "elements",
	    "type", "mrkdwn", "text", mrkdwn));
}

/* Append a section holding b's text (and empty b). */
static void
slack_flush(json_t *blocks, struct sb *b, int *failed)
{
	if (b->failed || json_array_append_new(blocks,
	    slack_section(b->p ? b->p : "")) == -1)
		*failed = 1;
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

static void
slack_field(json_t *fields, const char *title, struct sb *b, int *failed)
{
	char	*text;

	if (b->failed || asprintf(&text, "*%s*\n%s", title, b->p ? b->p :
	    "-") == -1) {
		*failed = 1;
		return;
	}
	if (json_array_append_new(fields, json_pack("{ss ss}", "type",
	    "mrkdwn", "text", text)) == -1)
		*failed = 1;
	free(text);
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/* "approvals n/m" of the data. */
static void
slack_approvals(struct sb *b, const json_t *data)
{
	char	 nm[48];

	snprintf(nm, sizeof(nm), "%zu/%lld", json_array_size(json_object_get(
	    data, "approvals")), (long long)json_integer_value(
	    json_object_get(data, "approvals_required")));
	sb_puts(b, nm);
}

/* The blocks of an intent.pending message into blocks; its text in t. */
static void
slack_pending(json_t *blocks, const json_t *data, int64_t now, struct sb *t,
    int *failed)
{
	struct sb	 b = { NULL, 0, 0, 0 };
	json_t		*fields, *roles, *v, *args;
	const char	*id = str(data, "id");
	char		 left[32] = "-", *argtext;
	int64_t		 exp;
	size_t		 i;

	if (clock_parse_rfc3339(str(data, "expires_at"), &exp) == 0)
		clock_duration(exp - now, left, sizeof(left));
	sb_puts(t, "Approval needed: ");
	slack_put(t, str(data, "agent"), SLACK_NAME_MAX, 0);
	sb_puts(t, " asks to run ");
	slack_put(t, str(data, "tool"), SLACK_NAME_MAX, 0);
	sb_puts(t, " (");
	slack_amount(t, data, "no amount");
	sb_puts(t, "), ");
	slack_approvals(t, data);
	sb_puts(t, " approvals, ");
	sb_puts(t, left);
	sb_puts(t, " left");

	sb_puts(&b, ":bell: *Approval needed*\n*");
	slack_put(&b, str(data, "agent"), SLACK_NAME_MAX, 0);
	sb_puts(&b, "* asks to run `");
	slack_put(&b, str(data, "tool"), SLACK_NAME_MAX, 0);
	sb_puts(&b, "`");
	slack_flush(blocks, &b, failed);

	if ((fields = json_array()) == NULL ||
	    json_array_append_new(blocks, json_pack("{ss so}", "type",
	    "section", "fields", fields)) == -1) {
		*failed = 1;
		free(b.p);
		return;
	}
	slack_amount(&b, data, "none");
	slack_field(fields, "Amount", &b, failed);
	slack_approvals(&b, data);
	slack_field(fields, "Approvals", &b, failed);
	sb_puts(&b, left);
	sb_puts(&b, " (until ");
	slack_put(&b, str(data, "expires_at"), 32, 0);
	sb_puts(&b, ")");
	slack_field(fields, "Time left", &b, failed);
	roles = json_object_get(data, "approver_roles");
	json_array_foreach(roles, i, v) {
		if (i > 0)
			sb_puts(&b, ", ");
		slack_put(&b, json_string_value(v), SLACK_NAME_MAX, 0);
	}
	slack_field(fields, "Approvers", &b, failed);

	sb_puts(&b, "*Agent's reason*\n>");
	slack_put(&b, str(data, "reason") ? str(data, "reason") :
	    "(none given)", SLACK_REASON_MAX, 0);
	slack_flush(blocks, &b, failed);

	if ((args = json_object_get(data, "args")) != NULL &&
	    (argtext = canon_dump(args)) != NULL) {
		sb_puts(&b, "*Arguments* (as audited)\n```");
		slack_put(&b, argtext, SLACK_ARGS_MAX, 0);
		sb_puts(&b, "```");
		free(argtext);
		slack_flush(blocks, &b, failed);
	}
	if (slack_id_ok(id)) {
		sb_puts(&b, "*Decide with*\n```toolgatectl show ");
		sb_puts(&b, id);
		sb_puts(&b, "\ntoolgatectl approve ");
		sb_puts(&b, id);
		sb_puts(&b, " --comment 'TEXT'\ntoolgatectl reject ");
		sb_puts(&b, id);
		sb_puts(&b, " --reason 'TEXT'```");
		slack_flush(blocks, &b, failed);
		sb_puts(t, ": toolgatectl approve ");
		sb_puts(t, id);
	}
	free(b.p);
}

/*
 * The one line of every other type.  In a line, {key} is data's string
 * member (escaped, cut), { key} the same after a space and only when
 * present, {#key} its integer member, {intent} "`tool` for *agent*
 * (amount)" and {approvals} "n/m".
 */
static const struct {
	const char	*type;
	const char	*line;
} slack_lines[] = {
	{ "intent.allowed", ":white_check_mark: *Approved*: {intent} by {by}, "
	    "{approvals} approvals" },
	{ "intent.rejected", ":no_entry: *Rejected*: {intent} by {by}: "
	    "{reason}" },
	{ "intent.expired", ":hourglass: *Expired without approval*: "
	    "{intent}, {approvals} approvals" },
	{ "killswitch.tripped", ":rotating_light: *Kill switch {#id} tripped* "
	    "by {by} ({scope}{ target}): {reason}\nPending intents rejected: "
	    "{#rejected}. Reset with `toolgatectl killswitch reset {#id} "
	    "--reason 'TEXT'`" },
	{ "killswitch.reset", ":large_green_circle: *Kill switch {#id} reset* "
	    "by {by}: {reason}" },
	{ "policy.applied", ":scroll: *Policy version {#version} applied* by "
	    "{by} (sha256 `{sha256}`)" },
	{ "audit.record", "*Audit record {#seq}*: {event} by {actor}"
	    "{ intent_id}" },
	{ "audit.checkpoint", ":link: *Audit checkpoint*: record {#seq}, hash "
	    "`{hash}`" },
};

/* One {...} of a line (name: n bytes after the '{'). */
static void
slack_field_of(struct sb *b, const json_t *data, const char *name, size_t n)
{
	char	 key[32], num[24];
	int	 optional = name[0] == ' ', integer = name[0] == '#';

	snprintf(key, sizeof(key), "%.*s", (int)(n - (optional || integer)),
	    name + (optional || integer));
	if (strcmp(key, "intent") == 0)
		slack_intent_line(b, data);
	else if (strcmp(key, "approvals") == 0)
		slack_approvals(b, data);
	else if (integer) {
		snprintf(num, sizeof(num), "%lld", (long long)
		    json_integer_value(json_object_get(data, key)));
		sb_puts(b, num);
	} else if (!optional || str(data, key) != NULL) {
		if (optional)
			sb_puts(b, " ");
		slack_put(b, str(data, key), strcmp(key, "reason") == 0 ?
		    SLACK_REASON_MAX : SLACK_NAME_MAX, 0);
	}
}

static void
slack_line(struct sb *b, const char *type, const json_t *data)
{
	const char	*p, *end;
	size_t		 i;

	for (i = 0; i < sizeof(slack_lines) / sizeof(slack_lines[0]); i++)
		if (strcmp(slack_lines[i].type, type) == 0)
			break;
	if (i == sizeof(slack_lines) / sizeof(slack_lines[0])) {
		sb_puts(b, "*");
		slack_put(b, type, SLACK_NAME_MAX, 0);
		sb_puts(b, "*");
		return;
	}
	for (p = slack_lines[i].line; *p != '\0'; p = end) {
		if (*p != '{' || (end = strchr(p, '}')) == NULL) {
			end = p + strcspn(p + 1, "{") + 1;
			sb_add(b, p, (size_t)(end - p));
			continue;
		}
		slack_field_of(b, data, p + 1, (size_t)(end - p - 1));
		end++;
	}
}

/* The message's plain text: the line without its emoji and bold. */
static void
slack_plain(struct sb *t, const struct sb *line)
{
	const char	*s = line->p ? line->p : "";
	const char	*colon;

	/* ":emoji: " first: skip it. */
	if (s[0] == ':' && (colon = strchr(s + 1, ':')) != NULL &&
	    colon[1] == ' ')
		s = colon + 2;
	for (; *s != '\0' && *s != '\n'; s++)
		if (*s != '*')
			sb_add(t, s, 1);
}

static char *
slack_body(const char *id, const char *type, int64_t at, const json_t *data,
    int64_t now, size_t *len)
{
	struct sb	 t = { NULL, 0, 0, 0 }, line = { NULL, 0, 0, 0 };
	json_t		*msg = NULL, *blocks;
	char		 when[RFC3339_LEN], *ctx = NULL, *out = NULL;
	int		 failed = 0;

	if ((blocks = json_array()) == NULL)
		return (NULL);
	if (strcmp(type, "intent.pending") == 0)
		slack_pending(blocks, data, now, &t, &failed);
	else {
		slack_line(&line, type, data);
		slack_plain(&t, &line);
		slack_flush(blocks, &line, &failed);
	}
	clock_rfc3339(at, when);
	if (asprintf(&ctx, "toolgate %s %s at %s", type, id, when) == -1 ||
	    json_array_append_new(blocks, slack_context(ctx)) == -1)
		failed = 1;
	if (!failed && !t.failed && (msg = json_pack("{ss so}", "text",
	    t.p ? t.p : type, "blocks", blocks)) != NULL) {
		blocks = NULL;
		if ((out = canon_dump(msg)) != NULL)
			*len = strlen(out);
	}
	json_decref(blocks);
	json_decref(msg);
	free(ctx);
	free(t.p);
	free(line.p);
	return (out);
}

char *
webhook_body(enum webhook_format f, const char *id, const char *type,
    int64_t at, const json_t *data, int64_t now, size_t *len)
{
	json_t	*env;
	char	 when[RFC3339_LEN], *out;

	*len = 0;
	if (f == WEBHOOK_SLACK)
		return (slack_body(id, type, at, data, now, len));
	clock_rfc3339(at, when);
	env = json_pack("{ss ss ss sO}", "id", id, "type", type, "at", when,
	    "data", data ? (json_t *)data : json_null());
	out = env ? canon_dump(env) : NULL;
	json_decref(env);
	if (out != NULL)
		*len = strlen(out);
	return (out);
}

int
webhook_signature(const unsigned char *key, size_t keylen, int64_t t,
    const char *body, size_t len, char out[WEBHOOK_SIG_MAX])
{
	static const char hex[] = "0123456789abcdef";
	EVP_MAC		*mac;
	EVP_MAC_CTX	*ctx = NULL;
	OSSL_PARAM	 params[2];
	unsigned char	 md[32];
	char		 ts[24];
	size_t		 mdlen = 0, i;
	int		 n, rc = -1;

	n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(ctx, key, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)n) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, len) != 1 ||
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) != 1 || mdlen != 32)
		goto done;
	n = snprintf(out, WEBHOOK_SIG_MAX, "t=%lld,v1=", (long long)t);
	for (i = 0; i < mdlen; i++) {
		out[n + 2 * (int)i] = hex[md[i] >> 4];
		out[n + 2 * (int)i + 1] = hex[md[i] & 15];
	}
	out[n + 64] = '\0';
	rc = 0;
 done:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return (rc);
}
