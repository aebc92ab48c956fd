"""
test_grant_rotation: grant keys rotate without an outage (issue 16 point
4, CONTRACT §12).  --grant-key may be given more than once or as
grant-key lines of --config: the first signs, every one is in /v1/jwks
(cacheable: Cache-Control max-age) and verifies at redemption, and
SIGHUP reloads them — validated whole, else the old ones stay.  The
README's procedure end to end: add the new key second, publish, make it
first (a grant signed by the old key still redeems), drop the old one
(its grants no longer verify).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def new_key(d, name, mode=0o600):
    path = os.path.join(d, name)
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", path], check=True,
                   capture_output=True)
    os.chmod(path, mode)
    return path


def kid_of(token):
    return harness.jws_parts(token)[0]["kid"]


class Rotation(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_grant_rotation.")
        self.old = new_key(self.tmp, "old.key")
        self.new = new_key(self.tmp, "new.key")
        self.conf = os.path.join(self.tmp, "toolgated.conf")
        self.write_conf(self.old)
        self.broker = harness.Broker(flags={"--grant-key": None},
                                     extra_args=("--config", self.conf))
        self.broker.__enter__()
        self.pay = self.broker.client("agent-payments")
        self.tool = self.broker.client("tool-payments")

    def tearDown(self):
        self.broker.__exit__(None, None, None)
        shutil.rmtree(self.tmp, True)

    def write_conf(self, *keys):
        with open(self.conf, "w") as f:
            f.write("# rotation test\n")
            for k in keys:
                f.write("grant-key = %s\n" % k)

    def reload(self, ok=True):
        n = len(self.broker.log_lines())
        self.broker.hup()
        return self.broker.wait_log("SIGHUP: grant keys %s" %
                                    ("reloaded" if ok else "not reloaded"),
                                    n)

    def jwks(self):
        st, h, body = self.tool.get("/v1/jwks")
        self.assertEqual(st, 200, body)
        return h, body

    def kids(self):
        return [k["kid"] for k in self.jwks()[1]["keys"]]

    def allowed(self):
        """An allowed payments.transfer intent: (id, grant)."""
        st, _, body = self.pay.submit("payments.transfer",
                                      **harness.payment("10.00"))
        self.assertEqual((st, body["status"]), (200, "allowed"), body)
        return body["id"], body["grant"]

    def fresh_grant(self, iid):
        st, _, body = self.pay.get("/v1/intents/" + iid)
        self.assertEqual(st, 200, body)
        return body["grant"]

    def redeem(self, grant):
        return self.tool.request("POST", "/v1/grants/redeem",
                                 body=json.dumps({"grant": grant}),
                                 content_type="application/json")

    def test_jwks_is_cacheable(self):
        h, body = self.jwks()
        self.assertEqual(h["cache-control"], "public, max-age=300")
        harness.schema("jwks.schema.json").validate(body)
        # everything else stays uncacheable
        st, h, _ = self.pay.get("/healthz")
        self.assertEqual(h["cache-control"], "no-store")

    def test_rotation_procedure_end_to_end(self):
        [k_old] = self.kids()
        i1, g1 = self.allowed()
        self.assertEqual(kid_of(g1), k_old)

        # 1. add the new key second: the old one still signs
        self.write_conf(self.old, self.new)
        line = self.reload()
        self.assertIn("signing with kid %s" % k_old, line)
        kids = self.kids()
        self.assertEqual(len(kids), 2)
        self.assertEqual(kids[0], k_old)
        k_new = kids[1]
        self.assertIn("also verifying kid %s" % k_new, line)
        i2, g2 = self.allowed()
        self.assertEqual(kid_of(g2), k_old)

        # 2. (publish: tools refetch the JWKS within its max-age)
        # 3. make it first: it signs; grants of the old key still redeem
        self.write_conf(self.new, self.old)
        self.reload()
        self.assertEqual(self.kids(), [k_new, k_old])
        i3, g3 = self.allowed()
        self.assertEqual(kid_of(g3), k_new)
        self.assertEqual(kid_of(self.fresh_grant(i2)), k_new)
        harness.verify_grant(g1, self.jwks()[1])
        harness.verify_grant(g3, self.jwks()[1])
        st, _, body = self.redeem(g1)
        self.assertEqual((st, body.get("status")), (200, "redeemed"), body)

        # 4. drop the old key (after the longest grant lifetime): its
        # grants no longer verify, though the intent itself is fine
        self.write_conf(self.new)
        self.reload()
        self.assertEqual(self.kids(), [k_new])
        st, _, body = self.redeem(g2)
        self.assertEqual((st, body["error"]), (401, "invalid_grant"), body)
        self.assertEqual(body["message"],
                         "the grant was not issued by this broker")
        st, _, body = self.redeem(self.fresh_grant(i2))
        self.assertEqual(st, 200, body)
        st, _, body = self.redeem(g3)
        self.assertEqual(st, 200, body)

    def test_a_bad_reload_keeps_the_old_keys(self):
        kids = self.kids()
        loose = new_key(self.tmp, "loose.key", 0o644)
        p384 = os.path.join(self.tmp, "p384.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-384", "-out", p384],
                       check=True, capture_output=True)
        os.chmod(p384, 0o600)
        for conf, why in (
                ((self.new, os.path.join(self.tmp, "absent.key")),
                 "absent.key: cannot read key: No such file"),
                ((self.new, loose), "chmod 600"),
                ((self.new, p384), "P-256"),
                ((self.new, self.new), "listed twice"),
                ((), "no grant-key line")):
            with self.subTest(why=why):
                self.write_conf(*conf)
                line = self.reload(ok=False)
                self.assertIn("keeping the old ones", line)
                self.assertIn(why, line)
                self.assertEqual(self.kids(), kids)
                _, g = self.allowed()
                self.assertEqual(kid_of(g), kids[0])
        # a config that no longer parses is refused whole
        with open(self.conf, "w") as f:
            f.write("grant-key = %s\nno-such-setting = 1\n" % self.new)
        line = self.reload(ok=False)
        self.assertIn("unknown setting no-such-setting", line)
        self.assertEqual(self.kids(), kids)


class FlagsTwice(unittest.TestCase):

    def test_grant_key_twice_on_the_command_line(self):
        tmp = tempfile.mkdtemp(prefix="test_grant_rotation.")
        try:
            second = new_key(tmp, "second.key")
            with harness.Broker(extra_args=("--grant-key", second)) as b:
                c = b.client("agent-payments")
                st, h, jwks = c.get("/v1/jwks")
                self.assertEqual(len(jwks["keys"]), 2)
                first = jwks["keys"][0]["kid"]
                st, _, body = c.submit("payments.transfer",
                                       **harness.payment("10.00"))
                self.assertEqual(kid_of(body["grant"]), first)
                # SIGHUP reloads the same files: a replaced second key
                os.unlink(second)
                new_key(tmp, "second.key")
                n = len(b.log_lines())
                b.hup()
                b.wait_log("SIGHUP: grant keys reloaded", n)
                st, _, jwks2 = c.get("/v1/jwks")
                self.assertEqual(jwks2["keys"][0]["kid"], first)
                self.assertNotEqual(jwks2["keys"][1]["kid"],
                                    jwks["keys"][1]["kid"])
        finally:
            shutil.rmtree(tmp, True)

    def test_more_than_eight_is_refused(self):
        tmp = tempfile.mkdtemp(prefix="test_grant_rotation.")
        try:
            args = []
            for i in range(8):
                args += ["--grant-key", new_key(tmp, "k%d.key" % i)]
            b = harness.Broker(extra_args=args)
            try:
                p = b.start_fails()
            finally:
                shutil.rmtree(b.dir, True)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("at most 8 grant keys", p.stderr)
        finally:
            shutil.rmtree(tmp, True)


if __name__ == "__main__":
    unittest.main()
