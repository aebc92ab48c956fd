"""
test_daemon_ops: toolgated as an operator meets it (issue 16, points 5,
6, 7 and 13), each case against a real toolgated:

- one broker per port: a second toolgated on a bound address exits 2;
- start-up: --help and --version, warnings about no policy and engaged
  kill switches, errors that name the flag and file at fault;
- logs: RFC 3339 timestamps on every line, and --log-format json.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"

class OnePerPort(unittest.TestCase):
    def test_second_broker_on_the_same_address_exits_2(self):
        with harness.Broker() as first:
            second = harness.Broker()
            self.addCleanup(shutil.rmtree, second.dir, True)
            second.port = first.port
            p = second.start_fails()
            self.assertEqual(p.returncode, 2, p.stderr)
            lines = p.stderr.strip().splitlines()
            self.assertIn("cannot listen on 127.0.0.1:%d: Address already "
                          "in use" % first.port, lines[-1])
            self.assertNotIn("listening on", p.stderr)
            # the first broker still serves every connection
            for _ in range(10):
                c = first.client("agent-payments")
                self.assertEqual(c.submit("crm.lookup")[0], 200)
                c.close()

    def test_any_program_on_the_address(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            b = harness.Broker()
            self.addCleanup(shutil.rmtree, b.dir, True)
            b.port = s.getsockname()[1]
            p = b.start_fails()
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("Address already in use", p.stderr)

    def test_restart_right_after_stop_binds_again(self):
        """SO_REUSEADDR stays: connections in TIME_WAIT do not block a
        restart on the same port."""
        with harness.Broker() as b:
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)
            b.restart()
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)


class StartUp(unittest.TestCase):
    def run_daemon(self, *args):
        return subprocess.run([harness.DAEMON, *args], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    def test_help_describes_every_flag(self):
        p = self.run_daemon("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        for flag in ("--listen HOST:PORT", "--db PATH", "--ca FILE",
                     "--cert FILE", "--key FILE", "--grant-key FILE",
                     "--crl FILE", "--audience NAME", "--threads N",
                     "--config FILE", "--log-level LEVEL",
                     "--log-format FORMAT", "--version", "-h, --help"):
            self.assertRegex(p.stdout, r"(?m)^  %s +\S" % re.escape(flag))
        for line in p.stdout.splitlines():
            self.assertLessEqual(len(line), 80, line)
            self.assertEqual(line, line.rstrip(), line)
        self.assertEqual(self.run_daemon("-h").stdout, p.stdout)

    def test_version_of_both_programs_is_the_project_version(self):
        with open(os.path.join(harness.ROOT, "meson.build")) as f:
            version = re.search(r"version: '([^']+)'", f.read()).group(1)
        p = self.run_daemon("--version")
        self.assertEqual((p.returncode, p.stdout), (0, "toolgated %s\n" %
                                                    version))
        p = subprocess.run([harness.CTL, "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, "toolgatectl %s\n" %
                                                    version))

    def test_missing_flags_are_named(self):
        p = self.run_daemon("--db", "/tmp/x.db", "--cert", "/tmp/c.pem")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn("missing required flags --listen --ca --key "
                      "--grant-key", p.stderr)

    def refused(self, flags, want):
        b = harness.Broker(flags=flags)
        self.addCleanup(shutil.rmtree, b.dir, True)
        p = b.start_fails()
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(want, lines[0])

    def test_file_errors_name_the_flag_file_and_cause(self):
        k = harness.pki()
        nope = os.path.join(k, "nope.pem")
        self.refused({"--cert": nope}, "--cert %s: No such file or "
                     "directory" % nope)
        self.refused({"--ca": nope}, "--ca %s: No such file or directory" %
                     nope)
        self.refused({"--key": os.path.join(k, "nope.key")},
                     "No such file or directory")
        self.refused({"--cert": os.path.join(k, "foreign")},
                     "--cert %s: is a directory" % os.path.join(k, "foreign"))
        # a right key with the wrong certificate: the pairing is at fault
        self.refused({"--cert": os.path.join(k, "agent-payments.pem")},
                     "--cert %s and --key %s do not belong together" %
                     (os.path.join(k, "agent-payments.pem"),
                      os.path.join(k, "broker.key")))
        self.refused({"--ca": os.path.join(k, "broker.key")},
                     "--ca %s: not a PEM CA certificate" %
                     os.path.join(k, "broker.key"))

    def test_warns_when_no_policy_is_applied(self):
        b = harness.Broker()
        self.addCleanup(shutil.rmtree, b.dir, True)
        os.unlink(b.db)             # the harness applied one: start empty
        with b:
            line = b.log_lines()
            warn = [ln for ln in line if "no policy applied" in ln]
            self.assertEqual(len(warn), 1, "\n".join(line))
            self.assertIn(" warn: ", warn[0])
            self.assertIn("unknown_principal", warn[0])
            self.assertIn("toolgatectl --db %s policy apply" % b.db, warn[0])
        with harness.Broker() as b:
            self.assertFalse([ln for ln in b.log_lines()
                              if "no policy applied" in ln])

    def test_warns_about_engaged_kill_switches(self):
        b = harness.Broker()
        self.addCleanup(shutil.rmtree, b.dir, True)
        p = b.ctl_db("killswitch", "trip", "--tool", "payments.*",
                     "--reason", "bank incident")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = b.ctl_db("killswitch", "trip", "--reason", "everything")
        self.assertEqual(p.returncode, 0, p.stderr)
        with b:
            warn = [ln for ln in b.log_lines() if "kill switch" in ln and
                    " warn: " in ln]
            self.assertEqual(len(warn), 2, "\n".join(b.log_lines()))
            self.assertRegex(warn[0] + warn[1], r"kill switch \d+ engaged "
                             r"\(tool payments\.\*\) by cli:\S+ at \S+Z: "
                             r"bank incident")
            self.assertIn("(global)", warn[0] + warn[1])
            self.assertIn("toolgatectl killswitch reset", warn[0])


class Logs(unittest.TestCase):
    def test_every_line_starts_with_an_rfc3339_time(self):
        with harness.Broker() as b:
            c = b.client("agent-payments")
            c.submit("crm.lookup")
            c.submit("nope.nothing")
            b.proc.send_signal(signal.SIGHUP)
            b.client(None).close()
            lines = b.log_lines()
        self.assertGreater(len(lines), 3)
        for line in b.log_lines():
            self.assertRegex(line, r"^%s toolgated: (debug|info|warn|error|"
                             r"fatal): " % RFC3339)

    def test_json_format_by_flag_and_by_config(self):
        d = tempfile.mkdtemp(prefix="toolgate-logs-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "toolgated.conf")
        with open(conf, "w") as f:
            f.write("log-format = json\n")
        for flags in ({"--log-format": "json"}, {"--config": conf}):
            with harness.Broker(flags=flags) as b:
                c = b.client("agent-payments")
                self.assertEqual(c.submit("crm.lookup",
                                          reason='say "hi"\\')[0], 200)
                lines = b.log_lines()
            self.assertTrue(any("listening on" in ln for ln in lines))
            for line in lines:
                rec = json.loads(line)
                self.assertEqual(set(rec), {"time", "level", "program",
                                            "message"}, line)
                self.assertRegex(rec["time"], "^%s$" % RFC3339)
                self.assertIn(rec["level"], ("debug", "info", "warn",
                                             "error", "fatal"))
                self.assertEqual(rec["program"], "toolgated")
        b = harness.Broker(flags={"--log-format": "xml"})
        self.addCleanup(shutil.rmtree, b.dir, True)
        p = b.start_fails()
        self.assertEqual(p.returncode, 2)
        self.assertIn("--log-format must be text or json", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
