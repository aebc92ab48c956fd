"""
test_crash: crash safety (issue 6, item 5; CONTRACT §3: "the answer is
sent only after the decision and its audit record are committed").  Client
threads submit continuously (allowed, pending and denied intents from two
agents) while toolgated is killed with SIGKILL mid-flight; after a restart
on the same database every intent that got an answer is there with the
same status (over the API and in SQLite), every answered token is refused
as a replay, each intent has its decision record, and
`toolgatectl --db DB audit verify` passes.  Several rounds in one test.
"""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import claims  # noqa: E402

ROUNDS = 4

# (tool, extra claims, expected HTTP status) per identity
MIX = {
    "agent-payments": [
        ("crm.lookup", {}, 200),
        ("payments.transfer", harness.payment("5000.00"), 202),
        ("payments.transfer", harness.payment("12.50", "EUR"), 200),
        ("email.send", {}, 403),
    ],
    "agent-support": [
        ("crm.lookup", {}, 200),
        ("email.send", {"args": {"to": "a@example.test"}}, 202),
        ("payments.transfer", harness.payment("1.00"), 403),
    ],
}
STATUS = {200: "allowed", 202: "pending", 403: "denied"}


class Submitter(threading.Thread):

    def __init__(self, broker, name, seed):
        super().__init__(daemon=True)
        k = broker.pki
        self.name_ = name
        self.client = harness.Client(
            broker.port, os.path.join(k, "ca.pem"),
            os.path.join(k, name + ".pem"), os.path.join(k, name + ".key"),
            timeout=10)
        self.rng = random.Random(seed)
        self.answered = []      # (name, token, jti, http, body, expected)
        self.lost = 0
        self.halt = threading.Event()

    def run(self):
        mix = MIX[self.name_]
        while not self.halt.is_set():
            tool, extra, want = mix[self.rng.randrange(len(mix))]
            c = claims(self.client.identity, tool, **extra)
            tok = self.client.sign(c)
            try:
                st, _, body = self.client.post_intent(tok)
            except Exception:
                self.lost += 1      # in flight when the broker died
                return
            self.answered.append((self.name_, tok, c["jti"], st, body,
                                  want))


class CrashSafety(unittest.TestCase):

    def test_kill9_mid_flight_loses_no_answered_decision(self):
        t_start = time.monotonic()
        with harness.Broker(threads=2) as b:
            total_answered = 0
            for rnd in range(ROUNDS):
                subs = [Submitter(b, name, rnd * 10 + i)
                        for i, name in enumerate(["agent-payments",
                                                  "agent-support"] * 2)]
                for s in subs:
                    s.start()
                time.sleep(random.uniform(1.0, 2.0))
                b.kill9()           # SIGKILL while they submit
                for s in subs:
                    s.join(15)
                    s.client.close()
                answered = [a for s in subs for a in s.answered]
                self.assertGreater(len(answered), 20, "round %d: too "
                                   "little traffic" % rnd)
                total_answered += len(answered)

                # every answer was the expected decision (no 5xx etc.)
                for name, _, _, st, body, want in answered:
                    self.assertEqual(st, want, (name, body))
                    self.assertEqual(body["status"], STATUS[st], body)

                # the crashed database as it lies on disk
                p = b.ctl_db("audit", "verify")
                self.assertEqual(p.returncode, 0, "round %d: audit verify "
                                 "after kill -9:\n%s%s" %
                                 (rnd, p.stdout, p.stderr))
                rows = {r[0]: tuple(r[1:]) for r in b.query(
                    "SELECT id, agent, jti, status FROM intents")}
                for name, _, jti, st, body, _ in answered:
                    self.assertEqual(rows.get(body["id"]),
                                     (name, jti, STATUS[st]),
                                     "round %d: answered intent %s "
                                     "lost or changed" % (rnd, body["id"]))
                n_int = b.query("SELECT count(*) FROM intents")[0][0]
                n_dec = b.query("SELECT count(DISTINCT intent_id) FROM "
                                "audit WHERE event = 'decision'")[0][0]
                self.assertEqual(n_int, n_dec, "intents without their "
                                 "decision record")
                self.assertGreaterEqual(n_int, total_answered)

                b.start()
                agents = {n: b.client(n) for n in MIX}
                for name, _, _, st, body, _ in answered:
                    gst, _, got = agents[name].get("/v1/intents/" +
                                                   body["id"])
                    self.assertEqual(gst, 200, got)
                    self.assertEqual((got["status"], got["decision"],
                                      got["agent"]),
                                     (body["status"], body["decision"],
                                      name), got)
                    self.assertEqual(got["intent_sha256"],
                                     body["intent_sha256"])
                # the exact tokens again: replays, whatever they said
                for name, tok, _, _, body, _ in answered:
                    rst, _, again = agents[name].post_intent(tok)
                    self.assertEqual((rst, again.get("error")),
                                     (409, "replay"),
                                     "round %d: re-sent token of %s" %
                                     (rnd, body["id"]))
                for c in agents.values():
                    c.close()
            p = b.ctl_db("audit", "verify")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        took = time.monotonic() - t_start
        sys.stderr.write("%d rounds, %d answered intents checked, %.1f s\n"
                         % (ROUNDS, total_answered, took))
        self.assertLess(took, 120)


if __name__ == "__main__":
    unittest.main(verbosity=2)
