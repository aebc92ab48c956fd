"""
mcp_peers: the real MCP peers of the gateway tests, from tests/mcp (the
official TypeScript SDK): an upstream McpServer process with its side
endpoints, the SDK Client as an agent (over Streamable HTTP with a
client certificate, or over stdio through toolgatectl mcp stdio), a
broker started with an MCP --config, and a raw /mcp client for the
protocol cases the SDK would never send.

Environment (tests/meson.build): TOOLGATE_TEST_MCP_DIR (tests/mcp, with
node_modules installed by scripts/npm-deps).  Missing, it fails loudly,
like the harness.
"""

import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request

import harness

MCP_DIR = harness._env("TOOLGATE_TEST_MCP_DIR")
NODE = shutil.which("node") or "/usr/bin/node"
if not os.path.isdir(os.path.join(MCP_DIR, "node_modules",
                                  "@modelcontextprotocol")):
    raise SystemExit("mcp_peers: %s/node_modules is missing: run "
                     "scripts/npm-deps (scripts/test does)" % MCP_DIR)

ACCEPT_BOTH = "application/json, text/event-stream"


def wait_for(cond, timeout=60, what="condition"):
    """Poll cond() until it is truthy (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" %
                                 (timeout, what))
        time.sleep(0.1)


class Upstream:
    """node tests/mcp/upstream.mjs: plain HTTP, or HTTPS with cert/key."""

    def __init__(self, json_answers=False, cert=None, key=None, ca=None,
                 protocol=None):
        argv = [NODE, os.path.join(MCP_DIR, "upstream.mjs"), "--port", "0"]
        if json_answers:
            argv.append("--json")
        if protocol:
            argv += ["--protocol", protocol]
        if cert:
            argv += ["--tls-cert", cert, "--tls-key", key]
        self.https = cert is not None
        self.ca = ca
        self.proc = subprocess.Popen(argv, cwd=MCP_DIR,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("upstream.mjs did not start:\n" +
                                 self.proc.stderr.read())
        self.port = json.loads(line)["port"]
        self.base = "%s://127.0.0.1:%d" % ("https" if cert else "http",
                                           self.port)
        self.url = self.base + "/mcp"

    def _side(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        ctx = None
        if self.https:
            ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return json.loads(r.read())

    def calls(self, method=None):
        got = self._side("GET", "/_test/calls")["calls"]
        return [c for c in got if method is None or c["method"] == method]

    def reset(self):
        self._side("POST", "/_test/reset", {})

    def mode(self, **modes):
        self._side("POST", "/_test/mode",
                   {k.replace("_", "/"): v for k, v in modes.items()})

    def forget_sessions(self):
        """Every session forgotten: requests on one answer 404."""
        self._side("POST", "/_test/forget_sessions", {})

    def add_tool(self, name, silent=False):
        """A new tool on every session: announced with
        notifications/tools/list_changed unless silent."""
        self._side("POST", "/_test/add_tool", {"name": name,
                                               "silent": silent})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class McpBroker(harness.Broker):
    """A broker with MCP --config lines."""

    def __init__(self, config_lines, policy=None, threads=2, db=None):
        super().__init__(policy=policy, threads=threads, db=db)
        self.config = os.path.join(self.dir, "toolgated.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(config_lines) + "\n")
        self.extra_args = ("--config", self.config)

    def mcp_url(self):
        return self.url + "/mcp"

    def _agent_argv(self, steps, identity, protocol=None):
        k = self.pki
        return [NODE, os.path.join(MCP_DIR, "agent.mjs"), "--url",
                self.mcp_url(), "--cert", os.path.join(k, identity + ".pem"),
                "--key", os.path.join(k, identity + ".key"), "--ca",
                os.path.join(k, "ca.pem")] + (
                    ["--protocol", protocol] if protocol else []) + [
                json.dumps(steps)]

    def agent(self, steps, identity="agent-payments", timeout=180,
              protocol=None):
        """Run tests/mcp/agent.mjs as identity (asking for protocol
        revision protocol, if given); one dict per step."""
        return _run_agent(self._agent_argv(steps, identity, protocol), None,
                          timeout)

    def agent_start(self, steps, identity="agent-payments"):
        """agent.mjs started, not waited for: agent_finish(it) later."""
        return subprocess.Popen(self._agent_argv(steps, identity),
                                cwd=MCP_DIR, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def _stdio_argv(self, steps, identity):
        k = self.pki
        env = dict(os.environ, TOOLGATE_URL=self.url,
                   TOOLGATE_CA=os.path.join(k, "ca.pem"),
                   TOOLGATE_CERT=os.path.join(k, identity + ".pem"),
                   TOOLGATE_KEY=os.path.join(k, identity + ".key"))
        argv = [NODE, os.path.join(MCP_DIR, "agent.mjs"), "--stdio",
                harness.CTL, "mcp", "stdio", "--", json.dumps(steps)]
        return argv, env

    def stdio_agent(self, steps, identity="agent-payments", timeout=180):
        """The agent over StdioClientTransport running toolgatectl mcp
        stdio with TOOLGATE_* for identity."""
        argv, env = self._stdio_argv(steps, identity)
        return _run_agent(argv, env, timeout)

    def stdio_agent_start(self, steps, identity="agent-payments"):
        """stdio_agent started, its output lines read as they come."""
        argv, env = self._stdio_argv(steps, identity)
        return AgentRun(argv, env)

    def wait_log(self, text, timeout=60, since=0):
        """Wait for a log line holding text, among the lines from index
        since on (len(log_lines()) taken before the cause)."""
        return wait_for(lambda: any(text in ln for ln in
                                    self.log_lines()[since:]),
                        timeout, "broker log line %r" % text)


class AgentRun:
    """A running agent.mjs whose stdout lines are collected as printed."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, cwd=MCP_DIR, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                with self._lock:
                    self._lines.append(json.loads(line))

    def lines(self):
        with self._lock:
            return list(self._lines)

    def finish(self, timeout=180):
        """The steps' lines (progress lines left out), once it exits."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent.mjs did not finish within %d s" %
                                 timeout)
        self._reader.join(10)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self.proc.returncode != 0:
            raise AssertionError("agent.mjs exited %d:\n%s" %
                                 (self.proc.returncode, err))
        return [ln for ln in self.lines() if "progress" not in ln or
                "ok" in ln]


def _agent_output(rc, stdout, stderr):
    if rc != 0:
        raise AssertionError("agent.mjs exited %d:\n%s%s" %
                             (rc, stdout, stderr))
    out = [json.loads(ln) for ln in stdout.splitlines() if ln.strip()]
    if out and out[0].get("connect"):
        raise AssertionError("agent could not connect: %r\n%s" %
                             (out[0], stderr))
    return out


def _run_agent(argv, env, timeout):
    p = subprocess.run(argv, cwd=MCP_DIR, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return _agent_output(p.returncode, p.stdout, p.stderr)


def agent_finish(proc, timeout=180):
    """The steps' lines of an agent_start()ed agent, once it exits."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError("agent.mjs did not finish within %d s:\n%s%s"
                             % (timeout, stdout, stderr))
    return _agent_output(proc.returncode, stdout, stderr)


class RawMcp:
    """POST /mcp by hand over the harness's mTLS client."""

    def __init__(self, client):
        self.c = client
        self.session = None
        self.next_id = 0

    def post(self, body, session=True, accept=ACCEPT_BOTH,
             ctype="application/json", headers=None):
        h = {"Accept": accept} if accept is not None else {}
        if session and self.session:
            h["Mcp-Session-Id"] = self.session
        h.update(headers or {})
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return self.c.request_raw("POST", "/mcp", body=body,
                                  content_type=ctype, headers=h)

    def rpc(self, method, params=None, **kw):
        """A request; (status, headers, parsed JSON answer or None)."""
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        st, h, raw = self.post(msg, **kw)
        return st, h, parse_answer(h, raw)

    def initialize(self, version="2025-11-25"):
        st, h, ans = self.rpc("initialize", {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}, session=False)
        assert st == 200, (st, ans)
        self.session = h["mcp-session-id"]
        st, _, _ = self.post({"jsonrpc": "2.0",
                              "method": "notifications/initialized"})
        assert st == 202, st
        return ans


def parse_answer(headers, raw):
    """The JSON-RPC message of an answer: JSON, or the first SSE event."""
    text = raw.decode("utf-8", "replace")
    if headers.get("content-type", "").startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data: "):
                return json.loads(line[6:])
        return None
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
