"""
test_metrics: /metrics per CONTRACT §12 (issue 16 point 14), against a
real toolgated.  Gauges of pending intents (and of those past half their
approval TTL, and the oldest one's age) and of engaged kill switches come
from the database, so a change made offline with toolgatectl --db shows
too; counters of approvals, rejections, expiries, redemptions, refused
TLS handshakes and 429s move with what this broker did;
toolgate_build_info names the version; and every series is documented
in proto/metrics.md.
"""

import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TTL = 20


def series(text):
    """{(name, labels): value} of a Prometheus text answer."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        assert m, line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


wait_until = harness.wait_until


class Metrics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="test_metrics.")
        conf = os.path.join(cls.tmp, "toolgated.conf")
        with open(conf, "w") as f:
            f.write("max-waits-per-identity = 1\n")
        policy = harness.load_example_policy()
        policy["roles"]["payments-agent"]["rules"][0]["approval_ttl"] = TTL
        cls.broker = harness.Broker(policy=policy,
                                    extra_args=("--config", conf))
        cls.broker.__enter__()
        cls.scraper = cls.broker.client("agent-support")

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, True)

    def scrape(self):
        st, h, text = self.scraper.get("/metrics")
        self.assertEqual(st, 200, text)
        return series(text)

    def value(self, name, labels=""):
        return self.scrape()[(name, labels)]

    def pending_payment(self, pay):
        st, _, body = pay.submit("payments.transfer",
                                 **harness.payment("5000.00"))
        self.assertEqual((st, body["status"]), (202, "pending"), body)
        return body["id"]

    def post(self, client, path, doc):
        return client.request("POST", path, body=json.dumps(doc),
                              content_type="application/json")

    def test_documented_and_build_info(self):
        with open(os.path.join(harness.ROOT, "proto", "metrics.md")) as f:
            doc = f.read()
        st, _, text = self.scraper.get("/metrics")
        names = re.findall(r"(?m)^# TYPE (\S+) ", text)
        self.assertGreater(len(names), 15)
        for name in names:
            self.assertIn("`%s`" % name, doc, "%s is not in proto/metrics.md"
                          % name)
        with open(os.path.join(harness.ROOT, "meson.build")) as f:
            version = re.search(r"version: '([^']+)'", f.read()).group(1)
        self.assertEqual(self.value("toolgate_build_info",
                                    '{version="%s"}' % version), 1)

    def test_alert_examples_use_exported_series(self):
        # the alert rules of proto/metrics.md name series this broker
        # exports (with their labels), so that they can fire
        with open(os.path.join(harness.ROOT, "proto", "metrics.md")) as f:
            doc = f.read()
        block = re.search(r"(?s)```yaml\n(.*?)```", doc).group(1)
        exprs = re.findall(r"(?m)^\s*expr: (.+)$", block)
        self.assertGreaterEqual(len(exprs), 2)
        for want in ("toolgate_killswitches_engaged",
                     "toolgate_pending_past_half_ttl"):
            self.assertTrue(any(want in e for e in exprs), want)
        _, _, text = self.scraper.get("/metrics")
        exported = set(re.findall(r"(?m)^# TYPE (\S+) ", text))
        for e in exprs:
            for name, labels in re.findall(r"(toolgate_[a-z_]+)(\{[^}]*\})?",
                                           e):
                self.assertIn(name, exported, e)
                for k, v in re.findall(r'(\w+)="([^"]*)"', labels):
                    self.assertIn('%s{%s="%s"}' % (name, k, v), text, e)

    def test_gauges_and_counters_follow_the_lifecycle(self):
        pay = self.broker.client("agent-payments")
        alice = self.broker.client("approver-alice")
        tool = self.broker.client("tool-payments")
        m0 = self.scrape()
        self.assertEqual(m0[("toolgate_pending_intents", "")], 0)
        self.assertEqual(m0[("toolgate_pending_oldest_age_seconds", "")], 0)
        self.assertEqual(m0[("toolgate_pending_past_half_ttl", "")], 0)

        a = self.pending_payment(pay)
        b = self.pending_payment(pay)
        c = self.pending_payment(pay)
        self.assertEqual(self.value("toolgate_pending_intents"), 3)
        st, _, v = self.post(alice, "/v1/approvals/%s/approve" % b, {})
        self.assertEqual((st, v["status"]), (200, "allowed"), v)
        st, _, v = self.post(alice, "/v1/approvals/%s/reject" % c,
                             {"reason": "no"})
        self.assertEqual((st, v["status"]), (200, "rejected"), v)
        st, _, v = pay.get("/v1/intents/" + b)
        st, _, r = self.post(tool, "/v1/grants/redeem", {"grant": v["grant"]})
        self.assertEqual(st, 200, r)
        m1 = self.scrape()
        self.assertEqual(m1[("toolgate_pending_intents", "")], 1)
        for name in ("toolgate_approvals_total", "toolgate_rejections_total",
                     "toolgate_redemptions_total"):
            self.assertEqual(m1[(name, "")] - m0[(name, "")], 1, name)

        # the long-poll limit (1 here) answers 429 and counts it
        held = threading.Thread(target=lambda: self.broker.client(
            "agent-payments").get("/v1/intents/%s?wait=5" % a))
        held.start()
        wait_until(lambda: self.value("toolgate_waits_held") == 1,
                   "the long-poll to be held")
        st, _, err = pay.get("/v1/intents/%s?wait=5" % a)
        self.assertEqual((st, err["error"]), (429, "rate_limited"))
        self.assertEqual(self.value("toolgate_rate_limited_total",
                                    '{limit="waits"}') -
                         m0[("toolgate_rate_limited_total",
                             '{limit="waits"}')], 1)
        held.join(30)

        # half-way through its TTL, a is counted; then it expires
        got = wait_until(lambda: (lambda m: m if m[(
            "toolgate_pending_past_half_ttl", "")] == 1 else None)(
            self.scrape()), "a pending intent past half its TTL",
            timeout=TTL + 30)
        self.assertGreaterEqual(
            got[("toolgate_pending_oldest_age_seconds", "")], TTL // 2)
        self.assertEqual(got[("toolgate_pending_intents", "")], 1)
        wait_until(lambda: self.value("toolgate_expiries_total") -
                   m0[("toolgate_expiries_total", "")] == 1,
                   "the expiry", timeout=TTL + 30)
        m2 = self.scrape()
        self.assertEqual(m2[("toolgate_pending_intents", "")], 0)
        self.assertEqual(m2[("toolgate_pending_past_half_ttl", "")], 0)

        # an offline change shows in the database's gauges at once
        self.pending_payment(pay)
        self.assertEqual(self.value("toolgate_pending_intents"), 1)
        p = self.broker.ctl_db("killswitch", "trip", "--tool", "payments.*",
                               "--reason", "drill", "--reject-pending")
        self.assertEqual(p.returncode, 0, p.stderr)
        m3 = self.scrape()
        self.assertEqual(m3[("toolgate_killswitches_engaged", "")], 1)
        self.assertEqual(m3[("toolgate_pending_intents", "")], 0)
        # ... while the counters are this broker's own
        self.assertEqual(m3[("toolgate_rejections_total", "")],
                         m2[("toolgate_rejections_total", "")])
        olga = self.broker.client("operator-olga")
        st, _, ks = olga.get("/v1/killswitch")
        for sw in ks["switches"]:
            self.post(olga, "/v1/killswitch/%d/reset" % sw["id"],
                      {"reason": "drill over"})
        self.assertEqual(self.value("toolgate_killswitches_engaged"), 0)

    def test_refused_handshakes_are_counted(self):
        before = self.value("toolgate_tls_handshake_failures_total",
                            '{cause="refused"}')
        ctx = ssl.create_default_context(cafile=os.path.join(
            self.broker.pki, "ca.pem"))
        ctx.check_hostname = False
        for _ in range(2):          # no client certificate
            with socket.create_connection(("127.0.0.1", self.broker.port),
                                          timeout=30) as s:
                try:
                    with ctx.wrap_socket(s) as t:
                        t.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                        t.recv(1)
                except (ssl.SSLError, OSError):
                    pass
        wait_until(lambda: self.value(
            "toolgate_tls_handshake_failures_total", '{cause="refused"}') -
            before >= 2, "two refused handshakes counted")


class RateLimit(unittest.TestCase):

    def test_rate_limited_requests_are_counted(self):
        tmp = tempfile.mkdtemp(prefix="test_metrics.")
        try:
            conf = os.path.join(tmp, "toolgated.conf")
            with open(conf, "w") as f:
                f.write("rate-limit = 1\nrate-burst = 1\n")
            with harness.Broker(extra_args=("--config", conf)) as b:
                pay = b.client("agent-payments")
                wait_until(lambda: pay.get("/healthz")[0] == 429,
                           "a 429 from the rate limit")
                sup = b.client("agent-support")
                st, _, text = sup.get("/metrics")
                self.assertGreaterEqual(series(text)[(
                    "toolgate_rate_limited_total", '{limit="rate"}')], 1)
        finally:
            shutil.rmtree(tmp, True)


if __name__ == "__main__":
    unittest.main()
