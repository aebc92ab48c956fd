"""
test_faults: faults fail closed (issue 6, item 4).  The database made
read-only, locked by another process past the busy timeout, or on a full
disk: intents get 503 `unavailable` (never 200/202/403, nothing recorded)
and the broker recovers by itself once the fault clears.  Bad files at
start (CRL, grant key, key modes) exit 2 with one line naming the file.
SIGHUP reloads a replaced TLS certificate and CRL for new connections
without dropping established ones.

The disk-full test mounts a 3 MiB tmpfs.  So that nothing leaks onto the
machine, the test re-executes itself inside a private mount namespace
(`unshare -m`), which needs root; the read-only test uses `chattr +i`
(root ignores file modes, not the immutable flag).
"""

import os
import shutil
import subprocess
import sys

_NS = "TOOLGATE_FAULTS_NS"
if os.environ.get(_NS) is None:
    os.environ[_NS] = "0"
    if os.geteuid() == 0 and shutil.which("unshare") and subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode == 0:
        os.environ[_NS] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private",
                              sys.executable, os.path.abspath(__file__)] +
                  sys.argv[1:])

import errno  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import mcp_peers  # noqa: E402
from test_hostile import tls_context, write_config  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402


# The example policy, and pay.lookup (an MCP upstream's) for the payments
# agent.
MCP_POLICY = json.load(open(os.path.join(harness.ROOT, "policies",
                                         "example.json")))
MCP_POLICY["roles"]["payments-agent"]["rules"].append({"tool": "pay.lookup"})


def intent_count(db):
    return harness.db_query(db, "SELECT count(*) FROM intents")[0][0]


# A Broker with flags replaced: harness.Broker(flags=...) does it.
FlagBroker = harness.Broker


class FaultMixin:

    def submit_all(self, client, n=4):
        """n intents (allowed, pending and denied ones) during the fault:
        every answer must be 503 unavailable."""
        got = []
        for i in range(n):
            kind = i % 3
            if kind == 0:
                st, _, body = client.submit("crm.lookup")
            elif kind == 1:
                st, _, body = client.submit(
                    "payments.transfer", **harness.payment("5000.00"))
            else:
                st, _, body = client.submit("email.send")
            got.append((st, body))
        for st, body in got:
            self.assertNotIn(st, (200, 202, 403), body)
            self.assertEqual(st, 503, body)
            self.assertEqual(body.get("error"), "unavailable", body)
            self.assertNotIn("id", body)
            self.assertNotIn("grant", body)
        return got

    def recovers(self, client, within=5.0):
        """The next intent after the fault is allowed (a few retries while
        the broker notices, 503 only)."""
        deadline = time.monotonic() + within
        while True:
            st, _, body = client.submit("crm.lookup")
            if st == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(st, 503, body)
            time.sleep(0.2)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["status"], "allowed")

    def verify_audit(self, b):
        p = b.ctl_db("audit", "verify")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


# ----------------------------------------------------------- database faults

@harness.sqlite_only("faults of the SQLite file (read-only, locked past "
                     "the busy timeout, a full disk under it); "
                     "PostgreSQL's are in test_multibroker")
class DatabaseFaults(FaultMixin, unittest.TestCase):

    def test_read_only_database(self):
        with harness.Broker() as b:
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)
            before = intent_count(b.db)
            files = [f for f in (b.db, b.db + "-wal", b.db + "-shm")
                     if os.path.exists(f)]
            p = subprocess.run(["chattr", "+i"] + files, capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, "chattr +i (needs root and "
                             "a file system with the immutable flag): " +
                             p.stderr)
            try:
                with self.assertRaises(OSError):
                    open(b.db, "r+b").close()
                self.submit_all(c, 6)
            finally:
                subprocess.run(["chattr", "-i"] + files, check=True)
            self.recovers(c)
            self.assertEqual(intent_count(b.db), before + 1)
            self.verify_audit(b)

    def test_database_locked_past_busy_timeout(self):
        with harness.Broker() as b:
            c1 = b.client("agent-payments")
            c2 = b.client("agent-support")
            self.assertEqual(c1.submit("crm.lookup")[0], 200)
            before = intent_count(b.db)
            locker = sqlite3.connect(b.db, timeout=1, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            t_locked = time.monotonic()
            answers = []

            def one(client):
                st, _, body = client.submit("crm.lookup")
                answers.append((st, body, time.monotonic()))

            # two agents at once: one writer thread, so they may share a
            # batch or queue one behind the other
            ts = [threading.Thread(target=one, args=(cl,))
                  for cl in (c1, c2)]
            for t in ts:
                t.start()
            # hold it 7 s, longer than the 5 s busy timeout
            while time.monotonic() - t_locked < 7.0:
                time.sleep(0.1)
            locker.execute("ROLLBACK")
            t_released = time.monotonic()
            locker.close()
            for t in ts:
                t.join(15)
            self.assertEqual(len(answers), 2, answers)
            answers.sort(key=lambda a: a[2])
            # the first could not be recorded within the busy timeout
            st, body, at = answers[0]
            self.assertEqual((st, body.get("error")), (503, "unavailable"),
                             body)
            self.assertNotIn("id", body)
            self.assertLess(at - t_locked, 6.5)
            self.assertGreater(at - t_locked, 4.5)
            # the second: 503 as well, or recorded once the lock was gone
            st, body, at = answers[1]
            if st == 200:
                self.assertGreater(at, t_released)
                recorded = sqlite3.connect(b.db).execute(
                    "SELECT status FROM intents WHERE id = ?",
                    (body["id"],)).fetchone()
                self.assertEqual(recorded, ("allowed",))
                before += 1
            else:
                self.assertEqual((st, body.get("error")),
                                 (503, "unavailable"), body)
            self.recovers(c1)
            self.recovers(c2)
            self.assertEqual(intent_count(b.db), before + 2)
            self.verify_audit(b)

    def test_locked_database_stalls_no_reader(self):
        # Only writes wait for the lock, and only on the writer thread:
        # neither the sweeper's expiries (every second) nor an approval
        # or a redemption sent meanwhile may freeze the one worker's
        # loop, its handshakes and its reads, for the busy timeout (5 s)
        # while another process holds the database.
        with harness.Broker(threads=1) as b:
            pay = b.client("agent-payments")
            alice = b.client("approver-alice")
            st, _, held = pay.submit("payments.transfer",
                                     **harness.payment("5000.00"))
            self.assertEqual((st, held.get("status")), (202, "pending"), held)
            st, _, ok = pay.submit("payments.transfer",
                                   **harness.payment("12.50"))
            self.assertEqual((st, ok.get("status")), (200, "allowed"), ok)
            writes = {}

            def approve():
                writes["approve"] = b.client("approver-bob").request(
                    "POST", "/v1/approvals/%s/approve" % held["id"],
                    body="{}", content_type="application/json")

            def redeem():
                writes["redeem"] = b.client("tool-payments").request(
                    "POST", "/v1/grants/redeem",
                    body=json.dumps({"grant": ok["grant"]}),
                    content_type="application/json")

            locker = sqlite3.connect(b.db, timeout=1, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            t_locked = time.monotonic()
            ts = [threading.Thread(target=f) for f in (approve, redeem)]
            for t in ts:
                t.start()
            waits = []
            try:
                # 7 s: more than the busy timeout and six sweeps
                while time.monotonic() - t_locked < 7.0:
                    t0 = time.monotonic()
                    fresh = b.client("agent-support")
                    st_keys = fresh.get("/v1/jwks")[0]
                    fresh.conn.close()
                    st_queue = alice.get("/v1/approvals")[0]
                    waits.append(time.monotonic() - t0)
                    self.assertEqual((st_keys, st_queue), (200, 200))
                    time.sleep(0.1)
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            for t in ts:
                t.join(30)
            self.assertGreater(len(waits), 5, waits)
            # half the busy timeout: a write on the worker's own thread
            # makes a probe that arrives as it starts wait all of it
            self.assertLess(max(waits), 2.5, waits)
            # each write: 503 within the lock (nothing kept: it can be
            # sent again), or done once the lock was gone (then not again)
            for name, again in (("approve", approve), ("redeem", redeem)):
                st, _, body = writes[name]
                self.assertIn(st, (200, 503), (name, body))
                if st == 503:
                    self.assertEqual(body.get("error"), "unavailable", body)
                    again()
                    self.assertEqual(writes[name][0], 200, writes[name])
                else:
                    again()
                    self.assertEqual(writes[name][0], 409, writes[name])
            self.recovers(pay)
            self.verify_audit(b)

    def test_locked_database_stalls_no_read_of_a_due_intent(self):
        # A read of an intent past its deadline expires it first (the
        # touch); that write, too, waits on the writer, not on the one
        # worker's loop.  The intent falls due while the lock is held, so
        # the sweeper cannot have expired it first.
        conf = write_config("grant-window = 2\n")
        with harness.Broker(threads=1, extra_args=("--config", conf)) as b:
            pay = b.client("agent-payments")
            st, _, ok = pay.submit("payments.transfer",
                                   **harness.payment("12.50"))
            self.assertEqual((st, ok.get("status")), (200, "allowed"), ok)
            t_allowed = time.monotonic()
            locker = sqlite3.connect(b.db, timeout=1, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            t_locked = time.monotonic()
            got = []
            path = "/v1/intents/" + ok["id"]
            reader = threading.Thread(target=lambda: got.append(
                b.client("agent-payments").get(path)))
            waits = []
            try:
                while time.monotonic() - t_allowed < 2.5:   # its window
                    time.sleep(0.05)
                reader.start()
                while time.monotonic() - t_locked < 7.0:
                    t0 = time.monotonic()
                    fresh = b.client("agent-support")
                    self.assertEqual(fresh.get("/v1/jwks")[0], 200)
                    fresh.conn.close()
                    waits.append(time.monotonic() - t0)
                    time.sleep(0.1)
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            reader.join(30)
            self.assertLess(max(waits), 2.5, waits)
            st, _, body = got[0]
            self.assertIn(st, (200, 503), body)
            if st == 200:
                self.assertEqual(body["status"], "expired", body)
            st, _, body = pay.get(path)
            self.assertEqual((st, body.get("status")), (200, "expired"), body)
            self.assertNotIn("grant", body)
            recs = harness.db_query(b.db, "SELECT count(*) FROM audit WHERE "
                                    "event = 'expiry' AND intent_id = ?",
                                    (ok["id"],))
            self.assertEqual(recs[0][0], 1)
            self.verify_audit(b)

    def on_small_disk(self, b):
        """Move b's database onto a private 3 MiB tmpfs (b not started);
        the mount point.  Unmounted at the end of the test."""
        self.assertEqual(os.environ.get(_NS), "1",
                         "the disk-full tests mount a private tmpfs: they "
                         "need root and `unshare -m`")
        fs = os.path.join(b.dir, "fs")
        os.mkdir(fs)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700",
                        "tmpfs", fs], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", fs])
        db = os.path.join(fs, "toolgate.db")
        shutil.copy(b.db, db)
        for ext in ("-wal", "-shm"):
            if os.path.exists(b.db + ext):
                shutil.copy(b.db + ext, db + ext)
        b.db = db
        return fs

    def fill(self, fs):
        """Fill fs to the last byte; the filler's path (unlink it)."""
        filler = os.path.join(fs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (65536, 4096, 512):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        return filler

    def test_disk_full(self):
        b = harness.Broker()
        fs = self.on_small_disk(b)
        with b:
            c = b.client("agent-payments")
            for _ in range(3):
                self.assertEqual(c.submit("crm.lookup")[0], 200)
            before = intent_count(b.db)
            filler = self.fill(fs)
            try:
                self.submit_all(c, 6)
            finally:
                os.unlink(filler)
            self.recovers(c)
            self.assertEqual(intent_count(b.db), before + 1)
            self.verify_audit(b)

    def test_disk_full_mcp_call_is_not_forwarded(self):
        # An allowed call's grant is signed while its commit is under way:
        # a commit that fails must not let the call leave.
        up = mcp_peers.Upstream(json_answers=True)
        self.addCleanup(up.stop)
        b = mcp_peers.McpBroker(["mcp-upstream = pay " + up.url],
                                policy=MCP_POLICY)
        fs = self.on_small_disk(b)
        with b:
            b.wait_log("mcp upstream pay: connected")
            r = mcp_peers.RawMcp(b.client("agent-payments"))
            r.initialize()
            call = {"name": "pay.lookup", "arguments": {"id": 7}}
            st, _, ans = r.rpc("tools/call", call)
            self.assertEqual((st, ans["result"]["content"][0]["text"]),
                             (200, "record 7"), ans)
            up.reset()
            before = intent_count(b.db)
            filler = self.fill(fs)
            try:
                for _ in range(3):
                    st, _, ans = r.rpc("tools/call", call)
                    self.assertEqual(st, 200, ans)
                    self.assertEqual(ans["error"]["code"], -32603, ans)
                    self.assertIn("nothing was sent", ans["error"]["message"])
            finally:
                os.unlink(filler)
            self.assertEqual(up.calls("tools/call"), [])
            self.assertEqual(intent_count(b.db), before)
            # and it recovers: the next call is decided and forwarded
            deadline = time.monotonic() + 5
            while True:
                st, _, ans = r.rpc("tools/call", call)
                if "result" in ans or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(ans["result"]["content"][0]["text"], "record 7")
            self.assertEqual(len(up.calls("tools/call")), 1)
            self.verify_audit(b)


# ------------------------------------------------------------ bad start-up

class StartupRefusals(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="toolgate-faults-")
        cls.broker = harness.Broker()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        shutil.rmtree(cls.broker.dir, ignore_errors=True)

    def refused(self, flag, value, name_in_line=None):
        argv = self.broker._argv()
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=15,
                           stdin=subprocess.DEVNULL)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        self.assertEqual(p.returncode, 2, "%s %s: exit %d\n%s" %
                         (flag, value, p.returncode, p.stderr))
        self.assertEqual(len(lines), 1, "%s %s: want one line:\n%s" %
                         (flag, value, p.stderr))
        self.assertIn(name_in_line or value, lines[0])
        self.assertNotIn("listening on", p.stderr)
        return lines[0]

    def copy_key(self, src, name, mode):
        path = os.path.join(self.dir, name)
        shutil.copy(os.path.join(self.broker.pki, src), path)
        os.chmod(path, mode)
        return path

    def test_missing_crl(self):
        self.refused("--crl", "/nonexistent/toolgate.crl")

    def test_garbage_crl(self):
        path = os.path.join(self.dir, "garbage.crl")
        with open(path, "w") as f:
            f.write("-----BEGIN X509 CRL-----\nnot a crl\n"
                    "-----END X509 CRL-----\n")
        self.refused("--crl", path)

    def test_missing_grant_key(self):
        self.refused("--grant-key", os.path.join(self.dir, "nope.key"))

    def test_unreadable_grant_key(self):
        # root reads any mode: a directory is unreadable as a key for all
        d = os.path.join(self.dir, "grant-dir.key")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o700)
        self.refused("--grant-key", d)
        junk = os.path.join(self.dir, "junk.key")
        with open(junk, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                    "-----END PRIVATE KEY-----\n")
        os.chmod(junk, 0o600)
        self.refused("--grant-key", junk)

    def test_key_modes(self):
        for mode in (0o644, 0o640, 0o604, 0o660, 0o606):
            self.refused("--key", self.copy_key("broker.key",
                                                "broker-%o.key" % mode,
                                                mode))
            self.refused("--grant-key", self.copy_key(
                "grant.key", "grant-%o.key" % mode, mode))
        # and 0600 / 0400 are fine (the broker starts)
        argv = self.broker._argv()
        argv[argv.index("--key") + 1] = self.copy_key("broker.key",
                                                      "ok.key", 0o400)
        argv[argv.index("--grant-key") + 1] = self.copy_key(
            "grant.key", "okg.key", 0o600)
        p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
        try:
            line = p.stderr.readline()
            while line and "listening on" not in line:
                line = p.stderr.readline()
            self.assertIn("listening on", line)
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0)


# ---------------------------------------------------------- SIGHUP reloads

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
[ server_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def openssl(*args):
    p = subprocess.run(("openssl",) + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("openssl %s:\n%s" % (" ".join(args), p.stderr))


def served_cert(sock):
    return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))


class Reloads(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="toolgate-reload-")
        self.pki = harness.pki()
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(_CA_CNF.replace("{d}", self.dir))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("1000\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def ca_args(self):
        return ("-config", self.cnf, "-cert",
                os.path.join(self.pki, "ca.pem"), "-keyfile",
                os.path.join(self.pki, "ca.key"))

    def hup(self, b, want):
        n = len(b.log_lines())
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            new = b.log_lines()[n:]
            if any("SIGHUP" in ln for ln in new):
                self.assertTrue(any(want in ln for ln in new), new)
                return
            time.sleep(0.05)
        self.fail("no SIGHUP log line within 5 s")

    def replace(self, src, dst):
        tmp = dst + ".new"
        shutil.copy(src, tmp)
        os.chmod(tmp, 0o600)
        os.rename(tmp, dst)

    def test_certificate_replaced_and_sighup(self):
        cert = os.path.join(self.dir, "broker.pem")
        key = os.path.join(self.dir, "broker.key")
        shutil.copy(os.path.join(self.pki, "broker.pem"), cert)
        shutil.copy(os.path.join(self.pki, "broker.key"), key)
        os.chmod(key, 0o600)
        new_cert = os.path.join(self.dir, "new.pem")
        new_key = os.path.join(self.dir, "new.key")
        openssl("req", "-x509", "-config", self.cnf, "-extensions",
                "server_ext", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-noenc", "-keyout", new_key,
                "-out", new_cert, "-subj", "/CN=toolgate reloaded",
                "-days", "30", "-CA", os.path.join(self.pki, "ca.pem"),
                "-CAkey", os.path.join(self.pki, "ca.key"))
        with open(new_cert, "rb") as f:
            want = x509.load_pem_x509_certificate(f.read())
        with FlagBroker(flags={"--cert": cert, "--key": key}) as b:
            old = b.client("agent-payments")
            self.assertEqual(old.submit("crm.lookup")[0], 200)
            old_sock = old.conn.sock
            s1 = served_cert(old_sock)
            self.assertNotEqual(s1.serial_number, want.serial_number)

            # a broken replacement: kept the old one, still serving
            with open(cert, "w") as f:
                f.write("garbage\n")
            self.hup(b, "keeping the old")
            c = b.client("agent-support")
            self.assertEqual(c.submit("crm.lookup")[0], 200)
            self.assertEqual(served_cert(c.conn.sock).serial_number,
                             s1.serial_number)

            self.replace(new_cert, cert)
            self.replace(new_key, key)
            self.hup(b, "reloaded")
            fresh = b.client("agent-support")
            st, _, body = fresh.submit("crm.lookup")
            self.assertEqual(st, 200, body)
            got = served_cert(fresh.conn.sock)
            self.assertEqual(got.serial_number, want.serial_number)
            self.assertEqual(got.fingerprint(hashes.SHA256()),
                             want.fingerprint(hashes.SHA256()))
            # the established keep-alive connection was not dropped
            st, _, body = old.submit("crm.lookup")
            self.assertEqual(st, 200, body)
            self.assertIs(old.conn.sock, old_sock)
            self.assertEqual(served_cert(old.conn.sock).serial_number,
                             s1.serial_number)

    def test_signals_right_after_start_and_in_bursts(self):
        """systemctl reload twice in a row, or a SIGHUP/SIGTERM that lands
        just after "listening on": the daemon must neither die of the
        signal's default action nor skip its orderly shutdown."""
        with harness.Broker() as b:
            b.proc.send_signal(signal.SIGHUP)   # right after listening on
            for _ in range(20):
                time.sleep(0.005)
                b.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertIsNone(b.proc.poll(), "toolgated died of a SIGHUP "
                              "burst (exit %r)" % b.proc.poll())
            c = b.client("agent-payments")
            self.assertEqual(c.submit("crm.lookup")[0], 200)
        # stop() above required exit 0 on SIGTERM; now at once after start
        for _ in range(3):
            with harness.Broker() as b:
                b.proc.send_signal(signal.SIGTERM)
                rc = b.proc.wait(15)
                self.assertEqual(rc, 0, "SIGTERM just after 'listening "
                                 "on': exit %d, not the orderly 0" % rc)

    def gencrl(self, out):
        openssl("ca", "-gencrl", *self.ca_args(), "-out", out)

    def test_crl_replaced_and_sighup(self):
        crl = os.path.join(self.dir, "toolgate.crl")
        self.gencrl(crl)
        with FlagBroker(flags={"--crl": crl}) as b:
            pay = b.client("agent-payments")
            sup_old = b.client("agent-support")
            self.assertEqual(pay.submit("crm.lookup")[0], 200)
            self.assertEqual(sup_old.submit("crm.lookup")[0], 200)
            openssl("ca", "-revoke", os.path.join(self.pki,
                                                  "agent-support.pem"),
                    *self.ca_args())
            self.gencrl(crl + ".new")
            os.rename(crl + ".new", crl)
            self.hup(b, "reloaded")
            # agent-support's new connections fail the TLS handshake
            for _ in range(3):
                sup = b.client("agent-support", timeout=5)
                with self.assertRaises((ssl.SSLError, ConnectionError,
                                        OSError)) as cm:
                    sup.submit("crm.lookup")
                self.assertNotIsInstance(cm.exception, socket.timeout)
            ctx = tls_context(b, "agent-support")
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                s = socket.create_connection(("127.0.0.1", b.port), 5)
                try:
                    t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
                    t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if not t.recv(100):
                        raise ConnectionError("closed")
                finally:
                    s.close()
            # others are unaffected, the established connection too
            self.assertEqual(pay.submit("crm.lookup")[0], 200)
            fresh = b.client("agent-payments")
            self.assertEqual(fresh.submit("crm.lookup")[0], 200)
            self.assertEqual(pay.submit("crm.lookup")[0], 200)
            # a CRL that does not load keeps the revocation in force
            with open(crl, "w") as f:
                f.write("garbage\n")
            self.hup(b, "keeping the old")
            sup = b.client("agent-support", timeout=5)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                sup.submit("crm.lookup")
            self.assertEqual(b.client("agent-payments").submit(
                "crm.lookup")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
