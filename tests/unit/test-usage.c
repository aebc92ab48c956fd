/*
 * test-usage: cumulative limits (broker/core/usage*.c) through the
 * lifecycle on a real SQLite file — the rolling window at its edge (an
 * intent exactly `window` seconds old no longer counts), frees_at,
 * reservation by pending intents and release on rejection, expiry (the
 * sweeper, on touch, the grant window) and a policy's re-decision,
 * escalation to approvals, exact sums at the edges of the amount grammar
 * and of what can be stored (refused, never wrapped), usage shared by
 * the decisions of one batch, recounting when a policy adds or changes a
 * limit, and explain recording nothing.
 */
#undef NDEBUG
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "canon.h"
#include "check.h"
#include "lifecycle.h"
#include "log.h"
#include "store.h"
#include "store_sqlite.h"
#include "usage.h"

static int	 passed, failed;

#define T0	1795736400
#define DAY	86400

static char	 dbpath[64];
static int	 jti_seq;

/* --- fixtures ----------------------------------------------------------- */

/*
 * agent-a and agent-b pay (pay.send: any USD amount at once; pay.big:
 * one approval by fin; mail.send: no amount); alice and bob are fin,
 * carol is chief; limits as given (a JSON array text).
 */
static char *
policy_text(const char *limits)
{
	char	*t;

	if (asprintf(&t, "{\"principals\": {"
	    "\"agent-a\": {\"roles\": [\"pay\"]},"
	    "\"agent-b\": {\"roles\": [\"pay\"]},"
	    "\"alice\": {\"roles\": [\"fin\"]},"
	    "\"bob\": {\"roles\": [\"fin\"]},"
	    "\"carol\": {\"roles\": [\"chief\", \"fin\"]},"
	    "\"olga\": {\"roles\": [\"ops\"]},"
	    "\"teller\": {\"roles\": [\"svc\"]}},"
	    "\"roles\": {\"pay\": {\"rules\": ["
	    "{\"tool\": \"pay.send\", \"amount_from\": {\"value\": \"/amount\","
	    " \"currency\": \"/currency\"}, \"currencies\": {\"USD\": [{\"max\":"
	    " \"999999999999999.999999\", \"approvals\": 0}], \"EUR\": [{"
	    "\"max\": \"1000\", \"approvals\": 0}]}},"
	    "{\"tool\": \"pay.big\", \"amount_from\": {\"value\": \"/amount\","
	    " \"currency\": \"USD\"}, \"currencies\": {\"USD\": [{\"max\":"
	    " \"999999999999999\", \"approvals\": 1}]},"
	    " \"approvers\": [\"fin\"], \"approval_ttl\": 600},"
	    "{\"tool\": \"mail.send\"}]},"
	    "\"fin\": {}, \"chief\": {}, \"ops\": {\"operator\": true},"
	    "\"svc\": {\"redeem\": [\"pay.*\"]}},"
	    "\"limits\": %s}", limits) == -1)
		return (NULL);
	return (t);
}

static struct store *
open_store(void)
{
	char		 err[256];
	struct store	*s;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-usage-XXXXXX");
	CHECK(mkstemp(dbpath) >= 0, "mkstemp");
	s = store_open(dbpath, STORE_CREATE, err, sizeof(err));
	CHECK(s != NULL, "store_open: %s", err);
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

static void
apply(struct decider *d, const char *limits, int64_t now)
{
	char	*text = policy_text(limits);
	int64_t	 v;

	CHECK(text != NULL, "policy text");
	if (text == NULL)
		return;
	CHECK(lc_begin(d) == 0, "begin");
	CHECK(lc_finish(d, lc_policy_apply(d, text, strlen(text), "test", now,
	    &v)) == REASON_OK, "apply %s", limits);
	free(text);
}

static void
make_intent(struct intent *in, const char *agent, const char *tool,
    const char *amount, const char *currency, int64_t now)
{
	memset(in, 0, sizeof(*in));
	in->iss = strdup(agent);
	if (asprintf(&in->jti, "jti-%d", ++jti_seq) == -1)
		in->jti = NULL;
	in->tool = strdup(tool);
	if (amount != NULL) {
		in->args = json_pack("{ss ss ss}", "amount", amount,
		    "currency", currency, "to", "DE89");
		in->args_json = canon_dump(in->args);
		in->args_json_len = in->args_json ? strlen(in->args_json) : 0;
	}
	in->iat = now;
	in->exp = now + 60;
	CHECK(in->iss && in->jti && in->tool, "out of memory");
	if (in->jti != NULL)
		canon_sha256_hex(in->jti, strlen(in->jti),
		    in->payload_sha256);
}

/* Decide in a transaction of its own; the row into *r (owned). */
static enum reason
decide_row(struct decider *d, const char *agent, const char *tool,
    const char *amount, int64_t now, struct intent_row *r)
{
	struct intent	 in;
	enum reason	 rc;

	make_intent(&in, agent, tool, amount, "USD", now);
	CHECK(lc_begin(d) == 0 && decider_refresh(d) == 0, "begin");
	rc = lc_decide(d, &in, now, r, NULL);
	rc = lc_finish(d, rc);
	intent_clear(&in);
	return (rc);
}

/* Decide and return the status (id into id when not NULL). */
static enum intent_status
decide(struct decider *d, const char *agent, const char *tool,
    const char *amount, int64_t now, char *id)
{
	struct intent_row	 r;
	enum intent_status	 st;

	CHECK(decide_row(d, agent, tool, amount, now, &r) == REASON_OK,
	    "decide %s %s", tool, amount ? amount : "");
	st = r.status;
	if (id != NULL)
		memcpy(id, r.id, INTENT_ID_LEN + 1);
	intent_row_clear(&r);
	return (st);
}

/* The usage item of limit name for key (as text), or NULL. */
static json_t *
usage_item(struct decider *d, const char *name, const char *key,
    int64_t now)
{
	json_t	*items = json_array(), *it, *found = NULL;
	int64_t	 next;
	size_t	 i;
	char	*k;

	CHECK(decider_refresh(d) == 0, "refresh");
	CHECK(usage_list(d->store, d->policy, NULL, now, 0, 1000, items,
	    &next) == 0, "usage_list");
	json_array_foreach(items, i, it) {
		k = canon_dump(json_object_get(it, "key"));
		if (strcmp(json_string_value(json_object_get(it, "name")),
		    name) == 0 && k != NULL && strcmp(k, key) == 0)
			found = json_incref(it);
		free(k);
	}
	json_decref(items);
	return (found);
}

/* "used" of (name, key) as text ("0" when no row). */
static void
used_text(struct decider *d, const char *name, const char *key, int64_t now,
    char *buf, size_t len)
{
	json_t	*it = usage_item(d, name, key, now), *u;

	u = json_object_get(it, "used");
	if (json_is_string(u))
		snprintf(buf, len, "%s", json_string_value(u));
	else if (json_is_integer(u))
		snprintf(buf, len, "%lld", (long long)json_integer_value(u));
	else
		snprintf(buf, len, "0");
	json_decref(it);
}

#define USED_IS(d, name, key, now, want) do {				\
	char	 u_[64];						\
	used_text((d), (name), (key), (now), u_, sizeof(u_));		\
	CHECK(strcmp(u_, (want)) == 0, "%s %s at +%lld: used %s, want %s", \
	    (name), (key), (long long)((now) - T0), u_, (want));	\
} while (0)

static struct store	*S;
static struct decider	 D;

static void
setup(const char *limits, const struct lc_config *cfg)
{
	S = open_store();
	decider_init(&D, S, "test", cfg);
	apply(&D, limits, T0 - 10);
}

static void
teardown(void)
{
	decider_deinit(&D);
	store_close(S);
	drop_db();
}

/* --- the window and frees_at --------------------------------------------- */

static void
test_window_edge(void)
{
	struct intent_row	 r;
	json_t			*lim;

	setup("[{\"name\": \"two\", \"tools\": [\"mail.send\"], \"window\": "
	    "60, \"max_count\": 2}]", NULL);
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0, NULL) ==
	    ST_ALLOWED, "first");
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + 1, NULL) ==
	    ST_ALLOWED, "second");
	/* the third is over: it fits when the first is 60 s old */
	CHECK(decide_row(&D, "agent-a", "mail.send", NULL, T0 + 59, &r) ==
	    REASON_OK, "third");
	CHECK(r.status == ST_DENIED && r.reason == R_LIMIT_EXCEEDED,
	    "third denied: %s", reason_code(r.reason));
	CHECK(r.limit_json != NULL, "limit named");
	lim = json_loads(r.limit_json ? r.limit_json : "{}", 0, NULL);
	CHECK(json_integer_value(json_object_get(lim, "used")) == 2 &&
	    json_integer_value(json_object_get(lim, "max")) == 2 &&
	    json_integer_value(json_object_get(lim, "window")) == 60 &&
	    strcmp(json_string_value(json_object_get(lim, "name")), "two") ==
	    0, "limit %s", r.limit_json);
	CHECK(json_is_string(json_object_get(lim, "frees_at")) &&
	    strcmp(json_string_value(json_object_get(lim, "frees_at")),
	    "2026-11-26T23:41:00Z") == 0, "frees_at T0+60: %s", r.limit_json);
	json_decref(lim);
	intent_row_clear(&r);
	/* another agent has its own counter */
	CHECK(decide(&D, "agent-b", "mail.send", NULL, T0 + 59, NULL) ==
	    ST_ALLOWED, "agent-b");
	USED_IS(&D, "two", "[\"agent-a\"]", T0 + 59, "2");
	/* exactly 60 s old: the first has left the window */
	USED_IS(&D, "two", "[\"agent-a\"]", T0 + 60, "1");
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + 60, NULL) ==
	    ST_ALLOWED, "at the edge");
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + 60, NULL) ==
	    ST_DENIED, "full again");
	USED_IS(&D, "two", "[\"agent-a\"]", T0 + 61, "1");
	USED_IS(&D, "two", "[\"agent-a\"]", T0 + 120, "0");
	teardown();
}

static void
test_split_payment_and_frees_at(void)
{
	struct intent_row	 r;
	json_t			*lim;
	int			 i;

	setup("[{\"name\": \"daily\", \"tools\": [\"pay.*\"], \"window\": "
	    "86400, \"currency\": \"USD\", \"max_amount\": \"20000.00\"}]",
	    NULL);
	for (i = 0; i < 20; i++)
		CHECK(decide(&D, "agent-a", "pay.send", "999.99", T0 + i,
		    NULL) == ST_ALLOWED, "split %d", i);
	CHECK(decide_row(&D, "agent-a", "pay.send", "999.99", T0 + 100,
	    &r) == REASON_OK, "21st");
	CHECK(r.status == ST_DENIED && r.reason == R_LIMIT_EXCEEDED,
	    "21st denied");
	lim = json_loads(r.limit_json ? r.limit_json : "{}", 0, NULL);
	/* 19999.80 used; 999.99 more needs 999.79 freed: the first one */
	CHECK(strcmp(json_string_value(json_object_get(lim, "used")),
	    "19999.80") == 0 && strcmp(json_string_value(json_object_get(lim,
	    "max")), "20000.00") == 0, "used: %s", r.limit_json);
	CHECK(strcmp(json_string_value(json_object_get(lim, "frees_at")),
	    "2026-11-27T23:40:00Z") == 0, "frees_at T0+day: %s",
	    r.limit_json);
	json_decref(lim);
	intent_row_clear(&r);
	/* a smaller one still fits; other currencies do not count */
	CHECK(decide(&D, "agent-a", "pay.send", "0.20", T0 + 100, NULL) ==
	    ST_ALLOWED, "0.20 fits exactly");
	CHECK(decide(&D, "agent-a", "pay.send", "0.000001", T0 + 100, NULL) ==
	    ST_DENIED, "one micro-unit more does not");
	{
		struct intent	in;
		struct intent_row rr;

		make_intent(&in, "agent-a", "pay.send", "900", "EUR", T0 + 100);
		CHECK(lc_begin(&D) == 0 && decider_refresh(&D) == 0, "b");
		CHECK(lc_finish(&D, lc_decide(&D, &in, T0 + 100, &rr, NULL)) ==
		    REASON_OK && rr.status == ST_ALLOWED, "EUR not counted");
		intent_row_clear(&rr);
		intent_clear(&in);
	}
	/* the call alone over the maximum can never fit */
	CHECK(decide_row(&D, "agent-b", "pay.send", "20000.01", T0 + 100,
	    &r) == REASON_OK && r.status == ST_DENIED, "alone over");
	lim = json_loads(r.limit_json ? r.limit_json : "{}", 0, NULL);
	CHECK(json_is_null(json_object_get(lim, "frees_at")) &&
	    strcmp(json_string_value(json_object_get(lim, "used")), "0.00") ==
	    0, "never: %s", r.limit_json);
	json_decref(lim);
	intent_row_clear(&r);
	/* a day after the first: it has left, one more 999.99 fits */
	CHECK(decide(&D, "agent-a", "pay.send", "999.99", T0 + DAY, NULL) ==
	    ST_ALLOWED, "next day");
	teardown();
}

/* frees_at walks the buckets, oldest first, until enough leaves. */
static void
test_frees_at_walk(void)
{
	struct intent_row	 r;
	json_t			*lim;

	setup("[{\"name\": \"h\", \"tools\": [\"pay.send\"], \"window\": "
	    "3600, \"currency\": \"USD\", \"max_amount\": \"100\"}]", NULL);
	CHECK(decide(&D, "agent-a", "pay.send", "30", T0, NULL) == ST_ALLOWED,
	    "30");
	CHECK(decide(&D, "agent-a", "pay.send", "30", T0 + 10, NULL) ==
	    ST_ALLOWED, "60");
	CHECK(decide(&D, "agent-a", "pay.send", "30", T0 + 20, NULL) ==
	    ST_ALLOWED, "90");
	/* 50 more needs 40 to leave: the first two buckets (60) */
	CHECK(decide_row(&D, "agent-a", "pay.send", "50", T0 + 30, &r) ==
	    REASON_OK && r.status == ST_DENIED, "50 over");
	lim = json_loads(r.limit_json ? r.limit_json : "{}", 0, NULL);
	CHECK(strcmp(json_string_value(json_object_get(lim, "frees_at")),
	    "2026-11-27T00:40:10Z") == 0, "frees at T0+10+3600: %s",
	    r.limit_json);
	json_decref(lim);
	intent_row_clear(&r);
	CHECK(decide(&D, "agent-a", "pay.send", "50", T0 + 3609, NULL) ==
	    ST_DENIED, "a second early");
	CHECK(decide(&D, "agent-a", "pay.send", "50", T0 + 3610, NULL) ==
	    ST_ALLOWED, "then it fits");
	teardown();
}

/* --- reservation and release -------------------------------------------- */

static enum reason
approve(const char *who, const char *id, int64_t now, struct lc_verdict *v)
{
	CHECK(lc_begin(&D) == 0, "begin");
	return (lc_finish(&D, lc_approve(&D, who, id, NULL, now, v)));
}

static enum reason
reject(const char *id, int64_t now)
{
	struct lc_verdict	 v;

	CHECK(lc_begin(&D) == 0, "begin");
	return (lc_finish(&D, lc_reject(&D, "alice", id, "no", now, &v)));
}

static void
test_reserve_and_release(void)
{
	static const struct lc_config cfg = { .grant_window = 100 };
	struct lc_verdict	 v;
	struct intent_row	 r;
	char			 id1[INTENT_ID_LEN + 1], id2[INTENT_ID_LEN + 1];
	size_t			 n;
	int			 expired;

	setup("[{\"name\": \"d\", \"tools\": [\"pay.*\"], \"window\": 86400, "
	    "\"currency\": \"USD\", \"max_amount\": \"10000\"}]", &cfg);
	/* pending reserves */
	CHECK(decide(&D, "agent-a", "pay.big", "6000", T0, id1) == ST_PENDING,
	    "pending 6000");
	USED_IS(&D, "d", "[\"agent-a\"]", T0, "6000");
	CHECK(decide(&D, "agent-a", "pay.send", "5000", T0 + 1, NULL) ==
	    ST_DENIED, "reserved: 5000 does not fit");
	/* rejection frees */
	CHECK(reject(id1, T0 + 2) == REASON_OK, "reject");
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 2, "0");
	CHECK(decide(&D, "agent-a", "pay.send", "5000", T0 + 3, NULL) ==
	    ST_ALLOWED, "then it fits");
	/* the sweeper's expiry frees (approval_ttl 600) */
	CHECK(decide(&D, "agent-a", "pay.big", "5000", T0 + 4, id1) ==
	    ST_PENDING, "pending 5000");
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 4, "10000");
	CHECK(lc_begin(&D) == 0, "begin");
	CHECK(lc_finish(&D, lc_expire_due(&D, T0 + 604, &n)) == REASON_OK &&
	    n >= 1, "swept");
	/* the allowed 5000 of T0+3 is past its grant window too: freed */
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 604, "0");
	/* on touch: an allowed one not redeemed in time */
	CHECK(decide(&D, "agent-a", "pay.send", "4000", T0 + 700, id2) ==
	    ST_ALLOWED, "4000");
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 700, "4000");
	CHECK(lc_begin(&D) == 0, "begin");
	CHECK(S->ops->intent_get(S, id2, STORE_FOR_UPDATE, &r) == 1, "get");
	CHECK(lc_finish(&D, lc_expire_touched(&D, &r, T0 + 800, &expired)) ==
	    REASON_OK && expired, "expired on touch");
	intent_row_clear(&r);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 800, "0");
	/* a redeemed one keeps counting past its grant window; so does an
	 * approved one */
	CHECK(decide(&D, "agent-a", "pay.send", "1000", T0 + 900, id2) ==
	    ST_ALLOWED, "1000");
	CHECK(lc_begin(&D) == 0, "begin");
	CHECK(lc_finish(&D, lc_redeem(&D, "teller", id2, "agent-a",
	    "pay.send", T0 + 901)) == REASON_OK, "redeemed");
	CHECK(decide(&D, "agent-a", "pay.big", "2000", T0 + 902, id1) ==
	    ST_PENDING, "2000 pending");
	CHECK(approve("alice", id1, T0 + 903, &v) == REASON_OK &&
	    v.status == ST_ALLOWED, "approved");
	CHECK(lc_begin(&D) == 0, "begin");
	CHECK(lc_finish(&D, lc_expire_due(&D, T0 + 1000, &n)) == REASON_OK &&
	    n == 0, "nothing due: %zu", n);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 1000, "3000");
	teardown();
}

/* An approval re-decides under the limits, its own reservation out. */
static void
test_redecide(void)
{
	struct lc_verdict	 v;
	char			 id[INTENT_ID_LEN + 1], limits[512];
	static const char	 fmt[] = "[{\"name\": \"d\", \"tools\": "
	    "[\"pay.*\"], \"window\": 86400, \"currency\": \"USD\", "
	    "\"max_amount\": \"%s\"}]";

	snprintf(limits, sizeof(limits), fmt, "10000");
	setup(limits, NULL);
	CHECK(decide(&D, "agent-a", "pay.big", "6000", T0, id) == ST_PENDING,
	    "pending");
	CHECK(decide(&D, "agent-a", "pay.send", "4000", T0 + 1, NULL) ==
	    ST_ALLOWED, "4000: exactly full");
	/* 10000 used including its own 6000: it still fits */
	CHECK(approve("alice", id, T0 + 2, &v) == REASON_OK &&
	    v.status == ST_ALLOWED, "approved while full");
	/* a lower maximum since: the approval is refused, the intent freed */
	CHECK(decide(&D, "agent-a", "pay.big", "1000", T0 + 3, id) ==
	    ST_DENIED, "full");
	snprintf(limits, sizeof(limits), fmt, "20000");
	apply(&D, limits, T0 + 4);
	CHECK(decide(&D, "agent-a", "pay.big", "5000", T0 + 5, id) ==
	    ST_PENDING, "pending 5000 under 20000");
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 5, "15000");
	snprintf(limits, sizeof(limits), fmt, "12000");
	apply(&D, limits, T0 + 6);
	CHECK(approve("alice", id, T0 + 7, &v) == E_POLICY_CHANGED &&
	    v.status == ST_REJECTED, "policy_changed");
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 7, "10000");
	teardown();
}

/* --- escalation ------------------------------------------------------------- */

static void
test_escalation(void)
{
	struct intent_row	 r;
	struct lc_verdict	 v;
	json_t			*roles;

	setup("[{\"name\": \"payee\", \"tools\": [\"pay.*\"], \"per\": "
	    "[\"agent\", \"/to\"], \"window\": 604800, \"currency\": \"USD\", "
	    "\"max_amount\": \"5000\", \"over\": {\"approvals\": 2, "
	    "\"approvers\": [\"fin\", \"chief\"]}}]", NULL);
	CHECK(decide(&D, "agent-a", "pay.send", "5000", T0, NULL) ==
	    ST_ALLOWED, "5000 at once");
	/* over: pending, 2 approvals from fin or chief */
	CHECK(decide_row(&D, "agent-a", "pay.send", "1", T0 + 1, &r) ==
	    REASON_OK, "decide");
	CHECK(r.status == ST_PENDING && r.reason == R_APPROVAL_REQUIRED &&
	    r.approvals_required == 2 && r.limit_json != NULL,
	    "escalated: %s %d", intent_status_name(r.status),
	    r.approvals_required);
	roles = json_loads(r.approver_roles, 0, NULL);
	CHECK(json_array_size(roles) == 2, "roles %s", r.approver_roles);
	json_decref(roles);
	/* pending reserves: usage above the maximum now */
	USED_IS(&D, "payee", "[\"agent-a\",\"DE89\"]", T0 + 1, "5001");
	CHECK(approve("alice", r.id, T0 + 2, &v) == REASON_OK &&
	    v.status == ST_PENDING && v.required == 2, "one of two");
	CHECK(approve("carol", r.id, T0 + 3, &v) == REASON_OK &&
	    v.status == ST_ALLOWED, "two of two");
	intent_row_clear(&r);
	/* a rule that needs approval too: the most approvals, the roles
	 * both name (fin) */
	CHECK(decide_row(&D, "agent-a", "pay.big", "10", T0 + 4, &r) ==
	    REASON_OK && r.status == ST_PENDING && r.approvals_required == 2,
	    "rule 1 + limit 2: %d", r.approvals_required);
	CHECK(strcmp(r.approver_roles, "[\"fin\"]") == 0, "roles narrowed: %s",
	    r.approver_roles);
	intent_row_clear(&r);
	teardown();
}

/* --- exact sums ---------------------------------------------------------------- */

static void
test_exact_sums(void)
{
	struct intent_row	 r;
	sqlite3			*db;
	int			 i;

	setup("[{\"name\": \"big\", \"tools\": [\"pay.send\"], \"window\": "
	    "86400, \"currency\": \"USD\", \"max_amount\": "
	    "\"999999999999999.999999\", \"over\": {\"approvals\": 1, "
	    "\"approvers\": [\"fin\"]}}]", NULL);
	/* three of the largest amounts: past 10^15 and 2^63 micro-units */
	for (i = 0; i < 3; i++)
		CHECK(decide(&D, "agent-a", "pay.send",
		    "999999999999999.999999", T0 + i, NULL) == (i == 0 ?
		    ST_ALLOWED : ST_PENDING), "largest %d", i);
	USED_IS(&D, "big", "[\"agent-a\"]", T0 + 3,
	    "2999999999999999.999997");
	/* near what 64-bit whole units hold: refused, never wrapped.  The
	 * edit comes through another connection, as from the sqlite3
	 * shell: the usage the decider keeps between transactions must
	 * not hide it. */
	CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK, "second connection");
	CHECK(sqlite3_exec(db, "UPDATE limit_usage SET whole = "
	    "9223372036854775000", NULL, NULL, NULL) == SQLITE_OK, "tamper");
	sqlite3_close(db);
	CHECK(decide_row(&D, "agent-a", "pay.send", "999999999999999",
	    T0 + 4, &r) == E_UNAVAILABLE, "refused, not wrapped");
	intent_row_clear(&r);
	USED_IS(&D, "big", "[\"agent-a\"]", T0 + 4,
	    "9223372036854775000.999997");
	teardown();
}

static void
test_units_text(void)
{
	char		 t[USAGE_UNITS_TEXT];
	usage_units	 u;

	usage_units_text(0, t);
	CHECK(strcmp(t, "0") == 0, "0: %s", t);
	usage_units_text(1, t);
	CHECK(strcmp(t, "0.000001") == 0, "1: %s", t);
	usage_units_text(19999800000, t);
	CHECK(strcmp(t, "19999.8") == 0, "19999.8: %s", t);
	u = (usage_units)1000000000000000000ULL * 1000000000000000000ULL;
	usage_units_text(u, t);
	CHECK(strcmp(t, "1000000000000000000000000000000") == 0, "10^36: %s",
	    t);
}

/* --- one batch, recounting, explain ----------------------------------------- */

static void
test_one_batch_shares_usage(void)
{
	struct intent		 in[3];
	struct intent_row	 r[3];
	int			 i;

	setup("[{\"name\": \"two\", \"tools\": [\"mail.send\"], \"per\": [], "
	    "\"window\": 3600, \"max_count\": 2}]", NULL);
	/* the group commit's batch: decisions in one transaction */
	CHECK(lc_begin(&D) == 0 && decider_refresh(&D) == 0, "begin");
	for (i = 0; i < 3; i++) {
		make_intent(&in[i], i ? "agent-b" : "agent-a", "mail.send",
		    NULL, NULL, T0);
		CHECK(lc_decide(&D, &in[i], T0, &r[i], NULL) == REASON_OK,
		    "decide %d", i);
	}
	CHECK(lc_commit(&D) == 0, "commit");
	CHECK(r[0].status == ST_ALLOWED && r[1].status == ST_ALLOWED &&
	    r[2].status == ST_DENIED, "the third of one batch is over");
	for (i = 0; i < 3; i++) {
		intent_row_clear(&r[i]);
		intent_clear(&in[i]);
	}
	USED_IS(&D, "two", "[]", T0, "2");
	/* a rolled-back batch keeps no usage */
	CHECK(lc_begin(&D) == 0 && decider_refresh(&D) == 0, "begin");
	make_intent(&in[0], "agent-a", "mail.send", NULL, NULL, T0 + 3600);
	CHECK(lc_decide(&D, &in[0], T0 + 3600, &r[0], NULL) == REASON_OK &&
	    r[0].status == ST_ALLOWED, "fits an hour later");
	lc_rollback(&D);
	intent_row_clear(&r[0]);
	intent_clear(&in[0]);
	USED_IS(&D, "two", "[]", T0 + 3599, "2");
	/* ...nor does the usage the decider keeps between transactions */
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + 1, NULL) ==
	    ST_DENIED, "still two of two after the rollback");
	teardown();
}

static int
count_usage_reads(unsigned type, void *arg, void *p, void *x)
{
	const char	*sql = sqlite3_sql(p);

	(void)type;
	(void)x;
	if (sql != NULL && strncmp(sql, "SELECT id, n, whole", 19) == 0)
		(*(int *)arg)++;
	return (0);
}

/* A key's usage is read once, not once per transaction, while nobody
 * else writes; a write by another connection is seen at once. */
static void
test_usage_kept_between_transactions(void)
{
	sqlite3	*db;
	int	 reads = 0, i;

	setup("[{\"name\": \"five\", \"tools\": [\"mail.send\"], "
	    "\"window\": 3600, \"max_count\": 5}]", NULL);
	CHECK(sqlite3_trace_v2(store_sqlite_handle(S), SQLITE_TRACE_STMT,
	    count_usage_reads, &reads) == SQLITE_OK, "trace");
	for (i = 0; i < 3; i++)
		CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + i, NULL) ==
		    ST_ALLOWED, "call %d", i);
	CHECK(reads == 1, "usage row read %d times in 3 transactions", reads);
	/* another connection (the sqlite3 shell, a second broker) counts
	 * two more: the next decision sees five of five */
	CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK, "second connection");
	CHECK(sqlite3_exec(db, "UPDATE limit_usage SET n = n + 2", NULL, NULL,
	    NULL) == SQLITE_OK, "count two more");
	sqlite3_close(db);
	CHECK(decide(&D, "agent-a", "mail.send", NULL, T0 + 3, NULL) ==
	    ST_DENIED, "the other connection's usage counts");
	CHECK(reads == 2, "read again after another connection wrote: %d",
	    reads);
	sqlite3_trace_v2(store_sqlite_handle(S), 0, NULL, NULL);
	teardown();
}

static void
test_recount_on_apply(void)
{
	int	 i;

	setup("[]", NULL);
	for (i = 0; i < 3; i++)
		CHECK(decide(&D, "agent-a", "pay.send", "100", T0 + i * 100,
		    NULL) == ST_ALLOWED, "before any limit");
	CHECK(decide(&D, "agent-a", "pay.big", "50", T0 + 300, NULL) ==
	    ST_PENDING, "pending 50");
	CHECK(decide(&D, "agent-b", "pay.send", "7", T0 + 300, NULL) ==
	    ST_ALLOWED, "agent-b");
	/* a new limit counts what its window already holds */
	apply(&D, "[{\"name\": \"d\", \"tools\": [\"pay.*\"], \"window\": "
	    "3600, \"currency\": \"USD\", \"max_amount\": \"1000\"}]", T0 + 400);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 400, "350");
	USED_IS(&D, "d", "[\"agent-b\"]", T0 + 400, "7");
	/* a narrower window: counted again, over the last 150 s only */
	apply(&D, "[{\"name\": \"d\", \"tools\": [\"pay.*\"], \"window\": "
	    "150, \"currency\": \"USD\", \"max_amount\": \"1000\"}]", T0 + 400);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 400, "50");
	/* a new maximum keeps what was counted (nothing recounted) */
	apply(&D, "[{\"name\": \"d\", \"tools\": [\"pay.*\"], \"window\": "
	    "150, \"currency\": \"USD\", \"max_amount\": \"10\"}]", T0 + 400);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 400, "50");
	/* dropped: its usage goes */
	apply(&D, "[]", T0 + 400);
	apply(&D, "[{\"name\": \"d\", \"tools\": [\"mail.send\"], \"window\": "
	    "150, \"max_count\": 10}]", T0 + 400);
	USED_IS(&D, "d", "[\"agent-a\"]", T0 + 400, "0");
	teardown();
}

static int64_t
count_rows(const char *table)
{
	sqlite3_stmt	*st;
	char		 sql[128];
	int64_t		 n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(store_sqlite_handle(S), sql, -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (n);
}

static void
test_explain_records_nothing(void)
{
	static const char *const tables[] = { "intents", "audit",
	    "seen_jti", "limit_usage", "limit_buckets" };
	struct policy_call	 call;
	struct intent		 in;
	int64_t			 before[5];
	json_t			*o, *lims;
	size_t			 i;

	setup("[{\"name\": \"d\", \"tools\": [\"pay.*\"], \"window\": 86400, "
	    "\"currency\": \"USD\", \"max_amount\": \"100\"}]", NULL);
	CHECK(decide(&D, "agent-a", "pay.send", "60", T0, NULL) == ST_ALLOWED,
	    "60");
	for (i = 0; i < 5; i++)
		before[i] = count_rows(tables[i]);
	make_intent(&in, "agent-a", "pay.send", "50", "USD", T0 + 1);
	memset(&call, 0, sizeof(call));
	call.principal = in.iss;
	call.tool = in.tool;
	call.args = in.args;
	call.args_json = in.args_json;
	call.args_json_len = in.args_json_len;
	CHECK(decider_refresh(&D) == 0, "refresh");
	o = lc_explain(&D, &call, T0 + 1);
	CHECK(o != NULL, "explain");
	CHECK(strcmp(json_string_value(json_object_get(o, "decision")),
	    "deny") == 0 && strcmp(json_string_value(json_object_get(o,
	    "reason_code")), "limit_exceeded") == 0, "explained deny");
	lims = json_object_get(o, "limits");
	CHECK(json_array_size(lims) == 1 && strcmp(json_string_value(
	    json_object_get(json_array_get(lims, 0), "used")), "60") == 0 &&
	    json_is_false(json_object_get(json_array_get(lims, 0), "holds")),
	    "each limit's usage");
	json_decref(o);
	for (i = 0; i < 5; i++)
		CHECK(count_rows(tables[i]) == before[i], "explain wrote %s",
		    tables[i]);
	/* and the call itself is still new: its jti is unused */
	CHECK(lc_begin(&D) == 0 && decider_refresh(&D) == 0, "begin");
	{
		struct intent_row r;

		CHECK(lc_decide(&D, &in, T0 + 1, &r, NULL) == REASON_OK,
		    "the same jti decides");
		intent_row_clear(&r);
	}
	CHECK(lc_commit(&D) == 0, "commit");
	intent_clear(&in);
	teardown();
}

int
main(void)
{
	log_init(LOG_LVL_WARN, "test-usage");
	test_units_text();
	test_window_edge();
	test_split_payment_and_frees_at();
	test_frees_at_walk();
	test_reserve_and_release();
	test_redecide();
	test_escalation();
	test_exact_sums();
	test_one_batch_shares_usage();
	test_usage_kept_between_transactions();
	test_recount_on_apply();
	test_explain_records_nothing();
	printf("test-usage: %d passed, %d failed\n", passed, failed);
	return (failed != 0);
}
