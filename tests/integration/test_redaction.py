"""
Redaction: argument fields a policy names under "redact" are stored as
"[redacted]" in the audit log, while the intent view and the grant the tool
receives keep the real values.  Checked against a real broker and the
audit records read both through the API and straight from SQLite.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SECRET_IBAN = "DE89370400440532013000"


class Redaction(unittest.TestCase):

    def test_redacted_in_audit_real_in_grant(self):
        policy = harness.load_example_policy()
        policy["redact"] = {"payments.*": ["iban", "card_number"]}
        with harness.Broker(policy=policy) as b:
            agent = b.client("agent-payments")
            st, _, view = agent.submit(
                "payments.transfer",
                **harness.payment("10.00", claim=True, iban=SECRET_IBAN,
                                  memo="rent"))
            self.assertEqual(st, 200, view)
            self.assertEqual(view["args"]["iban"], SECRET_IBAN)
            jwks = agent.get("/v1/jwks")[2]
            grant = harness.verify_grant(view["grant"], jwks)
            self.assertEqual(grant["args"]["iban"], SECRET_IBAN)
            # A tool outside the pattern keeps its args in the audit log.
            st, _, other = agent.submit("crm.lookup",
                                        args={"iban": "kept"})
            self.assertEqual(st, 200)

            st, _, page = b.client("operator-olga").request(
                "GET", "/v1/audit?after=0&limit=1000")
            self.assertEqual(st, 200)
            by_intent = {r["intent_id"]: r for r in page["items"]
                         if r["event"] == "decision"}
            rec = by_intent[view["id"]]
            self.assertEqual(rec["details"]["args"],
                             {"iban": "[redacted]", "memo": "rent",
                              "amount": "10.00", "currency": "USD"})
            self.assertEqual(by_intent[other["id"]]["details"]["args"],
                             {"iban": "kept"})
            b.stop()
            raw = " ".join(r[0] for r in b.query("SELECT record FROM audit"))
            self.assertNotIn(SECRET_IBAN, raw)
            self.assertIn("[redacted]", raw)
            p = b.ctl_db("audit", "verify")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(any(SECRET_IBAN in line
                                 for line in b.log_lines()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
