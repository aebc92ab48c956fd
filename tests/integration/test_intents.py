"""
test_intents: POST /v1/intents and GET /v1/intents/{id} end to end (CONTRACT
§2, §3, §6) against a real toolgated over real mTLS on a real SQLite file:
every error code, the algorithm rules, replay, the TLS identity rules, every
threshold of the demo policy, grants checked with an independent verifier,
policy changes seen at the next decision, restarts, health and metrics.
Every answer to an intent is validated against proto/ schemas.
"""

import copy
import datetime
import hashlib
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import unittest

from jsonschema import Draft202012Validator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import verify_audit  # noqa: E402
from harness import DELETE, b64url, claims, payment, sign  # noqa: E402

PROTO = os.path.join(harness.ROOT, "proto")


def _schema(name):
    with open(os.path.join(PROTO, name)) as f:
        return Draft202012Validator(json.load(f))


DECISION = _schema("decision.schema.json")
ERROR = _schema("error.schema.json")
GRANT = _schema("grant-claims.schema.json")
JWKS = _schema("jwks.schema.json")
AUDIT = _schema("audit-record.schema.json")

URI_ID = "spiffe://toolgate.test/agent-uri"

DENY_CODES = {"unknown_principal", "principal_disabled", "no_permission",
              "amount_required", "currency_not_allowed", "amount_over_limit",
              "kill_switch", "args_not_allowed", "denied_by_rule",
              "limit_exceeded"}


def extended_policy():
    """policies/example.json plus agent-rsa (crm.lookup) and the URI
    identity (support-agent)."""
    p = harness.load_example_policy()
    p["principals"]["agent-rsa"] = {"roles": ["rsa-agent"]}
    p["principals"][URI_ID] = {"roles": ["support-agent"]}
    p["roles"]["rsa-agent"] = {"rules": [{"tool": "crm.lookup"}]}
    return p


def usd(v):
    return {"value": v, "currency": "USD"}


def eur(v):
    return {"value": v, "currency": "EUR"}


def rfc3339(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


def raw_sign_es256(key_path, signing_input):
    """ES256 over arbitrary signing-input text (for shape tests: a token
    whose only fault is its shape must be refused for the shape)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import \
        decode_dss_signature
    k = harness._load_key(key_path)
    r, s = decode_dss_signature(k.sign(signing_input.encode("ascii"),
                                       ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(labels)),
                  text, re.M)
    return int(m.group(1)) if m else 0


class BrokerCase(unittest.TestCase):
    """One broker per class; helpers that validate every answer."""

    policy = None     # None: extended_policy()

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.Broker(policy=cls.policy if cls.policy
                                    is not None else extended_policy())
        cls.broker.__enter__()
        cls.pki = cls.broker.pki

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)

    def setUp(self):
        self.pay = self.broker.client("agent-payments")

    def tearDown(self):
        self.pay.close()

    def key(self, name):
        return os.path.join(self.pki, name + ".key")

    # -- answers

    def post(self, client, token):
        """POST an intent and check the answer's shape against proto/."""
        status, headers, body = client.post_intent(token)
        self.assertEqual(headers.get("content-type", "").split(";")[0],
                         "application/json",
                         "answer %d is not JSON: %r" % (status, body))
        self.assertIsInstance(body, dict, body)
        if "error" in body:
            ERROR.validate(body)
            self.assertNotIn(status, (200, 202), body)
            self.assertNotIn("id", body)
        else:
            DECISION.validate(body)
            want = {"allow": 200, "pending": 202, "deny": 403}
            self.assertEqual(status, want[body["decision"]], body)
            self.assertEqual(body["agent"], client.identity)
        return status, headers, body

    def submit(self, client, tool="crm.lookup", **kw):
        iss = kw.pop("iss", client.identity)
        c = claims(iss, tool, **kw)
        return self.post(client, client.sign(c))

    def assertError(self, answer, status, code):
        st, _, body = answer
        self.assertEqual((st, body.get("error")), (status, code),
                         "wanted %d %s, got %d %r" % (status, code, st, body))

    def assertDecision(self, answer, status, decision, reason_code,
                       approvals=None):
        st, _, body = answer
        self.assertEqual((st, body.get("decision"), body.get("reason_code")),
                         (status, decision, reason_code),
                         "got %d %r" % (st, body))
        if approvals is not None:
            self.assertEqual(body["approvals_required"], approvals, body)
        return body


# --------------------------------------------------------------- bad input

class TestBadRequest(BrokerCase):
    def test_payload_not_json(self):
        for payload in (b"not json", b"[1,2]", b"\"str\"", b"null",
                        b"{\"iss\": \"agent-payments\""):
            with self.subTest(payload=payload):
                tok = sign(self.key("agent-payments"), payload)
                self.assertError(self.post(self.pay, tok), 400,
                                 "bad_request")

    def test_missing_claims(self):
        for k in ("iss", "aud", "jti", "iat", "exp"):
            with self.subTest(claim=k):
                self.assertError(
                    self.submit(self.pay, **{k: DELETE}), 400,
                    "bad_request")
        self.assertError(self.submit(self.pay, DELETE), 400, "bad_request")

    def test_wrong_types(self):
        now = int(time.time())
        for kw in ({"iat": str(now)}, {"exp": str(now + 60)},
                   {"iat": now + 0.5}, {"exp": float(now + 60)},
                   {"jti": 12345}, {"tool": 7}, {"tool": ["crm.lookup"]},
                   {"args": ["a"]}, {"args": "x"}, {"reason": 5},
                   {"aud": 1}, {"aud": []}, {"iss": None}):
            with self.subTest(kw=kw):
                st, _, body = self.submit(self.pay, **kw)
                self.assertEqual((st, body.get("error")),
                                 (400, "bad_request"), body)

    def test_bad_tool_names(self):
        for tool in ("Payments.transfer", "payments..transfer",
                     ".payments", "payments.", "pay ments", "", "crm.*",
                     "a" * 129, "caf\u00e9"):
            with self.subTest(tool=tool):
                self.assertError(self.submit(self.pay, tool=tool), 400,
                                 "bad_request")

    def test_tool_name_128_is_accepted(self):
        # Valid but not in the policy: a decision, not an error.
        body = self.assertDecision(self.submit(self.pay, tool="a" * 128),
                                   403, "deny", "no_permission")
        self.assertEqual(body["status"], "denied")

    def test_jti_length(self):
        self.assertError(self.submit(self.pay, jti=""), 400, "bad_request")
        self.assertError(self.submit(self.pay, jti="x" * 129), 400,
                         "bad_request")
        self.assertDecision(self.submit(self.pay, jti="y" * 128), 200,
                            "allow", "policy_allow")
        self.assertDecision(self.submit(self.pay, jti=secrets.token_hex(
            4)[:1]), 200, "allow", "policy_allow")

    def test_reason_length(self):
        self.assertError(self.submit(self.pay, reason="r" * 1025), 400,
                         "bad_request")
        body = self.assertDecision(self.submit(self.pay, reason="r" * 1024),
                                   200, "allow", "policy_allow")
        self.assertEqual(body["agent_reason"], "r" * 1024)

    def test_wrong_audience(self):
        self.assertError(self.submit(self.pay, aud="other-broker"), 400,
                         "bad_request")
        self.assertDecision(self.submit(self.pay, aud=["x", "toolgate"]),
                            200, "allow", "policy_allow")

    def test_duplicate_claim_keys(self):
        now = int(time.time())
        base = ('{"iss":"agent-payments","aud":"toolgate","jti":"%s",'
                '"iat":%d,"exp":%d,' % (secrets.token_hex(8), now, now + 60))
        for tail in ('"tool":"crm.lookup","tool":"payments.transfer"}',
                     '"tool":"payments.transfer","amount":{"value":"1.00",'
                     '"currency":"USD","value":"999999.00"}}',
                     '"tool":"crm.lookup","iss":"agent-payments"}'):
            with self.subTest(tail=tail):
                tok = sign(self.key("agent-payments"),
                           (base + tail).encode())
                self.assertError(self.post(self.pay, tok), 400,
                                 "bad_request")

    def test_lifetime_limits(self):
        now = int(time.time())
        # exp - iat > 300: documented as 400 bad_request in proto/README.md
        self.assertError(self.submit(self.pay, iat=now, exp=now + 301), 400,
                         "bad_request")
        self.assertError(self.submit(self.pay, iat=now, exp=now), 400,
                         "bad_request")
        self.assertError(self.submit(self.pay, iat=now, exp=now - 1), 400,
                         "bad_request")
        self.assertDecision(self.submit(self.pay, iat=now - 10,
                                        exp=now + 290),
                            200, "allow", "policy_allow")


class TestInvalidAmount(BrokerCase):
    def test_invalid_amounts(self):
        for amount in ({"value": 12.5, "currency": "USD"},
                       {"value": 100, "currency": "USD"},
                       {"value": "-1.00", "currency": "USD"},
                       {"value": "+1.00", "currency": "USD"},
                       {"value": "1e3", "currency": "USD"},
                       {"value": "1E3", "currency": "USD"},
                       {"value": "01.00", "currency": "USD"},
                       {"value": "1.", "currency": "USD"},
                       {"value": ".5", "currency": "USD"},
                       {"value": "1.0000001", "currency": "USD"},
                       {"value": "1000000000000000", "currency": "USD"},
                       {"value": " 1.00", "currency": "USD"},
                       {"value": "", "currency": "USD"},
                       {"value": "1.00", "currency": "USD", "note": "x"},
                       {"value": "1.00"},
                       {"currency": "USD"},
                       {"value": "1.00", "currency": "usd"},
                       {"value": "1.00", "currency": "US"},
                       {"value": "1.00", "currency": "USDX"},
                       {"value": "1.00", "currency": 840},
                       "1.00", 1, [], None):
            with self.subTest(amount=amount):
                self.assertError(
                    self.submit(self.pay, "payments.transfer",
                                amount=amount), 400, "invalid_amount")

    def test_valid_edges(self):
        # the claim beside the same amount in args (amount_from)
        for v in ("0", "0.5", "1.000000", "999.999999"):
            with self.subTest(value=v):
                self.assertDecision(self.submit(
                    self.pay, "payments.transfer", **payment(v, claim=True)),
                    200, "allow", "policy_allow")


# ----------------------------------------------------- signatures and JWS

class TestSignature(BrokerCase):
    def test_signed_with_another_agents_key(self):
        c = claims("agent-payments", "crm.lookup")
        tok = sign(self.key("agent-support"), c)
        self.assertError(self.post(self.pay, tok), 401, "bad_signature")

    def test_tampered_payload(self):
        tok = self.pay.sign(claims("agent-payments", "payments.transfer",
                                   amount=usd("10.00")))
        h, p, s = tok.split(".")
        c = json.loads(harness.b64url_decode(p))
        c["amount"]["value"] = "10000000.00"
        tok2 = ".".join((h, b64url(json.dumps(c, separators=(",", ":"))),
                         s))
        self.assertError(self.post(self.pay, tok2), 401, "bad_signature")

    def test_identity_mismatch(self):
        c = claims("agent-support", "crm.lookup")
        self.assertError(self.post(self.pay, self.pay.sign(c)), 401,
                         "identity_mismatch")

    def test_alg_none(self):
        """alg none is refused before any verifier sees the token: with
        its empty signature segment by the shape check (invalid_jws), with
        a signature attached by the alg rule (bad_signature)."""
        c = claims("agent-payments", "crm.lookup")
        for hdr in ({"alg": "none", "typ": "JWT"}, {"alg": "NoNe"},
                    {"alg": "none"}):
            with self.subTest(header=hdr):
                tok = sign(None, c, alg="none", header=hdr)
                self.assertTrue(tok.endswith("."))
                self.assertError(self.post(self.pay, tok), 401,
                                 "invalid_jws")
                tok = sign(self.key("agent-payments"), c, alg="ES256",
                           header=hdr)
                self.assertError(self.post(self.pay, tok), 401,
                                 "bad_signature")
        # the same claims, properly signed, were never burnt
        self.assertDecision(self.post(self.pay, self.pay.sign(c)), 200,
                            "allow", "policy_allow")

    def test_hs256_keyed_with_public_key(self):
        """The classic algorithm confusion: never a decision."""
        pem = harness.public_key_pem(
            os.path.join(self.pki, "agent-payments.pem"))
        with open(os.path.join(self.pki, "agent-payments.pem"), "rb") as f:
            cert_pem = f.read()
        for alg_name in ("HS256", "hs256", "HS384", "HS512"):
            for key in (pem, pem.rstrip(b"\n"), cert_pem):
                with self.subTest(alg=alg_name, key=key[:30]):
                    c = claims("agent-payments", "payments.transfer",
                               amount=usd("5.00"))
                    tok = sign(None, c, alg="HS256", hmac_key=key,
                               header={"alg": alg_name, "typ": "JWT"})
                    st, _, body = self.post(self.pay, tok)
                    self.assertEqual((st, body.get("error")),
                                     (401, "bad_signature"), body)
                    self.assertNotIn("decision", body)

    def test_other_algs_on_ec_key(self):
        c = claims("agent-payments", "crm.lookup")
        good = self.pay.sign(c)
        h, p, s = good.split(".")
        for alg in ("RS256", "ES384", "ES512", "PS256", "EdDSA", "es256",
                    "ES256 "):
            with self.subTest(alg=alg):
                hdr = b64url(json.dumps({"alg": alg, "typ": "JWT"}))
                sig = raw_sign_es256(self.key("agent-payments"),
                                     hdr + "." + p)
                tok = hdr + "." + p + "." + b64url(sig)
                self.assertError(self.post(self.pay, tok), 401,
                                 "bad_signature")
        # A real RS256 signature, by the RSA agent's key, on the EC
        # connection.
        c = claims("agent-payments", "crm.lookup")
        tok = sign(self.key("agent-rsa"), c, alg="RS256")
        self.assertError(self.post(self.pay, tok), 401, "bad_signature")

    def test_rsa_agent(self):
        rsa_c = self.broker.client("agent-rsa")
        try:
            # ES256 claimed on an RSA connection (signed with an EC key)
            c = claims("agent-rsa", "crm.lookup")
            tok = sign(self.key("agent-payments"), c, alg="ES256")
            self.assertError(self.post(rsa_c, tok), 401, "bad_signature")
            # HS256 keyed with the RSA public key
            pem = harness.public_key_pem(
                os.path.join(self.pki, "agent-rsa.pem"))
            tok = sign(None, claims("agent-rsa", "crm.lookup"), alg="HS256",
                       hmac_key=pem)
            self.assertError(self.post(rsa_c, tok), 401, "bad_signature")
            # RS256 with its own key works
            self.assertEqual(harness.key_alg(rsa_c.key), "RS256")
            body = self.assertDecision(self.submit(rsa_c, "crm.lookup"),
                                       200, "allow", "policy_allow")
            self.assertEqual(body["agent"], "agent-rsa")
            self.assertIn("grant", body)
            self.assertDecision(self.submit(rsa_c, "crm.update"), 403,
                                "deny", "no_permission")
        finally:
            rsa_c.close()

    def test_header_typ_and_crit(self):
        c = claims("agent-payments", "crm.lookup")
        tok = sign(self.key("agent-payments"), c,
                   header={"alg": "ES256", "typ": "JOSE+JSON"})
        self.assertError(self.post(self.pay, tok), 401, "invalid_jws")
        tok = sign(self.key("agent-payments"), claims("agent-payments",
                                                       "crm.lookup"),
                   header={"alg": "ES256", "crit": ["exp"], "exp": 1})
        self.assertError(self.post(self.pay, tok), 401, "invalid_jws")
        # typ may be left out
        tok = sign(self.key("agent-payments"), claims("agent-payments",
                                                       "crm.lookup"),
                   header={"alg": "ES256"})
        self.assertDecision(self.post(self.pay, tok), 200, "allow",
                            "policy_allow")


class TestInvalidJws(BrokerCase):
    def good(self):
        return self.pay.sign(claims("agent-payments", "crm.lookup"))

    def test_shapes(self):
        tok = self.good()
        h, p, s = tok.split(".")
        sig = harness.b64url_decode(s)
        std_sig = __import__("base64").b64encode(sig).decode()
        cases = {
            "two segments": h + "." + p,
            "four segments": tok + "." + s,
            "one segment": h,
            "empty": "",
            "dots only": "..",
            "empty signature": h + "." + p + ".",
            "trailing ==": tok + "==",
            "trailing =": tok + "=",
            "bang inside signature": h + "." + p + "." + s[:20] + "!" +
            s[20:],
            "tilde inside signature": h + "." + p + "." + s[:20] + "~" +
            s[20:],
            "standard base64 signature": h + "." + p + "." + std_sig,
            "whitespace": tok[:10] + " " + tok[10:],
            "newline at end": tok + "\n",
            "nul": tok[:10] + "\x00" + tok[10:],
        }
        for name, t in cases.items():
            with self.subTest(case=name):
                self.assertError(self.post(self.pay, t), 401, "invalid_jws")

    def test_padding_inside_a_signed_segment(self):
        """A token whose only fault is base64 padding, correctly signed
        over the padded text, is still refused for its shape."""
        c = claims("agent-payments", "crm.lookup", reason="ab")
        payload = json.dumps(c, separators=(",", ":")).encode()
        while len(payload) % 3 == 0:
            payload += b" "
        hdr = b64url(json.dumps({"alg": "ES256", "typ": "JWT"}))
        p = __import__("base64").urlsafe_b64encode(payload).decode()
        self.assertTrue(p.endswith("="))
        sig = raw_sign_es256(self.key("agent-payments"), hdr + "." + p)
        self.assertError(self.post(self.pay, hdr + "." + p + "." +
                                   b64url(sig)), 401, "invalid_jws")

    def test_header_not_json(self):
        c = claims("agent-payments", "crm.lookup")
        for hdr in (b"not json", b"[]", b'{"alg":"ES256","alg":"none"}'):
            with self.subTest(header=hdr):
                tok = sign(self.key("agent-payments"), c, header=hdr)
                st, _, body = self.post(self.pay, tok)
                self.assertEqual(st, 401, body)
                self.assertIn(body.get("error"),
                              ("invalid_jws", "bad_signature"), body)


# -------------------------------------------------- replay, size, media

class TestReplayAndLimits(BrokerCase):
    def test_replay_same_token(self):
        tok = self.pay.sign(claims("agent-payments", "crm.lookup"))
        first = self.assertDecision(self.post(self.pay, tok), 200, "allow",
                                    "policy_allow")
        self.assertError(self.post(self.pay, tok), 409, "replay")
        # and on another connection
        other = self.broker.client("agent-payments")
        try:
            self.assertError(self.post(other, tok), 409, "replay")
        finally:
            other.close()
        # the first decision is untouched
        st, _, body = self.pay.get("/v1/intents/" + first["id"])
        self.assertEqual((st, body["status"]), (200, "allowed"))

    def test_replay_resigned_same_jti(self):
        c = claims("agent-payments", "crm.lookup")
        t1 = self.pay.sign(c)
        t2 = self.pay.sign(c)
        self.assertNotEqual(t1, t2)    # ECDSA signatures are randomised
        self.assertDecision(self.post(self.pay, t1), 200, "allow",
                            "policy_allow")
        self.assertError(self.post(self.pay, t2), 409, "replay")
        # different claims, same jti: still a replay
        c2 = dict(c, tool="payments.transfer", amount=usd("1.00"),
                  iat=c["iat"] + 1)
        self.assertError(self.post(self.pay, self.pay.sign(c2)), 409,
                         "replay")

    def test_replay_of_a_denied_intent(self):
        c = claims("agent-payments", "payments.transfer")
        self.assertDecision(self.post(self.pay, self.pay.sign(c)), 403,
                            "deny", "amount_required")
        self.assertError(self.post(self.pay, self.pay.sign(c)), 409,
                         "replay")

    def test_replay_is_keyed_on_iss(self):
        jti = "shared-" + secrets.token_hex(8)
        sup = self.broker.client("agent-support")
        try:
            self.assertDecision(self.submit(self.pay, jti=jti), 200,
                                "allow", "policy_allow")
            self.assertDecision(self.submit(sup, jti=jti), 200, "allow",
                                "policy_allow")
            self.assertError(self.submit(sup, jti=jti), 409, "replay")
        finally:
            sup.close()

    def test_refused_intent_does_not_burn_its_jti(self):
        c = claims("agent-payments", "crm.lookup")
        bad = sign(self.key("agent-support"), c)
        self.assertError(self.post(self.pay, bad), 401, "bad_signature")
        self.assertDecision(self.post(self.pay, self.pay.sign(c)), 200,
                            "allow", "policy_allow")

    def test_payload_too_large(self):
        self.assertError(self.pay.post_intent(b"a" * 65537), 413,
                         "payload_too_large")
        # a signed token just over the limit
        c = claims("agent-payments", "crm.lookup",
                   args={"pad": "x" * 50000})
        tok = self.pay.sign(c)
        self.assertGreater(len(tok), 65536)
        self.assertError(self.post(self.pay, tok), 413, "payload_too_large")
        # exactly 64 KiB is not too large (just not a JWS)
        self.assertError(self.post(self.pay, "a" * 65536), 401,
                         "invalid_jws")

    def test_payload_far_too_large(self):
        c = self.broker.client("agent-payments")
        try:
            st, _, body = c.post_intent(b"a" * (1024 * 1024))
            self.assertEqual((st, body.get("error") if isinstance(
                body, dict) else body), (413, "payload_too_large"))
        finally:
            c.close()

    def test_huge_body_never_reaches_a_decision(self):
        """Beyond the transport's cap the broker may hang up instead of
        answering (a client still sending cannot read the 413): never a
        2xx, and the broker keeps serving."""
        c = self.broker.client("agent-payments")
        try:
            st, _, body = c.post_intent(b"a" * (5 * 1024 * 1024))
            self.assertEqual(st, 413, body)
        except (ssl.SSLError, OSError):
            pass
        finally:
            c.close()
        self.assertDecision(self.submit(self.pay), 200, "allow",
                            "policy_allow")

    def test_unsupported_media_type(self):
        tok = self.pay.sign(claims("agent-payments", "crm.lookup"))
        for ctype in ("application/json", "text/plain", "",
                      "application/jose+json", "application/josex"):
            with self.subTest(ctype=ctype):
                st, h, body = self.pay.request("POST", "/v1/intents",
                                               body=tok, content_type=ctype)
                self.assertEqual((st, body.get("error")),
                                 (415, "unsupported_media_type"), body)
                ERROR.validate(body)
        st, _, body = self.pay.request("POST", "/v1/intents", body=tok)
        self.assertEqual((st, body.get("error")),
                         (415, "unsupported_media_type"), body)
        # the refused token's jti is still free
        self.assertDecision(self.post(self.pay, tok), 200, "allow",
                            "policy_allow")

    def test_content_type_parameters_and_case(self):
        for ctype in ("application/jose; charset=utf-8", "Application/JOSE"):
            with self.subTest(ctype=ctype):
                tok = self.pay.sign(claims("agent-payments", "crm.lookup"))
                st, _, body = self.pay.request("POST", "/v1/intents",
                                               body=tok, content_type=ctype)
                self.assertEqual((st, body.get("decision")), (200, "allow"),
                                 body)


# ------------------------------------------------------- time and expiry

class TestExpiry(BrokerCase):
    def test_expired_beyond_skew(self):
        now = int(time.time())
        self.assertError(self.submit(self.pay, iat=now - 100, exp=now - 40),
                         401, "expired")
        self.assertError(self.submit(self.pay, iat=now - 300, exp=now - 200),
                         401, "expired")

    def test_expired_within_skew_is_accepted(self):
        now = int(time.time())
        self.assertDecision(self.submit(self.pay, iat=now - 70,
                                        exp=now - 15),
                            200, "allow", "policy_allow")

    def test_iat_in_the_future(self):
        now = int(time.time())
        self.assertError(self.submit(self.pay, iat=now + 45, exp=now + 100),
                         401, "expired")
        self.assertError(self.submit(self.pay, iat=now + 3600,
                                     exp=now + 3660), 401, "expired")
        self.assertDecision(self.submit(self.pay, iat=now + 15,
                                        exp=now + 75),
                            200, "allow", "policy_allow")

    def test_huge_times(self):
        for iat, exp in ((2 ** 62, 2 ** 62 + 10), (-2 ** 62, -2 ** 62 + 10),
                         (0, 60)):
            with self.subTest(iat=iat):
                st, _, body = self.submit(self.pay, iat=iat, exp=exp)
                self.assertIn((st, body.get("error")),
                              ((401, "expired"), (400, "bad_request")), body)
        st, _, body = self.submit(self.pay, iat=2 ** 64, exp=2 ** 64 + 1)
        self.assertEqual((st, body.get("error")), (400, "bad_request"), body)


# ------------------------------------------------------------- reading

class TestRead(BrokerCase):
    def test_unknown_intent(self):
        for ident in ("in_" + "0" * 32, "in_" + secrets.token_hex(16),
                      "in_XYZ", "nope", "in_" + "0" * 33,
                      "in_" + "A" * 32):
            with self.subTest(id=ident):
                st, _, body = self.pay.get("/v1/intents/" + ident)
                self.assertEqual((st, body.get("error")), (404, "not_found"),
                                 body)
                ERROR.validate(body)

    def test_other_agents_intent(self):
        body = self.assertDecision(self.submit(
            self.pay, "payments.transfer", **payment("50.00")),
            200, "allow", "policy_allow")
        sup = self.broker.client("agent-support")
        alice = self.broker.client("approver-alice")
        olga = self.broker.client("operator-olga")
        stranger = self.broker.client("agent-stranger")
        try:
            for c in (sup, stranger):
                st, _, b = c.get("/v1/intents/" + body["id"])
                self.assertEqual((st, b.get("error")), (404, "not_found"),
                                 b)
            for c in (alice, olga):
                st, _, b = c.get("/v1/intents/" + body["id"])
                self.assertEqual((st, b["id"]), (200, body["id"]))
                DECISION.validate(b)
        finally:
            for c in (sup, alice, olga, stranger):
                c.close()

    def test_get_returns_the_same_view(self):
        for tool, kw, status in (
                ("payments.transfer",
                 dict(payment("10.00", to="acct-9", n=[1, 2], claim=True),
                      reason="invoice 7"), "allowed"),
                ("payments.transfer", payment("5000.00"), "pending"),
                ("payments.transfer", payment("100000.01"), "denied")):
            with self.subTest(status=status):
                _, _, posted = self.submit(self.pay, tool, **kw)
                self.assertEqual(posted["status"], status)
                st, _, got = self.pay.get("/v1/intents/" + posted["id"])
                self.assertEqual(st, 200, got)
                DECISION.validate(got)
                for k in posted:
                    if k in ("grant", "grant_expires_at"):
                        continue
                    self.assertEqual(got[k], posted[k], k)
                self.assertEqual("grant" in got, status == "allowed")

    def test_unknown_path_and_method(self):
        st, _, body = self.pay.get("/v1/nothing-here")
        self.assertEqual((st, body.get("error")), (404, "not_found"), body)
        st, _, body = self.pay.get("/v1/intents")
        self.assertEqual((st, body.get("error")), (405,
                                                   "method_not_allowed"),
                         body)
        ERROR.validate(body)


# --------------------------------------------------------------- TLS

class TestTls(BrokerCase):
    def handshake_refused(self, client):
        try:
            try:
                st, _, body = client.get("/healthz")
            except (ssl.SSLError, OSError):
                return
            self.fail("got an HTTP answer %d %r without a valid client "
                      "certificate" % (st, body))
        finally:
            client.close()

    def test_foreign_ca(self):
        fd = os.path.join(self.pki, "foreign")
        self.handshake_refused(self.broker.client(
            "agent-payments", cert=os.path.join(fd, "agent-payments.pem"),
            key=os.path.join(fd, "agent-payments.key")))

    def test_no_client_certificate(self):
        self.handshake_refused(self.broker.client(None))

    def test_expired_client_certificate(self):
        self.handshake_refused(self.broker.client(
            "agent-payments", cert=os.path.join(self.pki, "expired.pem"),
            key=os.path.join(self.pki, "expired.key")))

    def test_plain_http_is_refused(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.broker.port,
                                          timeout=10)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            self.assertNotEqual(resp.status, 200)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def test_broker_is_still_fine_afterwards(self):
        self.handshake_refused(self.broker.client(None))
        self.assertDecision(self.submit(self.pay), 200, "allow",
                            "policy_allow")

    def test_uri_san_identity(self):
        c = self.broker.client("agent-uri")
        try:
            self.assertEqual(c.identity, URI_ID)
            body = self.assertDecision(self.submit(c, "crm.update"), 200,
                                       "allow", "policy_allow")
            self.assertEqual(body["agent"], URI_ID)
            # the CN is not the identity when a URI SAN is present
            tok = c.sign(claims("ignored-cn", "crm.update"))
            self.assertError(self.post(c, tok), 401, "identity_mismatch")
        finally:
            c.close()


# ------------------------------------------------------------- policy

class TestDemoPolicy(BrokerCase):
    # The demo's tiers; its daily limit would stop the pending payments
    # these pile up (test_limits tests it).
    policy = harness.without_limits()

    def transfer(self, amount, **kw):
        """The amount in args, where the demo policy reads it."""
        return self.submit(self.pay, "payments.transfer",
                           **payment(amount["value"], amount["currency"]),
                           **kw)

    def test_usd_tiers(self):
        for value, status, decision, code, n in (
                ("0", 200, "allow", "policy_allow", 0),
                ("999.99", 200, "allow", "policy_allow", 0),
                ("1000", 200, "allow", "policy_allow", 0),
                ("1000.00", 200, "allow", "policy_allow", 0),
                ("1000.000000", 200, "allow", "policy_allow", 0),
                ("1000.000001", 202, "pending", "approval_required", 1),
                ("10000.00", 202, "pending", "approval_required", 1),
                ("10000.01", 202, "pending", "approval_required", 2),
                ("100000.00", 202, "pending", "approval_required", 2),
                ("100000.000001", 403, "deny", "amount_over_limit", 0),
                ("999999999999999.999999", 403, "deny",
                 "amount_over_limit", 0)):
            with self.subTest(value=value):
                body = self.assertDecision(self.transfer(usd(value)), status,
                                           decision, code, n)
                self.assertEqual(body["amount"], usd(value))
                self.assertEqual(body["policy_version"], 1)
                if decision == "pending":
                    self.assertEqual(body["status"], "pending")
                    self.assertEqual(body["approver_roles"],
                                     ["finance-approver"])
                    self.assertEqual(
                        parse_time(body["expires_at"]) -
                        parse_time(body["created_at"]), 3600)
                    self.assertNotIn("grant", body)
                if decision == "allow":
                    self.assertIn("grant", body)

    def test_eur_tiers(self):
        for value, status, decision, code, n in (
                ("500.00", 200, "allow", "policy_allow", 0),
                ("500.01", 202, "pending", "approval_required", 1),
                ("5000.00", 202, "pending", "approval_required", 1),
                ("5000.01", 403, "deny", "amount_over_limit", 0)):
            with self.subTest(value=value):
                self.assertDecision(self.transfer(eur(value)), status,
                                    decision, code, n)

    def test_rule_names_the_tier(self):
        body = self.assertDecision(self.transfer(usd("5000.00")), 202,
                                   "pending", "approval_required", 1)
        self.assertEqual(body["rule"]["role"], "payments-agent")
        self.assertEqual(body["rule"]["tool"], "payments.transfer")
        self.assertEqual(body["rule"]["index"], 0)
        self.assertEqual(body["rule"]["tier"], 1)
        self.assertEqual(body["rule"]["currency"], "USD")

    def test_rule_max_is_the_policys_text(self):
        """api-shapes: rule.max is "10000.00" as the policy writes it."""
        body = self.assertDecision(self.transfer(usd("5000.00")), 202,
                                   "pending", "approval_required", 1)
        self.assertEqual(body["rule"]["max"], "10000.00")

    def test_currency_and_amount_required(self):
        self.assertDecision(self.transfer({"value": "1.00",
                                           "currency": "JPY"}),
                            403, "deny", "currency_not_allowed")
        self.assertDecision(self.submit(self.pay, "payments.transfer"), 403,
                            "deny", "amount_required")

    def test_no_permission(self):
        for tool in ("payments.refund", "crm.update", "email.send",
                     "payments"):
            with self.subTest(tool=tool):
                self.assertDecision(self.submit(self.pay, tool), 403,
                                    "deny", "no_permission")

    def test_amount_on_a_rule_without_currencies(self):
        # crm.lookup has no currencies: the amount is carried, not judged
        body = self.assertDecision(self.submit(
            self.pay, "crm.lookup", amount={"value": "5.00",
                                            "currency": "JPY"}),
            200, "allow", "policy_allow")
        self.assertEqual(body["amount"], {"value": "5.00",
                                          "currency": "JPY"})

    def test_support_agent(self):
        sup = self.broker.client("agent-support")
        try:
            self.assertDecision(self.submit(sup, "crm.update"), 200, "allow",
                                "policy_allow")
            self.assertDecision(self.submit(sup, "crm.lookup"), 200, "allow",
                                "policy_allow")
            body = self.assertDecision(self.submit(sup, "email.send"), 202,
                                       "pending", "approval_required", 1)
            self.assertEqual(body["approver_roles"], ["support-approver"])
            self.assertDecision(self.submit(sup, "payments.transfer",
                                            amount=usd("1.00")),
                                403, "deny", "no_permission")
        finally:
            sup.close()

    def test_unknown_principal(self):
        c = self.broker.client("agent-stranger")
        try:
            body = self.assertDecision(self.submit(c, "crm.lookup"), 403,
                                       "deny", "unknown_principal")
            self.assertEqual(body["status"], "denied")
            self.assertNotIn("grant", body)
            # its denied intent is its own to read
            st, _, got = c.get("/v1/intents/" + body["id"])
            self.assertEqual((st, got["status"]), (200, "denied"))
        finally:
            c.close()


def disabled_policy():
    p = harness.load_example_policy()
    p["principals"]["agent-payments"]["disabled"] = True
    return p


class TestDisabledPrincipal(BrokerCase):
    policy = disabled_policy()

    def test_principal_disabled(self):
        for tool, kw in (("crm.lookup", {}),
                         ("payments.transfer", {"amount": usd("1.00")})):
            with self.subTest(tool=tool):
                body = self.assertDecision(self.submit(self.pay, tool, **kw),
                                           403, "deny",
                                           "principal_disabled")
                self.assertNotIn("grant", body)
        sup = self.broker.client("agent-support")
        try:
            self.assertDecision(self.submit(sup, "crm.lookup"), 200, "allow",
                                "policy_allow")
        finally:
            sup.close()


# -------------------------------------------------------------- grants

class TestGrant(BrokerCase):
    def test_grant_verifies_with_jwks(self):
        st, h, jwks = self.pay.get("/v1/jwks")
        self.assertEqual(st, 200)
        JWKS.validate(jwks)
        self.assertEqual(jwks["keys"][0]["kid"],
                         harness.jwk_thumbprint(jwks["keys"][0]))
        args = {"to": "acct-7", "memo": "caf\u00e9 \u2713", "n": 3,
                "nested": {"a": [1, None, True]}, "amount": "750.50",
                "currency": "USD"}
        c = claims("agent-payments", "payments.transfer", args=args,
                   amount=usd("750.50"), reason="pay the florist")
        tok = self.pay.sign(c)
        before = int(time.time())
        body = self.assertDecision(self.post(self.pay, tok), 200, "allow",
                                   "policy_allow")
        after = int(time.time())
        gc = harness.verify_grant(body["grant"], jwks)
        GRANT.validate(gc)
        hdr = harness.jws_parts(body["grant"])[0]
        self.assertEqual(hdr, {"alg": "ES256", "typ": "JWT",
                               "kid": jwks["keys"][0]["kid"]})
        payload = harness.b64url_decode(tok.split(".")[1])
        self.assertEqual(gc["iss"], "toolgate")
        self.assertEqual(gc["sub"], "agent-payments")
        self.assertEqual(gc["aud"], "payments.transfer")
        self.assertEqual(gc["tool"], "payments.transfer")
        self.assertEqual(gc["jti"], body["id"])
        self.assertEqual(gc["exp"] - gc["iat"], 60)
        self.assertTrue(before - 1 <= gc["iat"] <= after + 1)
        self.assertEqual(gc["approvers"], [])
        self.assertEqual(gc["intent_sha256"],
                         hashlib.sha256(payload).hexdigest())
        self.assertEqual(body["intent_sha256"], gc["intent_sha256"])
        self.assertEqual(gc["args"], args)
        self.assertEqual(body["args"], args)
        self.assertEqual(gc["amount"], usd("750.50"))
        self.assertEqual(body["grant_expires_at"], rfc3339(gc["exp"]))
        self.assertEqual(body["agent_reason"], "pay the florist")

        # tampering with the grant is detected by the verifier
        h, p, s = body["grant"].split(".")
        forged = dict(gc, amount=usd("750000.00"))
        with self.assertRaises(ValueError):
            harness.verify_grant(h + "." + b64url(json.dumps(forged)) + "."
                                 + s, jwks)

        # GET while allowed: a freshly signed grant with the same jti
        time.sleep(1.1)
        st, _, got = self.pay.get("/v1/intents/" + body["id"])
        self.assertEqual(st, 200)
        g2 = harness.verify_grant(got["grant"], jwks)
        self.assertEqual(g2["jti"], body["id"])
        self.assertGreater(g2["iat"], gc["iat"])
        self.assertEqual(g2["exp"] - g2["iat"], 60)
        self.assertEqual({k: v for k, v in g2.items()
                          if k not in ("iat", "exp")},
                         {k: v for k, v in gc.items()
                          if k not in ("iat", "exp")})

    def test_grant_without_args_or_amount(self):
        _, _, jwks = self.pay.get("/v1/jwks")
        body = self.assertDecision(self.submit(self.pay, "crm.lookup"), 200,
                                   "allow", "policy_allow")
        gc = harness.verify_grant(body["grant"], jwks)
        GRANT.validate(gc)
        self.assertEqual(gc["args"], {})
        self.assertNotIn("amount", gc)
        self.assertEqual(body["args"], {})
        self.assertIsNone(body["amount"])


# ------------------------------------------------------ policy changes

class TestPolicyChange(BrokerCase):
    def test_put_policy_seen_at_next_decision(self):
        self.assertDecision(self.submit(self.pay, "crm.lookup"), 200,
                            "allow", "policy_allow")
        p = extended_policy()
        p["roles"]["payments-agent"]["rules"][1] = {
            "tool": "crm.lookup", "approvals": 1,
            "approvers": ["finance-approver"]}
        olga = self.broker.client("operator-olga")
        try:
            # not an operator
            st, _, body = self.pay.request("PUT", "/v1/policy",
                                           body=json.dumps(p),
                                           content_type="application/json")
            self.assertEqual((st, body.get("error")), (403, "forbidden"),
                             body)
            # invalid
            bad = copy.deepcopy(p)
            bad["principals"]["agent-payments"]["roles"] = ["ghost"]
            st, _, body = olga.request("PUT", "/v1/policy",
                                       body=json.dumps(bad),
                                       content_type="application/json")
            self.assertEqual((st, body.get("error")),
                             (400, "invalid_policy"), body)
            ERROR.validate(body)
            self.assertTrue(any("principals" in pr["path"]
                                for pr in body["problems"]), body)
            self.assertDecision(self.submit(self.pay, "crm.lookup"), 200,
                                "allow", "policy_allow")
            # valid
            st, _, body = olga.request("PUT", "/v1/policy",
                                       body=json.dumps(p),
                                       content_type="application/json")
            self.assertEqual(st, 200, body)
            v = body["version"]
            self.assertEqual(v, 2)
            # very next decision, on the agent's (other-thread) connection
            got = self.assertDecision(self.submit(self.pay, "crm.lookup"),
                                      202, "pending", "approval_required",
                                      1)
            self.assertEqual(got["policy_version"], v)
            st, _, cur = olga.get("/v1/policy")
            self.assertEqual((st, cur["version"]), (200, v))
            self.assertEqual(cur["policy"], p)
        finally:
            olga.close()

        # offline apply while the broker runs
        p2 = extended_policy()
        p2["roles"]["payments-agent"]["rules"] = [
            r for r in p2["roles"]["payments-agent"]["rules"]
            if r["tool"] != "crm.lookup"]
        path = os.path.join(self.broker.dir, "p2.json")
        with open(path, "w") as f:
            json.dump(p2, f)
        r = self.broker.ctl_db("policy", "apply", path, audit_key=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.assertDecision(self.submit(self.pay, "crm.lookup"), 403,
                                  "deny", "no_permission")
        self.assertEqual(got["policy_version"], 3)


# ------------------------------------------------------------- restart

def audit_records(db):
    """The audit chain read straight from the database, checked
    independently:
    each stored record is the canonical form (proto/audit.md, recomputed
    by verify_audit) of {seq, at, actor, event, intent_id, details,
    format}; hash = SHA-256 of the previous hash's hex text followed by
    those bytes."""
    rows = harness.db_query(db, "SELECT seq, event, intent_id, record, "
                            "prev_hash, hash FROM audit ORDER BY seq")
    out = []
    prev = "0" * 64
    for i, (seq, event, intent_id, record, prev_hash, h) in enumerate(
            rows, 1):
        body = json.loads(record)
        canon = verify_audit.canonical_bytes(body).decode("utf-8")
        assert canon == record, "record %d is not canonical" % seq
        assert seq == i and body["seq"] == seq, "seq gap at %d" % seq
        assert (body["event"], body["intent_id"]) == (event, intent_id)
        assert prev_hash == prev, "record %d does not link" % seq
        assert hashlib.sha256((prev + record).encode()).hexdigest() == h, \
            "record %d hash" % seq
        rec = dict(body, prev_hash=prev_hash, hash=h)
        AUDIT.validate(rec)
        out.append(rec)
        prev = h
    return out


class TestRestart(unittest.TestCase):
    def test_restart_keeps_everything(self):
        with harness.Broker(policy=extended_policy()) as b:
            c = b.client("agent-payments")
            tok_allowed = c.sign(claims("agent-payments", "crm.lookup"))
            st, _, allowed = c.post_intent(tok_allowed)
            self.assertEqual(st, 200, allowed)
            st, _, pending = c.submit("payments.transfer",
                                      **payment("5000.00"))
            self.assertEqual(st, 202, pending)
            st, _, denied = c.submit("payments.refund", amount=usd("1.00"),
                                     args={"x": 1})
            self.assertEqual(st, 403, denied)

            b.restart()
            c = b.client("agent-payments")
            for want in (allowed, pending, denied):
                st, _, got = c.get("/v1/intents/" + want["id"])
                self.assertEqual(st, 200, got)
                DECISION.validate(got)
                self.assertEqual(got["status"], want["status"])
                self.assertEqual(got["intent_sha256"],
                                 want["intent_sha256"])
            st, _, body = c.post_intent(tok_allowed)
            self.assertEqual((st, body.get("error")), (409, "replay"))

            # an answer sent before a crash is found after it
            tok = c.sign(claims("agent-payments", "crm.lookup"))
            st, _, last = c.post_intent(tok)
            self.assertEqual(st, 200, last)
            b.kill9()
            b.restart()
            c = b.client("agent-payments")
            st, _, got = c.get("/v1/intents/" + last["id"])
            self.assertEqual((st, got.get("status")), (200, "allowed"))
            st, _, body = c.post_intent(tok)
            self.assertEqual((st, body.get("error")), (409, "replay"))
            b.stop()

            r = b.ctl_db("audit", "verify")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # 1 policy apply + 4 decisions
            self.assertRegex(r.stdout + r.stderr, r"\b5\b")
            recs = audit_records(b.db)
            self.assertEqual(len(recs), 5)
            self.assertEqual([r["intent_id"] for r in recs[1:]],
                             [allowed["id"], pending["id"], denied["id"],
                              last["id"]])
            self.assertEqual([r["event"] for r in recs],
                             ["policy.apply"] + ["decision"] * 4)
            b.start()

    def test_audit_export_is_the_chain(self):
        with harness.Broker(policy=extended_policy()) as b:
            c = b.client("agent-payments")
            st, _, d = c.submit("crm.lookup", args={"q": "caf\u00e9"})
            self.assertEqual(st, 200, d)
            r = b.ctl_db("audit", "export")
            self.assertEqual(r.returncode, 0, r.stderr)
            recs = [json.loads(line) for line in r.stdout.splitlines()
                    if line.strip()]
            self.assertEqual(recs, audit_records(b.db))
            r = b.ctl_db("audit", "export", "--after", "1")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([json.loads(x)["seq"] for x in
                              r.stdout.splitlines() if x.strip()], [2])


# ------------------------------------------------------ health, metrics

class TestHealthAndMetrics(BrokerCase):
    def test_healthz(self):
        st, _, body = self.pay.get("/healthz")
        self.assertEqual((st, body), (200, {"status": "ok"}))
        stranger = self.broker.client("agent-stranger")
        try:
            st, _, body = stranger.get("/healthz")
            self.assertEqual((st, body), (200, {"status": "ok"}))
        finally:
            stranger.close()

    def test_metrics_move(self):
        st, h, before = self.pay.get("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        self.assertIn("toolgate_request_seconds_bucket", before)
        self.submit(self.pay, "crm.lookup")
        self.submit(self.pay, "payments.transfer", **payment("5000.00"))
        self.submit(self.pay, "payments.refund")
        self.submit(self.pay, "payments.refund")
        tok = self.pay.sign(claims("agent-payments", "crm.lookup"))
        self.post(self.pay, tok)
        self.post(self.pay, tok)
        # another connection (maybe another thread): the sum still counts
        other = self.broker.client("agent-payments")
        try:
            st, _, after = other.get("/metrics")
        finally:
            other.close()
        for labels, delta in (('outcome="allow"', 2),
                              ('outcome="pending"', 1),
                              ('outcome="deny"', 2)):
            self.assertEqual(
                metric(after, "toolgate_decisions_total", labels) -
                metric(before, "toolgate_decisions_total", labels), delta,
                labels)
        self.assertEqual(
            metric(after, "toolgate_errors_total", 'code="replay"') -
            metric(before, "toolgate_errors_total", 'code="replay"'), 1)


class TestConcurrency(BrokerCase):
    def test_many_connections_deciding_at_once(self):
        # Both workers, and batches committing while the answers of
        # earlier ones are being built: every intent is answered, allowed,
        # with a grant of its own, and the broker lives on.
        threads, each = 32, 40
        answers = [[] for _ in range(threads)]

        def agent(i):
            c = self.broker.client("agent-payments")
            for _ in range(each):
                st, _, body = c.submit("crm.lookup")
                answers[i].append((st, body))

        ts = [threading.Thread(target=agent, args=(i,))
              for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        got = [a for per in answers for a in per]
        self.assertEqual(len(got), threads * each)
        for st, body in got:
            self.assertEqual((st, body.get("status")), (200, "allowed"),
                             body)
            self.assertTrue(body.get("grant"), body)
        self.assertEqual(len({b["id"] for _, b in got}), threads * each)
        self.assertEqual(len({b["grant"] for _, b in got}), threads * each)
        st, _, _ = self.pay.get("/healthz")
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
