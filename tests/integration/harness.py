"""
harness: what every integration test needs to talk to a real toolgated over
real mutual TLS on a real SQLite file: a throw-away dev PKI (plus the odd
certificates the negative tests need), a Broker process per test class, an
mTLS HTTP client, and JWS signing/verification done independently of the
broker (Python's cryptography, not libjwt).

Environment (set by tests/meson.build; nothing is skipped when one is
missing — the harness fails loudly instead):
  TOOLGATE_SOURCE_ROOT   the source tree (scripts/, policies/, proto/)
  TOOLGATE_TEST_DAEMON   the toolgated binary under test
  TOOLGATE_TEST_CTL      the toolgatectl binary under test
and, set by scripts/test for its PostgreSQL pass:
  TOOLGATE_TEST_DB       a PostgreSQL URI (of a maintenance database such
                         as "postgres") of a cluster where the tests may
                         create databases: every Broker then gets a fresh
                         database of its own there instead of a SQLite
                         file (ENGINE says which).  Tests that inspect or
                         tamper with the SQLite file itself are marked
                         @sqlite_only with the reason.
"""

import atexit
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from cryptography.x509.oid import ExtensionOID, NameOID


def _env(name):
    v = os.environ.get(name)
    if not v:
        sys.stderr.write("harness: environment variable %s is not set; "
                         "run the integration tests through meson test "
                         "(or set it by hand)\n" % name)
        raise SystemExit(2)
    return v


ROOT = _env("TOOLGATE_SOURCE_ROOT")
DAEMON = _env("TOOLGATE_TEST_DAEMON")
CTL = _env("TOOLGATE_TEST_CTL")

EXAMPLE_POLICY = os.path.join(ROOT, "policies", "example.json")

# The engine every Broker of this run uses: "sqlite" or "postgresql".
PG_BASE = os.environ.get("TOOLGATE_TEST_DB") or None
ENGINE = "postgresql" if PG_BASE else "sqlite"

# Sentinel for claims(): claims(..., exp=DELETE) drops the claim.
DELETE = object()

# Sentinel for Broker(policy=NO_POLICY): no policy applied before start.
NO_POLICY = object()


# ---------------------------------------------------------------- base64url

def b64url(data):
    """base64url without padding; str input is encoded as UTF-8."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, bytes):
        text = text.decode("ascii")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- PKI

_pki_dir = None
_pki_lock = threading.Lock()

_OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ client_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ uri_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://toolgate.test/agent-uri
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = expired_ca
[ expired_ca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
[ any_policy ]
commonName = supplied
"""


def _openssl(*args, cwd=None):
    p = subprocess.run(("openssl",) + args, cwd=cwd, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s%s" %
                           (" ".join(args), p.stdout, p.stderr))
    return p


def _leaf(d, cnf, base, cn, ext, newkey=("ec", "-pkeyopt",
                                          "ec_paramgen_curve:P-256"),
          ca="ca"):
    _openssl("req", "-x509", "-config", cnf, "-extensions", ext,
             "-newkey", *newkey, "-noenc",
             "-keyout", os.path.join(d, base + ".key"),
             "-out", os.path.join(d, base + ".pem"),
             "-subj", "/CN=" + cn, "-days", "30",
             "-CA", os.path.join(d, ca + ".pem"),
             "-CAkey", os.path.join(d, ca + ".key"))


def pki():
    """Path of the dev PKI, generated once per process.

    Besides what scripts/gen-dev-pki writes (ca, broker, grant.key and the
    seven demo identities):
      agent-rsa.pem/.key       RSA-2048 client, CN=agent-rsa, same CA
      agent-uri.pem/.key       EC client, CN=ignored-cn,
                               URI SAN spiffe://toolgate.test/agent-uri
      agent-stranger.pem/.key  EC client, same CA, CN not in any policy
      foreign/ca.pem           a second CA, and foreign/agent-payments.pem/.key
                               (CN=agent-payments) signed by it
      expired.pem/.key         CN=agent-payments, same CA, notAfter in the past
    """
    global _pki_dir
    with _pki_lock:
        if _pki_dir is not None:
            return _pki_dir
        d = tempfile.mkdtemp(prefix="toolgate-pki-")
        atexit.register(shutil.rmtree, d, True)
        p = subprocess.run([os.path.join(ROOT, "scripts", "gen-dev-pki"), d],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("gen-dev-pki failed (%d):\n%s%s" %
                               (p.returncode, p.stdout, p.stderr))
        cnf = os.path.join(d, "extra.cnf")
        with open(cnf, "w") as f:
            f.write(_OPENSSL_CNF.replace("{dir}", os.path.join(d, "expdb")))
        _leaf(d, cnf, "agent-rsa", "agent-rsa", "client_ext",
              newkey=("rsa:2048",))
        _leaf(d, cnf, "agent-uri", "ignored-cn", "uri_ext")
        _leaf(d, cnf, "agent-stranger", "agent-stranger", "client_ext")

        # A second CA, and a cert with a known name signed by it.
        fd = os.path.join(d, "foreign")
        os.mkdir(fd)
        _openssl("req", "-x509", "-config", cnf, "-extensions", "ca_ext",
                 "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-noenc", "-keyout", os.path.join(fd, "ca.key"),
                 "-out", os.path.join(fd, "ca.pem"),
                 "-subj", "/CN=foreign CA", "-days", "30")
        _leaf(fd, cnf, "agent-payments", "agent-payments", "client_ext")

        # An expired client certificate from the right CA: openssl ca
        # takes explicit -startdate/-enddate (OpenSSL 3.0 x509/req do not).
        ed = os.path.join(d, "expdb")
        os.mkdir(ed)
        open(os.path.join(ed, "index.txt"), "w").close()
        with open(os.path.join(ed, "serial"), "w") as f:
            f.write(secrets.token_hex(8) + "\n")
        _openssl("req", "-new", "-config", cnf, "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
                 "-keyout", os.path.join(d, "expired.key"),
                 "-out", os.path.join(ed, "expired.csr"),
                 "-subj", "/CN=agent-payments")
        _openssl("ca", "-batch", "-config", cnf, "-name", "expired_ca",
                 "-cert", os.path.join(d, "ca.pem"),
                 "-keyfile", os.path.join(d, "ca.key"),
                 "-extensions", "client_ext",
                 "-startdate", "20200101000000Z",
                 "-enddate", "20200201000000Z", "-notext",
                 "-in", os.path.join(ed, "expired.csr"),
                 "-out", os.path.join(d, "expired.pem"))
        _pki_dir = d
        return d


def cert_identity(cert_path):
    """The identity toolgate derives: first URI SAN, else subject CN."""
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


def public_key_pem(cert_path):
    """Exact PEM bytes (SubjectPublicKeyInfo) of a certificate's key."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return cert.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------------- JWS

def claims(iss, tool, **kw):
    """Intent claims: aud toolgate, random jti, iat now, exp now+60, tool,
    then kw (a value of DELETE, also for iss or tool, removes that
    claim)."""
    now = int(time.time())
    c = {"iss": iss, "aud": "toolgate", "jti": secrets.token_hex(16),
         "iat": now, "exp": now + 60, "tool": tool}
    kw = dict(kw)
    for k, v in list(c.items()) + list(kw.items()):
        if v is DELETE:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def _load_key(key_path):
    with open(key_path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def key_alg(key_path):
    """ES256 for an EC key, RS256 for RSA."""
    k = _load_key(key_path)
    return "RS256" if isinstance(k, rsa.RSAPrivateKey) else "ES256"


def sign(key_path, claims_or_bytes, alg="ES256", header=None, hmac_key=None):
    """Compact JWS over claims (dict, serialised compactly) or raw payload
    bytes.  ES256 (raw R||S), RS256 (PKCS#1 v1.5), HS256 (hmac_key bytes),
    or "none" (empty signature segment)."""
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
    if isinstance(claims_or_bytes, (bytes, bytearray)):
        payload = bytes(claims_or_bytes)
    else:
        payload = _json_bytes(claims_or_bytes)
    h = header if isinstance(header, (bytes, bytearray)) else \
        _json_bytes(header)
    signing_input = (b64url(h) + "." + b64url(payload)).encode("ascii")
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        if hmac_key is None:
            raise ValueError("HS256 needs hmac_key")
        sig = hmac.new(hmac_key, signing_input, hashlib.sha256).digest()
    elif alg == "ES256":
        k = _load_key(key_path)
        der = k.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "RS256":
        k = _load_key(key_path)
        sig = k.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError("sign: unsupported alg %r" % alg)
    return signing_input.decode("ascii") + "." + b64url(sig)


def jws_parts(token):
    """(header dict, payload bytes, signature bytes) of a compact JWS."""
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), b64url_decode(p), b64url_decode(s)


def verify_grant(token, jwks):
    """Verify an ES256 grant with the key named by its kid in jwks (the
    parsed /v1/jwks answer); return its claims or raise ValueError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("grant is not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    if header.get("alg") != "ES256":
        raise ValueError("grant alg is %r, not ES256" % header.get("alg"))
    kid = header.get("kid")
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == kid]
    if len(keys) != 1:
        raise ValueError("no single JWK with kid %r" % kid)
    jwk = keys[0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("JWK is not EC P-256")
    x = int.from_bytes(b64url_decode(jwk["x"]), "big")
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    sig = b64url_decode(parts[2])
    if len(sig) != 64:
        raise ValueError("ES256 signature is %d bytes, not 64" % len(sig))
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                               int.from_bytes(sig[32:], "big"))
    from cryptography.exceptions import InvalidSignature
    try:
        pub.verify(der, (parts[0] + "." + parts[1]).encode("ascii"),
                   ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("grant signature does not verify")
    return json.loads(b64url_decode(parts[1]))


def jwk_thumbprint(jwk):
    """RFC 7638 thumbprint of an EC JWK."""
    canon = '{"crv":"%s","kty":"EC","x":"%s","y":"%s"}' % (
        jwk["crv"], jwk["x"], jwk["y"])
    return b64url(hashlib.sha256(canon.encode()).digest())


# ------------------------------------------------------------------- client

class Client:
    """One keep-alive mTLS connection to the broker, reopened the way real
    HTTP clients (urllib3, browsers) do: a kept-alive connection the broker
    has closed meanwhile (idle-timeout) is noticed before it is reused, and
    a request that fails on a connection that sat idle is sent once more on
    a fresh one.  A connection in active use is never silently replaced, so
    a broker that drops it mid-conversation still fails the test."""

    # A reused connection idle for at least this long may have been closed
    # by the broker while the request was on its way: retry it once.
    RETRY_AFTER_IDLE = 1.0

    def __init__(self, port, ca, cert, key, timeout=30):
        self.port = port
        self.cert = cert
        self.key = key
        self.timeout = timeout
        self.identity = cert_identity(cert) if cert else None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(ca)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cert:
            ctx.load_cert_chain(cert, key)
        self.ctx = ctx
        self.conn = http.client.HTTPSConnection("127.0.0.1", port,
                                                context=ctx, timeout=timeout)
        self._answered_at = None   # end of the last complete answer

    def _dropped(self):
        """True when the kept-alive socket has been closed by the peer.
        After a complete answer nothing is due from the broker, so a
        readable socket means EOF (or junk): urllib3's is_connection_dropped.
        TLS 1.3 session tickets arrive before the first answer is read."""
        sock = self.conn.sock
        if sock is None or self._answered_at is None:
            return False
        try:
            r, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def _send(self, method, path, body, h):
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        return resp, resp.read()

    def request_raw(self, method, path, body=None, content_type=None,
                    headers=None):
        """(status, headers dict (lower-case names), body bytes as sent)."""
        h = dict(headers or {})
        if content_type is not None:
            h["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        if self._dropped():
            self.conn.close()
            self._answered_at = None
        idle = (time.monotonic() - self._answered_at
                if self._answered_at is not None and
                self.conn.sock is not None else None)
        try:
            try:
                resp, raw = self._send(method, path, body, h)
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                if idle is None or idle < self.RETRY_AFTER_IDLE:
                    raise
                self.conn.close()
                resp, raw = self._send(method, path, body, h)
        except Exception:
            self.conn.close()
            self._answered_at = None
            raise
        self._answered_at = time.monotonic()
        if resp.will_close:
            self.conn.close()
            self._answered_at = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw

    def request(self, method, path, body=None, content_type=None,
                headers=None):
        """(status, headers dict (lower-case names), JSON or text)."""
        status, rh, raw = self.request_raw(method, path, body, content_type,
                                           headers)
        text = raw.decode("utf-8", "replace")
        data = text
        if rh.get("content-type", "").split(";")[0].strip() in (
                "application/json", "application/jwk-set+json"):
            try:
                data = json.loads(text)
            except ValueError:
                data = text
        return status, rh, data

    def get(self, path):
        return self.request("GET", path)

    def post_intent(self, token):
        if isinstance(token, str):
            token = token.encode()
        return self.request("POST", "/v1/intents", body=token,
                            content_type="application/jose")

    def sign(self, claims_or_bytes, **kw):
        """Sign with this client's own key and its natural alg."""
        kw.setdefault("alg", key_alg(self.key))
        return sign(self.key, claims_or_bytes, **kw)

    def submit(self, tool="crm.lookup", **claims_overrides):
        """Sign claims(identity, tool, **overrides) with this client's key
        and post them.  Returns (status, headers, body)."""
        iss = claims_overrides.pop("iss", self.identity)
        c = claims(iss, tool, **claims_overrides)
        return self.post_intent(self.sign(c))

    def close(self):
        self.conn.close()
        self._answered_at = None


# ----------------------------------------------------------------- engines

def sqlite_only(reason):
    """Decorator: the test (or class) runs only on SQLite; reason says
    why it cannot be the same on PostgreSQL (it reads or tampers with the
    database file itself, say)."""
    import unittest
    return unittest.skipIf(ENGINE != "sqlite", "SQLite only: " + reason)


def pg_uri(base, dbname):
    """base (a postgresql:// URI) naming database dbname instead."""
    from urllib.parse import urlsplit, urlunsplit
    u = urlsplit(base)
    return urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query,
                       u.fragment))


def pg_connect(uri):
    """A psycopg2 connection (autocommit) to uri."""
    import psycopg2
    c = psycopg2.connect(uri)
    c.autocommit = True
    return c


def pg_create_database(base=None):
    """A fresh, empty database on base's cluster (PG_BASE by default):
    its URI.  pg_drop_database removes it."""
    base = base or PG_BASE
    name = "tg_" + secrets.token_hex(6)
    c = pg_connect(base)
    try:
        c.cursor().execute('CREATE DATABASE "%s" TEMPLATE template0 '
                           "ENCODING 'UTF8'" % name)
    finally:
        c.close()
    return pg_uri(base, name)


def pg_drop_database(uri, base=None):
    from urllib.parse import urlsplit
    name = urlsplit(uri).path.lstrip("/")
    c = pg_connect(base or PG_BASE)
    try:
        c.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' %
                           name)
    finally:
        c.close()


def db_query(db, sql, params=()):
    """Rows of one SELECT (or the result of one statement) on database db
    — a SQLite path or a PostgreSQL URI — with ? placeholders on both
    engines.  For the SQL both dialects share."""
    if db.startswith(("postgresql://", "postgres://")):
        c = pg_connect(db)
        try:
            cur = c.cursor()
            cur.execute(sql.replace("%", "%%").replace("?", "%s"),
                        tuple(params))
            return cur.fetchall() if cur.description else []
        finally:
            c.close()
    import sqlite3
    c = sqlite3.connect(db, timeout=30)
    try:
        with c:
            return c.execute(sql, tuple(params)).fetchall()
    finally:
        c.close()


# ------------------------------------------------------------------- broker

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A toolgated on 127.0.0.1:PORT with its own database, as a context
    manager.  The policy (None → policies/example.json, a dict, or a file
    path) is applied offline with toolgatectl --db before the first start.
    flags replace (or add) flags of the usual command line, {"--cert": X};
    a value of None drops that flag."""

    def __init__(self, policy=None, threads=2, audience=None, extra_args=(),
                 flags=None, db=None):
        self.flags = dict(flags or {})
        self.pki = pki()
        self.dir = tempfile.mkdtemp(prefix="toolgate-broker-")
        # db: a SQLite file, or a fresh PostgreSQL database of its own;
        # a Broker given another's db shares that database (several
        # brokers on one PostgreSQL: test_multibroker).
        self.own_db = db is None
        if db is not None:
            self.db = db
        elif ENGINE == "postgresql":
            self.db = pg_create_database()
        else:
            self.db = os.path.join(self.dir, "toolgate.db")
        self.threads = threads
        self.audience = audience
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.audit_key = os.path.join(self.pki, "audit.key")
        # The broker's audit anchor: a file of its own, outside the
        # database (proto/audit.md); beside a SQLite file by default.
        if ENGINE == "postgresql" or not self.own_db:
            self.anchor = os.path.join(self.dir, "toolgate.anchor")
            self.flags.setdefault("--audit-anchor", self.anchor)
        else:
            self.anchor = self.db + ".anchor"
        self.proc = None
        self._lines = []
        self._lines_lock = threading.Lock()
        self._listening = threading.Event()
        self._reader = None
        self._clients = []
        if policy is None or policy is NO_POLICY:
            policy_file = EXAMPLE_POLICY
        elif isinstance(policy, dict):
            policy_file = os.path.join(self.dir, "policy.json")
            with open(policy_file, "w") as f:
                json.dump(policy, f, indent=1)
        else:
            policy_file = policy
        self.policy_file = policy_file
        if not self.own_db or policy is NO_POLICY:
            return      # the database's first Broker applied one
        p = subprocess.run([CTL, "--db", self.db, "--audit-key",
                            self.audit_key, "policy", "apply",
                            policy_file], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            self._remove()
            raise AssertionError("toolgatectl --db policy apply %s exited "
                                 "%d:\n%s%s" % (policy_file, p.returncode,
                                                p.stdout, p.stderr))

    # -- process

    def _argv(self):
        k = self.pki
        argv = [DAEMON, "--listen", "127.0.0.1:%d" % self.port,
                "--db", self.db,
                "--ca", os.path.join(k, "ca.pem"),
                "--cert", os.path.join(k, "broker.pem"),
                "--key", os.path.join(k, "broker.key"),
                "--grant-key", os.path.join(k, "grant.key"),
                "--audit-key", self.audit_key,
                "--threads", str(self.threads), "--log-level", "info"]
        if self.audience is not None:
            argv += ["--audience", self.audience]
        for flag, value in self.flags.items():
            if flag in argv:
                i = argv.index(flag)
                if value is None:
                    del argv[i:i + 2]
                else:
                    argv[i + 1] = value
            elif value is not None:
                argv += [flag, value]
        return argv + list(self.extra_args)

    def _read(self, proc, listening):
        for line in proc.stderr:
            with self._lines_lock:
                self._lines.append(line.rstrip("\n"))
            if "listening on" in line:
                listening.set()
        proc.stderr.close()     # EOF: the daemon has exited

    def start(self, timeout=10):
        """Start it; AssertionError unless it listens within timeout s."""
        assert self.proc is None or self.proc.poll() is not None
        self._listening = threading.Event()
        self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     errors="replace")
        self._reader = threading.Thread(target=self._read,
                                        args=(self.proc, self._listening),
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise AssertionError("toolgated exited %d before listening:"
                                     "\n%s" % (self.proc.returncode,
                                               "\n".join(self.log_lines())))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("toolgated did not print 'listening "
                                     "on' within %d s:\n%s" % (timeout,
                                     "\n".join(self.log_lines())))
        return self

    def _close_clients(self):
        for c in self._clients:
            c.close()
        self._clients = []

    def stop(self):
        """SIGTERM, wait, and require exit status 0."""
        self._close_clients()
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            self.proc = None
            if rc not in (None, 0):
                raise AssertionError("toolgated had already exited %d:\n%s"
                                     % (rc, "\n".join(self.log_lines())))
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("toolgated did not exit within 15 s of "
                                 "SIGTERM")
        self._reader.join(5)
        self.proc = None
        if rc != 0:
            raise AssertionError("toolgated exited %d on SIGTERM:\n%s" %
                                 (rc, "\n".join(self.log_lines())))
        # A connection that outgrows its statement cache re-prepares its
        # statements: the store says so, and it is a bug in the store.
        full = [ln for ln in self.log_lines() if "statement cache full" in ln]
        if full:
            raise AssertionError("toolgated: " + full[0])

    def kill9(self):
        self._close_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(5)
        self.proc = None

    def restart(self):
        """Stop (unless already killed) and start again, same port and db."""
        if self.proc is not None:
            self.stop()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_lines(self):
        with self._lines_lock:
            return list(self._lines)

    def wait_log(self, pattern, start=0, timeout=20):
        """The first log line from index start on that matches the regular
        expression pattern; AssertionError after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines()[start:]:
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError("no log line matching %r within %d s:\n%s" %
                             (pattern, timeout,
                              "\n".join(self.log_lines()[start:])))

    def hup(self):
        """SIGHUP; returns the reload's log line once it is there."""
        n = len(self.log_lines())
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_log("SIGHUP", n)

    def start_fails(self):
        """Run toolgated with this broker's flags, expecting it to stop
        before listening: the finished process (stderr captured)."""
        return subprocess.run(self._argv(), capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def _remove(self):
        """Remove the temp dir, and the database when it is this
        Broker's own PostgreSQL database."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.own_db and ENGINE == "postgresql":
            self.own_db = False
            pg_drop_database(self.db)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._remove()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
            else:
                self.kill9()
        finally:
            self._remove()
        return False

    def query(self, sql, params=()):
        """db_query on this broker's database."""
        return db_query(self.db, sql, params)

    def hold_write_lock(self):
        """Take the database's write lock from outside the broker, as
        another writer would: SQLite's exclusive lock, PostgreSQL's lock
        on the audit chain's head row.  Returns the function that lets it
        go."""
        if ENGINE == "postgresql":
            c = pg_connect(self.db)
            c.autocommit = False
            c.cursor().execute("SELECT 1 FROM audit_head FOR UPDATE")
            release = c.commit
        else:
            import sqlite3
            c = sqlite3.connect(self.db, isolation_level=None, timeout=30)
            c.execute("BEGIN EXCLUSIVE")

            def release():
                c.execute("COMMIT")

        def done():
            try:
                release()
            finally:
                c.close()
        return done

    # -- talking to it

    def client(self, name, ca=None, cert=None, key=None, timeout=30):
        """An mTLS client for identity name (pki/NAME.pem/.key) unless cert
        and key are given; name None and no cert: no client certificate."""
        k = self.pki
        if cert is None and name is not None:
            cert = os.path.join(k, name + ".pem")
        if key is None and name is not None:
            key = os.path.join(k, name + ".key")
        c = Client(self.port, ca or os.path.join(k, "ca.pem"), cert, key,
                   timeout=timeout)
        self._clients.append(c)
        return c

    def ctl(self, *args, identity="agent-payments", check=False, input=None,
            timeout=30):
        k = self.pki
        argv = [CTL, "--url", self.url, "--ca", os.path.join(k, "ca.pem"),
                "--cert", os.path.join(k, identity + ".pem"),
                "--key", os.path.join(k, identity + ".key")] + list(args)
        return subprocess.run(argv, capture_output=True, text=True,
                              check=check, input=input, timeout=timeout)

    def ctl_db(self, *args, check=False, input=None, timeout=30,
               audit_key=False):
        """toolgatectl --db DB ... (offline); with audit_key, also
        --audit-key (the broker's): what widens what is allowed needs it."""
        key = ["--audit-key", self.audit_key] if audit_key else []
        return subprocess.run([CTL, "--db", self.db] + key + list(args),
                              capture_output=True, text=True, check=check,
                              input=input, timeout=timeout)


class BrokerCase:
    """Mixin for a unittest.TestCase whose tests share one Broker(policy)
    started for the class: self.broker."""
    policy = None

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(policy=cls.policy)
        cls.broker.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.broker.__exit__(None, None, None)


def wait_until(pred, what="condition", timeout=30.0):
    """pred()'s first true value, polled every 0.1 s; AssertionError
    naming what after timeout seconds (a condition, never a fixed
    sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %.0f s waiting for %s" %
                         (timeout, what))


class ExitAsserts:
    """Mixin for a unittest.TestCase running toolgatectl."""

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, wanted %d\nstdout: "
                         "%s\nstderr: %s" % (p.returncode, code, p.stdout,
                                             p.stderr))
# ----------------------------------------------------------------- receivers

class Receiver:
    """A webhook receiver on 127.0.0.1 for the notify sinks (CONTRACT
    §10): plain HTTP, or HTTPS with the dev PKI's broker certificate
    (SAN 127.0.0.1, so a sink with ca=pki/ca.pem verifies it).  Every
    request is recorded as a dict {mode, path, headers (lower-case
    names), body (bytes), at (monotonic)}; how it is answered is
    self.mode, changeable at any time:
      ok        200, keep-alive (HTTP/1.1)
      fail      500
      redirect  302 to another URL (must not be followed)
      hang      read the request, never answer (until stop())
      reset     read the request, close the connection with a TCP reset
    stop() closes the port (connections refused); start() opens it
    again on the same port."""

    def __init__(self, tls=False, mode="ok", port=None):
        self.tls = tls
        self.mode = mode
        self.port = port or free_port()
        self.requests = []
        self.lock = threading.Lock()
        self.hanging = 0            # requests held unanswered now
        self._release = threading.Event()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d/hook/path?token=s3cret" % (
            "https" if self.tls else "http", self.port)

    def start(self):
        import http.server
        import struct
        receiver = self
        self._release.clear()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                if receiver.tls:
                    self.request.do_handshake()
                super().setup()

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                mode = receiver.mode
                with receiver.lock:
                    receiver.requests.append({
                        "mode": mode, "path": self.path,
                        "headers": {k.lower(): v
                                    for k, v in self.headers.items()},
                        "body": body, "at": time.monotonic()})
                if mode == "hang":
                    with receiver.lock:
                        receiver.hanging += 1
                    receiver._release.wait(120)
                    with receiver.lock:
                        receiver.hanging -= 1
                    self.close_connection = True
                    return
                if mode == "reset":
                    self.request.setsockopt(socket.SOL_SOCKET,
                                            socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                    self.close_connection = True
                    raise ConnectionResetError("reset on purpose")
                code = {"ok": 200, "fail": 500, "redirect": 302}[mode]
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", "http://127.0.0.1:1/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def handle(self):
                try:
                    super().handle()
                except (ConnectionError, ssl.SSLError, OSError):
                    pass

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                if receiver.tls:
                    sock = receiver._ctx.wrap_socket(
                        sock, server_side=True,
                        do_handshake_on_connect=False)
                return sock, addr

            def handle_error(self, request, client_address):
                pass

        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            k = pki()
            ctx.load_cert_chain(os.path.join(k, "broker.pem"),
                                os.path.join(k, "broker.key"))
            self._ctx = ctx
        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def delivered(self):
        """The requests answered 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.requests if r["mode"] == "ok"]

    def events(self, type=None):
        """The envelopes delivered (2xx), parsed, optionally of one
        type."""
        evs = [json.loads(r["body"]) for r in self.delivered()]
        return [e for e in evs if type is None or e["type"] == type]

    def wait(self, pred, timeout=60, what="the receiver's condition"):
        """pred(self) true within timeout seconds, else AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return
            time.sleep(0.05)
        raise AssertionError("%s did not hold within %d s; requests: %s" %
                             (what, timeout, [(r["mode"], r["headers"].get(
                                 "toolgate-event")) for r in
                                 self.requests]))


def sink_verify(key, request):
    """True when a recorded request's Toolgate-Signature verifies with
    key, by proto/examples/receiver.py's verify()."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "receiver", os.path.join(ROOT, "proto", "examples", "receiver.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.verify(key, request["headers"].get("toolgate-signature"),
                      request["body"])


def payment(value, currency="USD", claim=False, **args):
    """Claims for a payments.transfer under policies/example.json, whose
    rule reads the amount from args /amount and /currency (amount_from,
    CONTRACT §8.1): {"args": {"amount": value, "currency": currency,
    **args}}, plus the equal "amount" claim when claim is true.  Pass as
    client.submit("payments.transfer", **payment("5000.00"))."""
    kw = {"args": dict(args, amount=value, currency=currency)}
    if claim:
        kw["amount"] = {"value": value, "currency": currency}
    return kw


def schema(name):
    """A draft 2020-12 validator for proto/NAME."""
    from jsonschema import Draft202012Validator
    with open(os.path.join(ROOT, "proto", name)) as f:
        return Draft202012Validator(json.load(f))


def load_example_policy():
    with open(EXAMPLE_POLICY) as f:
        return json.load(f)


def without_limits(policy=None):
    """policy (a dict; default policies/example.json) without its
    cumulative limits, for tests that pile up pending payments of 5000 to
    50000 USD, which the demo's payments-daily limit (20000.00 USD per
    agent per day) would stop: test_limits tests the limits."""
    p = load_example_policy() if policy is None else json.loads(
        json.dumps(policy))
    p.pop("limits", None)
    return p
