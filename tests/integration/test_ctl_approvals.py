"""
test_ctl_approvals: the approver's and the waiting agent's side of
toolgatectl against a real toolgated (CONTRACT section 7, issue 3):
pending (aligned table, colours only on a terminal), show, approve,
reject, and submit --wait woken by an approval from another process.
Exit codes are part of the contract: 0 done, 1 refused or failed, 2 usage,
3 connection or TLS failure, 4 still pending.
"""

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ID = r"in_[0-9a-f]{32}"
ESC = "\x1b["


def ctl_argv(broker, identity, *args):
    k = broker.pki
    return [harness.CTL, "--url", broker.url,
            "--ca", os.path.join(k, "ca.pem"),
            "--cert", os.path.join(k, identity + ".pem"),
            "--key", os.path.join(k, identity + ".key")] + list(args)


def run_in_pty(argv, env):
    """Run argv with stdout on a pseudo-terminal; (exit code, output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:         # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(30)
    p.stderr.close()
    return p.returncode, out.decode("utf-8", "replace")


class CtlCase(unittest.TestCase):
    policy = harness.without_limits()

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=cls.policy)
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def ctl(self, *args, who="agent-payments", timeout=30):
        return self.broker.ctl(*args, identity=who, timeout=timeout)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                         (p.returncode, code, p.stdout, p.stderr))

    def submit_pending(self, value="5000.00", reason=None):
        """A fresh pending intent of agent-payments, made with the CLI;
        returns its decision view."""
        # the demo policy reads the amount in args; the claim is equal
        args = ["--json", "submit", "--tool", "payments.transfer",
                "--amount", value, "--currency", "USD",
                "--args", json.dumps({"to": "acct-7", "memo": "invoice 42",
                                      "amount": value, "currency": "USD"})]
        if reason is not None:
            args += ["--reason", reason]
        p = self.ctl(*args)
        self.assertExit(p, 4)               # 4: still pending
        d = json.loads(p.stdout)
        self.assertEqual(d["status"], "pending", d)
        return d

    def pending_json(self, who="approver-alice", *extra):
        p = self.ctl("--json", "pending", *extra, who=who)
        self.assertExit(p, 0)
        return json.loads(p.stdout)["items"]


class Queue(CtlCase):
    def test_pending_table_lists_the_intent_aligned(self):
        d = self.submit_pending()
        p = self.ctl("pending", who="approver-alice")
        self.assertExit(p, 0)
        self.assertNotIn(ESC, p.stdout)     # not a terminal: no colours
        lines = p.stdout.splitlines()
        head = lines[0]
        self.assertRegex(head, r"^ID +AGE +AGENT +TOOL +AMOUNT +APPROVALS "
                               r"+EXPIRES IN$")
        rows = [l for l in lines[1:] if l.startswith(d["id"])]
        self.assertEqual(len(rows), 1, p.stdout)
        row = rows[0]
        # Every column starts where its header does.
        for col, val in (("AGENT", "agent-payments"),
                         ("TOOL", "payments.transfer"),
                         ("AMOUNT", "5000.00 USD"), ("APPROVALS", "0/1")):
            self.assertEqual(row.find(val), head.find(col), (col, p.stdout))
        self.assertRegex(row[head.find("AGE"):], r"^\d+s ")
        self.assertRegex(row[head.find("EXPIRES IN"):], r"^(59m|1h00m)$")
        for line in lines:
            self.assertEqual(line, line.rstrip(), "trailing blanks")

    def test_pending_json_parses_and_holds_the_intent(self):
        d = self.submit_pending()
        items = self.pending_json()
        mine = [i for i in items if i["id"] == d["id"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["agent"], mine[0]["tool"],
                          mine[0]["amount"]),
                         ("agent-payments", "payments.transfer",
                          {"value": "5000.00", "currency": "USD"}))
        # Oldest first.
        ats = [i["created_at"] for i in items]
        self.assertEqual(ats, sorted(ats))

    def test_pending_limit_and_status(self):
        self.submit_pending()
        self.submit_pending()
        self.assertEqual(len(self.pending_json("approver-alice", "--limit",
                                               "1")), 1)
        for bad in (["--limit", "0"], ["--limit", "1001"],
                    ["--limit", "x"], ["--status", "denied"]):
            p = self.ctl("pending", *bad, who="approver-alice")
            self.assertExit(p, 2)
            self.assertIn("--help", p.stderr)

    def test_show_has_what_an_approver_needs(self):
        d = self.submit_pending(reason="supplier invoice 42")
        p = self.ctl("show", d["id"], who="approver-alice")
        self.assertExit(p, 0)
        out = p.stdout
        self.assertRegex(out, r"(?m)^id +%s$" % d["id"])
        self.assertRegex(out, r"(?m)^status +pending$")
        self.assertRegex(out, r"(?m)^agent +agent-payments$")
        self.assertRegex(out, r"(?m)^tool +payments\.transfer$")
        self.assertRegex(out, r"(?m)^amount +5000\.00 USD$")
        self.assertRegex(out, r"(?m)^reason +supplier invoice 42$")
        self.assertRegex(out, r"(?m)^rule +role payments-agent, rule #0 "
                              r"payments\.transfer, tier 1 \(up to 10000")
        self.assertRegex(out, r"(?m)^approvals +0/1 \(approvers: "
                              r"finance-approver\)$")
        self.assertRegex(out, r"(?m)^expires +\S+Z \(in (59m|1h00m)\)$")
        self.assertRegex(out, r"(?m)^created +\S+Z \(\d+s ago\)$")
        # args pretty-printed, one member per line.
        self.assertRegex(out, r'(?m)^args +\{\n +"amount": "5000\.00",\n'
                              r' +"currency": "USD",\n'
                              r' +"memo": "invoice 42",\n'
                              r' +"to": "acct-7"\n +\}$')
        p = self.ctl("--json", "show", d["id"], who="approver-alice")
        self.assertExit(p, 0)
        v = json.loads(p.stdout)
        self.assertEqual((v["id"], v["rule"]["tier"], v["agent_reason"]),
                         (d["id"], 1, "supplier invoice 42"))

    def test_show_hides_terminal_escapes_from_the_agent(self):
        d = self.submit_pending(reason="ok\x1b[2J\rfake line")
        p = self.ctl("show", d["id"], who="approver-alice")
        self.assertExit(p, 0)
        self.assertNotIn("\x1b", p.stdout)
        self.assertRegex(p.stdout, r"(?m)^reason +ok\?\[2J\?fake line$")

    def test_show_unknown_and_bad_ids(self):
        p = self.ctl("show", "in_" + "0" * 32, who="approver-alice")
        self.assertExit(p, 1)
        self.assertIn("not_found", p.stderr)
        for bad in ("in_123", "../v1/policy", "in_" + "A" * 32):
            p = self.ctl("show", bad, who="approver-alice")
            self.assertExit(p, 2)

    def test_approve_releases(self):
        d = self.submit_pending()
        p = self.ctl("approve", d["id"], "--comment", "ok",
                     who="approver-alice")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^status +allowed$")
        self.assertRegex(p.stdout, r"(?m)^approvals +1/1$")
        self.assertIn("released: the agent's grant is ready\n", p.stdout)
        p = self.ctl("show", d["id"], who="approver-bob")
        self.assertRegex(p.stdout, r"(?m)^ +approver-alice at \S+Z: ok$")
        # The agent now sees its grant.
        p = self.ctl("--json", "show", d["id"])
        self.assertExit(p, 0)
        v = json.loads(p.stdout)
        self.assertEqual(v["status"], "allowed")
        self.assertEqual(len(v["grant"].split(".")), 3)

    def test_two_of_n_counts_each_approver_once(self):
        d = self.submit_pending("20000.00")
        p = self.ctl("approve", d["id"], who="approver-alice")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^status +pending$")
        self.assertRegex(p.stdout, r"(?m)^approvals +1/2$")
        self.assertIn("waiting for 1 more approval\n", p.stdout)
        p = self.ctl("approve", d["id"], who="approver-alice")
        self.assertExit(p, 1)
        self.assertIn("toolgatectl: already_approved: ", p.stderr)
        p = self.ctl("--json", "approve", d["id"], who="approver-bob")
        self.assertExit(p, 0)
        v = json.loads(p.stdout)
        self.assertEqual((v["status"], [a["by"] for a in v["approvals"]]),
                         ("allowed", ["approver-alice", "approver-bob"]))

    def test_approve_twice_is_already_decided(self):
        d = self.submit_pending()
        self.assertExit(self.ctl("approve", d["id"], who="approver-alice"),
                        0)
        p = self.ctl("approve", d["id"], who="approver-bob")
        self.assertExit(p, 1)
        self.assertRegex(p.stderr, r"^toolgatectl: already_decided: .+\n$")
        self.assertEqual(p.stdout, "")

    def test_agent_cannot_approve(self):
        d = self.submit_pending()
        p = self.ctl("approve", d["id"])
        self.assertExit(p, 1)
        self.assertRegex(p.stderr, r"^toolgatectl: forbidden: .+\n$")
        p = self.ctl("--json", "approve", d["id"])
        self.assertExit(p, 1)
        self.assertEqual(json.loads(p.stdout)["error"], "forbidden")

    def test_wrong_approver_group(self):
        d = self.submit_pending()
        p = self.ctl("approve", d["id"], who="approver-carol")
        self.assertExit(p, 1)
        self.assertIn("toolgatectl: not_an_approver: ", p.stderr)

    def test_reject_needs_a_reason_before_any_request(self):
        # Nothing listens on this URL: reaching the network would be 3.
        k = self.broker.pki
        argv = [harness.CTL, "--url",
                "https://127.0.0.1:%d" % harness.free_port(),
                "--ca", os.path.join(k, "ca.pem"),
                "--cert", os.path.join(k, "approver-alice.pem"),
                "--key", os.path.join(k, "approver-alice.key"),
                "reject", "in_" + "1" * 32]
        for extra in ([], ["--reason", ""]):
            p = subprocess.run(argv + extra, capture_output=True, text=True,
                               timeout=30)
            self.assertExit(p, 2)
            self.assertIn("--reason is required", p.stderr)

    def test_reject_and_show_the_reason(self):
        d = self.submit_pending()
        p = self.ctl("reject", d["id"], "--reason", "unknown payee",
                     who="approver-alice")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^status +rejected$")
        p = self.ctl("show", d["id"], who="approver-bob")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"(?m)^status +rejected$")
        self.assertRegex(p.stdout, r"(?m)^rejected +by approver-alice: "
                                   r"unknown payee$")
        p = self.ctl("approve", d["id"], who="approver-bob")
        self.assertExit(p, 1)
        self.assertIn("already_decided", p.stderr)
        items = self.pending_json("approver-alice", "--status", "rejected")
        self.assertIn(d["id"], [i["id"] for i in items])
        self.assertNotIn(d["id"], [i["id"] for i in self.pending_json()])

    def test_online_only_commands_refuse_db(self):
        p = self.broker.ctl_db("pending")
        self.assertExit(p, 2)
        self.assertIn("drop --db", p.stderr)

    def test_help_for_each_command(self):
        for cmd, opt in (("pending", "--status S"),
                         ("show", "example:"),
                         ("approve", "--comment TEXT"),
                         ("reject", "--reason TEXT"),
                         ("submit", "--wait SECONDS")):
            p = subprocess.run([harness.CTL, cmd, "--help"],
                               capture_output=True, text=True, timeout=30)
            self.assertExit(p, 0)
            self.assertTrue(p.stdout.startswith(
                "usage: toolgatectl [global options] " + cmd), p.stdout)
            self.assertIn(opt, p.stdout)


class Wait(CtlCase):
    def start_waiting_submit(self, seconds, *extra):
        """A background `submit --wait` of 5000.00 USD with a unique
        reason; returns (process, intent id) once the intent is queued."""
        marker = "wait-" + uuid.uuid4().hex
        argv = ctl_argv(self.broker, "agent-payments", *extra, "submit",
                        "--tool", "payments.transfer", "--args",
                        '{"amount": "5000.00", "currency": "USD"}',
                        "--reason", marker,
                        "--wait", str(seconds))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mine = [i for i in self.pending_json()
                    if i.get("agent_reason") == marker]
            if mine:
                return proc, mine[0]["id"]
            time.sleep(0.1)
        self.fail("the waiting submit never queued its intent")

    def test_wait_returns_the_grant_soon_after_approval(self):
        proc, iid = self.start_waiting_submit(20)
        time.sleep(1.0)                 # let it settle into the long-poll
        self.assertIsNone(proc.poll(), "submit --wait returned early")
        p = self.ctl("approve", iid, "--comment", "ok", who="approver-alice")
        self.assertExit(p, 0)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=20)
        waited = time.monotonic() - t0
        self.assertEqual(proc.returncode, 0, out + err)
        self.assertLess(waited, 2.5)
        # the pending id came first (before the wait), then the outcome
        self.assertRegex(out, r"^pending +%s +payments\.transfer\n" % iid)
        self.assertRegex(out, r"(?m)^allowed +%s +payments\.transfer$" % iid)
        self.assertRegex(out, r"(?m)^approved +by approver-alice at \S+Z$")
        self.assertRegex(out, r"(?m)^grant +[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
                              r"\.[A-Za-z0-9_-]+$")

    def test_wait_json_prints_the_final_view(self):
        proc, iid = self.start_waiting_submit(20, "--json")
        time.sleep(0.5)
        self.assertExit(self.ctl("approve", iid, who="approver-bob"), 0)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, out + err)
        v = json.loads(out)
        self.assertEqual((v["id"], v["status"]), (iid, "allowed"))
        self.assertEqual(v["approvals"][0]["by"], "approver-bob")
        self.assertEqual(len(v["grant"].split(".")), 3)

    def test_wait_reports_a_rejection(self):
        proc, iid = self.start_waiting_submit(20)
        time.sleep(0.5)
        self.assertExit(self.ctl("reject", iid, "--reason", "no invoice",
                                 who="approver-alice"), 0)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, out + err)
        # what was printed before the wait, and nothing after it
        self.assertRegex(out, r"^pending +%s +payments\.transfer\n" % iid)
        self.assertNotIn("allowed", out)
        self.assertIn("toolgatectl: rejected by approver-alice: no invoice",
                      err)

    def test_wait_times_out_still_pending(self):
        t0 = time.monotonic()
        p = self.ctl("submit", "--tool", "payments.transfer", "--args",
                     '{"amount": "5000.00", "currency": "USD"}', "--wait",
                     "2")
        took = time.monotonic() - t0
        self.assertExit(p, 4)                   # 4: still pending
        self.assertRegex(p.stdout, r"^pending +%s" % ID)
        self.assertIn("still pending after 2 s", p.stderr)
        self.assertIn("toolgatectl wait in_", p.stderr)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 8)

    def test_wait_is_irrelevant_when_allowed_at_once(self):
        t0 = time.monotonic()
        p = self.ctl("submit", "--tool", "crm.lookup", "--wait", "30")
        self.assertExit(p, 0)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertRegex(p.stdout, r"^allowed +%s +crm\.lookup\n" % ID)

    def test_wait_range(self):
        for bad in ("0", "3601", "x", "-1"):
            p = self.ctl("submit", "--tool", "crm.lookup", "--wait", bad)
            self.assertExit(p, 2)
            self.assertIn("--wait must be 1..3600", p.stderr)


def short_ttl_policy():
    pol = harness.without_limits()
    for rule in pol["roles"]["payments-agent"]["rules"]:
        if rule["tool"] == "payments.transfer":
            rule["approval_ttl"] = 120
    return pol


class Terminal(CtlCase):
    """Colours only on a terminal and without NO_COLOR; approvals that
    expire within 5 minutes are highlighted."""
    policy = short_ttl_policy()

    def env(self, **kw):
        e = dict(os.environ)
        e.pop("NO_COLOR", None)
        e.update(kw)
        return e

    def test_colours_on_a_tty_only(self):
        d = self.submit_pending()
        argv = ctl_argv(self.broker, "approver-alice", "pending")
        rc, out = run_in_pty(argv, self.env())
        self.assertEqual(rc, 0, out)
        self.assertIn(d["id"], out)
        self.assertTrue(out.startswith(ESC + "1mID"), repr(out[:40]))
        # 120 s left: the EXPIRES IN cell is yellow.
        self.assertRegex(out, re.escape(ESC) + r"33m(\dm\d\ds|\d+s)" +
                         re.escape(ESC) + "0m")
        rc, out = run_in_pty(argv, self.env(NO_COLOR="1"))
        self.assertEqual(rc, 0, out)
        self.assertIn(d["id"], out)
        self.assertNotIn("\x1b", out)

    def test_empty_queue_message(self):
        for i in self.pending_json():
            self.assertExit(self.ctl("reject", i["id"], "--reason", "clear",
                                     who="approver-alice"), 0)
        p = self.ctl("pending", who="approver-alice")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "no pending intents\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
