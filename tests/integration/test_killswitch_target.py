"""
test_killswitch_target: a kill switch with a typo stops nothing, so it is
refused instead of reading ENGAGED (issue 16 point 8, CONTRACT §12).  An
agent that is not a principal of the policy in force, or a tool pattern no
rule covers, is 400 unknown_target naming the target and the closest known
name — through the API, toolgatectl online, and toolgatectl --db against
the stored policy — unless forced ("force": true, --force; audited as
forced).  A trip without --reject-pending says nothing about rejections.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Target(harness.BrokerCase, harness.ExitAsserts,
             unittest.TestCase):

    def setUp(self):
        self.olga = self.broker.client("operator-olga")

    def tearDown(self):
        # leave nothing engaged for the next test
        st, _, body = self.olga.get("/v1/killswitch")
        for sw in body["switches"]:
            self.post({"reason": "test over"},
                      "/v1/killswitch/%d/reset" % sw["id"])

    def post(self, doc, path="/v1/killswitch"):
        return self.olga.request("POST", path, body=json.dumps(doc),
                                 content_type="application/json")

    def ctl(self, *args):
        return self.broker.ctl(*args, identity="operator-olga")

    def assertNothingEngaged(self):
        st, _, body = self.olga.get("/v1/killswitch")
        self.assertEqual((st, body["engaged"]), (200, False), body)
        self.assertEqual(self.broker.client("agent-payments").submit(
            "crm.lookup")[0], 200)

    def test_api_refuses_unknown_agent_and_tool(self):
        for doc, closest in (
                ({"scope": "agent", "target": "agent-paymnets"},
                 "agent-payments"),
                ({"scope": "tool", "target": "payment.transfer"},
                 "payments.transfer"),
                ({"scope": "tool", "target": "nothing.like.it.*"}, None)):
            with self.subTest(**doc):
                st, _, body = self.post(dict(doc, reason="typo"))
                self.assertEqual(st, 400, body)
                self.assertEqual(body["error"], "unknown_target")
                self.assertEqual(body["target"], doc["target"])
                self.assertEqual(body["closest"], closest)
                self.assertIn('"%s"' % doc["target"], body["message"])
                if closest:
                    self.assertIn('closest: "%s"' % closest, body["message"])
                harness.schema("error.schema.json").validate(body)
                self.assertNothingEngaged()

    def test_known_targets_and_patterns_trip(self):
        for target in ("payments.*", "payments.transfer", "crm.*",
                       "crm.lookup", "email.send"):
            st, _, body = self.post({"scope": "tool", "target": target,
                                     "reason": "drill"})
            self.assertEqual(st, 201, (target, body))
        st, _, body = self.post({"scope": "agent", "target": "agent-support",
                                 "reason": "drill"})
        self.assertEqual(st, 201, body)

    def last_trip_record(self):
        return json.loads(self.broker.query(
            "SELECT record FROM audit WHERE event = 'killswitch.trip' "
            "ORDER BY seq DESC LIMIT 1")[0][0])

    def test_force_trips_and_is_audited(self):
        st, _, body = self.post({"scope": "agent", "target": "agent-future",
                                 "reason": "not enrolled yet",
                                 "force": True})
        self.assertEqual(st, 201, body)
        rec = self.last_trip_record()
        self.assertEqual(rec["details"]["target"], "agent-future")
        self.assertIs(rec["details"].get("forced"), True)
        # a known target is not "forced" even when force was asked for
        st, _, body = self.post({"scope": "agent", "target": "agent-support",
                                 "reason": "drill", "force": True})
        self.assertEqual(st, 201, body)
        rec = self.last_trip_record()
        self.assertNotIn("forced", rec["details"])

    def test_ctl_online(self):
        p = self.ctl("killswitch", "trip", "--agent", "agent-paymnets",
                     "--reason", "stop it")
        self.assertExit(p, 1)
        self.assertIn("toolgatectl: unknown_target: ", p.stderr)
        self.assertIn('closest: "agent-payments"', p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertNothingEngaged()
        p = self.ctl("--json", "killswitch", "trip", "--tool",
                     "payment.transfer", "--reason", "stop it")
        self.assertExit(p, 1)
        err = json.loads(p.stdout)
        self.assertEqual((err["error"], err["closest"]),
                         ("unknown_target", "payments.transfer"))
        p = self.ctl("killswitch", "trip", "--agent", "agent-paymnets",
                     "--reason", "stop it", "--force")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^covers +agent agent-paymnets$")

    def test_ctl_offline_checks_the_stored_policy(self):
        p = self.broker.ctl_db("killswitch", "trip", "--tool",
                               "payment.transfer", "--reason", "stop it")
        self.assertExit(p, 1)
        self.assertIn("unknown_target: ", p.stderr)
        self.assertIn('closest: "payments.transfer"', p.stderr)
        self.assertIn("policy version 1", p.stderr)
        p = self.broker.ctl_db("--json", "killswitch", "trip", "--agent",
                               "agent-paymnets", "--reason", "stop it")
        self.assertExit(p, 1)
        self.assertEqual(json.loads(p.stdout)["closest"], "agent-payments")
        self.assertNothingEngaged()
        p = self.broker.ctl_db("killswitch", "trip", "--tool",
                               "payment.transfer", "--reason", "stop it",
                               "--force")
        self.assertExit(p, 0)

    def test_no_word_of_rejections_unless_asked(self):
        p = self.ctl("killswitch", "trip", "--tool", "email.send",
                     "--reason", "drill")
        self.assertExit(p, 0)
        self.assertNotIn("rejected", p.stdout)
        p = self.broker.ctl_db("killswitch", "trip", "--tool", "crm.*",
                               "--reason", "drill")
        self.assertExit(p, 0)
        self.assertNotIn("rejected", p.stdout)
        p = self.ctl("killswitch", "trip", "--tool", "payments.*",
                     "--reason", "drill", "--reject-pending")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^rejected \d+ pending intents?$")


class NoPolicy(unittest.TestCase):
    """With no policy applied no agent or tool is known: only a global
    switch, or a forced one, trips (offline: a first trip can come before
    the first policy)."""

    def test_offline_without_policy(self):
        # a broker that started without a policy made the database
        with harness.Broker(policy=harness.NO_POLICY, threads=1) as b:
            b.stop()
            p = b.ctl_db("killswitch", "trip", "--agent", "agent-payments",
                         "--reason", "early")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("no policy is applied", p.stderr)
            p = b.ctl_db("killswitch", "trip", "--agent", "agent-payments",
                         "--reason", "early", "--force")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = b.ctl_db("killswitch", "trip", "--reason", "everything")
            self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
