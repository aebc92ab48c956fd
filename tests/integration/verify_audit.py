#!/usr/bin/env python3
"""
verify_audit: an independent verifier of a toolgate audit chain, written
from proto/audit.md alone.  It uses no toolgate code and nothing of the
test harness: its own RFC 8785 (JCS) serializer, its own rendering of the
older format 1, Python's json parser and hashlib.

Usage:
    toolgatectl audit export | verify_audit.py
    verify_audit.py EXPORT.jsonl

Reads JSON lines (one audit record each, as `toolgatectl audit export` or
GET /v1/audit gives them), recomputes each record's canonical bytes and
hash, and checks the chain from the genesis hash.  Exit 0 and
"audit chain OK: N records", or exit 1 and "audit chain BROKEN at record
N: why" for the first record that does not verify; 2 for usage errors.

As a module: canonical_bytes(body), jcs(value), legacy(value),
verify(records), split_lines(data) and read_records(lines) are what the
tests use.
"""

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


def verify(records):
    """Check the whole chain from the genesis hash; the record count, or
    raise Broken for the first record that does not verify."""
    prev = GENESIS
    last_format = 0
    for seq, rec in enumerate(records, 1):
        _check_shape(rec, seq)
        if rec["prev_hash"] != prev:
            raise Broken(seq, "prev_hash is not the previous record's hash")
        body = {k: v for k, v in rec.items()
                if k not in ("prev_hash", "hash")}
        fmt = 2 if "format" in body else 1
        if fmt < last_format:
            raise Broken(seq, "a format 1 record follows a format 2 record")
        last_format = fmt
        try:
            data = canonical_bytes(body)
        except ValueError as e:
            raise Broken(seq, str(e))
        h = hashlib.sha256(prev.encode("ascii") + data).hexdigest()
        if h != rec["hash"]:
            raise Broken(seq, "hash does not match the record's contents")
        prev = h
    return len(records)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        sys.stderr.write("usage: verify_audit.py [EXPORT.jsonl]  (default: "
                         "standard input)\n")
        return 2
    try:
        if len(argv) == 2:
            with open(argv[1], "rb") as f:
                data = f.read()
        else:
            data = sys.stdin.buffer.read()
        lines = split_lines(data)
    except (OSError, UnicodeDecodeError) as e:
        sys.stderr.write("verify_audit: %s\n" % e)
        return 2
    try:
        n = verify(read_records(lines))
    except Broken as e:
        print("audit chain BROKEN at record %d: %s" % (e.seq, e.why))
        return 1
    print("audit chain OK: %d record%s" % (n, "" if n == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
