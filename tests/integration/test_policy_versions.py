"""
test_policy_versions: the policy round-trips (issue 16 point 11).
`policy show` writes the policy as applied, alone on stdout (its version
on stderr), so `policy show > p.json && policy apply p.json` works and —
the very bytes in force — makes no new version, which apply says on
stdout, in --json and in the API's answer (no audit record either).
`policy history` lists every version with who applied it, when and its
sha256, as an aligned table or --json, online (GET /v1/policy/history,
operators only) and offline (--db).
"""

import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SHA = re.compile(r"^[0-9a-f]{64}$")


class Versions(harness.ExitAsserts, unittest.TestCase):
    def setUp(self):
        self.broker = harness.Broker()
        self.broker.__enter__()
        self.tmp = tempfile.mkdtemp(prefix="test_policy_versions.")
        self.olga = self.broker.client("operator-olga")

    def tearDown(self):
        self.broker.__exit__(None, None, None)
        shutil.rmtree(self.tmp, True)

    def ctl(self, *args):
        return self.broker.ctl(*args, identity="operator-olga")

    def audit_count(self):
        return self.broker.query("SELECT count(*) FROM audit WHERE "
                                 "event = 'policy.apply'")[0][0]

    def test_show_then_apply_round_trips_without_a_new_version(self):
        with open(harness.EXAMPLE_POLICY, "rb") as f:
            raw = f.read()
        sha = hashlib.sha256(raw).hexdigest()
        for offline in (False, True):
            with self.subTest(offline=offline):
                # offline, applying needs the audit key (it widens)
                run = (functools.partial(self.broker.ctl_db, audit_key=True)
                       if offline else self.ctl)
                p = run("policy", "show")
                self.assertExit(p, 0)
                # the file's bytes exactly, and the version on stderr
                self.assertEqual(p.stdout.encode(), raw)
                self.assertEqual(p.stderr, "policy version 1 (sha256 %s)\n"
                                 % sha)
                path = os.path.join(self.tmp, "p.json")
                with open(path, "w") as f:
                    f.write(p.stdout)
                before = self.audit_count()
                p = run("policy", "apply", path)
                self.assertExit(p, 0)
                self.assertEqual(p.stdout, "policy version 1 unchanged: the "
                                 "file is the policy in force, byte for byte "
                                 "(sha256 %s); no new version\n" % sha)
                p = run("--json", "policy", "apply", path)
                self.assertExit(p, 0)
                self.assertEqual(json.loads(p.stdout), {
                    "version": 1, "sha256": sha, "unchanged": True})
                self.assertEqual(self.audit_count(), before)

    def test_api_says_unchanged_and_shows_the_text(self):
        with open(harness.EXAMPLE_POLICY, "rb") as f:
            raw = f.read()
        st, _, body = self.olga.request("PUT", "/v1/policy", body=raw,
                                        content_type="application/json")
        self.assertEqual((st, body["version"], body["unchanged"]),
                         (200, 1, True), body)
        # one byte more is another policy
        st, _, body = self.olga.request("PUT", "/v1/policy", body=raw + b" ",
                                        content_type="application/json")
        self.assertEqual((st, body["version"], body["unchanged"]),
                         (200, 2, False), body)
        st, _, got = self.olga.get("/v1/policy")
        self.assertEqual((st, got["version"]), (200, 2))
        self.assertEqual(got["text"].encode(), raw + b" ")
        self.assertEqual(got["sha256"],
                         hashlib.sha256(raw + b" ").hexdigest())
        # going back to version 1's bytes is a change: version 3
        st, _, body = self.olga.request("PUT", "/v1/policy", body=raw,
                                        content_type="application/json")
        self.assertEqual((body["version"], body["unchanged"]), (3, False))

    def test_history_online_and_offline(self):
        policy = harness.load_example_policy()
        path = os.path.join(self.tmp, "p2.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        self.assertExit(self.ctl("policy", "apply", path), 0)
        self.assertExit(self.broker.ctl_db("policy", "apply",
                                           harness.EXAMPLE_POLICY,
                                           audit_key=True), 0)
        with open(path, "rb") as f:
            sha2 = hashlib.sha256(f.read()).hexdigest()

        st, _, page = self.olga.get("/v1/policy/history")
        self.assertEqual(st, 200, page)
        items = page["items"]
        self.assertEqual([v["version"] for v in items], [3, 2, 1])
        self.assertIsNone(page["next_before"])
        self.assertEqual(items[1]["applied_by"], "operator-olga")
        self.assertEqual(items[1]["sha256"], sha2)
        self.assertTrue(items[0]["applied_by"].startswith("cli:"))
        for v in items:
            self.assertRegex(v["sha256"], SHA)
            self.assertRegex(v["applied_at"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # pages
        st, _, page = self.olga.get("/v1/policy/history?limit=2")
        self.assertEqual(([v["version"] for v in page["items"]],
                          page["next_before"]), ([3, 2], 2))
        st, _, page = self.olga.get("/v1/policy/history?limit=2&before=2")
        self.assertEqual(([v["version"] for v in page["items"]],
                          page["next_before"]), ([1], None))
        st, _, err = self.olga.get("/v1/policy/history?limit=0")
        self.assertEqual((st, err["error"]), (400, "bad_request"))
        # operators only
        st, _, err = self.broker.client("approver-alice").get(
            "/v1/policy/history")
        self.assertEqual((st, err["error"]), (403, "forbidden"))

        for p in (self.ctl("policy", "history"),
                  self.broker.ctl_db("policy", "history")):
            self.assertExit(p, 0)
            lines = p.stdout.splitlines()
            self.assertEqual(lines[0].split(),
                             ["VERSION", "APPLIED", "AT", "APPLIED", "BY",
                              "SHA256"])
            self.assertEqual([ln.split()[0] for ln in lines[1:]],
                             ["3", "2", "1"])
            self.assertIn(sha2, lines[2])
            self.assertIn("operator-olga", lines[2])
            # aligned: every column starts where its heading does
            col = lines[0].index("SHA256")
            for ln in lines[1:]:
                self.assertRegex(ln[col:], r"^[0-9a-f]{64}$")
        for p in (self.ctl("--json", "policy", "history", "--limit", "1"),
                  self.broker.ctl_db("--json", "policy", "history",
                                     "--limit", "1")):
            self.assertExit(p, 0)
            page = json.loads(p.stdout)
            self.assertEqual([v["version"] for v in page["items"]], [3])
            self.assertEqual(page["next_before"], 3)


if __name__ == "__main__":
    unittest.main()
