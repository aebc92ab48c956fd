"""
test_ctl_ops: toolgatectl for scripts and approvers (issue 16): help
that fits 80 columns without cutting words.
"""

import os
import re
import subprocess
import sys
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
