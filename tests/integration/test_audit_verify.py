"""
test_audit_verify: a third party checks a real broker's audit chain.

verify_audit.py (written from proto/audit.md alone, no toolgate code) is
run as a program on `toolgatectl audit export` output, offline (--db) and
online (GET /v1/audit), after a real toolgated recorded decisions,
approvals, a rejection and a kill switch trip and reset for intents whose
args hold the awkward cases: 0.1, 1e21, -0, 1e-7, 5e-324, non-BMP
characters, control characters, quotes and backslashes, and member names
that sort differently by UTF-16 code units than by UTF-8 bytes.  Its
canonical bytes must equal the stored ones record for record; an edited,
missing or reordered exported record is caught; records of format 1
written before RFC 8785 keep verifying ahead of the broker's format 2
records, and a format 1 record after them breaks the chain, for the
verifier and for toolgatectl alike.
"""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import verify_audit  # noqa: E402

VERIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "verify_audit.py")

# Signed as typed; member names where UTF-16 and UTF-8 orders differ
# (U+FB33, U+FF21, U+E000 against U+1F600).
TRICKY_ARGS = ('{"amount": 0.1, "big": 1e21, "neg": -0, "small": 1e-7, '
               '"tiny": 5e-324, "e": 1e3, "s": "\\ud83d\\ude00 \\u0001\\u001f'
               '\\"\\\\/\\u2028\\u007f\\t\\n", "\\ufb33": 1, '
               '"\\ud83d\\ude00": 2, "\\uff21": 3, "\\ud800\\udc00": 4, '
               '"a": {"\\ue000": [1e-7, 2.5], "\\u00e9": null}, "": true}')

TRIGGERS = """
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""


def run_verifier(lines):
    """verify_audit.py as a program on these JSON lines."""
    return subprocess.run([sys.executable, VERIFIER],
                          input="".join(x + "\n" for x in lines),
                          capture_output=True, text=True, timeout=120)


def stored_records(db):
    return [tuple(r) for r in harness.db_query(
        db, "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq")]


class Case(unittest.TestCase):
    def export(self, b, online=False):
        p = (b.ctl("audit", "export", identity="operator-olga") if online
             else b.ctl_db("audit", "export"))
        self.assertEqual(p.returncode, 0, p.stderr)
        # LF only: U+2028 inside a string is not a line end here.
        return [x for x in p.stdout.split("\n") if x.strip()]

    def assertVerifies(self, lines, n):
        p = run_verifier(lines)
        self.assertEqual((p.returncode, p.stdout),
                         (0, "audit chain OK: %d records\n" % n), p.stderr)

    def assertBroken(self, lines, seq, why):
        p = run_verifier(lines)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("audit chain BROKEN at record %d: " % seq, p.stdout)
        self.assertIn(why, p.stdout)

    def assertCtlVerify(self, b, ok, seq=None):
        for online in (False, True):
            p = (b.ctl("audit", "verify", identity="operator-olga")
                 if online else b.ctl_db("audit", "verify"))
            if ok:
                self.assertEqual(p.returncode, 0, p.stderr)
            else:
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn("BROKEN at record %d:" % seq, p.stderr)

    def make_history(self, b):
        """Decisions with tricky args, an approval, a rejection, a kill
        switch trip and reset."""
        pay = b.client("agent-payments")
        alice = b.client("approver-alice")
        olga = b.client("operator-olga")
        for tool in ("crm.lookup", "payments.transfer"):
            c = harness.claims("agent-payments", tool)
            args = TRICKY_ARGS
            if tool == "payments.transfer":
                # the demo policy reads the amount in args, as typed
                args = args.replace('"amount": 0.1',
                                    '"amount": 5000.00, "currency": "USD"')
            body = json.dumps(c)[:-1] + ', "args": %s' % args
            if tool == "payments.transfer":
                body += ', "amount": {"value": "5000.00", "currency": "USD"}'
            st, _, d = pay.post_intent(pay.sign((body + "}").encode()))
            self.assertIn(st, (200, 202), d)
            if st == 202:
                st, _, a = alice.request(
                    "POST", "/v1/approvals/%s/approve" % d["id"],
                    body=json.dumps({"comment": "ok \u2713"}),
                    content_type="application/json")
                self.assertEqual(st, 200, a)
        st, _, d = pay.submit("payments.transfer",
                              **harness.payment("7000.00", claim=True,
                                                memo="no \ud83d\ude00"))
        self.assertEqual(st, 202, d)
        st, _, r = alice.request("POST", "/v1/approvals/%s/reject" % d["id"],
                                 body=json.dumps({"reason": "not \"today\""}),
                                 content_type="application/json")
        self.assertEqual(st, 200, r)
        st, _, sw = olga.request("POST", "/v1/killswitch", body=json.dumps(
            {"scope": "tool", "target": "email.*", "reason": "tab\there"}),
            content_type="application/json")
        self.assertEqual(st, 201, sw)
        st, _, r = olga.request("POST", "/v1/killswitch/%s/reset" % sw["id"],
                                body=json.dumps({"reason": "back \\ again"}),
                                content_type="application/json")
        self.assertEqual(st, 200, r)


class TestThirdPartyVerifier(Case):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker()
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def test_verifies_a_real_chain_offline_and_online(self):
        b = self.broker
        self.make_history(b)
        rows = stored_records(b.db)
        events = {json.loads(r[1])["event"] for r in rows}
        self.assertTrue({"policy.apply", "decision", "approval", "rejection",
                         "killswitch.trip", "killswitch.reset"} <= events)
        offline = self.export(b)
        online = self.export(b, online=True)
        self.assertVerifies(offline, len(rows))
        self.assertVerifies(online, len(rows))
        self.assertCtlVerify(b, True)
        # The verifier's bytes are the stored bytes, record for record.
        for line, (seq, record, prev, h) in zip(offline, rows):
            rec = verify_audit.parse(line)
            body = {k: v for k, v in rec.items()
                    if k not in ("prev_hash", "hash")}
            self.assertEqual(verify_audit.canonical_bytes(body),
                             record.encode("utf-8"), "record %d" % seq)
            self.assertEqual((rec["prev_hash"], rec["hash"]), (prev, h))
            self.assertEqual(rec["format"], 2)
        # The tricky args are there, in RFC 8785 form.
        joined = "\n".join(r[1] for r in rows)
        self.assertIn('"amount":0.1,', joined)
        self.assertIn('"big":1e+21,', joined)
        self.assertIn('"neg":0,', joined)
        self.assertIn('"tiny":5e-324', joined)
        self.assertIn('\\u0001\\u001f\\"\\\\/\u2028\x7f\\t\\n', joined)
        # UTF-16 order: D800 DC00, D83D DE00, FB33, FF21 (UTF-8 bytes
        # would put both characters above U+FFFF last).
        self.assertIn('"\U00010000":4,"\U0001f600":2,"\ufb33":1,'
                      '"\uff21":3}', joined)

    def test_edits_are_caught(self):
        b = self.broker
        self.make_history(b)
        lines = self.export(b)
        n = len(lines)
        self.assertVerifies(lines, n)
        k = next(i for i, x in enumerate(lines) if '"amount":0.1' in x)
        edited = list(lines)
        edited[k] = lines[k].replace('"amount":0.1', '"amount":0.2', 1)
        self.assertBroken(edited, k + 1, "hash does not match")
        # 0.1 written another way is the same value: still verifies.
        same = list(lines)
        same[k] = lines[k].replace('"amount":0.1', '"amount":1.0e-1', 1)
        self.assertVerifies(same, n)
        self.assertBroken(lines[:2] + lines[3:], 3, "sequence gap")
        self.assertBroken([lines[1], lines[0]] + lines[2:], 1,
                          "sequence gap")
        unmarked = list(lines)
        rec = json.loads(lines[k])
        del rec["format"]
        unmarked[k] = json.dumps(rec)
        self.assertBroken(unmarked, k + 1, "")
        self.assertBroken(lines[:1] + ["{not json"], 2, "not a JSON object")


@harness.sqlite_only("rewrites the chain in the SQLite file with its "
                     "triggers dropped, as toolgate v1 left it")
class TestFormatsMixed(Case):
    """A chain whose first records were written before RFC 8785."""

    def legacy_rows(self, db):
        """Replace the chain with three format 1 records, as toolgate v1
        wrote them (its triggers dropped and made again around it)."""
        with sqlite3.connect(db) as c:
            sha = c.execute("SELECT sha256 FROM policy_versions ORDER BY version "
                            "DESC LIMIT 1").fetchone()[0]
        bodies = [
            {"seq": 1, "at": "2026-06-01T08:00:00Z", "actor": "cli:root",
             "event": "policy.apply", "intent_id": None,
             "details": {"version": 1, "sha256": sha}},
            {"seq": 2, "at": "2026-06-01T08:00:05Z",
             "actor": "agent-payments", "event": "decision",
             "intent_id": "in_0123456789abcdef0123456789abcdef",
             "details": {"status": "allowed", "reason_code": "policy_allow",
                         "tool": "crm.lookup", "policy_version": 1,
                         "approvals_required": 0, "intent_sha256": "0" * 64,
                         "args": {"ratio": 0.1, "count": 100.0, "n": -0.0,
                                  "big": 1e20, "c": "\x1f",
                                  "\ufb33": 1, "\U0001f600": 2}}},
            {"seq": 3, "at": "2026-06-01T08:00:09Z", "actor": "toolgated",
             "event": "expiry",
             "intent_id": "in_0123456789abcdef0123456789abcdef",
             "details": {"status": "expired"}},
        ]
        prev = "0" * 64
        with sqlite3.connect(db) as c:
            c.executescript("DROP TRIGGER audit_no_update; "
                            "DROP TRIGGER audit_no_delete; "
                            "DELETE FROM audit;")
            for body in bodies:
                record = verify_audit.legacy(body)
                h = hashlib.sha256((prev + record).encode()).hexdigest()
                c.execute("INSERT INTO audit (seq, event, intent_id, record, "
                          "prev_hash, hash) VALUES (?,?,?,?,?,?)",
                          (body["seq"], body["event"], body["intent_id"],
                           record, prev, h))
                prev = h
            c.executescript(TRIGGERS)
        return bodies

    def test_format_1_then_format_2(self):
        with harness.Broker() as b:
            b.stop()
            legacy = self.legacy_rows(b.db)
            stored = stored_records(b.db)
            self.assertIn("0.10000000000000001", stored[1][1])
            self.assertIn("\\u001F", stored[1][1])
            self.assertCtlVerify_offline(b)
            b.start()
            self.make_history(b)
            self.assertCtlVerify(b, True)
            for online in (False, True):
                lines = self.export(b, online=online)
                self.assertVerifies(lines, len(stored_records(b.db)))
                first = [json.loads(x) for x in lines[:3]]
                self.assertNotIn("format", first[0])
                self.assertEqual(first[1]["details"]["args"]["count"], 100.0)
                self.assertIsInstance(first[1]["details"]["args"]["count"],
                                      float)
                self.assertEqual(json.loads(lines[3])["format"], 2)
            self.assertEqual(len(legacy), 3)

            # A format 1 record may not follow format 2 ones.
            seq, _, _, h = stored_records(b.db)[-1]
            body = {"seq": seq + 1, "at": "2026-06-01T09:00:00Z",
                    "actor": "toolgated", "event": "expiry",
                    "intent_id": None, "details": {}}
            record = verify_audit.legacy(body)
            with sqlite3.connect(b.db) as c:
                c.execute("INSERT INTO audit (seq, event, intent_id, record, "
                          "prev_hash, hash) VALUES (?,?,?,?,?,?)",
                          (seq + 1, "expiry", None, record, h,
                           hashlib.sha256((h + record).encode())
                           .hexdigest()))
            self.assertBroken(self.export(b), seq + 1,
                              "a format 1 record follows a format 2 record")
            self.assertCtlVerify(b, False, seq + 1)

    def assertCtlVerify_offline(self, b):
        p = b.ctl_db("audit", "verify")
        self.assertEqual((p.returncode, p.stdout),
                         (0, "audit chain OK: 3 records\n"), p.stderr)
        self.assertVerifies(self.export(b), 3)


if __name__ == "__main__":
    unittest.main()
