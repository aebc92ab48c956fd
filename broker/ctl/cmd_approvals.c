/*
 * cmd_approvals: toolgatectl pending | show | approve | reject — the
 * approver's side of the queue (CONTRACT §4).  Online only: whether an
 * approval counts is the broker's decision, taken in its database, never
 * this program's.  Everything shown to an approver comes from the
 * broker's intent view and goes through output.c, which strips terminal
 * control characters; args are shown ASCII-escaped so no Unicode trick in
 * an agent's arguments can disguise a payee.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "ctl.h"
#include "jsonw.h"

#define PENDING_DEFAULT_LIMIT	100
#define PENDING_MAX_LIMIT	1000
#define PENDING_SOON		300	/* seconds: highlight "expires in" */
#define WATCH_WAIT		50	/* seconds a --watch long-poll is held
					 * (the broker holds at most 60) */
#define WATCH_RETRY		2	/* seconds, after losing the broker */

const struct ctl_opt cmd_pending_opts[] = {
	{ "status", "S", "pending (default), allowed, rejected or expired", 0 },
	{ "limit", "N", "at most N intents, 1..1000 (default 100)", 0 },
	{ "quiet", NULL, "print only the intent ids, one a line (for "
	    "scripts)", 'q' },
	{ "watch", NULL, "redraw the queue whenever it changes (the broker "
	    "tells us: no polling); Ctrl-C stops", 'w' },
	{ NULL, NULL, NULL, 0 }
};
enum { P_STATUS, P_LIMIT, P_QUIET, P_WATCH };

const struct ctl_opt cmd_approve_opts[] = {
	{ "comment", "TEXT", "note kept with the approval", 0 },
	{ NULL, NULL, NULL, 0 }
};

const struct ctl_opt cmd_reject_opts[] = {
	{ "reason", "TEXT", "why (required)", 0 },
	{ NULL, NULL, NULL, 0 }
};

/* --- pending --------------------------------------------------------- */

static const char *const pending_head[] = {
	"ID", "AGE", "AGENT", "TOOL", "AMOUNT", "APPROVALS", "EXPIRES IN"
};
#define PENDING_NCOLS	(sizeof(pending_head) / sizeof(pending_head[0]))

/* One intent view as a table row; "expires in" highlighted when soon. */
static int
pending_row(struct out_table *t, const json_t *v, int64_t now)
{
	char		 age[32] = "-", amount[64], appr[48], exp[32] = "-";
	const char	*cells[PENDING_NCOLS];
	int64_t		 created, expires;
	int		 soon = 0;

	if (out_time(v, "created_at", &created) == 0)
		out_duration(now - created, age, sizeof(age));
	if (strcmp(out_str(v, "status"), "pending") == 0 &&
	    out_time(v, "expires_at", &expires) == 0) {
		if (expires <= now)
			snprintf(exp, sizeof(exp), "expired");
		else
			out_duration(expires - now, exp, sizeof(exp));
		soon = expires - now < PENDING_SOON;
	}
	out_amount(json_object_get(v, "amount"), amount, sizeof(amount));
	out_approvals(v, appr, sizeof(appr));
	cells[0] = out_str(v, "id");
	cells[1] = age;
	cells[2] = out_str(v, "agent");
	cells[3] = out_str(v, "tool");
	cells[4] = amount;
	cells[5] = appr;
	cells[6] = exp;
	if (out_table_row(t, cells) == -1)
		return (-1);
	if (soon)
		out_table_warn(t, PENDING_NCOLS - 1);
	return (0);
}

static int
pending_print(const json_t *items, const char *status)
{
	struct out_table	*t;
	const json_t		*v;
	int64_t			 now = clock_now();
	size_t			 i;

	if (json_array_size(items) == 0) {
		printf("no %s intents\n", status);
		return (CTL_OK);
	}
	if ((t = out_table_new(PENDING_NCOLS, pending_head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(items, i, v)
		if (pending_row(t, v, now) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

/* -q: the ids alone, checked, so a script can loop over them safely. */
static int
pending_print_ids(const struct ctl *ctl, const json_t *items)
{
	const json_t	*v;
	size_t		 i;

	json_array_foreach(items, i, v) {
		if (!ctl_intent_id_ok(out_str(v, "id")))
			return (out_fail("%s answered with a bad intent id "
			    "'%s'", ctl->url, out_str(v, "id")));
		printf("%s\n", out_str(v, "id"));
	}
	return (CTL_OK);
}

/* A next_cursor fit to go back into a query string as it is. */
static int
pending_cursor_ok(const char *c)
{
	size_t	 n = c ? strlen(c) : 0;

	return (n > 0 && n < 64 && strspn(c, "0123456789.-") == n);
}

/*
 * Up to limit intents of status into items, following the broker's pages
 * (a page stops early when its intents are large).  CTL_OK or the exit
 * code (printed).
 */
static int
pending_fetch(const struct ctl *ctl, const char *status, int64_t limit,
    json_t *items)
{
	char		 path[192], cursor[64] = "";
	const char	*next;
	json_t		*ans, *page;
	int		 rc, code;

	while ((int64_t)json_array_size(items) < limit) {
		snprintf(path, sizeof(path), "/v1/approvals?status=%s&limit="
		    "%lld%s%s", status, (long long)(limit -
		    (int64_t)json_array_size(items)), cursor[0] ? "&cursor=" :
		    "", cursor);
		if ((rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &code,
		    &ans)) != CTL_OK)
			return (rc);
		page = json_object_get(ans, "items");
		if (!json_is_array(page)) {
			json_decref(ans);
			return (ctl_fail("%s answered without an items list",
			    ctl->url));
		}
		json_array_extend(items, page);
		next = json_string_value(json_object_get(ans, "next_cursor"));
		if (json_array_size(page) == 0 || !pending_cursor_ok(next)) {
			json_decref(ans);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", next);
		json_decref(ans);
	}
	return (CTL_OK);
}

/* Ctrl-C (or SIGTERM) during --watch: nothing is half-written but a
 * table line, and nothing needs undoing; end the line and leave. */
static void
watch_stop(int sig)
{
	(void)sig;
	(void)!write(STDOUT_FILENO, "\n", 1);
	_exit(CTL_OK);
}

/* One redraw: the screen cleared (on a terminal), a title, the table;
 * with --json one JSON line per answer instead. */
static void
watch_draw(const struct ctl *ctl, const json_t *ans, int tty)
{
	const json_t	*items = json_object_get(ans, "items");
	char		 at[RFC3339_LEN];

	if (ctl->json) {
		out_json_line(ans);
		fflush(stdout);
		return;
	}
	if (tty)
		fputs("\033[H\033[2J", stdout);
	clock_rfc3339(clock_now(), at);
	printf("%zu pending at %s (watching; Ctrl-C stops)\n\n",
	    json_array_size(items), at);
	(void)pending_print(items, "pending");
	fflush(stdout);
}

/*
 * --watch: GET /v1/approvals, then long-polls with the answer's
 * generation (?wait=&since=): the broker answers when the queue changes
 * (or after WATCH_WAIT s, to refresh the ages), and every answer is
 * drawn.  A lost broker is tried again every WATCH_RETRY s.
 */
static int
pending_watch(struct ctl *ctl, int64_t limit)
{
	struct sigaction	 sa;
	char			 path[160];
	json_t			*ans;
	const json_t		*g;
	int64_t			 gen = -1;
	int			 rc, code, tty = isatty(STDOUT_FILENO);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ctl->timeout = WATCH_WAIT + CTL_TIMEOUT;
	for (;;) {
		if (gen < 0)
			snprintf(path, sizeof(path), "/v1/approvals?status="
			    "pending&limit=%lld", (long long)limit);
		else
			snprintf(path, sizeof(path), "/v1/approvals?status="
			    "pending&limit=%lld&wait=%d&since=%lld",
			    (long long)limit, WATCH_WAIT, (long long)gen);
		rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &code, &ans);
		if (rc == CTL_CONN) {
			fprintf(stderr, "toolgatectl: trying again in %d s\n",
			    WATCH_RETRY);
			sleep(WATCH_RETRY);
			gen = -1;
			continue;
		}
		if (rc != CTL_OK)
			return (rc);
		g = json_object_get(ans, "generation");
		if (!json_is_integer(g) || json_integer_value(g) < 0 ||
		    !json_is_array(json_object_get(ans, "items"))) {
			json_decref(ans);
			return (ctl_fail("%s answered without items and a "
			    "generation: is it older than this toolgatectl?",
			    ctl->url));
		}
		gen = json_integer_value(g);
		watch_draw(ctl, ans, tty);
		json_decref(ans);
	}
}

int
cmd_pending(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	const char	*status = a->val[P_STATUS] ? a->val[P_STATUS] : "pending";
	int64_t		 limit = PENDING_DEFAULT_LIMIT;
	json_t		*items;
	int		 rc;

	if (strcmp(status, "pending") != 0 && strcmp(status, "allowed") != 0 &&
	    strcmp(status, "rejected") != 0 && strcmp(status, "expired") != 0)
		return (ctl_usage(cmd, "--status must be pending, allowed, "
		    "rejected or expired"));
	if ((rc = ctl_parse_int(cmd, "--limit", a->val[P_LIMIT], 1,
	    PENDING_MAX_LIMIT, &limit)) != 0 ||
	    (rc = ctl_online(ctl, cmd)) != 0)
		return (rc);
	if (a->val[P_WATCH] != NULL) {
		if (strcmp(status, "pending") != 0 || a->val[P_QUIET] != NULL)
			return (ctl_usage(cmd, "--watch shows the pending "
			    "queue: no --status or -q with it"));
		return (pending_watch(ctl, limit));
	}
	if ((items = json_array()) == NULL)
		return (ctl_fail("out of memory"));
	if ((rc = pending_fetch(ctl, status, limit, items)) == CTL_OK) {
		if (a->val[P_QUIET] != NULL)
			rc = pending_print_ids(ctl, items);
		else if (ctl->json) {
			json_t *ans = json_pack("{sO}", "items", items);

			out_json(ans);
			json_decref(ans);
		} else
			rc = pending_print(items, status);
	}
	json_decref(items);
	return (rc);
}

/* --- show ------------------------------------------------------------ */

/*
 * GET /v1/intents/ID for cmd (show, and
 * toolgatectl wait), after checking id (usage error) and that we
 * are online with an identity.  CTL_OK with *view (new reference), or the
 * exit code (printed).
 */
int
ctl_get_intent(const struct ctl *ctl, const struct ctl_cmd *cmd,
    const char *id, json_t **view)
{
	char	 path[64];
	int	 rc, code;

	*view = NULL;
	if ((rc = ctl_check_intent_id(cmd, id)) != 0 ||
	    (rc = ctl_online(ctl, cmd)) != 0)
		return (rc);
	snprintf(path, sizeof(path), "/v1/intents/%s", id);
	return (ctl_call(ctl, "GET", path, NULL, NULL, 0, &code, view));
}


/* "payments-agent #0 payments.transfer, tier 1 (up to 10000.00 USD)". */
void
show_rule(const json_t *rule)
{
	const json_t	*tier = json_object_get(rule, "tier");
	char		 t[48] = "", max[96] = "";

	if (!json_is_object(rule)) {
		out_kv("rule", "-");
		return;
	}
	if (json_is_integer(tier))
		snprintf(t, sizeof(t), ", tier %" JSON_INTEGER_FORMAT,
		    json_integer_value(tier));
	if (json_is_string(json_object_get(rule, "max")))
		snprintf(max, sizeof(max), " (up to %s %s)",
		    out_str(rule, "max"), out_str(rule, "currency"));
	out_kv("rule", "role %s, rule #%" JSON_INTEGER_FORMAT " %s%s%s",
	    out_str(rule, "role"), json_integer_value(json_object_get(rule,
	    "index")), out_str(rule, "tool"), t, max);
}

/* "n/m" and then one line per approval: who, when, comment. */
static void
show_approvals(const json_t *v)
{
	const json_t	*ap, *roles = json_object_get(v, "approver_roles");
	char		 nm[48], who[512] = "";
	size_t		 i, off = 0;

	json_array_foreach(roles, i, ap) {
		if (off >= sizeof(who))
			break;
		off += (size_t)snprintf(who + off, sizeof(who) - off, "%s%s",
		    i ? ", " : "", json_string_value(ap) ?
		    json_string_value(ap) : "?");
	}
	out_approvals(v, nm, sizeof(nm));
	out_kv("approvals", "%s%s%s%s", nm, who[0] ? " (approvers: " : "",
	    who, who[0] ? ")" : "");
	json_array_foreach(json_object_get(v, "approvals"), i, ap)
		out_kv("", "%s at %s%s%s", out_str(ap, "by"), out_str(ap, "at"),
		    json_is_string(json_object_get(ap, "comment")) ? ": " : "",
		    json_is_string(json_object_get(ap, "comment")) ?
		    out_str(ap, "comment") : "");
}

/* A time line "2026-11-26T23:59:59Z (3m12s ago)" / "(in 56m)". */
static void
show_time(const json_t *v, const char *key, const char *label)
{
	char	 d[32];
	int64_t	 t, now = clock_now();

	if (out_time(v, key, &t) == -1)
		return;
	out_duration(t > now ? t - now : now - t, d, sizeof(d));
	out_kv(label, "%s (%s%s%s)", out_str(v, key), t > now ? "in " : "",
	    d, t > now ? "" : " ago");
}

/* args as indented, ASCII-escaped JSON under the key column, numbers as
 * the agent sent them (RFC 8785: 0.1, not 0.10000000000000001). */
static void
show_args(const json_t *args)
{
	char	*s, *line, *nl;

	if (json_object_size(args) == 0) {
		out_kv("args", "{}");
		return;
	}
	if ((s = jsonw_pretty(args, JSONW_ASCII, NULL)) == NULL)
		return;
	for (line = s; line != NULL; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		out_kv(line == s ? "args" : "", "%s", line);
	}
	free(s);
}

static void
show_print(const json_t *v)
{
	const char	*status = out_str(v, "status");
	char		 amount[64];

	out_amount(json_object_get(v, "amount"), amount, sizeof(amount));
	out_kv("id", "%s", out_str(v, "id"));
	out_kv("status", "%s", status);
	out_kv("agent", "%s", out_str(v, "agent"));
	out_kv("tool", "%s", out_str(v, "tool"));
	out_kv("amount", "%s", amount);
	out_kv("reason", "%s", out_str(v, "agent_reason"));
	show_rule(json_object_get(v, "rule"));
	show_limit(json_object_get(v, "limit"));
	show_approvals(v);
	show_time(v, "created_at", "created");
	if (strcmp(status, "pending") == 0 || strcmp(status, "expired") == 0)
		show_time(v, "expires_at", strcmp(status, "pending") == 0 ?
		    "expires" : "expired");
	show_time(v, "decided_at", "decided");
	show_time(v, "redeemed_at", "redeemed");
	if (json_is_string(json_object_get(v, "closed_by")))
		out_kv(status, "by %s: %s", out_str(v, "closed_by"),
		    out_str(v, "closed_reason"));
	/* What the policy decided when the intent came in. */
	out_kv("policy", "version %" JSON_INTEGER_FORMAT ": %s (%s)",
	    json_integer_value(json_object_get(v, "policy_version")),
	    out_str(v, "reason_code"), out_str(v, "reason"));
	show_args(json_object_get(v, "args"));
	if (json_is_string(json_object_get(v, "grant")))
		out_kv("grant", "%s", out_str(v, "grant"));
}

int
cmd_show(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	json_t	*ans;
	int	 rc;

	if ((rc = ctl_get_intent(ctl, cmd, a->pos[0], &ans)) != CTL_OK)
		return (rc);
	if (ctl->json)
		out_json(ans);
	else
		show_print(ans);
	json_decref(ans);
	return (CTL_OK);
}

/* --- approve, reject ------------------------------------------------- */

/* The outcome of an approve or reject: status, n/m, what it means. */
static void
decide_print(const json_t *v)
{
	const char	*status = out_str(v, "status");
	char		 nm[48];
	int64_t		 need, have;

	out_approvals(v, nm, sizeof(nm));
	out_kv("id", "%s", out_str(v, "id"));
	out_kv("status", "%s", status);
	out_kv("approvals", "%s", nm);
	if (json_is_string(json_object_get(v, "closed_by")))
		out_kv(status, "by %s: %s", out_str(v, "closed_by"),
		    out_str(v, "closed_reason"));
	if (strcmp(status, "allowed") == 0)
		printf("released: the agent's grant is ready\n");
	else if (strcmp(status, "pending") == 0) {
		need = json_integer_value(json_object_get(v,
		    "approvals_required"));
		have = (int64_t)json_array_size(json_object_get(v,
		    "approvals"));
		printf("waiting for %lld more approval%s\n",
		    (long long)(need - have), need - have == 1 ? "" : "s");
	}
}

/*
 * POST /v1/approvals/ID/verb with {field: text} (text may be NULL: {}),
 * then print the resulting intent.
 */
static int
decide(struct ctl *ctl, const struct ctl_cmd *cmd, const char *id,
    const char *verb, const char *field, const char *text)
{
	char	 path[96], *body = NULL;
	json_t	*doc, *ans;
	int	 rc, code;

	if ((rc = ctl_check_intent_id(cmd, id)) != 0 ||
	    (rc = ctl_online(ctl, cmd)) != 0)
		return (rc);
	doc = text != NULL ? json_pack("{ss}", field, text) : json_object();
	if (doc == NULL || (body = json_dumps(doc, JSON_COMPACT)) == NULL) {
		json_decref(doc);
		return (ctl_usage(cmd, "--%s must be UTF-8 text", field));
	}
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/approvals/%s/%s", id, verb);
	rc = ctl_call(ctl, "POST", path, "application/json", body,
	    strlen(body), &code, &ans);
	free(body);
	if (rc != CTL_OK)
		return (rc);
	if (ctl->json)
		out_json(ans);
	else
		decide_print(ans);
	json_decref(ans);
	return (CTL_OK);
}

int
cmd_approve(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	return (decide(ctl, cmd, a->pos[0], "approve", "comment", a->val[0]));
}

int
cmd_reject(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	/* Refused here, before any request: a rejection must say why. */
	if (a->val[0] == NULL || a->val[0][0] == '\0')
		return (ctl_usage(cmd, "--reason is required"));
	return (decide(ctl, cmd, a->pos[0], "reject", "reason", a->val[0]));
}
