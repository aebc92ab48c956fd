"""
test_identity_named: an identity the policy does not know is named
(issue 16 point 3).  The unknown_principal answer says which identity the
broker saw and which policy version lacks it; the log also says where in
the certificate it came from (URI SAN, which counts before the CN, or the
subject CN), so an operator can see why "spiffe://..." is "not in the
policy".  A 403 forbidden on an operator or approver endpoint names it
too.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

URI = "spiffe://toolgate.test/agent-uri"


class Named(harness.BrokerCase, unittest.TestCase):

    def deny(self, who):
        c = self.broker.client(who)
        st, _, body = c.submit("crm.lookup")
        self.assertEqual((st, body["reason_code"]), (403, "unknown_principal"),
                         body)
        return body

    def test_uri_san_identity_is_named_in_answer_and_log(self):
        n = len(self.broker.log_lines())
        body = self.deny("agent-uri")
        self.assertEqual(body["reason"], '"%s" is not a principal of policy '
                         'version 1' % URI)
        # the CN it also carries is not what counted
        line = self.broker.wait_log(r"unknown principal: .*%s" % URI, n)
        self.assertIn("(its URI SAN)", line)
        self.assertNotIn("ignored-cn", line)
        # and the agent reading its own intent sees the same words
        c = self.broker.client("agent-uri")
        st, _, got = c.get("/v1/intents/" + body["id"])
        self.assertEqual((st, got["reason"]), (200, body["reason"]))

    def test_cn_identity_is_named(self):
        n = len(self.broker.log_lines())
        body = self.deny("agent-stranger")
        self.assertIn('"agent-stranger" is not a principal', body["reason"])
        line = self.broker.wait_log(r"unknown principal: .*agent-stranger",
                                    n)
        self.assertIn("(its subject CN)", line)

    def test_forbidden_names_the_identity(self):
        st, _, body = self.broker.client("agent-uri").get("/v1/policy")
        self.assertEqual((st, body["error"]), (403, "forbidden"))
        self.assertIn('"%s" (its URI SAN)' % URI, body["message"])
        self.assertIn("not a principal of the policy in force",
                      body["message"])
        st, _, body = self.broker.client("agent-payments").get(
            "/v1/approvals")
        self.assertEqual((st, body["error"]), (403, "forbidden"))
        self.assertIn('"agent-payments" (its subject CN), which holds no '
                      'such role', body["message"])


if __name__ == "__main__":
    unittest.main()
