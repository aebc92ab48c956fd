"""
test_proto: proto/ is self-consistent.  Every schema is a valid draft
2020-12 schema, every example validates against its schema, and the
examples agree with each other where the contract ties them together (the
grant inside decision-allowed verifies against jwks.json and carries
grant-claims.json; the audit examples' hashes are right, in examples/ and
in audit.md, recomputed by the independent verifier).  Needs no daemon.
"""

import hashlib
import json
import os
import re
import sys
import unittest

import jsonschema
from jsonschema import Draft202012Validator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import verify_audit  # noqa: E402

PROTO = os.path.join(harness.ROOT, "proto")

EXAMPLES = {
    "intent-claims.json": "intent-claims.schema.json",
    "decision-allowed.json": "decision.schema.json",
    "decision-pending.json": "decision.schema.json",
    "decision-denied.json": "decision.schema.json",
    "decision-limit-exceeded.json": "decision.schema.json",
    "limits.json": "limits.schema.json",
    "explain.json": "explain.schema.json",
    "error-replay.json": "error.schema.json",
    "grant-claims.json": "grant-claims.schema.json",
    "jwks.json": "jwks.schema.json",
    "audit-record.json": "audit-record.schema.json",
}


def load(*parts):
    with open(os.path.join(PROTO, *parts)) as f:
        return json.load(f)


def validator(schema_name):
    return Draft202012Validator(load(schema_name))


AUDIT = validator("audit-record.schema.json")


class TestSchemas(unittest.TestCase):
    def test_every_schema_is_valid_2020_12(self):
        names = [n for n in os.listdir(PROTO) if n.endswith(".schema.json")]
        for n in EXAMPLES.values():
            self.assertIn(n, names)
        for n in names:
            with self.subTest(schema=n):
                s = load(n)
                self.assertEqual(
                    s.get("$schema"),
                    "https://json-schema.org/draft/2020-12/schema")
                Draft202012Validator.check_schema(s)

    def test_every_example_validates(self):
        for ex, schema in EXAMPLES.items():
            with self.subTest(example=ex):
                validator(schema).validate(load("examples", ex))

    def test_every_policy_validates_against_the_policy_schema(self):
        v = validator("policy.schema.json")
        names = sorted(n for n in os.listdir(os.path.join(PROTO, "examples"))
                       if n.startswith("policy-"))
        self.assertIn("policy-args-limits.json", names)
        for n in names:
            with self.subTest(policy=n):
                v.validate(load("examples", n))
        with open(harness.EXAMPLE_POLICY) as f:
            v.validate(json.load(f))

    def test_every_example_has_a_schema(self):
        for n in os.listdir(os.path.join(PROTO, "examples")):
            if n.startswith("policy-") or n.endswith(".py"):
                continue   # the policy format's own examples; the
                # integration guide's programs (test_examples.py)
            self.assertIn(n, EXAMPLES, "example without a schema: " + n)


class TestSchemasRefuse(unittest.TestCase):
    """The schemas say no where the contract says no."""

    def invalid(self, schema, doc):
        errors = list(validator(schema).iter_errors(doc))
        self.assertTrue(errors, "%s accepted %r" % (schema, doc))

    def test_intent_claims(self):
        good = load("examples", "intent-claims.json")
        validator("intent-claims.schema.json").validate(good)
        for k in ("iss", "aud", "jti", "iat", "exp", "tool"):
            bad = dict(good)
            del bad[k]
            self.invalid("intent-claims.schema.json", bad)
        for amount in ({"value": 12.5, "currency": "USD"},
                       {"value": "-1.00", "currency": "USD"},
                       {"value": "1e3", "currency": "USD"},
                       {"value": "01.00", "currency": "USD"},
                       {"value": "1.0000001", "currency": "USD"},
                       {"value": "1000000000000000", "currency": "USD"},
                       {"value": "1.00", "currency": "usd"},
                       {"value": "1.00", "currency": "USD", "x": 1},
                       {"value": "1.00"}):
            self.invalid("intent-claims.schema.json",
                         dict(good, amount=amount))
        for tool in ("Payments.transfer", "payments..transfer", ".x",
                     "x.", "a" * 129, ""):
            self.invalid("intent-claims.schema.json", dict(good, tool=tool))
        for jti in ("", "x" * 129, "a\nb"):
            self.invalid("intent-claims.schema.json", dict(good, jti=jti))
        self.invalid("intent-claims.schema.json",
                     dict(good, reason="r" * 1025))
        self.invalid("intent-claims.schema.json", dict(good, iat="1"))
        self.invalid("intent-claims.schema.json", dict(good, args=[]))

    def test_decision(self):
        allowed = load("examples", "decision-allowed.json")
        pending = load("examples", "decision-pending.json")
        denied = load("examples", "decision-denied.json")
        self.invalid("decision.schema.json", dict(allowed, status="denied"))
        self.invalid("decision.schema.json",
                     dict(denied, reason_code="policy_allow"))
        self.invalid("decision.schema.json", dict(denied, grant=allowed[
            "grant"], grant_expires_at=allowed["grant_expires_at"]))
        p = dict(pending)
        del p["expires_at"]
        self.invalid("decision.schema.json", p)
        self.invalid("decision.schema.json", dict(pending, id="in_XYZ"))
        self.invalid("decision.schema.json", dict(pending, extra=1))
        a = dict(allowed)
        del a["grant_expires_at"]
        self.invalid("decision.schema.json", a)

    def test_policy(self):
        good = load("examples", "policy-args-limits.json")
        rule = good["roles"]["payments-agent"]["rules"][0]
        limit = good["limits"][0]

        def with_rule(**kw):
            d = json.loads(json.dumps(good))
            d["roles"]["payments-agent"]["rules"][0] = dict(rule, **kw)
            return d

        def with_limit(drop=(), **kw):
            d = json.loads(json.dumps(good))
            d["limits"][0] = {k: v for k, v in dict(limit, **kw).items()
                              if k not in drop}
            return d

        for af in ({"value": "amount", "currency": "USD"},
                   {"value": "", "currency": "USD"},
                   {"value": "/a~2", "currency": "USD"},
                   {"value": "/a", "currency": "usd"},
                   {"value": "/a", "currency": "USD", "scale": 7},
                   {"value": "/a"}):
            self.invalid("policy.schema.json", with_rule(amount_from=af))
        for args in ({}, {"to": {"present": True}}, {"/a": {}},
                     {"/a": {"equals": 1}}, {"/a": {"one_of": []}},
                     {"/a": {"present": False, "prefix": "x"}},
                     {"/a": {"each": {"present": True}}},
                     {"/a": {"min": "-1"}}, {"/a": {"max_length": -1}}):
            self.invalid("policy.schema.json", with_rule(args=args))
        for kw, drop in (({"name": "Bad"}, ()), ({"tools": []}, ()),
                         ({"window": 59}, ()), ({"max_count": 5}, ()),
                         ({}, ("max_amount",)), ({"max_amount": "0"}, ()),
                         ({"per": ["who"]}, ()), ({"over": "allow"}, ()),
                         ({"over": {"approvals": 1, "approvers": []}}, ())):
            self.invalid("policy.schema.json", with_limit(drop, **kw))
        d = json.loads(json.dumps(good))
        d["limits"] = [limit] * 1001
        self.invalid("policy.schema.json", d)

    def test_error(self):
        self.invalid("error.schema.json", {"error": "replay"})
        self.invalid("error.schema.json", {"error": "nope", "message": "x"})
        self.invalid("error.schema.json",
                     {"error": "invalid_policy", "message": "x"})
        validator("error.schema.json").validate(
            {"error": "invalid_policy", "message": "x",
             "problems": [{"path": "$.roles", "message": "y"}]})

    def test_grant_and_audit(self):
        g = load("examples", "grant-claims.json")
        self.invalid("grant-claims.schema.json", dict(g, iss="other"))
        self.invalid("grant-claims.schema.json", dict(g, jti="x"))
        r = load("examples", "audit-record.json")
        self.invalid("audit-record.schema.json", dict(r, hash="00"))
        r2 = dict(r)
        del r2["intent_id"]
        self.invalid("audit-record.schema.json", r2)
        for f in (1, 3, "2", 2.5):
            self.invalid("audit-record.schema.json", dict(r, format=f))


class TestExamplesAgree(unittest.TestCase):
    def test_allowed_grant_verifies_and_matches(self):
        allowed = load("examples", "decision-allowed.json")
        jwks = load("examples", "jwks.json")
        self.assertEqual(harness.jwk_thumbprint(jwks["keys"][0]),
                         jwks["keys"][0]["kid"])
        gc = harness.verify_grant(allowed["grant"], jwks)
        self.assertEqual(gc, load("examples", "grant-claims.json"))
        self.assertEqual(gc["jti"], allowed["id"])
        self.assertEqual(gc["intent_sha256"], allowed["intent_sha256"])
        self.assertEqual(gc["exp"] - gc["iat"], 60)
        self.assertEqual(gc["args"], allowed["args"])
        self.assertEqual(gc["amount"], allowed["amount"])

    def test_audit_example_hash(self):
        r = load("examples", "audit-record.json")
        self.assertEqual(r["prev_hash"], "0" * 64)
        self.assertEqual(r["format"], 2)
        self.assertEqual(verify_audit.verify([r]), 1)

    def test_audit_md_examples(self):
        """Each record of proto/audit.md with the bytes shown after it:
        they are its canonical form, its hash is theirs, and the first
        follows examples/audit-record.json in one chain."""
        with open(os.path.join(PROTO, "audit.md"), encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"```json\n(.*?)```\n\n```text\n(.*?)\n```",
                            text, re.S)
        self.assertEqual(len(blocks), 2)
        for record, canon in blocks:
            r = json.loads(record)
            AUDIT.validate(r)
            body = {k: v for k, v in r.items()
                    if k not in ("prev_hash", "hash")}
            self.assertEqual(verify_audit.canonical_bytes(body),
                             canon.encode("utf-8"))
            self.assertEqual(hashlib.sha256(
                r["prev_hash"].encode() + canon.encode()).hexdigest(),
                r["hash"])
        first = load("examples", "audit-record.json")
        self.assertEqual(verify_audit.verify(
            [first, json.loads(blocks[0][0])]), 2)
        self.assertNotIn("format", json.loads(blocks[1][0]))


if __name__ == "__main__":
    unittest.main()
