"""
test_ctl_output: what toolgatectl prints of an agent's intent, against a
real toolgated.  --json (show, pending, submit) writes args with numbers
as the agent sent them (RFC 8785 form: 0.1 stays 0.1, where jansson's
json_dumps wrote 0.10000000000000001) and replaces nothing (JSON escaping
is all); the human `show` writes every agent-controlled field — reason,
args names and values, approval comments, a rejection's reason — without
a character a terminal would act on, and args numbers as sent too.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# C0, DEL, C1 (U+009B is a one-character CSI), bidi overrides/isolates.
UNSAFE = ["\u001b", "\u007f", "\u0085", "\u009b", "\u202a", "\u202e",
          "\u2066", "\u2069"]
HOSTILE = "x" + "".join(UNSAFE) + "y"
ARGS = {"amount": "5000.00", "currency": "USD", "rate": 0.1,
        "fee": 12345.678, "tiny": 1e-7, "n": 3, HOSTILE: HOSTILE}


class Output(harness.ExitAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker()
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def ctl(self, *args, who="agent-payments"):
        return self.broker.ctl(*args, identity=who)

    def submit(self, reason=HOSTILE):
        p = self.ctl("--json", "submit", "--tool", "payments.transfer",
                     "--args", json.dumps(ARGS), "--reason", reason)
        self.assertExit(p, 4)
        return p

    def assertNumbersAsSent(self, text):
        self.assertIn("0.1,", text)
        self.assertIn("12345.678,", text)
        self.assertIn("1e-7,", text)
        self.assertNotIn("0.10000000000000001", text)
        self.assertNotIn("12345.677999999", text)

    def test_json_outputs_keep_numbers_and_replace_nothing(self):
        p = self.submit()
        self.assertNumbersAsSent(p.stdout)
        iid = json.loads(p.stdout)["id"]
        for args in (("--json", "show", iid),
                     ("--json", "pending", "--limit", "1000")):
            p = self.ctl(*args, who="approver-alice")
            self.assertExit(p, 0)
            self.assertNumbersAsSent(p.stdout)
            data = json.loads(p.stdout)
            view = data if "id" in data else \
                [v for v in data["items"] if v["id"] == iid][0]
            # exactly what the agent sent, nothing neutralised
            self.assertEqual(view["args"], ARGS)
            self.assertEqual(view["agent_reason"], HOSTILE)

    def test_show_is_clean_in_every_agent_controlled_field(self):
        iid = json.loads(self.submit().stdout)["id"]
        comment = "ok " + HOSTILE
        self.assertExit(self.ctl("approve", iid, "--comment", comment,
                                 who="approver-alice"), 0)
        p = self.ctl("show", iid, who="approver-bob")
        self.assertExit(p, 0)
        self.check_clean(p.stdout)
        self.assertRegex(p.stdout, r"(?m)^reason +x\?{%d}y$" % len(UNSAFE))
        self.assertRegex(p.stdout, r"(?m)^ +approver-alice at \S+: ok "
                         r"x\?{%d}y$" % len(UNSAFE))
        # args: ASCII-escaped JSON, numbers as sent
        self.assertRegex(p.stdout, r'(?m)^ +"rate": 0\.1,$')
        self.assertRegex(p.stdout, r'(?m)^ +"fee": 12345\.678,$')
        self.assertIn(r'"x\u001b\u007f\u0085\u009b\u202a\u202e\u2066\u2069y"'
                      .replace(r"\u007f", "?"), p.stdout)

    def test_show_of_a_rejection_is_clean(self):
        iid = json.loads(self.submit(reason="plain").stdout)["id"]
        self.assertExit(self.ctl("reject", iid, "--reason", "no " + HOSTILE,
                                 who="approver-alice"), 0)
        p = self.ctl("show", iid, who="approver-alice")
        self.assertExit(p, 0)
        self.check_clean(p.stdout)
        self.assertRegex(p.stdout, r"(?m)^rejected +by approver-alice: no "
                         r"x\?{%d}y$" % len(UNSAFE))

    def check_clean(self, out):
        for ch in UNSAFE:
            self.assertNotIn(ch, out, "U+%04X reached the terminal" %
                             ord(ch))


if __name__ == "__main__":
    unittest.main()
