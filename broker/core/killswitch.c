/*
 * killswitch: operators' emergency stops (CONTRACT §4).  Owns the
 * killswitches table and the "killswitch" row of counters: every trip and
 * reset bumps that counter in the same transaction, so a reader (any
 * thread, any process on the same file) learns that something changed from
 * one primary-key lookup and reloads the engaged switches only then.
 * Trips and resets are audited here; rejecting covered pending intents
 * happens in the trip's own transaction, so no approval can slip between
 * the trip and the rejection.  Nothing here knows about HTTP or policy
 * beyond tool-pattern matching.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "killswitch.h"
#include "log.h"
#include "policy.h"

#define KS_REASON_MAX	1024	/* characters (UTF-8 code points) */
#define KS_AGENT_MAX	255	/* bytes, as identities (ident.h) */

static const char SQL_GENERATION[] =
    "SELECT value FROM counters WHERE name = 'killswitch'";
static const char SQL_BUMP[] =
    "UPDATE counters SET value = value + 1 WHERE name = 'killswitch'";
static const char SQL_ENGAGED[] =
    "SELECT id, scope, target FROM killswitches WHERE reset_at IS NULL "
    "ORDER BY id";
static const char SQL_INSERT[] =
    "INSERT INTO killswitches (scope, target, reason, tripped_by, "
    "tripped_at) VALUES (?, ?, ?, ?, ?)";
static const char SQL_PENDING[] =
    "SELECT id, agent, tool FROM intents WHERE status = 'pending' "
    "ORDER BY created_at, rowid";
static const char SQL_REJECT[] =
    "UPDATE intents SET status = 'rejected', decided_at = ?, closed_by = ?, "
    "closed_reason = 'kill switch: ' || ?, reason_text = 'rejected by a kill switch' "
    "WHERE id = ? AND status = 'pending'";
static const char SQL_RESET[] =
    "UPDATE killswitches SET reset_by = ?, reset_at = ?, reset_reason = ? "
    "WHERE id = ? AND reset_at IS NULL";
static const char SQL_GET[] =
    "SELECT id, scope, target, reason, tripped_by, tripped_at, reset_by, "
    "reset_at, reset_reason FROM killswitches WHERE id = ?";
static const char SQL_LIST_ENGAGED[] =
    "SELECT id, scope, target, reason, tripped_by, tripped_at, reset_by, "
    "reset_at, reset_reason FROM killswitches WHERE reset_at IS NULL "
    "ORDER BY id";

static const char *const scope_names[] = {
	[KS_GLOBAL] = "global", [KS_AGENT] = "agent", [KS_TOOL] = "tool"
};

void
ks_cache_init(struct ks_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->generation = -1;
}

static void
ks_entries_free(struct ks_entry *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i].target);
	free(v);
}

/* Frees the entries; c is left as after ks_cache_init (never read). */
void
ks_cache_clear(struct ks_cache *c)
{
	ks_entries_free(c->v, c->n);
	ks_cache_init(c);
}

int
ks_scope_parse(const char *s, enum ks_scope *out)
{
	size_t	 i;

	if (s == NULL)
		return (-1);
	for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (strcmp(s, scope_names[i]) == 0) {
			*out = (enum ks_scope)i;
			return (0);
		}
	return (-1);
}

static int
ks_generation(struct db *db, int64_t *gen)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((st = db_stmt(db, SQL_GENERATION)) == NULL)
		return (-1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*gen = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		/* A missing row would mean "never changes": fail closed. */
		log_warnx("%s: %s", __func__, rc == SQLITE_DONE ?
		    "counter row missing" : sqlite3_errmsg(db->sql));
		return (-1);
	}
	return (0);
}

/* Read the engaged switches into a fresh array.  0 or -1. */
static int
ks_load(struct db *db, struct ks_entry **vp, size_t *np)
{
	sqlite3_stmt	*st;
	struct ks_entry	*v = NULL, *nv;
	size_t		 n = 0, cap = 0;
	const char	*scope, *target;
	int		 rc;

	if ((st = db_stmt(db, SQL_ENGAGED)) == NULL)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].id = sqlite3_column_int64(st, 0);
		scope = (const char *)sqlite3_column_text(st, 1);
		target = (const char *)sqlite3_column_text(st, 2);
		if (ks_scope_parse(scope, &v[n].scope) == -1 ||
		    (v[n].scope != KS_GLOBAL && target == NULL)) {
			log_warnx("%s: switch %lld is malformed", __func__,
			    (long long)v[n].id);
			goto fail;
		}
		if (v[n].scope != KS_GLOBAL &&
		    (v[n].target = strdup(target)) == NULL)
			goto fail;
		n++;
	}
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(db->sql));
		goto fail;
	}
	sqlite3_reset(st);
	*vp = v;
	*np = n;
	return (0);
 fail:
	sqlite3_reset(st);
	ks_entries_free(v, n);
	return (-1);
}

int
ks_refresh(struct db *db, struct ks_cache *c)
{
	struct ks_entry	*v;
	size_t		 n;
	int64_t		 gen;

	if (ks_generation(db, &gen) == -1)
		return (-1);
	if (gen == c->generation)
		return (0);
	/* On failure the cache keeps its old generation: the next call
	 * retries, and the caller fails closed meanwhile. */
	if (ks_load(db, &v, &n) == -1)
		return (-1);
	ks_entries_free(c->v, c->n);
	c->v = v;
	c->n = n;
	c->generation = gen;
	return (0);
}

static int
ks_entry_covers(enum ks_scope scope, const char *target, const char *agent,
    const char *tool)
{
	switch (scope) {
	case KS_GLOBAL:
		return (1);
	case KS_AGENT:
		return (agent != NULL && target != NULL &&
		    strcmp(agent, target) == 0);
	case KS_TOOL:
		return (policy_pattern_match(target, tool));
	}
	return (1);	/* unknown scope: fail closed */
}

int
ks_covers(const struct ks_cache *c, const char *agent, const char *tool)
{
	size_t	 i;

	for (i = 0; i < c->n; i++)
		if (ks_entry_covers(c->v[i].scope, c->v[i].target, agent,
		    tool))
			return (1);
	return (0);
}

/* Code points of valid UTF-8 s, or -1 when s is not valid UTF-8. */
static long
ks_utf8_len(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	long			 n = 0;
	int			 more;

	while (*p) {
		if (*p < 0x80)
			more = 0;
		else if (*p >= 0xc2 && *p <= 0xdf)
			more = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			more = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			more = 3;
		else
			return (-1);
		p++;
		for (; more > 0; more--, p++)
			if ((*p & 0xc0) != 0x80)
				return (-1);
		n++;
	}
	/* Overlongs and surrogates are left to jansson, which refuses
	 * them when the audit record is built. */
	return (n);
}

static const char *
ks_check_reason(const char *reason)
{
	long	 n;
	size_t	 i;

	if (reason == NULL || reason[0] == '\0')
		return ("a reason is required");
	if ((n = ks_utf8_len(reason)) < 0)
		return ("reason is not valid UTF-8");
	if (n > KS_REASON_MAX)
		return ("reason is longer than 1024 characters");
	for (i = 0; reason[i] != '\0'; i++)
		if (reason[i] != ' ' && reason[i] != '\t' &&
		    reason[i] != '\n' && reason[i] != '\r')
			return (NULL);
	return ("reason is blank");
}

static const char *
ks_check_target(enum ks_scope scope, const char *target)
{
	size_t	 i, len;
	char	*prefix;
	int	 ok;

	switch (scope) {
	case KS_GLOBAL:
		return (target == NULL ? NULL :
		    "a global switch takes no target");
	case KS_AGENT:
		if (target == NULL || target[0] == '\0')
			return ("an agent switch needs a target identity");
		len = strlen(target);
		if (len > KS_AGENT_MAX)
			return ("agent target is longer than 255 bytes");
		for (i = 0; i < len; i++)
			if ((unsigned char)target[i] < 0x20 ||
			    target[i] == 0x7f)
				return ("agent target has control "
				    "characters");
		if (ks_utf8_len(target) < 0)
			return ("agent target is not valid UTF-8");
		return (NULL);
	case KS_TOOL:
		if (target == NULL || target[0] == '\0')
			return ("a tool switch needs a target tool or "
			    "prefix.* pattern");
		if (policy_tool_name_valid(target))
			return (NULL);
		len = strlen(target);
		if (len < 3 || strcmp(target + len - 2, ".*") != 0)
			return ("tool target must be a tool name or a "
			    "prefix.* pattern");
		if ((prefix = strndup(target, len - 2)) == NULL)
			return ("out of memory");
		ok = policy_tool_name_valid(prefix);
		free(prefix);
		return (ok ? NULL : "tool target must be a tool name or a "
		    "prefix.* pattern");
	}
	return ("unknown scope");
}

/*
 * Ids of the pending intents the new switch covers, in queue order.  Read
 * completely before any is updated: changing rows under a live scan of
 * the same index is asking for trouble.
 */
static json_t *
ks_covered_pending(struct db *db, enum ks_scope scope, const char *target)
{
	sqlite3_stmt	*st;
	json_t		*ids;
	int		 rc;

	if ((st = db_stmt(db, SQL_PENDING)) == NULL)
		return (NULL);
	if ((ids = json_array()) == NULL)
		return (NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (ks_entry_covers(scope, target,
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2)) &&
		    json_array_append_new(ids, json_string(
		    (const char *)sqlite3_column_text(st, 0))) == -1)
			break;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(db->sql));
		json_decref(ids);
		return (NULL);
	}
	return (ids);
}

static int
ks_reject(struct db *db, int64_t now, const char *actor, int64_t ks_id,
    const char *reason, const char *intent_id)
{
	sqlite3_stmt	*st;
	json_t		*d;
	int		 rc;

	if ((st = db_stmt(db, SQL_REJECT)) == NULL)
		return (-1);
	sqlite3_bind_int64(st, 1, now);
	db_bind_text(st, 2, actor);
	db_bind_text(st, 3, reason);
	db_bind_text(st, 4, intent_id);
	if (db_step_done(db, st) == -1)
		return (-1);
	if (sqlite3_changes(db->sql) != 1) {
		/* Impossible under BEGIN IMMEDIATE; refuse to audit a
		 * rejection that did not happen. */
		log_warnx("%s: intent %s was not pending", __func__,
		    intent_id);
		return (-1);
	}
	d = json_pack("{ss ss sI}", "by", actor, "reason", reason,
	    "kill_switch", (json_int_t)ks_id);
	if (d == NULL)
		return (-1);
	rc = audit_append(db, now, actor, "rejection", intent_id, d);
	json_decref(d);
	return (rc);
}

static int
ks_bump(struct db *db)
{
	sqlite3_stmt	*st;

	if ((st = db_stmt(db, SQL_BUMP)) == NULL || db_step_done(db, st) == -1)
		return (-1);
	if (sqlite3_changes(db->sql) != 1) {
		log_warnx("%s: counter row missing", __func__);
		return (-1);
	}
	return (0);
}

int
ks_trip(struct db *db, const char *actor, enum ks_scope scope,
    const char *target, const char *reason, int reject_pending,
    struct ks_trip_result *res, const char **why)
{
	sqlite3_stmt	*st;
	json_t		*ids = NULL, *d = NULL;
	int64_t		 now = clock_now(), id;
	size_t		 i;

	memset(res, 0, sizeof(*res));
	if ((unsigned)scope > KS_TOOL) {
		*why = "scope must be global, agent or tool";
		return (-2);
	}
	if ((*why = ks_check_target(scope, target)) != NULL ||
	    (*why = ks_check_reason(reason)) != NULL)
		return (-2);
	if (actor == NULL || actor[0] == '\0') {
		*why = "no actor";
		return (-2);
	}
	if (db_begin(db) == -1)
		return (-1);
	if ((st = db_stmt(db, SQL_INSERT)) == NULL)
		goto fail;
	db_bind_text(st, 1, scope_names[scope]);
	db_bind_text(st, 2, target);
	db_bind_text(st, 3, reason);
	db_bind_text(st, 4, actor);
	sqlite3_bind_int64(st, 5, now);
	if (db_step_done(db, st) == -1)
		goto fail;
	id = sqlite3_last_insert_rowid(db->sql);
	if (ks_bump(db) == -1)
		goto fail;
	ids = reject_pending ? ks_covered_pending(db, scope, target) :
	    json_array();
	if (ids == NULL)
		goto fail;
	d = json_pack("{sI ss ss? ss sb sI}", "id", (json_int_t)id,
	    "scope", scope_names[scope], "target", target, "reason", reason,
	    "reject_pending", reject_pending ? 1 : 0,
	    "rejected", (json_int_t)json_array_size(ids));
	if (d == NULL || audit_append(db, now, actor, "killswitch.trip", NULL,
	    d) == -1)
		goto fail;
	for (i = 0; i < json_array_size(ids); i++)
		if (ks_reject(db, now, actor, id, reason, json_string_value(
		    json_array_get(ids, i))) == -1)
			goto fail;
	if (db_commit(db) == -1)
		goto fail;
	json_decref(d);
	res->id = id;
	res->rejected = ids;
	return (0);
 fail:
	db_rollback(db);
	json_decref(d);
	json_decref(ids);
	return (-1);
}

int
ks_reset(struct db *db, const char *actor, int64_t id, const char *reason,
    const char **why)
{
	sqlite3_stmt	*st;
	json_t		*d = NULL;
	int64_t		 now = clock_now();

	if ((*why = ks_check_reason(reason)) != NULL)
		return (-2);
	if (actor == NULL || actor[0] == '\0') {
		*why = "no actor";
		return (-2);
	}
	if (id <= 0)
		return (1);
	if (db_begin(db) == -1)
		return (-1);
	if ((st = db_stmt(db, SQL_RESET)) == NULL)
		goto fail;
	db_bind_text(st, 1, actor);
	sqlite3_bind_int64(st, 2, now);
	db_bind_text(st, 3, reason);
	sqlite3_bind_int64(st, 4, id);
	if (db_step_done(db, st) == -1)
		goto fail;
	if (sqlite3_changes(db->sql) == 0) {
		db_rollback(db);
		return (1);
	}
	if (ks_bump(db) == -1)
		goto fail;
	d = json_pack("{sI ss}", "id", (json_int_t)id, "reason", reason);
	if (d == NULL || audit_append(db, now, actor, "killswitch.reset", NULL,
	    d) == -1 || db_commit(db) == -1)
		goto fail;
	json_decref(d);
	return (0);
 fail:
	db_rollback(db);
	json_decref(d);
	return (-1);
}

static json_t *
ks_time(int64_t t)
{
	char	 buf[RFC3339_LEN];

	clock_rfc3339(t, buf);
	return (json_string(buf));
}

static json_t *
ks_text(sqlite3_stmt *st, int col)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);

	return (s ? json_string(s) : json_null());
}

/* The switch in the current row of a SQL_GET / SQL_LIST_ENGAGED walk. */
static json_t *
ks_row_json(sqlite3_stmt *st)
{
	json_t	*o;

	o = json_pack("{sI so so so so so}",
	    "id", (json_int_t)sqlite3_column_int64(st, 0),
	    "scope", ks_text(st, 1), "target", ks_text(st, 2),
	    "reason", ks_text(st, 3), "by", ks_text(st, 4),
	    "at", ks_time(sqlite3_column_int64(st, 5)));
	if (o == NULL || sqlite3_column_type(st, 7) == SQLITE_NULL)
		return (o);
	if (json_object_set_new(o, "reset_by", ks_text(st, 6)) == -1 ||
	    json_object_set_new(o, "reset_at",
	    ks_time(sqlite3_column_int64(st, 7))) == -1 ||
	    json_object_set_new(o, "reset_reason", ks_text(st, 8)) == -1) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

json_t *
ks_get(struct db *db, int64_t id)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;
	int		 rc;

	if ((st = db_stmt(db, SQL_GET)) == NULL)
		return (NULL);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		o = ks_row_json(st);
	else if (rc != SQLITE_DONE)
		log_warnx("%s: %s", __func__, sqlite3_errmsg(db->sql));
	sqlite3_reset(st);
	return (o);
}

json_t *
ks_status(struct db *db)
{
	sqlite3_stmt	*st;
	json_t		*list, *o;
	int		 rc;

	if ((st = db_stmt(db, SQL_LIST_ENGAGED)) == NULL)
		return (NULL);
	if ((list = json_array()) == NULL)
		return (NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((o = ks_row_json(st)) == NULL ||
		    json_array_append_new(list, o) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		log_warnx("%s: %s", __func__, rc == SQLITE_NOMEM ?
		    "out of memory" : sqlite3_errmsg(db->sql));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return (NULL);
	}
	return (json_pack("{sb so}", "engaged", json_array_size(list) > 0,
	    "switches", list));
}
