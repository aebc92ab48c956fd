#!/usr/bin/python3
"""
agent.py: how an agent talks to toolgate, in full — sign an intent with
the key of its own client certificate, submit it over mutual TLS, and
long-poll while a human decides.  Debian packages only: python3 and
python3-jwt (PyJWT, with python3-cryptography).  Run by the integration
suite (tests/integration/test_examples.py) against a real broker.

    agent.py --url https://127.0.0.1:8443 --ca ca.pem \\
        --cert agent-payments.pem --key agent-payments.key \\
        --tool payments.transfer \\
        --args '{"to": "acct-1", "amount": "800.00", "currency": "USD"}' \\
        --reason "invoice 42" --wait 300

Prints the final intent view (JSON) on stdout; with a grant once allowed.
Exit status: 0 allowed, 1 refused (denied, rejected, expired, or an error
answer), 3 the broker could not be reached, 4 still pending.
"""

import argparse
import http.client
import json
import secrets
import ssl
import sys
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

LONG_POLL_MAX = 60          # the broker holds a GET ?wait= at most 60 s


def identity(cert_path):
    """Who the broker will say we are: the certificate's first URI SAN,
    else its subject CN.  It must be the intent's iss."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    try:
        san = cert.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        if uris:
            return uris[0]
    except x509.ExtensionNotFound:
        pass
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def signing_key(key_path):
    """The private key and the one algorithm the broker accepts for it:
    ES256 for EC P-256, RS256 for RSA (2048 bits or more)."""
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey) and \
            key.curve.name == "secp256r1":
        return key, "ES256"
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key, "RS256"
    raise SystemExit("agent.py: %s cannot sign intents (need EC P-256 or "
                     "RSA >= 2048)" % key_path)


def intent(args, iss):
    """The intent's claims (proto/intent-claims.schema.json)."""
    now = int(time.time())
    claims = {"iss": iss, "aud": args.audience, "iat": now, "exp": now + 60,
              "jti": secrets.token_hex(16),     # unique per intent
              "tool": args.tool}
    if args.args is not None:
        claims["args"] = json.loads(args.args)
    if args.amount is not None:
        # a decimal string, exactly as meant: never a float
        claims["amount"] = {"value": args.amount, "currency": args.currency}
    if args.reason is not None:
        claims["reason"] = args.reason
    return claims


class Broker:
    """One keep-alive mTLS connection; reconnects like any HTTP client."""

    def __init__(self, url, ca, cert, key):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https":
            raise SystemExit("agent.py: --url must be https://")
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_verify_locations(ca)      # the broker's CA only
        self.ctx.load_cert_chain(cert, key)     # who we are
        self.conn = None

    def request(self, method, path, body=None, ctype=None, timeout=30):
        """(status, decoded JSON answer)."""
        headers = {"Content-Type": ctype} if ctype else {}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.ctx, timeout=timeout)
            self.conn.timeout = timeout
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, json.loads(resp.read())
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                # the broker closed a keep-alive connection: retry once on
                # a new one (a re-sent intent is refused as a replay, never
                # decided twice)
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def follow(broker, view, seconds):
    """Long-poll the pending intent until it is decided or seconds pass."""
    deadline = time.monotonic() + seconds
    while view.get("status") == "pending":
        left = deadline - time.monotonic()
        if left <= 0:
            break
        wait = min(LONG_POLL_MAX, max(1, int(left)))
        status, view = broker.request(
            "GET", "/v1/intents/%s?wait=%d" % (view["id"], wait),
            timeout=wait + 10)
        if status != 200:
            break
    return view


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--args", help="a JSON object")
    ap.add_argument("--amount")
    ap.add_argument("--currency")
    ap.add_argument("--reason")
    ap.add_argument("--audience", default="toolgate")
    ap.add_argument("--wait", type=int, default=0,
                    help="seconds to wait for a human decision")
    args = ap.parse_args()

    key, alg = signing_key(args.key)
    # The JWS is signed with the key of the certificate this connection
    # presents: the broker checks the signature against that certificate.
    token = jwt.encode(intent(args, identity(args.cert)), key, algorithm=alg)
    broker = Broker(args.url, args.ca, args.cert, args.key)
    try:
        status, view = broker.request("POST", "/v1/intents", token.encode(),
                                      "application/jose")
        if status == 202 and args.wait > 0:
            print("pending %s: waiting up to %d s" % (view["id"], args.wait),
                  file=sys.stderr, flush=True)
            view = follow(broker, view, args.wait)
    except (OSError, ssl.SSLError, http.client.HTTPException) as e:
        print("agent.py: %s: %s" % (args.url, e), file=sys.stderr)
        return 3
    print(json.dumps(view, indent=2))
    if "error" in view:
        print("agent.py: %s: %s" % (view["error"], view.get("message")),
              file=sys.stderr)
        return 1
    return {"allowed": 0, "pending": 4}.get(view.get("status"), 1)


if __name__ == "__main__":
    sys.exit(main())
