"""
test_jcs: the broker's canonical JSON against an independent implementation.

verify_audit.py carries its own RFC 8785 (JCS) serializer and its own
rendering of the older format 1, written from proto/audit.md.  Here that
serializer is first held to RFC 8785's own vectors (Appendix B and the
samples of section 3.2), then compared byte for byte with the broker's
canon_dump / canon_dump_legacy (the canon-dump helper) on tens of
thousands of random values: doubles from random bits and from decimal
text, integers around 2^53, strings and member names drawn from the
characters where the forms differ (controls, quote, backslash, DEL,
U+2028, U+E000-U+FFFF against characters above U+FFFF).  Needs no daemon.
"""

import json
import os
import random
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_audit  # noqa: E402

CANON_DUMP = os.environ.get("TOOLGATE_TEST_CANON_DUMP")
if not CANON_DUMP:
    sys.stderr.write("test_jcs: TOOLGATE_TEST_CANON_DUMP is not set; run "
                     "it through meson test\n")
    raise SystemExit(2)

MAX_SAFE = 2 ** 53

# RFC 8785 Appendix B: IEEE 754 bits and the JSON text ES6 writes.
APPENDIX_B = [
    ("0000000000000000", "0"), ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"), ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

CHARS = (["a", "b", "A", "z", "0", " ", '"', "\\", "/", "~", "\x7f",
          "\u00e9", "\u2028", "\u20ac", "\ue000", "\ufb33", "\uffff",
          "\U00010000", "\U0001f600", "\U0010ffff"] +
         [chr(c) for c in range(1, 0x20)])


def from_bits(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]


def refused_by_jcs_writer(v):
    """What canon_dump refuses (proto/audit.md, Numbers): an integer above
    2^53, or a real whose RFC 8785 form is an integer literal above it."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return False
    if isinstance(v, int):
        return abs(v) > MAX_SAFE
    if isinstance(v, float):
        return MAX_SAFE < abs(v) < 1e21
    items = v.values() if isinstance(v, dict) else v
    return any(refused_by_jcs_writer(x) for x in items)


class Rng:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def double(self):
        k = self.r.randrange(6)
        if k == 0:
            while True:
                d = struct.unpack(">d", self.r.getrandbits(64).to_bytes(
                    8, "big"))[0]
                if d == d and abs(d) != float("inf"):
                    return d
        if k == 1:
            return float(self.r.choice((-1, 1)) *
                         2.0 ** self.r.randrange(-1074, 1024))
        if k == 2:              # decimal text of few digits, any exponent
            while True:
                digits = str(self.r.randrange(1, 10 ** self.r.randrange(
                    1, 18)))
                d = float("%s%se%d" % (self.r.choice(("", "-")), digits,
                                       self.r.randrange(-340, 300)))
                if abs(d) != float("inf"):
                    return d
        if k == 3:              # the edges of plain notation
            return self.r.choice((1e21, 1e-7, 1e-6, 9.999999999999999e20,
                                  1e20, 123e-9, 0.1, -0.0, 0.5, 2.5e-324))
        if k == 4:
            return self.r.uniform(-1e6, 1e6)
        return float(self.r.randrange(-2 ** 60, 2 ** 60))

    def integer(self):
        return self.r.choice((0, 1, -1, MAX_SAFE, -MAX_SAFE, MAX_SAFE + 1,
                              2 ** 63 - 1, -2 ** 63,
                              self.r.randrange(-MAX_SAFE, MAX_SAFE)))

    def string(self):
        return "".join(self.r.choice(CHARS)
                       for _ in range(self.r.randrange(6)))

    def value(self, depth=0):
        k = self.r.randrange(6 if depth > 3 else 8)
        if k == 0:
            return self.r.choice((None, True, False))
        if k == 1:
            return self.integer()
        if k in (2, 3):
            return self.double()
        if k in (4, 5):
            return self.string()
        if k == 6:
            return [self.value(depth + 1)
                    for _ in range(self.r.randrange(5))]
        return {self.string(): self.value(depth + 1)
                for _ in range(self.r.randrange(7))}


def run_canon_dump(texts, legacy=False):
    argv = [CANON_DUMP] + (["--legacy"] if legacy else [])
    p = subprocess.run(argv, input="".join(t + "\n" for t in texts)
                       .encode("utf-8"), capture_output=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("canon-dump exited %d: %s" %
                             (p.returncode, p.stderr))
    lines = p.stdout.split(b"\n")
    assert lines[-1] == b""
    return lines[:-1]


class TestReferenceVectors(unittest.TestCase):
    """The Python serializer against RFC 8785's own examples."""

    def test_appendix_b_numbers(self):
        for bits, want in APPENDIX_B:
            with self.subTest(bits=bits):
                self.assertEqual(verify_audit.jcs(from_bits(bits)), want)
        for bits in ("7fffffffffffffff", "7ff0000000000000"):
            with self.assertRaises(ValueError):
                verify_audit.jcs(from_bits(bits))

    def test_sample_object(self):
        text = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, '
                '0.000000000000000000000000001], "string": '
                '"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                ' "literals": [null, true, false]}')
        self.assertEqual(
            verify_audit.jcs(json.loads(text)),
            '{"literals":[null,true,false],"numbers":[333333333.3333333,'
            '1e+30,4.5,0.002,1e-27],"string":"\u20ac$\\u000f\\nA\'B\\"'
            '\\\\\\\\\\"/"}')

    def test_sorting_example(self):
        obj = {"\u20ac": "Euro Sign", "\r": "Carriage Return",
               "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One",
               "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
               "\u00f6": "Latin Small Letter O With Diaeresis"}
        self.assertEqual(
            [k for k in json.loads(verify_audit.jcs(obj))],
            ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600",
             "\ufb33"])


class TestAgainstBroker(unittest.TestCase):
    """canon_dump and canon_dump_legacy agree with the Python forms."""

    def compare(self, values, legacy):
        texts = [json.dumps(v, ensure_ascii=True) for v in values]
        got = run_canon_dump(texts, legacy=legacy)
        self.assertEqual(len(got), len(values))
        bad = []
        for v, text, out in zip(values, texts, got):
            if legacy:
                want = verify_audit.legacy(v).encode("utf-8")
            elif refused_by_jcs_writer(v):
                want = b"!"
            else:
                want = verify_audit.jcs(v).encode("utf-8")
            if out != want:
                bad.append("%s\n  broker: %r\n  python: %r" % (text, out,
                                                               want))
        self.assertEqual(bad[:5], [], "%d of %d differ" % (len(bad),
                                                          len(values)))

    def test_rfc8785_vectors_through_the_broker(self):
        self.compare([from_bits(b) for b, _ in APPENDIX_B
                      if not MAX_SAFE < abs(from_bits(b)) < 1e21], False)

    def test_every_power_of_two(self):
        self.compare([2.0 ** e for e in range(-1074, 1024)] +
                     [-(2.0 ** e) for e in range(-1074, 1024, 7)], False)

    def test_random_numbers(self):
        r = Rng(8785)
        self.compare([r.double() for _ in range(20000)] +
                     [r.integer() for _ in range(2000)], False)

    def test_random_values(self):
        r = Rng(6901)
        self.compare([r.value() for _ in range(5000)], False)

    def test_random_values_in_format_1(self):
        r = Rng(2014)
        self.compare([r.value() for _ in range(5000)] +
                     [r.double() for _ in range(5000)], True)


if __name__ == "__main__":
    unittest.main()
