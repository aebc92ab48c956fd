"""
test_install: `meson install` and the README's "Production" section
(issue 16, point 15).  The build is installed into a scratch DESTDIR: both
programs land where scripts/toolgated.service runs them, the unit and the
documents its Documentation= names are there, the example toolgated.conf
starts a real broker, and the README's backup commands, run verbatim
against a running broker, give a copy whose audit chain verifies.

Environment (tests/meson.build): TOOLGATE_BUILD_ROOT, the build directory.
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = harness._env("TOOLGATE_BUILD_ROOT")
UNIT = os.path.join(harness.ROOT, "scripts", "toolgated.service")
README = os.path.join(harness.ROOT, "README.md")


def unit_paths():
    """(the program ExecStart runs, [files Documentation= names])."""
    with open(UNIT) as f:
        text = f.read()
    prog = re.search(r"(?m)^ExecStart=(\S+)", text).group(1)
    docs = re.findall(r"(?m)^Documentation=file://(\S+)$", text)
    return prog, docs


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="toolgate-destdir-")
        p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild",
                            "--destdir", cls.dest], capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError("meson install failed:\n%s%s" %
                                 (p.stdout, p.stderr))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, True)

    def installed(self, path):
        return os.path.join(self.dest, path.lstrip("/"))

    def version(self):
        with open(os.path.join(harness.ROOT, "meson.build")) as f:
            return re.search(r"version: '([^']+)'", f.read()).group(1)

    def test_programs_are_where_the_unit_runs_them(self):
        prog, _ = unit_paths()
        daemon = self.installed(prog)
        self.assertTrue(os.access(daemon, os.X_OK), "%s not installed "
                        "(the unit runs %s)" % (daemon, prog))
        p = subprocess.run([daemon, "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout, "toolgated %s\n" % self.version())
        ctl = self.installed(os.path.join(os.path.dirname(
            os.path.dirname(prog)), "bin", "toolgatectl"))
        p = subprocess.run([ctl, "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout, "toolgatectl %s\n" % self.version())

    def test_unit_and_its_documentation(self):
        prog, docs = unit_paths()
        prefix = os.path.dirname(os.path.dirname(prog))
        unit = self.installed(os.path.join(prefix, "lib", "systemd",
                                           "system", "toolgated.service"))
        with open(unit, "rb") as a, open(UNIT, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertGreaterEqual(len(docs), 1)
        for doc in docs:
            self.assertTrue(os.path.isfile(self.installed(doc)),
                            "Documentation=%s is not installed" % doc)
        # the installed README is this one
        readme = [d for d in docs if d.endswith("/README.md")][0]
        with open(self.installed(readme), "rb") as a, open(README, "rb") as b:
            self.assertEqual(a.read(), b.read())
        # and so is everything it and the unit point to in proto/
        docdir = os.path.dirname(readme)
        for name in ("config.md", "identities.md", "postgresql.md",
                     "examples/agent.py",
                     "examples/tool.py", "policy.schema.json"):
            self.assertTrue(os.path.isfile(self.installed(os.path.join(
                docdir, "proto", name))), name)
        self.assertTrue(os.path.isfile(self.installed(os.path.join(
            docdir, "policies", "example.json"))))

    def test_example_config_starts_a_broker(self):
        _, docs = unit_paths()
        conf = self.installed(os.path.join(os.path.dirname(docs[0]),
                                           "toolgated.conf"))
        with open(UNIT) as f:
            self.assertIn("--config /etc/toolgate/toolgated.conf", f.read())
        with harness.Broker(extra_args=("--config", conf)) as b:
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)


    def test_example_config_names_every_setting(self):
        # "every setting at its default": a setting proto/config.md
        # documents and the example leaves out is one nobody finds.
        with open(os.path.join(harness.ROOT, "proto", "config.md")) as f:
            documented = re.findall(r"(?m)^\| `([a-z-]+)` \|", f.read())
        with open(os.path.join(harness.ROOT, "scripts",
                               "toolgated.conf")) as f:
            given = re.findall(r"(?m)^#?([a-z-]+) = ", f.read())
        self.assertGreater(len(documented), 5)
        self.assertEqual(sorted(set(documented) - set(given)), [])


@harness.sqlite_only("the README's backup recipe copies the SQLite file; "
                     "PostgreSQL is backed up with its own tools")
class Backup(unittest.TestCase):
    def test_readme_backup_commands_copy_a_running_broker(self):
        with open(README) as f:
            text = f.read()
        blocks = re.findall(r"<!-- tested: backup -->\n```sh\n(.*?)```",
                            text, re.S)
        self.assertEqual(len(blocks), 1)
        tmp = tempfile.mkdtemp(prefix="toolgate-backup-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with harness.Broker() as b:
            c = b.client("agent-payments")
            for _ in range(5):
                self.assertEqual(c.submit("crm.lookup")[0], 200)
            backup = os.path.join(tmp, "copy.db")
            env = dict(os.environ, db=b.db, backup=backup,
                       PATH=os.path.dirname(harness.CTL) + os.pathsep +
                       os.environ["PATH"])
            p = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0]],
                               capture_output=True, text=True, env=env,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertRegex(p.stdout, r"audit chain OK: \d+ records")
            # still serving, and the copy holds what was answered before
            self.assertEqual(c.submit("crm.lookup")[0], 200)
        with sqlite3.connect(backup) as db:
            n = db.execute("SELECT count(*) FROM intents").fetchone()[0]
        self.assertEqual(n, 5)
        p = subprocess.run([harness.CTL, "--db", backup, "--json", "audit",
                            "verify"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["ok"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
