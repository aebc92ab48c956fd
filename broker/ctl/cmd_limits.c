/*
 * cmd_limits: toolgatectl limits and policy explain (CONTRACT §8.3-§8.4)
 * — the usage of cumulative limits as a table, and what the policy would
 * answer a call, and why.  Online they are GET /v1/limits and POST
 * /v1/policy/explain; with --db (and, for explain, --file: a policy not
 * yet applied) the same core functions run here on the database, so both
 * print the same lines.  Neither records anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "amount.h"
#include "clock.h"
#include "ctl.h"
#include "jsonw.h"
#include "policy.h"
#include "usage.h"

#define LIMITS_PAGE	1000	/* rows per page asked for */
#define LIMITS_MAX	100000	/* rows listed at most */
#define EXPLAIN_MAX_BODY (64 * 1024)

const struct ctl_opt cmd_limits_opts[] = {
	{ "agent", "NAME", "only the counters of this agent (an agent sees "
	    "only its own anyway)", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { L_AGENT };

const struct ctl_opt cmd_explain_opts[] = {
	{ "agent", "NAME", "the principal making the call (required)", 0 },
	{ "tool", "NAME", "the tool it calls (required)", 0 },
	{ "args", "JSON", "its arguments, a JSON object; @FILE reads it from "
	    "FILE, - from standard input", 0 },
	{ "amount", "VALUE", "an amount claim beside args, e.g. 12.50", 0 },
	{ "currency", "CODE", "currency of --amount, e.g. USD", 0 },
	{ "file", "POLICY", "judge by this policy file, not the one in force "
	    "(offline; usage and kill switches from --db when given)", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { X_AGENT, X_TOOL, X_ARGS, X_AMOUNT, X_CURRENCY, X_FILE };

/* --- shared lines --------------------------------------------------------- */

/* A usage or maximum ("19999.80 USD", "17"), "-" when null. */
static void
usage_cell(const json_t *v, const json_t *currency, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s%s%s", json_string_value(v),
		    json_is_string(currency) ? " " : "",
		    json_is_string(currency) ? json_string_value(currency) :
		    "");
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else
		snprintf(buf, len, "-");
}

/* "in 23h59m" for the RFC 3339 time obj[key]; never for null. */
static void
frees_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	char	 d[32];
	int64_t	 t, now = clock_now();

	if (json_is_null(json_object_get(obj, key))) {
		snprintf(buf, len, "never");
		return;
	}
	if (out_time(obj, key, &t) == -1) {
		snprintf(buf, len, "-");
		return;
	}
	out_duration(t - now, d, sizeof(d));
	snprintf(buf, len, "%s", d);
}

void
show_limit(const json_t *limit)
{
	char	 used[96], max[96], win[32], when[48];

	if (!json_is_object(limit))
		return;
	usage_cell(json_object_get(limit, "used"), NULL, used, sizeof(used));
	usage_cell(json_object_get(limit, "max"), NULL, max, sizeof(max));
	out_duration(json_integer_value(json_object_get(limit, "window")),
	    win, sizeof(win));
	frees_cell(limit, "frees_at", when, sizeof(when));
	out_kv("limit", "%s: %s used of %s in a %s window; fits again %s%s",
	    out_str(limit, "name"), used, max, win,
	    strcmp(when, "never") == 0 ? "" : "in ", when);
}

/* The key ["agent-payments"] as one compact line. */
static void
key_cell(const json_t *key, char *buf, size_t len)
{
	char	*s = jsonw_dump(key, JSONW_PLAIN, NULL);

	snprintf(buf, len, "%s", s != NULL ? s : "-");
	free(s);
}

/* --- limits ------------------------------------------------------------------ */

static const char *const limits_head[] = {
	"LIMIT", "KEY", "USED", "MAX", "WINDOW", "FREES IN"
};
#define LIMITS_NCOLS	(sizeof(limits_head) / sizeof(limits_head[0]))

static int
limits_print(const json_t *items, const char *agent)
{
	struct out_table	*t;
	const json_t		*v;
	const char		*cells[LIMITS_NCOLS];
	char			 key[256], used[96], max[96], win[32];
	char			 when[48];
	size_t			 i;

	if (json_array_size(items) == 0) {
		printf("no usage counted%s%s\n", agent ? " for " : "",
		    agent ? agent : "");
		return (CTL_OK);
	}
	if ((t = out_table_new(LIMITS_NCOLS, limits_head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(items, i, v) {
		key_cell(json_object_get(v, "key"), key, sizeof(key));
		usage_cell(json_object_get(v, "used"), json_object_get(v,
		    "currency"), used, sizeof(used));
		usage_cell(json_object_get(v, "max"), json_object_get(v,
		    "currency"), max, sizeof(max));
		out_duration(json_integer_value(json_object_get(v, "window")),
		    win, sizeof(win));
		frees_cell(v, "frees_at", when, sizeof(when));
		cells[0] = out_str(v, "name");
		cells[1] = key;
		cells[2] = used;
		cells[3] = max;
		cells[4] = win;
		cells[5] = when;
		if (out_table_row(t, cells) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
	}
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

/* name, percent-encoded for a query string, into buf (room for 3x). */
static void
query_escape(const char *name, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		 o = 0;

	for (; *name != '\0' && o + 4 < len; name++) {
		unsigned char c = (unsigned char)*name;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
			buf[o++] = (char)c;
		else {
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
}

/* Every page of GET /v1/limits into items.  CTL_OK or the exit code. */
static int
limits_fetch(const struct ctl *ctl, const char *agent, json_t *items)
{
	char		 path[1024], who[800] = "", cursor[32] = "";
	const char	*next;
	json_t		*ans;
	int		 rc, status;

	if (agent != NULL)
		query_escape(agent, who, sizeof(who));
	for (;;) {
		snprintf(path, sizeof(path), "/v1/limits?limit=%d%s%s%s%s",
		    LIMITS_PAGE, who[0] ? "&principal=" : "", who,
		    cursor[0] ? "&cursor=" : "", cursor);
		if ((rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &status,
		    &ans)) != CTL_OK)
			return (rc);
		json_array_extend(items, json_object_get(ans, "items"));
		next = json_string_value(json_object_get(ans, "next_cursor"));
		if (next == NULL || strlen(next) >= sizeof(cursor) ||
		    strspn(next, "0123456789") != strlen(next) ||
		    json_array_size(items) >= LIMITS_MAX) {
			json_decref(ans);
			return (CTL_OK);
		}
		snprintf(cursor, sizeof(cursor), "%s", next);
		json_decref(ans);
	}
}

/* The same pages read from --db. */
static int
limits_offline(const struct ctl *ctl, const char *agent, json_t *items)
{
	struct decider	 d;
	struct store	*s;
	int64_t		 after = 0, next;
	int		 rc;

	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	decider_init(&d, s, "toolgatectl", NULL);
	rc = CTL_OK;
	if (decider_refresh(&d) == -1)
		rc = ctl_fail("%s: could not read the policy", ctl->db);
	while (rc == CTL_OK) {
		if (usage_list(s, d.policy, agent, clock_now(), after,
		    LIMITS_PAGE, items, &next) == -1)
			rc = ctl_fail("%s: could not read the usage", ctl->db);
		if (next == 0 || json_array_size(items) >= LIMITS_MAX)
			break;
		after = next;
	}
	decider_deinit(&d);
	store_close(s);
	return (rc);
}

int
cmd_limits(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	const char	*agent = a->val[L_AGENT];
	json_t		*items, *out;
	int		 rc;

	if (agent != NULL && agent[0] == '\0')
		return (ctl_usage(cmd, "--agent is empty"));
	if (ctl->db == NULL && (rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	if ((items = json_array()) == NULL)
		return (ctl_fail("out of memory"));
	rc = ctl->db != NULL ? limits_offline(ctl, agent, items) :
	    limits_fetch(ctl, agent, items);
	if (rc == CTL_OK && ctl->json) {
		out = json_pack("{sO}", "items", items);
		out_json(out);
		json_decref(out);
	} else if (rc == CTL_OK)
		rc = limits_print(items, agent);
	json_decref(items);
	return (rc);
}

/* --- policy explain ---------------------------------------------------------- */

static const char *const explain_head[] = {
	"LIMIT", "KEY", "USED", "ADDS", "MAX", "WINDOW", "HOLDS", "FREES IN"
};
#define EXPLAIN_NCOLS	(sizeof(explain_head) / sizeof(explain_head[0]))

/* "/to holds, /items/2 fails (max)". */
static void
explain_conditions(const json_t *conds)
{
	const json_t	*c;
	char		 line[1024];
	size_t		 i, off = 0;

	if (json_array_size(conds) == 0)
		return;
	line[0] = '\0';
	json_array_foreach(conds, i, c) {
		if (off >= sizeof(line))
			break;
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    "%s%s %s%s%s%s", i ? ", " : "", out_str(c, "pointer"),
		    json_is_true(json_object_get(c, "holds")) ? "holds" :
		    "fails", json_is_string(json_object_get(c, "condition")) ?
		    " (" : "", json_is_string(json_object_get(c,
		    "condition")) ? out_str(c, "condition") : "",
		    json_is_string(json_object_get(c, "condition")) ? ")" :
		    "");
	}
	out_kv("conditions", "%s", line);
}

static int
explain_limits(const json_t *limits)
{
	struct out_table	*t;
	const json_t		*v, *cur;
	const char		*cells[EXPLAIN_NCOLS];
	char			 key[256], used[96], adds[96], max[96];
	char			 win[32], when[48];
	size_t			 i;

	if (json_array_size(limits) == 0)
		return (CTL_OK);
	if ((t = out_table_new(EXPLAIN_NCOLS, explain_head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(limits, i, v) {
		cur = json_object_get(v, "currency");
		key_cell(json_object_get(v, "key"), key, sizeof(key));
		usage_cell(json_object_get(v, "used"), cur, used, sizeof(used));
		usage_cell(json_object_get(v, "adds"), cur, adds, sizeof(adds));
		usage_cell(json_object_get(v, "max"), cur, max, sizeof(max));
		out_duration(json_integer_value(json_object_get(v, "window")),
		    win, sizeof(win));
		if (json_is_true(json_object_get(v, "holds")))
			snprintf(when, sizeof(when), "-");
		else
			frees_cell(v, "frees_at", when, sizeof(when));
		cells[0] = out_str(v, "name");
		cells[1] = key;
		cells[2] = used;
		cells[3] = adds;
		cells[4] = max;
		cells[5] = win;
		cells[6] = json_is_true(json_object_get(v, "holds")) ? "yes" :
		    "NO";
		cells[7] = when;
		if (out_table_row(t, cells) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
		if (!json_is_true(json_object_get(v, "holds")))
			out_table_warn(t, 6);
	}
	putchar('\n');
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

static int
explain_print(const json_t *o, const char *file)
{
	const json_t	*roles = json_object_get(o, "approver_roles"), *r;
	char		 amount[64], who[512] = "";
	size_t		 i, off = 0;

	if (json_is_string(json_object_get(o, "decision")))
		out_kv("decision", "%s (%s)", out_str(o, "decision"),
		    out_str(o, "reason_code"));
	else
		out_kv("decision", "none: refused with 400 %s",
		    out_str(o, "reason_code"));
	out_kv("reason", "%s", out_str(o, "reason"));
	if (file != NULL)
		out_kv("policy", "%s (not applied)", file);
	else
		out_kv("policy", "version %" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(o, "policy_version")));
	out_amount(json_object_get(o, "amount"), amount, sizeof(amount));
	out_kv("amount", "%s", amount);
	show_rule(json_object_get(o, "rule"));
	explain_conditions(json_object_get(json_object_get(o, "rule"),
	    "conditions"));
	if (strcmp(out_str(o, "decision"), "pending") == 0) {
		json_array_foreach(roles, i, r) {
			if (off >= sizeof(who))
				break;
			off += (size_t)snprintf(who + off, sizeof(who) - off,
			    "%s%s", i ? ", " : "", json_string_value(r) ?
			    json_string_value(r) : "?");
		}
		out_kv("approvals", "%" JSON_INTEGER_FORMAT " (approvers: %s)",
		    json_integer_value(json_object_get(o,
		    "approvals_required")), who[0] ? who : "none");
	}
	show_limit(json_object_get(o, "limit"));
	return (explain_limits(json_object_get(o, "limits")));
}

/* The request body {"principal", "tool", "args", "amount"} from the
 * flags (malloc'd JSON text, numbers as RFC 8785 writes them).  0 or the
 * usage exit code. */
static int
explain_body(const struct ctl_cmd *cmd, const struct ctl_args *a,
    char **text)
{
	const char	*tool = a->val[X_TOOL], *v = a->val[X_AMOUNT];
	const char	*cur = a->val[X_CURRENCY];
	struct amount	 am;
	json_t		*body, *args = NULL;
	int		 rc;

	*text = NULL;
	if (a->val[X_AGENT] == NULL || a->val[X_AGENT][0] == '\0')
		return (ctl_usage(cmd, "--agent is required"));
	if (tool == NULL || !policy_tool_name_valid(tool))
		return (ctl_usage(cmd, "--tool is required: a tool name like "
		    "payments.transfer"));
	if ((v == NULL) != (cur == NULL))
		return (ctl_usage(cmd, "--amount and --currency go together"));
	if (v != NULL && (amount_parse_value(v, strlen(v), &am) == -1 ||
	    !amount_currency_valid(cur)))
		return (ctl_usage(cmd, "bad amount '%s %s' (want a decimal "
		    "like 12.50 and a currency like USD)", v, cur));
	if ((rc = ctl_parse_args(cmd, a->val[X_ARGS], &args)) != 0)
		return (rc);
	body = json_pack("{ss ss}", "principal", a->val[X_AGENT], "tool",
	    tool);
	if (body != NULL && args != NULL)
		json_object_set(body, "args", args);
	if (body != NULL && v != NULL)
		json_object_set_new(body, "amount", json_pack("{ss ss}",
		    "value", v, "currency", cur));
	/* jsonw: each number the shortest text of its double, the value
	 * typed (ctl_parse_args refused one it would change) */
	if (body != NULL)
		*text = jsonw_dump(body, JSONW_PLAIN, NULL);
	json_decref(body);
	json_decref(args);
	if (*text == NULL)
		return (ctl_usage(cmd, "--agent and --args must be UTF-8"));
	return (0);
}

/*
 * Explain here, on --db and/or a policy file: the same lc_explain the
 * broker runs.  *out the answer (new reference).  CTL_OK or the exit
 * code.
 */
static int
explain_offline(const struct ctl *ctl, const char *file, const char *body,
    json_t **out)
{
	struct decider		 d;
	struct policy_call	 call;
	struct intent		 in;
	struct store		*s = NULL;
	struct policy		*p = NULL;
	json_t			*w = NULL, *req;
	const char		*msg = "";
	char			*text = NULL;
	size_t			 len;
	enum reason		 r;
	int			 rc;

	*out = NULL;
	if (file != NULL) {
		if ((rc = ctl_policy_load(ctl, file, &text, &len, &w)) !=
		    CTL_OK)
			return (rc);
		p = policy_parse(text, len, NULL);
		free(text);
		json_decref(w);
		if (p == NULL)
			return (ctl_fail("%s: out of memory", file));
	}
	if (ctl->db != NULL && (rc = ctl_store_open(ctl, 0, &s)) != CTL_OK) {
		policy_free(p);
		return (rc);
	}
	decider_init(&d, s, "toolgatectl", NULL);
	rc = CTL_OK;
	if (s != NULL && decider_refresh(&d) == -1)
		rc = ctl_fail("%s: could not read the policy", ctl->db);
	if (p != NULL) {
		/* the file's rules, the database's usage and switches */
		policy_free(d.policy);
		d.policy = p;
		d.policy_version = 0;
	}
	if (rc == CTL_OK && d.policy == NULL)
		rc = ctl_fail("%s: no policy applied yet (or give --file)",
		    ctl->db);
	req = json_loads(body, 0, NULL);
	if (rc == CTL_OK && (r = intent_call_parse(body, strlen(body), &in,
	    &msg)) != REASON_OK)
		rc = ctl_fail("%s: %s", reason_code(r), msg);
	else if (rc == CTL_OK) {
		memset(&call, 0, sizeof(call));
		call.principal = json_string_value(json_object_get(req,
		    "principal"));
		call.tool = in.tool;
		call.args = in.args;
		call.args_json = in.args_json;
		call.args_json_len = in.args_json_len;
		call.amount = in.has_amount ? &in.amount : NULL;
		call.amount_text = in.has_amount ? in.amount_text : NULL;
		if ((*out = lc_explain(&d, &call, clock_now())) == NULL)
			rc = ctl_fail("could not read the usage");
		intent_clear(&in);
	}
	json_decref(req);
	decider_deinit(&d);
	store_close(s);
	return (rc);
}

int
cmd_policy_explain(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	const char	*file = a->val[X_FILE];
	char		*body;
	json_t		*ans = NULL;
	int		 rc, status;

	if ((rc = explain_body(cmd, a, &body)) != 0)
		return (rc);
	if (body == NULL)	/* explain_body says why when it fails */
		return (ctl_fail("out of memory"));
	if (strlen(body) > EXPLAIN_MAX_BODY) {
		free(body);
		return (ctl_usage(cmd, "--args is too large"));
	}
	if (file != NULL || ctl->db != NULL)
		rc = explain_offline(ctl, file, body, &ans);
	else if ((rc = ctl_need_identity(ctl, cmd)) == 0)
		rc = ctl_call(ctl, "POST", "/v1/policy/explain",
		    "application/json", body, strlen(body), &status, &ans);
	free(body);
	if (rc == CTL_OK && ctl->json)
		out_json(ans);
	else if (rc == CTL_OK)
		rc = explain_print(ans, file);
	json_decref(ans);
	return (rc);
}
