"""
test_ctl_ops: toolgatectl for scripts and approvers (issue 16): help
that fits 80 columns without cutting words, and errors that name the
local file at fault (exit 2, not 1).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

COMMANDS = [
    [], ["submit"], ["pending"], ["show"], ["approve"],
    ["reject"], ["killswitch"], ["killswitch", "trip"],
    ["killswitch", "status"], ["killswitch", "reset"], ["policy"],
    ["policy", "check"], ["policy", "apply"], ["policy", "show"], ["audit"],
    ["audit", "verify"], ["audit", "export"],
]


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
                         "--reason TEXT [--reject-pending]")
        for line in text.splitlines():
            self.assertEqual(line.count("["), line.count("]"), line)


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
