/*
 * test-outbox: broker/core/outbox.c and the outbox ops of the SQLite
 * engine, on a real file.  Patterns and rules; the rows each lifecycle
 * change writes (and only when it commits: a rollback leaves none); the
 * args of intent.pending as the audit keeps them (redacted); one sink's
 * lease at a time; the bound's drop order (audit records first, never a
 * pending intent); counters; the checkpoint claim; and the approval
 * queue's generation.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "canon.h"
#include "lifecycle.h"
#include "outbox.h"
#include "store.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

#define T0	1795736400

static char	 dbpath[64];

/* --- patterns and rules ------------------------------------------------------ */

static void
test_patterns(void)
{
	static const struct {
		const char	*list;
		unsigned	 mask;		/* 0: refused */
	} cases[] = {
		{ "intent.pending", EV_BIT(EV_INTENT_PENDING) },
		{ "intent.*", EV_BIT(EV_INTENT_PENDING) |
		    EV_BIT(EV_INTENT_ALLOWED) | EV_BIT(EV_INTENT_REJECTED) |
		    EV_BIT(EV_INTENT_EXPIRED) },
		{ "audit.*", EV_BIT(EV_AUDIT_RECORD) |
		    EV_BIT(EV_AUDIT_CHECKPOINT) },
		{ "audit.record,killswitch.*", EV_BIT(EV_AUDIT_RECORD) |
		    EV_BIT(EV_KILLSWITCH_TRIPPED) | EV_BIT(EV_KILLSWITCH_RESET) },
		{ "policy.applied,policy.applied", EV_BIT(EV_POLICY_APPLIED) },
		{ "", 0 },
		{ "intent", 0 },		/* a prefix without .* */
		{ "intent.", 0 },
		{ "intents.*", 0 },		/* selects nothing */
		{ "*", 0 },
		{ ".*", 0 },
		{ "intent.pending,", 0 },
		{ ",intent.pending", 0 },
		{ "Intent.pending", 0 },
		{ "intent.pending intent.allowed", 0 },
		{ "intent..pending", 0 },
		{ "intent.pend*", 0 },
	};
	const char	*why;
	unsigned	 m;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = outbox_patterns(cases[i].list, &m, &why);
		if (cases[i].mask != 0) {
			CHECK(rc == 0 && m == cases[i].mask && why == NULL);
		} else
			CHECK(rc == -1 && why != NULL);
	}
	CHECK(outbox_patterns(NULL, &m, &why) == -1);
	CHECK((EV_DEFAULT & EV_BIT(EV_AUDIT_RECORD)) == 0);
	CHECK(EV_DEFAULT & EV_BIT(EV_AUDIT_CHECKPOINT));
}

/* 1 s doubling, at most 10 min apart (CONTRACT §10). */
static void
test_backoff(void)
{
	static const int64_t	 want[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256,
				    512, 600, 600 };
	size_t			 i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(outbox_backoff((int64_t)i + 1) == want[i]);
	CHECK(outbox_backoff(1000000) == 600);
	CHECK(outbox_backoff(0) == 1);
}

static void
test_rules(void)
{
	struct outbox_rules	 r;
	char			 name[16], id[OUTBOX_EVENT_ID_LEN + 1];
	enum outbox_type	 t;
	int			 i;

	memset(&r, 0, sizeof(r));
	CHECK(outbox_rules_add(&r, "slack", EV_DEFAULT) == 0);
	CHECK(outbox_rules_add(&r, "slack", EV_ALL) == -1);	/* twice */
	CHECK(outbox_rules_add(&r, "Slack", EV_ALL) == -1);
	CHECK(outbox_rules_add(&r, "", EV_ALL) == -1);
	CHECK(outbox_rules_add(&r, "a b", EV_ALL) == -1);
	CHECK(outbox_rules_add(&r, "siem_1-x", EV_BIT(EV_AUDIT_RECORD)) == 0);
	CHECK(r.n == 2 && r.any == EV_ALL);
	for (i = 2; i < OUTBOX_SINKS_MAX; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		CHECK(outbox_rules_add(&r, name, EV_ALL) == 0);
	}
	CHECK(outbox_rules_add(&r, "one-more", EV_ALL) == -1);
	for (i = 0; i < EV__COUNT; i++)
		CHECK(outbox_type_parse(outbox_type_name(i), &t) == 0 &&
		    (int)t == i);
	CHECK(outbox_type_parse("intent.*", &t) == -1);
	CHECK(outbox_event_id(id) == 0);
	CHECK(strncmp(id, "ev_", 3) == 0 && strlen(id) == 35 &&
	    strspn(id + 3, "0123456789abcdef") == 32);
}

/* --- a database ---------------------------------------------------------------- */

static struct store *
open_store(void)
{
	char		 err[256];
	struct store	*s;
	int		 fd;

	snprintf(dbpath, sizeof(dbpath), "/tmp/test-outbox-XXXXXX");
	CHECK((fd = mkstemp(dbpath)) >= 0);
	close(fd);
	unlink(dbpath);
	s = store_open(dbpath, STORE_CREATE, err, sizeof(err));
	if (s == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	CHECK(s != NULL);
	return (s);
}

static void
close_store(struct store *s)
{
	char	 side[80];

	store_close(s);
	unlink(dbpath);
	snprintf(side, sizeof(side), "%s-wal", dbpath);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", dbpath);
	unlink(side);
}

/* What one sink's queue holds, in order. */
struct queue {
	int64_t		 id[64];
	char		 type[64][24];
	char		 event[64][OUTBOX_EVENT_ID_LEN + 1];
	json_t		*data[64];
	int64_t		 seq[64];
	size_t		 n;
};

static int
queue_cb(const struct outbox_row *r, void *arg)
{
	struct queue	*q = arg;

	CHECK(q->n < 64);
	q->id[q->n] = r->id;
	snprintf(q->type[q->n], sizeof(q->type[0]), "%s", r->type);
	snprintf(q->event[q->n], sizeof(q->event[0]), "%s", r->event_id);
	q->data[q->n] = r->data ? json_loads(r->data, 0, NULL) : NULL;
	q->seq[q->n++] = r->audit_seq;
	return (0);
}

static void queue_free(struct queue *q);

static void
queue_read(struct store *s, const char *sink, struct queue *q)
{
	queue_free(q);
	CHECK(s->ops->outbox_head(s, sink, 64, queue_cb, q) == 0);
}

static void
queue_free(struct queue *q)
{
	size_t	 i;

	for (i = 0; i < q->n; i++)
		json_decref(q->data[i]);
	memset(q, 0, sizeof(*q));
}

struct sink_seen {
	const char	*name;
	struct sink_row	 row;
	char		 error[256];
	int		 found;
};

static int
sink_cb(const struct sink_row *r, void *arg)
{
	struct sink_seen	*ss = arg;

	if (strcmp(r->name, ss->name) != 0)
		return (0);
	ss->row = *r;
	snprintf(ss->error, sizeof(ss->error), "%s",
	    r->last_error ? r->last_error : "");
	ss->row.name = ss->row.events = ss->row.target = NULL;
	ss->row.lease_owner = ss->row.last_error = NULL;
	ss->found = 1;
	return (1);
}

static struct sink_row
sink_get(struct store *s, const char *name, char *error, size_t errlen)
{
	struct sink_seen	 ss;

	memset(&ss, 0, sizeof(ss));
	ss.name = name;
	CHECK(s->ops->sink_status(s, sink_cb, &ss) == 0 && ss.found);
	if (error != NULL)
		snprintf(error, errlen, "%s", ss.error);
	return (ss.row);
}

static void
add_row(struct store *s, const char *sink, const char *type, int64_t at)
{
	struct outbox_row	 r;
	char			 id[OUTBOX_EVENT_ID_LEN + 1];

	memset(&r, 0, sizeof(r));
	CHECK(outbox_event_id(id) == 0);
	r.sink = sink;
	r.event_id = id;
	r.type = type;
	r.at = at;
	r.data = strcmp(type, "audit.record") == 0 ? NULL : "{}";
	r.audit_seq = r.data == NULL ? 1 : 0;
	CHECK(s->ops->outbox_add(s, &r) == 0);
}

/* --- the store's outbox ops ---------------------------------------------------- */

static void
test_queue_ops(void)
{
	struct store	*s = open_store();
	struct queue	 q;
	struct sink_row	 sr;
	char		 err[256];
	int64_t		 n;
	int		 i;

	memset(&q, 0, sizeof(q));
	CHECK(s->ops->sink_register(s, "a", "intent.*", "http://h:80") == 0);
	CHECK(s->ops->sink_register(s, "b", "audit.*", "https://h:443") == 0);
	/* Registering again updates, never duplicates or resets. */
	CHECK(s->ops->sink_register(s, "a", "intent.*,audit.record",
	    "http://h:81") == 0);
	CHECK(store_begin(s) == 0);
	add_row(s, "a", "intent.pending", T0);
	add_row(s, "b", "audit.record", T0);
	add_row(s, "a", "audit.record", T0 + 1);
	add_row(s, "a", "intent.allowed", T0 + 2);
	CHECK(store_commit(s) == 0);
	queue_read(s, "a", &q);
	CHECK(q.n == 3 && strcmp(q.type[0], "intent.pending") == 0 &&
	    strcmp(q.type[1], "audit.record") == 0 &&
	    strcmp(q.type[2], "intent.allowed") == 0);
	CHECK(q.id[0] < q.id[1] && q.id[1] < q.id[2]);
	CHECK(q.seq[1] == 1 && q.data[1] == NULL && q.data[0] != NULL);
	sr = sink_get(s, "a", NULL, 0);
	CHECK(sr.queued == 3 && sr.oldest_at == T0 && sr.delivered == 0);

	/* Failures back off and count; a delivery ends the back-off. */
	CHECK(s->ops->sink_failed(s, "a", T0 + 5, T0 + 6, "HTTP 500") == 0);
	CHECK(s->ops->sink_failed(s, "a", T0 + 6, T0 + 8, "timeout") == 0);
	sr = sink_get(s, "a", err, sizeof(err));
	CHECK(sr.attempts == 2 && sr.failed == 2 && sr.next_at == T0 + 8 &&
	    sr.last_error_at == T0 + 6 && strcmp(err, "timeout") == 0);
	CHECK(s->ops->outbox_remove(s, "a", q.id[1], OUTBOX_DELIVERED,
	    T0 + 9, &n) == 0 && n == 2);
	sr = sink_get(s, "a", NULL, 0);
	CHECK(sr.delivered == 2 && sr.attempts == 0 && sr.next_at == 0 &&
	    sr.last_delivered_at == T0 + 9 && sr.queued == 1 &&
	    sr.failed == 2);
	CHECK(s->ops->outbox_remove(s, "a", q.id[2], OUTBOX_GIVEN_UP, T0 + 9,
	    &n) == 0 && n == 1);
	sr = sink_get(s, "a", NULL, 0);
	CHECK(sr.given_up == 1 && sr.queued == 0 && sr.oldest_at == 0);
	/* The other sink's queue is its own. */
	CHECK(s->ops->outbox_count(s, "b", &n) == 0 && n == 1);

	/* The bound drops audit records first, then others, never a
	 * pending intent. */
	CHECK(store_begin(s) == 0);
	for (i = 0; i < 3; i++) {
		add_row(s, "a", "intent.pending", T0);
		add_row(s, "a", "audit.record", T0);
		add_row(s, "a", "killswitch.tripped", T0);
	}
	CHECK(store_commit(s) == 0);
	CHECK(s->ops->outbox_drop(s, "a", 2, &n) == 0 && n == 2);
	queue_read(s, "a", &q);
	CHECK(q.n == 7);
	for (i = 0; i < 7; i++)
		CHECK(i == 5 || strcmp(q.type[i], "audit.record") != 0);
	CHECK(s->ops->outbox_drop(s, "a", 3, &n) == 0 && n == 3);
	queue_read(s, "a", &q);
	CHECK(q.n == 4 && strcmp(q.type[3], "killswitch.tripped") == 0);
	CHECK(s->ops->outbox_drop(s, "a", 100, &n) == 0 && n == 1);
	queue_read(s, "a", &q);
	CHECK(q.n == 3);
	for (i = 0; i < 3; i++)
		CHECK(strcmp(q.type[i], "intent.pending") == 0);
	sr = sink_get(s, "a", NULL, 0);
	CHECK(sr.dropped == 6);
	queue_free(&q);
	close_store(s);
}

static void
test_lease(void)
{
	struct store	*s = open_store();

	CHECK(s->ops->sink_register(s, "a", "intent.*", "http://h:80") == 0);
	/* No such sink: nobody holds it. */
	CHECK(s->ops->sink_lease(s, "nope", "host/1", T0, T0 + 30) == 1);
	CHECK(s->ops->sink_lease(s, "a", "host/1", T0, T0 + 30) == 0);
	/* One broker at a time: another waits until the lease runs out. */
	CHECK(s->ops->sink_lease(s, "a", "host/2", T0 + 10, T0 + 40) == 1);
	CHECK(s->ops->sink_lease(s, "a", "host/1", T0 + 10, T0 + 40) == 0);
	CHECK(s->ops->sink_lease(s, "a", "host/2", T0 + 39, T0 + 69) == 1);
	CHECK(s->ops->sink_lease(s, "a", "host/2", T0 + 40, T0 + 70) == 0);
	CHECK(s->ops->sink_lease(s, "a", "host/1", T0 + 41, T0 + 71) == 1);
	/* Let go: the other takes it at once. */
	CHECK(s->ops->sink_lease(s, "a", "host/2", T0 + 41, 0) == 0);
	CHECK(s->ops->sink_lease(s, "a", "host/1", T0 + 41, T0 + 71) == 0);
	close_store(s);
}

static void
test_checkpoint_claim(void)
{
	struct store	*s = open_store();
	json_t		*cp;

	CHECK(s->ops->checkpoint_claim(s, T0, 300) == 0);
	CHECK(s->ops->checkpoint_claim(s, T0 + 1, 300) == 1);
	CHECK(s->ops->checkpoint_claim(s, T0 + 299, 300) == 1);
	CHECK(s->ops->checkpoint_claim(s, T0 + 300, 300) == 0);
	CHECK(s->ops->checkpoint_claim(s, T0 + 300, 300) == 1);
	cp = outbox_checkpoint_data(s, T0);
	CHECK(cp != NULL && json_integer_value(json_object_get(cp, "seq")) ==
	    0 && strlen(json_string_value(json_object_get(cp, "hash"))) ==
	    64 && strcmp(json_string_value(json_object_get(cp, "at")),
	    "2026-11-26T23:40:00Z") == 0);
	json_decref(cp);
	close_store(s);
}

/* --- what the lifecycle writes --------------------------------------------------- */

static void
apply_example(struct decider *d, int redact)
{
	const char	*root = getenv("TOOLGATE_SOURCE_ROOT");
	char		 path[512], *text;
	json_t		*p;
	int64_t		 v;

	snprintf(path, sizeof(path), "%s/policies/example.json",
	    root && *root ? root : ".");
	CHECK((p = json_load_file(path, JSON_REJECT_DUPLICATES, NULL)) !=
	    NULL);
	if (redact)
		json_object_set_new(p, "redact", json_pack("{s[s]}",
		    "payments.*", "to"));
	CHECK((text = canon_dump(p)) != NULL);
	CHECK(lc_begin(d) == 0);
	CHECK(lc_finish(d, lc_policy_apply(d, text, strlen(text), "test",
	    T0, &v)) == REASON_OK);
	free(text);
	json_decref(p);
}

/* A payment of amount USD to "acct-7" by agent-payments at T0. */
static enum reason
pay(struct decider *d, const char *amount, int commit,
    char id[INTENT_ID_LEN + 1])
{
	static int		 seq;
	struct intent		 in;
	struct intent_row	 r;
	enum reason		 rc;

	memset(&in, 0, sizeof(in));
	in.iss = strdup("agent-payments");
	CHECK(asprintf(&in.jti, "j%d", ++seq) > 0);
	in.tool = strdup("payments.transfer");
	in.args = json_pack("{ss ss ss}", "amount", amount, "currency", "USD",
	    "to", "acct-7");
	CHECK((in.args_json = canon_dump(in.args)) != NULL);
	in.args_json_len = strlen(in.args_json);
	in.reason = strdup("invoice 42");
	in.iat = T0;
	in.exp = T0 + 60;
	canon_sha256_hex(in.jti, strlen(in.jti), in.payload_sha256);
	CHECK(lc_begin(d) == 0);
	CHECK(decider_refresh(d) == 0);
	rc = lc_decide(d, &in, T0, &r, NULL);
	if (commit)
		CHECK(lc_commit(d) == 0);
	else
		lc_rollback(d);
	if (rc == REASON_OK)
		memcpy(id, r.id, INTENT_ID_LEN + 1);
	intent_row_clear(&r);
	intent_clear(&in);
	return (rc);
}

static int64_t
queue_gen(struct store *s)
{
	struct store_gen	 g;

	CHECK(s->ops->generations(s, STORE_GEN_QUEUE, &g) == 0);
	return (g.queue);
}

static void
test_lifecycle_events(void)
{
	struct store		*s = open_store();
	struct outbox_rules	 rules;
	struct lc_config	 cfg = { .grant_window = 3600,
				    .outbox = &rules };
	struct decider		 d;
	struct lc_verdict	 v;
	struct queue		 q;
	const json_t		*data;
	const char		*why;
	struct lc_trip_refusal	 refusal;
	char			 id[INTENT_ID_LEN + 1], id2[INTENT_ID_LEN + 1];
	int64_t			 ks, gen;
	size_t			 i;

	memset(&q, 0, sizeof(q));
	memset(&rules, 0, sizeof(rules));
	CHECK(outbox_rules_add(&rules, "chat", EV_DEFAULT) == 0);
	CHECK(outbox_rules_add(&rules, "siem", EV_BIT(EV_AUDIT_RECORD)) == 0);
	decider_init(&d, s, "test", &cfg);
	apply_example(&d, 1);
	CHECK(d.changed.events);
	queue_read(s, "chat", &q);
	CHECK(q.n == 1 && strcmp(q.type[0], "policy.applied") == 0);
	data = q.data[0];
	CHECK(json_integer_value(json_object_get(data, "version")) == 1 &&
	    strcmp(json_string_value(json_object_get(data, "by")), "test") ==
	    0);
	CHECK(s->ops->outbox_remove(s, "chat", q.id[0], OUTBOX_DELIVERED, T0,
	    &gen) == 0);

	/* An auto-allowed payment is no news to approvers; the SIEM gets
	 * its record. */
	gen = queue_gen(s);
	CHECK(pay(&d, "10.00", 1, id) == REASON_OK);
	CHECK(queue_gen(s) == gen);
	queue_read(s, "chat", &q);
	CHECK(q.n == 0);
	queue_read(s, "siem", &q);
	CHECK(q.n == 2 && strcmp(q.type[1], "audit.record") == 0 &&
	    q.seq[1] == 2 && q.seq[0] == 1);

	/* A decision rolled back leaves no event behind. */
	CHECK(pay(&d, "5000.00", 0, id) == REASON_OK);
	queue_read(s, "chat", &q);
	CHECK(q.n == 0);
	queue_read(s, "siem", &q);
	CHECK(q.n == 2);

	/* Pending: the facts, args as the audit keeps them (redacted). */
	CHECK(pay(&d, "5000.00", 1, id) == REASON_OK);
	CHECK(queue_gen(s) == gen + 1);
	queue_read(s, "chat", &q);
	CHECK(q.n == 1 && strcmp(q.type[0], "intent.pending") == 0);
	data = q.data[0];
	CHECK(strcmp(json_string_value(json_object_get(data, "id")), id) == 0);
	CHECK(strcmp(json_string_value(json_object_get(data, "agent")),
	    "agent-payments") == 0);
	CHECK(strcmp(json_string_value(json_object_get(data, "tool")),
	    "payments.transfer") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(data,
	    "amount"), "value")), "5000.00") == 0);
	CHECK(strcmp(json_string_value(json_object_get(data, "reason")),
	    "invoice 42") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(data,
	    "args"), "to")), "[redacted]") == 0);
	CHECK(json_integer_value(json_object_get(data,
	    "approvals_required")) == 1);
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(data,
	    "approver_roles"), 0)), "finance-approver") == 0);
	CHECK(strcmp(json_string_value(json_object_get(data, "expires_at")),
	    "2026-11-27T00:40:00Z") == 0);

	/* Approved: intent.allowed, by whom. */
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_approve(&d, "approver-alice", id, "ok",
	    T0 + 5, &v)) == REASON_OK && v.status == ST_ALLOWED);
	CHECK(d.changed.events);
	CHECK(queue_gen(s) == gen + 3);	/* the approval, the release */
	queue_read(s, "chat", &q);
	CHECK(q.n == 2 && strcmp(q.type[1], "intent.allowed") == 0);
	data = q.data[1];
	CHECK(strcmp(json_string_value(json_object_get(data, "by")),
	    "approver-alice") == 0 && strcmp(json_string_value(
	    json_object_get(data, "status")), "allowed") == 0 &&
	    json_array_size(json_object_get(data, "approvals")) == 1);
	CHECK(strcmp(q.event[0], q.event[1]) != 0);

	/* A kill switch that rejects what is pending: both events. */
	CHECK(pay(&d, "6000.00", 1, id2) == REASON_OK);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_trip(&d, "operator-olga", KS_AGENT,
	    "agent-payments", "runaway", LC_TRIP_REJECT_PENDING, T0 + 6, &ks,
	    &refusal)) == REASON_OK);
	queue_read(s, "chat", &q);
	CHECK(q.n == 5 && strcmp(q.type[2], "intent.pending") == 0 &&
	    strcmp(q.type[3], "killswitch.tripped") == 0 &&
	    strcmp(q.type[4], "intent.rejected") == 0);
	CHECK(strcmp(json_string_value(json_object_get(q.data[3], "by")),
	    "operator-olga") == 0 && json_integer_value(json_object_get(
	    q.data[3], "rejected")) == 1);
	CHECK(strcmp(json_string_value(json_object_get(q.data[4], "id")),
	    id2) == 0 && strcmp(json_string_value(json_object_get(q.data[4],
	    "by")), "operator-olga") == 0);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_reset(&d, "operator-olga", ks, "fixed",
	    T0 + 7, &why)) == REASON_OK);
	queue_read(s, "chat", &q);
	CHECK(q.n == 6 && strcmp(q.type[5], "killswitch.reset") == 0);

	/* The sweeper: a pending intent past its approval TTL is news
	 * (intent.expired); the two allowed ones past their grant window are
	 * not. */
	CHECK(pay(&d, "7000.00", 1, id2) == REASON_OK);
	CHECK(lc_begin(&d) == 0);
	CHECK(lc_finish(&d, lc_expire_due(&d, T0 + 7200, &i)) == REASON_OK &&
	    i == 3);
	queue_read(s, "chat", &q);
	CHECK(q.n == 8 && strcmp(q.type[6], "intent.pending") == 0 &&
	    strcmp(q.type[7], "intent.expired") == 0);
	CHECK(strcmp(json_string_value(json_object_get(q.data[7], "id")),
	    id2) == 0 && strcmp(json_string_value(json_object_get(q.data[7],
	    "status")), "expired") == 0);

	/* The SIEM got every record, in order, and nothing else. */
	queue_read(s, "siem", &q);
	CHECK(q.n == 12);
	for (i = 0; i < q.n; i++)
		CHECK(strcmp(q.type[i], "audit.record") == 0 &&
		    q.seq[i] == (int64_t)i + 1);
	decider_deinit(&d);
	queue_free(&q);

	/* toolgatectl --db: the rules the brokers registered. */
	CHECK(s->ops->sink_register(s, "chat", "intent.*,killswitch.*",
	    "https://x:443") == 0);
	CHECK(s->ops->sink_register(s, "old", "future.thing", "https://y:443")
	    == 0);
	CHECK(outbox_rules_load(s, &rules) == 0);
	CHECK(rules.n == 1 && strcmp(rules.sink[0].name, "chat") == 0 &&
	    (rules.any & EV_BIT(EV_KILLSWITCH_TRIPPED)) &&
	    !(rules.any & EV_BIT(EV_POLICY_APPLIED)));
	close_store(s);
}

int
main(void)
{
	test_patterns();
	test_backoff();
	test_rules();
	test_queue_ops();
	test_lease();
	test_checkpoint_claim();
	test_lifecycle_events();
	printf("test-outbox: %d checks passed\n", passed);
	return (0);
}
