"""
test_redeem: POST /v1/grants/redeem end to end (CONTRACT §3 Grants, §4
kill switch, §6) against a real toolgated: a grant is redeemed once by an
identity whose role may redeem its tool; again, by anyone else, forged,
tampered, expired or under a covering kill switch it is refused with the
contract's code; two tool processes racing on one grant get exactly one
200; each redemption leaves one audit record.
"""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import b64url, b64url_decode, jws_parts, sign  # noqa: E402


class RedeemCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(threads=4)
        cls.broker.__enter__()
        cls.pki = cls.broker.pki
        cls.grant_key = os.path.join(cls.pki, "grant.key")

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def setUp(self):
        self.pay = self.broker.client("agent-payments")
        self.tool = self.broker.client("tool-payments")
        self.olga = self.broker.client("operator-olga")

    def tearDown(self):
        for c in (self.pay, self.tool, self.olga):
            c.close()

    # -- helpers

    def allowed(self, value="12.50", args=None):
        """A fresh allowed payments.transfer intent: (id, grant)."""
        kw = harness.payment(value, **(args or {}))
        st, _, body = self.pay.submit("payments.transfer", **kw)
        self.assertEqual((st, body.get("status")), (200, "allowed"), body)
        return body["id"], body["grant"]

    def redeem(self, client, grant, raw=None, content_type="application/json"):
        body = raw if raw is not None else json.dumps({"grant": grant})
        return client.request("POST", "/v1/grants/redeem", body=body,
                              content_type=content_type)

    def assertError(self, answer, status, code):
        st, _, body = answer
        self.assertEqual((st, body.get("error") if isinstance(body, dict)
                          else body), (status, code),
                         "wanted %d %s, got %d %r" % (status, code, st, body))
        self.assertIsInstance(body.get("message"), str)

    def trip(self, **kw):
        st, _, body = self.olga.request("POST", "/v1/killswitch",
                                        body=json.dumps(kw),
                                        content_type="application/json")
        self.assertEqual(st, 201, body)
        return body["id"]

    def reset(self, ks_id):
        st, _, body = self.olga.request(
            "POST", "/v1/killswitch/%d/reset" % ks_id,
            body=json.dumps({"reason": "test over"}),
            content_type="application/json")
        self.assertEqual(st, 200, body)

    def audit(self, after=0):
        items = []
        while True:
            st, _, body = self.olga.get("/v1/audit?after=%d&limit=1000"
                                        % after)
            self.assertEqual(st, 200, body)
            items += body["items"]
            if not body["items"]:
                return items
            after = body["next_after"]

    def resign(self, grant, **changes):
        """The grant's claims with changes, signed with the real grant key
        and header: what the broker itself would have issued."""
        header, payload, _ = jws_parts(grant)
        c = json.loads(payload)
        c.update(changes)
        return sign(self.grant_key, c, header=header)


class TestRedeem(RedeemCase):
    def test_first_redemption_is_200_then_409(self):
        intent_id, grant = self.allowed(args={"to": "acct-1"})
        st, _, body = self.redeem(self.tool, grant)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["status"], "redeemed")
        self.assertEqual(body["intent_id"], intent_id)
        self.assertEqual(body["tool"], "payments.transfer")
        self.assertEqual(body["agent"], "agent-payments")
        self.assertRegex(body["redeemed_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertError(self.redeem(self.tool, grant), 409,
                         "already_redeemed")
        # A fresh connection (maybe another thread) agrees.
        other = self.broker.client("tool-payments")
        self.assertError(self.redeem(other, grant), 409, "already_redeemed")
        other.close()
        # The intent says so, and no longer hands out grants.
        st, _, view = self.pay.get("/v1/intents/" + intent_id)
        self.assertEqual(st, 200, view)
        self.assertEqual(view["status"], "allowed")
        self.assertIn("redeemed_at", view)
        self.assertNotIn("grant", view)
        # Exactly one audit record, by the tool.
        recs = [r for r in self.audit() if r["event"] == "redemption"
                and r["intent_id"] == intent_id]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["actor"], "tool-payments")
        self.assertEqual(recs[0]["details"],
                         {"by": "tool-payments", "tool": "payments.transfer"})

    def test_a_regranted_copy_is_still_single_use(self):
        # GET hands out a freshly signed grant with the same jti: using
        # one uses them all.
        intent_id, grant = self.allowed()
        st, _, view = self.pay.get("/v1/intents/" + intent_id)
        self.assertEqual(st, 200, view)
        second = view["grant"]
        self.assertEqual(self.redeem(self.tool, second)[0], 200)
        self.assertError(self.redeem(self.tool, grant), 409,
                         "already_redeemed")

    def test_caller_without_redeem_role_is_403_not_permitted(self):
        _, grant = self.allowed()
        for name in ("agent-payments", "approver-alice", "operator-olga",
                     "agent-support"):
            c = self.broker.client(name)
            self.assertError(self.redeem(c, grant), 403, "not_permitted")
            c.close()
        # The refusals did not use it up.
        self.assertEqual(self.redeem(self.tool, grant)[0], 200)

    def test_tool_outside_redeem_patterns_is_403_not_permitted(self):
        # tool-payments may redeem payments.* only: a crm.lookup grant is
        # not for it.
        st, _, body = self.pay.submit("crm.lookup")
        self.assertEqual(st, 200, body)
        self.assertError(self.redeem(self.tool, body["grant"]), 403,
                         "not_permitted")

    def test_tampered_grant_is_401(self):
        _, grant = self.allowed(args={"to": "acct-1"})
        h, p, s = grant.split(".")
        claims = json.loads(b64url_decode(p))
        claims["args"] = {"to": "acct-evil"}
        forged = [
            h + "." + b64url(json.dumps(claims)) + "." + s,   # payload
            h + "." + p + "." + s[:-4] + ("AAAA" if s[-4:] != "AAAA"
                                          else "BBBB"),   # signature
            h + "." + p + "." + s + "=",                  # padding
            h + "." + p,                                  # shape
            "not a jws",
        ]
        for tok in forged:
            self.assertError(self.redeem(self.tool, tok), 401,
                             "invalid_grant")
        # Same claims, signed by a key that is not the grant key.
        other = sign(os.path.join(self.pki, "agent-payments.key"),
                     claims, header=jws_parts(grant)[0])
        self.assertError(self.redeem(self.tool, other), 401, "invalid_grant")
        # Header games: alg none / HS256 keyed with anything, wrong kid.
        header = jws_parts(grant)[0]
        for alg, kw in (("none", {}), ("HS256", {"hmac_key": b"k"})):
            hdr = dict(header, alg=alg)
            tok = sign(None, claims, alg=alg, header=hdr, **kw)
            self.assertError(self.redeem(self.tool, tok), 401,
                             "invalid_grant")
        tok = sign(self.grant_key, claims, header=dict(header, kid="x"))
        self.assertError(self.redeem(self.tool, tok), 401, "invalid_grant")
        # Our key, but not our issuer.
        tok = self.resign(grant, iss="someone-else")
        self.assertError(self.redeem(self.tool, tok), 401, "invalid_grant")
        # Nothing above used the grant up.
        self.assertEqual(self.redeem(self.tool, grant)[0], 200)

    def test_expired_grant_is_401(self):
        _, grant = self.allowed()
        now = int(time.time())
        for exp in (now - 1, now - 3600, now):
            tok = self.resign(grant, iat=exp - 60, exp=exp)
            self.assertError(self.redeem(self.tool, tok), 401,
                             "invalid_grant")
        # exp as a string is malformed, not "later".
        tok = self.resign(grant, exp=str(now + 60))
        self.assertError(self.redeem(self.tool, tok), 401, "invalid_grant")
        # The same claims re-signed with a future exp do redeem: the key
        # and header above were right, only the time was wrong.
        tok = self.resign(grant, exp=now + 30)
        self.assertEqual(self.redeem(self.tool, tok)[0], 200)

    def test_bad_bodies(self):
        _, grant = self.allowed()
        self.assertError(self.redeem(self.tool, grant,
                                     content_type="text/plain"),
                         415, "unsupported_media_type")
        for raw in ("", "[]", "{", '{"grant": 1}', "{}",
                    json.dumps({"grant": grant, "extra": 1}),
                    '{"grant": "a", "grant": "b"}'):
            self.assertError(self.redeem(self.tool, None, raw=raw), 400,
                             "bad_request")
        st, _, body = self.redeem(self.tool, None, raw=json.dumps(
            {"grant": grant, "intent": "x"}))
        self.assertIn("intent", body["message"])
        self.assertEqual(self.redeem(self.tool, grant)[0], 200)

    def test_wrong_method_is_405(self):
        st, _, body = self.tool.get("/v1/grants/redeem")
        self.assertEqual((st, body["error"]), (405, "method_not_allowed"))


class TestRedeemUnderKillSwitch(RedeemCase):
    def test_covering_switches_refuse_and_reset_restores(self):
        for kw in ({"scope": "global"},
                   {"scope": "agent", "target": "agent-payments"},
                   {"scope": "tool", "target": "payments.transfer"},
                   {"scope": "tool", "target": "payments.*"}):
            with self.subTest(**kw):
                _, grant = self.allowed()
                ks = self.trip(reason="redeem test", **kw)
                try:
                    self.assertError(self.redeem(self.tool, grant), 403,
                                     "kill_switch")
                    # On every connection, whichever thread serves it.
                    for _ in range(4):
                        c = self.broker.client("tool-payments")
                        self.assertError(self.redeem(c, grant), 403,
                                         "kill_switch")
                        c.close()
                finally:
                    self.reset(ks)
                # Not used up by the refusals.
                self.assertEqual(self.redeem(self.tool, grant)[0], 200)

    def test_switches_that_do_not_cover_leave_it_alone(self):
        for kw in ({"scope": "agent", "target": "agent-support"},
                   {"scope": "tool", "target": "payments.refund",
                    "force": True},
                   {"scope": "tool", "target": "crm.*"}):
            with self.subTest(**kw):
                _, grant = self.allowed()
                ks = self.trip(reason="unrelated", **kw)
                try:
                    self.assertEqual(self.redeem(self.tool, grant)[0], 200)
                finally:
                    self.reset(ks)

    def test_not_permitted_comes_before_the_switch(self):
        # Who may not redeem learns nothing about switches.
        _, grant = self.allowed()
        ks = self.trip(scope="global", reason="x")
        try:
            self.assertError(self.redeem(self.pay, grant), 403,
                             "not_permitted")
        finally:
            self.reset(ks)


class TestConcurrentRedeem(RedeemCase):
    ROUNDS = 25
    RACERS = 3

    def test_exactly_one_success_per_grant(self):
        clients = [self.broker.client("tool-payments")
                   for _ in range(self.RACERS)]
        try:
            for rnd in range(self.ROUNDS):
                intent_id, grant = self.allowed()
                barrier = threading.Barrier(self.RACERS)
                results = [None] * self.RACERS

                def race(i):
                    barrier.wait()
                    st, _, body = self.redeem(clients[i], grant)
                    results[i] = (st, body.get("error") if st != 200
                                  else body.get("status"))

                threads = [threading.Thread(target=race, args=(i,))
                           for i in range(self.RACERS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(30)
                ok = [r for r in results if r == (200, "redeemed")]
                lost = [r for r in results if r == (409, "already_redeemed")]
                self.assertEqual((len(ok), len(lost)),
                                 (1, self.RACERS - 1),
                                 "round %d: %r" % (rnd, results))
        finally:
            for c in clients:
                c.close()
        # One audit record per grant, and the chain is intact.
        recs = [r for r in self.audit() if r["event"] == "redemption"]
        ids = [r["intent_id"] for r in recs]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertGreaterEqual(len(ids), self.ROUNDS)
        p = self.broker.ctl_db("audit", "verify")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
