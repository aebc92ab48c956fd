"""
The human-approval queue against a real broker: every approval error code,
N-of-M with distinct approvers, rejection, expiry, long-poll wake-up and
timeout, and concurrent approvers that must never release twice.
"""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def example_policy(**changes):
    with open(harness.EXAMPLE_POLICY) as f:
        p = json.load(f)
    for fn in changes.values():
        fn(p)
    return p


def transfer_rule(p):
    return p["roles"]["payments-agent"]["rules"][0]


class Approvals(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # operator-olga also approves payments so three approvers can race
        # on a 2-approval intent.
        def olga_approves(p):
            p["principals"]["operator-olga"]["roles"].append(
                "finance-approver")
        cls.broker = harness.Broker(policy=example_policy(o=olga_approves))
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def client(self, name):
        return self.broker.client(name)

    def pending(self, value="5000.00", agent="agent-payments"):
        st, _, body = self.client(agent).submit(
            "payments.transfer", **harness.payment(value),
            reason="invoice 42")
        self.assertEqual(st, 202, body)
        return body["id"]

    def act(self, who, iid, verb="approve", body=None):
        data = json.dumps(body if body is not None else {})
        return self.client(who).request(
            "POST", "/v1/approvals/%s/%s" % (iid, verb), body=data,
            content_type="application/json")

    def get(self, who, iid, wait=None):
        path = "/v1/intents/" + iid + ("?wait=%d" % wait if wait else "")
        return self.client(who).request("GET", path)

    def test_queue_lists_pending_oldest_first(self):
        a, b = self.pending(), self.pending("6000.00")
        st, _, body = self.client("approver-alice").request(
            "GET", "/v1/approvals?status=pending&limit=1000")
        self.assertEqual(st, 200)
        ids = [i["id"] for i in body["items"]]
        self.assertLess(ids.index(a), ids.index(b))
        item = body["items"][ids.index(a)]
        self.assertEqual(item["agent_reason"], "invoice 42")
        self.assertEqual(item["approvals_required"], 1)
        self.assertEqual(item["rule"]["tier"], 1)
        self.assertNotIn("grant", item)
        st, _, body = self.client("approver-alice").request(
            "GET", "/v1/approvals?status=bogus")
        self.assertEqual((st, body["error"]), (400, "bad_request"))

    def test_agents_and_tool_services_are_forbidden(self):
        iid = self.pending()
        for who in ("agent-payments", "agent-support", "tool-payments"):
            st, _, body = self.act(who, iid)
            self.assertEqual((st, body["error"]), (403, "forbidden"), who)
            st, _, body = self.client(who).request("GET", "/v1/approvals")
            self.assertEqual((st, body["error"]), (403, "forbidden"), who)

    def test_wrong_approver_group(self):
        iid = self.pending()
        st, _, body = self.act("approver-carol", iid)
        self.assertEqual((st, body["error"]), (403, "not_an_approver"))
        st, _, body = self.act("approver-carol", iid, "reject",
                               {"reason": "no"})
        self.assertEqual((st, body["error"]), (403, "not_an_approver"))

    def test_self_approval(self):
        # An agent that is also an approver of its own rule.
        def agent_approves(p):
            p["principals"]["agent-payments"]["roles"].append(
                "finance-approver")
        with harness.Broker(policy=example_policy(a=agent_approves)) as b:
            c = b.client("agent-payments")
            st, _, body = c.submit("payments.transfer",
                                   **harness.payment("5000.00"))
            self.assertEqual(st, 202, body)
            st, _, err = c.request(
                "POST", "/v1/approvals/%s/approve" % body["id"], body="{}",
                content_type="application/json")
            self.assertEqual((st, err["error"]), (403, "self_approval"))

    def test_one_approval_releases_with_grant_for_the_agent_only(self):
        iid = self.pending()
        st, _, body = self.act("approver-alice", iid, body={"comment": "ok"})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["status"], "allowed")
        self.assertNotIn("grant", body)
        self.assertEqual(body["approvals"][0]["by"], "approver-alice")
        self.assertEqual(body["approvals"][0]["comment"], "ok")
        st, _, view = self.get("agent-payments", iid)
        self.assertEqual(view["status"], "allowed")
        jwks = self.client("agent-payments").get("/v1/jwks")[2]
        g = harness.verify_grant(view["grant"], jwks)
        self.assertEqual(g["approvers"], ["approver-alice"])
        self.assertEqual(g["jti"], iid)
        self.assertEqual(g["exp"] - g["iat"], 60)
        st, _, view = self.get("approver-bob", iid)
        self.assertNotIn("grant", view)
        st, _, body = self.act("approver-bob", iid)
        self.assertEqual((st, body["error"]), (409, "already_decided"))

    def test_two_of_n_counts_each_approver_once(self):
        iid = self.pending("50000.00")
        st, _, body = self.act("approver-alice", iid)
        self.assertEqual((st, body["status"]), (200, "pending"))
        self.assertEqual(len(body["approvals"]), 1)
        st, _, body = self.act("approver-alice", iid)
        self.assertEqual((st, body["error"]), (409, "already_approved"))
        st, _, body = self.act("approver-bob", iid)
        self.assertEqual((st, body["status"]), (200, "allowed"))
        view = self.get("agent-payments", iid)[2]
        jwks = self.client("agent-payments").get("/v1/jwks")[2]
        g = harness.verify_grant(view["grant"], jwks)
        self.assertEqual(g["approvers"], ["approver-alice", "approver-bob"])

    def test_reject_needs_a_reason_and_closes(self):
        iid = self.pending()
        for body in ({}, {"reason": ""}, {"reason": 5},
                     {"reason": "x", "extra": 1}):
            st, _, err = self.act("approver-alice", iid, "reject", body)
            self.assertEqual((st, err["error"]), (400, "bad_request"), body)
        st, _, body = self.act("approver-alice", iid, "reject",
                               {"reason": "not on the invoice list"})
        self.assertEqual((st, body["status"]), (200, "rejected"))
        view = self.get("agent-payments", iid)[2]
        self.assertEqual(view["status"], "rejected")
        self.assertEqual(view["closed_by"], "approver-alice")
        self.assertEqual(view["closed_reason"], "not on the invoice list")
        self.assertNotIn("grant", view)
        st, _, err = self.act("approver-bob", iid)
        self.assertEqual((st, err["error"]), (409, "already_decided"))

    def test_approvals_are_frozen_under_a_kill_switch(self):
        iid = self.pending()
        olga = self.client("operator-olga")
        st, _, sw = olga.request(
            "POST", "/v1/killswitch", body=json.dumps(
                {"scope": "agent", "target": "agent-payments",
                 "reason": "test freeze"}),
            content_type="application/json")
        self.assertEqual(st, 201, sw)
        try:
            st, _, err = self.act("approver-alice", iid)
            self.assertEqual((st, err["error"]), (423, "kill_switch"))
            view = self.get("agent-payments", iid)[2]
            self.assertEqual(view["status"], "pending")
            self.assertEqual(view["approvals"], [])
        finally:
            st, _, _ = olga.request(
                "POST", "/v1/killswitch/%d/reset" % sw["id"],
                body=json.dumps({"reason": "test over"}),
                content_type="application/json")
            self.assertEqual(st, 200)
        st, _, body = self.act("approver-alice", iid)
        self.assertEqual((st, body["status"]), (200, "allowed"))

    def test_unknown_intent_is_404(self):
        st, _, body = self.act("approver-alice", "in_" + "0" * 32)
        self.assertEqual((st, body["error"]), (404, "not_found"))

    def test_long_poll_is_woken_by_an_approval(self):
        iid = self.pending()
        out = {}

        def wait():
            t = time.monotonic()
            out["r"] = self.get("agent-payments", iid, wait=20)
            out["t"] = time.monotonic()

        th = threading.Thread(target=wait)
        th.start()
        time.sleep(0.5)
        approved_at = time.monotonic()
        st, _, _ = self.act("approver-bob", iid)
        self.assertEqual(st, 200)
        th.join(25)
        self.assertFalse(th.is_alive())
        st, _, view = out["r"]
        self.assertEqual((st, view["status"]), (200, "allowed"))
        self.assertIn("grant", view)
        self.assertLess(out["t"] - approved_at, 1.0)

    def test_long_poll_times_out_still_pending(self):
        iid = self.pending()
        t = time.monotonic()
        st, _, view = self.get("agent-payments", iid, wait=2)
        took = time.monotonic() - t
        self.assertEqual((st, view["status"]), (200, "pending"))
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 4)
        st, _, err = self.client("agent-payments").request(
            "GET", "/v1/intents/%s?wait=61" % iid)
        self.assertEqual((st, err["error"]), (400, "bad_request"))

    def test_waiter_that_hangs_up_is_cleaned_up(self):
        iid = self.pending()
        c = self.client("agent-payments")
        c.conn.request("GET", "/v1/intents/%s?wait=30" % iid)
        time.sleep(0.3)
        c.conn.close()
        st, _, _ = self.act("approver-alice", iid)
        self.assertEqual(st, 200)
        st, _, body = self.client("agent-payments").get("/healthz")
        self.assertEqual(st, 200)

    def test_concurrent_approvers_release_once(self):
        for round_ in range(15):
            iid = self.pending()
            self._race(iid, ["approver-alice", "approver-bob",
                             "operator-olga"], want_ok=1)

    def test_concurrent_approvers_on_two_of_n(self):
        for round_ in range(10):
            iid = self.pending("50000.00")
            results = self._race(iid, ["approver-alice", "approver-bob",
                                       "operator-olga"], want_ok=2)
            allowed = [b for s, b in results if s == 200 and
                       b["status"] == "allowed"]
            self.assertEqual(len(allowed), 1)
            view = self.get("agent-payments", iid)[2]
            self.assertEqual(len(view["approvals"]), 2)

    def _race(self, iid, who, want_ok):
        clients = [self.client(w) for w in who]
        for c in clients:        # handshake before the start line
            c.get("/healthz")
        start = threading.Barrier(len(who))
        results = [None] * len(who)

        def go(i):
            start.wait()
            st, _, body = clients[i].request(
                "POST", "/v1/approvals/%s/approve" % iid, body="{}",
                content_type="application/json")
            results[i] = (st, body)

        ths = [threading.Thread(target=go, args=(i,))
               for i in range(len(who))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(30)
        ok = [r for r in results if r[0] == 200]
        self.assertEqual(len(ok), want_ok, results)
        for st, body in results:
            if st != 200:
                self.assertEqual((st, body["error"]),
                                 (409, "already_decided"))
        return results


class Expiry(unittest.TestCase):

    def test_expired_intent_cannot_be_approved(self):
        def short_ttl(p):
            transfer_rule(p)["approval_ttl"] = 1
        with harness.Broker(policy=example_policy(t=short_ttl)) as b:
            agent = b.client("agent-payments")
            st, _, body = agent.submit("payments.transfer",
                                       **harness.payment("5000.00"))
            self.assertEqual(st, 202)
            iid = body["id"]
            # Approve right after expires_at, whether or not the sweeper
            # has run yet: always already_decided.
            time.sleep(1.2)
            st, _, err = b.client("approver-alice").request(
                "POST", "/v1/approvals/%s/approve" % iid, body="{}",
                content_type="application/json")
            self.assertEqual((st, err["error"]), (409, "already_decided"))
            st, _, body = agent.submit("payments.transfer",
                                       **harness.payment("5000.00"))
            other = body["id"]
            time.sleep(2.5)        # the sweeper runs every second
            view = agent.get("/v1/intents/" + other)[2]
            self.assertEqual(view["status"], "expired")
            self.assertNotIn("grant", view)
            st, _, items = b.client("approver-alice").request(
                "GET", "/v1/approvals?status=expired")
            self.assertIn(other, [i["id"] for i in items["items"]])
            b.stop()
            n = b.query("SELECT count(*) FROM audit WHERE event = "
                        "'expiry' AND intent_id IN (?, ?)",
                        (iid, other))[0][0]
            self.assertEqual(n, 2)       # one record each, never two
            p = b.ctl_db("audit", "verify")
            self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
