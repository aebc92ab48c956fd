"""
test_policy_args: the policy sees the whole call (CONTRACT §8.1, §8.2, §8
intro) through a real toolgated over real mTLS on a real SQLite file.

The declared-vs-executed attack is refused: an agent that declares 1.00
USD while args say 50000 gets 400 amount_mismatch, nothing is stored and
its jti stays unused; the same args without the lie are judged by the
amount in args.  The amount found in args is the call's amount for the
tiers, the answer, the approver's queue, the audit record and the grant
the tool verifies (scaled minor units included), read from the number's
own digits.  Conditions on args refuse with args_not_allowed naming the
pointer, and deny rules answer denied_by_rule with the rule.  Every answer
is validated against proto/ schemas.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import claims, payment  # noqa: E402

DECISION = harness.schema("decision.schema.json")
ERROR = harness.schema("error.schema.json")
GRANT = harness.schema("grant-claims.schema.json")

BLOCKED = "DE00000000000000000000"


def policy():
    """policies/example.json plus payments.payout (minor units, payees
    starting with DE, a blocked payee) and a deny rule for refunds."""
    p = harness.load_example_policy()
    p["roles"]["payments-agent"]["rules"] += [
        {"tool": "payments.payout",
         "amount_from": {"value": "/cents", "currency": "EUR", "scale": 2},
         "args": {"/to": {"prefix": "DE", "max_length": 34},
                  "/items": {"each": {"max": "100"}}},
         "currencies": {"EUR": [{"max": "1000.00", "approvals": 0},
                                {"max": "5000.00", "approvals": 1}]},
         "approvers": ["finance-approver"]},
        {"tool": "payments.payout", "effect": "deny",
         "args": {"/to": {"one_of": [BLOCKED]}}},
        {"tool": "payments.refund", "effect": "deny"},
    ]
    return p


class PolicyArgs(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=policy())
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def setUp(self):
        self.pay = self.broker.client("agent-payments")

    def post(self, c):
        st, _, body = self.pay.post_intent(self.pay.sign(c))
        self.assertIsInstance(body, dict, body)
        return st, body

    def decided(self, c, status, decision, code):
        st, body = self.post(c)
        DECISION.validate(body)
        self.assertEqual((st, body["decision"], body["reason_code"]),
                         (status, decision, code), body)
        return body

    def refused(self, c, status, code):
        st, body = self.post(c)
        ERROR.validate(body)
        self.assertEqual((st, body["error"]), (status, code), body)
        self.assertNotIn("id", body)
        return body

    def audit(self):
        olga = self.broker.client("operator-olga")
        st, _, page = olga.get("/v1/audit?after=0&limit=1000")
        olga.close()
        self.assertEqual(st, 200, page)
        return page["items"]

    def jwks(self):
        return self.pay.get("/v1/jwks")[2]

    # -- the declared amount is not what the tool executes

    def test_declared_1_usd_while_args_say_50000_is_refused(self):
        before = len(self.audit())
        c = claims("agent-payments", "payments.transfer",
                   amount={"value": "1.00", "currency": "USD"},
                   args={"to": "DE89370400440532013000", "amount": "50000",
                         "currency": "USD"})
        body = self.refused(c, 400, "amount_mismatch")
        self.assertIn("1 USD", body["message"])
        self.assertIn("50000 USD", body["message"])
        # nothing stored, nothing audited, the jti not burnt
        self.assertEqual(len(self.audit()), before)
        st, body = self.post(dict(c, amount={"value": "50000.00",
                                             "currency": "USD"}))
        self.assertEqual((st, body.get("decision")), (202, "pending"), body)
        self.assertEqual(body["amount"], {"value": "50000",
                                          "currency": "USD"})
        # another currency is another amount
        self.refused(claims("agent-payments", "payments.transfer",
                            amount={"value": "5.00", "currency": "EUR"},
                            **payment("5.00")), 400, "amount_mismatch")

    def test_args_alone_decide_by_the_tiers(self):
        body = self.decided(claims("agent-payments", "payments.transfer",
                                   **payment("50000")),
                            202, "pending", "approval_required")
        self.assertEqual(body["approvals_required"], 2)
        self.assertEqual(body["amount"], {"value": "50000",
                                          "currency": "USD"})
        self.assertEqual(body["rule"]["tier"], 2)
        self.assertEqual(body["rule"]["currency"], "USD")
        self.decided(claims("agent-payments", "payments.transfer",
                            **payment("100000.01")),
                     403, "deny", "amount_over_limit")
        self.decided(claims("agent-payments", "payments.transfer",
                            **payment("999.99", "EUR")),
                     202, "pending", "approval_required")
        body = self.decided(claims("agent-payments", "payments.transfer",
                                   **payment("5", "JPY")),
                            403, "deny", "currency_not_allowed")
        self.assertEqual(body["amount"], {"value": "5", "currency": "JPY"})

    def test_a_claim_without_the_amount_in_args_is_amount_required(self):
        body = self.decided(claims("agent-payments", "payments.transfer",
                                   amount={"value": "1.00",
                                           "currency": "USD"},
                                   args={"to": "x"}),
                            403, "deny", "amount_required")
        # what the agent declared is kept for the record
        self.assertEqual(body["amount"], {"value": "1.00", "currency": "USD"})
        self.decided(claims("agent-payments", "payments.transfer",
                            args={"amount": "5"}),
                     403, "deny", "amount_required")

    def test_numbers_in_args_are_read_from_their_digits(self):
        # 12345678901234.56 as a double is 12345678901234.560546875
        body = self.decided(
            claims("agent-payments", "payments.transfer",
                   args={"amount": 0.1, "currency": "USD"}),
            200, "allow", "policy_allow")
        self.assertEqual(body["amount"], {"value": "0.1", "currency": "USD"})
        raw = ('{"iss":"agent-payments","aud":"toolgate","jti":"n-%d",'
               '"iat":%d,"exp":%d,"tool":"payments.transfer",'
               '"args":{"amount":%s,"currency":"USD"}}')
        now = int(time.time())
        for i, (num, st, code, value) in enumerate((
                ("12345678901234.56", 403, "amount_over_limit",
                 "12345678901234.56"),
                ("5000.00", 202, "approval_required", "5000.00"),
                ("1e3", 400, "invalid_amount", None),
                ("-5", 400, "invalid_amount", None),
                ("1.1234567", 400, "invalid_amount", None))):
            with self.subTest(number=num):
                tok = self.pay.sign((raw % (now * 10 + i, now, now + 60,
                                            num)).encode())
                status, _, body = self.pay.post_intent(tok)
                self.assertEqual(status, st, body)
                if value is None:
                    ERROR.validate(body)
                    self.assertEqual(body["error"], code)
                    self.assertIn("/amount", body["message"])
                else:
                    DECISION.validate(body)
                    self.assertEqual(body["reason_code"], code)
                    self.assertEqual(body["amount"]["value"], value)

    def test_the_grant_carries_the_amount_found_in_args(self):
        jwks = self.jwks()
        body = self.decided(claims("agent-payments", "payments.transfer",
                                   **payment("750.50", to="acct-7")),
                            200, "allow", "policy_allow")
        g = harness.verify_grant(body["grant"], jwks)
        GRANT.validate(g)
        self.assertEqual(g["amount"], {"value": "750.50", "currency": "USD"})
        self.assertEqual(g["args"], {"amount": "750.50", "currency": "USD",
                                     "to": "acct-7"})
        # minor units: 123456 cents is 1234.56 EUR, pending one approval
        body = self.decided(claims("agent-payments", "payments.payout",
                                   args={"cents": 123456,
                                         "to": "DE89370400440532013000",
                                         "items": [10, 99.5]}),
                            202, "pending", "approval_required")
        self.assertEqual(body["amount"], {"value": "1234.56",
                                          "currency": "EUR"})
        # the approver sees it, the audit keeps it, the grant carries it
        alice = self.broker.client("approver-alice")
        st, _, q = alice.get("/v1/approvals?status=pending")
        item = [i for i in q["items"] if i["id"] == body["id"]][0]
        self.assertEqual(item["amount"], {"value": "1234.56",
                                          "currency": "EUR"})
        st, _, ans = alice.request(
            "POST", "/v1/approvals/%s/approve" % body["id"], body="{}",
            content_type="application/json")
        self.assertEqual(st, 200, ans)
        alice.close()
        st, _, view = self.pay.get("/v1/intents/" + body["id"])
        g = harness.verify_grant(view["grant"], jwks)
        self.assertEqual(g["amount"], {"value": "1234.56", "currency": "EUR"})
        self.assertEqual(g["args"]["cents"], 123456)
        rec = [r for r in self.audit() if r["intent_id"] == body["id"] and
               r["event"] == "decision"][0]
        self.assertEqual(rec["details"]["amount"],
                         {"value": "1234.56", "currency": "EUR"})

    # -- conditions and deny rules

    def test_args_not_allowed_names_the_pointer(self):
        base = {"cents": 100, "to": "DE89370400440532013000",
                "items": [1]}
        for args, pointer, cond, where in (
                (dict(base, to="FR7630006000011234567890189"), "/to",
                 "prefix", "/to"),
                ({k: v for k, v in base.items() if k != "to"}, "/to",
                 "prefix", "/to"),
                (dict(base, items=[1, 500, 2]), "/items", "max",
                 "/items/1"),
                (dict(base, items="all"), "/items", "each", "/items")):
            with self.subTest(args=args):
                body = self.decided(claims("agent-payments",
                                           "payments.payout", args=args),
                                    403, "deny", "args_not_allowed")
                self.assertEqual(body["rule"]["pointer"], pointer)
                self.assertEqual(body["rule"]["condition"], cond)
                self.assertEqual((body["rule"]["role"],
                                  body["rule"]["index"]),
                                 ("payments-agent", 2))
                self.assertIn("args %s " % where, body["reason"])
                self.assertNotIn("grant", body)

    def test_deny_rules_answer_denied_by_rule(self):
        body = self.decided(claims("agent-payments", "payments.payout",
                                   args={"cents": 100, "to": BLOCKED,
                                         "items": []}),
                            403, "deny", "denied_by_rule")
        self.assertEqual((body["rule"]["role"], body["rule"]["index"],
                          body["rule"]["tool"]),
                         ("payments-agent", 3, "payments.payout"))
        # the deny rule's conditions do not hold: the allow rule decides
        body = self.decided(claims("agent-payments", "payments.payout",
                                   args={"cents": 100,
                                         "to": "DE89370400440532013000",
                                         "items": []}),
                            200, "allow", "policy_allow")
        self.assertEqual(body["amount"], {"value": "1.00",
                                          "currency": "EUR"})
        # a deny rule without conditions (v1 answered no_permission)
        body = self.decided(claims("agent-payments", "payments.refund"),
                            403, "deny", "denied_by_rule")
        self.assertEqual(body["rule"]["index"], 4)
        # denials are stored and audited like any decision
        recs = {r["intent_id"]: r for r in self.audit()
                if r["event"] == "decision"}
        self.assertEqual(recs[body["id"]]["details"]["reason_code"],
                         "denied_by_rule")

    def test_refusals_are_stored_with_the_pointer(self):
        body = self.decided(claims("agent-payments", "payments.payout",
                                   args={"cents": 1, "to": "FR1",
                                         "items": []}),
                            403, "deny", "args_not_allowed")
        row = self.broker.query("SELECT reason_code, reason_text, rule FROM "
                                "intents WHERE id = ?", (body["id"],))[0]
        self.assertEqual(row[0], "args_not_allowed")
        self.assertIn("/to", row[1])
        self.assertEqual(json.loads(row[2])["pointer"], "/to")


if __name__ == "__main__":
    unittest.main()
