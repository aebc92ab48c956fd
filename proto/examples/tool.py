#!/usr/bin/python3
"""
tool.py: how a tool service accepts a toolgate grant, in full — fetch the
broker's JWKS over mutual TLS with the tool's own client certificate,
verify the grant (ES256 only, aud = this tool, iss = toolgate, not
expired), redeem it once, and only then execute exactly the grant's args.
Debian packages only: python3 and python3-jwt (PyJWT, with
python3-cryptography).  Run by the integration suite
(tests/integration/test_examples.py) against a real broker.

    tool.py --url https://127.0.0.1:8443 --ca ca.pem \\
        --cert tool-payments.pem --key tool-payments.key \\
        --tool payments.transfer GRANT

Prints {"executed": TOOL, "args": ..., "amount": ..., "agent": ...} on
stdout once executed.  Exit status: 0 executed, 1 refused (the grant does
not verify, is for another tool, was redeemed before, or a kill switch
covers it), 3 the broker could not be reached.
"""

import argparse
import http.client
import json
import ssl
import sys
import urllib.parse

import jwt

ISSUER = "toolgate"


class Broker:
    """mTLS to the broker with the tool's certificate.  PyJWKClient (in
    Debian's PyJWT) cannot present a client certificate, and the broker
    answers nothing without one: the JWKS is fetched here instead."""

    def __init__(self, url, ca, cert, key):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_verify_locations(ca)
        self.ctx.load_cert_chain(cert, key)

    def request(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.port,
                                           context=self.ctx, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()


class Refused(Exception):
    pass


def verify(token, jwks, tool):
    """The grant's claims, or Refused.  The algorithm is pinned to ES256
    (never taken from the token), the key is the JWK named by the token's
    kid, and aud must be this tool: a grant for another tool is no use
    here even when its signature is good."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in jwks.get("keys", []) if k.get("kid") == kid]
        if len(keys) != 1:
            raise Refused("no key %r in the broker's JWKS" % kid)
        key = jwt.PyJWK(keys[0], algorithm="ES256").key
        claims = jwt.decode(token, key, algorithms=["ES256"], audience=tool,
                            issuer=ISSUER, options={"require": [
                                "exp", "iat", "iss", "aud", "sub", "jti"]})
    except jwt.PyJWTError as e:
        raise Refused("grant does not verify: %s" % e)
    if claims.get("tool") != tool:
        raise Refused("grant is for %r, not %r" % (claims.get("tool"), tool))
    return claims


def redeem(broker, token):
    """Spend the grant at the broker, once: a second redemption, or one
    while a kill switch covers it, is refused there."""
    status, answer = broker.request("POST", "/v1/grants/redeem",
                                    json.dumps({"grant": token}).encode())
    if status != 200:
        raise Refused("redeem: %s: %s" % (answer.get("error"),
                                           answer.get("message")))
    return answer


def execute(tool, claims):
    """The tool's real work goes here.  It uses the grant's args and
    amount only — never arguments that came another way: those are what
    the policy (and perhaps a human) approved."""
    return {"executed": tool, "args": claims.get("args", {}),
            "amount": claims.get("amount"), "agent": claims["sub"],
            "intent": claims["jti"], "approvers": claims.get("approvers")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--tool", required=True, help="the tool this service is")
    ap.add_argument("grant")
    args = ap.parse_args()

    broker = Broker(args.url, args.ca, args.cert, args.key)
    try:
        status, jwks = broker.request("GET", "/v1/jwks")
        if status != 200:
            raise Refused("GET /v1/jwks answered %d" % status)
        claims = verify(args.grant, jwks, args.tool)
        redeem(broker, args.grant)
    except Refused as e:
        print("tool.py: refused: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ssl.SSLError, http.client.HTTPException) as e:
        print("tool.py: %s: %s" % (args.url, e), file=sys.stderr)
        return 3
    print(json.dumps(execute(args.tool, claims), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
