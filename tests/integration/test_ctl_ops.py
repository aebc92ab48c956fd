"""
test_ctl_ops: toolgatectl for scripts and approvers (issue 16, points 7,
9, 10 and 12) against a real toolgated: exit 4 while an intent is still
pending, `toolgatectl wait ID`, `submit --wait` printing the id before it
waits also into a pipe, `pending -q`, TOOLGATE_DB, `--args @FILE` and
`--args -`, show and pending neutralising C1 and bidi controls, help that
fits 80 columns without cutting words, and errors that name the local
file at fault (exit 2, not 1).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ID = r"in_[0-9a-f]{32}"

COMMANDS = [
    [], ["submit"], ["wait"], ["pending"], ["show"], ["approve"],
    ["reject"], ["killswitch"], ["killswitch", "trip"],
    ["killswitch", "status"], ["killswitch", "reset"], ["policy"],
    ["policy", "check"], ["policy", "apply"], ["policy", "explain"],
    ["policy", "show"], ["policy", "history"], ["limits"], ["audit"],
    ["audit", "verify"], ["audit", "export"], ["audit", "checkpoint"],
    ["audit", "prune"],
]

# Characters a terminal acts on instead of showing: C1 controls (U+009B is
# a one-character CSI) and bidirectional overrides and isolates.
UNSAFE = ["\u0085", "\u009b", "\u202a", "\u202b", "\u202c", "\u202d",
          "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


def clean_env(**kw):
    e = dict(os.environ)
    for k in ("TOOLGATE_URL", "TOOLGATE_CERT", "TOOLGATE_KEY", "TOOLGATE_CA",
              "TOOLGATE_DB"):
        e.pop(k, None)
    e.update(kw)
    return e


def run(*args, env=None, input=None, timeout=60):
    return subprocess.run([harness.CTL, *args], capture_output=True,
                          text=True, env=env or clean_env(), input=input,
                          timeout=timeout)


class Case(unittest.TestCase):
    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                         (p.returncode, code, p.stdout, p.stderr))


class Help(Case):
    def help_of(self, path):
        p = run(*path, "--help")
        self.assertExit(p, 0)
        return p.stdout

    def test_every_help_fits_80_columns_without_trailing_blanks(self):
        for path in COMMANDS:
            for n, line in enumerate(self.help_of(path).splitlines(), 1):
                self.assertLessEqual(len(line), 80, "%s line %d: %r" %
                                     (path, n, line))
                self.assertEqual(line, line.rstrip(), "%s line %d ends in "
                                 "a blank: %r" % (path, n, line))

    def test_no_word_is_cut(self):
        """Every --option named anywhere in any help is one the CLI has:
        a line cut at --reject-pe would name one that does not exist."""
        texts = {tuple(p): self.help_of(p) for p in COMMANDS}
        known = {"--help"}
        for text in texts.values():
            known |= set(re.findall(r"(?m)^  (?:-\w, )?(--[a-z-]+)", text))
        for path, text in texts.items():
            for opt in re.findall(r"--[a-z][a-z-]*", text):
                self.assertIn(opt, known, "%s --help names %s" %
                              (list(path), opt))

    def test_usage_keeps_groups_whole(self):
        text = self.help_of(["killswitch", "trip"])
        usage = " ".join(text.split("\n\n")[0].split())
        self.assertEqual(usage, "usage: toolgatectl [global options] "
                         "killswitch trip [--agent NAME | --tool PATTERN] "
                         "--reason TEXT [--reject-pending] [--force]")
        for line in text.splitlines():
            self.assertEqual(line.count("["), line.count("]"), line)

    def test_root_help_names_exit_4_and_the_environment(self):
        text = " ".join(self.help_of([]).split())
        self.assertIn("4 still pending", text)
        self.assertIn("TOOLGATE_DB", text)
        self.assertIn("wait ID [--timeout S]", text)


class LocalFiles(Case):
    """A local file that cannot be used is a usage error (2) naming the
    file and what is wrong with it."""

    @classmethod
    def setUpClass(cls):
        cls.pki = harness.pki()
        cls.tmp = tempfile.mkdtemp(prefix="test_ctl_ops.")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def online(self, *args, cert="agent-payments.pem",
               key="agent-payments.key", ca="ca.pem"):
        k = self.pki
        return run("--url", "https://127.0.0.1:%d" % harness.free_port(),
                   "--ca", os.path.join(k, ca), "--cert", os.path.join(k, cert),
                   "--key", os.path.join(k, key), *args)

    def test_missing_cert_says_it_does_not_exist(self):
        for cmd in (["submit", "--tool", "crm.lookup"], ["pending"]):
            p = self.online(*cmd, cert="nope.pem")
            self.assertExit(p, 2)
            self.assertIn("--cert %s: No such file or directory" %
                          os.path.join(self.pki, "nope.pem"), p.stderr)
            self.assertNotIn("identity", p.stderr)

    def test_missing_key_and_ca(self):
        p = self.online("pending", key="nope.key")
        self.assertExit(p, 2)
        self.assertIn("--key %s: No such file or directory" %
                      os.path.join(self.pki, "nope.key"), p.stderr)
        p = self.online("submit", "--tool", "crm.lookup", ca="nope.pem")
        self.assertExit(p, 2)
        self.assertIn("--ca %s: No such file or directory" %
                      os.path.join(self.pki, "nope.pem"), p.stderr)

    def test_a_directory_is_not_a_file(self):
        p = self.online("pending", cert="foreign")
        self.assertExit(p, 2)
        self.assertIn("is a directory", p.stderr)

    def test_wrong_pair_blames_the_pairing(self):
        for cmd in (["submit", "--tool", "crm.lookup"], ["pending"]):
            p = self.online(*cmd, cert="agent-payments.pem",
                            key="agent-support.key")
            self.assertExit(p, 2)
            self.assertIn("--cert %s and --key %s do not belong together" %
                          (os.path.join(self.pki, "agent-payments.pem"),
                           os.path.join(self.pki, "agent-support.key")),
                          p.stderr)

    def test_not_a_certificate(self):
        p = self.online("submit", "--tool", "crm.lookup",
                        cert="agent-payments.key")
        self.assertExit(p, 2)
        self.assertIn("not a PEM certificate", p.stderr)

    def test_policy_file_and_db(self):
        p = run("policy", "check", os.path.join(self.tmp, "absent.json"))
        self.assertExit(p, 2)
        self.assertIn("absent.json: No such file or directory", p.stderr)
        p = run("--db", os.path.join(self.tmp, "absent.db"), "audit",
                "verify")
        self.assertExit(p, 2)
        self.assertIn("absent.db: No such file or directory", p.stderr)


class Online(Case):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=harness.without_limits())
        cls.broker.__enter__()
        cls.tmp = tempfile.mkdtemp(prefix="test_ctl_ops.")

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, True)

    def argv(self, who, *args):
        k = self.broker.pki
        return [harness.CTL, "--url", self.broker.url,
                "--ca", os.path.join(k, "ca.pem"),
                "--cert", os.path.join(k, who + ".pem"),
                "--key", os.path.join(k, who + ".key")] + list(args)

    def ctl(self, *args, who="agent-payments", input=None, env=None):
        return subprocess.run(self.argv(who, *args), capture_output=True,
                              text=True, input=input, timeout=60,
                              env=env or clean_env())

    def pending_intent(self, reason=None):
        args = ["--json", "submit", "--tool", "payments.transfer",
                "--args", '{"amount": "5000.00", "currency": "USD"}']
        if reason is not None:
            args += ["--reason", reason]
        p = self.ctl(*args)
        self.assertExit(p, 4)
        d = json.loads(p.stdout)
        self.assertEqual(d["status"], "pending")
        return d["id"]

    def approve(self, iid):
        self.assertExit(self.ctl("approve", iid, who="approver-alice"), 0)

    # -- exit 4 and wait

    def test_pending_submit_exits_4(self):
        p = self.ctl("submit", "--tool", "payments.transfer",
                     "--args", '{"amount": "5000.00", "currency": "USD"}')
        self.assertExit(p, 4)
        self.assertRegex(p.stdout, r"^pending +%s +payments\.transfer\n" % ID)
        # allowed is still 0, refused still 1
        self.assertExit(self.ctl("submit", "--tool", "crm.lookup"), 0)
        self.assertExit(self.ctl("submit", "--tool", "nope.nothing"), 1)

    def test_wait_looks_once_with_timeout_0(self):
        iid = self.pending_intent()
        t0 = time.monotonic()
        p = self.ctl("wait", iid, "--timeout", "0")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertExit(p, 4)
        self.assertRegex(p.stdout, r"^pending +%s +payments\.transfer\n" %
                         iid)

    def test_wait_returns_when_approved(self):
        iid = self.pending_intent()
        proc = subprocess.Popen(self.argv("agent-payments", "wait", iid,
                                          "--timeout", "60"),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        time.sleep(0.5)
        self.assertIsNone(proc.poll(), "wait returned before the approval")
        self.approve(iid)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, out + err)
        self.assertRegex(out, r"^allowed +%s +payments\.transfer\n" % iid)
        self.assertRegex(out, r"(?m)^grant +[\w-]+\.[\w-]+\.[\w-]+$")
        # an approver may wait on it as well (and gets no grant)
        p = self.ctl("--json", "wait", iid, who="approver-bob")
        self.assertExit(p, 0)
        self.assertNotIn("grant", json.loads(p.stdout))

    def test_wait_times_out_with_4_and_refusals_are_1(self):
        iid = self.pending_intent()
        t0 = time.monotonic()
        p = self.ctl("wait", iid, "--timeout", "2")
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        self.assertExit(p, 4)
        self.assertIn("still pending after 2 s", p.stderr)
        self.assertExit(self.ctl("reject", iid, "--reason", "no",
                                 who="approver-alice"), 0)
        p = self.ctl("wait", iid, "--timeout", "5")
        self.assertExit(p, 1)
        self.assertIn("rejected by approver-alice: no", p.stderr)

    def test_wait_usage(self):
        for args in (["wait"], ["wait", "in_123"],
                     ["wait", "in_" + "0" * 32, "--timeout", "3601"],
                     ["wait", "in_" + "0" * 32, "--timeout", "-1"]):
            p = self.ctl(*args)
            self.assertExit(p, 2)
        p = self.ctl("wait", "in_" + "0" * 32, "--timeout", "0")
        self.assertExit(p, 1)
        self.assertIn("not_found", p.stderr)

    def test_submit_wait_prints_the_id_first_into_a_pipe(self):
        reason = "pipe-%d" % time.monotonic_ns()
        proc = subprocess.Popen(self.argv(
            "agent-payments", "submit", "--tool", "payments.transfer",
            "--args", '{"amount": "5000.00", "currency": "USD"}', "--reason", reason,
            "--wait", "60"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        lines, got = [], threading.Event()

        def read():
            for line in proc.stdout:
                lines.append(line)
                got.set()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self.assertTrue(got.wait(30), "nothing on stdout while waiting")
        m = re.match(r"^pending +(%s) +payments\.transfer$" % ID, lines[0])
        self.assertTrue(m, lines[0])
        self.assertIsNone(proc.poll(), "it did not wait")
        self.approve(m.group(1))
        self.assertEqual(proc.wait(30), 0, proc.stderr.read())
        reader.join(10)
        out = "".join(lines)
        self.assertIn("waiting up to 60 s", out)
        self.assertRegex(out, r"(?m)^allowed +%s +payments\.transfer$" %
                         m.group(1))

    # -- pending -q

    def test_pending_quiet_prints_ids_only(self):
        iid = self.pending_intent()
        for args in (["pending", "-q"], ["pending", "--quiet"],
                     ["--json", "pending", "-q"]):
            p = self.ctl(*args, who="approver-alice")
            self.assertExit(p, 0)
            lines = p.stdout.splitlines()
            self.assertIn(iid, lines)
            for line in lines:
                self.assertRegex(line, "^%s$" % ID)

    # -- TOOLGATE_DB

    def test_toolgate_db_for_offline_commands(self):
        env = clean_env(TOOLGATE_DB=self.broker.db)
        p = run("policy", "show", env=env)
        self.assertExit(p, 0)
        self.assertTrue(p.stderr.startswith("policy version "), p.stderr)
        p = run("killswitch", "status", env=env)
        self.assertExit(p, 0)
        # a --url on the command line means online: TOOLGATE_DB steps aside
        env = clean_env(TOOLGATE_DB=os.path.join(self.tmp, "absent.db"))
        self.assertExit(run("killswitch", "status", env=env), 2)
        p = subprocess.run(self.argv("operator-olga", "killswitch",
                                     "status"), capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertExit(p, 0)
        # commands that exist only online ignore it
        p = self.ctl("pending", who="approver-alice",
                     env=clean_env(TOOLGATE_DB=self.broker.db))
        self.assertExit(p, 0)

    # -- --args @FILE and -

    def grant_args(self, p):
        self.assertExit(p, 0)
        grant = json.loads(p.stdout)["grant"]
        return json.loads(harness.b64url_decode(grant.split(".")[1]))["args"]

    def test_args_from_a_file_and_from_stdin(self):
        path = os.path.join(self.tmp, "args.json")
        with open(path, "w") as f:
            json.dump({"id": 42, "note": "from a file"}, f)
        p = self.ctl("--json", "submit", "--tool", "crm.lookup", "--args",
                     "@" + path)
        self.assertEqual(self.grant_args(p), {"id": 42,
                                              "note": "from a file"})
        p = self.ctl("--json", "submit", "--tool", "crm.lookup", "--args",
                     "-", input='{"id": 7}\n')
        self.assertEqual(self.grant_args(p), {"id": 7})

    def test_args_file_problems_are_usage_errors(self):
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write("[1, 2]")
        cases = [("@" + os.path.join(self.tmp, "absent.json"),
                  "absent.json: No such file or directory"),
                 ("@" + bad, "--args from %s must be a JSON object" % bad),
                 ("@" + self.tmp, "is a directory")]
        for arg, want in cases:
            p = self.ctl("submit", "--tool", "crm.lookup", "--args", arg)
            self.assertExit(p, 2)
            self.assertIn(want, p.stderr)
        p = self.ctl("submit", "--tool", "crm.lookup", "--args", "-",
                     input="{nope")
        self.assertExit(p, 2)
        self.assertIn("--args from standard input is not valid JSON",
                      p.stderr)

    # -- the approver's terminal

    def test_show_neutralises_c1_and_bidi_controls(self):
        reason = "pay " + "".join(UNSAFE) + " evil.com"
        iid = self.pending_intent(reason=reason)
        p = self.ctl("show", iid, who="approver-alice")
        self.assertExit(p, 0)
        for ch in UNSAFE:
            self.assertNotIn(ch, p.stdout, "U+%04X reached the terminal" %
                             ord(ch))
        self.assertRegex(p.stdout, r"(?m)^reason +pay \?{%d} evil\.com$" %
                         len(UNSAFE))
        # ordinary non-ASCII text is kept
        iid = self.pending_intent(reason="Zahlung an Müller")
        p = self.ctl("show", iid, who="approver-alice")
        self.assertRegex(p.stdout, r"(?m)^reason +Zahlung an Müller$")


class HostileAgentName(Case):
    """An identity is agent-controlled text too: a CA may issue a CN with
    a right-to-left override; pending must not pass it to the terminal."""
    NAME = "agent-\u202eevil\u009b2J"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="test_ctl_ops.")
        k = harness.pki()
        cls.cert = os.path.join(cls.tmp, "odd.pem")
        cls.key = os.path.join(cls.tmp, "odd.key")
        cnf = os.path.join(cls.tmp, "odd.cnf")
        with open(cnf, "w") as f:
            f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
                    "[ext]\nbasicConstraints = critical, CA:false\n"
                    "keyUsage = critical, digitalSignature\n"
                    "extendedKeyUsage = clientAuth\n")
        subprocess.run(["openssl", "req", "-x509", "-utf8", "-config", cnf,
                        "-extensions", "ext", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-noenc", "-keyout",
                        cls.key, "-out", cls.cert, "-subj", "/CN=" + cls.NAME,
                        "-days", "2", "-CA", os.path.join(k, "ca.pem"),
                        "-CAkey", os.path.join(k, "ca.key")],
                       check=True, capture_output=True)
        self_id = harness.cert_identity(cls.cert)
        assert self_id == cls.NAME, repr(self_id)
        policy = harness.load_example_policy()
        policy["principals"][cls.NAME] = {"roles": ["payments-agent"]}
        cls.broker = harness.Broker(policy=policy)
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, True)

    def test_pending_neutralises_the_agent_name(self):
        k = self.broker.pki
        base = [harness.CTL, "--url", self.broker.url,
                "--ca", os.path.join(k, "ca.pem")]
        p = subprocess.run(base + ["--cert", self.cert, "--key", self.key,
                                   "submit", "--tool", "payments.transfer",
                                   "--args", '{"amount": "5000.00", "currency": "USD"}'],
                           capture_output=True, text=True,
                           env=clean_env(), timeout=60)
        self.assertExit(p, 4)
        p = subprocess.run(base + [
            "--cert", os.path.join(k, "approver-alice.pem"),
            "--key", os.path.join(k, "approver-alice.key"), "pending"],
            capture_output=True, text=True, env=clean_env(), timeout=60)
        self.assertExit(p, 0)
        self.assertNotIn("\u202e", p.stdout)
        self.assertNotIn("\u009b", p.stdout)
        self.assertIn("agent-?evil?2J", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
