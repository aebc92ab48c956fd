"""
test_enrolment: making identities (issue 16, point 1) against a real
toolgated.  `scripts/gen-dev-pki DIR --client NAME [--uri URI]` adds one
client certificate to an existing dev PKI and never overwrites; the shell
blocks of proto/identities.md marked `<!-- tested: ... -->` are run
verbatim — issuing a client certificate with a SPIFFE ID with openssl,
making the CRL, revoking — and the broker accepts, then refuses, the
certificate they make; a certificate without the clientAuth EKU is
refused, and both the broker's log and toolgatectl say why.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_hostile import read_response, tls_connect  # noqa: E402

GEN = os.path.join(harness.ROOT, "scripts", "gen-dev-pki")
DOC = os.path.join(harness.ROOT, "proto", "identities.md")


def doc_blocks(tag):
    """The shell blocks of identities.md marked <!-- tested: tag -->."""
    with open(DOC) as f:
        text = f.read()
    blocks = re.findall(r"<!-- tested: %s -->\n```sh\n(.*?)```" %
                        re.escape(tag), text, re.S)
    assert blocks, "identities.md has no block tested: %s" % tag
    return blocks


def sh(script, cwd):
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("exit %d:\n%s\n%s%s" % (p.returncode, script,
                                                    p.stdout, p.stderr))
    return p


def policy_with(*names):
    pol = harness.load_example_policy()
    for name in names:
        pol["principals"][name] = {"roles": ["support-agent"]}
    return pol


class Broker(harness.Broker):
    def ctl_as(self, cert, key, *args):
        """toolgatectl with this certificate and key."""
        return subprocess.run([harness.CTL, "--url", self.url, "--ca",
                               os.path.join(self.pki, "ca.pem"), "--cert",
                               cert, "--key", key, *args],
                              capture_output=True, text=True, timeout=60)


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_enrolment.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, wanted %d\n%s%s" %
                         (p.returncode, code, p.stdout, p.stderr))


class GenDevPkiClient(Tmp):
    def setUp(self):
        super().setUp()
        # a copy of the dev PKI: same CA as the brokers of the harness
        self.pki = os.path.join(self.tmp, "pki")
        shutil.copytree(harness.pki(), self.pki)

    def gen(self, *args):
        return subprocess.run([GEN, self.pki, *args], capture_output=True,
                              text=True, timeout=60)

    def test_adds_one_identity_by_cn_or_uri(self):
        p = self.gen("--client", "agent-billing")
        self.assertExit(p, 0)
        self.assertIn("identity: agent-billing", p.stdout)
        uri = "spiffe://toolgate.test/agent/billing"
        p = self.gen("--client", "billing-svid", "--uri", uri)
        self.assertExit(p, 0)
        self.assertIn("identity: " + uri, p.stdout)
        for name in ("agent-billing", "billing-svid"):
            key = os.path.join(self.pki, name + ".key")
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
            out = subprocess.run(["openssl", "x509", "-in", os.path.join(
                self.pki, name + ".pem"), "-noout", "-ext",
                "extendedKeyUsage,subjectAltName"], capture_output=True,
                text=True, check=True).stdout
            self.assertIn("TLS Web Client Authentication", out)
        self.assertEqual(harness.cert_identity(
            os.path.join(self.pki, "billing-svid.pem")), uri)
        self.assertEqual(harness.cert_identity(
            os.path.join(self.pki, "agent-billing.pem")), "agent-billing")
        # the broker takes both, under the names the policy gives them
        with Broker(policy=policy_with("agent-billing", uri)) as b:
            for name, who in (("agent-billing", "agent-billing"),
                              ("billing-svid", uri)):
                p = b.ctl_as(os.path.join(self.pki, name + ".pem"),
                             os.path.join(self.pki, name + ".key"),
                             "--json", "submit", "--tool", "crm.lookup")
                self.assertExit(p, 0)
                self.assertIn('"agent": "%s"' % who, p.stdout)

    def test_never_overwrites(self):
        self.assertExit(self.gen("--client", "agent-x"), 0)
        pem = os.path.join(self.pki, "agent-x.pem")
        with open(pem, "rb") as f:
            before = f.read()
        p = self.gen("--client", "agent-x")
        self.assertExit(p, 1)
        self.assertIn("agent-x.pem exists; it is never overwritten",
                      p.stderr)
        with open(pem, "rb") as f:
            self.assertEqual(f.read(), before)
        # a demo identity is no different
        self.assertExit(self.gen("--client", "agent-payments"), 1)
        self.assertExit(self.gen("--client", "agent-y", "--force"), 2)

    def test_refuses_bad_names_and_a_missing_ca(self):
        for bad in ("../evil", ".hidden", "a b", "x" * 65, ""):
            self.assertExit(self.gen("--client", bad), 1)
        self.assertExit(self.gen("--client", "a", "--uri", "not a uri"), 1)
        self.assertExit(self.gen("--client", "a", "--uri", "x:a,DNS:b"), 1)
        self.assertExit(self.gen("--uri", "spiffe://x/y"), 2)
        self.assertFalse(os.path.exists(os.path.join(self.pki, "a.pem")))
        empty = os.path.join(self.tmp, "empty")
        p = subprocess.run([GEN, empty, "--client", "a"],
                           capture_output=True, text=True, timeout=60)
        self.assertExit(p, 1)
        self.assertIn("no dev CA", p.stderr)
        self.assertFalse(os.path.exists(empty))


class IdentitiesDoc(Tmp):
    """proto/identities.md, followed to the letter."""
    URI = "spiffe://example.org/agent/billing"

    def setUp(self):
        super().setUp()
        k = harness.pki()
        for f in ("ca.pem", "ca.key"):
            shutil.copy(os.path.join(k, f), os.path.join(self.tmp, f))

    def test_issue_crl_and_revoke_as_documented(self):
        for block in doc_blocks("issue"):
            out = sh(block, self.tmp).stdout
        self.assertIn("TLS Web Client Authentication", out)
        self.assertIn("URI:" + self.URI, out)
        cert = os.path.join(self.tmp, "agent-billing.pem")
        key = os.path.join(self.tmp, "agent-billing.key")
        self.assertEqual(harness.cert_identity(cert), self.URI)
        for block in doc_blocks("crl"):
            sh(block, self.tmp)
        crl = os.path.join(self.tmp, "toolgate.crl")
        with Broker(policy=policy_with(self.URI),
                    flags={"--crl": crl}) as b:
            p = b.ctl_as(cert, key, "--json", "submit", "--tool",
                         "crm.lookup")
            self.assertExit(p, 0)
            self.assertIn('"agent": "%s"' % self.URI, p.stdout)
            held = tls_connect(b, None, ctx=self.client_ctx(b, cert, key))
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(held)[0], 200)

            for block in doc_blocks("revoke"):
                out = sh(block, self.tmp).stdout
            self.assertIn("Serial Number", out)
            n = len(b.log_lines())
            b.proc.send_signal(signal.SIGHUP)
            b.wait_log("SIGHUP: TLS certificates and CRL reloaded", n)
            b.wait_log(r"closing the connection of %s from 127\.0\.0\.1:\d+"
                       r": the client certificate is revoked" %
                       re.escape(self.URI), n)
            p = b.ctl_as(cert, key, "submit", "--tool", "crm.lookup")
            self.assertExit(p, 3)
            self.assertIn("--cert is revoked", p.stderr)
            b.wait_log(r"refused TLS handshake from 127\.0\.0\.1:\d+ \(%s\): "
                       r"the client certificate is revoked" %
                       re.escape(self.URI), n)
            # the others go on
            self.assertEqual(b.client("agent-support").submit(
                "crm.lookup")[0], 200)

    def client_ctx(self, b, cert, key):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(b.pki, "ca.pem"))
        ctx.load_cert_chain(cert, key)
        return ctx

    def test_a_certificate_without_client_auth_is_refused_and_explained(self):
        # the documented request, signed without the clientAuth line
        sh(doc_blocks("issue")[0], self.tmp)
        with open(os.path.join(self.tmp, "noeku.ext"), "w") as f:
            f.write("basicConstraints = critical, CA:false\n"
                    "keyUsage = critical, digitalSignature\n")
        sh("openssl x509 -req -in agent-billing.csr -CA ca.pem -CAkey ca.key"
           " -CAcreateserial -days 1 -extfile noeku.ext -out noeku.pem",
           self.tmp)
        with Broker(policy=policy_with("agent-billing")) as b:
            n = len(b.log_lines())
            p = b.ctl_as(os.path.join(self.tmp, "noeku.pem"),
                         os.path.join(self.tmp, "agent-billing.key"),
                         "submit", "--tool", "crm.lookup")
            self.assertExit(p, 3)
            self.assertIn("unsupported certificate", p.stderr)
            self.assertIn("clientAuth extended key usage", p.stderr)
            line = b.wait_log("refused TLS handshake", n)
            self.assertIn(" info: ", line)
            self.assertIn("(agent-billing): the client certificate lacks the "
                          "clientAuth extended key usage (see "
                          "proto/identities.md)", line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
