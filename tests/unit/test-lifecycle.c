/*
 * test-lifecycle: broker/core/lifecycle.c and lifecycle_decide.c on a
 * real SQLite file.  A table of (policy, actor, transition) → (reason,
 * status after, the intent's last audit event), one fresh database per
 * row; the change lists the daemon wakes waiters from; and concurrent
 * approvers on separate connections (threads) that must release exactly
 * once with every approval counted; and the MCP gateway's calls (join,
 * forward once, the forward's audit, the known audit head through a
 * forward's transaction).
 *
 * The policy is policies/example.json under TOOLGATE_SOURCE_ROOT (set by
 * tests/meson.build), changed per row by a small patch function.
 */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "canon.h"
#include "lifecycle.h"
#include "store.h"
#include "store_sqlite.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

#define T0	1795736400	/* the rows' "now" */

static json_t	*example;	/* policies/example.json */
static char	 dbpath[64];
static int	 jti_seq;

static void
load_example(void)
{
	const char	*root = getenv("TOOLGATE_SOURCE_ROOT");
	char		 path[512];

	snprintf(path, sizeof(path), "%s/policies/example.json",
	    root && *root ? root : ".");
	example = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	CHECK(example != NULL);
	/* Rows pile up pending payments of 5000 and 50000 USD: the demo's
	 * daily limit (test-usage.c tests limits) would stop them. */
	CHECK(json_object_del(example, "limits") == 0);
}

static struct store *
open_store(void)
{
	char		 err[256];
	struct store	*s = store_open(dbpath, STORE_CREATE, err,
			    sizeof(err));

	if (s == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	CHECK(s != NULL);
	return (s);
}

static void
drop_db(void)
{
	char	 side[80];

	unlink(dbpath);
	snprintf(side, sizeof(side), "%s-wal", dbpath);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", dbpath);
	unlink(side);
}

/* Apply policy p (borrowed) as a new version, in its own transaction. */
static void
apply(struct decider *d, json_t *p)
{
	struct policy	*pol;
	char		*text = canon_dump(p);
	int64_t		 v;

	CHECK(text != NULL);
	/* The patched policy must still be valid. */
	CHECK((pol = policy_parse(text, strlen(text), NULL)) != NULL);
	policy_free(pol);
	CHECK(lc_begin(d) == 0);
	CHECK(lc_finish(d, lc_policy_apply(d, text, strlen(text), "test",
	    T0, &v)) == REASON_OK);
	free(text);
}

static void
make_intent(struct intent *in, const char *agent, const char *tool,
    const char *amount)
{
	memset(in, 0, sizeof(*in));
	in->iss = strdup(agent);
	CHECK(asprintf(&in->jti, "jti-%d", ++jti_seq) > 0);
	in->tool = strdup(tool);
	/* policies/example.json reads payments' amount from args (its
	 * amount_from: /amount, /currency), as the tool executes it. */
	if (amount != NULL) {
		in->args = json_pack("{ss ss}", "amount", amount, "currency",
		    "USD");
		CHECK(in->args != NULL &&
		    (in->args_json = canon_dump(in->args)) != NULL);
		in->args_json_len = strlen(in->args_json);
	}
	in->iat = T0;
	in->exp = T0 + 60;
	canon_sha256_hex(in->jti, strlen(in->jti), in->payload_sha256);
}

/* Decide agent calling tool (amount may be NULL) at T0; the row's id. */
static void
decide(struct decider *d, const char *agent, const char *tool,
    const char *amount, enum intent_status want, char id[INTENT_ID_LEN + 1])
{
	struct intent		 in;
	struct intent_row	 r;

	make_intent(&in, agent, tool, amount);
	CHECK(lc_begin(d) == 0);
	CHECK(decider_refresh(d) == 0);
	CHECK(lc_decide(d, &in, T0, &r, NULL) == REASON_OK);
	CHECK(lc_commit(d) == 0);
	/* A new intent has nobody waiting on it: nothing to wake. */
	CHECK(d->changed.n == 0);
	if (r.status != want)
		fprintf(stderr, "decided %s, wanted %s\n",
		    intent_status_name(r.status), intent_status_name(want));
	CHECK(r.status == want);
	memcpy(id, r.id, INTENT_ID_LEN + 1);
	intent_row_clear(&r);
	intent_clear(&in);
}

static enum intent_status
status_of(struct store *s, const char *id)
{
	enum intent_status	 st = ST__COUNT;

	CHECK(s->ops->intent_status(s, id, &st) == 1);
	return (st);
}

struct last_event {
	const char	*id;
	char		 event[32];
};

static int
last_event_cb(json_t *rec, void *arg)
{
	struct last_event	*le = arg;
	const char		*iid = json_string_value(json_object_get(rec,
				    "intent_id"));

	if (iid != NULL && strcmp(iid, le->id) == 0)
		snprintf(le->event, sizeof(le->event), "%s",
		    json_string_value(json_object_get(rec, "event")));
	return (0);
}

static const char *
last_event(struct store *s, const char *id)
{
	static struct last_event	 le;

	memset(&le, 0, sizeof(le));
	le.id = id;
	CHECK(audit_each(s, 0, 0, last_event_cb, &le) == 0);
	return (le.event);
}

/* --- the table ------------------------------------------------------------ */

enum op { APPROVE, REJECT, REDEEM, SWEEP, TOUCH, TRIP_REJECT };
enum setup { PENDING_1, PENDING_2, ALLOWED_PAYMENT };

static void	no_patch(json_t *p) { (void)p; }

static void
disable_agent(json_t *p)
{
	json_object_set_new(json_object_get(json_object_get(p, "principals"),
	    "agent-payments"), "disabled", json_true());
}

static void
remove_agent(json_t *p)
{
	json_object_del(json_object_get(p, "principals"), "agent-payments");
}

static void
deny_payments(json_t *p)
{
	json_array_append_new(json_object_get(json_object_get(json_object_get(
	    p, "roles"), "payments-agent"), "rules"), json_pack("{ss ss}",
	    "tool", "payments.*", "effect", "deny"));
}

/* The agent approves payments too (self-approval), olga as well. */
static void
more_approvers(json_t *p)
{
	json_t	*pr = json_object_get(p, "principals");

	json_array_append_new(json_object_get(json_object_get(pr,
	    "agent-payments"), "roles"), json_string("finance-approver"));
	json_array_append_new(json_object_get(json_object_get(pr,
	    "operator-olga"), "roles"), json_string("finance-approver"));
}

/* Tier 1 now needs two approvals. */
static void
stricter_tiers(json_t *p)
{
	json_t	*tiers, *t;
	size_t	 i;

	tiers = json_object_get(json_object_get(json_array_get(
	    json_object_get(json_object_get(json_object_get(p, "roles"),
	    "payments-agent"), "rules"), 0), "currencies"), "USD");
	json_array_foreach(tiers, i, t)
		if (json_integer_value(json_object_get(t, "approvals")) == 1)
			json_object_set_new(t, "approvals", json_integer(2));
}

static const struct row {
	const char		*name;
	void			(*patch)(json_t *);	/* before the op */
	enum setup		 setup;
	short			 pre_approvals;	/* by alice first */
	short			 switch_on;	/* agent switch before op */
	const char		*actor;
	enum op			 op;
	int			 at;		/* seconds after T0 */
	enum reason		 reason;
	enum intent_status	 status;
	const char		*event;		/* intent's last record */
} rows[] = {
	{ "approve releases", no_patch, PENDING_1, 0, 0, "approver-alice",
	    APPROVE, 10, REASON_OK, ST_ALLOWED, "approval" },
	{ "two of n: first counts", no_patch, PENDING_2, 0, 0,
	    "approver-alice", APPROVE, 10, REASON_OK, ST_PENDING, "approval" },
	{ "two of n: second releases", no_patch, PENDING_2, 1, 0,
	    "approver-bob", APPROVE, 10, REASON_OK, ST_ALLOWED, "approval" },
	{ "approve twice", no_patch, PENDING_2, 1, 0, "approver-alice",
	    APPROVE, 10, E_ALREADY_APPROVED, ST_PENDING, "approval" },
	{ "not an approver at all", no_patch, PENDING_1, 0, 0,
	    "tool-payments", APPROVE, 10, E_FORBIDDEN, ST_PENDING,
	    "decision" },
	{ "approver of another rule", no_patch, PENDING_1, 0, 0,
	    "approver-carol", APPROVE, 10, E_NOT_AN_APPROVER, ST_PENDING,
	    "decision" },
	{ "self approval", no_patch, PENDING_1, 0, 0, "agent-payments",
	    APPROVE, 10, E_SELF_APPROVAL, ST_PENDING, "decision" },
	{ "frozen by a switch", no_patch, PENDING_1, 0, 1, "approver-alice",
	    APPROVE, 10, E_KILL_SWITCH_LOCKED, ST_PENDING, "decision" },
	{ "approve after the ttl", no_patch, PENDING_1, 0, 0,
	    "approver-alice", APPROVE, 3600, E_ALREADY_DECIDED, ST_EXPIRED,
	    "expiry" },
	{ "agent disabled since", disable_agent, PENDING_1, 0, 0,
	    "approver-alice", APPROVE, 10, E_POLICY_CHANGED, ST_REJECTED,
	    "rejection" },
	{ "agent removed since", remove_agent, PENDING_2, 1, 0,
	    "approver-bob", APPROVE, 10, E_POLICY_CHANGED, ST_REJECTED,
	    "rejection" },
	{ "deny rule since", deny_payments, PENDING_1, 0, 0,
	    "approver-alice", APPROVE, 10, E_POLICY_CHANGED, ST_REJECTED,
	    "rejection" },
	{ "stricter tier since", stricter_tiers, PENDING_1, 0, 0,
	    "approver-alice", APPROVE, 10, REASON_OK, ST_PENDING, "approval" },
	{ "reject", no_patch, PENDING_1, 0, 0, "approver-alice", REJECT, 10,
	    REASON_OK, ST_REJECTED, "rejection" },
	{ "reject frozen", no_patch, PENDING_1, 0, 1, "approver-alice",
	    REJECT, 10, E_KILL_SWITCH_LOCKED, ST_PENDING, "decision" },
	{ "reject decided", no_patch, PENDING_1, 1, 0, "approver-bob",
	    REJECT, 10, E_ALREADY_DECIDED, ST_ALLOWED, "approval" },
	{ "reject auto-allowed", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "approver-alice", REJECT, 10, E_NOT_AN_APPROVER, ST_ALLOWED,
	    "decision" },
	{ "redeem", no_patch, ALLOWED_PAYMENT, 0, 0, "tool-payments", REDEEM,
	    10, REASON_OK, ST_ALLOWED, "redemption" },
	{ "redeem not permitted", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "approver-alice", REDEEM, 10, E_NOT_PERMITTED, ST_ALLOWED,
	    "decision" },
	{ "redeem under a switch", no_patch, ALLOWED_PAYMENT, 0, 1,
	    "tool-payments", REDEEM, 10, R_KILL_SWITCH, ST_ALLOWED, "decision" },
	{ "redeem after the window", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "tool-payments", REDEEM, 60, E_ALREADY_REDEEMED, ST_EXPIRED,
	    "expiry" },
	{ "redeem a pending one", no_patch, PENDING_1, 0, 0, "tool-payments",
	    REDEEM, 10, E_ALREADY_REDEEMED, ST_PENDING, "decision" },
	{ "sweep: ttl passed", no_patch, PENDING_1, 0, 0, "toolgated", SWEEP,
	    3600, REASON_OK, ST_EXPIRED, "expiry" },
	{ "sweep: ttl not yet", no_patch, PENDING_1, 0, 0, "toolgated", SWEEP,
	    3599, REASON_OK, ST_PENDING, "decision" },
	{ "sweep: window passed", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "toolgated", SWEEP, 30, REASON_OK, ST_EXPIRED, "expiry" },
	{ "sweep: window not yet", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "toolgated", SWEEP, 29, REASON_OK, ST_ALLOWED, "decision" },
	{ "touch: window passed", no_patch, ALLOWED_PAYMENT, 0, 0, "reader",
	    TOUCH, 30, REASON_OK, ST_EXPIRED, "expiry" },
	{ "trip rejects pending", no_patch, PENDING_2, 1, 0, "operator-olga",
	    TRIP_REJECT, 10, REASON_OK, ST_REJECTED, "rejection" },
	{ "trip leaves allowed", no_patch, ALLOWED_PAYMENT, 0, 0,
	    "operator-olga", TRIP_REJECT, 10, REASON_OK, ST_ALLOWED,
	    "decision" },
};

/* The grant window of the table's deciders. */
static const struct lc_config table_cfg = { .grant_window = 30 };

static enum reason
run_op(struct decider *d, const struct row *rw, const char *id)
{
	struct lc_verdict	 v;
	struct intent_row	 r;
	struct lc_trip_refusal	 why;
	int64_t			 now = T0 + rw->at, ks;
	size_t			 n;
	int			 expired;
	enum reason		 rc = E_INTERNAL;

	CHECK(lc_begin(d) == 0);
	switch (rw->op) {
	case APPROVE:
		rc = lc_approve(d, rw->actor, id, "ok", now, &v);
		break;
	case REJECT:
		rc = lc_reject(d, rw->actor, id, "not on the list", now, &v);
		break;
	case REDEEM:
		rc = lc_redeem(d, rw->actor, id, "agent-payments",
		    "payments.transfer", now);
		break;
	case SWEEP:
		rc = lc_expire_due(d, now, &n);
		break;
	case TOUCH:
		CHECK(d->store->ops->intent_get(d->store, id,
		    STORE_FOR_UPDATE, &r) == 1);
		rc = lc_expire_touched(d, &r, now, &expired);
		CHECK(expired == (r.status == ST_EXPIRED));
		intent_row_clear(&r);
		break;
	case TRIP_REJECT:
		rc = lc_trip(d, rw->actor, KS_TOOL, "payments.*", "incident",
		    LC_TRIP_REJECT_PENDING, now, &ks, &why);
		break;
	}
	return (lc_finish(d, rc));
}

static void
test_table(void)
{
	struct decider	 d;
	struct store	*s;
	const struct row *rw;
	struct lc_verdict v;
	json_t		*p;
	char		 id[INTENT_ID_LEN + 1];
	struct lc_trip_refusal why;
	int64_t		 ks;
	size_t		 i;
	enum intent_status before;
	enum reason	 rc;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rw = &rows[i];
		snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
		CHECK(mkstemp(dbpath) >= 0);
		s = open_store();
		decider_init(&d, s, "test", &table_cfg);
		/* More approvers everywhere: rows need olga and the agent. */
		p = json_deep_copy(example);
		more_approvers(p);
		apply(&d, p);
		if (rw->setup == ALLOWED_PAYMENT)
			decide(&d, "agent-payments", "payments.transfer",
			    "10.00", ST_ALLOWED, id);
		else
			decide(&d, "agent-payments", "payments.transfer",
			    rw->setup == PENDING_1 ? "5000.00" : "50000.00",
			    ST_PENDING, id);
		if (rw->pre_approvals > 0) {
			CHECK(lc_begin(&d) == 0);
			CHECK(lc_finish(&d, lc_approve(&d, "approver-alice", id,
			    NULL, T0 + 1, &v)) == REASON_OK);
		}
		if (rw->patch != no_patch) {
			rw->patch(p);
			apply(&d, p);
		}
		json_decref(p);
		if (rw->switch_on) {
			CHECK(lc_begin(&d) == 0);
			CHECK(lc_finish(&d, lc_trip(&d, "operator-olga",
			    KS_AGENT, "agent-payments", "stop", 0, T0 + 2, &ks,
			    &why)) == REASON_OK);
		}
		before = status_of(s, id);
		rc = run_op(&d, rw, id);
		if (rc != rw->reason || status_of(s, id) != rw->status ||
		    strcmp(last_event(s, id), rw->event) != 0)
			fprintf(stderr, "row \"%s\": %s, %s, %s\n", rw->name,
			    reason_code(rc), intent_status_name(status_of(s,
			    id)), last_event(s, id));
		CHECK(rc == rw->reason);
		CHECK(status_of(s, id) == rw->status);
		CHECK(strcmp(last_event(s, id), rw->event) == 0);
		/* What moved is what the daemon wakes: exactly this id. */
		if (rw->status == before)
			CHECK(d.changed.n == 0);
		else {
			CHECK(d.changed.n == 1);
			CHECK(strcmp(d.changed.ids[0], id) == 0);
		}
		decider_deinit(&d);
		store_close(s);
		drop_db();
	}
}

/* A stranger's args are kept only as their hash; a known agent's whole. */
static void
test_stranger_args(void)
{
	struct decider		 d;
	struct store		*s;
	struct intent		 in;
	struct intent_row	 r, got;
	char			*text, sha[65];

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0);
	s = open_store();
	decider_init(&d, s, "test", NULL);
	apply(&d, example);
	make_intent(&in, "agent-stranger", "crm.lookup", NULL);
	in.args = json_pack("{ss}", "blob", "zzzzzzzzzzzzzzzz");
	text = canon_dump(in.args);
	canon_sha256_hex(text, strlen(text), sha);
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_decide(&d, &in, T0, &r, NULL) == REASON_OK);
	CHECK(lc_commit(&d) == 0);
	CHECK(r.reason == R_UNKNOWN_PRINCIPAL && r.args == NULL);
	CHECK(s->ops->intent_get(s, r.id, 0, &got) == 1);
	CHECK(got.args == NULL && strcmp(got.args_sha256, sha) == 0);
	intent_row_clear(&got);
	intent_row_clear(&r);
	intent_clear(&in);
	make_intent(&in, "agent-payments", "crm.lookup", NULL);
	in.args = json_pack("{si}", "id", 42);
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_decide(&d, &in, T0, &r, NULL) == REASON_OK);
	CHECK(lc_commit(&d) == 0);
	CHECK(strcmp(r.args, "{\"id\":42}") == 0 && r.args_sha256 == NULL);
	intent_row_clear(&r);
	intent_clear(&in);
	free(text);
	decider_deinit(&d);
	store_close(s);
	drop_db();
}

/* A replay writes nothing; a rolled-back batch keeps nothing. */
static void
test_replay_and_rollback(void)
{
	struct decider		 d;
	struct store		*s;
	struct intent		 in;
	struct intent_row	 r;
	struct audit_check	 chk;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0);
	s = open_store();
	decider_init(&d, s, "test", NULL);
	apply(&d, example);
	make_intent(&in, "agent-payments", "crm.lookup", NULL);
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_decide(&d, &in, T0, &r, NULL) == REASON_OK);
	intent_row_clear(&r);
	CHECK(lc_decide(&d, &in, T0, &r, NULL) == E_REPLAY);
	lc_rollback(&d);
	/* Rolled back: the jti is free again, and the chain is as before. */
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_decide(&d, &in, T0, &r, NULL) == REASON_OK);
	CHECK(lc_commit(&d) == 0);
	CHECK(audit_verify(s, &chk) == 0 && chk.count == 2);
	intent_row_clear(&r);
	intent_clear(&in);
	decider_deinit(&d);
	store_close(s);
	drop_db();
}

/*
 * The policy's 400s and amounts in args: a claim that differs from the
 * args is refused before anything is stored (its jti stays unused); the
 * amount stored is the one read from args; an approval re-decides with
 * the stored (canonical) args and that amount as the claim, which are
 * equal by value (5000.00 signed as a number is 5000 in RFC 8785), so the
 * approval counts instead of failing as a false amount_mismatch.
 */
static void
test_amounts_in_args(void)
{
	static const char signed_args[] =
	    "{\"amount\": 5000.00, \"currency\": \"USD\"}";
	struct decider		 d;
	struct store		*s;
	struct intent		 in;
	struct intent_row	 r;
	struct lc_verdict	 v;
	struct audit_check	 chk;
	char			 why[POLICY_MESSAGE_MAX];

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0);
	s = open_store();
	decider_init(&d, s, "test", NULL);
	apply(&d, example);
	make_intent(&in, "agent-payments", "payments.transfer", NULL);
	CHECK((in.args = json_loads(signed_args, 0, NULL)) != NULL);
	CHECK((in.args_json = strdup(signed_args)) != NULL);
	in.args_json_len = strlen(signed_args);
	CHECK(amount_parse_value("1.00", 4, &in.amount) == 0);
	memcpy(in.amount.currency, "USD", 4);
	snprintf(in.amount_text, sizeof(in.amount_text), "1.00");
	in.has_amount = 1;
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_decide(&d, &in, T0, &r, why) == E_AMOUNT_MISMATCH);
	CHECK(strstr(why, "differs from the amount in args") != NULL);
	/* The same jti again, with the claim the args say: decided. */
	CHECK(amount_parse_value("5000", 4, &in.amount) == 0);
	snprintf(in.amount_text, sizeof(in.amount_text), "5000");
	CHECK(lc_decide(&d, &in, T0, &r, why) == REASON_OK &&
	    why[0] == '\0');
	CHECK(lc_commit(&d) == 0);
	CHECK(r.status == ST_PENDING && r.approvals_required == 1);
	CHECK(strcmp(r.amount_value, "5000.00") == 0 &&
	    strcmp(r.amount_currency, "USD") == 0);
	CHECK(strcmp(r.args, "{\"amount\":5000,\"currency\":\"USD\"}") ==
	    0);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_approve(&d, "approver-alice", r.id, NULL,
	    T0 + 5, &v)) == REASON_OK);
	CHECK(v.status == ST_ALLOWED && v.approvals == 1);
	CHECK(audit_verify(s, &chk) == 0 && chk.count == 3);
	intent_row_clear(&r);
	intent_clear(&in);
	decider_deinit(&d);
	store_close(s);
	drop_db();
}

/* --- concurrent approvers --------------------------------------------------- */

struct racer {
	const char		*who;
	const char		*id;
	pthread_barrier_t	*start;
	enum reason		 result;
	struct lc_verdict	 v;
};

static void *
racer_main(void *arg)
{
	struct racer	*rc = arg;
	struct decider	 d;
	struct store	*s = open_store();

	decider_init(&d, s, rc->who, NULL);
	pthread_barrier_wait(rc->start);
	rc->result = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d,
	    lc_approve(&d, rc->who, rc->id, NULL, T0 + 5, &rc->v));
	decider_deinit(&d);
	store_close(s);
	return (NULL);
}

static void
test_concurrent_approvers(void)
{
	static const char *const who[] = { "approver-alice", "approver-bob",
	    "operator-olga" };
	struct racer		 rc[3];
	pthread_t		 th[3];
	pthread_barrier_t	 start;
	struct decider		 d;
	struct store		*s;
	struct intent_row	 r;
	struct audit_check	 chk;
	json_t			*p;
	char			 id[INTENT_ID_LEN + 1];
	int			 round, i, ok, decided, released;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0);
	s = open_store();
	decider_init(&d, s, "test", NULL);
	p = json_deep_copy(example);
	more_approvers(p);
	apply(&d, p);
	json_decref(p);
	for (round = 0; round < 40; round++) {
		/* Odd rounds need one approval, even rounds two. */
		decide(&d, "agent-payments", "payments.transfer", round % 2 ?
		    "5000.00" : "50000.00", ST_PENDING, id);
		CHECK(pthread_barrier_init(&start, NULL, 3) == 0);
		for (i = 0; i < 3; i++) {
			memset(&rc[i], 0, sizeof(rc[i]));
			rc[i].who = who[i];
			rc[i].id = id;
			rc[i].start = &start;
			CHECK(pthread_create(&th[i], NULL, racer_main,
			    &rc[i]) == 0);
		}
		ok = decided = released = 0;
		for (i = 0; i < 3; i++) {
			CHECK(pthread_join(th[i], NULL) == 0);
			ok += rc[i].result == REASON_OK;
			decided += rc[i].result == E_ALREADY_DECIDED;
			released += rc[i].result == REASON_OK &&
			    rc[i].v.status == ST_ALLOWED;
		}
		pthread_barrier_destroy(&start);
		CHECK(ok == (round % 2 ? 1 : 2));
		CHECK(ok + decided == 3);
		CHECK(released == 1);
		CHECK(s->ops->intent_get(s, id, STORE_APPROVALS, &r) == 1);
		CHECK(r.status == ST_ALLOWED);
		CHECK((int)r.n_approvals == ok);
		intent_row_clear(&r);
	}
	CHECK(audit_verify(s, &chk) == 0);
	decider_deinit(&d);
	store_close(s);
	drop_db();
}

/* --- the MCP gateway (lifecycle_mcp.c) ----------------------------------- */

static const char mcp_trust_key[] = "00112233445566778899aabbccddeeff"
    "00112233445566778899aabbccddeeff\n";

/*
 * A fresh database with the example policy, decided by d through a trust
 * of keys (guard 1: heads are checked, as in a broker).  A forward is a
 * grant: the lifecycle hands one out only against tagged records, as a
 * broker's trust checks them.
 */
static struct store *
mcp_open(struct decider *d, struct lc_config *cfg, struct audit_keys *keys,
    struct audit_trust *trust, int guard)
{
	struct store	*s;
	const char	*why;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-lifecycle-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0);
	s = open_store();
	CHECK(audit_keys_parse(keys, mcp_trust_key, sizeof(mcp_trust_key) - 1,
	    &why) == 0 && audit_trust_init(trust, keys, guard) == 0);
	memset(cfg, 0, sizeof(*cfg));
	cfg->grant_window = LC_GRANT_WINDOW_DEFAULT;
	cfg->trust = trust;
	decider_init(d, s, "test", cfg);
	apply(d, example);
	return (s);
}

/* The store's own audit_intent, counted: how often a decision reads an
 * intent's records back (audit_trust_grant) rather than trusting what it
 * has just written. */
static struct store_ops	 counted_ops;
static int		 (*real_audit_intent)(struct store *, const char *,
			    store_audit_cb, void *);
static int		 audit_intent_reads;

static int
counted_audit_intent(struct store *st, const char *id, store_audit_cb cb,
    void *arg)
{
	audit_intent_reads++;
	return (real_audit_intent(st, id, cb, arg));
}

static void
count_audit_intent(struct store *st)
{
	counted_ops = *st->ops;
	real_audit_intent = counted_ops.audit_intent;
	counted_ops.audit_intent = counted_audit_intent;
	st->ops = &counted_ops;
}

/*
 * One MCP tools/call of agent-payments at now through lc_mcp_call, in its
 * own transaction: the intent it ended with in *r (owned), *res.
 */
static enum reason
mcp_call(struct decider *d, const char *tool, const char *args_text,
    const char *held, int64_t now, struct intent_row *r,
    struct lc_mcp_result *res)
{
	struct intent	 in;
	json_t		*args = NULL;
	enum reason	 rc;

	if (args_text != NULL)
		CHECK((args = json_loads(args_text, 0, NULL)) != NULL);
	CHECK(lc_mcp_intent(&in, "agent-payments", tool, args, args_text,
	    args_text ? strlen(args_text) : 0, now) == 0);
	json_decref(args);
	CHECK(lc_begin(d) == 0 && decider_refresh(d) == 0);
	rc = lc_finish(d, lc_mcp_call(d, &in, held, now, r, NULL, res));
	CHECK(rc != REASON_OK || res->joined ||
	    strncmp(r->jti, LC_MCP_JTI_PREFIX, 4) == 0);
	intent_clear(&in);
	return (rc);
}

/*
 * One request (one intent) decides, another request forwards that intent
 * once approved, and the first decides again: a jti of its own each time,
 * never a replay.
 */
static void
mcp_decide_twice(struct decider *d)
{
	static const char pay[] = "{\"amount\": \"6000.00\", "
	    "\"currency\": \"USD\"}";
	struct intent		 in;
	struct intent_row	 r;
	struct lc_mcp_result	 res;
	struct lc_verdict	 v;
	json_t			*args;
	char			 z[INTENT_ID_LEN + 1];

	CHECK((args = json_loads(pay, 0, NULL)) != NULL);
	CHECK(lc_mcp_intent(&in, "agent-payments", "payments.transfer", args,
	    pay, strlen(pay), T0) == 0);
	json_decref(args);
	CHECK(in.jti == NULL);
	CHECK(lc_begin(d) == 0 && decider_refresh(d) == 0);
	CHECK(lc_finish(d, lc_mcp_call(d, &in, NULL, T0, &r, NULL, &res)) ==
	    REASON_OK && !res.joined && r.status == ST_PENDING);
	memcpy(z, r.id, sizeof(z));
	intent_row_clear(&r);
	CHECK(lc_begin(d) == 0);
	CHECK(lc_finish(d, lc_approve(d, "approver-alice", z, NULL, T0 + 1,
	    &v)) == REASON_OK);
	CHECK(mcp_call(d, "payments.transfer", pay, z, T0 + 2, &r, &res) ==
	    REASON_OK && res.forward);
	intent_row_clear(&r);
	CHECK(lc_begin(d) == 0 && decider_refresh(d) == 0);
	CHECK(lc_finish(d, lc_mcp_call(d, &in, z, T0 + 3, &r, NULL, &res)) ==
	    REASON_OK && !res.joined && strcmp(r.id, z) != 0 &&
	    r.status == ST_PENDING);
	intent_row_clear(&r);
	intent_clear(&in);
}

static void
test_mcp_calls(void)
{
	static const char pay[] = "{\"currency\": \"USD\", \"amount\": "
	    "\"5000.00\"}";
	static const char pay_reordered[] = "{\"amount\":\"5000.00\","
	    "\"currency\":\"USD\"}";
	struct decider		 d;
	struct store		*s;
	struct intent		 in;
	struct intent_row	 r;
	struct lc_mcp_result	 res;
	struct lc_verdict	 v;
	struct audit_check	 chk;
	const char		*why;
	struct lc_trip_refusal	 refusal;
	struct audit_keys	 keys;
	struct audit_trust	 trust;
	struct lc_config	 cfg;
	char			 x[INTENT_ID_LEN + 1], y[INTENT_ID_LEN + 1];
	char			 sha[65];
	json_t			*args;
	int64_t			 ks;

	s = mcp_open(&d, &cfg, &keys, &trust, 0);
	count_audit_intent(s);

	/* Allowed at once: redeemed for its forward in the same
	 * transaction, without reading back the records it just wrote; a
	 * second such call is a call of its own. */
	CHECK(mcp_call(&d, "crm.lookup", "{\"id\": 1}", NULL, T0, &r,
	    &res) == REASON_OK);
	CHECK(r.status == ST_ALLOWED && res.forward && !res.joined &&
	    r.redeemed_at == T0);
	CHECK(audit_intent_reads == 0);
	CHECK((args = json_pack("{si}", "id", 1)) != NULL);
	CHECK(lc_mcp_call_sha256("agent-payments", "crm.lookup", args,
	    sha) == 0);
	json_decref(args);
	CHECK(strcmp(sha, r.intent_sha256) == 0);
	CHECK(lc_mcp_is_call(&r));
	CHECK(strcmp(last_event(s, r.id), "redemption") == 0);
	memcpy(x, r.id, sizeof(x));
	intent_row_clear(&r);
	CHECK(mcp_call(&d, "crm.lookup", "{\"id\": 1}", NULL, T0, &r,
	    &res) == REASON_OK);
	CHECK(strcmp(r.id, x) != 0 && res.forward && !res.joined);
	intent_row_clear(&r);

	/* Pending; the same call (canonically equal args) joins it, other
	 * args do not. */
	CHECK(mcp_call(&d, "payments.transfer", pay, NULL, T0, &r, &res) ==
	    REASON_OK);
	CHECK(r.status == ST_PENDING && !res.forward && !res.joined);
	memcpy(x, r.id, sizeof(x));
	intent_row_clear(&r);
	CHECK(mcp_call(&d, "payments.transfer", pay_reordered, NULL, T0 + 5,
	    &r, &res) == REASON_OK);
	CHECK(strcmp(r.id, x) == 0 && res.joined && !res.forward &&
	    r.status == ST_PENDING);
	intent_row_clear(&r);
	CHECK(mcp_call(&d, "payments.transfer", "{\"currency\": \"USD\", "
	    "\"amount\": \"5000.01\"}", NULL, T0, &r, &res) == REASON_OK);
	CHECK(strcmp(r.id, x) != 0 && !res.joined && r.status == ST_PENDING);
	intent_row_clear(&r);

	/* Approved: the held request (or a repeat) forwards it, once; a
	 * second waiter finds it forwarded and is a new call again. */
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_approve(&d, "approver-alice", x, NULL, T0 + 10,
	    &v)) == REASON_OK && v.status == ST_ALLOWED);
	CHECK(mcp_call(&d, "payments.transfer", pay, x, T0 + 11, &r, &res) ==
	    REASON_OK);
	CHECK(strcmp(r.id, x) == 0 && res.forward && r.redeemed_at != 0);
	/* ... read from the database, so its allowing records are
	 * checked before it is forwarded */
	CHECK(audit_intent_reads > 0);
	intent_row_clear(&r);
	CHECK(mcp_call(&d, "payments.transfer", pay, x, T0 + 12, &r, &res) ==
	    REASON_OK);
	CHECK(strcmp(r.id, x) != 0 && !res.forward && !res.joined &&
	    r.status == ST_PENDING);
	memcpy(y, r.id, sizeof(y));
	intent_row_clear(&r);
	mcp_decide_twice(&d);
	CHECK(mcp_call(&d, "payments.transfer", pay, NULL, T0 + 12, &r,
	    &res) == REASON_OK && res.joined && strcmp(r.id, y) == 0);
	intent_row_clear(&r);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_mcp_forwarded(&d, x, "ok", "the upstream "
	    "answered", T0 + 13)) == REASON_OK);
	CHECK(strcmp(last_event(s, x), "mcp.forward") == 0);

	/* A kill switch covering the open intent: noted, not forwarded. */
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_trip(&d, "operator-olga", KS_TOOL,
	    "payments.*", "incident", 0, T0 + 20, &ks, &refusal)) ==
	    REASON_OK);
	CHECK(mcp_call(&d, "payments.transfer", pay, NULL, T0 + 21, &r, &res)
	    == REASON_OK);
	CHECK(strcmp(r.id, y) == 0 && res.joined && res.killed &&
	    !res.forward);
	intent_row_clear(&r);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_reset(&d, "operator-olga", ks, "over",
	    T0 + 22, &why)) == REASON_OK);

	/* Past its approval window the open intent expires on touch and
	 * the call is decided anew. */
	CHECK(mcp_call(&d, "payments.transfer", pay, NULL, T0 + 12 + 3601,
	    &r, &res) == REASON_OK);
	CHECK(strcmp(r.id, y) != 0 && !res.joined && r.status == ST_PENDING);
	CHECK(status_of(s, y) == ST_EXPIRED);
	intent_row_clear(&r);

	/* A signed intent whose jti looks like ours is not an MCP call:
	 * its hash is its payload's. */
	make_intent(&in, "agent-payments", "crm.lookup", NULL);
	free(in.jti);
	CHECK((in.jti = strdup(LC_MCP_JTI_PREFIX "x")) != NULL);
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_finish(&d, lc_decide(&d, &in, T0, &r, NULL)) == REASON_OK);
	CHECK(!lc_mcp_is_call(&r));
	intent_row_clear(&r);
	intent_clear(&in);

	CHECK(audit_verify(s, &chk) == 0);
	decider_deinit(&d);
	store_close(s);
	audit_trust_deinit(&trust);
	audit_keys_clear(&keys);
	drop_db();
}

/*
 * A forward's grant is checked inside its decision's transaction, after
 * the decision's records were appended.  The known head must stay at what
 * is committed: a worker's connection checking the chain meanwhile must
 * not find it shorter than the known head (a false break), and a rollback
 * must leave the known head where the chain is.
 */
static void
test_mcp_grant_in_tx(void)
{
	struct audit_keys	 keys;
	struct audit_trust	 trust;
	struct audit_head	 before, during, after;
	struct lc_config	 cfg;
	struct decider		 d;
	struct store		*s, *reader;
	struct intent		 in;
	struct intent_row	 r;
	struct lc_mcp_result	 res;

	s = mcp_open(&d, &cfg, &keys, &trust, 1);
	reader = open_store();	/* a worker's connection */
	CHECK(audit_trust_refresh(&trust, reader) == 0);
	audit_trust_state(&trust, NULL, NULL, 0, &before);

	CHECK(lc_mcp_intent(&in, "agent-payments", "crm.lookup", NULL, NULL,
	    0, T0) == 0);
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_mcp_call(&d, &in, NULL, T0, &r, NULL, &res) == REASON_OK &&
	    res.forward);
	intent_row_clear(&r);
	audit_trust_state(&trust, NULL, NULL, 0, &during);
	CHECK(during.seq == before.seq);
	CHECK(audit_trust_refresh(&trust, reader) == 0);
	lc_rollback(&d);
	CHECK(audit_trust_refresh(&trust, reader) == 0 &&
	    !audit_trust_broken(&trust));

	/* Committed: the known head moves to its decision and redemption. */
	CHECK(lc_begin(&d) == 0 && decider_refresh(&d) == 0);
	CHECK(lc_finish(&d, lc_mcp_call(&d, &in, NULL, T0, &r, NULL, &res)) ==
	    REASON_OK && res.forward);
	intent_row_clear(&r);
	audit_trust_state(&trust, NULL, NULL, 0, &after);
	CHECK(after.seq == before.seq + 2);
	CHECK(audit_trust_refresh(&trust, reader) == 0 &&
	    !audit_trust_broken(&trust));

	intent_clear(&in);
	decider_deinit(&d);
	store_close(reader);
	store_close(s);
	audit_trust_deinit(&trust);
	audit_keys_clear(&keys);
	drop_db();
}

int
main(void)
{
	load_example();
	test_table();
	test_stranger_args();
	test_replay_and_rollback();
	test_amounts_in_args();
	test_concurrent_approvers();
	test_mcp_calls();
	test_mcp_grant_in_tx();
	json_decref(example);
	printf("lifecycle: %d passed, 0 failed\n", passed);
	return (0);
}
