"""
test_limits: cumulative limits (CONTRACT §8.3, §8.4) through a real
toolgated over real mTLS on a real SQLite file.

Splitting 50 x 999.99 USD is stopped at the demo's daily limit, the
denial naming the limit with frees_at; 32 parallel submissions, also
spread over two broker processes on one database, never exceed a limit
(exact counts); a limit over its maximum asks for approvals instead; a
pending intent reserves and a rejection or expiry frees; usage survives
a restart;
GET /v1/limits shows an agent its own counters and staff everyone's;
explain answers what the policy would say and records nothing; the
README's walkthrough runs as written.  Answers are validated against the
proto/ schemas.
"""

import calendar
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import payment  # noqa: E402

DECISION = harness.schema("decision.schema.json")
LIMITS = harness.schema("limits.schema.json")
EXPLAIN = harness.schema("explain.schema.json")
ERROR = harness.schema("error.schema.json")

PAYEE = "DE89370400440532013000"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def seconds(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def with_limits(*limits, daily=True):
    """The demo policy with more limits (and without payments-daily
    unless daily)."""
    p = harness.load_example_policy() if daily else harness.without_limits()
    p.setdefault("limits", []).extend(limits)
    return p


def post_json(client, path, body):
    return client.request("POST", path, body=json.dumps(body),
                          content_type="application/json")


def transfer(client, value="999.99", to=PAYEE, **kw):
    st, _, body = client.submit("payments.transfer",
                                **payment(value, to=to), **kw)
    return st, body


def table_rows(db, sql, *args):
    """Rows of a SELECT on db, SQLite file or PostgreSQL URI, as tuples."""
    return [tuple(r) for r in harness.db_query(db, sql, args)]


class SplitPayment(unittest.TestCase):
    """The demo policy, unchanged: payments-daily, 20000.00 USD per agent
    per day."""

    def test_fifty_transfers_of_999_99_stop_at_the_daily_limit(self):
        with harness.Broker() as b:
            pay = b.client("agent-payments")
            answers = []
            for _ in range(50):
                answers.append(transfer(pay))
            first = seconds(answers[0][1]["created_at"])
            allowed = [a for st, a in answers if st == 200]
            denied = [a for st, a in answers if st == 403]
            self.assertEqual((len(allowed), len(denied)), (20, 30))
            self.assertEqual(allowed, [a for _, a in answers[:20]])
            for a in denied:
                DECISION.validate(a)
                self.assertEqual((a["status"], a["reason_code"]),
                                 ("denied", "limit_exceeded"), a)
                self.assertEqual(a["limit"], {
                    "name": "payments-daily", "max": "20000.00",
                    "used": "19999.80", "window": 86400,
                    "frees_at": rfc3339(first + 86400)})
                self.assertIn("over the limit payments-daily", a["reason"])
                self.assertNotIn("grant", a)
            # the view keeps it; the audit record says it too
            st, _, v = pay.get("/v1/intents/" + denied[0]["id"])
            self.assertEqual(v["limit"], denied[0]["limit"])
            rec = json.loads(table_rows(
                b.db, "SELECT record FROM audit WHERE intent_id = ?",
                denied[0]["id"])[0][0])
            self.assertEqual(rec["details"]["limit"], denied[0]["limit"])
            # what still fits does; other currencies do not count
            self.assertEqual(transfer(pay, "0.20")[0], 200)
            self.assertEqual(transfer(pay, "0.01")[0], 403)
            st, _, body = pay.submit("payments.transfer",
                                     **payment("400.00", "EUR"))
            self.assertEqual(st, 200, body)
            # usage survives a restart
            b.restart()
            pay = b.client("agent-payments")
            st, body = transfer(pay, "0.01")
            self.assertEqual((st, body["limit"]["used"]), (403, "20000.00"),
                             body)
            st, _, page = pay.get("/v1/limits")
            self.assertEqual(st, 200, page)
            LIMITS.validate(page)
            self.assertEqual(page["items"], [{
                "name": "payments-daily", "key": ["agent-payments"],
                "used": "20000.00", "max": "20000.00", "currency": "USD",
                "window": 86400, "frees_at": rfc3339(first + 86400)}])

    def test_a_pending_payment_reserves_and_a_rejection_frees(self):
        with harness.Broker() as b:
            pay = b.client("agent-payments")
            st, p1 = transfer(pay, "10000.00")      # one approval
            self.assertEqual(st, 202, p1)
            st, p2 = transfer(pay, "9000.00")
            self.assertEqual(st, 202, p2)
            st, body = transfer(pay, "1000.01")
            self.assertEqual((st, body["limit"]["used"]), (403, "19000.00"))
            st, _, body = post_json(b.client("approver-alice"),
                                    "/v1/approvals/%s/reject" % p1["id"],
                                    {"reason": "not this one"})
            self.assertEqual(st, 200, body)
            self.assertEqual(transfer(pay, "1000.00")[0], 200)
            # an approval re-decides with its own reservation counted once
            st, _, v = post_json(b.client("approver-alice"),
                                 "/v1/approvals/%s/approve" % p2["id"], {})
            self.assertEqual((st, v["status"]), (200, "allowed"), v)
            st, _, page = pay.get("/v1/limits")
            self.assertEqual(page["items"][0]["used"], "10000.00")

    def test_a_payment_over_the_limit_alone_never_fits(self):
        with harness.Broker() as b:
            pay = b.client("agent-payments")
            st, body = transfer(pay, "20000.01")    # tiers: 2 approvals
            DECISION.validate(body)
            self.assertEqual((st, body["reason_code"]),
                             (403, "limit_exceeded"), body)
            self.assertEqual(body["limit"], {
                "name": "payments-daily", "max": "20000.00",
                "used": "0.00", "window": 86400, "frees_at": None})
            self.assertIn("this call alone (20000.01)", body["reason"])
            # nothing counted, and no row left behind for the key (a
            # locking engine made one to hold it)
            self.assertEqual(table_rows(b.db, "SELECT count(*) FROM "
                                        "limit_usage"), [(0,)])
            self.assertEqual(transfer(pay, "20000.00")[0], 202)

    def test_an_expired_payment_frees_its_reservation(self):
        p = harness.load_example_policy()
        for rule in p["roles"]["payments-agent"]["rules"]:
            if rule["tool"] == "payments.transfer":
                rule["approval_ttl"] = 1
        with harness.Broker(policy=p) as b:
            pay = b.client("agent-payments")
            st, p1 = transfer(pay, "10000.00")      # pending, 1 s to live
            self.assertEqual(st, 202, p1)
            st, p2 = transfer(pay, "9999.00")
            self.assertEqual(st, 202, p2)
            # reserved while pending (unless the sweeper was quicker)
            st, _, o = post_json(b.client("operator-olga"),
                                 "/v1/policy/explain", {
                                     "principal": "agent-payments",
                                     "tool": "payments.transfer",
                                     "args": payment("999.99")["args"]})
            self.assertEqual(st, 200, o)
            if o["decision"] == "deny":
                self.assertEqual(o["limit"]["used"], "19999.00", o)
            # the sweeper expires them (the long-poll answers the change)
            for iid in (p1["id"], p2["id"]):
                deadline = time.monotonic() + 60
                while True:
                    st, _, v = pay.get("/v1/intents/%s?wait=30" % iid)
                    if v["status"] != "pending" or \
                            time.monotonic() > deadline:
                        break
                self.assertEqual(v["status"], "expired", v)
            st, _, page = pay.get("/v1/limits")
            self.assertEqual(page["items"], [], page)
            self.assertEqual(transfer(pay, "999.99")[0], 200)
            st, _, page = pay.get("/v1/limits")
            self.assertEqual(page["items"][0]["used"], "999.99")


class Parallel(unittest.TestCase):
    """Concurrent calls on any thread or process never exceed a limit."""

    POLICY = with_limits({"name": "burst", "tools": ["crm.lookup"],
                          "per": [], "window": 3600, "max_count": 10})

    def storm(self, brokers, n, submit,
              who=("agent-payments", "agent-support")):
        """n submissions at once, spread over brokers and identities; what
        submit(client) returned for each."""
        clients = [brokers[i % len(brokers)].client(who[i % len(who)])
                   for i in range(n)]
        for c in clients:     # connect before the start line
            self.assertEqual(c.get("/healthz")[0], 200)
        gate = threading.Barrier(n)
        out = [None] * n

        def go(i):
            gate.wait(60)
            out[i] = submit(clients[i])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return out

    def test_32_parallel_submissions_get_exactly_the_count(self):
        with harness.Broker(policy=self.POLICY, threads=4) as b:
            got = self.storm([b], 32, lambda c: c.submit("crm.lookup")[0])
            self.assertEqual(sorted(got), [200] * 10 + [403] * 22)

    def test_two_broker_processes_on_one_database_share_the_count(self):
        with harness.Broker(policy=self.POLICY, threads=2) as b:
            # the same database, another process (on PostgreSQL: two
            # brokers, the usage rows locked per limit and key)
            with harness.Broker(policy=self.POLICY, threads=2,
                                db=b.db) as b2:
                got = self.storm([b, b2], 32,
                                 lambda c: c.submit("crm.lookup")[0])
            self.assertEqual(sorted(got), [200] * 10 + [403] * 22)
            # and every decision is in the one audit chain
            p = b.ctl_db("audit", "verify")
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_32_parallel_payments_spend_exactly_the_daily_limit(self):
        with harness.Broker(threads=4) as b:
            got = self.storm([b], 32, lambda c: transfer(c)[0],
                             who=("agent-payments",))
            self.assertEqual(sorted(got), [200] * 20 + [403] * 12)
            st, _, page = b.client("agent-payments").get("/v1/limits")
            self.assertEqual(page["items"][0]["used"], "19999.80")


class Escalation(unittest.TestCase):
    """Over a limit with "over": {approvals, approvers}: pending."""

    POLICY = with_limits(
        {"name": "payee-weekly", "tools": ["payments.transfer"],
         "per": ["agent", "/to"], "window": 604800, "currency": "USD",
         "max_amount": "2000.00",
         "over": {"approvals": 1, "approvers": ["finance-approver"]}},
        daily=False)

    def test_over_the_limit_needs_an_approval(self):
        with harness.Broker(policy=self.POLICY) as b:
            pay = b.client("agent-payments")
            self.assertEqual(transfer(pay, "1000.00")[0], 200)
            self.assertEqual(transfer(pay, "1000.00")[0], 200)
            st, body = transfer(pay, "500.00")
            DECISION.validate(body)
            self.assertEqual((st, body["status"], body["reason_code"],
                              body["approvals_required"],
                              body["approver_roles"]),
                             (202, "pending", "approval_required", 1,
                              ["finance-approver"]), body)
            self.assertEqual(body["limit"]["name"], "payee-weekly")
            self.assertEqual(body["limit"]["used"], "2000.00")
            self.assertIn("over the limit payee-weekly", body["reason"])
            # another payee is another key
            self.assertEqual(transfer(pay, "500.00", to="DE02")[0], 200)
            st, _, v = post_json(b.client("approver-alice"),
                                 "/v1/approvals/%s/approve" % body["id"],
                                 {})
            self.assertEqual((st, v["status"]), (200, "allowed"), v)
            st, _, v = pay.get("/v1/intents/" + body["id"])
            self.assertEqual(v["grant"].count("."), 2)
            st, _, page = b.client("approver-bob").get(
                "/v1/limits?principal=agent-payments")
            LIMITS.validate(page)
            used = {tuple(i["key"]): i["used"] for i in page["items"]}
            self.assertEqual(used, {("agent-payments", PAYEE): "2500.00",
                                    ("agent-payments", "DE02"): "500.00"})


class ListingAndExplain(unittest.TestCase):

    POLICY = with_limits({"name": "crm-hourly", "tools": ["crm.*"],
                          "window": 3600, "max_count": 100},
                         {"name": "crm-all", "tools": ["crm.*"],
                          "per": [], "window": 3600, "max_count": 1000})

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=cls.POLICY)
        cls.broker.__enter__()
        b = cls.broker
        for who, n in (("agent-payments", 3), ("agent-support", 2)):
            c = b.client(who)
            for _ in range(n):
                assert c.submit("crm.lookup")[0] == 200
        assert transfer(b.client("agent-payments"), "250.00")[0] == 200

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def listing(self, who, query=""):
        st, _, page = self.broker.client(who).get("/v1/limits" + query)
        return st, page

    def test_an_agent_sees_its_own_counters(self):
        st, page = self.listing("agent-payments")
        self.assertEqual(st, 200, page)
        LIMITS.validate(page)
        got = {(i["name"], json.dumps(i["key"])): i["used"]
               for i in page["items"]}
        self.assertEqual(got, {
            ("payments-daily", '["agent-payments"]'): "250.00",
            ("crm-hourly", '["agent-payments"]'): 3})
        self.assertIsNone(page["next_cursor"])
        st, page = self.listing("agent-payments", "?principal=agent-support")
        ERROR.validate(page)
        self.assertEqual((st, page["error"]), (403, "forbidden"))
        self.assertEqual(self.listing("agent-payments",
                                      "?principal=agent-payments")[0], 200)

    def test_approvers_and_operators_see_everyone(self):
        for who in ("approver-alice", "operator-olga"):
            st, page = self.listing(who)
            self.assertEqual(st, 200, page)
            LIMITS.validate(page)
            got = {(i["name"], json.dumps(i["key"])): i["used"]
                   for i in page["items"]}
            self.assertEqual(got[("crm-hourly", '["agent-support"]')], 2)
            self.assertEqual(got[("crm-all", "[]")], 5)
            st, page = self.listing(who, "?principal=agent-support")
            self.assertEqual([i["key"] for i in page["items"]],
                             [["agent-support"]])
        st, page = self.listing("operator-olga", "?limit=1")
        self.assertEqual(len(page["items"]), 1)
        st, page2 = self.listing("operator-olga",
                                 "?limit=1&cursor=" + page["next_cursor"])
        self.assertEqual(st, 200)
        self.assertNotEqual(page["items"], page2["items"])
        for bad in ("?limit=0", "?cursor=x", "?principal=", "?frob=1"):
            st, err = self.listing("operator-olga", bad)
            self.assertEqual((st, err["error"]), (400, "bad_request"), bad)

    def test_toolgatectl_limits(self):
        b = self.broker
        p = b.ctl("limits")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["LIMIT", "KEY", "USED", "MAX",
                                            "WINDOW", "FREES", "IN"])
        self.assertRegex(p.stdout, r"payments-daily +\[\"agent-payments\"\] "
                         r"+250\.00 USD +20000\.00 USD +1d00h ")
        # aligned: each column starts where its heading does
        col = lines[0].index("USED")
        for line in lines[1:]:
            self.assertNotEqual(line[col], " ", p.stdout)
            self.assertEqual(line[col - 1], " ", p.stdout)
        p = b.ctl("--json", "limits", identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(json.loads(p.stdout)["items"]), 4)
        p = b.ctl("limits", "--agent", "agent-support")
        self.assertEqual(p.returncode, 1)
        self.assertIn("forbidden", p.stderr)
        p = b.ctl_db("--json", "limits", "--agent", "agent-support")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([i["name"] for i in json.loads(p.stdout)["items"]],
                         ["crm-hourly"])
        p = b.ctl("limits", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--agent NAME", p.stdout)

    def explain(self, body, who="operator-olga"):
        return post_json(self.broker.client(who), "/v1/policy/explain", body)

    def state(self):
        b = self.broker
        return (table_rows(b.db, "SELECT count(*) FROM intents"),
                table_rows(b.db, "SELECT count(*) FROM audit"),
                table_rows(b.db, "SELECT count(*) FROM seen_jti"),
                table_rows(b.db, "SELECT name, key, n, whole, micro, oldest "
                           "FROM limit_usage ORDER BY id"),
                table_rows(b.db, "SELECT * FROM limit_buckets"))

    def test_explain_says_why_and_records_nothing(self):
        before = self.state()
        st, _, o = self.explain({"principal": "agent-payments",
                                 "tool": "payments.transfer",
                                 "args": {"to": PAYEE, "amount": "19750.01",
                                          "currency": "USD"}})
        self.assertEqual(st, 200, o)
        EXPLAIN.validate(o)
        # two approvals by its tier, but over the daily limit: denied
        self.assertEqual((o["decision"], o["reason_code"]),
                         ("deny", "limit_exceeded"), o)
        self.assertEqual((o["rule"]["tier"], o["limit"]["used"],
                          o["limit"]["frees_at"] is not None),
                         (2, "250.00", True), o)
        st, _, o = self.explain({"principal": "agent-payments",
                                 "tool": "payments.transfer",
                                 "args": {"to": PAYEE, "amount": "999.99",
                                          "currency": "USD"},
                                 "amount": {"value": "999.99",
                                            "currency": "USD"}})
        self.assertEqual(st, 200, o)
        EXPLAIN.validate(o)
        self.assertEqual((o["decision"], o["reason_code"]),
                         ("allow", "policy_allow"))
        self.assertEqual(o["rule"]["tier"], 0)
        self.assertEqual(o["limits"], [{
            "name": "payments-daily", "key": ["agent-payments"],
            "used": "250.00", "max": "20000.00", "currency": "USD",
            "window": 86400, "counts": True, "adds": "999.99",
            "holds": True, "frees_at": None}])
        st, _, o = self.explain({"principal": "agent-payments",
                                 "tool": "crm.lookup"})
        EXPLAIN.validate(o)
        self.assertEqual([(i["name"], i["used"], i["holds"])
                          for i in o["limits"]],
                         [("crm-hourly", 3, True), ("crm-all", 5, True)])
        # a call the broker would refuse with a 400: no decision
        st, _, o = self.explain({"principal": "agent-payments",
                                 "tool": "payments.transfer",
                                 "args": {"amount": "5", "currency": "USD"},
                                 "amount": {"value": "6",
                                            "currency": "USD"}})
        EXPLAIN.validate(o)
        self.assertEqual((o["decision"], o["reason_code"]),
                         (None, "amount_mismatch"))
        self.assertEqual(self.state(), before)

    def test_explain_is_the_operators_and_reads_a_call_like_an_intent(self):
        call = {"principal": "agent-payments", "tool": "crm.lookup"}
        for who in ("agent-payments", "approver-alice"):
            st, _, err = self.explain(call, who)
            self.assertEqual((st, err["error"]), (403, "forbidden"), who)
        for body, what in (({"tool": "crm.lookup"}, "principal"),
                           ({"principal": "x", "tool": "Bad Tool"}, "tool"),
                           (dict(call, args=[1]), "args"),
                           (dict(call, args={"n": 9007199254740993}), "args"),
                           (dict(call, frob=1), "frob")):
            st, _, err = self.explain(body)
            ERROR.validate(err)
            self.assertEqual((st, err["error"]), (400, "bad_request"), body)
            self.assertIn(what, err["message"])
        st, _, err = self.explain(dict(call, amount={"value": "1e3",
                                                     "currency": "USD"}))
        self.assertEqual((st, err["error"]), (400, "invalid_amount"))

    def test_toolgatectl_policy_explain_online_offline_and_on_a_file(self):
        b = self.broker
        args = json.dumps({"to": PAYEE, "amount": "999.99",
                           "currency": "USD"})
        argv = ("policy", "explain", "--agent", "agent-payments", "--tool",
                "payments.transfer", "--args", args)
        online = b.ctl("--json", *argv, identity="operator-olga")
        self.assertEqual(online.returncode, 0, online.stderr)
        offline = b.ctl_db("--json", *argv)
        self.assertEqual(offline.returncode, 0, offline.stderr)
        self.assertEqual(json.loads(online.stdout), json.loads(offline.stdout))
        human = b.ctl(*argv, identity="operator-olga")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertRegex(human.stdout, r"(?m)^decision +allow \(policy_allow\)")
        self.assertRegex(human.stdout, r"(?m)^payments-daily +\[\"agent-"
                         r"payments\"\] +250\.00 USD +999\.99 USD +20000\.00 "
                         r"USD +1d00h +yes")
        # a policy not yet applied, with this database's usage
        tmp = tempfile.mkdtemp(prefix="test_limits.")
        self.addCleanup(shutil.rmtree, tmp, True)
        lower = with_limits()
        lower["limits"][0]["max_amount"] = "1000.00"
        path = os.path.join(tmp, "lower.json")
        with open(path, "w") as f:
            json.dump(lower, f)
        p = b.ctl_db("--json", *argv, "--file", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        o = json.loads(p.stdout)
        EXPLAIN.validate(o)
        self.assertEqual((o["decision"], o["policy_version"],
                          o["limit"]["used"], o["limit"]["max"]),
                         ("deny", None, "250.00", "1000.00"), o)
        # the file alone: usage unknown, the call judged alone
        p = subprocess.run([harness.CTL, "--json", *argv, "--file", path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        o = json.loads(p.stdout)
        self.assertEqual((o["decision"], o["limits"][0]["used"]),
                         ("allow", None))
        p = b.ctl(*argv, identity="agent-payments")
        self.assertEqual(p.returncode, 1)
        self.assertIn("forbidden", p.stderr)
        p = b.ctl("policy", "explain", "--tool", "crm.lookup",
                  identity="operator-olga")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--agent is required", p.stderr)


@harness.sqlite_only("the benchmark's fixture writes a SQLite file")
class Prefill(unittest.TestCase):
    """The benchmark's fixture writes the usage the broker would count."""

    def dump(self, db):
        return (table_rows(db, "SELECT name, key, agent, n, whole, micro, "
                           "oldest, newest FROM limit_usage "
                           "ORDER BY name, key"),
                table_rows(db, "SELECT u.name, u.key, b.at, b.n, b.whole, "
                           "b.micro FROM limit_buckets b JOIN limit_usage u "
                           "ON u.id = b.usage_id ORDER BY 1, 2, 3"))

    def test_prefilled_usage_is_what_a_recount_finds(self):
        tmp = tempfile.mkdtemp(prefix="test_limits-prefill.")
        self.addCleanup(shutil.rmtree, tmp, True)
        prefill = os.path.join(harness.ROOT, "tests", "bench", "prefill.py")
        pol, db = os.path.join(tmp, "p.json"), os.path.join(tmp, "a.db")

        def run(*argv):
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        key = os.path.join(harness.pki(), "audit.key")
        run(sys.executable, prefill, "policy", pol, "--principals", "40",
            "--rules", "200", "--limits", "10")
        run(harness.CTL, "--db", db, "--audit-key", key, "policy", "apply",
            pol)
        # 3000 intents over 30 days are 864 s apart: none is near enough
        # to a window's edge (60 s to 7 days) for the seconds between the
        # prefill and the recount below to matter
        run(sys.executable, prefill, "db", db, "--intents", "3000",
            "--audit-key", key)
        prefilled = self.dump(db)
        self.assertGreater(len(prefilled[0]), 10)
        self.assertGreater(len(prefilled[1]), 1000)
        # the broker counts the same limits afresh when a policy adds them
        con = sqlite3.connect(db)
        con.executescript("DELETE FROM limit_buckets; DELETE FROM "
                          "limit_usage; DELETE FROM limit_defs;")
        con.close()
        # other bytes, or applying the very bytes in force is a no-op
        with open(pol, "a") as f:
            f.write("\n")
        run(harness.CTL, "--db", db, "--audit-key", key, "policy", "apply",
            pol)
        self.assertEqual(self.dump(db), prefilled)
        run(harness.CTL, "--db", db, "audit", "verify")


class Readme(unittest.TestCase):
    def test_readme_split_payment_walkthrough_runs_as_written(self):
        with open(os.path.join(harness.ROOT, "README.md")) as f:
            text = f.read()
        blocks = re.findall(r"<!-- tested: split-payment -->\n```sh\n(.*?)```",
                            text, re.S)
        self.assertEqual(len(blocks), 1)
        tmp = tempfile.mkdtemp(prefix="test_limits-readme.")
        self.addCleanup(shutil.rmtree, tmp, True)
        with harness.Broker() as b:
            os.symlink(b.pki, os.path.join(tmp, "dev-pki"))
            k = os.path.join(tmp, "dev-pki")
            env = dict(os.environ, TOOLGATE_URL=b.url,
                       TOOLGATE_CA=os.path.join(k, "ca.pem"),
                       TOOLGATE_CERT=os.path.join(k, "agent-payments.pem"),
                       TOOLGATE_KEY=os.path.join(k, "agent-payments.key"),
                       PATH=os.path.dirname(harness.CTL) + os.pathsep +
                       os.environ["PATH"])
            env.pop("TOOLGATE_DB", None)
            p = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0]],
                               cwd=tmp, env=env, capture_output=True,
                               text=True, timeout=300)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out + p.stderr)
        self.assertRegex(out, r"(?m)^ +20 allowed$")
        self.assertRegex(out, r"(?m)^ +30 denied$")
        self.assertRegex(out, r"payments-daily +\[\"agent-payments\"\] "
                         r"+19999\.80 USD +20000\.00 USD")
        self.assertIn("exit 1", out)
        self.assertIn("denied: limit_exceeded: over the limit "
                      "payments-daily: 19999.80 of 20000.00 USD", p.stderr)
        self.assertRegex(out, r"(?m)^decision +deny \(limit_exceeded\)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
