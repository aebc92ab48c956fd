#!/usr/bin/python3
"""
receiver.py: a toolgate webhook receiver (proto/events.md).  verify() is
all a receiver needs: the ten lines that check Toolgate-Signature.  The
server around it prints each verified event's body on stdout, one a
line, answers 204, drops repeats by Toolgate-Delivery and answers 401 to
anything unsigned, mis-signed or stale.  Python's standard library only;
run by tests/integration/test_events.py as a real sink.

    receiver.py PORT KEYFILE      # KEYFILE: notify-secret-file's file
"""

import hashlib
import hmac
import http.server
import sys
import time


def verify(key, signature, body, now=None, window=300):
    """True when signature ("t=<unix>,v1=<hex>") is HMAC-SHA256(key,
    "<t>.<body>") over these exact body bytes, and t is within window
    seconds of now."""
    t, sep, v1 = (signature or "").partition(",v1=")
    if not sep or not t.startswith("t=") or not t[2:].isdigit():
        return False
    mac = hmac.new(key, t[2:].encode() + b"." + body, hashlib.sha256)
    fresh = abs((now or time.time()) - int(t[2:])) <= window
    return fresh and hmac.compare_digest(mac.hexdigest(), v1)


def read_key(path):
    """The key: the file's bytes without one trailing newline."""
    with open(path, "rb") as f:
        key = f.read()
    key = key[:-1] if key.endswith(b"\n") else key
    return key[:-1] if key.endswith(b"\r") else key


class Receiver(http.server.BaseHTTPRequestHandler):
    key = b""
    seen = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verify(self.key, self.headers.get("Toolgate-Signature"),
                      body):
            self.send_response(401)
        else:
            delivery = self.headers.get("Toolgate-Delivery")
            if delivery not in self.seen:
                self.seen.add(delivery)
                print(body.decode(), flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Receiver.key = read_key(sys.argv[2])
    server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])),
                                    Receiver)
    print("listening", flush=True)
    server.serve_forever()
