"""
test_lifecycle: the lifecycle rules of CONTRACT §13 through a real broker
over real mTLS on a real SQLite file, one class per rule: every waiter
woken after every status change whoever made it; approvals re-decided
under the policy in force; no grant while a kill switch covers the
intent; the grant window; long-polls bounded per identity, freed on
hang-up and rendered once per wake; the approval queue paged; no args
kept for unknown principals; private database files; request latency
that includes the commit; one body length per request; one input
toolkit (415, code points, blank reasons).

Every wait is for a condition with a generous deadline, never a fixed
time: the machine may be slow and shared.
"""

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonschema import Draft202012Validator  # noqa: E402

import harness  # noqa: E402
from test_hostile import read_response, tls_connect, write_config  # noqa: E402

with open(os.path.join(harness.ROOT, "proto", "decision.schema.json")) as f:
    DECISION = Draft202012Validator(json.load(f))
with open(os.path.join(harness.ROOT, "proto", "error.schema.json")) as f:
    ERROR = Draft202012Validator(json.load(f))


def example_policy():
    with open(harness.EXAMPLE_POLICY) as f:
        return json.load(f)


def canon(obj):
    """The broker's canonical JSON (sorted keys, compact; ASCII here)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def metric(client, name):
    """The value of an unlabelled series in /metrics, or None."""
    st, _, text = client.get("/metrics")
    assert st == 200, text
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


def wait_until(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %.0f s waiting for %s" %
                         (timeout, what))


def wait_held(client, n, timeout=30.0):
    """Until the broker holds at least n long-polls.  A broker without
    the gauge gets a second instead (so an old build can be tested)."""
    if metric(client, "toolgate_waits_held") is None:
        time.sleep(1.0)
        return
    wait_until(lambda: metric(client, "toolgate_waits_held") >= n,
               timeout, "%d long-polls to be held" % n)


def raw_wait(broker, name, iid, seconds=30):
    """A long-poll on its own raw TLS connection as identity name."""
    s = tls_connect(broker, name, timeout=60)
    s.sendall(("GET /v1/intents/%s?wait=%d HTTP/1.1\r\nHost: x\r\n\r\n" %
               (iid, seconds)).encode())
    return s


def post_json(client, path, obj=None, raw=None, content_type="application/json"):
    body = raw if raw is not None else json.dumps(obj if obj is not None
                                                  else {})
    return client.request("POST", path, body=body, content_type=content_type)


class Case(unittest.TestCase):
    """Helpers shared by the classes below."""

    def pending(self, b, value="5000.00", args=None):
        # policies/example.json reads the amount from args (amount_from)
        st, _, body = b.client("agent-payments").submit(
            "payments.transfer", **harness.payment(value, **(args or {})))
        self.assertEqual(st, 202, body)
        return body["id"]

    def approve(self, b, who, iid, body=None):
        return post_json(b.client(who), "/v1/approvals/%s/approve" % iid,
                         body if body is not None else {})

    def trip(self, b, **sw):
        st, _, body = post_json(b.client("operator-olga"), "/v1/killswitch",
                                sw)
        self.assertEqual(st, 201, body)
        return body

    def reset(self, b, sid):
        st, _, body = post_json(b.client("operator-olga"),
                                "/v1/killswitch/%d/reset" % sid,
                                {"reason": "over"})
        self.assertEqual(st, 200, body)

    def view(self, b, iid, who="agent-payments"):
        st, _, v = b.client(who).get("/v1/intents/" + iid)
        self.assertEqual(st, 200, v)
        DECISION.validate(v)
        return v

    def audit(self, b, event, iid):
        return [json.loads(r[0]) for r in b.query(
            "SELECT record FROM audit WHERE event = ? AND intent_id = ? "
            "ORDER BY seq", (event, iid))]


# ------------------------------------------------ every waiter is woken

class WakeEveryWaiter(Case):
    """One thread: the long-poll and the trip run on the same worker (the
    old broker answered it only when its own timer fired)."""

    def test_trip_reject_pending_wakes_a_waiter_on_the_same_thread(self):
        with harness.Broker(threads=1) as b:
            iid = self.pending(b)
            s = raw_wait(b, "agent-payments", iid, 30)
            try:
                wait_held(b.client("agent-support"), 1)
                t0 = time.monotonic()
                sw = self.trip(b, scope="agent", target="agent-payments",
                               reason="stop", reject_pending=True)
                self.assertEqual(sw["rejected"], [iid])
                r = read_response(s, timeout=40)
                took = time.monotonic() - t0
            finally:
                s.close()
            self.assertIsNotNone(r)
            self.assertEqual(r[0], 200)
            self.assertEqual(json.loads(r[2])["status"], "rejected")
            self.assertLess(took, 10.0, "woken %.1f s after the trip" % took)

    def test_offline_trip_wakes_waiters_within_seconds(self):
        with harness.Broker(threads=2) as b:
            iid = self.pending(b)
            s = raw_wait(b, "agent-payments", iid, 30)
            try:
                wait_held(b.client("agent-support"), 1)
                t0 = time.monotonic()
                p = b.ctl_db("killswitch", "trip", "--reason", "offline",
                             "--reject-pending")
                self.assertEqual(p.returncode, 0, p.stderr)
                r = read_response(s, timeout=40)
                took = time.monotonic() - t0
            finally:
                s.close()
            self.assertEqual(json.loads(r[2])["status"], "rejected")
            self.assertLess(took, 10.0)


# ------------------------------------- approval under the policy in force

class ApprovalRedecides(Case):

    def setUp(self):
        self.b = harness.Broker(threads=2)
        self.b.start()

    def tearDown(self):
        self.b.stop()

    def put_policy(self, p):
        st, _, body = self.b.client("operator-olga").request(
            "PUT", "/v1/policy", body=json.dumps(p),
            content_type="application/json")
        self.assertEqual(st, 200, body)

    def assert_refused(self, iid, code):
        st, _, err = self.approve(self.b, "approver-alice", iid)
        self.assertEqual((st, err.get("error")), (409, "policy_changed"), err)
        ERROR.validate(err)
        v = self.view(self.b, iid)
        self.assertEqual(v["status"], "rejected")
        self.assertEqual(v["closed_reason"], "policy changed: " + code)
        self.assertNotIn("grant", v)
        recs = self.audit(self.b, "rejection", iid)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["details"]["reason"], "policy_changed")
        self.assertEqual(recs[0]["details"]["reason_code"], code)
        self.assertEqual(self.approve(self.b, "approver-bob", iid)[0], 409)
        p = self.b.ctl_db("audit", "verify")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_disabled_agent_is_not_approved(self):
        iid = self.pending(self.b, "50000.00")
        p = example_policy()
        p["principals"]["agent-payments"]["disabled"] = True
        self.put_policy(p)
        self.assert_refused(iid, "principal_disabled")

    def test_removed_agent_is_not_approved(self):
        iid = self.pending(self.b)
        p = example_policy()
        del p["principals"]["agent-payments"]
        self.put_policy(p)
        self.assert_refused(iid, "unknown_principal")

    def test_a_deny_rule_now_covering_it_refuses(self):
        iid = self.pending(self.b)
        p = example_policy()
        p["roles"]["payments-agent"]["rules"].append(
            {"tool": "payments.*", "effect": "deny"})
        self.put_policy(p)
        # CONTRACT §8: an explicit deny rule answers denied_by_rule
        self.assert_refused(iid, "denied_by_rule")

    def test_a_tool_no_longer_allowed_refuses(self):
        iid = self.pending(self.b)
        p = example_policy()
        # Another rule keeps alice an approver: only the call went.
        p["roles"]["payments-agent"]["rules"] = [
            r for r in p["roles"]["payments-agent"]["rules"]
            if r["tool"] != "payments.transfer"] + [
            {"tool": "payments.refund", "approvals": 1,
             "approvers": ["finance-approver"]}]
        self.put_policy(p)
        self.assert_refused(iid, "no_permission")

    def test_an_amount_signed_as_a_number_is_approved(self):
        # args keep 5000.00 as RFC 8785 writes it (5000); the approval
        # re-decides with those args and the stored amount "5000.00" as
        # the claim: equal by value, no false amount_mismatch.
        pay = self.b.client("agent-payments")
        now = int(time.time())
        raw = ('{"iss":"agent-payments","aud":"toolgate","jti":"num-%d",'
               '"iat":%d,"exp":%d,"tool":"payments.transfer","args":'
               '{"amount":5000.00,"currency":"USD"},"amount":{"value":'
               '"5000","currency":"USD"}}' % (now, now, now + 60)).encode()
        st, _, body = pay.post_intent(pay.sign(raw))
        self.assertEqual(st, 202, body)
        self.assertEqual(body["amount"], {"value": "5000.00",
                                          "currency": "USD"})
        self.assertEqual(body["args"]["amount"], 5000)
        st, _, v = self.approve(self.b, "approver-alice", body["id"])
        self.assertEqual((st, v["status"]), (200, "allowed"), v)
        self.assertEqual(self.view(self.b, body["id"])["grant"].count("."),
                         2)

    def test_a_claim_a_new_rule_contradicts_is_refused(self):
        # pending on the claim alone; the policy in force then reads the
        # amount from args, where it differs: the call is no longer
        # allowed (a 400 at arrival), so policy_changed.
        p = example_policy()
        del p["roles"]["payments-agent"]["rules"][0]["amount_from"]
        self.put_policy(p)
        st, _, body = self.b.client("agent-payments").submit(
            "payments.transfer", args={"amount": "50.00", "currency": "USD"},
            amount={"value": "5000.00", "currency": "USD"})
        self.assertEqual(st, 202, body)
        self.put_policy(example_policy())
        self.assert_refused(body["id"], "amount_mismatch")

    def test_more_approvals_now_needed_are_needed(self):
        iid = self.pending(self.b)          # 5000.00: one approval
        p = example_policy()
        tiers = p["roles"]["payments-agent"]["rules"][0]["currencies"]["USD"]
        for t in tiers:
            if t["approvals"] == 1:
                t["approvals"] = 2
        self.put_policy(p)
        st, _, v = self.approve(self.b, "approver-alice", iid)
        self.assertEqual((st, v["status"]), (200, "pending"), v)
        st, _, v = self.approve(self.b, "approver-bob", iid)
        self.assertEqual((st, v["status"]), (200, "allowed"), v)
        self.assertEqual(len(v["approvals"]), 2)

    def test_an_approver_no_longer_holding_the_role_does_not_count(self):
        iid = self.pending(self.b, "50000.00")   # two approvals
        st, _, v = self.approve(self.b, "approver-alice", iid)
        self.assertEqual((st, v["status"]), (200, "pending"), v)
        p = example_policy()
        p["principals"]["approver-alice"]["roles"] = []
        p["principals"]["operator-olga"]["roles"].append("finance-approver")
        self.put_policy(p)
        # alice's approval no longer counts: bob's alone does not release
        st, _, v = self.approve(self.b, "approver-bob", iid)
        self.assertEqual((st, v["status"]), (200, "pending"), v)
        st, _, v = self.approve(self.b, "operator-olga", iid)
        self.assertEqual((st, v["status"]), (200, "allowed"), v)


# ------------------------------------------------ no grant under a switch

class NoGrantUnderKillSwitch(Case):

    def test_get_answers_grant_null_while_a_switch_covers_it(self):
        with harness.Broker(threads=2) as b:
            pay = b.client("agent-payments")
            st, _, body = pay.submit("crm.lookup")
            self.assertEqual(st, 200, body)
            iid = body["id"]
            self.assertTrue(self.view(b, iid)["grant"])
            sw = self.trip(b, scope="tool", target="crm.*", reason="stop")
            v = self.view(b, iid)
            self.assertEqual(v["status"], "allowed")
            self.assertIn("grant", v)
            self.assertIsNone(v["grant"])
            self.assertNotIn("grant_expires_at", v)
            # an approver never sees a grant, switch or not
            self.assertNotIn("grant", self.view(b, iid, "approver-alice"))
            self.reset(b, sw["id"])
            self.assertTrue(self.view(b, iid)["grant"])


# ---------------------------------------------------------- grant window

class GrantWindow(Case):

    def test_an_unredeemed_intent_expires_after_its_window(self):
        conf = write_config("grant-window = 2\n")
        with harness.Broker(threads=2, extra_args=("--config", conf)) as b:
            pay = b.client("agent-payments")
            tool = b.client("tool-payments")
            st, _, body = pay.submit("payments.transfer",
                                     **harness.payment("10.00"))
            self.assertEqual(st, 200, body)
            iid, grant = body["id"], body["grant"]
            # redeemed inside its window: stays allowed, never expires
            st, _, other = pay.submit("payments.transfer",
                                      **harness.payment("11.00"))
            st, _, r = post_json(tool, "/v1/grants/redeem",
                                 {"grant": other["grant"]})
            self.assertEqual(st, 200, r)
            v = wait_until(lambda: (lambda v: v if v["status"] ==
                                    "expired" else None)(
                self.view(b, iid)), 30, "the intent to expire")
            self.assertNotIn("grant", v)
            self.assertEqual(v["decision"], "allow")
            self.assertEqual(v["reason"], "not redeemed within the grant "
                             "window")
            # its last grant is still in date, but the intent is not
            st, _, err = post_json(tool, "/v1/grants/redeem",
                                   {"grant": grant})
            self.assertEqual((st, err["error"]), (409, "already_redeemed"))
            recs = self.audit(b, "expiry", iid)
            self.assertEqual(len(recs), 1)
            self.assertEqual(recs[0]["details"]["was"], "allowed")
            self.assertEqual(self.view(b, other["id"])["status"], "allowed")
            b.stop()
            p = b.ctl_db("audit", "verify")
            self.assertEqual(p.returncode, 0, p.stderr)


# ------------------------------------------------------- fair long-polls

class FairLongPolls(Case):

    def test_waits_per_identity_are_capped_and_freed_on_hang_up(self):
        conf = write_config("max-waits-per-identity = 4\n")
        with harness.Broker(threads=2, extra_args=("--config", conf)) as b:
            iid = self.pending(b)
            sup = b.client("agent-support")
            socks = [raw_wait(b, "agent-payments", iid) for _ in range(4)]
            try:
                wait_held(sup, 4)
                st, h, err = b.client("agent-payments").get(
                    "/v1/intents/%s?wait=30" % iid)
                self.assertEqual((st, err["error"]), (429, "rate_limited"))
                self.assertRegex(h.get("retry-after", ""), r"^[1-9]\d*$")
                # another identity is not affected
                s = raw_wait(b, "approver-alice", iid)
                socks.append(s)
                wait_held(sup, 5)
                # one hangs up: its slot is free at once, not at its timer
                socks.pop(0).close()
                wait_until(lambda: metric(sup, "toolgate_waits_held") == 4,
                           20, "the hung-up long-poll to be let go")
                socks.append(raw_wait(b, "agent-payments", iid))
                wait_held(sup, 5)
                st, _, v = self.approve(b, "approver-bob", iid)
                self.assertEqual(st, 200, v)
                for s in socks:
                    r = read_response(s, timeout=30)
                    self.assertEqual(r[0], 200)
                    self.assertEqual(json.loads(r[2])["status"], "allowed")
            finally:
                for s in socks:
                    s.close()

    def test_one_wake_renders_the_intent_once(self):
        conf = write_config("max-waits-per-identity = 200\n")
        with harness.Broker(threads=2, extra_args=("--config", conf)) as b:
            big = {"memo": "x" * 45000}
            iid = self.pending(b, args=big)
            sup = b.client("agent-support")
            socks = [raw_wait(b, "agent-payments", iid) for _ in range(40)]
            socks += [raw_wait(b, "approver-carol", iid) for _ in range(10)]
            try:
                wait_held(sup, 50)
                views0 = metric(sup, "toolgate_intent_views_total")
                answered0 = metric(sup, "toolgate_waits_answered_total")
                st, _, v = self.approve(b, "approver-alice", iid)
                self.assertEqual(st, 200)
                got = []
                for s in socks:
                    r = read_response(s, timeout=30)
                    got.append(json.loads(r[2]))
            finally:
                for s in socks:
                    s.close()
            self.assertEqual({g["status"] for g in got}, {"allowed"})
            self.assertTrue(all(g.get("grant") for g in got[:40]))
            self.assertTrue(all("grant" not in g for g in got[40:]))
            self.assertEqual(metric(sup, "toolgate_waits_answered_total") -
                             answered0, 50)
            # at most: the approval's own answer, and once per audience on
            # each of the two threads
            self.assertLessEqual(metric(sup, "toolgate_intent_views_total") -
                                 views0, 5)


# ------------------------------------------------------- bounded answers

class BoundedAnswers(Case):

    def test_the_approval_queue_is_paged(self):
        with harness.Broker(threads=2) as b:
            ids = [self.pending(b, args={"memo": "%02d" % i + "y" * 45000})
                   for i in range(40)]
            alice = b.client("approver-alice")
            seen, cursor, pages = [], None, 0
            while True:
                path = "/v1/approvals?status=pending&limit=1000"
                if cursor:
                    path += "&cursor=" + cursor
                st, h, text = alice.request("GET", path)
                self.assertEqual(st, 200)
                raw = json.dumps(text)
                self.assertLess(len(raw), 1100 * 1024,
                                "one page is %d bytes" % len(raw))
                seen += [i["id"] for i in text["items"]]
                pages += 1
                cursor = text.get("next_cursor")
                if not cursor:
                    break
            self.assertGreater(pages, 1)
            self.assertEqual(seen, ids)       # each once, oldest first
            st, _, err = alice.get("/v1/approvals?cursor=nonsense")
            self.assertEqual((st, err["error"]), (400, "bad_request"))
            st, _, page = alice.get("/v1/approvals?limit=3")
            self.assertEqual([i["id"] for i in page["items"]], ids[:3])
            self.assertTrue(page["next_cursor"])

    def test_a_strangers_args_are_not_kept(self):
        with harness.Broker(threads=2) as b:
            c = b.client("agent-stranger")
            args = {"payload": "z" * 45000, "n": 1}
            st, _, body = c.submit("payments.transfer", args=args)
            self.assertEqual((st, body["reason_code"]),
                             (403, "unknown_principal"))
            want = hashlib.sha256(canon(args).encode()).hexdigest()
            DECISION.validate(body)
            self.assertEqual(body["args"], {})
            self.assertEqual(body["args_sha256"], want)
            row = tuple(b.query("SELECT args, args_sha256 FROM intents "
                                "WHERE id = ?", (body["id"],))[0])
            rec = b.query("SELECT record FROM audit WHERE intent_id = ?",
                          (body["id"],))[0][0]
            self.assertEqual(row, (None, want))
            self.assertNotIn("zzzz", rec)
            self.assertEqual(json.loads(rec)["details"]["args_sha256"], want)
            # a known agent's args are kept as before
            st, _, body = b.client("agent-payments").submit(
                "crm.lookup", args={"id": 42})
            self.assertEqual(body["args"], {"id": 42})
            self.assertNotIn("args_sha256", body)


# ------------------------------------------------------------ file modes

@harness.sqlite_only("the modes of the SQLite file and its -wal, -shm")
class PrivateFiles(Case):

    def modes(self, path):
        return {suffix: stat.S_IMODE(os.stat(path + suffix).st_mode)
                for suffix in ("", "-wal", "-shm")
                if os.path.exists(path + suffix)}

    def test_toolgatectl_and_toolgated_create_0600(self):
        old = os.umask(0o022)
        try:
            with harness.Broker(threads=1) as b:   # made by toolgatectl
                b.client("agent-payments").submit("crm.lookup")
                m = self.modes(b.db)
                self.assertIn("-wal", m)
                self.assertEqual(set(m.values()), {0o600}, m)
            d = tempfile.mkdtemp(prefix="toolgate-modes-")
            try:
                db = os.path.join(d, "fresh.db")
                k = harness.pki()
                p = subprocess.Popen(
                    [harness.DAEMON, "--listen", "127.0.0.1:%d" %
                     harness.free_port(), "--db", db,
                     "--ca", os.path.join(k, "ca.pem"),
                     "--cert", os.path.join(k, "broker.pem"),
                     "--key", os.path.join(k, "broker.key"),
                     "--grant-key", os.path.join(k, "grant.key"),
                     "--threads", "1"], stderr=subprocess.PIPE, text=True)
                try:
                    for line in p.stderr:
                        if "listening on" in line:
                            break
                    m = self.modes(db)
                finally:
                    p.terminate()
                    p.wait(30)
                self.assertEqual(set(m.values()), {0o600}, m)
            finally:
                subprocess.run(["rm", "-rf", d])
        finally:
            os.umask(old)


# --------------------------------------------------- latency with commit

class LatencyIncludesCommit(Case):

    def test_post_latency_counts_the_commit(self):
        with harness.Broker(threads=2) as b:
            sup = b.client("agent-support")
            pay = b.client("agent-payments")
            self.assertEqual(pay.submit("crm.lookup")[0], 200)
            sum0 = metric(sup, "toolgate_request_seconds_sum")
            tok = pay.sign(harness.claims(pay.identity, "crm.lookup"))
            release = b.hold_write_lock()
            s = tls_connect(b, "agent-payments", timeout=60)
            try:
                # Sent before the hold starts: the broker has it queued
                # for the whole hold (its writer waits for the lock).
                s.sendall(("POST /v1/intents HTTP/1.1\r\nHost: x\r\n"
                           "Content-Type: application/jose\r\n"
                           "Content-Length: %d\r\n\r\n%s" %
                           (len(tok), tok)).encode())
                time.sleep(2.0)     # the lock's hold time, not a wait
            finally:
                release()
            try:
                r = read_response(s, timeout=60)
            finally:
                s.close()
            self.assertEqual(r[0], 200)
            self.assertGreaterEqual(
                metric(sup, "toolgate_request_seconds_sum") - sum0, 1.0)


# ------------------------------------------------------ request framing

class Framing(Case):

    def raw(self, b, head):
        s = tls_connect(b, "agent-payments", timeout=30)
        try:
            s.sendall(head)
            r = read_response(s, timeout=30)
            closed = False
            if r is not None:
                s.settimeout(30)
                try:
                    closed = s.recv(1) == b""
                except (OSError, socket.timeout):
                    closed = True
            return r, closed
        finally:
            s.close()

    def test_ambiguous_body_lengths_are_400(self):
        with harness.Broker(threads=1) as b:
            r, closed = self.raw(b, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 0\r\nContent-Length: 0"
                                 b"\r\n\r\n")
            self.assertEqual(r[0], 400)
            self.assertEqual(json.loads(r[2])["error"], "bad_request")
            self.assertTrue(closed)
            r, closed = self.raw(b, b"POST /v1/grants/redeem HTTP/1.1\r\n"
                                 b"Host: x\r\nContent-Type: application/json"
                                 b"\r\nContent-Length: 2\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n"
                                 b"2\r\n{}\r\n0\r\n\r\n")
            self.assertEqual(r[0], 400)
            self.assertTrue(closed)
            r, closed = self.raw(b, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 0\r\n\r\n")
            self.assertEqual(r[0], 200)


# --------------------------------------------------------- input toolkit

class Inputs(Case):

    def test_every_json_endpoint_wants_json_and_reasons_are_text(self):
        with harness.Broker(threads=2) as b:
            iid = self.pending(b)
            alice = b.client("approver-alice")
            path = "/v1/approvals/%s/" % iid
            for verb, body in (("approve", "{}"), ("reject",
                                                  '{"reason": "no"}')):
                for ct in (None, "text/plain"):
                    st, _, err = alice.request("POST", path + verb,
                                               body=body, content_type=ct)
                    self.assertEqual((st, err["error"]),
                                     (415, "unsupported_media_type"))
            for reason in ("   ", "\u00a0\u2003", "\t\n"):
                st, _, err = post_json(alice, path + "reject",
                                       {"reason": reason})
                self.assertEqual((st, err["error"]), (400, "bad_request"))
            st, _, err = post_json(alice, path + "approve",
                                   {"comment": "\u00e9" * 1025})
            self.assertEqual((st, err["error"]), (400, "bad_request"))
            # 1024 characters are fine however many bytes they take
            st, _, v = post_json(alice, path + "reject",
                                 {"reason": "\u00e9" * 1024})
            self.assertEqual((st, v["status"]), (200, "rejected"), v)
            self.assertEqual(v["closed_reason"], "\u00e9" * 1024)
            st, _, err = post_json(b.client("operator-olga"),
                                   "/v1/killswitch",
                                   {"scope": "global", "reason": "\u00a0"})
            self.assertEqual((st, err["error"]), (400, "bad_request"))
            st, _, err = b.client("agent-payments").submit("crm.lookup",
                                                           reason="  ")
            self.assertEqual((st, err["error"]), (400, "bad_request"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
