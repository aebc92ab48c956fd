"""
test_examples: the integration guide runs (issue 16, point 16).
proto/examples/agent.py signs, submits and long-polls; proto/examples/
tool.py fetches the JWKS with its own client certificate, verifies the
grant (pinned ES256, aud, iss), redeems it once and executes only its
args — both as separate programs, against a real toolgated over real
mutual TLS, using Debian's python3-jwt.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXAMPLES = os.path.join(harness.ROOT, "proto", "examples")
PYTHON = "/usr/bin/python3"     # Debian's, with python3-jwt


class Examples(harness.BrokerCase, unittest.TestCase):
    def identity_args(self, who):
        k = self.broker.pki
        return ["--url", self.broker.url, "--ca", os.path.join(k, "ca.pem"),
                "--cert", os.path.join(k, who + ".pem"),
                "--key", os.path.join(k, who + ".key")]

    def argv(self, script, who, *args):
        return [PYTHON, os.path.join(EXAMPLES, script),
                *self.identity_args(who), *args]

    def run_example(self, script, who, *args):
        return subprocess.run(self.argv(script, who, *args),
                              capture_output=True, text=True, timeout=120)

    def agent(self, *args):
        return self.run_example("agent.py", "agent-payments", *args)

    def tool(self, grant, tool="payments.transfer"):
        return self.run_example("tool.py", "tool-payments", "--tool", tool,
                                grant)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, wanted %d\n%s%s" %
                         (p.returncode, code, p.stdout, p.stderr))

    def allowed_grant(self, args):
        # The policy reads the amount from args; the claim must agree.
        args = dict({"amount": "800.00", "currency": "USD"}, **args)
        p = self.agent("--tool", "payments.transfer", "--amount", "800.00",
                       "--currency", "USD", "--args", json.dumps(args))
        self.assertExit(p, 0)
        view = json.loads(p.stdout)
        self.assertEqual(view["status"], "allowed")
        return view["grant"]

    def test_allowed_then_executed_once(self):
        args = {"to": "acct-1", "invoice": "INV-42", "amount": "800.00",
                "currency": "USD"}   # amount_from reads the amount here
        grant = self.allowed_grant(args)
        p = self.tool(grant)
        self.assertExit(p, 0)
        done = json.loads(p.stdout)
        self.assertEqual(done["executed"], "payments.transfer")
        self.assertEqual(done["args"], args)
        self.assertEqual(done["amount"], {"value": "800.00",
                                          "currency": "USD"})
        self.assertEqual(done["agent"], "agent-payments")
        # redeemed: the same grant executes nothing a second time
        p = self.tool(grant)
        self.assertExit(p, 1)
        self.assertIn("already_redeemed", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_long_poll_until_approved(self):
        proc = subprocess.Popen(self.argv(
            "agent.py", "agent-payments", "--tool", "payments.transfer",
            "--args", '{"to": "acct-9", "amount": "5000.00", '
            '"currency": "USD"}', "--reason", "invoice 9", "--wait", "60"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stderr.readline()       # said before it waits
        self.assertRegex(line, r"^pending (in_[0-9a-f]{32}): waiting up to "
                               r"60 s$")
        iid = line.split()[1].rstrip(":")
        self.assertIsNone(proc.poll())
        p = self.broker.ctl("approve", iid, identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, out + err)
        view = json.loads(out)
        self.assertEqual((view["id"], view["status"]), (iid, "allowed"))
        p = self.tool(view["grant"])
        self.assertExit(p, 0)
        done = json.loads(p.stdout)
        self.assertEqual(done["approvers"], ["approver-alice"])
        self.assertEqual(done["args"], {"to": "acct-9", "amount": "5000.00",
                                        "currency": "USD"})

    def test_agent_exit_codes(self):
        p = self.agent("--tool", "payments.transfer", "--args",
                       '{"amount": "5000.00", "currency": "USD"}')
        self.assertExit(p, 4)
        self.assertEqual(json.loads(p.stdout)["status"], "pending")
        p = self.agent("--tool", "nope.nothing")
        self.assertExit(p, 1)
        self.assertEqual(json.loads(p.stdout)["reason_code"], "no_permission")
        k = self.broker.pki
        p = subprocess.run([PYTHON, os.path.join(EXAMPLES, "agent.py"),
                            "--url", "https://127.0.0.1:%d" %
                            harness.free_port(), "--ca",
                            os.path.join(k, "ca.pem"), "--cert",
                            os.path.join(k, "agent-payments.pem"), "--key",
                            os.path.join(k, "agent-payments.key"),
                            "--tool", "crm.lookup"], capture_output=True,
                           text=True, timeout=60)
        self.assertExit(p, 3)

    def test_tool_refuses_a_grant_for_another_tool(self):
        grant = self.allowed_grant({"to": "acct-2"})
        p = self.tool(grant, tool="payments.refund")
        self.assertExit(p, 1)
        self.assertIn("does not verify", p.stderr)
        self.assertIn("udience", p.stderr)
        # nothing was redeemed: the right tool still can
        self.assertExit(self.tool(grant), 0)

    def test_tool_refuses_forged_grants(self):
        grant = self.allowed_grant({"to": "acct-3"})
        h, payload, sig = grant.split(".")
        claims = json.loads(harness.b64url_decode(payload))
        claims["args"] = {"to": "attacker"}
        forged = h + "." + harness.b64url(json.dumps(claims)) + "." + sig
        p = self.tool(forged)
        self.assertExit(p, 1)
        self.assertIn("does not verify", p.stderr)
        # HS256 keyed with public JWK material: the algorithm is pinned
        jwks = self.broker.client("tool-payments").get("/v1/jwks")[2]
        jwk = jwks["keys"][0]
        head = harness.b64url(json.dumps({"alg": "HS256", "typ": "JWT",
                                          "kid": jwk["kid"]}))
        body = harness.b64url(json.dumps(claims))
        mac = hmac.new(jwk["x"].encode(), (head + "." + body).encode(),
                       hashlib.sha256).digest()
        forged = head + "." + body + "." + base64.urlsafe_b64encode(
            mac).rstrip(b"=").decode()
        p = self.tool(forged)
        self.assertExit(p, 1)
        self.assertIn("does not verify", p.stderr)
        # and the real grant still executes with the real args
        p = self.tool(grant)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["args"],
                         {"to": "acct-3", "amount": "800.00",
                          "currency": "USD"})

    def test_tool_honours_a_kill_switch(self):
        grant = self.allowed_grant({"to": "acct-4"})
        # tripped through the broker: in force for every later answer
        p = self.broker.ctl("--json", "killswitch", "trip", "--tool",
                            "payments.*", "--reason", "test",
                            identity="operator-olga")
        self.assertEqual(p.returncode, 0, p.stderr)
        sw = json.loads(p.stdout)["id"]
        try:
            p = self.tool(grant)
            self.assertExit(p, 1)
            self.assertIn("kill_switch", p.stderr)
            self.assertEqual(p.stdout, "")
        finally:
            self.broker.ctl_db("killswitch", "reset", str(sw), "--reason",
                               "done", check=True, audit_key=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
