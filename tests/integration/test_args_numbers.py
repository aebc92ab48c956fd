"""
test_args_numbers: numbers in args keep their value end to end (CONTRACT
§3, §10; proto/audit.md "Numbers in args"), through a real toolgated.

Intents are signed over hand-written payload bytes, so the numbers reach
the broker exactly as typed.  Kept numbers come back normalized to RFC 8785
form, byte for byte, in the decision, the GET view, the grant, the stored
intent and the audit record; numbers that form cannot keep are refused
with 400 bad_request naming their JSON Pointer into args, storing nothing
and burning no jti.  Checked on the raw bytes of every answer: Python's
own json would read 0.10000000000000001 as 0.1 and hide the difference.
"""

import json
import os
import secrets
import sys
import time
import unittest

from jsonschema import Draft202012Validator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import verify_audit  # noqa: E402

with open(os.path.join(harness.ROOT, "proto", "error.schema.json")) as f:
    ERROR = Draft202012Validator(json.load(f))

# As typed, and as RFC 8785 writes the same values (members sorted).
KEPT = ('{"amount": 0.1, "e": 1e3, "neg": -0, "zeros": 2.50, "big": 1E+21,'
        ' "tiny": 5e-324, "safe": 9007199254740992, "frac": 12345678901234.56,'
        ' "max": 1.7976931348623157e308, "small": 1e-7, "list": [1.0, -1.5e-3,'
        ' 100]}')
KEPT_JCS = ('{"amount":0.1,"big":1e+21,"e":1000,"frac":12345678901234.56,'
            '"list":[1,-0.0015,100],"max":1.7976931348623157e+308,"neg":0,'
            '"safe":9007199254740992,"small":1e-7,"tiny":5e-324,"zeros":2.5}')

REFUSED = [
    ('{"path": 12345678901234567.89}', "/path",
     "has more than 17 significant digits"),
    ('{"a": {"b": [1, 1e-400]}}', "/a/b/1", "is too small for a double"),
    ('{"n": 9007199254740993}', "/n", "is an integer above 2^53"),
    ('{"x/y": 1e400}', "/x~1y", "is beyond the range of a double"),
    ('{"r": 0.10000000000000001}', "/r", "is not kept exactly"),
    ('{"m": 1e20}', "/m", "is an integer above 2^53"),
    ('{"~": [4.9e-324]}', "/~0/0", "is not kept exactly"),
]


def payload(iss, tool, args_text, jti=None):
    now = int(time.time())
    return ('{"iss":"%s","aud":"toolgate","jti":"%s","iat":%d,"exp":%d,'
            '"tool":"%s","args":%s}' % (iss, jti or secrets.token_hex(8), now,
                                        now + 60, tool, args_text)).encode()


def args_text_in(raw):
    """The exact bytes of the first "args" member's object in raw JSON."""
    i = raw.index(b'"args":') + len(b'"args":')
    depth = 0
    for j in range(i, len(raw)):
        c = raw[j:j + 1]
        if c in (b"{", b"["):
            depth += 1
        elif c in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                return raw[i:j + 1]
    raise AssertionError("no args object in %r" % raw)


class TestArgsNumbers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker()
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def setUp(self):
        self.pay = self.broker.client("agent-payments")

    def post(self, body):
        return self.pay.request_raw("POST", "/v1/intents",
                                    self.pay.sign(body), "application/jose")

    def audit_count(self):
        return self.broker.query("SELECT count(*) FROM audit")[0][0]

    def test_kept_numbers_are_written_in_rfc8785_form_everywhere(self):
        st, _, raw = self.post(payload("agent-payments", "crm.lookup", KEPT))
        self.assertEqual(st, 200, raw)
        answer = json.loads(raw)
        self.assertEqual(args_text_in(raw), KEPT_JCS.encode())

        # GET view: the same bytes.
        st, _, got = self.pay.request_raw("GET", "/v1/intents/" +
                                          answer["id"])
        self.assertEqual(st, 200, got)
        self.assertEqual(args_text_in(got), KEPT_JCS.encode())

        # The grant: verifies, its payload is RFC 8785 as a whole.
        _, _, jwks = self.pay.get("/v1/jwks")
        claims = harness.verify_grant(answer["grant"], jwks)
        gpayload = harness.b64url_decode(answer["grant"].split(".")[1])
        self.assertEqual(args_text_in(gpayload), KEPT_JCS.encode())
        self.assertEqual(verify_audit.jcs(claims).encode(), gpayload)
        self.assertEqual(claims["args"]["e"], 1000)

        # Stored: the intent's args and the decision's audit record.
        stored = self.broker.query("SELECT args FROM intents WHERE id = ?",
                                   (answer["id"],))[0][0]
        record = self.broker.query("SELECT record FROM audit WHERE "
                                   "intent_id = ? AND event = 'decision'",
                                   (answer["id"],))[0][0]
        self.assertEqual(stored, KEPT_JCS)
        self.assertIn('"args":' + KEPT_JCS, record)
        self.assertEqual(verify_audit.canonical_bytes(json.loads(record)),
                         record.encode())

    def test_unkept_numbers_are_refused_by_pointer(self):
        before = self.audit_count()
        for args, ptr, why in REFUSED:
            with self.subTest(args=args):
                jti = secrets.token_hex(8)
                st, _, raw = self.post(payload("agent-payments",
                                               "crm.lookup", args, jti))
                body = json.loads(raw)
                ERROR.validate(body)
                self.assertEqual((st, body["error"]), (400, "bad_request"),
                                 body)
                self.assertIn("the number at %s in args %s" % (ptr, why),
                              body["message"])
                # Nothing stored, and the jti is still free.
                st, _, raw = self.post(payload("agent-payments",
                                               "crm.lookup", '{"ok": 1}',
                                               jti))
                self.assertEqual(st, 200, raw)
        self.assertEqual(self.audit_count(), before + len(REFUSED))

    def test_numbers_outside_args_are_not_args_business(self):
        # iat as 1e3 is a real, not an integer: refused as before, and
        # not as an args number.
        now = int(time.time())
        body = ('{"iss":"agent-payments","aud":"toolgate","jti":"x1",'
                '"iat":%d.0,"exp":%d,"tool":"crm.lookup","args":{}}' %
                (now, now + 60)).encode()
        st, _, raw = self.post(body)
        self.assertEqual(st, 400, raw)
        self.assertIn("iat and exp are required integers",
                      json.loads(raw)["message"])

    def test_toolgatectl_submit_keeps_and_refuses(self):
        p = self.broker.ctl("--json", "submit", "--tool", "crm.lookup",
                            "--args", '{"y": 1e3, "x": 0.1, "z": [2.50]}')
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)
        st, _, raw = self.pay.request_raw("GET", "/v1/intents/" + d["id"])
        self.assertEqual(args_text_in(raw), b'{"x":0.1,"y":1000,"z":[2.5]}')
        p = self.broker.ctl("submit", "--tool", "crm.lookup", "--args",
                            '{"deep": {"v": 12345678901234567.89}}')
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("/deep/v", p.stderr)
        self.assertIn("more than 17 significant digits", p.stderr)


if __name__ == "__main__":
    unittest.main()
