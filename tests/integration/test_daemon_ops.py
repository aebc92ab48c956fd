"""
test_daemon_ops: toolgated as an operator meets it (issue 16, points 2,
5, 6, 7 and 13), each case against a real toolgated over real mutual TLS:

- revocation reaches live connections: after a CRL (or CA) reload with
  SIGHUP, a revoked identity's idle keep-alive connection is closed, its
  in-flight long-poll is answered first and then closed, its old TLS
  session does not resume; other connections stay up; and
  max-connection-age closes connections that are too old;
- one broker per port: a second toolgated on a bound address exits 2;
- start-up: --help and --version, warnings about no policy and engaged
  kill switches, errors that name the flag and file at fault;
- logs: RFC 3339 timestamps on every line, --log-format json, and every
  refused TLS handshake logged at info with the client's address and why.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_hostile import read_response, tls_connect, tls_context  # noqa

RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"

_CA_CNF = """\
[ ca ]
default_ca = tg
[ tg ]
database = {d}/index.txt
crlnumber = {d}/crlnumber
default_md = sha256
default_crl_days = 7
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
"""


def closed_by_peer(sock, timeout=20):
    """True once the peer closes sock (EOF or reset) within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.2)
        if not r:
            continue
        try:
            if sock.recv(4096) == b"":
                return True
        except (ssl.SSLError, OSError):
            return True
    return False


def get(sock, path):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())


class Revocation(unittest.TestCase):
    """A CRL revoking agent-support, loaded with SIGHUP, ends its
    connections (CONTRACT §2; issue 16 point 2)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="toolgate-revoke-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pki = harness.pki()
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(_CA_CNF.replace("{d}", self.dir))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.crl = os.path.join(self.dir, "toolgate.crl")
        self.gencrl()

    def openssl(self, *args):
        subprocess.run(("openssl",) + args + (
            "-config", self.cnf, "-cert", os.path.join(self.pki, "ca.pem"),
            "-keyfile", os.path.join(self.pki, "ca.key")), check=True,
            capture_output=True)

    def gencrl(self):
        self.openssl("ca", "-gencrl", "-out", self.crl + ".new")
        os.rename(self.crl + ".new", self.crl)

    def revoke(self, name):
        self.openssl("ca", "-revoke", os.path.join(self.pki, name + ".pem"))
        self.gencrl()

    def test_reload_closes_revoked_connections_and_spares_others(self):
        with harness.Broker(flags={"--crl": self.crl,
                               "--log-level": "debug"}) as b:
            pay = tls_connect(b, "agent-payments")
            idle = tls_connect(b, "agent-support")
            busy = tls_connect(b, "agent-support")
            for s in (pay, idle, busy):
                get(s, "/healthz")
                self.assertEqual(read_response(s)[0], 200)
            # a pending intent of agent-support, long-polled on busy
            sup = b.client("agent-support")
            st, _, d = sup.submit("email.send")
            self.assertEqual(st, 202, d)
            n = len(b.log_lines())
            get(busy, "/v1/intents/%s?wait=40" % d["id"])
            # in flight once the broker has taken the request
            b.wait_log(r"request from agent-support at 127\.0\.0\.1:%d: "
                       r"/v1/intents/%s\?wait=40" %
                       (busy.getsockname()[1], d["id"]), n)
            # its old session, to try resuming after the revocation
            ctx = tls_context(b, "agent-support")
            s = ctx.wrap_socket(socket.create_connection(
                ("127.0.0.1", b.port), 10), server_hostname="127.0.0.1")
            get(s, "/healthz")
            self.assertEqual(read_response(s)[0], 200)
            session = s.session
            s.close()
            s = ctx.wrap_socket(socket.create_connection(
                ("127.0.0.1", b.port), 10), server_hostname="127.0.0.1",
                session=session)
            self.assertTrue(s.session_reused, "resumption does not work "
                            "at all: the test would prove nothing")
            s.close()

            self.revoke("agent-support")
            n = len(b.log_lines())
            self.assertIn("reloaded", b.hup())
            # the idle connection is closed, and the log says whose and why
            self.assertTrue(closed_by_peer(idle), "revoked idle connection "
                            "still open")
            b.wait_log(r"closing the connection of agent-support from "
                       r"127\.0\.0\.1:%d: the client certificate is "
                       r"revoked" % idle.getsockname()[1], n)
            # the in-flight long-poll is answered first, then closed
            self.assertExit_ok_then_closed(b, busy, d["id"])
            # the old session does not resume: a full handshake, refused
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                s = ctx.wrap_socket(socket.create_connection(
                    ("127.0.0.1", b.port), 10), server_hostname="127.0.0.1",
                    session=session)
                try:
                    get(s, "/healthz")
                    if read_response(s) is None:
                        raise ConnectionError("closed without an answer")
                finally:
                    s.close()
            # everyone else is unaffected, on the same connection
            get(pay, "/healthz")
            self.assertEqual(read_response(pay)[0], 200)
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)

    def assertExit_ok_then_closed(self, b, busy, iid):
        carol = b.client("approver-carol")
        st, _, body = carol.request("POST", "/v1/approvals/%s/approve" % iid,
                                    body="{}",
                                    content_type="application/json")
        self.assertEqual(st, 200, body)
        r = read_response(busy, timeout=30)
        self.assertIsNotNone(r, "the in-flight long-poll was dropped")
        status, headers, raw = r
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(raw)["status"], "allowed")
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertTrue(closed_by_peer(busy))

    def test_connection_mid_handshake_is_checked_at_its_first_request(self):
        """A connection verified against the old CRL but not yet used
        when the reload ran is checked before its first request."""
        with harness.Broker(flags={"--crl": self.crl}) as b:
            sup = tls_connect(b, "agent-support")
            self.revoke("agent-support")
            b.hup()
            get(sup, "/healthz")
            r = read_response(sup)
            self.assertTrue(r is None or r[0] == 401, r)

    def test_ca_reload_closes_connections_it_no_longer_trusts(self):
        ca = os.path.join(self.dir, "ca.pem")
        shutil.copy(os.path.join(self.pki, "ca.pem"), ca)
        with harness.Broker(flags={"--ca": ca}) as b:
            s = tls_connect(b, "agent-payments")
            get(s, "/healthz")
            self.assertEqual(read_response(s)[0], 200)
            shutil.copy(os.path.join(self.pki, "foreign", "ca.pem"),
                        ca + ".new")
            os.rename(ca + ".new", ca)
            b.hup()
            self.assertTrue(closed_by_peer(s))
            b.wait_log("closing the connection of agent-payments from "
                       r"127\.0\.0\.1:\d+: the client certificate was not "
                       "issued by a CA in --ca")


class ConnectionAge(unittest.TestCase):
    def test_max_connection_age_closes_busy_and_idle_connections(self):
        d = tempfile.mkdtemp(prefix="toolgate-age-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "toolgated.conf")
        with open(conf, "w") as f:
            f.write("max-connection-age = 2\nidle-timeout = 60\n"
                    "request-timeout = 60\n")
        with harness.Broker(flags={"--config": conf}) as b:
            idle = tls_connect(b, "agent-payments")
            get(idle, "/healthz")
            self.assertEqual(read_response(idle)[0], 200)
            t0 = time.monotonic()
            busy = tls_connect(b, "agent-payments")
            closed = None
            while time.monotonic() - t0 < 20 and closed is None:
                try:
                    get(busy, "/healthz")
                    r = read_response(busy)
                except (ssl.SSLError, OSError):
                    r = None
                # The last answer says "Connection: close"; or the close
                # came between two requests, as for any keep-alive HTTP
                # server, and a client opens a new connection.
                if r is None or r[1].get("connection", "").lower() == \
                        "close":
                    closed = time.monotonic() - t0
            self.assertIsNotNone(closed, "a busy connection lived past "
                                 "max-connection-age")
            self.assertGreaterEqual(closed, 1.5)
            self.assertTrue(r is None or closed_by_peer(busy))
            self.assertTrue(closed_by_peer(idle, timeout=15), "an idle "
                            "connection lived past max-connection-age")
            self.assertLess(time.monotonic() - t0, 20)

    def test_range_is_checked(self):
        d = tempfile.mkdtemp(prefix="toolgate-age-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "toolgated.conf")
        with open(conf, "w") as f:
            f.write("max-connection-age = 0\n")
        b = harness.Broker(flags={"--config": conf})
        self.addCleanup(shutil.rmtree, b.dir, True)
        p = b.start_fails()
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("max-connection-age must be a number in 1..31536000",
                      p.stderr)


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
        for flag in ("--listen HOST:PORT", "--db PATH|URI", "--ca FILE",
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
        b = harness.Broker(policy=harness.NO_POLICY)
        self.addCleanup(shutil.rmtree, b.dir, True)
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


class RefusedHandshakes(harness.BrokerCase, unittest.TestCase):
    """Every refused TLS handshake is logged at info with the client's
    address and the reason."""

    def attempt(self, ctx, plain=None):
        """Connect, try a request; the local port of the attempt."""
        s = socket.create_connection(("127.0.0.1", self.broker.port), 10)
        port = s.getsockname()[1]
        try:
            if plain:
                s.sendall(plain)
                s.recv(100)
            elif plain is not None:
                pass                    # connect, say nothing, hang up
            else:
                t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
                get(t, "/healthz")
                t.recv(100)
        except (ssl.SSLError, OSError):
            pass
        finally:
            s.close()
        return port

    def logged(self, port, want):
        line = self.broker.wait_log(r"127\.0\.0\.1:%d\b" % port)
        self.assertIn(" info: ", line)
        self.assertIn(want, line)
        return line

    def ctx(self, cert=None, key=None, ca=None):
        k = self.broker.pki
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or os.path.join(k, "ca.pem"))
        if cert:
            ctx.load_cert_chain(os.path.join(k, cert), os.path.join(k, key))
        return ctx

    def test_no_client_certificate(self):
        port = self.attempt(self.ctx())
        self.logged(port, "refused TLS handshake from 127.0.0.1:%d: no "
                    "client certificate" % port)

    def test_certificate_of_another_ca(self):
        port = self.attempt(self.ctx("foreign/agent-payments.pem",
                                     "foreign/agent-payments.key"))
        self.logged(port, "(agent-payments): the client certificate was not "
                    "issued by a CA in --ca")

    def test_certificate_without_client_auth(self):
        # the broker's own certificate is serverAuth only
        port = self.attempt(self.ctx("broker.pem", "broker.key"))
        self.logged(port, "(localhost): the client certificate lacks the "
                    "clientAuth extended key usage")

    def test_expired_certificate(self):
        port = self.attempt(self.ctx("expired.pem", "expired.key"))
        self.logged(port, "(agent-payments): the client certificate has "
                    "expired")

    def test_client_refusing_the_broker(self):
        k = self.broker.pki
        ctx = self.ctx("agent-payments.pem", "agent-payments.key",
                       ca=os.path.join(k, "foreign", "ca.pem"))
        port = self.attempt(ctx)
        self.logged(port, "the client refused it (alert: unknown CA")

    def test_plain_http_and_a_silent_client(self):
        port = self.attempt(None, plain=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.logged(port, "refused TLS handshake from 127.0.0.1:%d: " % port)
        port = self.attempt(None, plain=b"")
        self.logged(port, "not completed: the client closed the connection")


if __name__ == "__main__":
    unittest.main(verbosity=2)
