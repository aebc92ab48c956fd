"""
test_multibroker: several brokers on one PostgreSQL database keep the
contract as one broker does (CONTRACT §11).  Three brokers share a fresh
database; each request goes to a broker picked at random.  Replays are
refused across brokers, a grant redeemed by 32 parallel calls on any
brokers is redeemed once, two approvers on two brokers release a
2-approval intent exactly once, a kill switch tripped on one broker (or
offline with toolgatectl --db) denies the very next intent on the others,
a long-poll on one broker is woken by an approval on another within a
second, 32 parallel calls spread over the brokers never exceed a
cumulative limit, a broker killed with kill -9 under load loses nothing
answered and leaves no half-state, a PostgreSQL restart under load gives
503s while it is down, recovery after, and nothing answered lost, and
brokers whose sessions the server ended reconnect and hear changes again.

Needs TOOLGATE_TEST_DB (scripts/test's PostgreSQL pass): skipped (exit
77) without it.  The restart case runs a private cluster of its own
(scripts/pg-cluster), so that the tests running beside it keep theirs.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

if harness.ENGINE != "postgresql":
    print("test_multibroker: needs TOOLGATE_TEST_DB (a PostgreSQL URI); "
          "skipped")
    sys.exit(77)

PG_CLUSTER = os.path.join(harness.ROOT, "scripts", "pg-cluster")


def audit_key():
    """The brokers' audit key: offline changes that widen need it."""
    return ["--audit-key", os.path.join(harness.pki(), "audit.key")]


# The demo policy without its daily limit: the load piles up pending
# payments of 5000.00 USD and the approval cases pay 50000.00, which
# payments-daily would deny (class Limits tests limits across brokers).
POLICY = harness.without_limits()


def apply_policy(db, policy=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(POLICY if policy is None else policy, f)
        f.flush()
        p = subprocess.run([harness.CTL, "--db", db, *audit_key(), "policy",
                            "apply", f.name], capture_output=True, text=True,
                           timeout=60)
    assert p.returncode == 0, p.stderr


class Brokers:
    """n brokers on one database (the first one's), as a context
    manager: started together, stopped together, the database dropped
    when it is the first one's own."""

    def __init__(self, n=3, db=None, **kw):
        kw.setdefault("policy", POLICY)
        first = harness.Broker(db=db, **kw)
        if db is not None:
            apply_policy(db, kw["policy"])
        self.all = [first] + [harness.Broker(db=first.db, **kw)
                              for _ in range(n - 1)]
        self.db = first.db

    def __enter__(self):
        started = []
        try:
            # Together: migrations and the first connections race.
            ts = [threading.Thread(target=b.start) for b in self.all]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            for b in self.all:
                if not b.running():
                    raise AssertionError("a broker did not start:\n%s" %
                                         "\n".join(b.log_lines()))
                started.append(b)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        for b in self.all:
            if exc_type is None and b.running():
                b.stop()
            else:
                b.kill9()
        for b in reversed(self.all):
            b._remove()
        return False

    def __getitem__(self, i):
        return self.all[i]

    def any(self):
        return random.choice([b for b in self.all if b.running()])

    def client(self, name, broker=None):
        return (broker or self.any()).client(name)

    def verify(self, case):
        p = subprocess.run([harness.CTL, "--db", self.db, "audit", "verify"],
                           capture_output=True, text=True, timeout=120)
        case.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout


def parallel(n, fn):
    """fn(i) for i in 0..n-1 on n threads started together: results."""
    out = [None] * n
    go = threading.Barrier(n)

    def run(i):
        go.wait()
        try:
            out[i] = fn(i)
        except Exception as e:      # a failed call is a result too
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


def approve(client, iid, comment="ok"):
    return client.request("POST", "/v1/approvals/%s/approve" % iid,
                          body=json.dumps({"comment": comment}),
                          content_type="application/json")


class LongPoll(threading.Thread):
    """GET /v1/intents/ID?wait=30 by agent on a thread of its own, held
    on the broker when the constructor returns: answer (status, headers,
    body) and the monotonic time it came (at), after join()."""

    def __init__(self, case, broker, agent, iid):
        super().__init__(daemon=True)
        self.agent, self.iid = agent, iid
        self.answer = self.at = None
        self.start()
        wait_held(case, broker)

    def run(self):
        self.answer = self.agent.get("/v1/intents/%s?wait=30" % self.iid)
        self.at = time.monotonic()


def wait_held(case, broker, n=1):
    """Until broker holds n long-polls (its held gauge)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = broker.client("operator-olga").get("/metrics")[2]
        if "toolgate_waits_held %d\n" % n in m:
            return
        time.sleep(0.05)
    case.fail("the long-poll was never held")


class SharedDatabase(unittest.TestCase):
    """Promises across three brokers on one database."""

    @classmethod
    def setUpClass(cls):
        cls.bs = Brokers(3)
        cls.bs.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.bs.__exit__(None, None, None)

    def test_replays_are_refused_across_brokers(self):
        agent = self.bs.client("agent-payments", self.bs[0])
        for _ in range(5):
            tok = agent.sign(harness.claims(agent.identity, "crm.lookup"))
            first = self.bs.client("agent-payments").post_intent(tok)
            self.assertEqual(first[0], 200, first[2])
            for b in self.bs.all:
                st, _, body = b.client("agent-payments").post_intent(tok)
                self.assertEqual((st, body.get("error")), (409, "replay"))
        # The same token on all three at once: one decision, two replays.
        for _ in range(3):
            tok = agent.sign(harness.claims(agent.identity, "crm.lookup"))
            res = parallel(3, lambda i: self.bs[i].client(
                "agent-payments").post_intent(tok))
            codes = sorted(r[0] for r in res)
            self.assertEqual(codes, [200, 409, 409], res)

    def test_a_grant_is_redeemed_once_by_32_parallel_calls(self):
        agent = self.bs.client("agent-payments")
        st, _, body = agent.submit("payments.transfer",
                                   **harness.payment("10.00", to="acct-1"))
        self.assertEqual(st, 200, body)
        grant = json.dumps({"grant": body["grant"]})
        tools = [self.bs[i % 3].client("tool-payments") for i in range(32)]
        random.shuffle(tools)
        res = parallel(32, lambda i: tools[i].request(
            "POST", "/v1/grants/redeem", body=grant,
            content_type="application/json"))
        codes = [r[0] if isinstance(r, tuple) else r for r in res]
        self.assertEqual(codes.count(200), 1, codes)
        self.assertEqual(codes.count(409), 31, codes)
        self.assertTrue(all(r[2]["error"] == "already_redeemed"
                            for r in res if r[0] == 409))
        n = self.bs[0].query("SELECT count(*) FROM audit WHERE intent_id = ? "
                             "AND event = 'redemption'", (body["id"],))[0][0]
        self.assertEqual(n, 1)

    def test_two_approvers_on_two_brokers_release_once(self):
        agent = self.bs.client("agent-payments")
        for k in range(4):
            st, _, body = agent.submit("payments.transfer",
                                       **harness.payment("50000.00"))
            self.assertEqual((st, body["approvals_required"]), (202, 2),
                             body)
            iid = body["id"]
            who = [("approver-alice", self.bs[k % 3]),
                   ("approver-bob", self.bs[(k + 1) % 3])]
            res = parallel(2, lambda i: approve(
                who[i][1].client(who[i][0]), iid))
            self.assertEqual([r[0] for r in res], [200, 200], res)
            view = self.bs.client("agent-payments").get("/v1/intents/" +
                                                        iid)[2]
            self.assertEqual(view["status"], "allowed")
            self.assertEqual(sorted(a["by"] for a in view["approvals"]),
                             ["approver-alice", "approver-bob"])
            self.assertIn("grant", view)
            released = [json.loads(r[0])["details"]["status"] for r in
                        self.bs[0].query("SELECT record FROM audit WHERE "
                                         "intent_id = ? AND event = "
                                         "'approval' ORDER BY seq", (iid,))]
            self.assertEqual(released, ["pending", "allowed"])
            # A third approval finds it decided, on any broker.
            st, _, err = approve(self.bs.client("approver-alice"), iid)
            self.assertEqual((st, err["error"]), (409, "already_decided"))

    def assertDeniesEverywhere(self, brokers, code=403):
        for b in brokers:
            st, _, body = b.client("agent-support").submit("crm.lookup")
            if code == 403:
                self.assertEqual((st, body.get("reason_code")),
                                 (403, "kill_switch"), body)
            else:
                self.assertEqual(st, code, body)

    def test_a_trip_on_one_broker_denies_the_next_intent_on_the_others(self):
        olga = self.bs[0].client("operator-olga")
        st, _, sw = olga.request("POST", "/v1/killswitch", body=json.dumps(
            {"scope": "agent", "target": "agent-support",
             "reason": "drill on broker 1"}),
            content_type="application/json")
        self.assertEqual(st, 201, sw)
        # The very first answer after the trip returned, on each other
        # broker: within 1 s by construction (decisions read the
        # switches in their own transaction).
        self.assertDeniesEverywhere(self.bs.all[1:])
        st, _, body = self.bs[2].client("operator-olga").request(
            "POST", "/v1/killswitch/%d/reset" % sw["id"],
            body=json.dumps({"reason": "drill over"}),
            content_type="application/json")
        self.assertEqual(st, 200, body)
        self.assertDeniesEverywhere([self.bs[0], self.bs[1]], code=200)

    def test_an_offline_trip_denies_on_every_broker(self):
        p = subprocess.run([harness.CTL, "--db", self.bs.db, "--json",
                            "killswitch", "trip", "--agent", "agent-support",
                            "--reason", "offline drill"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        sid = json.loads(p.stdout)["id"]
        self.assertDeniesEverywhere(self.bs.all)
        # Approvals and redemptions are frozen too, wherever they go.
        p = subprocess.run([harness.CTL, "--db", self.bs.db, *audit_key(),
                            "killswitch", "reset", str(sid), "--reason",
                            "over"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertDeniesEverywhere(self.bs.all, code=200)

    def test_a_long_poll_is_woken_by_an_approval_on_another_broker(self):
        agent = self.bs[2].client("agent-payments")
        for approver_broker in (0, 1):
            st, _, body = agent.submit("payments.transfer",
                                       **harness.payment("5000.00"))
            self.assertEqual(st, 202, body)
            iid = body["id"]
            # Held on broker 3 before the approval.
            poll = LongPoll(self, self.bs[2], agent, iid)
            st, _, _ = approve(self.bs[approver_broker].client(
                "approver-alice"), iid)
            approved = time.monotonic()
            self.assertEqual(st, 200)
            poll.join(40)
            st, _, view = poll.answer
            self.assertEqual((st, view["status"]), (200, "allowed"), view)
            self.assertIn("grant", view)
            self.assertLess(poll.at - approved, 1.0)

    def test_a_reject_pending_trip_offline_wakes_long_polls(self):
        agent = self.bs[1].client("agent-payments")
        st, _, body = agent.submit("payments.transfer",
                                   **harness.payment("5000.00"))
        self.assertEqual(st, 202, body)
        poll = LongPoll(self, self.bs[1], agent, body["id"])
        p = subprocess.run([harness.CTL, "--db", self.bs.db, "--json",
                            "killswitch", "trip", "--tool", "payments.*",
                            "--reason", "stop payments", "--reject-pending"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        tripped = time.monotonic()
        poll.join(40)
        # Woken by the trip's NOTIFY on a broker that did not make it.
        self.assertLess(poll.at - tripped, 1.0)
        self.assertEqual(poll.answer[2]["status"], "rejected")
        sid = json.loads(p.stdout)["id"]
        p = subprocess.run([harness.CTL, "--db", self.bs.db, *audit_key(),
                            "killswitch", "reset", str(sid), "--reason",
                            "over"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_policy_versions_apply_on_every_broker(self):
        policy = harness.without_limits()
        policy["principals"]["agent-support"]["disabled"] = True
        olga = self.bs[1].client("operator-olga")
        st, _, v = olga.request("PUT", "/v1/policy", body=json.dumps(policy),
                                content_type="application/json")
        self.assertEqual(st, 200, v)
        try:
            for b in self.bs.all:
                st, _, body = b.client("agent-support").submit("crm.lookup")
                self.assertEqual((st, body["reason_code"],
                                  body["policy_version"]),
                                 (403, "principal_disabled", v["version"]))
        finally:
            apply_policy(self.bs.db)
        for b in self.bs.all:
            self.assertEqual(b.client("agent-support").submit(
                "crm.lookup")[0], 200)

    def pending_gauges(self):
        """toolgate_pending_intents as each broker's /metrics shows it."""
        out = []
        for b in self.bs.all:
            st, _, text = b.client("agent-support").get("/metrics")
            self.assertEqual(st, 200, text)
            m = re.search(r"(?m)^toolgate_pending_intents (\d+)$", text)
            out.append(int(m.group(1)))
        return out

    def test_the_pending_gauge_counts_every_brokers_intents(self):
        # The count is a counter row (schema 8) that each broker moves in
        # the transaction of every intent entering or leaving pending:
        # made, approved and rejected on three brokers at once, every
        # broker's gauge is what the intents table holds.
        def make(i):
            c = self.bs[i % 3].client("agent-payments")
            out = []
            for _ in range(4):
                st, _, body = c.submit("payments.transfer",
                                       **harness.payment("5000.00"))
                out.append((st, body.get("id")))
            return out
        made = [r for rs in parallel(6, make) for r in rs]
        self.assertEqual([st for st, _ in made], [202] * 24, made)
        ids = [i for _, i in made]

        def close(i):
            c = self.bs[i % 3].client("approver-alice")
            if i % 2:
                return approve(c, ids[i])[0]
            return c.request("POST", "/v1/approvals/%s/reject" % ids[i],
                             body=json.dumps({"reason": "no"}),
                             content_type="application/json")[0]
        self.assertEqual(parallel(16, close), [200] * 16)
        want = self.bs[0].query("SELECT count(*) FROM intents WHERE "
                                "status = 'pending'")[0][0]
        self.assertGreaterEqual(want, 8)
        self.assertEqual(self.pending_gauges(), [want] * 3)
        self.assertEqual(self.bs[0].query(
            "SELECT value FROM counters WHERE name = 'pending'")[0][0], want)
        # the rest rejected offline, by a kill switch of toolgatectl --db
        p = subprocess.run([harness.CTL, "--db", self.bs.db, "--json",
                            "killswitch", "trip", "--tool", "payments.*",
                            "--reason", "gauge drill", "--reject-pending"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        sid = json.loads(p.stdout)["id"]
        self.assertEqual(self.pending_gauges(), [0] * 3)
        p = subprocess.run([harness.CTL, "--db", self.bs.db, *audit_key(),
                            "killswitch", "reset", str(sid), "--reason",
                            "over"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


    def test_one_chain_with_one_sequence(self):
        # Decisions from all three brokers at once, then the chain.
        def burst(i):
            c = self.bs[i % 3].client("agent-support")
            return [c.submit("crm.lookup")[0] for _ in range(10)]
        res = parallel(6, burst)
        self.assertTrue(all(r == [200] * 10 for r in res), res)
        seqs = [r[0] for r in self.bs[0].query("SELECT seq FROM audit "
                                               "ORDER BY seq")]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        head = self.bs[0].query("SELECT seq, hash FROM audit_head")[0]
        last = self.bs[0].query("SELECT seq, hash FROM audit ORDER BY seq "
                                "DESC LIMIT 1")[0]
        self.assertEqual(tuple(head), tuple(last))
        self.bs.verify(self)
        # Each broker verified and took in what the others appended
        # (one audit key): none sees a break, and each has verified up
        # to the head by its next decision.
        for b in self.bs.all:
            st, _, _ = b.client("agent-support").submit("crm.lookup")
            self.assertEqual(st, 200)
            st, _, text = b.client("agent-support").get("/metrics")
            self.assertIn("\ntoolgate_audit_chain_broken 0\n", text)


class Load:
    """Intents (allowed, pending) and approvals from several threads to
    random running brokers until stopped; every answer kept."""

    def __init__(self, bs, threads=4):
        self.bs = bs
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []       # (status, body, jti)
        self.errors = 0
        self.ts = [threading.Thread(target=self.run, args=(i,))
                   for i in range(threads)]

    def run(self, i):
        rng = random.Random(i)
        clients = {}
        while not self.stop.is_set():
            b = self.bs.any()
            key = (id(b), "agent-payments")
            c = clients.get(key) or clients.setdefault(
                key, harness.Client(b.port, os.path.join(b.pki, "ca.pem"),
                                    os.path.join(b.pki, "agent-payments.pem"),
                                    os.path.join(b.pki, "agent-payments.key"),
                                    timeout=30))
            kind = rng.random()
            c_ = harness.claims(c.identity, "crm.lookup") if kind < 0.6 else \
                harness.claims(c.identity, "payments.transfer",
                               **harness.payment("5000.00"))
            try:
                st, _, body = c.post_intent(c.sign(c_))
            except Exception:
                with self.lock:
                    self.errors += 1
                c.close()
                time.sleep(0.05)
                continue
            with self.lock:
                self.answers.append((st, body, c_["jti"]))
            if st == 202 and rng.random() < 0.5:
                try:
                    approve(self.bs.any().client("approver-alice"),
                            body["id"])
                except Exception:
                    pass
        for c in clients.values():
            c.close()

    def __enter__(self):
        for t in self.ts:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.ts:
            t.join(60)
        return False

    def count(self, status=None):
        with self.lock:
            return sum(1 for a in self.answers
                       if status is None or a[0] == status)

    def wait_for(self, n, status=None, timeout=60):
        deadline = time.monotonic() + timeout
        while self.count(status) < n:
            if time.monotonic() > deadline:
                raise AssertionError("load: fewer than %d answers (%s) in "
                                     "%d s" % (n, status, timeout))
            time.sleep(0.05)


DECIDED = {200: "allow", 202: "pending", 403: "deny"}


def check_nothing_lost(case, bs, answers):
    """Every decision answered is stored as answered; no half-state."""
    rows = {r[0]: tuple(r[1:]) for r in bs[0].query(
        "SELECT id, jti, decision, status, approvals_required, "
        "redeemed_at FROM intents")}
    answered = 0
    for st, body, jti in answers:
        if st not in DECIDED:
            case.assertEqual((st, body.get("error")), (503, "unavailable"),
                             body)
            continue
        answered += 1
        row = rows.get(body["id"])
        case.assertIsNotNone(row, "answered intent %s lost" % body["id"])
        case.assertEqual(row[:2], (jti, DECIDED[st]), body["id"])
    case.assertGreater(answered, 0)
    # An allowed intent that needed approvals has enough of them; every
    # intent has its decision record and nothing else is half there.
    for iid, n, need in bs[0].query(
            "SELECT i.id, count(a.id), i.approvals_required FROM intents i "
            "LEFT JOIN approvals a ON a.intent_id = i.id WHERE i.status = "
            "'allowed' GROUP BY i.id, i.approvals_required"):
        case.assertGreaterEqual(n, need, iid)
    n_int = bs[0].query("SELECT count(*) FROM intents")[0][0]
    n_dec = bs[0].query("SELECT count(DISTINCT intent_id) FROM audit WHERE "
                        "event = 'decision'")[0][0]
    case.assertEqual(n_int, n_dec)
    n_app = bs[0].query("SELECT count(*) FROM approvals")[0][0]
    n_rec = bs[0].query("SELECT count(*) FROM audit WHERE event = "
                        "'approval'")[0][0]
    case.assertEqual(n_app, n_rec, "approvals without their record")
    bs.verify(case)


class Limits(unittest.TestCase):
    """A cumulative limit holds across brokers (CONTRACT §8.3, §11): the
    usage row of each (limit, key) is locked by the deciding
    transaction, whichever broker runs it."""

    POLICY = dict(harness.load_example_policy(), limits=[
        {"name": "payments-daily", "tools": ["payments.*"],
         "window": 86400, "currency": "USD", "max_amount": "20000.00"},
        {"name": "lookups", "tools": ["crm.lookup"], "per": ["/customer"],
         "window": 3600, "max_count": 10}])

    def test_parallel_calls_on_three_brokers_never_overspend(self):
        with Brokers(3, policy=self.POLICY) as bs:
            clients = [bs[i % 3].client("agent-payments") for i in range(32)]
            for c in clients:       # connected before the start line
                self.assertEqual(c.get("/healthz")[0], 200)
            # a fresh key: the brokers race to make its usage row
            res = parallel(32, lambda i: clients[i].submit(
                "crm.lookup", args={"customer": "c-1"})[0])
            self.assertEqual(sorted(res), [200] * 10 + [403] * 22, res)
            res = parallel(32, lambda i: clients[i].submit(
                "payments.transfer", **harness.payment("999.99"))[0])
            self.assertEqual(sorted(res), [200] * 20 + [403] * 12, res)
            rows = bs[0].query("SELECT name, key, n, whole, micro FROM "
                               "limit_usage ORDER BY name")
            self.assertEqual([tuple(r) for r in rows], [
                ("lookups", '["c-1"]', 10, 0, 0),
                ("payments-daily", '["agent-payments"]', 20, 19999,
                 800000)])
            st, _, page = bs[2].client("agent-payments").get("/v1/limits")
            self.assertEqual(st, 200, page)
            self.assertEqual([(i["name"], i["used"]) for i in
                              page["items"]],
                             [("payments-daily", "19999.80")])
            bs.verify(self)


class Crashes(unittest.TestCase):

    def test_kill9_of_one_broker_under_load_loses_nothing(self):
        with Brokers(3) as bs:
            with Load(bs) as load:
                load.wait_for(40)
                bs[1].kill9()
                n = load.count()
                load.wait_for(n + 40)
            check_nothing_lost(self, bs, load.answers)
            # No lock or half-approval left behind: every pending intent
            # can still be approved, on the surviving brokers.
            pending = [r[0] for r in bs[0].query(
                "SELECT id FROM intents WHERE status = 'pending'")][:20]
            for iid in pending:
                st, _, body = approve(bs.any().client("approver-bob"), iid)
                self.assertEqual(st, 200, body)
                self.assertEqual(body["status"], "allowed")
            bs[1].start()
            self.assertEqual(bs[1].client("agent-support").submit(
                "crm.lookup")[0], 200)

    def test_postgresql_restarted_under_load(self):
        tmp = tempfile.mkdtemp(prefix="toolgate-pgrestart-")
        self.addCleanup(shutil.rmtree, tmp, True)

        def cluster(cmd):
            p = subprocess.run([PG_CLUSTER, cmd, tmp], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.strip()
        base = cluster("start")
        self.addCleanup(subprocess.run, [PG_CLUSTER, "stop", tmp],
                        capture_output=True, timeout=120)
        db = harness.pg_create_database(base)
        with Brokers(2, db=db) as bs:
            with Load(bs) as load:
                load.wait_for(30)
                # A crash of the server (immediate shutdown): what was
                # committed comes back from its WAL.
                cluster("kill")
                load.wait_for(10, status=503, timeout=60)
                cluster("start")
                ok = load.count(200)
                load.wait_for(ok + 30, status=200, timeout=90)
            # While it was down: 503 unavailable (check_nothing_lost says
            # so of every answer that is not a decision), and every
            # decision answered, before or after, is in the database.
            check_nothing_lost(self, bs, load.answers)
            for b in bs.all:
                self.assertTrue(any("connection restored" in line
                                    for line in b.log_lines()),
                                "\n".join(b.log_lines()))


class CutConnections(unittest.TestCase):
    """Every session of every broker ended by the server (a failover, a
    proxy restart, pg_terminate_backend): the brokers reconnect by
    themselves, a long-poll held meanwhile is still answered, and a trip
    made after it is in force everywhere (the full refresh after the
    listener's reconnect)."""

    def cut_all(self, db):
        return harness.db_query(
            db, "SELECT count(pg_terminate_backend(pid)) FROM "
            "pg_stat_activity WHERE datname = current_database() AND "
            "pid <> pg_backend_pid()")[0][0]

    def until_answered(self, call, deadline=30):
        """call() until it answers something other than 503: that."""
        end = time.monotonic() + deadline
        while True:
            st, _, body = call()
            if st != 503:
                return st, body
            self.assertEqual(body.get("error"), "unavailable", body)
            self.assertLess(time.monotonic(), end, "still 503")
            time.sleep(0.1)

    def test_brokers_recover_when_the_server_ends_their_sessions(self):
        with Brokers(2) as bs:
            agent = bs[1].client("agent-payments")
            st, _, body = agent.submit("payments.transfer",
                                       **harness.payment("5000.00"))
            self.assertEqual(st, 202, body)
            iid = body["id"]
            poll = LongPoll(self, bs[1], agent, iid)
            # Each broker: its threads, commit writer and listener.
            self.assertGreaterEqual(self.cut_all(bs.db), 4)
            st, body = self.until_answered(lambda: approve(
                bs[0].client("approver-alice"), iid))
            self.assertEqual((st, body["status"]), (200, "allowed"), body)
            poll.join(40)
            st, _, view = poll.answer
            self.assertEqual((st, view["status"]), (200, "allowed"), view)
            # The listeners listen again: a trip on one broker is in force
            # on the other, and a long-poll there hears the next change.
            st, body = self.until_answered(lambda: bs[0].client(
                "operator-olga").request("POST", "/v1/killswitch",
                                         body=json.dumps(
                                             {"scope": "agent",
                                              "target": "agent-support",
                                              "reason": "after the cut"}),
                                         content_type="application/json"))
            self.assertEqual(st, 201, body)
            st, body = self.until_answered(lambda: bs[1].client(
                "agent-support").submit("crm.lookup"))
            self.assertEqual((st, body.get("reason_code")),
                             (403, "kill_switch"), body)
            for b in bs.all:
                b.wait_log("hearing other brokers' changes again",
                           timeout=30)
            bs.verify(self)


class Startup(unittest.TestCase):

    def test_a_broker_started_before_its_database_waits_for_it(self):
        tmp = tempfile.mkdtemp(prefix="toolgate-pgwait-")
        self.addCleanup(shutil.rmtree, tmp, True)

        def cluster(cmd):
            p = subprocess.run([PG_CLUSTER, cmd, tmp], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.strip()
        base = cluster("start")
        self.addCleanup(subprocess.run, [PG_CLUSTER, "stop", tmp],
                        capture_output=True, timeout=120)
        db = harness.pg_create_database(base)
        apply_policy(db)
        cluster("stop")
        b = harness.Broker(db=db)
        self.addCleanup(b.kill9)
        started = {}
        t = threading.Thread(target=lambda: started.setdefault(
            "ok", b.start(timeout=60)))
        t.start()
        b.wait_log("the server does not answer; waiting for it", timeout=30)
        self.assertFalse(b._listening.is_set())
        cluster("start")
        t.join(60)
        self.assertIn("ok", started, "\n".join(b.log_lines()))
        self.assertEqual(b.client("agent-support").submit("crm.lookup")[0],
                         200)
        b.stop()


class Readme(unittest.TestCase):
    """README "Several brokers": the recipe works as written."""

    def test_the_two_broker_recipe_works_as_written(self):
        with open(os.path.join(harness.ROOT, "README.md")) as f:
            blocks = re.findall(r"<!-- tested: several-brokers -->\n"
                                r"```sh\n(.*?)```", f.read(), re.S)
        self.assertEqual(len(blocks), 1)
        db = harness.pg_create_database()
        self.addCleanup(harness.pg_drop_database, db)
        tmp = tempfile.mkdtemp(prefix="toolgate-recipe-")
        self.addCleanup(shutil.rmtree, tmp, True)
        k = harness.pki()
        ports = [harness.free_port(), harness.free_port()]
        env = dict(os.environ, db=db, tls=k, state=tmp,
                   broker_a="127.0.0.1:%d" % ports[0],
                   broker_b="127.0.0.1:%d" % ports[1],
                   PATH=os.pathsep.join([os.path.dirname(harness.CTL),
                                         os.path.dirname(harness.DAEMON),
                                         os.environ["PATH"]]))
        out, err = (os.path.join(tmp, n) for n in ("out", "err"))
        # The block as written; then the shell names what it started.
        with open(out, "w") as fo, open(err, "w") as fe:
            p = subprocess.run(["bash", "-euo", "pipefail", "-c",
                                blocks[0] + "\njobs -p\n"],
                               cwd=harness.ROOT, env=env, stdout=fo,
                               stderr=fe, stdin=subprocess.DEVNULL,
                               timeout=60)
        with open(out) as f:
            lines = f.read().split("\n")
        pids = [int(x) for x in lines if x.strip().isdigit()]
        self.addCleanup(self.stop, pids)
        self.assertEqual(p.returncode, 0, lines)
        self.assertEqual(len(pids), 2, lines)
        self.assertIn("policy version 1 applied", lines[0])
        deadline = time.monotonic() + 30
        while True:
            with open(err) as f:
                log = f.read()
            if log.count("listening on 127.0.0.1:") == 2:
                break
            self.assertLess(time.monotonic(), deadline, log)
            time.sleep(0.1)

        def client(i, name):
            c = harness.Client(ports[i], os.path.join(k, "ca.pem"),
                               os.path.join(k, name + ".pem"),
                               os.path.join(k, name + ".key"))
            self.addCleanup(c.close)
            return c
        # A grant from one broker is redeemed on the other, once.
        st, _, body = client(0, "agent-payments").submit(
            "payments.transfer", **harness.payment("10.00"))
        self.assertEqual(st, 200, body)
        redeem = json.dumps({"grant": body["grant"]})
        for i, want in ((1, 200), (0, 409)):
            st, _, _ = client(i, "tool-payments").request(
                "POST", "/v1/grants/redeem", body=redeem,
                content_type="application/json")
            self.assertEqual(st, want)
        # A trip on one broker stops the other.
        st, _, sw = client(1, "operator-olga").request(
            "POST", "/v1/killswitch", body=json.dumps(
                {"scope": "global", "reason": "recipe"}),
            content_type="application/json")
        self.assertEqual(st, 201, sw)
        st, _, body = client(0, "agent-payments").submit("crm.lookup")
        self.assertEqual((st, body["reason_code"]), (403, "kill_switch"))

    def stop(self, pids):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    unittest.main(verbosity=2)
