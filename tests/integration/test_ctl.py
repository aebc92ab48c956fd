"""toolgatectl against a real toolgated (CONTRACT section 7).

Offline cases (policy check, --db apply/show, audit verify) run the CLI
alone; online cases start a broker with harness.Broker and talk to it over
real mutual TLS.  Exit codes are part of the contract: 0 done, 1 refused or
failed, 2 usage, 3 connection or TLS failure.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXAMPLE = harness.EXAMPLE_POLICY

# Every command and group: each must answer --help with exit 0.
COMMANDS = [
    [], ["submit"], ["pending"], ["show"], ["approve"], ["reject"],
    ["killswitch"], ["killswitch", "trip"], ["killswitch", "status"],
    ["killswitch", "reset"], ["policy"], ["policy", "check"],
    ["policy", "apply"], ["policy", "show"], ["audit"], ["audit", "verify"],
    ["audit", "export"],
]

BAD_POLICY = {
    "principals": {"agent-x": {"roles": ["missing-role"]}},
    "roles": {"r": {"rules": [{"tool": "Not A Tool"}]}},
}


def run(*args, env=None, input=None):
    """toolgatectl with exactly these arguments (no identity added)."""
    e = dict(os.environ)
    for k in ("TOOLGATE_URL", "TOOLGATE_CERT", "TOOLGATE_KEY", "TOOLGATE_CA"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([harness.CTL, *args], capture_output=True,
                          text=True, env=e, input=input, timeout=60)


def identity(pki, name):
    return ["--cert", os.path.join(pki, name + ".pem"),
            "--key", os.path.join(pki, name + ".key")]


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_ctl.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                         (p.returncode, code, p.stdout, p.stderr))


class HelpAndUsage(Tmp):
    def test_help_for_every_command_exits_0(self):
        for path in COMMANDS:
            for flag in ("--help", "-h"):
                p = run(*path, flag)
                self.assertExit(p, 0)
                self.assertTrue(p.stdout.startswith(
                    "usage: toolgatectl [global options] " +
                    " ".join(path)), p.stdout)
                self.assertIn("example:\n  toolgatectl", p.stdout)
                self.assertIn("--help", p.stdout)

    def test_submit_help_lists_its_options(self):
        out = run("submit", "--help").stdout
        for opt in ("--tool NAME", "--amount VALUE", "--currency CODE",
                    "--args JSON", "--reason TEXT", "--audience NAME",
                    "--ttl SECONDS"):
            self.assertIn(opt, out)

    def test_version(self):
        p = run("--version")
        self.assertExit(p, 0)
        self.assertRegex(p.stdout, r"^toolgatectl \d+\.\d+\.\d+\n$")

    def test_unknown_command_lists_choices(self):
        p = run("frobnicate")
        self.assertExit(p, 2)
        self.assertIn("unknown command: frobnicate", p.stderr)
        self.assertIn("valid commands: submit", p.stderr)
        p = run("policy", "frob")
        self.assertExit(p, 2)
        self.assertIn("valid commands: check apply show", p.stderr)

    def test_bad_usage_is_2(self):
        pki = harness.pki()
        ident = identity(pki, "agent-payments") + [
            "--ca", os.path.join(pki, "ca.pem"),
            "--url", "https://127.0.0.1:%d" % harness.free_port()]
        cases = [
            [],
            ["policy"],
            ["policy", "check"],
            ["policy", "check", EXAMPLE, "extra"],
            ["--no-such-flag", "policy", "show"],
            ["audit", "verify"],                      # needs --db
            ["submit"],                               # --tool missing
            ["submit", "--tool"],                     # value missing
            ["submit", "--tool", "Bad Tool"],
            ["submit", "--tool", "a.b", "--amount", "12.50"],
            ["submit", "--tool", "a.b", "--amount", "1e3", "--currency",
             "USD"],
            ["submit", "--tool", "a.b", "--amount", "-1", "--currency",
             "USD"],
            ["submit", "--tool", "a.b", "--amount", "1.2345678",
             "--currency", "USD"],
            ["submit", "--tool", "a.b", "--amount", "1", "--currency",
             "usd"],
            ["submit", "--tool", "a.b", "--args", "[1, 2]"],
            ["submit", "--tool", "a.b", "--args", "{nope"],
            ["submit", "--tool", "a.b", "--ttl", "301"],
            ["submit", "--tool", "a.b", "--reason", "x" * 1025],
            ["submit", "--tool", "a.b", "--wait", "0"],
        ]
        for args in cases:
            # Identity flags come first so that only the case is wrong;
            # nothing listens on the URL, so reaching the network would
            # show up as exit 3.
            p = run(*(ident if args[:1] == ["submit"] else []), *args)
            self.assertExit(p, 2)
            self.assertIn("--help", p.stderr, args)

    def test_online_command_without_identity_is_2(self):
        p = run("--url", "https://127.0.0.1:1", "policy", "show")
        self.assertExit(p, 2)
        self.assertIn("--cert", p.stderr)


class PolicyOffline(Tmp):
    def test_check_example_is_ok(self):
        with open(EXAMPLE) as f:
            doc = json.load(f)
        p = run("policy", "check", EXAMPLE)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "policy OK: %d principals, %d roles, "
                         "%d limit\n" % (len(doc["principals"]),
                                         len(doc["roles"]),
                                         len(doc["limits"])))
        self.assertEqual(p.stderr, "")
        p = run("--json", "policy", "check", EXAMPLE)
        self.assertExit(p, 0)
        out = json.loads(p.stdout)
        self.assertEqual((out["valid"], out["limits"], out["warnings"]),
                         (True, 1, []))

    def test_check_warns_but_does_not_fail(self):
        # agent-x approves its own rule; nobody holds "ghosts"
        doc = {"principals": {"agent-x": {"roles": ["pay", "fin"]},
                              "alice": {"roles": ["fin"]},
                              "bob": {"roles": ["fin"]}},
               "roles": {"fin": {}, "ghosts": {},
                         "pay": {"rules": [
                             {"tool": "p.x", "approvals": 2,
                              "approvers": ["fin"]},
                             {"tool": "p.y", "approvals": 1,
                              "approvers": ["ghosts"]}]}}}
        path = self.write("warn.json", json.dumps(doc))
        p = run("policy", "check", path)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "policy OK: 3 principals, 3 roles "
                         "(2 warnings)\n")
        self.assertEqual([line.split(": ")[1] for line in
                          p.stderr.splitlines()],
                         ["$.principals.agent-x", "$.roles.pay.rules[1]"])
        self.assertTrue(all(line.startswith("warning: ")
                            for line in p.stderr.splitlines()))
        self.assertIn("self_approval", p.stderr)
        p = run("--json", "policy", "check", path)
        self.assertExit(p, 0)
        out = json.loads(p.stdout)
        self.assertEqual([(w["code"], w["path"]) for w in out["warnings"]],
                         [("self_approver", "$.principals.agent-x"),
                          ("never_approvable", "$.roles.pay.rules[1]")])
        # a warning is no reason to refuse: apply stores it, and warns
        db = os.path.join(self.tmp, "w.db")
        p = run("--db", db, "policy", "apply", path)
        self.assertExit(p, 0)
        self.assertIn("warning: $.roles.pay.rules[1]: ", p.stderr)

    def test_check_invalid_prints_paths_and_exits_1(self):
        path = self.write("bad.json", BAD_POLICY)
        p = run("policy", "check", path)
        self.assertExit(p, 1)
        self.assertIn("$.principals.agent-x.roles[0]: ", p.stderr)
        self.assertIn("$.roles.r.rules[0].tool: ", p.stderr)
        p = run("--json", "policy", "check", path)
        self.assertExit(p, 1)
        out = json.loads(p.stdout)
        self.assertIs(out["valid"], False)
        paths = [x["path"] for x in out["problems"]]
        self.assertIn("$.roles.r.rules[0].tool", paths)
        self.assertTrue(all(x["message"] for x in out["problems"]))

    def test_check_not_json_and_missing_file(self):
        p = run("policy", "check", self.write("x.json", "{not json"))
        self.assertExit(p, 1)
        self.assertIn("invalid JSON", p.stderr)
        # a local file that is not there is a usage error (2), not a
        # refusal (1)
        p = run("policy", "check", os.path.join(self.tmp, "absent.json"))
        self.assertExit(p, 2)
        self.assertIn("absent.json: No such file or directory", p.stderr)

    def test_apply_offline_then_show(self):
        db = os.path.join(self.tmp, "t.db")
        with open(EXAMPLE, "rb") as f:
            raw = f.read()
        sha = hashlib.sha256(raw).hexdigest()
        p = run("--db", db, "policy", "apply", EXAMPLE)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout,
                         "policy version 1 applied (sha256 %s)\n" % sha)
        p = run("--db", db, "--json", "policy", "apply", EXAMPLE)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout), {"version": 2, "sha256": sha})
        p = run("--db", db, "policy", "show")
        self.assertExit(p, 0)
        head, body = p.stdout.split("\n", 1)
        self.assertEqual(head, "version 2")
        self.assertEqual(json.loads(body), json.loads(raw))
        p = run("--db", db, "--json", "policy", "show")
        out = json.loads(p.stdout)
        self.assertEqual((out["version"], out["sha256"]), (2, sha))
        self.assertEqual(out["policy"], json.loads(raw))

    def test_apply_invalid_offline_stores_nothing(self):
        db = os.path.join(self.tmp, "t.db")
        p = run("--db", db, "policy", "apply",
                self.write("bad.json", BAD_POLICY))
        self.assertExit(p, 1)
        self.assertIn("$.roles.r.rules[0].tool", p.stderr)
        p = run("--db", db, "policy", "show")
        self.assertExit(p, 2)                   # no database was made
        self.assertIn("No such file or directory", p.stderr)

    def test_offline_audit_actor_is_cli_user(self):
        db = os.path.join(self.tmp, "t.db")
        self.assertExit(run("--db", db, "policy", "apply", EXAMPLE), 0)
        with sqlite3.connect(db) as c:
            rec = json.loads(c.execute(
                "SELECT record FROM audit WHERE seq = 1").fetchone()[0])
        self.assertEqual(rec["event"], "policy.apply")
        self.assertTrue(rec["actor"].startswith("cli:"), rec)

    def test_show_on_missing_db_does_not_create_it(self):
        db = os.path.join(self.tmp, "absent.db")
        p = run("--db", db, "policy", "show")
        self.assertExit(p, 2)
        self.assertIn("--db %s: No such file or directory" % db, p.stderr)
        self.assertFalse(os.path.exists(db))


class Online(Tmp):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=EXAMPLE)
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def ctl(self, *args, who="agent-payments"):
        return self.broker.ctl(*args, identity=who)

    def test_submit_allowed(self):
        p = self.ctl("submit", "--tool", "crm.lookup",
                     "--args", '{"customer": "c-1"}')
        self.assertExit(p, 0)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^allowed +in_[0-9a-f]{32} +crm\.lookup$")
        self.assertRegex(p.stdout, r"\ngrant +[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
                                   r"\.[A-Za-z0-9_-]+\n")
        p = self.ctl("--json", "submit", "--tool", "crm.lookup")
        self.assertExit(p, 0)
        d = json.loads(p.stdout)
        self.assertEqual((d["decision"], d["status"]), ("allow", "allowed"))
        self.assertEqual(len(d["grant"].split(".")), 3)
        self.assertEqual(d["agent"], "agent-payments")

    def test_submit_amount_travels_exactly(self):
        # the claim beside the same amount in args, where the demo policy
        # reads it: any drift in the claim would be 400 amount_mismatch
        p = self.ctl("--json", "submit", "--tool", "payments.transfer",
                     "--amount", "12.50", "--currency", "USD",
                     "--args", '{"amount": "12.50", "currency": "USD"}',
                     "--reason", "lunch")
        self.assertExit(p, 0)
        d = json.loads(p.stdout)
        self.assertEqual(d["amount"], {"value": "12.50", "currency": "USD"})
        self.assertEqual(d["agent_reason"], "lunch")
        # a rule that does not bind it carries the claim as typed
        p = self.ctl("--json", "submit", "--tool", "crm.lookup",
                     "--amount", "12.50", "--currency", "USD")
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["amount"],
                         {"value": "12.50", "currency": "USD"})

    def test_submit_declared_amount_differs_from_args_is_1(self):
        p = self.ctl("submit", "--tool", "payments.transfer",
                     "--amount", "1.00", "--currency", "USD",
                     "--args", '{"amount": "50000", "currency": "USD"}')
        self.assertExit(p, 1)
        self.assertIn("amount_mismatch", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_submit_pending(self):
        p = self.ctl("submit", "--tool", "payments.transfer",
                     "--args", '{"amount": "5000.00", "currency": "USD"}')
        self.assertExit(p, 4)
        self.assertRegex(p.stdout, r"^pending +in_[0-9a-f]{32} +"
                                   r"payments\.transfer\n")
        self.assertIn("toolgatectl approve in_", p.stdout)
        p = self.ctl("--json", "submit", "--tool", "payments.transfer",
                     "--args", '{"amount": "5000.00", "currency": "USD"}')
        self.assertExit(p, 4)
        d = json.loads(p.stdout)
        self.assertEqual((d["decision"], d["approvals_required"]),
                         ("pending", 1))
        self.assertIn("expires_at", d)
        self.assertNotIn("grant", d)

    def test_submit_denied_is_1_with_code(self):
        p = self.ctl("submit", "--tool", "email.send")
        self.assertExit(p, 1)
        self.assertIn("denied: no_permission: ", p.stderr)
        self.assertEqual(p.stdout, "")
        p = self.ctl("submit", "--tool", "payments.transfer",
                     "--args", '{"amount": "100000.01", "currency": "USD"}')
        self.assertExit(p, 1)
        self.assertIn("amount_over_limit", p.stderr)

    def test_policy_apply_online(self):
        with open(EXAMPLE, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        before = json.loads(self.ctl("--json", "policy", "show",
                                     who="operator-olga").stdout)
        p = self.ctl("policy", "apply", EXAMPLE, who="operator-olga")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "policy version %d applied (sha256 %s)\n"
                         % (before["version"] + 1, sha))
        p = self.ctl("policy", "show", who="operator-olga")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.split("\n", 1)[0],
                         "version %d" % (before["version"] + 1))

    def test_policy_apply_by_agent_is_forbidden(self):
        p = self.ctl("policy", "apply", EXAMPLE)
        self.assertExit(p, 1)
        self.assertIn("toolgatectl: forbidden: ", p.stderr)
        p = self.ctl("--json", "policy", "show")
        self.assertExit(p, 1)
        self.assertEqual(json.loads(p.stdout)["error"], "forbidden")

    def test_policy_apply_invalid_never_reaches_broker(self):
        p = self.ctl("policy", "apply", self.write("bad.json", BAD_POLICY),
                     who="operator-olga")
        self.assertExit(p, 1)
        self.assertIn("$.roles.r.rules[0].tool", p.stderr)

    def direct(self, *args, ca=None, url=None, who="agent-payments"):
        pki = self.broker.pki
        return run("--url", url or self.broker.url,
                   "--ca", ca or os.path.join(pki, "ca.pem"),
                   *identity(pki, who), *args)

    def test_env_fallbacks(self):
        pki = self.broker.pki
        p = run("submit", "--tool", "crm.lookup", env={
            "TOOLGATE_URL": self.broker.url,
            "TOOLGATE_CA": os.path.join(pki, "ca.pem"),
            "TOOLGATE_CERT": os.path.join(pki, "agent-payments.pem"),
            "TOOLGATE_KEY": os.path.join(pki, "agent-payments.key")})
        self.assertExit(p, 0)
        self.assertTrue(p.stdout.startswith("allowed "))

    def test_unreachable_url_is_3(self):
        url = "https://127.0.0.1:%d" % harness.free_port()
        p = self.direct("submit", "--tool", "crm.lookup", url=url)
        self.assertExit(p, 3)
        self.assertIn("cannot connect to " + url, p.stderr)

    def test_wrong_ca_is_3(self):
        key = os.path.join(self.tmp, "other.key")
        ca = os.path.join(self.tmp, "other.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=other CA", "-days", "1",
                        "-keyout", key, "-out", ca],
                       check=True, capture_output=True)
        p = self.direct("submit", "--tool", "crm.lookup", ca=ca)
        self.assertExit(p, 3)
        self.assertIn("certificate verify failed", p.stderr)
        # and says what to check
        self.assertIn("is --ca (TOOLGATE_CA) the CA that issued the "
                      "broker's certificate?", p.stderr)

    def test_host_name_is_checked(self):
        # The broker certificate names localhost and 127.0.0.1 only.
        port = self.broker.url.rsplit(":", 1)[1]
        p = self.direct("submit", "--tool", "crm.lookup",
                        url="https://localhost:" + port)
        self.assertExit(p, 0)
        # Same socket address, but not a name the certificate holds.
        p = self.direct("submit", "--tool", "crm.lookup",
                        url="https://[::ffff:127.0.0.1]:" + port)
        self.assertExit(p, 3)
        self.assertIn("certificate verify failed", p.stderr)
        self.assertIn("IP address mismatch", p.stderr)

    @harness.sqlite_only("copies the SQLite file and tampers with the copy")
    def test_audit_verify_and_tamper(self):
        self.assertExit(self.ctl("submit", "--tool", "crm.lookup"), 0)
        copy = os.path.join(self.tmp, "copy.db")
        src = sqlite3.connect(self.broker.db)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        n = dst.execute("SELECT count(*) FROM audit").fetchone()[0]
        self.assertGreaterEqual(n, 2)
        p = run("--db", copy, "audit", "verify")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, "audit chain OK: %d records\n" % n)
        p = run("--db", copy, "--json", "audit", "verify")
        self.assertEqual(json.loads(p.stdout)["records"], n)

        dst.execute("DROP TRIGGER audit_no_update")
        rec = dst.execute("SELECT record FROM audit WHERE seq = 2"
                          ).fetchone()[0]
        dst.execute("UPDATE audit SET record = ? WHERE seq = 2",
                    (rec.replace('"actor":"', '"actor":"x', 1),))
        dst.commit()
        dst.close()
        p = run("--db", copy, "audit", "verify")
        self.assertExit(p, 1)
        self.assertIn("audit chain BROKEN at record 2: ", p.stderr)
        p = run("--db", copy, "--json", "audit", "verify")
        self.assertExit(p, 1)
        out = json.loads(p.stdout)
        self.assertEqual((out["ok"], out["bad_seq"], out["records"]),
                         (False, 2, 1))


if __name__ == "__main__":
    unittest.main(verbosity=2)
