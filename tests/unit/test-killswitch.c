/*
 * test-killswitch: kill switches on a real SQLite file — trip, reset and
 * status round trips, what each scope covers, every input rule, the change
 * counter that lets a second connection (another thread or process) see a
 * trip, reject_pending touching only covered pending intents, and an audit
 * chain that still verifies afterwards.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "clock.h"
#include "killswitch.h"
#include "lifecycle.h"
#include "store.h"
#include "store_sqlite.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

static char	 dbpath[64];

static struct store *
open_db(void)
{
	char		 err[256];
	struct store	*db = store_open(dbpath, STORE_CREATE, err, sizeof(err));

	if (db == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	CHECK(db != NULL);
	return (db);
}

static struct store *
fresh_db(void)
{
	int	 fd;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-killswitch-XXXXXX");
	fd = mkstemp(dbpath);
	CHECK(fd >= 0);
	close(fd);
	return (open_db());
}

static void
drop_db(struct store *db)
{
	char	 side[80];

	store_close(db);
	unlink(dbpath);
	snprintf(side, sizeof(side), "%s-wal", dbpath);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", dbpath);
	unlink(side);
}

/* A trip or reset as toolgatectl --db runs it: one lifecycle step in its
 * own transaction.  0 done, -1 storage error, -2 bad input (*why), and
 * for a reset 1 when there is no such engaged switch. */
struct ks_trip_result {
	int64_t		 id;
	json_t		*rejected;	/* ids (new ref), NULL unless done */
};

static int
ks_trip(struct store *db, const char *actor, enum ks_scope scope,
    const char *target, const char *reason, int reject,
    struct ks_trip_result *res, const char **why)
{
	static struct lc_trip_refusal refusal;
	struct decider	 d;
	enum reason	 r;
	size_t		 i;

	/* These databases hold no policy: the targets are forced. */
	memset(res, 0, sizeof(*res));
	decider_init(&d, db, "test", NULL);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d, lc_trip(&d,
	    actor, scope, target, reason, (reject ? LC_TRIP_REJECT_PENDING :
	    0) | LC_TRIP_FORCE, clock_now(), &res->id, &refusal));
	if (r != REASON_OK)
		*why = refusal.message;
	if (r == REASON_OK) {
		res->rejected = json_array();
		for (i = 0; i < d.changed.n; i++)
			json_array_append_new(res->rejected,
			    json_string(d.changed.ids[i]));
	} else
		res->id = 0;
	decider_deinit(&d);
	return (r == REASON_OK ? 0 : r == E_BAD_REQUEST ? -2 : -1);
}

static int
ks_reset(struct store *db, const char *actor, int64_t id, const char *reason,
    const char **why)
{
	struct decider	 d;
	enum reason	 r;

	decider_init(&d, db, "test", NULL);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d, lc_reset(&d,
	    actor, id, reason, clock_now(), why));
	decider_deinit(&d);
	return (r == REASON_OK ? 0 : r == E_BAD_REQUEST ? -2 :
	    r == E_NOT_FOUND ? 1 : -1);
}

static int64_t
trip(struct store *db, enum ks_scope scope, const char *target, int reject)
{
	struct ks_trip_result	 res;
	const char		*why = NULL;
	int			 rc;

	rc = ks_trip(db, "operator-olga", scope, target, "incident 42",
	    reject, &res, &why);
	if (rc != 0)
		fprintf(stderr, "ks_trip: %d %s\n", rc, why ? why : "");
	CHECK(rc == 0);
	CHECK(res.id > 0);
	CHECK(json_is_array(res.rejected));
	json_decref(res.rejected);
	return (res.id);
}

static int
covers_now(struct store *db, const char *agent, const char *tool)
{
	struct ks_cache	 c;
	int		 r;

	ks_cache_init(&c);
	CHECK(ks_refresh(db, &c) == 0);
	r = ks_covers(&c, agent, tool);
	ks_cache_clear(&c);
	return (r);
}

static int64_t
counter(struct store *db)
{
	sqlite3_stmt	*st;
	int64_t		 v;

	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT value FROM counters WHERE "
	    "name = 'killswitch'", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (v);
}

static void
test_scope_parse(void)
{
	enum ks_scope	 s;

	CHECK(ks_scope_parse("global", &s) == 0 && s == KS_GLOBAL);
	CHECK(ks_scope_parse("agent", &s) == 0 && s == KS_AGENT);
	CHECK(ks_scope_parse("tool", &s) == 0 && s == KS_TOOL);
	CHECK(ks_scope_parse("Global", &s) == -1);
	CHECK(ks_scope_parse("", &s) == -1);
	CHECK(ks_scope_parse(NULL, &s) == -1);
}

static void
test_coverage(void)
{
	static const struct {
		enum ks_scope	 scope;
		const char	*target;
		const char	*agent, *tool;
		int		 covered;
	} cases[] = {
		{ KS_GLOBAL, NULL, "agent-payments", "payments.transfer", 1 },
		{ KS_GLOBAL, NULL, "anyone", "x", 1 },
		{ KS_AGENT, "agent-payments", "agent-payments", "crm.lookup", 1 },
		{ KS_AGENT, "agent-payments", "agent-support", "crm.lookup", 0 },
		{ KS_AGENT, "agent-payments", "agent-payments2", "crm.lookup", 0 },
		{ KS_AGENT, "agent-payments", "agent-payment", "crm.lookup", 0 },
		{ KS_TOOL, "payments.transfer", "a", "payments.transfer", 1 },
		{ KS_TOOL, "payments.transfer", "a", "payments.refund", 0 },
		{ KS_TOOL, "payments.transfer", "a", "payments.transfer.x", 0 },
		{ KS_TOOL, "payments.*", "a", "payments.transfer", 1 },
		{ KS_TOOL, "payments.*", "a", "payments.a.b", 1 },
		{ KS_TOOL, "payments.*", "a", "payments", 0 },
		{ KS_TOOL, "payments.*", "a", "paymentsx.transfer", 0 },
		{ KS_TOOL, "payments.*", "a", "crm.lookup", 0 },
		{ KS_TOOL, "crm.up.*", "a", "crm.up.date", 1 },
		{ KS_TOOL, "crm.up.*", "a", "crm.update", 0 },
	};
	struct ks_cache	 c;
	struct store	*db;
	const char	*why;
	size_t		 i;
	int64_t		 id;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		db = fresh_db();
		CHECK(covers_now(db, cases[i].agent, cases[i].tool) == 0);
		id = trip(db, cases[i].scope, cases[i].target, 0);
		if (covers_now(db, cases[i].agent, cases[i].tool) !=
		    cases[i].covered)
			fprintf(stderr, "case %zu: %s %s\n", i,
			    cases[i].agent, cases[i].tool);
		CHECK(covers_now(db, cases[i].agent, cases[i].tool) ==
		    cases[i].covered);
		CHECK(ks_reset(db, "operator-olga", id, "all clear",
		    &why) == 0);
		CHECK(covers_now(db, cases[i].agent, cases[i].tool) == 0);
		drop_db(db);
	}
	/* An empty cache covers nothing; several switches combine. */
	ks_cache_init(&c);
	CHECK(ks_covers(&c, "a", "b") == 0);
	db = fresh_db();
	trip(db, KS_AGENT, "agent-support", 0);
	trip(db, KS_TOOL, "payments.*", 0);
	CHECK(ks_refresh(db, &c) == 0);
	CHECK(c.n == 2);
	CHECK(ks_covers(&c, "agent-support", "crm.lookup") == 1);
	CHECK(ks_covers(&c, "agent-payments", "payments.refund") == 1);
	CHECK(ks_covers(&c, "agent-payments", "crm.lookup") == 0);
	ks_cache_clear(&c);
	CHECK(c.n == 0 && c.v == NULL && c.generation == -1);
	drop_db(db);
}

static void
test_bad_input(void)
{
	static const struct {
		enum ks_scope	 scope;
		const char	*target, *reason;
	} bad[] = {
		{ KS_GLOBAL, "x", "r" },		/* global takes none */
		{ KS_GLOBAL, NULL, NULL },		/* reason required */
		{ KS_GLOBAL, NULL, "" },
		{ KS_GLOBAL, NULL, " \t\n" },		/* blank */
		{ KS_GLOBAL, NULL, "bad \xff utf-8" },
		{ KS_AGENT, NULL, "r" },
		{ KS_AGENT, "", "r" },
		{ KS_AGENT, "agent\npayments", "r" },
		{ KS_AGENT, "agent\x7f", "r" },
		{ KS_TOOL, NULL, "r" },
		{ KS_TOOL, "", "r" },
		{ KS_TOOL, "Pay%ments.Transfer", "r" },
		{ KS_TOOL, "*", "r" },
		{ KS_TOOL, ".*", "r" },
		{ KS_TOOL, "payments.", "r" },
		{ KS_TOOL, "payments*", "r" },
		{ KS_TOOL, "payments..*", "r" },
		{ KS_TOOL, "pay ments.*", "r" },
		{ KS_TOOL, "payments.*.x", "r" },
		{ (enum ks_scope)7, NULL, "r" },
	};
	struct ks_trip_result	 res;
	struct store		*db = fresh_db();
	const char		*why;
	char			 long_agent[300], long_reason[1100];
	char			 utf8_reason[1100 * 2 + 1];
	size_t			 i;
	int64_t			 gen = counter(db), id;

	/* MCP tools may have upper case (CONTRACT §9): a switch stops them */
	CHECK(ks_check_target(KS_TOOL, "pay.GetUser") == NULL);
	CHECK(ks_check_target(KS_TOOL, "Pay.*") == NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (ks_trip(db, "operator-olga", bad[i].scope, bad[i].target,
		    bad[i].reason, 0, &res, &why) != -2)
			fprintf(stderr, "bad case %zu accepted\n", i);
		CHECK(ks_trip(db, "operator-olga", bad[i].scope,
		    bad[i].target, bad[i].reason, 0, &res, &why) == -2);
		CHECK(why != NULL && why[0] != '\0');
		CHECK(res.rejected == NULL);
	}
	/* Lengths: agent 255 bytes ok, 256 not; reason 1024 characters ok
	 * (even when they take two bytes each), 1025 not. */
	memset(long_agent, 'a', sizeof(long_agent));
	long_agent[256] = '\0';
	CHECK(ks_trip(db, "operator-olga", KS_AGENT, long_agent, "r", 0,
	    &res, &why) == -2);
	long_agent[255] = '\0';
	CHECK(ks_trip(db, "operator-olga", KS_AGENT, long_agent, "r", 0,
	    &res, &why) == 0);
	json_decref(res.rejected);
	memset(long_reason, 'r', sizeof(long_reason));
	long_reason[1025] = '\0';
	CHECK(ks_trip(db, "operator-olga", KS_GLOBAL, NULL, long_reason, 0,
	    &res, &why) == -2);
	for (i = 0; i < 1024; i++)
		memcpy(utf8_reason + 2 * i, "\xc3\xa9", 2);
	utf8_reason[2048] = '\0';
	CHECK(ks_trip(db, "operator-olga", KS_GLOBAL, NULL, utf8_reason, 0,
	    &res, &why) == 0);
	id = res.id;
	json_decref(res.rejected);
	/* Tool: exact names and prefix patterns at any depth are fine. */
	CHECK(ks_trip(db, "operator-olga", KS_TOOL, "a.b-c_d.*", "r", 0,
	    &res, &why) == 0);
	json_decref(res.rejected);
	/* Reset: reason rules, unknown, already reset. */
	CHECK(ks_reset(db, "operator-olga", id, NULL, &why) == -2);
	CHECK(ks_reset(db, "operator-olga", id, "", &why) == -2);
	CHECK(ks_reset(db, "operator-olga", id, long_reason, &why) == -2);
	CHECK(ks_reset(db, "operator-olga", 999999, "r", &why) == 1);
	CHECK(ks_reset(db, "operator-olga", 0, "r", &why) == 1);
	CHECK(ks_reset(db, "operator-olga", -1, "r", &why) == 1);
	CHECK(ks_reset(db, "operator-olga", id, "ok", &why) == 0);
	CHECK(ks_reset(db, "operator-olga", id, "again", &why) == 1);
	/* Refused input changed nothing: three trips, one reset. */
	CHECK(counter(db) == gen + 4);
	drop_db(db);
}

static void
test_round_trip(void)
{
	struct store	*db = fresh_db();
	json_t		*st, *sw, *list;
	const char	*why;
	int64_t		 g, a, t;

	st = ks_status(db);
	CHECK(st != NULL);
	CHECK(json_is_false(json_object_get(st, "engaged")));
	CHECK(json_array_size(json_object_get(st, "switches")) == 0);
	json_decref(st);
	CHECK(ks_get(db, 1) == NULL);

	g = trip(db, KS_GLOBAL, NULL, 0);
	a = trip(db, KS_AGENT, "agent-payments", 0);
	t = trip(db, KS_TOOL, "payments.*", 0);
	CHECK(g < a && a < t);

	sw = ks_get(db, a);
	CHECK(sw != NULL);
	CHECK(json_integer_value(json_object_get(sw, "id")) == a);
	CHECK(strcmp(json_string_value(json_object_get(sw, "scope")),
	    "agent") == 0);
	CHECK(strcmp(json_string_value(json_object_get(sw, "target")),
	    "agent-payments") == 0);
	CHECK(strcmp(json_string_value(json_object_get(sw, "reason")),
	    "incident 42") == 0);
	CHECK(strcmp(json_string_value(json_object_get(sw, "by")),
	    "operator-olga") == 0);
	/* RFC 3339 UTC with seconds and Z. */
	CHECK(strlen(json_string_value(json_object_get(sw, "at"))) == 20);
	CHECK(json_string_value(json_object_get(sw, "at"))[19] == 'Z');
	CHECK(json_object_get(sw, "reset_at") == NULL);
	json_decref(sw);
	sw = ks_get(db, g);
	CHECK(json_is_null(json_object_get(sw, "target")));
	json_decref(sw);

	st = ks_status(db);
	CHECK(json_is_true(json_object_get(st, "engaged")));
	list = json_object_get(st, "switches");
	CHECK(json_array_size(list) == 3);
	CHECK(json_integer_value(json_object_get(json_array_get(list, 0),
	    "id")) == g);
	CHECK(json_integer_value(json_object_get(json_array_get(list, 2),
	    "id")) == t);
	json_decref(st);

	CHECK(ks_reset(db, "operator-bob", a, "agent fixed", &why) == 0);
	sw = ks_get(db, a);
	CHECK(strcmp(json_string_value(json_object_get(sw, "reset_by")),
	    "operator-bob") == 0);
	CHECK(strcmp(json_string_value(json_object_get(sw,
	    "reset_reason")), "agent fixed") == 0);
	CHECK(json_is_string(json_object_get(sw, "reset_at")));
	json_decref(sw);
	st = ks_status(db);
	CHECK(json_array_size(json_object_get(st, "switches")) == 2);
	json_decref(st);
	CHECK(ks_reset(db, "o", g, "r", &why) == 0);
	CHECK(ks_reset(db, "o", t, "r", &why) == 0);
	st = ks_status(db);
	CHECK(json_is_false(json_object_get(st, "engaged")));
	json_decref(st);
	CHECK(covers_now(db, "agent-payments", "payments.transfer") == 0);
	drop_db(db);
}

/* A trip through another connection (another thread or process) is seen
 * by a cache that was already current, and only a change reloads. */
static void
test_generation(void)
{
	struct store	*one = fresh_db(), *two = open_db();
	struct ks_cache	 c;
	struct ks_entry	*before;
	const char	*why;
	int64_t		 gen, id;

	ks_cache_init(&c);
	CHECK(ks_refresh(one, &c) == 0);
	gen = c.generation;
	CHECK(gen == counter(one));
	CHECK(ks_covers(&c, "agent-payments", "crm.lookup") == 0);

	id = trip(two, KS_AGENT, "agent-payments", 0);
	CHECK(ks_refresh(one, &c) == 0);
	CHECK(c.generation == gen + 1);
	CHECK(ks_covers(&c, "agent-payments", "crm.lookup") == 1);

	/* No change: the entries are not reloaded (same array). */
	before = c.v;
	CHECK(ks_refresh(one, &c) == 0);
	CHECK(c.v == before && c.generation == gen + 1);

	/* Inside a transaction, as the decision path calls it. */
	CHECK(ks_reset(two, "operator-olga", id, "done", &why) == 0);
	CHECK(store_begin(one) == 0);
	CHECK(ks_refresh(one, &c) == 0);
	CHECK(ks_covers(&c, "agent-payments", "crm.lookup") == 0);
	store_rollback(one);
	CHECK(c.generation == gen + 2);

	/* A second connection's own cache agrees. */
	ks_cache_clear(&c);
	ks_cache_init(&c);
	trip(one, KS_GLOBAL, NULL, 0);
	CHECK(ks_refresh(two, &c) == 0);
	CHECK(ks_covers(&c, "x", "y") == 1);
	ks_cache_clear(&c);
	store_close(two);
	drop_db(one);
}

static void
insert_intent(struct store *db, const char *id, const char *agent,
    const char *tool, const char *status, int64_t created)
{
	struct intent_row	 r;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.agent = strdup(agent);
	r.jti = strdup(id);
	r.tool = strdup(tool);
	CHECK(intent_status_parse(status, &r.status) == 0);
	r.decision = strcmp(status, "pending") == 0 ? OUTCOME_PENDING :
	    strcmp(status, "allowed") == 0 ? OUTCOME_ALLOW : OUTCOME_DENY;
	r.reason = R_APPROVAL_REQUIRED;
	r.reason_text = strdup("needs approval");
	r.policy_version = 1;
	snprintf(r.intent_sha256, sizeof(r.intent_sha256), "00");
	r.created_at = created;
	r.expires_at = created + 3600;
	CHECK(db->ops->intent_insert(db, &r) == 0);
	intent_row_clear(&r);
}

static const char *
status_of(struct store *db, const char *id, char *reason, size_t len)
{
	static char	 buf[32];
	sqlite3_stmt	*st;
	const char	*cr;

	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT status, closed_by, "
	    "closed_reason, decided_at FROM intents WHERE id = ?", -1, &st,
	    NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	snprintf(buf, sizeof(buf), "%s", sqlite3_column_text(st, 0));
	cr = (const char *)sqlite3_column_text(st, 2);
	snprintf(reason, len, "%s", cr ? cr : "");
	if (strcmp(buf, "rejected") == 0) {
		CHECK(strcmp((const char *)sqlite3_column_text(st, 1),
		    "operator-olga") == 0);
		CHECK(sqlite3_column_int64(st, 3) > 0);
	}
	sqlite3_finalize(st);
	return (buf);
}

static int64_t
audit_count(struct store *db, const char *event, const char *intent_id)
{
	sqlite3_stmt	*st;
	int64_t		 n;

	CHECK(sqlite3_prepare_v2(store_sqlite_handle(db), "SELECT count(*) FROM audit WHERE "
	    "event = ? AND (?2 IS NULL OR intent_id = ?2)", -1, &st,
	    NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	if (intent_id != NULL)
		sqlite3_bind_text(st, 2, intent_id, -1, SQLITE_STATIC);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (n);
}

static void
test_reject_pending(void)
{
	struct store		*db = fresh_db();
	struct ks_trip_result	 res;
	struct audit_check	 chk;
	const char		*why;
	char			 cr[128];

	CHECK(store_begin(db) == 0);
	insert_intent(db, "in_p1", "agent-payments", "payments.transfer",
	    "pending", 100);
	insert_intent(db, "in_p2", "agent-support", "payments.refund",
	    "pending", 101);
	insert_intent(db, "in_p3", "agent-support", "email.send",
	    "pending", 102);
	insert_intent(db, "in_p4", "agent-payments", "paymentsx.y",
	    "pending", 103);
	insert_intent(db, "in_a1", "agent-payments", "payments.transfer",
	    "allowed", 104);
	insert_intent(db, "in_d1", "agent-payments", "payments.transfer",
	    "denied", 105);
	CHECK(store_commit(db) == 0);

	/* Without reject_pending nothing changes. */
	CHECK(ks_trip(db, "operator-olga", KS_TOOL, "payments.*", "first",
	    0, &res, &why) == 0);
	CHECK(json_array_size(res.rejected) == 0);
	json_decref(res.rejected);
	CHECK(strcmp(status_of(db, "in_p1", cr, sizeof(cr)), "pending") == 0);

	CHECK(ks_trip(db, "operator-olga", KS_TOOL, "payments.*", "fraud",
	    1, &res, &why) == 0);
	CHECK(json_array_size(res.rejected) == 2);
	CHECK(strcmp(json_string_value(json_array_get(res.rejected, 0)),
	    "in_p1") == 0);
	CHECK(strcmp(json_string_value(json_array_get(res.rejected, 1)),
	    "in_p2") == 0);
	json_decref(res.rejected);
	CHECK(strcmp(status_of(db, "in_p1", cr, sizeof(cr)),
	    "rejected") == 0);
	CHECK(strcmp(cr, "kill switch: fraud") == 0);
	CHECK(strcmp(status_of(db, "in_p2", cr, sizeof(cr)),
	    "rejected") == 0);
	CHECK(strcmp(status_of(db, "in_p3", cr, sizeof(cr)), "pending") == 0);
	CHECK(strcmp(status_of(db, "in_p4", cr, sizeof(cr)), "pending") == 0);
	CHECK(strcmp(status_of(db, "in_a1", cr, sizeof(cr)), "allowed") == 0);
	CHECK(strcmp(status_of(db, "in_d1", cr, sizeof(cr)), "denied") == 0);
	CHECK(audit_count(db, "rejection", NULL) == 2);
	CHECK(audit_count(db, "rejection", "in_p1") == 1);
	CHECK(audit_count(db, "rejection", "in_p2") == 1);

	/* Agent scope picks up the rest of that agent's queue only. */
	CHECK(ks_trip(db, "operator-olga", KS_AGENT, "agent-support", "x",
	    1, &res, &why) == 0);
	CHECK(json_array_size(res.rejected) == 1);
	CHECK(strcmp(json_string_value(json_array_get(res.rejected, 0)),
	    "in_p3") == 0);
	json_decref(res.rejected);
	CHECK(strcmp(status_of(db, "in_p4", cr, sizeof(cr)), "pending") == 0);
	/* Global takes what is left; already rejected ones are not redone. */
	CHECK(ks_trip(db, "operator-olga", KS_GLOBAL, NULL, "all", 1, &res,
	    &why) == 0);
	CHECK(json_array_size(res.rejected) == 1);
	json_decref(res.rejected);
	CHECK(audit_count(db, "rejection", NULL) == 4);
	CHECK(audit_count(db, "killswitch.trip", NULL) == 4);

	CHECK(ks_reset(db, "operator-olga", 1, "over", &why) == 0);
	CHECK(audit_count(db, "killswitch.reset", NULL) == 1);
	CHECK(audit_verify(db, &chk) == 0);
	CHECK(chk.count == 4 + 4 + 1 && chk.bad_seq == 0);
	drop_db(db);
}

/* The trip record says what was done; details hold no more than that. */
static int
find_trip(json_t *rec, void *arg)
{
	json_t	**out = arg;

	if (strcmp(json_string_value(json_object_get(rec, "event")),
	    "killswitch.trip") != 0)
		return (0);
	*out = json_incref(json_object_get(rec, "details"));
	return (1);
}

static void
test_trip_audit_record(void)
{
	struct store	*db = fresh_db();
	json_t		*d = NULL;

	CHECK(store_begin(db) == 0);
	insert_intent(db, "in_q1", "agent-payments", "crm.lookup",
	    "pending", 1);
	CHECK(store_commit(db) == 0);
	trip(db, KS_AGENT, "agent-payments", 1);
	CHECK(audit_each(db, 0, 0, find_trip, &d) == 0);
	CHECK(d != NULL);
	CHECK(json_integer_value(json_object_get(d, "id")) == 1);
	CHECK(strcmp(json_string_value(json_object_get(d, "scope")),
	    "agent") == 0);
	CHECK(strcmp(json_string_value(json_object_get(d, "target")),
	    "agent-payments") == 0);
	CHECK(strcmp(json_string_value(json_object_get(d, "reason")),
	    "incident 42") == 0);
	CHECK(json_is_true(json_object_get(d, "reject_pending")));
	CHECK(json_integer_value(json_object_get(d, "rejected")) == 1);
	json_decref(d);
	drop_db(db);
}

int
main(void)
{
	test_scope_parse();
	test_coverage();
	test_bad_input();
	test_round_trip();
	test_generation();
	test_reject_pending();
	test_trip_audit_record();
	printf("killswitch: %d passed, 0 failed\n", passed);
	return (0);
}
