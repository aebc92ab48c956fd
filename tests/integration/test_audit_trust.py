"""
test_audit_trust: an audit an outsider can verify, and state the broker
does not take on trust (CONTRACT §10, proto/audit.md; issue 12).

Signed checkpoints verify with PyJWT against /v1/jwks (through
verify_audit.py, written from proto/ alone) and name the newest record;
`toolgatectl audit verify --checkpoint` and verify_audit.py catch what the
chain alone does not.  Every tamper case — tail truncation, an edit with
every later hash recomputed, a rollback to an older copy, a pending intent
flipped to allowed, a policy body edited in place — with the broker
stopped and while it runs: each is caught, and the broker fails closed (no
grant, 503 for decisions, toolgate_audit_chain_broken 1, the first bad
record logged).  Offline changes that widen need the audit key; a trip
does not.  A start verifies only what follows its anchor; a rotated
audit key keeps the old records verifying.  Prune/archive round trips: the archive verifies on its own, the
database from the cut, nothing still needed goes.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import verify_audit  # noqa: E402

VERIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "verify_audit.py")
DEADLINE = 60           # seconds a condition may take on a busy machine


# ------------------------------------------------------------- database

def records(db):
    return harness.db_query(db, "SELECT seq, record, prev_hash, hash FROM "
                            "audit ORDER BY seq")


class Writer:
    """Someone who can write the database, in one transaction: the
    append-only triggers dropped first; on PostgreSQL the chain's head row
    (audit_head) is locked and, at the end, set to the newest record left,
    as a careful writer would.  `with Writer(db) as w: w.execute(...)`
    (? placeholders on both engines)."""

    def __init__(self, db):
        self.pg = db.startswith(("postgresql://", "postgres://"))
        if self.pg:
            self.c = harness.pg_connect(db)
            self.c.autocommit = False
            self.cur = self.c.cursor()
            for t in ("audit_no_update", "audit_no_delete"):
                self.cur.execute("DROP TRIGGER IF EXISTS %s ON audit" % t)
            self.cur.execute("SELECT 1 FROM audit_head FOR UPDATE")
        else:
            self.c = sqlite3.connect(db, timeout=30, isolation_level=None)
            for t in ("audit_no_update", "audit_no_delete"):
                self.c.execute("DROP TRIGGER IF EXISTS %s" % t)
            self.c.execute("BEGIN IMMEDIATE")

    def execute(self, sql, params=()):
        if self.pg:
            self.cur.execute(sql.replace("?", "%s"), tuple(params))
            return self.cur.fetchall() if self.cur.description else []
        return self.c.execute(sql, tuple(params)).fetchall()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.pg:
            if exc_type is None:
                self.cur.execute(
                    "UPDATE audit_head SET seq = coalesce((SELECT max(seq) "
                    "FROM audit), 0), hash = (SELECT hash FROM audit "
                    "ORDER BY seq DESC LIMIT 1)")
                self.c.commit()
            else:
                self.c.rollback()
        else:
            self.c.execute("COMMIT" if exc_type is None else "ROLLBACK")
        self.c.close()
        return False


def rewrite_from(db, seq, edit):
    """Replace record seq's body by edit(body) and recompute every later
    hash (the careful edit of the issue): the chain verifies again, but
    the tags, which need the audit key, are left as they were."""
    with Writer(db) as w:
        rows = w.execute("SELECT seq, record, prev_hash FROM audit WHERE "
                         "seq >= ? ORDER BY seq", (seq,))
        prev = rows[0][2]
        for s, text, _ in rows:
            if s == seq:
                text = verify_audit.jcs(edit(json.loads(text)))
            h = hashlib.sha256((prev + text).encode()).hexdigest()
            w.execute("UPDATE audit SET record = ?, prev_hash = ?, hash = ? "
                      "WHERE seq = ?", (text, prev, h, s))
            prev = h


def copy_db(src, dst):
    """A consistent copy through SQLite's backup API (also into a live
    database: then it is a rollback the broker's connections see)."""
    a = sqlite3.connect(src, timeout=30)
    b = sqlite3.connect(dst, timeout=30)
    a.backup(b)
    a.close()
    b.close()


def snapshot(db, tmp):
    """An older copy of the database, taken while no broker uses it: a
    file beside (SQLite), a database copied from it (PostgreSQL).  What
    restore(db, copy) puts back in place of db."""
    if not db.startswith(("postgresql://", "postgres://")):
        old = os.path.join(tmp, "old.db")
        copy_db(db, old)
        return old
    name = "tg_old_" + os.urandom(6).hex()
    c = harness.pg_connect(harness.PG_BASE)
    try:
        c.cursor().execute('CREATE DATABASE "%s" TEMPLATE "%s"' %
                           (name, urlsplit(db).path.lstrip("/")))
    finally:
        c.close()
    return name


def restore(db, old):
    """Put the snapshot old in place of db (no broker running on it)."""
    if not db.startswith(("postgresql://", "postgres://")):
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        shutil.copyfile(old, db)
        return
    name = urlsplit(db).path.lstrip("/")
    c = harness.pg_connect(harness.PG_BASE)
    try:
        cur = c.cursor()
        cur.execute('DROP DATABASE "%s" WITH (FORCE)' % name)
        cur.execute('ALTER DATABASE "%s" RENAME TO "%s"' % (old, name))
    finally:
        c.close()


ROLLBACK_SQLITE = ("an older copy put in place under a running broker is a "
                   "file copied into the live one; PostgreSQL has no file")


# --------------------------------------------------------------- broker

class Case(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="toolgate-trust-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def broker(self, **kw):
        b = harness.Broker(**kw)
        b.__enter__()
        self.addCleanup(b.__exit__, None, None, None)
        return b

    def olga(self, b):
        return b.client("operator-olga")

    def jwks(self, b):
        st, _, jwks = b.client("agent-payments").get("/v1/jwks")
        self.assertEqual(st, 200)
        return jwks

    def jwks_file(self, b):
        path = os.path.join(self.tmp, "jwks.json")
        with open(path, "w") as f:
            json.dump(self.jwks(b), f)
        return path

    def checkpoint(self, b, name="cp.jws"):
        """A checkpoint from GET /v1/audit/checkpoint, kept off the host
        (in this test's directory); (path, claims)."""
        st, _, ans = self.olga(b).get("/v1/audit/checkpoint")
        self.assertEqual(st, 200, ans)
        claims = verify_audit.checkpoint_claims(ans["checkpoint"],
                                                self.jwks(b))
        self.assertEqual((claims["seq"], claims["hash"]),
                         (ans["seq"], ans["hash"]))
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(ans["checkpoint"] + "\n")
        return path, claims

    def history(self, b):
        """An allowed call, a payment approved and one left pending, one
        redeemed grant.  Returns (allowed view, pending id)."""
        pay = b.client("agent-payments")
        alice = b.client("approver-alice")
        st, _, a = pay.submit("crm.lookup")
        self.assertEqual(st, 200, a)
        st, _, p = pay.submit("payments.transfer",
                              **harness.payment("5000.00", to="acct-1"))
        self.assertEqual(st, 202, p)
        st, _, r = alice.request("POST", "/v1/approvals/%s/approve" % p["id"],
                                 body="{}", content_type="application/json")
        self.assertEqual(st, 200, r)
        st, _, g = pay.get("/v1/intents/" + p["id"])
        self.assertEqual(st, 200, g)
        st, _, r = b.client("tool-payments").request(
            "POST", "/v1/grants/redeem", body=json.dumps(
                {"grant": g["grant"]}), content_type="application/json")
        self.assertEqual(st, 200, r)
        st, _, q = pay.submit("payments.transfer",
                              **harness.payment("7000.00", to="acct-2"))
        self.assertEqual(st, 202, q)
        return a, q["id"]

    def broken_metric(self, b):
        st, _, text = b.client("agent-payments").get("/metrics")
        self.assertEqual(st, 200)
        for line in text.splitlines():
            if line.startswith("toolgate_audit_chain_broken "):
                return int(line.split()[1])
        self.fail("no toolgate_audit_chain_broken in /metrics")

    def assertFailsClosed(self, b, why, start=0, allowed=None):
        """Within DEADLINE: the metric is 1, the first bad record logged;
        then a decision is 503 and an allowed intent has no grant."""
        deadline = time.monotonic() + DEADLINE
        while self.broken_metric(b) != 1:
            self.assertLess(time.monotonic(), deadline,
                            "the broker did not notice: %s" %
                            "\n".join(b.log_lines()[start:]))
            time.sleep(0.2)
        line = b.wait_log("audit chain broken", start)
        self.assertIn(why, line)
        pay = b.client("agent-payments")
        st, _, err = pay.submit("crm.lookup")
        self.assertEqual((st, err["error"]), (503, "unavailable"), err)
        if allowed is not None:
            st, _, v = pay.get("/v1/intents/" + allowed)
            self.assertEqual((st, v["status"]), (200, "allowed"), v)
            self.assertIsNone(v["grant"])
        st, _, err = self.olga(b).get("/v1/audit/checkpoint")
        self.assertEqual(st, 503, err)
        return line

    def assertStartsBroken(self, b, why, allowed=None):
        n = len(b.log_lines())
        b.start()
        return self.assertFailsClosed(b, why, n, allowed)

    def verify(self, b, *args, key=False):
        return b.ctl_db("audit", "verify", *args, audit_key=key)

    def run_verifier(self, *args, stream=None):
        return subprocess.run([sys.executable, VERIFIER, *args],
                              input=stream, capture_output=True, text=True,
                              timeout=120)

    def export(self, b):
        p = b.ctl_db("audit", "export")
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def assertCaughtByCheckpoint(self, b, cp, why):
        """Offline verify, toolgatectl and the third-party verifier both,
        refuse the chain against the checkpoint kept off the host."""
        p = self.verify(b, "--checkpoint", cp)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("checkpoint %s: " % cp, p.stderr)
        self.assertIn(why, p.stderr)
        q = self.run_verifier("--jwks", self.jwks_path, "--checkpoint", cp,
                              stream=self.export(b))
        self.assertEqual(q.returncode, 1, q.stdout + q.stderr)
        self.assertIn("checkpoint %s: " % cp, q.stdout)


# ---------------------------------------------------------- checkpoints

class Checkpoints(Case):

    def test_checkpoint_names_the_newest_record_and_verifies(self):
        b = self.broker()
        allowed, _ = self.history(b)
        self.jwks_path = self.jwks_file(b)
        cp, claims = self.checkpoint(b)
        head = records(b.db)[-1]
        self.assertEqual((claims["seq"], claims["hash"]), (head[0], head[3]))
        self.assertEqual(claims["iss"], "toolgate")
        self.assertIsInstance(claims["iat"], int)
        # Only operators, and no checkpoint is a grant (no aud, sub, jti).
        st, _, err = b.client("agent-payments").get("/v1/audit/checkpoint")
        self.assertEqual((st, err["error"]), (403, "forbidden"))
        self.assertFalse({"aud", "sub", "jti"} & set(claims))
        with open(cp) as f:
            tok = f.read().strip()
        st, _, err = b.client("tool-payments").request(
            "POST", "/v1/grants/redeem", body=json.dumps({"grant": tok}),
            content_type="application/json")
        self.assertEqual(st, 401, err)
        # toolgatectl prints one too; verify holds both, online and offline.
        p = b.ctl("audit", "checkpoint", identity="operator-olga")
        self.assertEqual(p.returncode, 0, p.stderr)
        cp2 = os.path.join(self.tmp, "cp2.jws")
        with open(cp2, "w") as f:
            f.write(p.stdout)
        self.assertGreaterEqual(verify_audit.checkpoint_claims(
            p.stdout.strip(), self.jwks(b))["seq"], claims["seq"])
        for online in (True, False):
            q = (b.ctl("audit", "verify", "--checkpoint", cp,
                       "--checkpoint", cp2, identity="operator-olga")
                 if online else self.verify(b, "--checkpoint", cp,
                                            "--checkpoint", cp2, "--jwks",
                                            self.jwks_path))
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertIn("checkpoint %s: record %d holds its hash "
                          "(signature verified)" % (cp, claims["seq"]),
                          q.stdout)
        q = self.run_verifier("--jwks", self.jwks_path, "--checkpoint", cp,
                              stream=self.export(b))
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        # Offline with the key, every record the broker wrote is tagged.
        q = self.verify(b, key=True)
        n = len(records(b.db))
        self.assertEqual(q.stdout, "audit chain OK: %d records, %d tagged\n"
                         % (n, n), q.stderr)

    def test_a_forged_checkpoint_is_refused(self):
        b = self.broker()
        self.history(b)
        cp, claims = self.checkpoint(b)
        with open(cp) as f:
            h, payload, sig = f.read().strip().split(".")
        forged = dict(claims, hash="0" * 64)
        bad = os.path.join(self.tmp, "forged.jws")
        with open(bad, "w") as f:
            f.write("%s.%s.%s" % (h, harness.b64url(json.dumps(forged)), sig))
        p = b.ctl("audit", "verify", "--checkpoint", bad,
                  identity="operator-olga")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("signature does not verify", p.stderr)

    def test_offline_checkpoint_needs_the_grant_key(self):
        b = self.broker()
        self.history(b)
        p = b.ctl_db("audit", "checkpoint")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--grant-key", p.stderr)
        p = b.ctl_db("audit", "checkpoint", "--grant-key",
                     os.path.join(b.pki, "grant.key"))
        self.assertEqual(p.returncode, 0, p.stderr)
        claims = verify_audit.checkpoint_claims(p.stdout.strip(),
                                                self.jwks(b))
        self.assertEqual(claims["hash"], records(b.db)[-1][3])


# ------------------------------------------- tampering, broker stopped

class TamperStopped(Case):

    def test_tail_truncation(self):
        b = self.broker()
        allowed, _ = self.history(b)
        self.jwks_path = self.jwks_file(b)
        cp, claims = self.checkpoint(b)
        b.stop()
        with Writer(b.db) as w:
            w.execute("DELETE FROM audit WHERE seq > ?", (claims["seq"] - 2,))
        # The chain alone still verifies: the checkpoint is what shows.
        self.assertEqual(self.verify(b).returncode, 0)
        self.assertCaughtByCheckpoint(b, cp, "the chain ends at record %d"
                                      % (claims["seq"] - 2))
        self.assertStartsBroken(b, "records were removed",
                                allowed=allowed["id"])

    def test_edit_with_every_later_hash_recomputed(self):
        b = self.broker()
        allowed, _ = self.history(b)
        self.jwks_path = self.jwks_file(b)
        cp, _ = self.checkpoint(b)
        b.stop()
        seq = next(s for s, rec, _, _ in records(b.db)
                   if '"amount":"5000.00"' in rec)

        def edit(body):
            body["details"]["args"]["to"] = "acct-mallory"
            return body
        rewrite_from(b.db, seq, edit)
        self.assertEqual(self.verify(b).returncode, 0)
        self.assertCaughtByCheckpoint(b, cp, "the chain was rewritten")
        # With the audit key, the tag shows it without any checkpoint.
        p = self.verify(b, key=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("BROKEN at record %d: its tag does not verify" % seq,
                      p.stderr)
        self.assertStartsBroken(b, "is not the one this broker's anchor "
                                "holds", allowed=allowed["id"])

    def test_recomputed_chain_without_the_anchor_is_caught_by_tags(self):
        b = self.broker()
        allowed, _ = self.history(b)
        b.stop()
        seq = next(s for s, rec, _, _ in records(b.db)
                   if '"amount":"5000.00"' in rec)

        def edit(body):
            body["details"]["amount"]["value"] = "50.00"
            return body
        rewrite_from(b.db, seq, edit)
        os.unlink(b.anchor)
        self.assertStartsBroken(b, "at record %d: its tag does not verify"
                                % seq, allowed=allowed["id"])

    def test_rollback_to_an_older_copy(self):
        b = self.broker()
        pay = b.client("agent-payments")
        st, _, a = pay.submit("payments.transfer",
                              **harness.payment("12.50", to="acct-1"))
        self.assertEqual(st, 200, a)
        b.stop()
        old = snapshot(b.db, self.tmp)
        b.start()
        # The grant is used; then the database is put back before that.
        st, _, r = b.client("tool-payments").request(
            "POST", "/v1/grants/redeem", body=json.dumps(
                {"grant": a["grant"]}), content_type="application/json")
        self.assertEqual(st, 200, r)
        self.history(b)
        self.jwks_path = self.jwks_file(b)
        cp, _ = self.checkpoint(b)
        b.stop()
        restore(b.db, old)
        self.assertEqual(self.verify(b).returncode, 0)
        self.assertCaughtByCheckpoint(b, cp, "the chain ends at record")
        # The redeemed grant is not re-opened: no new grant in the view,
        # and the old one is not redeemed a second time.
        self.assertStartsBroken(b, "an older copy of the database",
                                allowed=a["id"])
        st, _, r = b.client("tool-payments").request(
            "POST", "/v1/grants/redeem", body=json.dumps(
                {"grant": a["grant"]}), content_type="application/json")
        self.assertEqual((st, r["error"]), (503, "unavailable"), r)

    def test_pending_flipped_to_allowed(self):
        b = self.broker()
        _, pending = self.history(b)
        b.stop()
        with Writer(b.db) as w:
            w.execute("UPDATE intents SET status = 'allowed', decided_at = "
                      "?, reason_text = 'approved' WHERE id = ?",
                      (int(time.time()), pending))
        n = len(b.log_lines())
        b.start()
        pay = b.client("agent-payments")
        st, _, v = pay.get("/v1/intents/" + pending)
        self.assertEqual((st, v["status"]), (200, "allowed"), v)
        self.assertIsNone(v["grant"])
        line = self.assertFailsClosed(b, "intent %s: it is allowed, but no "
                                      "approval record released it" %
                                      pending, n)
        self.assertRegex(line, r"at record \d+:")

    def test_policy_body_edited_in_place(self):
        b = self.broker()
        allowed, _ = self.history(b)
        b.stop()
        pol = harness.load_example_policy()
        for r in pol["roles"]["payments-agent"]["rules"]:
            for tiers in r.get("currencies", {}).values():
                for t in tiers:
                    t["approvals"] = 0
        with Writer(b.db) as w:
            w.execute("UPDATE policy_versions SET body = ? WHERE version = "
                      "(SELECT max(version) FROM policy_versions)",
                      (json.dumps(pol),))
        self.assertStartsBroken(b, "is not the one its policy.apply record "
                                "hashed: it was edited")
        # Nothing is decided under it, nor read: no policy is loaded.
        st, _, v = b.client("agent-payments").get("/v1/intents/" +
                                                  allowed["id"])
        self.assertEqual(st, 503, v)
        st, _, err = b.client("agent-payments").submit(
            "payments.transfer", **harness.payment("50000.00"))
        self.assertEqual(st, 503, err)


# ------------------------------------------- tampering, broker running

class TamperRunning(Case):

    def test_tail_truncation(self):
        b = self.broker()
        allowed, _ = self.history(b)
        n = len(b.log_lines())
        head = records(b.db)[-1][0]
        with Writer(b.db) as w:
            w.execute("DELETE FROM audit WHERE seq > ?", (head - 2,))
        self.assertFailsClosed(b, "records were removed", n, allowed["id"])

    def test_edit_with_every_later_hash_recomputed(self):
        b = self.broker()
        allowed, _ = self.history(b)
        n = len(b.log_lines())
        seq = next(s for s, rec, _, _ in records(b.db)
                   if '"amount":"5000.00"' in rec)

        def edit(body):
            body["details"]["args"]["to"] = "acct-mallory"
            return body
        rewrite_from(b.db, seq, edit)
        self.assertFailsClosed(b, "the chain was rewritten", n, allowed["id"])

    @harness.sqlite_only(ROLLBACK_SQLITE)
    def test_rollback_to_an_older_copy(self):
        b = self.broker()
        old = os.path.join(self.tmp, "old.db")
        copy_db(b.db, old)
        allowed, _ = self.history(b)
        n = len(b.log_lines())
        copy_db(old, b.db)
        self.assertFailsClosed(b, "an older copy of the database", n)

    def test_pending_flipped_to_allowed(self):
        b = self.broker()
        _, pending = self.history(b)
        n = len(b.log_lines())
        with Writer(b.db) as w:
            w.execute("UPDATE intents SET status = 'allowed', decided_at = "
                      "? WHERE id = ?", (int(time.time()), pending))
        st, _, v = b.client("agent-payments").get("/v1/intents/" + pending)
        self.assertEqual((st, v["status"]), (200, "allowed"), v)
        self.assertIsNone(v["grant"])
        self.assertFailsClosed(b, "no approval record released it", n)

    def test_allowed_args_edited(self):
        """An allowed, unredeemed intent's args changed in its row: the
        grant would carry them; its tagged decision record says no."""
        b = self.broker()
        pay = b.client("agent-payments")
        st, _, a = pay.submit("payments.transfer",
                              **harness.payment("12.50", to="acct-1"))
        self.assertEqual(st, 200, a)
        n = len(b.log_lines())
        with Writer(b.db) as w:
            args = json.loads(w.execute("SELECT args FROM intents WHERE "
                                        "id = ?", (a["id"],))[0][0])
            args["to"] = "acct-mallory"
            w.execute("UPDATE intents SET args = ? WHERE id = ?",
                      (verify_audit.jcs(args), a["id"]))
        st, _, v = pay.get("/v1/intents/" + a["id"])
        self.assertEqual(st, 200, v)
        self.assertIsNone(v["grant"])
        self.assertFailsClosed(b, "its row differs from its tagged decision "
                               "record", n)

    def test_policy_body_edited_in_place(self):
        b = self.broker()
        allowed, _ = self.history(b)
        n = len(b.log_lines())
        pol = harness.load_example_policy()
        pol["principals"]["agent-payments"]["roles"].append("operator")
        with Writer(b.db) as w:
            w.execute("UPDATE policy_versions SET body = ? WHERE version = "
                      "(SELECT max(version) FROM policy_versions)",
                      (json.dumps(pol),))
        self.assertFailsClosed(b, "it was edited behind the broker's back",
                               n, allowed["id"])

    def test_forged_untagged_widening_record(self):
        """A record appended with a correct hash but no tag (written
        without the audit key) that widens: refused."""
        b = self.broker()
        self.history(b)
        n = len(b.log_lines())
        seq, _, _, prev = records(b.db)[-1]
        body = {"seq": seq + 1, "at": "2026-12-01T00:00:00Z",
                "actor": "operator-olga", "event": "killswitch.reset",
                "intent_id": None, "details": {"id": 1, "reason": "x"},
                "format": 2}
        text = verify_audit.jcs(body)
        with Writer(b.db) as w:
            w.execute("INSERT INTO audit (seq, event, intent_id, record, "
                      "prev_hash, hash) VALUES (?, ?, NULL, ?, ?, ?)",
                      (seq + 1, "killswitch.reset", text, prev,
                       hashlib.sha256((prev + text).encode()).hexdigest()))
        self.assertFailsClosed(b, "at record %d: it widens what is allowed "
                               "but has no tag" % (seq + 1), n)


# ----------------------------------------------------- offline changes

class OfflineChanges(Case):

    def test_widening_needs_the_audit_key_narrowing_does_not(self):
        b = self.broker()
        p = b.ctl_db("policy", "apply", b.policy_file)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("policy apply --db widens what is allowed", p.stderr)
        self.assertIn("--audit-key FILE", p.stderr)
        p = b.ctl_db("--json", "killswitch", "trip", "--tool", "email.*",
                     "--reason", "offline, no key")
        self.assertEqual(p.returncode, 0, p.stderr)
        sw = json.loads(p.stdout)["id"]
        rec = json.loads(records(b.db)[-1][1])
        self.assertEqual(rec["event"], "killswitch.trip")
        self.assertNotIn("tag", rec)
        p = b.ctl_db("killswitch", "reset", str(sw), "--reason", "done")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--audit-key", p.stderr)
        p = b.ctl_db("killswitch", "reset", str(sw), "--reason", "done",
                     audit_key=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("tag", json.loads(records(b.db)[-1][1]))
        # The broker took both in: nothing broke, decisions go on.
        st, _, d = b.client("agent-payments").submit("crm.lookup")
        self.assertEqual(st, 200, d)
        self.assertEqual(self.broken_metric(b), 0)
        p = self.verify(b, key=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_the_audit_key_file_is_checked_at_start(self):
        b = harness.Broker()
        self.addCleanup(b._remove)
        key = os.path.join(b.dir, "open.key")
        shutil.copyfile(b.audit_key, key)
        os.chmod(key, 0o644)
        b.flags["--audit-key"] = key
        p = b.start_fails()
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--audit-key %s: key file is accessible by group or "
                      "others (mode 0644): chmod 600 it" % key, p.stderr)
        with open(key, "w") as f:
            f.write("not hex\n")
        os.chmod(key, 0o600)
        p = b.start_fails()
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("not 64 hex digits", p.stderr)
        b.flags["--audit-key"] = None
        p = b.start_fails()
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--audit-key", p.stderr)

    def test_policy_apply_record_says_what_changed(self):
        b = self.broker()
        pol = harness.load_example_policy()
        for r in pol["roles"]["payments-agent"]["rules"]:
            for tiers in r.get("currencies", {}).values():
                tiers[-1]["approvals"] = 0
        pol["principals"]["operator-olga"]["roles"].append("payments-agent")
        pol["principals"]["agent-new"] = {"roles": ["support-agent"]}
        body = json.dumps(pol).encode()
        st, _, ans = self.olga(b).request("PUT", "/v1/policy", body=body,
                                          content_type="application/json")
        self.assertEqual(st, 200, ans)
        rec = json.loads(records(b.db)[-1][1])
        self.assertEqual(rec["event"], "policy.apply")
        det = rec["details"]
        self.assertEqual(det["sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual((det["version"], det["previous_version"]),
                         (ans["version"], ans["version"] - 1))
        self.assertEqual(det["changes"]["principals"],
                         {"added": ["agent-new"],
                          "changed": ["operator-olga"]})
        self.assertEqual(det["changes"]["rules"],
                         {"changed": [{"role": "payments-agent",
                                       "tool": "payments.transfer"}]})
        self.assertNotIn("roles", det["changes"])


# ------------------------------------------------- starts and the key

class Starts(Case):

    def test_a_start_verifies_only_what_follows_its_anchor(self):
        b = self.broker()
        self.history(b)
        b.stop()
        head = records(b.db)[-1][0]
        n = len(b.log_lines())
        b.start()
        line = b.wait_log("audit chain verified", n)
        self.assertIn("verified: 0 records after record %d (anchor)" % head,
                      line)
        b.stop()
        os.unlink(b.anchor)
        n = len(b.log_lines())
        b.start()
        line = b.wait_log("audit chain verified", n)
        self.assertIn("verified: %d records after record 0 (genesis)" % head,
                      line)
        self.assertIn("%d tags" % head, line)
        b.wait_log("no audit anchor", n)
        self.assertTrue(os.path.exists(b.anchor))

    def test_rotating_the_audit_key(self):
        """proto/audit.md "Rotation": the new key first, the old one
        below it; records tagged with either verify, new ones take the
        new key."""
        b = self.broker()
        allowed, pending = self.history(b)
        b.stop()

        def kid(hexkey):
            return hashlib.sha256(bytes.fromhex(hexkey)).hexdigest()[:16]
        with open(b.audit_key) as f:
            old = f.read().split()[0]
        new = os.urandom(32).hex()
        rot = os.path.join(self.tmp, "rotated.key")
        fd = os.open(rot, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# new first, the old one until it no longer matters\n"
                    "%s\n%s\n" % (new, old))
        b.audit_key = rot
        b.start()
        # Tagged with the old key: still a grant.
        st, _, v = b.client("agent-payments").get("/v1/intents/" +
                                                  allowed["id"])
        self.assertEqual(st, 200, v)
        self.assertIsNotNone(v["grant"])
        st, _, r = b.client("approver-alice").request(
            "POST", "/v1/approvals/%s/approve" % pending, body="{}",
            content_type="application/json")
        self.assertEqual(st, 200, r)
        last = json.loads(records(b.db)[-1][1])
        self.assertEqual(last["event"], "approval")
        self.assertTrue(last["tag"].startswith(kid(new) + "."), last)
        first = json.loads(records(b.db)[0][1])
        self.assertTrue(first["tag"].startswith(kid(old) + "."), first)
        st, _, v = b.client("agent-payments").get("/v1/intents/" + pending)
        self.assertIsNotNone(v["grant"], v)
        self.assertEqual(self.broken_metric(b), 0)
        n = len(records(b.db))
        p = self.verify(b, key=True)
        self.assertEqual(p.stdout, "audit chain OK: %d records, %d tagged\n"
                         % (n, n), p.stderr)
        # The old key alone no longer vouches for the new records.
        b.audit_key = os.path.join(b.pki, "audit.key")
        p = self.verify(b, key=True)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("tag", p.stderr)


# ---------------------------------------------------------------- prune

class Prune(Case):

    def prune(self, b, archive, before="2999-01-01T00:00:00Z", *more):
        return b.ctl_db("audit", "prune", "--before", before, "--archive",
                        archive, "--grant-key",
                        os.path.join(b.pki, "grant.key"), *more)

    def redeem(self, b, iid):
        st, _, v = b.client("agent-payments").get("/v1/intents/" + iid)
        self.assertEqual(st, 200, v)
        st, _, r = b.client("tool-payments").request(
            "POST", "/v1/grants/redeem", body=json.dumps(
                {"grant": v["grant"]}), content_type="application/json")
        self.assertEqual(st, 200, r)

    def reapply(self, b):
        # Other bytes each time (trailing newlines): the very bytes in
        # force would make no new version, and no new record.
        self.reapplied = getattr(self, "reapplied", 0) + 1
        with open(b.policy_file, "rb") as f:
            body = f.read() + b"\n" * self.reapplied
        st, _, ans = self.olga(b).request("PUT", "/v1/policy", body=body,
                                          content_type="application/json")
        self.assertEqual(st, 200, ans)

    def closed_history(self, b):
        """Intents that are over — denied, approved and redeemed, allowed
        and redeemed — then the policy applied again (its record stays).
        Returns their ids."""
        pay = b.client("agent-payments")
        st, _, d = pay.submit("email.send")
        self.assertEqual(st, 403, d)
        st, _, p = pay.submit("payments.transfer",
                              **harness.payment("5000.00", to="acct-1"))
        self.assertEqual(st, 202, p)
        st, _, r = b.client("approver-alice").request(
            "POST", "/v1/approvals/%s/approve" % p["id"], body="{}",
            content_type="application/json")
        self.assertEqual(st, 200, r)
        self.redeem(b, p["id"])
        st, _, a = pay.submit("payments.transfer",
                              **harness.payment("12.50", to="acct-2"))
        self.assertEqual(st, 200, a)
        self.redeem(b, a["id"])
        self.reapply(b)
        return [d["id"], p["id"], a["id"]]

    def test_round_trip(self):
        b = self.broker()
        pay = b.client("agent-payments")
        closed = self.closed_history(b)
        policy_seq = records(b.db)[-1][0]
        cut = policy_seq - 1
        st, _, live = pay.submit("payments.transfer",
                                 **harness.payment("12.50", to="acct-9"))
        self.assertEqual(st, 200, live)
        st, _, pend = pay.submit("payments.transfer",
                                 **harness.payment("7000.00", to="acct-8"))
        self.assertEqual(st, 202, pend)
        self.jwks_path = self.jwks_file(b)
        old_cp, _ = self.checkpoint(b, "old.jws")
        before = records(b.db)
        archive = os.path.join(self.tmp, "a1.jsonl")
        # Offline, with the broker running: it goes on deciding.
        p = self.prune(b, archive)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("archived records 1 to %d into %s, ending in a "
                      "checkpoint of record %d" % (cut, archive, cut),
                      p.stdout)
        self.assertIn("3 intents that were over removed", p.stdout)
        self.assertIn("stopped early to keep the record of the policy in "
                      "force", p.stdout)
        self.assertEqual(os.stat(archive).st_mode & 0o777, 0o600)
        # The archive verifies on its own.
        q = b.ctl_db("audit", "verify", "--archive", archive, "--jwks",
                     self.jwks_path)
        self.assertEqual(q.stdout, "archive OK: %d records, ending in a "
                         "checkpoint of record %d (signature verified)\n" %
                         (cut, cut), q.stderr)
        q = self.run_verifier("--jwks", self.jwks_path, archive)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        with open(archive) as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        self.assertEqual([r["seq"] for r in lines[:-1]],
                         list(range(1, cut + 1)))
        self.assertEqual([r[1] for r in before[:cut]],
                         [verify_audit.jcs({k: v for k, v in r.items()
                                            if k not in ("prev_hash",
                                                         "hash")})
                          for r in lines[:-1]])
        end = verify_audit.checkpoint_claims(lines[-1]["checkpoint"],
                                             self.jwks(b))
        self.assertEqual((end["seq"], end["hash"]), (cut, before[cut - 1][3]))
        # What is left verifies from the cut: offline, online, exported.
        left = records(b.db)
        self.assertEqual(left[0][0], cut + 1)
        q = self.verify(b, key=True)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertIn("after record %d (where it was cut)" % cut, q.stdout)
        q = b.ctl("audit", "verify", identity="operator-olga")
        self.assertEqual(q.returncode, 0, q.stderr)
        export = self.export(b)
        self.assertEqual(json.loads(export.splitlines()[0]),
                         {"start": lines[-1]["checkpoint"]})
        q = self.run_verifier("--jwks", self.jwks_path, "--checkpoint",
                              old_cp, stream=export)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        q = self.verify(b, "--checkpoint", old_cp)
        self.assertEqual(q.returncode, 0, q.stderr)
        rec = json.loads(left[-1][1])
        self.assertEqual((rec["event"], rec["details"]["cut"],
                          rec["details"]["intents"]), ("audit.prune", cut, 3))
        # The intents that were over went; the pending and the allowed
        # one stay, and the allowed one still gets its grant.
        for iid in closed:
            st, _, v = pay.get("/v1/intents/" + iid)
            self.assertEqual(st, 404, v)
        st, _, v = pay.get("/v1/intents/" + live["id"])
        self.assertEqual((st, v["status"]), (200, "allowed"))
        self.assertIsNotNone(v["grant"])
        st, _, v = pay.get("/v1/intents/" + pend["id"])
        self.assertEqual((st, v["status"]), (200, "pending"))
        self.assertEqual(self.broken_metric(b), 0)
        st, _, d = pay.submit("email.send")
        self.assertEqual(st, 403, d)
        b.restart()
        st, _, d = pay.submit("email.send")
        self.assertEqual(st, 403, d)

        # A second prune continues the first archive.
        self.redeem(b, live["id"])
        st, _, r = b.client("approver-alice").request(
            "POST", "/v1/approvals/%s/reject" % pend["id"],
            body=json.dumps({"reason": "no"}),
            content_type="application/json")
        self.assertEqual(st, 200, r)
        self.reapply(b)
        a2 = os.path.join(self.tmp, "a2.jsonl")
        p = self.prune(b, a2)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(a2) as f:
            first = json.loads(f.readline())
        self.assertEqual(first, {"start": lines[-1]["checkpoint"]})
        q = b.ctl_db("audit", "verify", "--archive", a2, "--jwks",
                     self.jwks_path)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertIn("after record %d (where it continues an earlier "
                      "archive)" % cut, q.stdout)
        q = self.run_verifier("--jwks", self.jwks_path, a2)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        # The first checkpoint is now before the cut: the database
        # cannot show it, its archive does.
        q = self.verify(b, "--checkpoint", old_cp)
        self.assertEqual(q.returncode, 1, q.stdout)
        self.assertIn("it was pruned; check the checkpoint against its "
                      "archive", q.stderr)
        q = b.ctl_db("audit", "verify", "--archive", a2, "--checkpoint",
                     old_cp, "--jwks", self.jwks_path)
        self.assertEqual(q.returncode, 0, q.stderr)
        q = self.run_verifier("--jwks", self.jwks_path, "--checkpoint",
                              old_cp, a2)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        b.restart()
        self.assertEqual(self.broken_metric(b), 0)
        self.assertEqual(self.verify(b, key=True).returncode, 0)

    def test_an_archive_cut_short_or_edited_is_caught(self):
        b = self.broker()
        self.closed_history(b)
        self.jwks_path = self.jwks_file(b)
        archive = os.path.join(self.tmp, "a.jsonl")
        self.assertEqual(self.prune(b, archive).returncode, 0)
        with open(archive) as f:
            lines = f.read().splitlines()
        self.assertGreater(len(lines), 3)
        short = os.path.join(self.tmp, "short.jsonl")
        with open(short, "w") as f:
            f.write("\n".join(lines[:-2]) + "\n")
        q = b.ctl_db("audit", "verify", "--archive", short)
        self.assertEqual(q.returncode, 1, q.stdout)
        self.assertIn("does not end with a checkpoint", q.stderr)
        edited = os.path.join(self.tmp, "edited.jsonl")
        with open(edited, "w") as f:
            f.write("\n".join(lines[:-2] + [lines[-1]]) + "\n")
        q = b.ctl_db("audit", "verify", "--archive", edited)
        self.assertEqual(q.returncode, 1, q.stdout)
        self.assertIn("names another record or hash", q.stderr)
        q = self.run_verifier("--jwks", self.jwks_path, edited)
        self.assertEqual(q.returncode, 1, q.stdout)
        self.assertIn("names another record or hash", q.stdout)
        # An archive is never overwritten, and then nothing is pruned.
        self.reapply(b)
        n = len(records(b.db))
        p = self.prune(b, archive)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("never overwritten", p.stderr)
        self.assertEqual(len(records(b.db)), n)

    def test_nothing_to_prune_keeps_what_is_needed(self):
        b = self.broker()
        self.history(b)
        archive = os.path.join(self.tmp, "a.jsonl")
        # The only policy.apply is record 1: nothing can go before it.
        p = self.prune(b, archive)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to prune before 2999-01-01T00:00:00Z: "
                      "keeping the record of the policy in force", p.stdout)
        self.assertFalse(os.path.exists(archive))
        p = self.prune(b, archive, "2000-01-01T00:00:00Z")
        self.assertIn("nothing to prune: no record is older than", p.stdout)
        p = b.ctl("audit", "prune", "--before", "2000-01-01T00:00:00Z",
                  "--archive", archive, identity="operator-olga")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("give --db PATH", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
