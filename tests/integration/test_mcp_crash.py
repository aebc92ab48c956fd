"""
test_mcp_crash: the MCP gateway under kill -9 (CONTRACT §3 and §9,
proto/mcp.md "Audit").  Agents call pay.lookup through /mcp in a closed
loop, each call with arguments of its own, while toolgated is killed with
SIGKILL mid-flight.  On the database as it lies on disk:

- the audit chain verifies;
- every call the upstream ran has its decision and its redemption
  record (nothing reaches an upstream that the audit does not show
  allowed and redeemed), and ran once;
- every call an agent got the tool's result for has its mcp.forward
  record, except perhaps each agent's last one: that record commits just
  after the answer, and no later than the decision of the agent's next
  call, so any answered call after it proves it was committed.

Then the restarted broker serves calls again.  Several rounds in one test,
with synchronous = full and with normal.
"""

import base64
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from mcp_peers import McpBroker, RawMcp, Upstream  # noqa: E402

ROUNDS = 3
AGENTS = 3

POLICY = {
    "principals": {"agent-payments": {"roles": ["payments-agent"]}},
    "roles": {"payments-agent": {"rules": [{"tool": "pay.lookup"}]}},
}


def grant_jti(grant):
    """The intent id a grant names (its jti), read without verifying:
    test_mcp checks grants against /v1/jwks."""
    payload = grant.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["jti"]


class Caller(threading.Thread):
    """pay.lookup in a closed loop until the broker dies; answered holds
    the ids of the calls answered with the tool's result, in order."""

    def __init__(self, broker, tag):
        super().__init__(daemon=True)
        self.tag = tag
        self.raw = RawMcp(broker.client("agent-payments", timeout=10))
        self.raw.initialize()
        self.answered = []
        self.other = []         # answers that were not the tool's result
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            n += 1
            arg = "%s-%d" % (self.tag, n)
            try:
                st, _, ans = self.raw.rpc("tools/call", {
                    "name": "pay.lookup", "arguments": {"id": arg}})
            except Exception:
                return          # in flight when the broker died
            res = ans.get("result") if isinstance(ans, dict) else None
            if st == 200 and res is not None and not res.get("isError"):
                self.answered.append(arg)
            else:
                self.other.append((st, ans))


class McpCrashSafety(unittest.TestCase):

    def test_kill9_mid_forwarding_keeps_the_audit_whole(self):
        self.rounds([])

    def test_kill9_under_synchronous_normal(self):
        # no fsync at all: the records are as safe from kill -9
        self.rounds(["synchronous = normal"])

    def rounds(self, config):
        up = Upstream(json_answers=True)
        try:
            with McpBroker(["mcp-upstream = pay " + up.url,
                            "mcp-timeout = 5"] + config,
                           policy=POLICY) as b:
                since = 0
                for rnd in range(ROUNDS):
                    since = self.round(b, up, rnd, since)
        finally:
            up.stop()

    def round(self, b, up, rnd, since):
        """One round on a started broker whose log lines from since on
        are this run's; returns that index for the restarted broker."""
        b.wait_log("mcp upstream pay: connected", since=since)
        up.reset()
        callers = [Caller(b, "r%d-a%d" % (rnd, i)) for i in range(AGENTS)]
        for c in callers:
            c.start()
        # enough traffic that the kill lands mid-forwarding
        harness.wait_until(lambda: all(len(c.answered) >= 10
                                       for c in callers),
                           "answered calls", timeout=120)
        b.kill9()
        for c in callers:
            c.join(30)
            self.assertFalse(c.is_alive())
            c.raw.c.close()
            self.assertEqual(c.other, [], "round %d: refused calls" % rnd)

        p = b.ctl_db("audit", "verify")
        self.assertEqual(p.returncode, 0, "round %d: audit verify after "
                         "kill -9:\n%s%s" % (rnd, p.stdout, p.stderr))
        events = {}
        for intent_id, event in b.query(
                "SELECT intent_id, event FROM audit "
                "WHERE intent_id IS NOT NULL ORDER BY seq"):
            events.setdefault(intent_id, []).append(event)

        ran = {}        # argument id -> intent id, from the upstream
        for call in up.calls("tools/call"):
            arg = call["params"]["arguments"]["id"]
            self.assertNotIn(arg, ran, "round %d: %s ran twice" % (rnd, arg))
            ran[arg] = grant_jti(call["grant"])
        for arg, intent_id in ran.items():
            self.assertEqual(events.get(intent_id, [])[:2],
                             ["decision", "redemption"],
                             "round %d: %s ran without its records" %
                             (rnd, arg))
        for c in callers:
            for arg in c.answered[:-1]:
                self.assertIn(arg, ran)
                self.assertIn("mcp.forward", events[ran[arg]],
                              "round %d: answered call %s lost its "
                              "mcp.forward record" % (rnd, arg))

        since = len(b.log_lines())
        b.start()
        b.wait_log("mcp upstream pay: connected", since=since)
        again = RawMcp(b.client("agent-payments"))
        again.initialize()
        st, _, ans = again.rpc("tools/call", {
            "name": "pay.lookup", "arguments": {"id": "after-%d" % rnd}})
        self.assertEqual(st, 200, ans)
        self.assertNotIn("isError", ans["result"])
        again.c.close()
        return since


if __name__ == "__main__":
    unittest.main()
