/*
 * test-store: the storage seam (store.h) as the SQLite engine implements
 * it, on real files: opening (created 0600, must exist without
 * STORE_CREATE, a newer schema refused; a PostgreSQL URI never shown
 * with its password, both engines' migrations in step and both
 * implementing every op),
 * transactions, the generations other connections see, the replay guard,
 * intents (insert, get, status, conditional moves and redemption,
 * approvals in order), the queue's pages and cursors, due intents, kill
 * switches, the audit chain head, flushing commits made without an
 * fsync, and the gauges of stats (the pending
 * count kept by inserts and moves, the oldest pending, those past half
 * their TTL, engaged switches) read through indexes only.  What a second
 * engine must do the same way is what this file checks.
 */
#undef NDEBUG
#include <sys/stat.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "store.h"
#include "store_pg_impl.h"
#include "store_sqlite.h"
#include "store_sqlite_impl.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

static char	 dbpath[64];

static void
new_path(void)
{
	int	 fd;

	/* A name that does not exist yet: the store creates the file. */
	snprintf(dbpath, sizeof(dbpath), "/tmp/test-store-XXXXXX");
	CHECK((fd = mkstemp(dbpath)) >= 0);
	close(fd);
	unlink(dbpath);
}

static struct store *
open_store(unsigned flags)
{
	char		 err[256];
	struct store	*s = store_open(dbpath, flags, err, sizeof(err));

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

static mode_t
mode_of(const char *suffix)
{
	char		 p[80];
	struct stat	 st;

	snprintf(p, sizeof(p), "%s%s", dbpath, suffix);
	CHECK(stat(p, &st) == 0);
	return (st.st_mode & 07777);
}

static void
test_open(void)
{
	struct store	*s, *t;
	char		 err[256];
	mode_t		 old = umask(022);

	new_path();
	/* Without STORE_CREATE a missing database is an error, not a new
	 * empty one; the message names it. */
	CHECK(store_open(dbpath, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, dbpath) != NULL);
	CHECK(access(dbpath, F_OK) == -1);
	s = open_store(STORE_CREATE);
	CHECK(strcmp(s->ops->name, "sqlite") == 0);
	CHECK(store_schema_version() == 8);	/* the newest migration */
	/* A write makes -wal and -shm: all three private, whatever the
	 * umask. */
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->jti_claim(s, "a", "j", 100) == 0);
	CHECK(store_commit(s) == 0);
	CHECK(mode_of("") == 0600);
	CHECK(mode_of("-wal") == 0600);
	CHECK(mode_of("-shm") == 0600);
	/* A second connection opens without STORE_CREATE. */
	t = open_store(0);
	store_close(t);
	/* A database from a newer binary is refused. */
	CHECK(sqlite3_exec(store_sqlite_handle(s), "PRAGMA user_version = 99",
	    NULL, NULL, NULL) == SQLITE_OK);
	CHECK(store_open(dbpath, 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "newer") != NULL);
	store_close(s);
	drop_db();
	/* A PostgreSQL URI goes to that engine: a server that is not
	 * there is named in the error, its password never. */
	CHECK(store_open("postgresql://u:secret@/db?host=/nonexistent-dir",
	    0, err, sizeof(err)) == NULL);
	CHECK(strncmp(err, "postgresql://u@/db?host=/nonexistent-dir: ",
	    42) == 0);
	CHECK(strstr(err, "secret") == NULL);
	/* libpq's parse errors may quote the URI: not shown at all. */
	CHECK(store_open("postgres://u:se%zzcret@h/db", 0, err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "cannot read this PostgreSQL URI") != NULL);
	CHECK(strstr(err, "se%zzcret") == NULL && strstr(err, "cret") == NULL);
	CHECK(store_open("", 0, err, sizeof(err)) == NULL);
	umask(old);
}

/* How a --db string may be shown: never with a password. */
static void
test_display(void)
{
	static const struct {
		const char	*spec, *shown;
	} cases[] = {
		{ "/var/lib/toolgate/toolgate.db",
		    "/var/lib/toolgate/toolgate.db" },
		{ "postgresql://tg:hunter2@db.example:5433/toolgate",
		    "postgresql://tg@db.example:5433/toolgate" },
		{ "postgres://db.example/toolgate?password=hunter2&"
		    "sslmode=verify-full", "postgresql://db.example/toolgate" },
		{ "postgresql://tg@/toolgate?host=/run/pg",
		    "postgresql://tg@/toolgate?host=/run/pg" },
		{ "postgresql://h%zz/x", "postgresql://(a URI libpq cannot "
		    "read)" },
	};
	char	 out[STORE_DISPLAY_MAX];
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		store_display(cases[i].spec, out, sizeof(out));
		if (strcmp(out, cases[i].shown) != 0)
			fprintf(stderr, "store_display(%s) = %s\n",
			    cases[i].spec, out);
		CHECK(strcmp(out, cases[i].shown) == 0);
		CHECK(strstr(out, "hunter2") == NULL);
	}
	CHECK(store_spec_is_file("toolgate.db"));
	CHECK(!store_spec_is_file("postgres://h/db"));
	CHECK(!store_spec_is_file("postgresql://h/db"));
}

/*
 * Both engines carry the same schema steps: a SQLite migration without
 * its PostgreSQL twin in migrations/postgresql/ (same number) fails here.
 */
static void
test_engines_same_schema(void)
{
	if (pg_migrations[pg_migrations_count - 1].version !=
	    store_schema_version())
		fprintf(stderr, "migrations/postgresql/ ends at %d, "
		    "migrations/ at %d: write the PostgreSQL dialect of each "
		    "SQLite migration\n",
		    pg_migrations[pg_migrations_count - 1].version,
		    store_schema_version());
	CHECK(pg_migrations[pg_migrations_count - 1].version ==
	    store_schema_version());
}

/*
 * Every op of both engines is there: an op added to store.h and to one
 * engine only would be a NULL call on the other.  The table is a name
 * and then function pointers only, so it is read pointer by pointer.
 */
static void
check_ops_complete(const struct store_ops *ops)
{
	unsigned char	 bytes[sizeof(*ops)];
	void		*slot;
	size_t		 off;

	memcpy(bytes, ops, sizeof(bytes));
	for (off = 0; off + sizeof(slot) <= sizeof(bytes);
	    off += sizeof(slot)) {
		memcpy(&slot, bytes + off, sizeof(slot));
		if (slot == NULL)
			fprintf(stderr, "store_ops of %s: the op at offset %zu "
			    "(store.h) is missing: implement it in this engine "
			    "too\n", ops->name, off);
		CHECK(slot != NULL);
	}
}

static void
test_engines_same_ops(void)
{
	CHECK(sizeof(struct store_ops) % sizeof(void *) == 0);
	check_ops_complete(&sqlite_ops);
	check_ops_complete(&pg_ops);
}

static void
fill_row(struct intent_row *r, const char *id, enum intent_status st,
    int64_t created, int approvals)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->agent = strdup("agent-payments");
	r->jti = strdup(id);
	r->tool = strdup("payments.transfer");
	r->args = strdup("{\"to\":\"x\"}");
	r->amount_value = strdup("5000.00");
	r->amount_currency = strdup("USD");
	r->status = st;
	r->decision = st == ST_PENDING ? OUTCOME_PENDING : OUTCOME_ALLOW;
	r->reason = st == ST_PENDING ? R_APPROVAL_REQUIRED : R_POLICY_ALLOW;
	r->reason_text = strdup("text");
	r->policy_version = 1;
	r->approvals_required = approvals;
	r->approver_roles = strdup("[\"finance-approver\"]");
	snprintf(r->intent_sha256, sizeof(r->intent_sha256), "%064d", 7);
	r->created_at = created;
	if (st == ST_PENDING)
		r->expires_at = created + 3600;
	else
		r->decided_at = created;
}

static void
insert(struct store *s, const char *id, enum intent_status st,
    int64_t created, int approvals)
{
	struct intent_row	 r;

	fill_row(&r, id, st, created, approvals);
	CHECK(s->ops->intent_insert(s, &r) == 0);
	intent_row_clear(&r);
}

static void
test_generations(void)
{
	struct store		*a, *b;
	struct store_gen	 g0, g1;
	struct ks_row		 k;
	int64_t			 v, id;

	new_path();
	a = open_store(STORE_CREATE);
	b = open_store(0);
	CHECK(a->ops->generations(a, STORE_GEN_POLICY | STORE_GEN_KILLSWITCH |
	    STORE_GEN_DATA, &g0) == 0);
	CHECK(g0.policy == 0);
	/* Another connection's policy and switch: both counters move. */
	CHECK(store_begin(b) == 0);
	CHECK(b->ops->policy_insert(b, 1, "t", "00", "{}", 2, &v) == 0);
	memset(&k, 0, sizeof(k));
	k.scope = KS_GLOBAL;
	k.reason = "r";
	k.by = "o";
	k.at = 5;
	CHECK(b->ops->ks_insert(b, &k, &id) == 0);
	/* Uncommitted: the other connection still sees the old values. */
	CHECK(a->ops->generations(a, STORE_GEN_POLICY | STORE_GEN_KILLSWITCH,
	    &g1) == 0);
	CHECK(g1.policy == g0.policy && g1.killswitch == g0.killswitch);
	CHECK(store_commit(b) == 0);
	CHECK(a->ops->generations(a, STORE_GEN_POLICY | STORE_GEN_KILLSWITCH |
	    STORE_GEN_DATA, &g1) == 0);
	CHECK(g1.policy == v && v == 1);
	CHECK(g1.killswitch == g0.killswitch + 1);
	CHECK(g1.data != g0.data);
	/* Its own writes do not move its data generation. */
	CHECK(store_begin(a) == 0);
	insert(a, "in_0000000000000000000000000000000a", ST_PENDING, 1, 1);
	CHECK(store_commit(a) == 0);
	CHECK(a->ops->generations(a, STORE_GEN_DATA, &g0) == 0);
	CHECK(g0.data == g1.data);
	/* A reset moves the switch generation; an unknown one does not. */
	CHECK(store_begin(b) == 0);
	CHECK(b->ops->ks_reset(b, id, "o", 6, "done") == 0);
	CHECK(b->ops->ks_reset(b, id, "o", 7, "again") == 1);
	CHECK(store_commit(b) == 0);
	CHECK(a->ops->generations(a, STORE_GEN_KILLSWITCH, &g0) == 0);
	CHECK(g0.killswitch == g1.killswitch + 1);
	store_close(b);
	store_close(a);
	drop_db();
}

static void
test_intents(void)
{
	struct store		*s;
	struct intent_row	 r;
	struct intent_move	 m;
	enum intent_status	 st;
	const char		*id = "in_00000000000000000000000000000001";

	new_path();
	s = open_store(STORE_CREATE);
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->jti_claim(s, "agent", "j1", 100) == 0);
	CHECK(s->ops->jti_claim(s, "agent", "j1", 100) == 1);
	CHECK(s->ops->jti_claim(s, "other", "j1", 100) == 0);
	insert(s, id, ST_PENDING, 1000, 2);
	CHECK(store_commit(s) == 0);
	/* A rolled-back write is gone. */
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->jti_claim(s, "agent", "j2", 100) == 0);
	store_rollback(s);
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->jti_claim(s, "agent", "j2", 100) == 0);
	CHECK(s->ops->jti_prune(s, 101) == 0);
	CHECK(s->ops->jti_claim(s, "agent", "j1", 200) == 0);
	CHECK(store_commit(s) == 0);

	CHECK(s->ops->intent_get(s, "in_nope", 0, &r) == 0);
	CHECK(s->ops->intent_status(s, "in_nope", &st) == 0);
	CHECK(s->ops->intent_get(s, id, STORE_APPROVALS, &r) == 1);
	CHECK(r.status == ST_PENDING && r.decision == OUTCOME_PENDING &&
	    r.reason == R_APPROVAL_REQUIRED);
	CHECK(strcmp(r.args, "{\"to\":\"x\"}") == 0 && r.args_sha256 == NULL);
	CHECK(r.created_at == 1000 && r.expires_at == 4600 &&
	    r.decided_at == 0);
	CHECK(r.n_approvals == 0 && r.approvals_required == 2);
	intent_row_clear(&r);

	/* Approvals count once each, in order. */
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->approval_add(s, id, "bob", 1001, "first") == 0);
	CHECK(s->ops->approval_add(s, id, "alice", 1002, NULL) == 0);
	CHECK(s->ops->approval_add(s, id, "bob", 1003, "again") == 1);
	/* A move happens only from the status it names. */
	memset(&m, 0, sizeof(m));
	m.id = id;
	m.from = ST_ALLOWED;
	m.to = ST_EXPIRED;
	CHECK(s->ops->intent_move(s, &m) == 1);
	m.from = ST_PENDING;
	m.to = ST_ALLOWED;
	m.decided_at = 1004;
	m.reason_text = "released";
	CHECK(s->ops->intent_move(s, &m) == 0);
	CHECK(s->ops->intent_move(s, &m) == 1);
	CHECK(s->ops->intent_redeem(s, id, "tool", 1005) == 0);
	CHECK(s->ops->intent_redeem(s, id, "tool", 1006) == 1);
	CHECK(store_commit(s) == 0);
	CHECK(s->ops->intent_status(s, id, &st) == 1 && st == ST_ALLOWED);
	CHECK(s->ops->intent_get(s, id, STORE_APPROVALS, &r) == 1);
	CHECK(r.n_approvals == 2);
	CHECK(strcmp(r.approvals[0].by, "bob") == 0 &&
	    strcmp(r.approvals[0].comment, "first") == 0 &&
	    r.approvals[0].at == 1001);
	CHECK(strcmp(r.approvals[1].by, "alice") == 0 &&
	    r.approvals[1].comment == NULL);
	CHECK(r.decided_at == 1004 && r.expires_at == 4600);
	CHECK(strcmp(r.reason_text, "released") == 0);
	CHECK(r.redeemed_at == 1005 && strcmp(r.redeemed_by, "tool") == 0);
	CHECK(r.closed_by == NULL);
	intent_row_clear(&r);
	store_close(s);
	drop_db();
}

struct collect {
	char	 ids[16][INTENT_ID_LEN + 1];
	int	 n;
	int	 stop_after;	/* 0: never */
};

static int
collect_cb(const struct intent_row *r, void *arg)
{
	struct collect	*c = arg;

	snprintf(c->ids[c->n++], INTENT_ID_LEN + 1, "%s", r->id);
	return (c->stop_after > 0 && c->n == c->stop_after);
}

static int
brief_cb(const char *id, const char *agent, const char *tool,
    enum intent_status st, int64_t at, void *arg)
{
	struct collect	*c = arg;

	snprintf(c->ids[c->n++], INTENT_ID_LEN + 1, "%s:%lld", id + 33,
	    (long long)at);
	return (0);
}

static void
test_pages(void)
{
	struct store		*s;
	struct intent_query	 q;
	struct intent_move	 m;
	struct collect		 c;
	char			 id[INTENT_ID_LEN + 1], next[STORE_CURSOR_MAX];
	int			 i;

	new_path();
	s = open_store(STORE_CREATE);
	CHECK(store_begin(s) == 0);
	/* Five pending (two created in the same second), three closed. */
	for (i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "in_%032d", i);
		insert(s, id, ST_PENDING, 100 + i / 2, i == 7 ? 0 : 1);
	}
	for (i = 5; i < 8; i++) {
		memset(&m, 0, sizeof(m));
		snprintf(id, sizeof(id), "in_%032d", i);
		m.id = id;
		m.from = ST_PENDING;
		m.to = ST_REJECTED;
		m.decided_at = 500 - i;
		CHECK(s->ops->intent_move(s, &m) == 0);
	}
	CHECK(store_commit(s) == 0);

	memset(&q, 0, sizeof(q));
	q.status = ST_PENDING;
	q.limit = 2;
	memset(&c, 0, sizeof(c));
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	CHECK(c.n == 2 && next[0] != '\0');
	q.cursor = next;
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	CHECK(c.n == 4 && next[0] != '\0');
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	/* The last page knows it is the last. */
	CHECK(c.n == 5 && next[0] == '\0');
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "in_%032d", i);
		CHECK(strcmp(c.ids[i], id) == 0);	/* oldest first */
	}
	/* The callback may stop a page early; the cursor follows it. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	q.cursor = NULL;
	q.limit = 100;
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	CHECK(c.n == 1 && next[0] != '\0');
	c.stop_after = 0;
	q.cursor = next;
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	CHECK(c.n == 5 && next[0] == '\0');
	/* Closed ones: newest first, only those that needed approval. */
	memset(&c, 0, sizeof(c));
	q.status = ST_REJECTED;
	q.cursor = NULL;
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == 0);
	CHECK(c.n == 2 && next[0] == '\0');
	CHECK(strcmp(c.ids[0] + 33, "05") == 0 &&
	    strcmp(c.ids[1] + 33, "06") == 0);
	q.cursor = "1.2.3";
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == -2);
	q.cursor = "-1.2";
	CHECK(s->ops->intent_page(s, &q, collect_cb, &c, next) == -2);

	/* Due: pending past expires_at, allowed unredeemed past a time. */
	CHECK(store_begin(s) == 0);
	insert(s, "in_000000000000000000000000000000a1", ST_ALLOWED, 50, 0);
	insert(s, "in_000000000000000000000000000000a2", ST_ALLOWED, 70, 0);
	CHECK(s->ops->intent_redeem(s, "in_000000000000000000000000000000a1",
	    "t", 60) == 0);
	CHECK(store_commit(s) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(s->ops->intents_due(s, 100 + 3600, 80, 10, brief_cb, &c) == 0);
	CHECK(c.n == 3);
	CHECK(strcmp(c.ids[0], "00:3700") == 0);
	CHECK(strcmp(c.ids[1], "01:3700") == 0);
	CHECK(strcmp(c.ids[2], "a2:70") == 0);
	memset(&c, 0, sizeof(c));
	CHECK(s->ops->intents_pending(s, brief_cb, &c) == 0);
	CHECK(c.n == 5 && strcmp(c.ids[4], "04:102") == 0);
	store_close(s);
	drop_db();
}

static int
ks_count_cb(const struct ks_row *r, void *arg)
{
	(*(int *)arg)++;
	CHECK(r->reset_at == 0);
	return (0);
}

static void
test_killswitches(void)
{
	struct store	*s;
	struct ks_row	 k, got;
	int64_t		 a, b;
	int		 n = 0;

	new_path();
	s = open_store(STORE_CREATE);
	memset(&k, 0, sizeof(k));
	k.scope = KS_TOOL;
	k.target = "payments.*";
	k.reason = "fraud";
	k.by = "olga";
	k.at = 10;
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->ks_insert(s, &k, &a) == 0);
	k.scope = KS_GLOBAL;
	k.target = NULL;
	CHECK(s->ops->ks_insert(s, &k, &b) == 0);
	CHECK(s->ops->ks_reset(s, b, "bob", 20, "over") == 0);
	CHECK(store_commit(s) == 0);
	CHECK(s->ops->ks_get(s, a, &got) == 1);
	CHECK(got.scope == KS_TOOL && strcmp(got.target, "payments.*") == 0 &&
	    strcmp(got.reason, "fraud") == 0 && got.at == 10 &&
	    got.reset_at == 0);
	ks_row_clear(&got);
	CHECK(s->ops->ks_get(s, b, &got) == 1);
	CHECK(got.target == NULL && got.reset_at == 20 &&
	    strcmp(got.reset_by, "bob") == 0);
	ks_row_clear(&got);
	CHECK(s->ops->ks_get(s, 99, &got) == 0);
	CHECK(s->ops->ks_engaged(s, ks_count_cb, &n) == 0 && n == 1);
	store_close(s);
	drop_db();
}

static void
test_audit_head(void)
{
	struct store		*s, *t;
	struct audit_check	 chk;
	char			 hash[65], hash2[65];
	int64_t			 seq, seq2;
	int			 i;

	new_path();
	s = open_store(STORE_CREATE);
	t = open_store(0);
	CHECK(s->ops->audit_head(s, &seq, hash) == 0);
	CHECK(seq == 0 && strcmp(hash, AUDIT_GENESIS) == 0);
	/* Inside one transaction each append sees the one before. */
	CHECK(store_begin(s) == 0);
	for (i = 0; i < 5; i++)
		CHECK(audit_append(s, 100 + i, "a", "decision", NULL,
		    NULL) == 0);
	CHECK(s->ops->audit_head(s, &seq, hash) == 0 && seq == 5);
	CHECK(store_commit(s) == 0);
	/* Another connection appends: the first one's next head is fresh,
	 * not the one it cached. */
	CHECK(store_begin(t) == 0);
	CHECK(audit_append(t, 200, "b", "decision", NULL, NULL) == 0);
	CHECK(t->ops->audit_head(t, &seq2, hash2) == 0 && seq2 == 6);
	CHECK(store_commit(t) == 0);
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->audit_head(s, &seq, hash) == 0);
	CHECK(seq == 6 && strcmp(hash, hash2) == 0);
	CHECK(audit_append(s, 300, "a", "decision", NULL, NULL) == 0);
	store_rollback(s);
	CHECK(s->ops->audit_head(s, &seq, hash) == 0 && seq == 6);
	CHECK(audit_verify(s, &chk) == 0 && chk.count == 6);
	store_close(t);
	store_close(s);
	drop_db();
}

/* flush: what a commit under synchronous = NORMAL wrote waits for it;
 * a durable commit, or a commit that wrote nothing, leaves it nothing
 * to do. */
static void
test_flush(void)
{
	struct store	*s;

	new_path();
	s = open_store(STORE_CREATE);
	CHECK(s->ops->flush(s) == 0 && !SQ(s)->unsynced);
	CHECK(s->ops->set_durability(s, 0) == 0);
	CHECK(store_begin(s) == 0 && store_commit(s) == 0);
	CHECK(!SQ(s)->unsynced);
	CHECK(store_begin(s) == 0);
	CHECK(audit_append(s, 100, "a", "decision", NULL, NULL) == 0);
	CHECK(store_commit(s) == 0 && SQ(s)->unsynced);
	CHECK(s->ops->flush(s) == 0 && !SQ(s)->unsynced);
	/* an unsynced commit, then a durable one: its fsync covers both */
	CHECK(store_begin(s) == 0);
	CHECK(audit_append(s, 101, "a", "decision", NULL, NULL) == 0);
	CHECK(store_commit(s) == 0 && SQ(s)->unsynced);
	CHECK(s->ops->set_durability(s, 1) == 0);
	CHECK(store_begin(s) == 0);
	CHECK(audit_append(s, 102, "a", "decision", NULL, NULL) == 0);
	CHECK(store_commit(s) == 0 && !SQ(s)->unsynced);
	CHECK(s->ops->flush(s) == 0);
	store_close(s);
	drop_db();
}

/* set_read_only: reads go on, every write fails and leaves nothing. */
static void
test_read_only(void)
{
	struct store	*s, *t;
	int64_t		 seq;
	char		 hash[65];

	new_path();
	s = open_store(STORE_CREATE);
	t = open_store(0);
	CHECK(store_begin(s) == 0);
	CHECK(audit_append(s, 100, "a", "decision", NULL, NULL) == 0);
	CHECK(store_commit(s) == 0);
	CHECK(t->ops->set_read_only(t) == 0);
	CHECK(t->ops->audit_head(t, &seq, hash) == 0 && seq == 1);
	if (store_begin(t) == 0) {
		CHECK(audit_append(t, 101, "a", "decision", NULL, NULL) == -1);
		CHECK(t->ops->jti_claim(t, "agent", "j1", 100) == -1);
		store_rollback(t);
	}
	CHECK(s->ops->audit_head(s, &seq, hash) == 0 && seq == 1);
	/* the other connection still writes */
	CHECK(store_begin(s) == 0 && s->ops->jti_claim(s, "agent", "j1",
	    100) == 0 && store_commit(s) == 0);
	store_close(t);
	store_close(s);
	drop_db();
}

/* Every table the stats statement touches is read through an index —
 * the pending counter's key, intents_pending's first entry, the bounded
 * range of intents_pending_half, killswitches_engaged — never a walk of
 * the table ("SCAN intents" without an index). */
static void
check_stats_plan(struct store *s)
{
	static const char *const tables[] = { "intents", "killswitches",
	    "counters" };
	sqlite3		*db = store_sqlite_handle(s);
	sqlite3_stmt	*st;
	char		 sql[1024], plan[2048] = "", scan[64];
	const char	*detail;
	size_t		 i, used = 0;

	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
	    store_sqlite_stats_sql());
	CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		detail = (const char *)sqlite3_column_text(st, 3);
		for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
			snprintf(scan, sizeof(scan), "SCAN %s", tables[i]);
			if (strncmp(detail, scan, strlen(scan)) == 0 &&
			    strstr(detail, "INDEX") == NULL)
				fprintf(stderr, "stats plan: %s\n", detail);
			CHECK(strncmp(detail, scan, strlen(scan)) != 0 ||
			    strstr(detail, "INDEX") != NULL);
		}
		used += (size_t)snprintf(plan + used, used < sizeof(plan) ?
		    sizeof(plan) - used : 0, "%s\n", detail);
	}
	sqlite3_finalize(st);
	CHECK(strstr(plan, "INDEX intents_pending\n") != NULL);
	CHECK(strstr(plan, "INDEX intents_pending_half") != NULL);
	CHECK(strstr(plan, "killswitches_engaged") != NULL);
}

static void
test_stats(void)
{
	struct store		*s, *t;
	struct store_stats	 g;
	struct intent_move	 m;
	struct ks_row		 k;
	char			 id[INTENT_ID_LEN + 1];
	int64_t			 ks;
	int			 i;

	new_path();
	s = open_store(STORE_CREATE);
	t = open_store(0);
	CHECK(s->ops->stats(s, 1000, &g) == 0);
	CHECK(g.pending == 0 && g.oldest_pending_at == 0 &&
	    g.past_half_ttl == 0 && g.killswitches == 0);
	/* pending ones count (TTL 3600: half-way at +1800); others not */
	CHECK(store_begin(s) == 0);
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "in_%032d", i);
		insert(s, id, i == 3 ? ST_ALLOWED : ST_PENDING, 1000 + 100 * i,
		    1);
	}
	CHECK(store_commit(s) == 0);
	CHECK(t->ops->stats(t, 2799, &g) == 0);
	CHECK(g.pending == 3 && g.oldest_pending_at == 1000 &&
	    g.past_half_ttl == 0);
	CHECK(t->ops->stats(t, 2900, &g) == 0 && g.past_half_ttl == 2);
	/* a rolled back insert never counted */
	CHECK(store_begin(s) == 0);
	insert(s, "in_99999999999999999999999999999999", ST_PENDING, 500, 1);
	store_rollback(s);
	CHECK(t->ops->stats(t, 2900, &g) == 0 && g.pending == 3);
	/* a move out of pending counts once; one that does not happen, or
	 * from another status, not at all */
	memset(&m, 0, sizeof(m));
	m.id = "in_00000000000000000000000000000000";
	m.from = ST_PENDING;
	m.to = ST_REJECTED;
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->intent_move(s, &m) == 0);
	CHECK(s->ops->intent_move(s, &m) == 1);
	m.id = "in_00000000000000000000000000000003";
	m.from = ST_ALLOWED;
	m.to = ST_EXPIRED;
	CHECK(s->ops->intent_move(s, &m) == 0);
	CHECK(store_commit(s) == 0);
	CHECK(t->ops->stats(t, 2900, &g) == 0);
	CHECK(g.pending == 2 && g.oldest_pending_at == 1100 &&
	    g.past_half_ttl == 1);
	/* engaged switches */
	memset(&k, 0, sizeof(k));
	k.scope = KS_GLOBAL;
	k.reason = "r";
	k.by = "o";
	k.at = 5;
	CHECK(store_begin(s) == 0);
	CHECK(s->ops->ks_insert(s, &k, &ks) == 0);
	CHECK(s->ops->ks_insert(s, &k, &ks) == 0);
	CHECK(s->ops->ks_reset(s, ks, "o", 6, "r") == 0);
	CHECK(store_commit(s) == 0);
	CHECK(t->ops->stats(t, 2900, &g) == 0 && g.killswitches == 1);
	check_stats_plan(s);
	/* a damaged database: no counter row, no numbers */
	CHECK(sqlite3_exec(store_sqlite_handle(s), "DELETE FROM counters "
	    "WHERE name = 'pending'", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(t->ops->stats(t, 2900, &g) == -1);
	store_close(t);
	store_close(s);
	drop_db();
}

int
main(void)
{
	test_open();
	test_display();
	test_engines_same_schema();
	test_engines_same_ops();
	test_generations();
	test_intents();
	test_pages();
	test_killswitches();
	test_audit_head();
	test_flush();
	test_read_only();
	test_stats();
	printf("store: %d passed, 0 failed\n", passed);
	return (0);
}
