"""
test_events: events out (CONTRACT §10, issue 13) against a real broker and
real local receivers (harness.Receiver: plain HTTP, and HTTPS with the
test CA).  A pending payment reaches the receiver signed, with the right
facts and its args as the audit keeps them; an approval sends
intent.allowed; a receiver that was down gets everything it missed, in
order; kill -9 between the commit and the delivery loses nothing; sinks
that fail for good (500, hang, reset, 3xx) do not hold decisions up and
their events are given up and counted; the bound drops audit records
first, never a pending intent; two brokers on one database deliver each
event once; offline changes reach the sinks; checkpoints and the SIEM
stream carry the chain; bad notify lines stop the daemon naming the
line; toolgatectl events status, the status API and the metrics agree;
the approval queue's long-poll and toolgatectl pending --watch (in a
pty) redraw on a change.  Every wait is for a condition, with generous
deadlines (the machine is shared and slow).
"""

import fcntl
import json
import os
import queue
import re
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KEY = b"test-webhook-key-0123456789"
RECEIVER = os.path.join(harness.ROOT, "proto", "examples", "receiver.py")


def wait_until(pred, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError("%s did not hold within %d s" % (what, timeout))


class EventsCase(unittest.TestCase):

    def config(self, notify, settings=(), secret=KEY + b"\n",
               secret_mode=0o600):
        """A --config file with these notify lines, the secret file and
        other lines; its path."""
        d = tempfile.mkdtemp(prefix="toolgate-events-")
        self.addCleanup(shutil.rmtree, d, True)
        key = os.path.join(d, "notify.key")
        with open(key, "wb") as f:
            f.write(secret)
        os.chmod(key, secret_mode)
        conf = os.path.join(d, "toolgated.conf")
        with open(conf, "w") as f:
            f.write("notify-secret-file = %s\n" % key)
            for n in notify:
                f.write("notify = %s\n" % n)
            for s in settings:
                f.write(s + "\n")
        return conf

    def broker(self, notify, settings=(), policy=None, **kw):
        return harness.Broker(policy=policy, extra_args=(
            "--config", self.config(notify, settings)), **kw)

    def status(self, b, offline=False):
        """toolgatectl events status --json, by sink name."""
        p = (b.ctl_db("--json", "events", "status") if offline else
             b.ctl("--json", "events", "status", identity="operator-olga"))
        self.assertEqual(p.returncode, 0, p.stderr)
        return {s["name"]: s for s in json.loads(p.stdout)["sinks"]}

    def queue_poll(self, b, gen):
        """GET /v1/approvals?wait=60&since=gen on b as approver-alice, on a
        thread, once b holds it: (thread, dict that gets "answer" and the
        monotonic time it came "at")."""
        got = {}

        def poll():
            got["answer"] = b.client("approver-alice", timeout=90).get(
                "/v1/approvals?wait=60&since=%d" % gen)
            got["at"] = time.monotonic()
        th = threading.Thread(target=poll)
        th.start()
        wait_until(lambda: re.search(
            r"toolgate_waits_held [1-9]",
            b.client("operator-olga").get("/metrics")[2]),
            what="the long-poll held")
        return th, got

    def pay(self, client, value="5000.00", **args):
        st, _, view = client.submit("payments.transfer",
                                    reason="invoice 42",
                                    **harness.payment(value, **args))
        self.assertIn(st, (200, 202), view)
        return view


class Delivery(EventsCase):

    def test_pending_and_allowed_reach_the_receiver_signed(self):
        policy = harness.load_example_policy()
        policy["redact"] = {"payments.*": ["iban"]}
        with harness.Receiver() as rcv, \
                self.broker(["hook %s" % rcv.url], policy=policy) as b:
            agent = b.client("agent-payments")
            t0 = time.monotonic()
            view = self.pay(agent, iban="DE89370400440532013000",
                            to="acct-7")
            self.assertEqual(view["status"], "pending")
            rcv.wait(lambda r: r.events("intent.pending"),
                     what="intent.pending delivered")
            print("intent.pending after %.3f s" % (time.monotonic() - t0))
            req = [r for r in rcv.delivered() if r["headers"][
                "toolgate-event"] == "intent.pending"][0]
            ev = json.loads(req["body"])
            self.assertTrue(harness.sink_verify(KEY, req))
            self.assertFalse(harness.sink_verify(b"another key", req))
            self.assertEqual(req["headers"]["toolgate-delivery"], ev["id"])
            self.assertRegex(ev["id"], r"^ev_[0-9a-f]{32}$")
            self.assertEqual(req["headers"]["content-type"],
                             "application/json")
            # the URL's path and query as configured
            self.assertEqual(req["path"], "/hook/path?token=s3cret")
            self.assertRegex(req["headers"]["toolgate-signature"],
                             r"^t=\d+,v1=[0-9a-f]{64}$")
            self.assertEqual(sorted(ev), ["at", "data", "id", "type"])
            d = ev["data"]
            self.assertEqual(d["id"], view["id"])
            self.assertEqual(d["agent"], "agent-payments")
            self.assertEqual(d["tool"], "payments.transfer")
            self.assertEqual(d["amount"], {"value": "5000.00",
                                           "currency": "USD"})
            self.assertEqual(d["reason"], "invoice 42")
            self.assertEqual(d["args"]["iban"], "[redacted]")
            self.assertEqual(d["args"]["to"], "acct-7")
            self.assertEqual(d["approvals_required"], 1)
            self.assertEqual(d["approver_roles"], ["finance-approver"])
            self.assertEqual(d["expires_at"], view["expires_at"])
            raw = b"".join(r["body"] for r in rcv.requests)
            self.assertNotIn(b"DE89370400440532013000", raw)

            st, _, _ = b.client("approver-alice").request(
                "POST", "/v1/approvals/%s/approve" % view["id"],
                body="{}", content_type="application/json")
            self.assertEqual(st, 200)
            rcv.wait(lambda r: r.events("intent.allowed"),
                     what="intent.allowed delivered")
            allowed = rcv.events("intent.allowed")[0]["data"]
            self.assertEqual(allowed["id"], view["id"])
            self.assertEqual(allowed["by"], "approver-alice")
            self.assertEqual(allowed["status"], "allowed")
            self.assertEqual([a["by"] for a in allowed["approvals"]],
                             ["approver-alice"])
            # auto-allowed and denied intents are not the approvers' news
            self.assertEqual(agent.submit("crm.lookup")[0], 200)
            self.assertEqual(agent.submit("email.send")[0], 403)
            wait_until(lambda: self.status(b)["hook"]["delivered"] >= 2,
                       what="delivered counted")
            self.assertEqual({e["type"] for e in rcv.events()} -
                             {"audit.checkpoint"},
                             {"intent.allowed", "intent.pending"})
            s = self.status(b)["hook"]
            self.assertEqual((s["queued"], s["given_up"], s["dropped"]),
                             (0, 0, 0))
            self.assertEqual(s["target"], "http://127.0.0.1:%d" % rcv.port)
            self.assertTrue(s["configured"])
            self.assertNotIn("s3cret", json.dumps(s))

    def test_https_slack_with_a_ca_file_and_the_system_store(self):
        k = harness.pki()
        with harness.Receiver(tls=True) as rcv, self.broker([
                "slack %s format=slack events=intent.* ca=%s" % (
                    rcv.url, os.path.join(k, "ca.pem")),
                # the test CA is not in the system store: never verified
                "nostore %s events=intent.pending" % rcv.url]) as b:
            view = self.pay(b.client("agent-payments"))
            rcv.wait(lambda r: r.delivered(), what="a Slack message")
            msg = json.loads(rcv.delivered()[0]["body"])
            self.assertEqual(sorted(msg), ["blocks", "text"])
            text = json.dumps(msg)
            self.assertIn("toolgatectl show %s" % view["id"], text)
            self.assertIn("toolgatectl approve %s" % view["id"], text)
            self.assertIn("5000.00 USD", text)
            self.assertIn("0/1", text)
            self.assertIn("invoice 42", text)
            self.assertIn("agent-payments", msg["text"])
            self.assertEqual(rcv.delivered()[0]["headers"][
                "toolgate-event"], "intent.pending")
            s = wait_until(lambda: (lambda st: st if st["nostore"][
                "failing"] >= 1 else None)(self.status(b)),
                what="the unverifiable sink failing")
            self.assertIn("certificate verify failed",
                          s["nostore"]["last_error"])
            self.assertEqual(s["nostore"]["delivered"], 0)
            self.assertEqual(len(rcv.delivered()), 1)


class Faults(EventsCase):

    def test_a_receiver_down_then_back_gets_everything_in_order(self):
        rcv = harness.Receiver()
        with self.broker(["siem %s events=audit.record" % rcv.url],
                         settings=["notify-timeout = 5"]) as b:
            agent = b.client("agent-payments")
            for _ in range(3):
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
            wait_until(lambda: self.status(b)["siem"]["failing"] >= 3,
                       what="the sink failing while down")
            # back-off: 1 s, doubling (the contract's cap, 10 min, is
            # pinned by test-outbox)
            b.wait_log(r"sink siem: delivery failed: .*; next attempt in "
                       r"1s$")
            b.wait_log(r"sink siem: delivery failed: .*; next attempt in "
                       r"2s$")
            b.wait_log(r"sink siem \(http://127\.0\.0\.1:%d\) keeps "
                       r"failing: 3 attempts in a row, the last: .*; next "
                       r"in 4s" % rcv.port)
            self.assertNotIn("s3cret", "\n".join(b.log_lines()))
            for _ in range(2):
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
            rcv.start()
            try:
                rcv.wait(lambda r: len(r.events()) >= 5, timeout=90,
                         what="every record once the receiver is back")
                # and now answering 500 for a while, then 200 again
                rcv.mode = "fail"
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
                rcv.wait(lambda r: any(q["mode"] == "fail"
                                       for q in r.requests), what="a 500")
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
                rcv.mode = "ok"
                rcv.wait(lambda r: len(r.events()) >= 7, timeout=90,
                         what="the records refused with 500")
                seqs = [e["data"]["seq"] for e in rcv.events()]
                # record 1 (the policy, applied before the sink existed)
                # is not streamed; then the 7 decisions
                self.assertEqual(seqs, list(range(2, 9)))
                ids = [r["headers"]["toolgate-delivery"]
                       for r in rcv.delivered()]
                self.assertEqual(len(ids), len(set(ids)))
                s = self.status(b)["siem"]
                self.assertEqual(s["queued"], 0)
                self.assertEqual(s["failing"], 0)
                self.assertGreaterEqual(s["failed"], 3)
                self.assertEqual(s["delivered"], 7)
            finally:
                rcv.stop()

    def test_kill9_between_commit_and_delivery_loses_nothing(self):
        rcv = harness.Receiver()
        with self.broker(["hook %s events=intent.pending" % rcv.url]) as b:
            view = self.pay(b.client("agent-payments"))
            self.assertEqual(view["status"], "pending")
            b.kill9()
            rcv.start()
            try:
                b.start()
                rcv.wait(lambda r: r.events("intent.pending"),
                         what="the event after the restart")
                self.assertEqual(rcv.events("intent.pending")[0]["data"][
                    "id"], view["id"])
            finally:
                rcv.stop()
            self.assertEqual(b.ctl_db("audit", "verify").returncode, 0)

    def test_failing_sinks_hold_no_decision_and_are_given_up(self):
        modes = ("hang", "fail", "reset", "redirect")
        rcvs = {m: harness.Receiver(mode=m).start() for m in modes}
        try:
            with self.broker(
                    ["%s %s events=audit.record" % (m, rcvs[m].url)
                     for m in modes],
                    settings=["notify-timeout = 15",
                              "notify-retry-for = 3"]) as b:
                agent = b.client("agent-payments")
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
                rcvs["hang"].wait(lambda r: r.hanging == 1,
                                  what="the hanging sink holding one")
                # Decisions go on while its attempt hangs: all of them
                # are answered before that one attempt times out.
                t0 = time.monotonic()
                for _ in range(20):
                    self.assertEqual(agent.submit("crm.lookup")[0], 200)
                took = time.monotonic() - t0
                self.assertEqual(len(rcvs["hang"].requests), 1)
                print("20 decisions in %.2f s while a sink hung" % took)
                wanted = 21   # the decisions' records
                st = wait_until(lambda: (lambda s: s if all(
                    s[m]["given_up"] >= wanted and s[m]["queued"] == 0
                    for m in modes) else None)(self.status(b)),
                    timeout=120, what="every event given up")
                errors = {m: st[m]["last_error"] for m in modes}
                self.assertIn("no answer within 15 s", errors["hang"])
                self.assertEqual(errors["fail"], "HTTP 500")
                self.assertIn("redirects are not followed",
                              errors["redirect"])
                self.assertTrue(errors["reset"])
                for m in modes:
                    self.assertEqual(st[m]["delivered"], 0)
                    self.assertGreaterEqual(st[m]["failed"], 1)
                    self.assertEqual(st[m]["given_up"], wanted)
                # never followed
                for r in rcvs["redirect"].requests:
                    self.assertEqual(r["path"], "/hook/path?token=s3cret")
                b.wait_log(r"sink hang: gave up \d+ events undelivered")
        finally:
            for r in rcvs.values():
                r.stop()

    def test_the_bound_drops_audit_records_first_never_a_pending(self):
        rcv = harness.Receiver()
        with self.broker(["hook %s events=intent.pending,audit.record" %
                          rcv.url], settings=["notify-queue-max = 100"]) \
                as b:
            agent = b.client("agent-payments")
            view = self.pay(agent)
            for _ in range(150):
                self.assertEqual(agent.submit("crm.lookup")[0], 200)
            st = wait_until(lambda: (lambda s: s if s["hook"]["dropped"] >
                                     0 and s["hook"]["queued"] <= 100
                                     else None)(self.status(b)),
                            timeout=60, what="the bound applied")
            # 152 queued: the pending one, 151 records
            st = wait_until(lambda: (lambda s: s if s["hook"]["dropped"] ==
                                     52 else None)(self.status(b)),
                            timeout=60, what="52 dropped")
            self.assertEqual(st["hook"]["queued"], 100)
            b.wait_log(r"over notify-queue-max 100: dropped")
            rcv.start()
            try:
                rcv.wait(lambda r: len(r.events()) >= 100, timeout=120,
                         what="the queue delivered")
                pend = rcv.events("intent.pending")
                self.assertEqual([e["data"]["id"] for e in pend],
                                 [view["id"]])
                seqs = [e["data"]["seq"] for e in
                        rcv.events("audit.record")]
                # the newest records survive, in order
                self.assertEqual(seqs, sorted(seqs))
                self.assertEqual(seqs, list(range(54, 153)))
                self.assertEqual(self.status(b)["hook"]["queued"], 0)
            finally:
                rcv.stop()


class Brokers(EventsCase):

    def test_two_brokers_on_one_database_deliver_each_event_once(self):
        with harness.Receiver() as rcv:
            conf = self.config(["hook %s events=audit.record" % rcv.url])
            a = harness.Broker(extra_args=("--config", conf))
            with a:
                # the same database (file, or PostgreSQL database)
                second = harness.Broker(extra_args=("--config", conf),
                                        db=a.db)
                with second:
                    ca = a.client("agent-payments")
                    cb = second.client("agent-payments")
                    for _ in range(10):
                        self.assertEqual(ca.submit("crm.lookup")[0], 200)
                        self.assertEqual(cb.submit("crm.lookup")[0], 200)
                    rcv.wait(lambda r: len(r.events()) >= 20,
                             what="every record delivered")
                    owner = self.status(a)["hook"]["lease"]["owner"]
                    self.assertTrue(owner.endswith(":%d" % a.port) or
                                    owner.endswith(":%d" % second.port))
                    holder, other = (a, second) if owner.endswith(
                        ":%d" % a.port) else (second, a)
                    holder.stop()   # lets its lease go
                    c = other.client("agent-payments")
                    self.assertEqual(c.submit("crm.lookup")[0], 200)
                    rcv.wait(lambda r: len(r.events()) >= 21,
                             what="the other broker taking over")
                    seqs = [e["data"]["seq"] for e in rcv.events()]
                    self.assertEqual(seqs, list(range(2, 23)))
                    self.assertTrue(self.status(other)["hook"]["lease"][
                        "owner"].endswith(":%d" % other.port))

    def test_the_queue_long_poll_hears_the_other_broker(self):
        conf = self.config([])
        with harness.Broker(extra_args=("--config", conf)) as a, \
                harness.Broker(extra_args=("--config", conf),
                               db=a.db) as other:
            st, _, page = a.client("approver-alice").get("/v1/approvals")
            self.assertEqual(st, 200)
            th, got = self.queue_poll(a, page["generation"])
            t0 = time.monotonic()
            view = self.pay(other.client("agent-payments"))
            self.assertEqual(view["status"], "pending")
            th.join(90)
            st, _, page = got["answer"]
            self.assertEqual(st, 200)
            # woken (PostgreSQL: the feed; SQLite: the file's change
            # counter), not timed out
            self.assertLess(got["at"] - t0, 30)
            self.assertEqual([i["id"] for i in page["items"]], [view["id"]])

    def test_an_offline_trip_reaches_the_sink_when_a_broker_runs(self):
        with harness.Receiver() as rcv, self.broker(
                ["hook %s events=killswitch.*" % rcv.url]) as b:
            b.stop()
            p = b.ctl_db("killswitch", "trip", "--agent", "agent-payments",
                         "--reason", "broker down, stop it")
            self.assertEqual(p.returncode, 0, p.stderr)
            b.start()
            rcv.wait(lambda r: r.events("killswitch.tripped"),
                     what="the offline trip's event")
            d = rcv.events("killswitch.tripped")[0]["data"]
            self.assertEqual((d["scope"], d["target"], d["reason"]),
                             ("agent", "agent-payments",
                              "broker down, stop it"))
            self.assertTrue(d["by"].startswith("cli:"))


class Streams(EventsCase):

    def test_the_siem_stream_carries_every_record(self):
        with harness.Receiver() as rcv, self.broker(
                ["siem %s events=audit.record" % rcv.url]) as b:
            agent = b.client("agent-payments")
            view = self.pay(agent)
            agent.submit("crm.lookup")
            olga = b.client("operator-olga")
            st, _, _ = olga.request(
                "POST", "/v1/killswitch", content_type="application/json",
                body=json.dumps({"scope": "agent",
                                 "target": "agent-payments",
                                 "reason": "test", "reject_pending": True}))
            self.assertEqual(st, 201)
            st, _, page = olga.request("GET", "/v1/audit?after=0&limit=100")
            self.assertEqual(st, 200)
            n = len(page["items"])
            # all but the policy, applied before the sink existed
            rcv.wait(lambda r: len(r.events()) >= n - 1,
                     what="every record")
            self.assertEqual([e["data"] for e in rcv.events()],
                             page["items"][1:])
            self.assertIn(view["id"], [e["data"]["intent_id"]
                                       for e in rcv.events()])

    def test_sighup_rereads_the_grant_keys_and_keeps_the_sinks(self):
        # grant-key lines in --config: SIGHUP reads the file again for
        # them, and the notify lines in it were taken at start
        grant = os.path.join(harness.pki(), "grant.key")
        with harness.Receiver() as rcv, self.broker(
                ["ops %s events=intent.*" % rcv.url],
                settings=["grant-key = %s" % grant],
                flags={"--grant-key": None}) as b:
            n = len(b.log_lines())
            b.hup()
            b.wait_log("SIGHUP: grant keys reloaded", n)
            self.assertTrue(b.running())
            st, _, p = b.client("agent-payments").submit(
                "payments.transfer", **harness.payment("5000.00"))
            self.assertEqual(st, 202, p)
            rcv.wait(lambda r: any(e["data"].get("id") == p["id"]
                                   for e in r.events("intent.pending")),
                     what="the pending intent's event after SIGHUP")

    def test_checkpoints_leave_the_host_on_a_timer(self):
        with harness.Receiver() as rcv, self.broker(
                ["chain %s events=audit.checkpoint" % rcv.url],
                settings=["checkpoint-every = 1"]) as b:
            rcv.wait(lambda r: len(r.events()) >= 1, what="a checkpoint")
            b.client("agent-payments").submit("crm.lookup")
            rcv.wait(lambda r: any(e["data"]["seq"] == 2
                                   for e in r.events()),
                     what="a checkpoint of the new head")
            st, _, page = b.client("operator-olga").request(
                "GET", "/v1/audit?after=0&limit=10")
            heads = {r["seq"]: r["hash"] for r in page["items"]}
            for e in rcv.events():
                self.assertEqual(e["type"], "audit.checkpoint")
                self.assertEqual(e["data"]["hash"], heads[e["data"]["seq"]])
            # the signed checkpoint off the host verifies the chain
            with open(os.path.join(b.dir, "cp.jws"), "w") as f:
                f.write(rcv.events()[-1]["data"]["checkpoint"])
            p = b.ctl("audit", "verify", "--checkpoint", f.name,
                      identity="operator-olga")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_the_receiver_example_verifies_real_deliveries(self):
        port = harness.free_port()
        conf = self.config(["example http://127.0.0.1:%d/ "
                            "events=intent.pending" % port])
        with open(conf) as f:
            key = re.search(r"notify-secret-file = (.*)", f.read()).group(1)
        rx = subprocess.Popen(["/usr/bin/python3", RECEIVER, str(port),
                               key], stdout=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in rx.stdout],
                         daemon=True).start()
        try:
            self.assertEqual(lines.get(timeout=30).strip(), "listening")
            with harness.Broker(extra_args=("--config", conf)) as b:
                view = self.pay(b.client("agent-payments"))
                ev = json.loads(lines.get(timeout=60))
                self.assertEqual(ev["type"], "intent.pending")
                self.assertEqual(ev["data"]["id"], view["id"])
                wait_until(lambda: self.status(b)["example"]["delivered"]
                           == 1, what="the example's 204 counted")
        finally:
            rx.kill()
            rx.wait()
        # verify() refuses what it must
        import importlib.util
        spec = importlib.util.spec_from_file_location("receiver", RECEIVER)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        body = b'{"id":"ev_1"}'
        import hashlib
        import hmac
        t = int(time.time())
        good = "t=%d,v1=%s" % (t, hmac.new(KEY, b"%d." % t + body,
                                           hashlib.sha256).hexdigest())
        self.assertTrue(mod.verify(KEY, good, body))
        self.assertFalse(mod.verify(KEY, good, body + b" "))
        self.assertFalse(mod.verify(KEY + b"x", good, body))
        self.assertFalse(mod.verify(KEY, good, body, now=t + 301))
        self.assertFalse(mod.verify(KEY, None, body))
        self.assertFalse(mod.verify(KEY, "v1=ab,t=1", body))


class Config(EventsCase):

    def start_fails(self, notify, settings=(), **kw):
        conf = self.config(notify, settings, **kw)
        b = harness.Broker(extra_args=("--config", conf))
        try:
            p = b.start_fails()
        finally:
            b._remove()
        return conf, p

    def test_bad_notify_lines_stop_the_daemon_naming_the_line(self):
        cases = [
            (["bad http://[::1/x"], "not a URL"),
            (["bad //127.0.0.1/x"], "http:// or https://"),
            (["bad ftp://127.0.0.1/x"], "http:// or https://"),
            (["bad http://user:pw@127.0.0.1/x"], "user name"),
            (["bad https://127.0.0.1/x ca=/nonexistent/ca.pem"],
             "ca=/nonexistent/ca.pem"),
            (["bad https://127.0.0.1/x ca=%s" % harness.EXAMPLE_POLICY],
             "not a PEM CA certificate"),
            (["bad http://127.0.0.1/x ca=%s" % os.path.join(
                harness.pki(), "ca.pem")], "ca= is for https"),
            (["Bad! http://127.0.0.1/x"], "the name"),
            (["bad http://127.0.0.1/x events=intents.*"],
             "selects no event type"),
            (["bad http://127.0.0.1/x events=intent"], "selects no event"),
            (["bad http://127.0.0.1/x format=xml"], "format must be"),
            (["bad http://127.0.0.1/x colour=red"], "unknown or repeated"),
            (["bad"], "notify needs NAME URL"),
            (["a http://127.0.0.1/x", "a http://127.0.0.1/y"],
             "named twice"),
        ]
        for notify, want in cases:
            with self.subTest(notify=notify):
                conf, p = self.start_fails(notify)
                self.assertEqual(p.returncode, 2, p.stderr)
                line = 1 + len(notify)   # after notify-secret-file
                self.assertIn("%s:%d:" % (conf, line), p.stderr)
                self.assertIn(want, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1,
                                 p.stderr)

    def test_the_hmac_key_file_must_be_private_and_present(self):
        conf, p = self.start_fails(["a http://127.0.0.1/x"],
                                   secret_mode=0o640)
        self.assertEqual(p.returncode, 2)
        self.assertIn("%s:1:" % conf, p.stderr)
        self.assertIn("accessible by group or others (mode 0640)", p.stderr)
        conf, p = self.start_fails(["a http://127.0.0.1/x"], secret=b"\n")
        self.assertEqual(p.returncode, 2)
        self.assertIn("is empty", p.stderr)
        # no key at all
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "c.conf")
        with open(conf, "w") as f:
            f.write("notify = a http://127.0.0.1/x\n")
        b = harness.Broker(extra_args=("--config", conf))
        p = b.start_fails()
        b._remove()
        self.assertEqual(p.returncode, 2)
        self.assertIn("%s:1: notify a: no HMAC key" % conf, p.stderr)
        for bad in ("notify-retry-for = 0", "notify-timeout = 301",
                    "notify-queue-max = 5", "checkpoint-every = x"):
            with self.subTest(setting=bad):
                conf, p = self.start_fails(["a http://127.0.0.1/x"],
                                           settings=[bad])
                self.assertEqual(p.returncode, 2)
                self.assertIn(bad.split(" ")[0], p.stderr)


class Operators(EventsCase):

    def test_status_api_cli_and_metrics_agree(self):
        with harness.Receiver() as rcv, self.broker(
                ["hook %s events=intent.pending" % rcv.url]) as b:
            self.pay(b.client("agent-payments"))
            rcv.wait(lambda r: r.delivered(), what="a delivery")
            wait_until(lambda: self.status(b)["hook"]["delivered"] == 1,
                       what="delivered counted")
            st, _, doc = b.client("approver-alice").get("/v1/events/status")
            self.assertEqual(st, 403)
            st, _, doc = b.client("operator-olga").get("/v1/events/status")
            self.assertEqual(st, 200)
            self.assertEqual(doc["settings"], {
                "retry_for": 86400, "timeout": 10, "queue_max": 100000,
                "checkpoint_every": 300})
            self.assertEqual(doc["sinks"][0]["format"], "json")
            offline = self.status(b, offline=True)["hook"]
            self.assertEqual(offline["delivered"], 1)
            self.assertEqual(offline["events"], "intent.pending")
            p = b.ctl("events", "status", identity="operator-olga")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"(?m)^SINK +TARGET +QUEUED +"
                             r"DELIVERED +FAILED +GIVEN UP +DROPPED +"
                             r"LAST ERROR$")
            self.assertRegex(p.stdout, r"(?m)^hook +http://127\.0\.0\.1:"
                             r"%d +0 +1 +0 +0 +0 +-$" % rcv.port)
            st, _, text = b.client("operator-olga").get("/metrics")
            self.assertIn('toolgate_events_delivered_total{sink="hook"} 1',
                          text)
            self.assertIn('toolgate_events_queued{sink="hook"} 0', text)
            self.assertIn('toolgate_events_failing{sink="hook"} 0', text)
            p = b.ctl("events", "status", "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn("events status", p.stdout)


class Watch(EventsCase):

    def test_the_queue_long_poll(self):
        b = harness.Broker(extra_args=("--config", self.config(
            [], ["max-waits-per-identity = 1"])))
        with b:
            alice = b.client("approver-alice")
            st, _, page = alice.get("/v1/approvals")
            self.assertEqual(st, 200)
            gen = page["generation"]
            # unchanged: held the whole wait, same generation
            t0 = time.monotonic()
            st, _, page = alice.get("/v1/approvals?wait=1&since=%d" % gen)
            self.assertEqual((st, page["generation"]), (200, gen))
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            # a stale generation answers at once
            st, _, page = alice.get("/v1/approvals?wait=30&since=%d" %
                                    (gen + 7))
            self.assertEqual((st, page["generation"]), (200, gen))
            # the wait is for the first page of pending intents only
            st, _, err = alice.get("/v1/approvals?status=allowed&wait=5")
            self.assertEqual(st, 400)
            st, _, err = alice.get("/v1/approvals?wait=61")
            self.assertEqual(st, 400)
            # held, then woken by a new pending intent
            th, got = self.queue_poll(b, gen)
            # one per identity: a second is refused
            st, h, err = alice.get("/v1/approvals?wait=5&since=%d" % gen)
            self.assertEqual(st, 429)
            self.assertEqual(h.get("retry-after"), "1")
            t0 = time.monotonic()
            view = self.pay(b.client("agent-payments"))
            th.join(90)
            st, _, page = got["answer"]
            self.assertEqual(st, 200)
            self.assertLess(got["at"] - t0, 30)   # woken, not timed out
            self.assertEqual([i["id"] for i in page["items"]], [view["id"]])
            self.assertGreater(page["generation"], gen)
            # an offline change (another process) wakes it too
            th, got = self.queue_poll(b, page["generation"])
            t0 = time.monotonic()
            p = b.ctl_db("killswitch", "trip", "--tool", "payments.*",
                         "--reason", "stop", "--reject-pending")
            self.assertEqual(p.returncode, 0, p.stderr)
            th.join(90)
            st, _, page = got["answer"]
            self.assertLess(got["at"] - t0, 30)
            self.assertEqual(page["items"], [])

    def test_pending_watch_redraws_in_a_terminal(self):
        with harness.Broker() as b:
            k = b.pki
            master, slave = os.openpty()

            def ctty():
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            argv = [harness.CTL, "--url", b.url, "--ca",
                    os.path.join(k, "ca.pem"), "--cert",
                    os.path.join(k, "approver-alice.pem"), "--key",
                    os.path.join(k, "approver-alice.key"), "pending",
                    "--watch"]
            p = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                 stderr=slave, start_new_session=True,
                                 preexec_fn=ctty)
            os.close(slave)
            out = bytearray()

            def read_until(needle, timeout=30):
                deadline = time.monotonic() + timeout
                while needle not in out:
                    left = deadline - time.monotonic()
                    self.assertGreater(left, 0, "no %r on the terminal: %r"
                                       % (needle, bytes(out)))
                    r, _, _ = select.select([master], [], [], left)
                    if r:
                        try:
                            out.extend(os.read(master, 65536))
                        except OSError:
                            break
            try:
                read_until(b"no pending intents")
                # the watch is a held long-poll, not a poll
                wait_until(lambda: re.search(
                    r"toolgate_waits_held [1-9]",
                    b.client("operator-olga").get("/metrics")[2]),
                    what="the watch's long-poll held")
                del out[:]
                t0 = time.monotonic()
                view = self.pay(b.client("agent-payments"))
                read_until(view["id"].encode())
                took = time.monotonic() - t0
                print("--watch redrew after %.3f s" % took)
                # woken by the broker: far sooner than the watch's 50 s
                self.assertLess(took, 25)
                self.assertIn(b"\x1b[H\x1b[2J", out)
                self.assertIn(b"1 pending at", out)
                self.assertIn(b"5000.00 USD", out)
                os.write(master, b"\x03")     # Ctrl-C
                self.assertEqual(p.wait(30), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                os.close(master)


if __name__ == "__main__":
    unittest.main(verbosity=2)
