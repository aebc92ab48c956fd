/*
 * cmd_killswitch: toolgatectl killswitch trip | status | reset — the
 * operator's emergency stop (CONTRACT §4).  Online through the broker's
 * API, or offline with --db straight on the database through
 * killswitch.c, so a stop works with the broker down or hung (a running
 * broker honours it within a second).  Both paths print the same lines
 * from the same switch object {id, scope, target, reason, by, at}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "ctl.h"
#include "killswitch.h"

static int	ks_cmd_trip(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	ks_cmd_status(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	ks_cmd_reset(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

static const struct ctl_opt opts_trip[] = {
	{ "agent", "NAME", "stop one agent identity", 0 },
	{ "tool", "PATTERN", "stop one tool or a prefix.* pattern", 0 },
	{ "reason", "TEXT", "why (required)", 0 },
	{ "reject-pending", NULL, "also reject every pending intent covered", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { T_AGENT, T_TOOL, T_REASON, T_REJECT };

static const struct ctl_opt opts_reset[] = {
	{ "reason", "TEXT", "why (required)", 0 },
	{ NULL, NULL, NULL, 0 }
};

const struct ctl_cmd cmd_killswitch[] = {
	{ "trip", "killswitch trip", "[--agent NAME | --tool PATTERN] "
	    "--reason TEXT [--reject-pending]", "stop intents, approvals and redemptions "
	    "(neither --agent nor --tool: everything)",
	    "toolgatectl killswitch trip --tool 'payments.*' --reason incident",
	    opts_trip, 0, ks_cmd_trip, NULL },
	{ "status", "killswitch status", "", "show the engaged switches",
	    "toolgatectl --db toolgate.db killswitch status",
	    opts_none, 0, ks_cmd_status, NULL },
	{ "reset", "killswitch reset", "ID --reason TEXT",
	    "release one switch", "toolgatectl killswitch reset 3 "
	    "--reason 'incident closed'",
	    opts_reset, 1, ks_cmd_reset, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

static const char *const status_head[] = {
	"ID", "SCOPE", "TARGET", "BY", "AT", "REASON"
};
#define STATUS_NCOLS	(sizeof(status_head) / sizeof(status_head[0]))

/* What a switch covers, for humans. */
static void
ks_covers_text(const json_t *sw, char *buf, size_t len)
{
	const char	*scope = out_str(sw, "scope");

	if (strcmp(scope, "global") == 0)
		snprintf(buf, len, "global: every agent and tool");
	else
		snprintf(buf, len, "%s %s", scope, out_str(sw, "target"));
}

/* The switch's id, scope and reason as aligned lines. */
static void
ks_print_switch(const json_t *sw)
{
	char	 covers[512];

	ks_covers_text(sw, covers, sizeof(covers));
	out_kv("switch", "%" JSON_INTEGER_FORMAT,
	    json_integer_value(json_object_get(sw, "id")));
	out_kv("covers", "%s", covers);
	out_kv("reason", "%s", out_str(sw, "reason"));
	out_kv("by", "%s at %s", out_str(sw, "by"), out_str(sw, "at"));
	if (json_is_string(json_object_get(sw, "reset_by")))
		out_kv("reset", "by %s at %s: %s", out_str(sw, "reset_by"),
		    out_str(sw, "reset_at"), out_str(sw, "reset_reason"));
}

/* After a trip: the switch, then the intents it rejected. */
static int
ks_print_trip(const struct ctl *ctl, const json_t *sw)
{
	const json_t	*rejected = json_object_get(sw, "rejected"), *id;
	size_t		 i, n = json_array_size(rejected);

	if (ctl->json) {
		out_json(sw);
		return (CTL_OK);
	}
	ks_print_switch(sw);
	printf("rejected %zu pending intent%s\n", n, n == 1 ? "" : "s");
	json_array_foreach(rejected, i, id)
		out_kv("", "%s", json_string_value(id) ? json_string_value(id) :
		    "-");
	return (CTL_OK);
}

/* The ids a transaction rejected, as a JSON array (new reference). */
static json_t *
ks_rejected_json(const struct lc_changes *ch)
{
	json_t	*ids = json_array();
	size_t	 i;

	for (i = 0; ids != NULL && i < ch->n; i++)
		json_array_append_new(ids, json_string(ch->ids[i]));
	return (ids);
}

/* Trip on the database itself; the answer shaped like the API's 201. */
static int
ks_trip_offline(const struct ctl *ctl, const struct ctl_cmd *cmd,
    enum ks_scope scope, const char *target, const char *reason,
    int reject)
{
	struct decider	 d;
	struct store	*s;
	const char	*why = NULL;
	char		 actor[300];
	json_t		*sw = NULL;
	int64_t		 id = 0;
	enum reason	 r;
	int		 rc;

	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	ctl_actor(actor, sizeof(actor));
	decider_init(&d, s, "toolgatectl", NULL);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d, lc_trip(&d,
	    actor, scope, target, reason, reject, clock_now(), &id, &why));
	if (r == E_BAD_REQUEST)
		rc = ctl_usage(cmd, "%s", why);
	else if (r != REASON_OK)
		rc = ctl_fail("%s: could not store the kill switch", ctl_db_name(ctl));
	else if ((sw = ks_get(s, id)) == NULL ||
	    json_object_set_new(sw, "rejected",
	    ks_rejected_json(&d.changed)) == -1)
		rc = ctl_fail("%s: kill switch %lld tripped, but could not "
		    "read it back", ctl_db_name(ctl), (long long)id);
	else
		rc = ks_print_trip(ctl, sw);
	json_decref(sw);
	decider_deinit(&d);
	store_close(s);
	return (rc);
}

static int
ks_trip_online(const struct ctl *ctl, const struct ctl_cmd *cmd,
    const char *scope, const char *target, const char *reason, int reject)
{
	char	*body;
	json_t	*doc, *ans;
	int	 rc, code;

	doc = json_pack("{ss ss sb}", "scope", scope, "reason", reason,
	    "reject_pending", reject);
	if (doc != NULL && target != NULL &&
	    json_object_set_new(doc, "target", json_string(target)) == -1) {
		json_decref(doc);
		doc = NULL;
	}
	body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (body == NULL)
		return (ctl_usage(cmd, "--reason, --agent and --tool must be "
		    "UTF-8 text"));
	rc = ctl_call(ctl, "POST", "/v1/killswitch", "application/json", body,
	    strlen(body), &code, &ans);
	free(body);
	if (rc != CTL_OK)
		return (rc);
	rc = ks_print_trip(ctl, ans);
	json_decref(ans);
	return (rc);
}

static int
ks_cmd_trip(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	const char	*agent = a->val[T_AGENT], *tool = a->val[T_TOOL];
	const char	*reason = a->val[T_REASON], *target = NULL;
	enum ks_scope	 scope = KS_GLOBAL;
	int		 rc, reject = a->val[T_REJECT] != NULL;

	if (agent != NULL && tool != NULL)
		return (ctl_usage(cmd, "--agent and --tool exclude each other "
		    "(trip two switches)"));
	if (reason == NULL || reason[0] == '\0')
		return (ctl_usage(cmd, "--reason is required"));
	if (agent != NULL)
		scope = KS_AGENT, target = agent;
	else if (tool != NULL)
		scope = KS_TOOL, target = tool;
	if (target != NULL && target[0] == '\0')
		return (ctl_usage(cmd, "--%s is empty", agent ? "agent" :
		    "tool"));
	if (ctl->db != NULL)
		return (ks_trip_offline(ctl, cmd, scope, target, reason,
		    reject));
	if ((rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	return (ks_trip_online(ctl, cmd, scope == KS_GLOBAL ? "global" :
	    scope == KS_AGENT ? "agent" : "tool", target, reason, reject));
}

/* {"engaged", "switches"}: a headline and the table, or JSON. */
static int
ks_print_status(const struct ctl *ctl, const json_t *st)
{
	const json_t		*list = json_object_get(st, "switches"), *sw;
	const char		*cells[STATUS_NCOLS];
	struct out_table	*t;
	char			 id[32];
	size_t			 i, n = json_array_size(list);

	if (ctl->json) {
		out_json(st);
		return (CTL_OK);
	}
	if (!json_is_true(json_object_get(st, "engaged"))) {
		printf("not engaged: no kill switch is on\n");
		return (CTL_OK);
	}
	printf("ENGAGED: %zu kill switch%s\n", n, n == 1 ? "" : "es");
	if ((t = out_table_new(STATUS_NCOLS, status_head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(list, i, sw) {
		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(sw, "id")));
		cells[0] = id;
		cells[1] = out_str(sw, "scope");
		cells[2] = out_str(sw, "target");
		cells[3] = out_str(sw, "by");
		cells[4] = out_str(sw, "at");
		cells[5] = out_str(sw, "reason");
		if (out_table_row(t, cells) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
	}
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

static int
ks_cmd_status(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	struct store	*s;
	json_t		*st = NULL;
	int		 rc, code;

	if (ctl->db != NULL) {
		if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
			return (rc);
		st = ks_status(s);
		store_close(s);
		if (st == NULL)
			return (ctl_fail("%s: could not read the kill switches",
			    ctl_db_name(ctl)));
	} else if ((rc = ctl_need_identity(ctl, cmd)) != 0 ||
	    (rc = ctl_call(ctl, "GET", "/v1/killswitch", NULL, NULL, 0, &code,
	    &st)) != CTL_OK)
		return (rc);
	rc = ks_print_status(ctl, st);
	json_decref(st);
	return (rc);
}

/* The switch after a reset, as lines or JSON. */
static int
ks_print_reset(const struct ctl *ctl, const json_t *sw)
{
	if (ctl->json) {
		out_json(sw);
		return (CTL_OK);
	}
	ks_print_switch(sw);
	printf("kill switch %" JSON_INTEGER_FORMAT " reset; see what is "
	    "still engaged: toolgatectl killswitch status\n",
	    json_integer_value(json_object_get(sw, "id")));
	return (CTL_OK);
}

static int
ks_reset_offline(const struct ctl *ctl, const struct ctl_cmd *cmd,
    int64_t id, const char *reason)
{
	struct decider	 d;
	struct store	*s;
	const char	*why = NULL;
	char		 actor[300];
	json_t		*sw = NULL;
	enum reason	 r;
	int		 rc;

	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	ctl_actor(actor, sizeof(actor));
	decider_init(&d, s, "toolgatectl", NULL);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d, lc_reset(&d,
	    actor, id, reason, clock_now(), &why));
	if (r == E_BAD_REQUEST)
		rc = ctl_usage(cmd, "%s", why);
	else if (r == E_NOT_FOUND)
		rc = ctl_fail("no engaged kill switch %lld", (long long)id);
	else if (r != REASON_OK)
		rc = ctl_fail("%s: could not reset kill switch %lld", ctl_db_name(ctl),
		    (long long)id);
	else if ((sw = ks_get(s, id)) == NULL)
		rc = ctl_fail("%s: kill switch %lld reset, but could not read "
		    "it back", ctl_db_name(ctl), (long long)id);
	else
		rc = ks_print_reset(ctl, sw);
	json_decref(sw);
	decider_deinit(&d);
	store_close(s);
	return (rc);
}

static int
ks_cmd_reset(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	const char	*reason = a->val[0];
	char		 path[64], *body;
	int64_t		 id = 0;
	json_t		*doc, *ans;
	int		 rc, code;

	if ((rc = ctl_parse_int(cmd, "ID", a->pos[0], 1, INT64_MAX, &id)) != 0)
		return (rc);
	if (reason == NULL || reason[0] == '\0')
		return (ctl_usage(cmd, "--reason is required"));
	if (ctl->db != NULL)
		return (ks_reset_offline(ctl, cmd, id, reason));
	if ((rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	doc = json_pack("{ss}", "reason", reason);
	body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (body == NULL)
		return (ctl_usage(cmd, "--reason must be UTF-8 text"));
	snprintf(path, sizeof(path), "/v1/killswitch/%lld/reset",
	    (long long)id);
	rc = ctl_call(ctl, "POST", path, "application/json", body,
	    strlen(body), &code, &ans);
	free(body);
	if (rc != CTL_OK)
		return (rc);
	rc = ks_print_reset(ctl, ans);
	json_decref(ans);
	return (rc);
}
