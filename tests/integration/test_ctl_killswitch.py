"""
test_ctl_killswitch: the operator's side of toolgatectl against a real
toolgated (CONTRACT sections 4, 6, 7; issue 4): killswitch trip, status
and reset online and offline (--db, with the broker running, and with it
frozen), --reject-pending, and audit export / verify online and offline.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ID = r"in_[0-9a-f]{32}"


class CtlCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker()
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def tearDown(self):
        # Leave no switch engaged for the next test.
        st = json.loads(self.broker.ctl_db("--json", "killswitch",
                                           "status").stdout)
        for sw in st["switches"]:
            self.broker.ctl_db("killswitch", "reset", str(sw["id"]),
                               "--reason", "cleanup", check=True)

    def ctl(self, *args, who="agent-payments", timeout=30):
        return self.broker.ctl(*args, identity=who, timeout=timeout)

    def olga(self, *args):
        return self.ctl(*args, who="operator-olga")

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                         (p.returncode, code, p.stdout, p.stderr))

    def submit(self, tool="crm.lookup", who="agent-payments", *extra):
        return self.ctl("submit", "--tool", tool, *extra, who=who)

    def assertKilled(self, p):
        self.assertExit(p, 1)
        self.assertIn("denied: kill_switch: ", p.stderr)

    def switch_id(self, out):
        for line in out.splitlines():
            if line.startswith("switch "):
                return int(line.split()[1])
        self.fail("no switch line in:\n" + out)


class KillSwitch(CtlCase):
    def test_trip_status_reset_online(self):
        self.assertExit(self.submit(), 0)
        p = self.olga("killswitch", "trip", "--reason", "drill")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^covers +global: every agent and "
                                   r"tool$")
        self.assertRegex(p.stdout, r"(?m)^reason +drill$")
        self.assertRegex(p.stdout, r"(?m)^rejected 0 pending intents$")
        sid = self.switch_id(p.stdout)
        self.assertKilled(self.submit())
        self.assertKilled(self.submit("crm.lookup", "agent-support"))

        p = self.olga("killswitch", "status")
        self.assertExit(p, 0)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "ENGAGED: 1 kill switch")
        self.assertRegex(lines[1], r"^ID +SCOPE +TARGET +BY +AT +REASON$")
        self.assertRegex(lines[2], r"^%d +global +- +operator-olga +\S+Z +"
                                   r"drill$" % sid)
        # Approvers may look too; --json is the API's object.
        p = self.ctl("--json", "killswitch", "status", who="approver-alice")
        self.assertExit(p, 0)
        st = json.loads(p.stdout)
        self.assertIs(st["engaged"], True)
        self.assertEqual([(s["id"], s["scope"], s["by"])
                          for s in st["switches"]],
                         [(sid, "global", "operator-olga")])

        p = self.olga("killswitch", "reset", str(sid), "--reason", "over")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^reset +by operator-olga at \S+Z: "
                                   r"over$")
        self.assertExit(self.submit(), 0)
        p = self.olga("killswitch", "status")
        self.assertEqual(p.stdout, "not engaged: no kill switch is on\n")
        p = self.olga("killswitch", "reset", str(sid), "--reason", "again")
        self.assertExit(p, 1)

    def test_agent_and_tool_scopes(self):
        p = self.olga("killswitch", "trip", "--agent", "agent-support",
                      "--reason", "loops")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^covers +agent agent-support$")
        self.assertKilled(self.submit("crm.lookup", "agent-support"))
        self.assertExit(self.submit(), 0)
        p = self.olga("killswitch", "trip", "--tool", "payments.*",
                      "--reason", "fraud")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^covers +tool payments\.\*$")
        self.assertKilled(self.submit("payments.transfer", "agent-payments",
                                      "--args", '{"amount": "1.00", '
                                      '"currency": "USD"}'))
        self.assertExit(self.submit(), 0)

    def test_only_operators_trip(self):
        for who in ("approver-alice", "agent-payments"):
            p = self.ctl("killswitch", "trip", "--reason", "x", who=who)
            self.assertExit(p, 1)
            self.assertRegex(p.stderr, r"^toolgatectl: forbidden: .+\n$")
        self.assertExit(self.submit(), 0)

    def test_usage_errors(self):
        for args in (["trip"], ["trip", "--reason", ""],
                     ["trip", "--agent", "a", "--tool", "b", "--reason",
                      "x"],
                     ["reset", "1"], ["reset", "x", "--reason", "y"],
                     ["reset", "0", "--reason", "y"]):
            p = self.olga("killswitch", *args)
            self.assertExit(p, 2)
            self.assertIn("--help", p.stderr)
        p = self.broker.ctl_db("killswitch", "trip", "--tool", "Bad Tool",
                               "--reason", "x")
        self.assertExit(p, 2)

    def test_offline_trip_while_running_is_honoured_within_a_second(self):
        c = self.broker.client("agent-payments")
        self.assertEqual(c.submit()[0], 200)
        p = self.broker.ctl_db("killswitch", "trip", "--reason", "offline")
        done = time.monotonic()
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^by +cli:\S+ at ")
        sid = self.switch_id(p.stdout)
        deadline = done + 1.0
        while True:
            st, _, body = c.submit()
            if st == 403 and body.get("reason_code") == "kill_switch":
                break
            self.assertLess(time.monotonic(), deadline,
                            "still allowed 1 s after the offline trip")
            time.sleep(0.05)
        # The broker's own API reports the offline switch.
        p = self.olga("--json", "killswitch", "status")
        self.assertIn(sid, [s["id"] for s in json.loads(p.stdout)
                            ["switches"]])
        p = self.broker.ctl_db("killswitch", "reset", str(sid), "--reason",
                               "done")
        self.assertExit(p, 0)
        deadline = time.monotonic() + 1.0
        while c.submit()[0] != 200:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_offline_trip_with_the_broker_frozen(self):
        pid = self.broker.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            p = self.broker.ctl_db("killswitch", "trip", "--agent",
                                   "agent-payments", "--reason", "hung",
                                   timeout=20)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertExit(p, 0)
        time.sleep(1.0)
        self.assertKilled(self.submit())
        p = self.broker.ctl_db("killswitch", "status")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^\d+ +agent +agent-payments +cli:")

    def test_reject_pending(self):
        ids = []
        for v in ("5000.00", "20000.00"):
            p = self.ctl("--json", "submit", "--tool", "payments.transfer",
                         "--args", json.dumps({"amount": v,
                                               "currency": "USD"}))
            self.assertExit(p, 4)           # still pending
            ids.append(json.loads(p.stdout)["id"])
        p = self.ctl("--json", "pending", who="approver-alice")
        covered = [i["id"] for i in json.loads(p.stdout)["items"]
                   if i["tool"].startswith("payments.")]
        self.assertTrue(set(ids) <= set(covered))
        p = self.olga("killswitch", "trip", "--tool", "payments.*",
                      "--reason", "fraud", "--reject-pending")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^rejected %d pending intents$" %
                         len(covered))
        for iid in covered:
            self.assertRegex(p.stdout, r"(?m)^ +%s$" % iid)
        for iid in ids:
            v = json.loads(self.ctl("--json", "show", iid,
                                    who="approver-alice").stdout)
            self.assertEqual(v["status"], "rejected")
        p = self.ctl("pending", who="approver-alice")
        for iid in ids:
            self.assertNotIn(iid, p.stdout)

    def test_reject_pending_offline_json(self):
        p = self.ctl("--json", "submit", "--tool", "email.send",
                     who="agent-support")
        self.assertExit(p, 4)
        iid = json.loads(p.stdout)["id"]
        p = self.broker.ctl_db("--json", "killswitch", "trip", "--agent",
                               "agent-support", "--reason", "spam",
                               "--reject-pending")
        self.assertExit(p, 0)
        sw = json.loads(p.stdout)
        self.assertEqual((sw["scope"], sw["target"], sw["reason"]),
                         ("agent", "agent-support", "spam"))
        self.assertTrue(sw["by"].startswith("cli:"))
        self.assertEqual(sw["rejected"], [iid])


class Audit(CtlCase):
    def export(self, *args, offline=False):
        if offline:
            p = self.broker.ctl_db("audit", "export", *args)
        else:
            p = self.olga("audit", "export", *args)
        self.assertExit(p, 0)
        self.assertTrue(p.stdout == "" or p.stdout.endswith("\n"))
        return [json.loads(l) for l in p.stdout.splitlines()]

    def make_history(self):
        self.assertExit(self.submit(), 0)
        p = self.ctl("--json", "submit", "--tool", "payments.transfer",
                     "--args", '{"amount": "5000.00", "currency": "USD"}')
        iid = json.loads(p.stdout)["id"]
        self.assertExit(self.ctl("approve", iid, "--comment", "fine",
                                 who="approver-alice"), 0)
        p = self.olga("killswitch", "trip", "--reason", "audit me")
        self.assertExit(self.olga("killswitch", "reset",
                                  str(self.switch_id(p.stdout)),
                                  "--reason", "done"), 0)

    def test_export_online_and_offline_agree(self):
        self.make_history()
        online = self.export()
        offline = self.export(offline=True)
        self.assertEqual(online, offline)
        self.assertEqual([r["seq"] for r in online],
                         list(range(1, len(online) + 1)))
        events = [r["event"] for r in online]
        for e in ("policy.apply", "decision", "killswitch.trip",
                  "killswitch.reset"):
            self.assertIn(e, events)
        for r in online:
            self.assertEqual(set(r), {"seq", "at", "actor", "event",
                                      "intent_id", "details", "format",
                                      "prev_hash", "hash"})
        for a, b in zip(online, online[1:]):
            self.assertEqual(b["prev_hash"], a["hash"])

    def test_export_after_and_limit(self):
        self.make_history()
        n = len(self.export(offline=True))
        for offline in (False, True):
            recs = self.export("--after", "2", offline=offline)
            self.assertEqual([r["seq"] for r in recs], list(range(3, n + 1)))
            recs = self.export("--after", "1", "--limit", "2",
                               offline=offline)
            self.assertEqual([r["seq"] for r in recs], [2, 3])
            self.assertEqual(self.export("--after", str(n),
                                         offline=offline), [])
        for bad in (["--after", "-1"], ["--limit", "0"], ["--after", "x"]):
            self.assertExit(self.olga("audit", "export", *bad), 2)

    def test_export_pages_past_1000_records(self):
        c = self.broker.client("agent-payments")
        for _ in range(1005):
            self.assertEqual(c.submit()[0], 200)
        recs = self.export()
        self.assertGreater(len(recs), 1005)
        self.assertEqual([r["seq"] for r in recs],
                         list(range(1, len(recs) + 1)))
        p = self.olga("audit", "verify")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "audit chain OK: %d records\n" %
                         len(recs))

    def test_verify_online_matches_offline(self):
        self.make_history()
        p = self.olga("audit", "verify")
        self.assertExit(p, 0)
        q = self.broker.ctl_db("audit", "verify")
        self.assertExit(q, 0)
        self.assertRegex(p.stdout, r"^audit chain OK: \d+ records\n$")
        n_online = int(p.stdout.split()[3])
        n_offline = int(q.stdout.split()[3])
        # The broker may append between the two runs, never remove.
        self.assertLessEqual(n_online, n_offline)
        p = self.olga("--json", "audit", "verify")
        self.assertExit(p, 0)
        out = json.loads(p.stdout)
        self.assertEqual((out["ok"], out["bad_seq"]), (True, None))

    def test_audit_needs_an_operator(self):
        for args in (["export"], ["verify"]):
            p = self.ctl("audit", *args, who="approver-alice")
            self.assertExit(p, 1)
            self.assertIn("toolgatectl: forbidden: ", p.stderr)

    def test_help(self):
        for path in (["killswitch", "trip"], ["killswitch", "status"],
                     ["killswitch", "reset"], ["audit", "export"],
                     ["audit", "verify"]):
            p = subprocess.run([harness.CTL, *path, "--help"],
                               capture_output=True, text=True, timeout=30)
            self.assertExit(p, 0)
            self.assertIn("example:\n  toolgatectl", p.stdout)


class TamperedChain(CtlCase):
    """Online verify recomputes the hashes itself: a record edited in the
    database behind the broker's back is named, exit 1."""

    @harness.sqlite_only("edits a record in the SQLite file, its trigger "
                         "dropped")
    def test_online_verify_names_the_altered_record(self):
        for _ in range(3):
            self.assertExit(self.submit(), 0)
        self.assertExit(self.olga("audit", "verify"), 0)
        with sqlite3.connect(self.broker.db) as db:
            db.execute("DROP TRIGGER audit_no_update")
            n = db.execute("UPDATE audit SET record = replace(record, "
                           "'crm.lookup', 'crm.lookuq') WHERE seq = 3"
                           ).rowcount
        self.assertEqual(n, 1)
        p = self.olga("audit", "verify")
        self.assertExit(p, 1)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr, "toolgatectl: audit chain BROKEN at "
                         "record 3: hash does not match the record's "
                         "contents\n")
        p = self.olga("--json", "audit", "verify")
        self.assertExit(p, 1)
        out = json.loads(p.stdout)
        self.assertEqual((out["ok"], out["records"], out["bad_seq"]),
                         (False, 2, 3))
        # The offline check agrees.
        p = self.broker.ctl_db("audit", "verify")
        self.assertExit(p, 1)
        self.assertIn("BROKEN at record 3", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
