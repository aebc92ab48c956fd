#!/usr/bin/env python3
"""
verify_audit: an independent verifier of a toolgate audit chain, written
from proto/audit.md alone.  It uses no toolgate code and nothing of the
test harness: its own RFC 8785 (JCS) serializer, its own rendering of the
older format 1, Python's json parser and hashlib, and PyJWT (Debian's
python3-jwt) for checkpoints.

Usage:
    toolgatectl audit export | verify_audit.py
    verify_audit.py [--jwks JWKS.json] [--checkpoint CP.jws]... STREAM.jsonl

Reads a stream of JSON lines (proto/audit.md "Streams, archives and
cuts": records as `toolgatectl audit export` or GET /v1/audit give them,
an optional {"start": CHECKPOINT} first, {"checkpoint": CHECKPOINT}
lines, as an archive ends with), recomputes each record's canonical
bytes and hash, and checks the chain from the genesis hash or the start.
With --jwks (a saved GET /v1/jwks) every checkpoint's signature is
verified with PyJWT; each --checkpoint must name a record of the stream
with that record's hash.  Exit 0 and "audit chain OK: N records", or
exit 1 and "audit chain BROKEN at record N: why" (or "checkpoint FILE:
why"); 2 for usage errors.

As a module: canonical_bytes(body), jcs(value), legacy(value),
verify(records), verify_stream(lines, jwks, wanted), checkpoint_claims(
token, jwks), split_lines(data) and read_records(lines) are what the
tests use.
"""

import base64
import decimal
import hashlib
import json
import math
import re
import sys

GENESIS = "0" * 64
HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Broken(Exception):
    """The chain does not verify at record seq."""

    def __init__(self, seq, why):
        Exception.__init__(self, "record %d: %s" % (seq, why))
        self.seq = seq
        self.why = why


# ----------------------------------------------------------- RFC 8785

def _es_number(x):
    """ECMAScript Number::toString of a finite double (RFC 8785 3.2.2.3).

    repr() is the shortest decimal that reads back as x (the closest one
    when there are several); only its digits and exponent are used."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and infinities have no JSON form")
    if x == 0:
        return "0"                      # -0 too
    sign = "-" if x < 0 else ""
    t = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0")
    exp = t.exponent + (len(t.digits) - len(digits))
    k = len(digits)
    n = k + exp                         # x = 0.DIGITS * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mant = digits[0] + ("." + digits[1:] if k > 1 else "")
    return sign + mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))


_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
          "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s, hexfmt):
    out = ['"']
    for ch in s:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append("\\u" + format(ord(ch), hexfmt).rjust(4, "0"))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("a lone UTF-16 surrogate is not Unicode text")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(v):
    """RFC 8785 text of a parsed JSON value (str; encode as UTF-8)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return _es_number(float(v))     # JCS numbers are doubles
    if isinstance(v, str):
        return _string(v, "x")
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        # Names compared as arrays of UTF-16 code units: big-endian
        # UTF-16 bytes compare in that order.
        names = sorted(v, key=lambda k: k.encode("utf-16-be",
                                                 "surrogatepass"))
        return "{" + ",".join(_string(k, "x") + ":" + jcs(v[k])
                              for k in names) + "}"
    raise ValueError("not a JSON value: %r" % (v,))


# ----------------------------------------------------- format 1 (legacy)

def _legacy_real(x):
    """printf %.17g, ".0" when that has neither "." nor "e", and the
    exponent without "+" or leading zeros (jansson 2.14)."""
    t = "%.17g" % x
    if "." not in t and "e" not in t:
        t += ".0"
    m = re.match(r"^(.*e)([+-]?)0*(\d+)$", t)
    if m:
        t = m.group(1) + ("-" if m.group(2) == "-" else "") + m.group(3)
    return t


def legacy(v):
    """Format 1 text: compact, names sorted by their UTF-8 bytes, \\u00XX
    in capitals, integers exact, reals as _legacy_real."""
    if v is None or v is True or v is False:
        return jcs(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _legacy_real(v)
    if isinstance(v, str):
        return _string(v, "X")
    if isinstance(v, list):
        return "[" + ",".join(legacy(x) for x in v) + "]"
    if isinstance(v, dict):
        names = sorted(v, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(_string(k, "X") + ":" + legacy(v[k])
                              for k in names) + "}"
    raise ValueError("not a JSON value: %r" % (v,))


# ------------------------------------------------------------ the chain

def canonical_bytes(body):
    """The hashed bytes of one record body (a record without prev_hash
    and hash), in the form its "format" member names."""
    if "format" in body:
        f = body["format"]
        if type(f) is not int or f != 2:
            raise ValueError("unknown record format %r" % (f,))
        return jcs(body).encode("utf-8")
    return legacy(body).encode("utf-8")


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("member %r appears twice" % k)
        d[k] = v
    return d


def _no_constants(name):
    raise ValueError("%s is not JSON" % name)


def parse(line):
    """One JSON text, duplicate names and NaN/Infinity refused."""
    return json.loads(line, object_pairs_hook=_no_duplicates,
                      parse_constant=_no_constants)


def split_lines(data):
    """JSON lines of UTF-8 bytes, split at LF only: U+2028, U+2029 and
    the like appear unescaped inside strings (str.splitlines would cut
    records there)."""
    return [x.decode("utf-8") for x in data.split(b"\n")]


def read_records(lines):
    """The records of JSON lines (blank lines skipped); a line that is
    not JSON raises Broken for the record it would have been."""
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(parse(line))
        except ValueError as e:
            raise Broken(len(out) + 1, "not a JSON object: %s" % e)
    return out


_FIELDS = (("seq", int), ("at", str), ("actor", str), ("event", str),
           ("details", dict), ("prev_hash", str), ("hash", str))


def _check_shape(rec, seq):
    if not isinstance(rec, dict):
        raise Broken(seq, "not a JSON object")
    for name, kind in _FIELDS:
        if name not in rec or type(rec[name]) is not kind:
            raise Broken(seq, "%s is missing or not a %s" %
                         (name, kind.__name__))
    if "intent_id" not in rec or not (rec["intent_id"] is None or
                                      isinstance(rec["intent_id"], str)):
        raise Broken(seq, "intent_id is missing or not a string or null")
    if rec["seq"] != seq:
        raise Broken(seq, "sequence gap: seq is %r" % rec["seq"])
    if not HEX64.match(rec["prev_hash"]) or not HEX64.match(rec["hash"]):
        raise Broken(seq, "prev_hash and hash must be 64 lowercase hex "
                     "digits")


class Chain:
    """The chain as verified so far: the last record's seq and hash."""

    def __init__(self, seq=0, prev=GENESIS):
        self.seq = seq
        self.prev = prev
        self.last_format = 0
        self.count = 0
        self.seen = {}          # seq -> hash, for the wanted seqs

    def record(self, rec, wanted=()):
        seq = self.seq + 1
        _check_shape(rec, seq)
        if rec["prev_hash"] != self.prev:
            raise Broken(seq, "prev_hash is not the previous record's hash")
        body = {k: v for k, v in rec.items()
                if k not in ("prev_hash", "hash")}
        fmt = 2 if "format" in body else 1
        if fmt < self.last_format:
            raise Broken(seq, "a format 1 record follows a format 2 record")
        self.last_format = fmt
        try:
            data = canonical_bytes(body)
        except ValueError as e:
            raise Broken(seq, str(e))
        h = hashlib.sha256(self.prev.encode("ascii") + data).hexdigest()
        if h != rec["hash"]:
            raise Broken(seq, "hash does not match the record's contents")
        self.seq, self.prev = seq, h
        self.count += 1
        if seq in wanted:
            self.seen[seq] = h


def verify(records):
    """Check the whole chain from the genesis hash; the record count, or
    raise Broken for the first record that does not verify."""
    chain = Chain()
    for rec in records:
        chain.record(rec)
    return chain.count


# ---------------------------------------------------------- checkpoints

def _b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def checkpoint_claims(token, jwks=None):
    """The claims of a checkpoint: ES256, iss "toolgate", an integer seq,
    a 64-hex hash.  With jwks (a parsed JWK Set) the signature must verify
    with the key named by its kid (PyJWT); without, it is not checked.
    Raises ValueError."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(_b64url(parts[0]))
    if header.get("alg") != "ES256" or not isinstance(header.get("kid"),
                                                          str):
        raise ValueError("not ES256 with a kid")
    if jwks is None:
        claims = json.loads(_b64url(parts[1]))
    else:
        import jwt     # PyJWT: python3-jwt
        keys = [k for k in jwks.get("keys", [])
                if k.get("kid") == header["kid"]]
        if len(keys) != 1:
            raise ValueError("no key of the JWK Set has kid %r" %
                             header["kid"])
        try:
            claims = jwt.decode(token, key=jwt.PyJWK(keys[0]).key,
                                algorithms=["ES256"], issuer="toolgate",
                                options={"require": ["iss", "iat"]})
        except jwt.PyJWTError as e:
            raise ValueError("its signature or claims do not verify: %s" %
                             e)
    if claims.get("iss") != "toolgate" or type(claims.get("seq")) \
            is not int or claims["seq"] < 0 or \
            not HEX64.match(str(claims.get("hash"))):
        raise ValueError("not a toolgate checkpoint (iss, seq, hash)")
    return claims


def verify_stream(lines, jwks=None, wanted=()):
    """Check a stream (parsed lines): an optional start, records, and
    checkpoint lines.  Returns the Chain (its seen[] holds the hashes of
    the wanted seqs, its start the seq it began after), or raises
    Broken."""
    chain = Chain()
    chain.start = 0
    chain.ends_checked = False
    for n, line in enumerate(lines, 1):
        chain.ends_checked = False
        if isinstance(line, dict) and "start" in line:
            if n != 1 or len(line) != 1:
                raise Broken(chain.seq + 1, "a start line may only come "
                             "first, alone")
            try:
                c = checkpoint_claims(line["start"], jwks)
            except ValueError as e:
                raise Broken(1, "the start checkpoint: %s" % e)
            chain.seq, chain.prev, chain.start = c["seq"], c["hash"], c["seq"]
            if c["seq"] in wanted:
                chain.seen[c["seq"]] = c["hash"]
            continue
        if isinstance(line, dict) and "checkpoint" in line:
            if len(line) != 1:
                raise Broken(chain.seq, "a checkpoint line holds only the "
                             "checkpoint")
            try:
                c = checkpoint_claims(line["checkpoint"], jwks)
            except ValueError as e:
                raise Broken(chain.seq, "a checkpoint line: %s" % e)
            if (c["seq"], c["hash"]) != (chain.seq, chain.prev):
                raise Broken(chain.seq, "the checkpoint after this record "
                             "names another record or hash")
            chain.ends_checked = True
            continue
        chain.record(line, wanted)
    return chain


def judge(claims, chain):
    """None when chain holds the checkpoint's record with its hash, else
    what differs."""
    seq, h = claims["seq"], claims["hash"]
    got = GENESIS if seq == 0 else chain.seen.get(seq)
    if got == h:
        return None
    if got is not None:
        return ("record %d's hash is %s, not the checkpoint's: the chain was "
                "rewritten or replaced" % (seq, got))
    if seq > chain.seq:
        return ("the chain ends at record %d, before the checkpoint's record "
                "%d: truncated or rolled back" % (chain.seq, seq))
    return "record %d is before this stream's start" % seq


def main(argv):
    args, jwks_file, cps = list(argv[1:]), None, []
    try:
        while args and args[0].startswith("--"):
            opt = args.pop(0)
            if opt == "--jwks":
                jwks_file = args.pop(0)
            elif opt == "--checkpoint":
                cps.append(args.pop(0))
            else:
                raise IndexError
    except IndexError:
        args = ["-h"]
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        sys.stderr.write("usage: verify_audit.py [--jwks JWKS.json] "
                         "[--checkpoint CP.jws]... [STREAM.jsonl]  "
                         "(default: standard input)\n")
        return 2
    try:
        if args:
            with open(args[0], "rb") as f:
                data = f.read()
        else:
            data = sys.stdin.buffer.read()
        lines = split_lines(data)
        jwks = None
        if jwks_file:
            with open(jwks_file) as f:
                jwks = json.load(f)
        tokens = []
        for path in cps:
            with open(path) as f:
                tokens.append((path, f.read().strip()))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        sys.stderr.write("verify_audit: %s\n" % e)
        return 2
    try:
        claims = []
        for path, tok in tokens:
            try:
                claims.append((path, checkpoint_claims(tok, jwks)))
            except ValueError as e:
                print("checkpoint %s: %s" % (path, e))
                return 1
        chain = verify_stream(read_records(lines), jwks,
                              {c["seq"] for _, c in claims})
    except Broken as e:
        print("audit chain BROKEN at record %d: %s" % (e.seq, e.why))
        return 1
    for path, c in claims:
        why = judge(c, chain)
        if why:
            print("checkpoint %s: %s" % (path, why))
            return 1
    n = chain.count
    print("audit chain OK: %d record%s" % (n, "" if n == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
