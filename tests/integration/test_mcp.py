"""
test_mcp: the MCP gateway (CONTRACT §9) with real peers — the official
TypeScript SDK's McpServer as the upstream and its Client as the agent —
against a real toolgated over real mTLS: sessions, initialize and ping;
tools/list filtered by the caller's roles; malformed JSON-RPC and
oversize bodies answered with JSON-RPC errors, never a 5xx; an allowed
call forwarded once with a Toolgate-Grant that verifies against
/v1/jwks and the upstream's result returned unchanged; upstreams that
hang, answer garbage, drop the stream, list a tool twice or change
their list (notified, or found by the refresh timer); HTTPS upstreams
checked against mcp-upstream-ca; bad --config lines; the stdio bridge
under StdioClientTransport; protocol revision 2025-06-18 on both
sides; and, on PostgreSQL, a call held by one broker and approved on
another.

Every tools/call is decided like an intent: denials (deny rules, tiers,
conditions, kill switches — also one tripped while a call is held or
after it was approved) never reach the upstream; a call that needs
approval is held, released by `toolgatectl approve` while the agent
waits, or answered still-pending, and a repeat of the same call joins
its intent and is forwarded once however many wait on it; the audit
records the forward, with the arguments a policy redacts redacted.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import mcp_peers  # noqa: E402
import verify_audit  # noqa: E402
from mcp_peers import McpBroker, RawMcp, Upstream, wait_for  # noqa: E402

POLICY = {
    "principals": {
        "agent-payments": {"roles": ["payments-agent"]},
        "agent-support": {"roles": ["support-agent"]},
        "agent-stranger": {"roles": ["held-agent"]},
        "approver-alice": {"roles": ["finance-approver"]},
        "approver-bob": {"roles": ["finance-approver"]},
        "operator-olga": {"roles": ["operator"]},
    },
    "roles": {
        "payments-agent": {"rules": [{"tool": "pay.*"}]},
        "support-agent": {"rules": [
            {"tool": "pay.lookup"},
            {"tool": "pay.transfer", "effect": "deny"}]},
        "held-agent": {"rules": [
            {"tool": "pay.transfer",
             "amount_from": {"value": "/amount", "currency": "/currency"},
             "currencies": {"USD": [{"max": "100.00", "approvals": 0},
                                    {"max": "10000.00", "approvals": 1}]},
             "approvers": ["finance-approver"]},
            {"tool": "pay.lookup",
             "args": {"/id": {"not_one_of": ["secret"]}}}]},
        "finance-approver": {},
        "operator": {"operator": True},
    },
}

TRANSFER = {"amount": "12.50", "currency": "USD", "to": "DE89370400440532013000"}


def names(list_step):
    return sorted(t["name"] for t in list_step["result"]["tools"])


def text_of(result):
    return " ".join(c.get("text", "") for c in result.get("content", []))


def transfer(amount, to="DE89370400440532013000"):
    return {"amount": amount, "currency": "USD", "to": to}


def toolgate_meta(result):
    return result.get("_meta", {}).get("toolgate", {})


def call_sha256(agent, tool, args):
    """What names "the same call" (proto/mcp.md): the SHA-256 of the RFC
    8785 text of {"args", "iss", "tool"}, computed independently."""
    return hashlib.sha256(verify_audit.jcs(
        {"args": args, "iss": agent, "tool": tool}).encode()).hexdigest()


def audit_of(broker, intent_id, until=None):
    """The audit records of intent_id, oldest first (offline export);
    with until, once one of them is that event: a forward's outcome is
    committed with the next batch, just after the agent's answer."""
    def records():
        p = broker.ctl_db("audit", "export", check=True)
        recs = [json.loads(ln) for ln in p.stdout.splitlines()
                if ln.strip()]
        return [r for r in recs if r.get("intent_id") == intent_id]
    def settled():
        recs = records()
        return recs if any(r["event"] == until for r in recs) else None

    if until is None:
        return records()
    return harness.wait_until(settled, "%s's %s record" % (intent_id, until))


class GatewayCase(unittest.TestCase):
    """One upstream (SSE answers) named pay."""

    upstream_json = False
    upstream_protocol = None
    extra_config = ()
    policy = POLICY

    @classmethod
    def setUpClass(cls):
        cls.up = Upstream(json_answers=cls.upstream_json,
                          protocol=cls.upstream_protocol)
        try:
            cls.broker = McpBroker(["mcp-upstream = pay " + cls.up.url,
                                    "mcp-timeout = 3"] +
                                   list(cls.extra_config), policy=cls.policy)
            cls.broker.__enter__()
            cls.broker.wait_log("mcp upstream pay: connected")
        except BaseException:
            cls.up.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.broker.__exit__(None, None, None)
        finally:
            cls.up.stop()

    def setUp(self):
        self.up.reset()

    def raw(self, identity="agent-payments"):
        return RawMcp(self.broker.client(identity))

    def trip(self, tool, *more):
        """Trip a kill switch on tool (as operator-olga); its id."""
        p = self.broker.ctl("--json", "killswitch", "trip", "--tool", tool,
                            "--reason", "drill", *more,
                            identity="operator-olga")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["id"]

    def reset_switch(self, switch):
        p = self.broker.ctl("killswitch", "reset", str(switch), "--reason",
                            "drill over", identity="operator-olga")
        self.assertEqual(p.returncode, 0, p.stderr)


class Sessions(GatewayCase):
    def test_sdk_client_initializes_and_pings(self):
        out = self.broker.agent([{"op": "session"}, {"op": "ping"}])
        s = out[0]["result"]
        self.assertTrue(s["sessionId"].startswith("ms_"), s)
        self.assertEqual(len(s["sessionId"]), 35)
        self.assertEqual(s["protocolVersion"], "2025-11-25")
        self.assertEqual(s["server"]["name"], "toolgate")
        self.assertEqual(s["capabilities"], {"tools": {"listChanged": False}})
        self.assertEqual(out[1], {"ok": True, "result": {}})

    def test_version_negotiation(self):
        for asked, got in (("2025-06-18", "2025-06-18"),
                           ("2025-11-25", "2025-11-25"),
                           ("2024-11-05", "2025-11-25"),
                           ("1999-01-01", "2025-11-25")):
            with self.subTest(asked=asked):
                ans = self.raw().initialize(asked)
                self.assertEqual(ans["result"]["protocolVersion"], got)

    def test_session_rules(self):
        r = self.raw()
        r.initialize()
        st, _, ans = r.rpc("ping")
        self.assertEqual((st, ans["result"]), (200, {}))
        # no session id
        st, _, ans = r.rpc("ping", session=False)
        self.assertEqual(st, 400)
        self.assertIn("Mcp-Session-Id", ans["error"]["message"])
        self.assertEqual(ans["id"], r.next_id)
        # an unknown one
        st, _, ans = r.rpc("ping", session=False, headers={
            "Mcp-Session-Id": "ms_" + "0" * 32})
        self.assertEqual(st, 404)
        # another identity's session is not found either
        other = self.raw("agent-support")
        other.session = r.session
        st, _, ans = other.rpc("ping")
        self.assertEqual(st, 404, ans)
        # a protocol version we do not speak
        st, _, ans = r.rpc("ping", headers={
            "MCP-Protocol-Version": "2024-11-05"})
        self.assertEqual(st, 400, ans)
        st, _, ans = r.rpc("ping", headers={
            "MCP-Protocol-Version": "2025-06-18"})
        self.assertEqual(st, 200, ans)
        # DELETE ends it; then 404
        st, _, _ = r.c.request_raw("DELETE", "/mcp", headers={
            "Mcp-Session-Id": r.session})
        self.assertEqual(st, 204)
        st, _, _ = r.rpc("ping")
        self.assertEqual(st, 404)
        st, _, _ = r.c.request_raw("DELETE", "/mcp", headers={
            "Mcp-Session-Id": r.session})
        self.assertEqual(st, 404)

    def test_notifications_and_responses_are_accepted(self):
        r = self.raw()
        r.initialize()
        for msg in ({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": 1}},
                    {"jsonrpc": "2.0", "id": 5, "result": {}},
                    {"jsonrpc": "2.0", "id": 6,
                     "error": {"code": 1, "message": "x"}}):
            with self.subTest(msg=msg):
                st, _, body = r.post(msg)
                self.assertEqual((st, body), (202, b""))

    def test_get_is_405_and_sse_answers(self):
        r = self.raw()
        r.initialize()
        st, h, body = r.c.request_raw("GET", "/mcp", headers={
            "Accept": "text/event-stream", "Mcp-Session-Id": r.session})
        self.assertEqual(st, 405)
        self.assertIn("POST", h.get("allow", ""))
        st, h, ans = r.rpc("ping", accept="text/event-stream")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertEqual(ans["result"], {})
        st, h, ans = r.rpc("ping", accept="application/json")
        self.assertTrue(h["content-type"].startswith("application/json"))
        st, h, ans = r.rpc("ping", accept="text/html")
        self.assertEqual(st, 406, ans)


class Malformed(GatewayCase):
    def assertRpcError(self, answer, status, code, text=None):
        st, h, raw = answer
        self.assertEqual(st, status, raw)
        self.assertTrue(h["content-type"].startswith("application/json"))
        ans = json.loads(raw)
        self.assertEqual(ans["jsonrpc"], "2.0")
        self.assertEqual(ans["error"]["code"], code, ans)
        if text:
            self.assertIn(text, ans["error"]["message"])
        return ans

    def test_envelope_faults(self):
        r = self.raw()
        r.initialize()
        cases = [
            (b"not json", 400, -32700, "not valid JSON"),
            (b'{"jsonrpc":"2.0","id":1,"method":"ping"', 400, -32700, None),
            (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', 400, -32600,
             "batch"),
            (b'"ping"', 400, -32600, "object"),
            (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', 400, -32600,
             "2.0"),
            (b'{"id":1,"method":"ping"}', 400, -32600, "2.0"),
            (b'{"jsonrpc":"2.0","id":1}', 400, -32600, "result"),
            (b'{"jsonrpc":"2.0","params":{}}', 400, -32600, "method"),
            (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', 400, -32600,
             "null"),
            (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', 400, -32600,
             "integer"),
            (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', 400,
             -32602, "object"),
            (b'{"jsonrpc":"2.0","id":1,"method":"ping","x":1}', 400, -32600,
             "unknown member"),
            (b'{"jsonrpc":"2.0","id":1,"method":"a\\u0000"}', 400, -32700,
             None),
            (b'{"jsonrpc":"2.0","id":1,"method":"\xff"}', 400, -32700, None),
        ]
        for body, st, code, text in cases:
            with self.subTest(body=body):
                self.assertRpcError(r.post(body), st, code, text)

    def test_id_echoed_in_faults(self):
        r = self.raw()
        r.initialize()
        ans = self.assertRpcError(r.post(
            b'{"jsonrpc":"2.0","id":"x-1","method":"ping","x":1}'), 400,
            -32600)
        self.assertEqual(ans["id"], "x-1")

    def test_methods_and_params(self):
        r = self.raw()
        r.initialize()
        for method, params, code, text in (
                ("resources/list", None, -32601, "tools/call"),
                ("prompts/get", {}, -32601, None),
                ("tools/list", {"cursor": "abc"}, -32602, "cursor"),
                ("tools/call", {}, -32602, "params.name"),
                ("tools/call", {"name": 7}, -32602, "params.name"),
                ("tools/call", {"name": "pay.nope", "arguments": {}}, -32602,
                 "Unknown tool"),
                ("tools/call", {"name": "lookup", "arguments": {}}, -32602,
                 "Unknown tool"),
                ("tools/call", {"name": "pay.lookup", "arguments": [1]},
                 -32602, "object"),
                ("tools/call", {"name": "pay.lookup", "arguments": "x"},
                 -32602, "object"),
                ("tools/call", {"name": "pay.lookup", "arguments": {},
                                "_meta": {"progressToken": 1.5}},
                 -32602, "progressToken"),
                ("initialize", {}, -32602, "protocolVersion")):
            with self.subTest(method=method, params=params):
                st, _, ans = r.rpc(method, params)
                self.assertEqual(st, 200, ans)
                self.assertEqual(ans["error"]["code"], code, ans)
                self.assertEqual(ans["id"], r.next_id)
                if text:
                    self.assertIn(text, ans["error"]["message"])
        self.assertEqual(self.up.calls("tools/call"), [])

    def test_argument_numbers_and_depth(self):
        r = self.raw()
        r.initialize()
        deep = {}
        for _ in range(33):
            deep = {"a": deep}
        for args, text in (
                ('{"id":12345678901234567.89}', "/id"),
                ('{"id":9007199254740993}', "2^53"),
                ('{"x":{"y":[1,1e400]}}', "/x/y/1"),
                (json.dumps(deep), "32 levels")):
            with self.subTest(args=args[:40]):
                body = ('{"jsonrpc":"2.0","id":9,"method":"tools/call",'
                        '"params":{"name":"pay.lookup","arguments":%s}}'
                        % args)
                st, _, raw = r.post(body)
                ans = json.loads(raw)
                self.assertEqual((st, ans["error"]["code"]), (200, -32602),
                                 ans)
                self.assertIn(text, ans["error"]["message"])
        self.assertEqual(self.up.calls("tools/call"), [])

    def test_http_level_faults(self):
        r = self.raw()
        r.initialize()
        ping = '{"jsonrpc":"2.0","id":1,"method":"ping"}'
        self.assertRpcError(r.post(ping, ctype="text/plain"), 415, -32600)
        self.assertRpcError(r.post(ping, headers={
            "Origin": "https://evil.example"}), 403, -32600, "Origin")
        big = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"p":"%s"}}' \
            % ("x" * (1024 * 1024))
        self.assertRpcError(r.post(big), 413, -32600, "1 MiB")
        # beyond evhttp's own cap: refused before the handler, not a 5xx
        try:
            st, _, _ = r.post("x" * (5 * 1024 * 1024))
            self.assertTrue(400 <= st < 500, st)
        except (ConnectionError, OSError):
            pass
        st, _, ans = RawMcp(self.broker.client("agent-payments")).rpc(
            "initialize", {"protocolVersion": "2025-11-25"}, session=False)
        self.assertEqual(st, 200)

    def test_never_5xx(self):
        self.assertFalse([ln for ln in self.broker.log_lines()
                          if " 500 " in ln or "internal_error" in ln])


class Tools(GatewayCase):
    def test_list_filtered_by_role(self):
        pay = self.broker.agent([{"op": "list"}])[0]
        self.assertEqual(names(pay), ["pay.lookup", "pay.transfer"])
        t = {x["name"]: x for x in pay["result"]["tools"]}
        self.assertEqual(t["pay.transfer"]["description"],
                         "Move money to an account")
        self.assertEqual(sorted(t["pay.transfer"]["inputSchema"]["required"]),
                         ["amount", "currency", "to"])
        sup = self.broker.agent([{"op": "list"}], identity="agent-support")[0]
        self.assertEqual(names(sup), ["pay.lookup"])
        alice = self.broker.agent([{"op": "list"}],
                                  identity="approver-alice")[0]
        self.assertEqual(names(alice), [])

    def test_allowed_call_is_forwarded_once_with_a_grant(self):
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": TRANSFER}])
        res = out[0]["result"]
        self.assertNotIn("isError", res)
        self.assertEqual(text_of(res),
                         "transferred 12.50 USD to DE89370400440532013000")
        self.assertTrue(res["structuredContent"]["ref"].startswith("tx-"))
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["params"]["name"], "transfer")
        self.assertEqual(calls[0]["params"]["arguments"], TRANSFER)
        st, _, jwks = self.broker.client("agent-payments").get("/v1/jwks")
        self.assertEqual(st, 200)
        claims = harness.verify_grant(calls[0]["grant"], jwks)
        self.assertEqual(claims["sub"], "agent-payments")
        self.assertEqual(claims["tool"], "pay.transfer")
        self.assertEqual(claims["aud"], "pay.transfer")
        self.assertEqual(claims["args"], TRANSFER)
        self.assertTrue(claims["jti"].startswith("in_"))
        self.assertLessEqual(claims["exp"] - claims["iat"], 60)
        # the upstream session is toolgated's own, not the agent's
        self.assertTrue(calls[0]["session"])
        self.assertEqual(calls[0]["protocol"], "2025-11-25")
        # intent_sha256 names the call: its agent, tool and args
        self.assertEqual(claims["intent_sha256"], call_sha256(
            "agent-payments", "pay.transfer", TRANSFER))
        # decided, redeemed by the forward and the outcome, in order
        recs = audit_of(self.broker, claims["jti"], until="mcp.forward")
        self.assertEqual([r["event"] for r in recs],
                         ["decision", "redemption", "mcp.forward"])
        self.assertEqual(recs[0]["actor"], "agent-payments")
        self.assertEqual(recs[0]["details"]["status"], "allowed")
        self.assertEqual(recs[1]["details"]["via"], "mcp")
        self.assertEqual(recs[2]["details"]["outcome"], "ok")
        # the agent reads its intent, redeemed, and never gets its grant
        st, _, view = self.broker.client("agent-payments").get(
            "/v1/intents/" + claims["jti"])
        self.assertEqual(st, 200)
        self.assertEqual(view["status"], "allowed")
        self.assertIn("redeemed_at", view)
        self.assertNotIn("grant", view)
        # no JWS, nothing to replay: the replay guard keeps no row for it
        self.assertEqual(self.broker.query(
            "SELECT count(*) FROM seen_jti WHERE jti LIKE 'mcp:%'"), [(0,)])

    def test_a_call_whose_session_ended_is_sent_once_more_on_a_new_one(self):
        # warm: the worker that answers has sent on the session before
        out = self.broker.agent([{"op": "call", "name": "pay.lookup",
                                  "arguments": {"id": 1}}])
        self.assertEqual(text_of(out[0]["result"]), "record 1")
        self.up.reset()
        self.up.forget_sessions()
        out = self.broker.agent([{"op": "call", "name": "pay.lookup",
                                  "arguments": {"id": 2}}])
        res = out[0]["result"]
        self.assertNotIn("isError", res)
        self.assertEqual(text_of(res), "record 2")
        # the 404 on the old session, then the call on a new one
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(calls[0]["grant"], calls[1]["grant"])
        self.assertNotEqual(calls[0]["session"], calls[1]["session"])
        inits = self.up.calls("initialize")
        self.assertEqual(len(inits), 1, inits)
        st, _, jwks = self.broker.client("agent-payments").get("/v1/jwks")
        self.assertEqual(st, 200)
        jti = harness.verify_grant(calls[1]["grant"], jwks)["jti"]
        recs = audit_of(self.broker, jti, until="mcp.forward")
        self.assertEqual([r["event"] for r in recs],
                         ["decision", "redemption", "mcp.forward"])
        self.assertEqual(recs[2]["details"]["outcome"], "ok")

    def test_result_passes_unchanged(self):
        r = RawMcp(self.broker.client("agent-payments"))
        r.initialize()
        st, _, raw = r.post('{"jsonrpc":"2.0","id":"q","method":"tools/call",'
                            '"params":{"name":"pay.lookup","arguments":'
                            '{"id":1e3}}}')
        self.assertEqual(st, 200)
        ans = mcp_peers.parse_answer({"content-type": "application/json"},
                                     raw)
        self.assertEqual(ans["id"], "q")
        self.assertEqual(text_of(ans["result"]), "record 1000")
        # forwarded in RFC 8785 form, as in the grant
        self.assertEqual(self.up.calls("tools/call")[0]["params"]
                         ["arguments"], {"id": 1000})

    def test_denied_call_never_reaches_the_upstream(self):
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": TRANSFER}],
                                identity="agent-support")
        res = out[0]["result"]
        self.assertTrue(res["isError"])
        meta = toolgate_meta(res)
        self.assertEqual(meta["decision"], "deny")
        self.assertEqual(meta["reason_code"], "denied_by_rule")
        self.assertTrue(meta["id"].startswith("in_"), meta)
        self.assertIn("refused", text_of(res))
        self.assertIn("do not retry", text_of(res))
        self.assertEqual(self.up.calls("tools/call"), [])
        # decided and audited like an intent
        self.assertEqual([r["event"] for r in audit_of(self.broker,
                                                       meta["id"])],
                         ["decision"])

    def test_upstream_tool_error_passes_through(self):
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": {"amount": "1"}}])
        res = out[0]["result"]
        self.assertTrue(res["isError"])
        self.assertIn("Input validation error", text_of(res))
        self.assertNotIn("_meta", res)
        self.assertEqual(len(self.up.calls("tools/call")), 1)


class Decisions(GatewayCase):
    """The policy's other answers: tiers read from the arguments,
    conditions, kill switches, malformed amounts.  None reaches the
    upstream."""

    def call(self, name, args, identity="agent-stranger"):
        return self.broker.agent([{"op": "call", "name": name,
                                   "arguments": args}],
                                 identity=identity)[0]["result"]

    def assertDenied(self, res, reason_code, stored=True):
        self.assertTrue(res["isError"], res)
        meta = toolgate_meta(res)
        self.assertEqual(meta["decision"], "deny", res)
        self.assertEqual(meta["reason_code"], reason_code, res)
        self.assertEqual("id" in meta, stored, meta)
        self.assertIn("Nothing was sent to the tool", text_of(res))
        self.assertEqual(self.up.calls("tools/call"), [])
        return meta

    def test_amount_from_arguments_picks_the_tier(self):
        res = self.call("pay.transfer", transfer("12.50", "small"))
        self.assertEqual(text_of(res), "transferred 12.50 USD to small")
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1)
        st, _, jwks = self.broker.client("agent-stranger").get("/v1/jwks")
        claims = harness.verify_grant(calls[0]["grant"], jwks)
        self.assertEqual(claims["amount"],
                         {"value": "12.50", "currency": "USD"})

    def test_over_the_top_tier_is_denied(self):
        res = self.call("pay.transfer", transfer("50000.00"))
        self.assertDenied(res, "amount_over_limit")
        self.assertIn("smaller amount", text_of(res))

    def test_conditions_on_arguments(self):
        res = self.call("pay.lookup", {"id": "secret"})
        self.assertDenied(res, "args_not_allowed")
        self.assertIn("/id", text_of(res))

    def test_malformed_amount_is_refused_and_not_stored(self):
        res = self.call("pay.transfer", transfer("12,50"))
        self.assertDenied(res, "invalid_amount", stored=False)
        self.assertIn("fix the arguments", text_of(res))

    def test_kill_switch(self):
        switch = self.trip("pay.lookup")
        try:
            res = self.call("pay.lookup", {"id": 3},
                            identity="agent-payments")
            self.assertDenied(res, "kill_switch")
            self.assertIn("kill switch", text_of(res))
        finally:
            self.reset_switch(switch)
        res = self.call("pay.lookup", {"id": 3}, identity="agent-payments")
        self.assertEqual(text_of(res), "record 3")


class Held(GatewayCase):
    """mcp-hold = 2: a call that needs approval is held, with progress
    when asked for, then answered still-pending; a repeat joins it."""

    extra_config = ("mcp-hold = 2",)

    def call_raw(self, r, args, meta=None, accept=mcp_peers.ACCEPT_BOTH):
        st, h, raw = r.post({"jsonrpc": "2.0", "id": 4, "method":
                             "tools/call", "params": dict(
                                 {"name": "pay.transfer", "arguments": args},
                                 **({"_meta": meta} if meta else {}))},
                            accept=accept)
        self.assertEqual(st, 200, raw)
        return h, raw

    def assertPending(self, res):
        self.assertTrue(res["isError"], res)
        meta = toolgate_meta(res)
        self.assertEqual(meta["status"], "pending", res)
        self.assertEqual(meta["approvals_required"], 1)
        self.assertTrue(meta["id"].startswith("in_"))
        self.assertRegex(meta["expires_at"], r"^\d{4}-\d\d-\d\dT.*Z$")
        self.assertIn("a human approves it", text_of(res))
        self.assertIn("call pay.transfer again with exactly the same "
                      "arguments", text_of(res))
        return meta["id"]

    def test_progress_then_pending_result_over_sse(self):
        r = self.raw("agent-stranger")
        r.initialize()
        h, raw = self.call_raw(r, transfer("500.00", "sse"),
                               {"progressToken": "p-1"})
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        events = [json.loads(ln[6:]) for ln in raw.decode().splitlines()
                  if ln.startswith("data: ")]
        self.assertGreaterEqual(len(events), 2, raw)
        for e in events[:-1]:
            self.assertEqual(e["method"], "notifications/progress")
            self.assertEqual(e["params"]["progressToken"], "p-1")
            self.assertNotIn("id", e)
        self.assertEqual(events[-1]["id"], 4)
        self.assertPending(events[-1]["result"])
        self.assertEqual(self.up.calls("tools/call"), [])

    def test_no_progress_without_a_token_or_sse(self):
        r = self.raw("agent-stranger")
        r.initialize()
        for meta, accept in (({}, mcp_peers.ACCEPT_BOTH),
                             ({"progressToken": 1}, "application/json")):
            with self.subTest(meta=meta, accept=accept):
                h, raw = self.call_raw(r, transfer("500.00", "json"), meta,
                                       accept)
                self.assertTrue(h["content-type"].startswith(
                    "application/json"))
                self.assertPending(json.loads(raw)["result"])

    def test_sdk_client_sees_the_progress(self):
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": transfer("500.00", "sdk"),
                                  "progress": True}],
                                identity="agent-stranger")
        self.assertPending(out[0]["result"])
        self.assertGreaterEqual(len(out[0]["progress"]), 1, out)

    def test_hold_times_out_then_a_repeat_completes_after_approval(self):
        args = transfer("500.00", "repeat")
        step = {"op": "call", "name": "pay.transfer", "arguments": args}
        first = self.broker.agent([step], identity="agent-stranger")[0]
        x = self.assertPending(first["result"])
        self.assertEqual(self.up.calls("tools/call"), [])
        # a repeat while pending joins the same intent
        again = self.broker.agent([step], identity="agent-stranger")[0]
        self.assertEqual(self.assertPending(again["result"]), x)
        p = self.broker.ctl("approve", x, identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        # approved, not forwarded yet: the agent gets no grant of its own
        st, _, view = self.broker.client("agent-stranger").get(
            "/v1/intents/" + x)
        self.assertEqual((st, view["status"]), (200, "allowed"))
        self.assertNotIn("grant", view)
        # the repeat is forwarded, once
        done = self.broker.agent([step], identity="agent-stranger")[0]
        self.assertEqual(text_of(done["result"]),
                         "transferred 500.00 USD to repeat")
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        st, _, jwks = self.broker.client("agent-stranger").get("/v1/jwks")
        claims = harness.verify_grant(calls[0]["grant"], jwks)
        self.assertEqual(claims["jti"], x)
        self.assertEqual(claims["approvers"], ["approver-alice"])
        self.assertEqual([r["event"] for r in audit_of(
            self.broker, x, until="mcp.forward")],
            ["decision", "approval", "redemption", "mcp.forward"])
        # forwarded is done: the next such call is a new request
        later = self.broker.agent([step], identity="agent-stranger")[0]
        y = self.assertPending(later["result"])
        self.assertNotEqual(y, x)
        self.assertEqual(len(self.up.calls("tools/call")), 1)

    def test_kill_switch_stops_an_approved_repeat(self):
        args = transfer("500.00", "switched")
        step = {"op": "call", "name": "pay.transfer", "arguments": args}
        x = self.assertPending(self.broker.agent(
            [step], identity="agent-stranger")[0]["result"])
        p = self.broker.ctl("approve", x, identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        switch = self.trip("pay.*")
        try:
            res = self.broker.agent([step],
                                    identity="agent-stranger")[0]["result"]
            self.assertTrue(res["isError"], res)
            self.assertEqual(toolgate_meta(res)["reason_code"],
                             "kill_switch", res)
            self.assertIn("kill switch", text_of(res))
            self.assertEqual(self.up.calls("tools/call"), [])
        finally:
            self.reset_switch(switch)
        # reset: the approved intent is still there, and forwarded once
        done = self.broker.agent([step], identity="agent-stranger")[0]
        self.assertEqual(text_of(done["result"]),
                         "transferred 500.00 USD to switched")
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        st, _, jwks = self.broker.client("agent-stranger").get("/v1/jwks")
        self.assertEqual(harness.verify_grant(calls[0]["grant"],
                                              jwks)["jti"], x)

    def test_changed_arguments_make_a_new_intent(self):
        def pending_id(args, identity="agent-stranger"):
            out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                      "arguments": args}], identity=identity)
            return self.assertPending(out[0]["result"])

        a = pending_id(transfer("600.00", "change"))
        b = pending_id(transfer("600.01", "change"))
        c = pending_id(dict(transfer("600.00", "change"), note="x"))
        self.assertEqual(len({a, b, c}), 3)
        # key order and number spelling are not "changes": RFC 8785 text
        r = self.raw("agent-stranger")
        r.initialize()
        st, _, raw = r.post('{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                            '"params":{"name":"pay.transfer","arguments":'
                            '{"to":"change","currency":"USD",'
                            '"amount":"600.00"}}}',
                            accept="application/json")
        self.assertEqual(self.assertPending(json.loads(raw)["result"]), a)
        self.assertEqual(self.up.calls("tools/call"), [])

    def test_rejected_intent_is_denied_to_a_repeat(self):
        args = transfer("700.00", "reject")
        step = {"op": "call", "name": "pay.transfer", "arguments": args}
        x = self.assertPending(self.broker.agent(
            [step], identity="agent-stranger")[0]["result"])
        p = self.broker.ctl("reject", x, "--reason", "not this week",
                            identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        # a closed intent is not joined: the repeat asks anew
        y = self.assertPending(self.broker.agent(
            [step], identity="agent-stranger")[0]["result"])
        self.assertNotEqual(x, y)
        self.assertEqual(self.up.calls("tools/call"), [])


class Released(GatewayCase):
    """mcp-hold = 100: the agent is still waiting when a human decides."""

    extra_config = ("mcp-hold = 100",)

    def pending_for(self, to, n=1):
        """The ids of the pending pay.transfer intents to `to`, once
        there are n."""
        alice = self.broker.client("approver-alice")

        def look():
            st, _, page = alice.get("/v1/approvals")
            ids = [i["id"] for i in page.get("items", [])
                   if i["agent"] == "agent-stranger" and
                   i["args"].get("to") == to]
            return ids if len(ids) >= n else None
        return wait_for(look, 120, "%d pending intents to %s" % (n, to))

    def start(self, to):
        return self.broker.agent_start(
            [{"op": "call", "name": "pay.transfer",
              "arguments": transfer("900.00", to), "progress": True}],
            identity="agent-stranger")

    def test_held_call_released_by_approve(self):
        a = self.start("released")
        try:
            (x,) = self.pending_for("released")
            self.assertEqual(self.up.calls("tools/call"), [])
            p = self.broker.ctl("approve", x, identity="approver-alice")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            out = mcp_peers.agent_finish(a)
        self.assertEqual(text_of(out[0]["result"]),
                         "transferred 900.00 USD to released", out)
        self.assertGreaterEqual(len(out[0]["progress"]), 1)
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        st, _, jwks = self.broker.client("agent-stranger").get("/v1/jwks")
        self.assertEqual(harness.verify_grant(calls[0]["grant"],
                                              jwks)["jti"], x)

    def test_held_call_rejected_while_waiting(self):
        a = self.start("rejected")
        try:
            (x,) = self.pending_for("rejected")
            p = self.broker.ctl("reject", x, "--reason", "wrong payee",
                                identity="approver-alice")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            out = mcp_peers.agent_finish(a)
        res = out[0]["result"]
        self.assertTrue(res["isError"], res)
        meta = toolgate_meta(res)
        self.assertEqual((meta["id"], meta["decision"], meta["status"]),
                         (x, "deny", "rejected"))
        self.assertIn("wrong payee", text_of(res))
        self.assertEqual(self.up.calls("tools/call"), [])

    def test_held_call_stopped_by_a_kill_switch(self):
        a = self.start("tripped")
        try:
            (x,) = self.pending_for("tripped")
            switch = self.trip("pay.transfer", "--reject-pending")
        finally:
            out = mcp_peers.agent_finish(a)
        try:
            res = out[0]["result"]
            self.assertTrue(res["isError"], res)
            meta = toolgate_meta(res)
            self.assertEqual((meta["id"], meta["decision"]), (x, "deny"),
                             res)
            self.assertEqual(self.up.calls("tools/call"), [])
            st, _, view = self.broker.client("agent-stranger").get(
                "/v1/intents/" + x)
            self.assertEqual((st, view["status"]), (200, "rejected"))
        finally:
            self.reset_switch(switch)

    def test_repeats_waiting_together_are_forwarded_once(self):
        runs = [self.start("many")]
        try:
            (x,) = self.pending_for("many")
            since = len(self.broker.log_lines())
            for _ in range(2):
                runs.append(self.start("many"))
            # the repeats joined the first's intent and wait on it
            wait_for(lambda: sum(
                "mcp call %s: agent-stranger pay.transfer -> pending" % x
                in ln for ln in self.broker.log_lines()[since:]) >= 2,
                120, "two repeats joining %s" % x)
            p = self.broker.ctl("approve", x, identity="approver-alice")
            self.assertEqual(p.returncode, 0, p.stderr)
            # one of them is forwarded; the others are calls of their own
            # again and make one new intent together: a human rejects it
            ids = self.pending_for("many")
            self.assertNotIn(x, ids)
            self.assertEqual(len(ids), 1, ids)
            p = self.broker.ctl("reject", ids[0], "--reason", "once",
                                identity="approver-alice")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            outs = [mcp_peers.agent_finish(a) for a in runs]
        texts = sorted(text_of(o[0]["result"]) for o in outs)
        self.assertEqual(len(self.up.calls("tools/call")), 1)
        self.assertEqual(texts.count("transferred 900.00 USD to many"), 1,
                         texts)
        self.assertEqual(sum("rejected" in t for t in texts), 2, texts)
        self.assertEqual([r["event"] for r in audit_of(
            self.broker, x, until="mcp.forward")],
            ["decision", "approval", "redemption", "mcp.forward"])

    def test_stdio_bridge_relays_progress_while_held(self):
        run = self.broker.stdio_agent_start(
            [{"op": "call", "name": "pay.transfer",
              "arguments": transfer("900.00", "stdio"),
              "progress": "lines"}], identity="agent-stranger")
        try:
            (x,) = self.pending_for("stdio")
            # the host sees the progress while the call is still held
            wait_for(lambda: any("progress" in ln and "ok" not in ln
                                 for ln in run.lines()), 120,
                     "progress through the stdio bridge")
            p = self.broker.ctl("approve", x, identity="approver-alice")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            out = run.finish()
        self.assertEqual(text_of(out[0]["result"]),
                         "transferred 900.00 USD to stdio", out)
        self.assertEqual(len(self.up.calls("tools/call")), 1)

    def test_agent_hanging_up_leaves_the_intent_for_a_repeat(self):
        a = self.start("hangup")
        (x,) = self.pending_for("hangup")
        since = len(self.broker.log_lines())
        a.kill()
        a.communicate()
        self.broker.wait_log("mcp call %s: agent-stranger hung up" % x,
                             timeout=60, since=since)
        p = self.broker.ctl("approve", x, identity="approver-alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.up.calls("tools/call"), [])
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": transfer("900.00", "hangup")}],
                                identity="agent-stranger")
        self.assertEqual(text_of(out[0]["result"]),
                         "transferred 900.00 USD to hangup")
        self.assertEqual(len(self.up.calls("tools/call")), 1)


class Revision20250618(GatewayCase):
    """Protocol revision 2025-06-18 on both sides: the SDK's Client asks
    for it, and the upstream answers it whatever toolgated asks."""

    upstream_protocol = "2025-06-18"
    extra_config = ("mcp-hold = 2",)

    def test_sdk_client_at_2025_06_18(self):
        out = self.broker.agent(
            [{"op": "session"}, {"op": "list"},
             {"op": "call", "name": "pay.lookup", "arguments": {"id": 7}}],
            protocol="2025-06-18")
        self.assertTrue(all(o["ok"] for o in out), out)
        self.assertEqual(out[0]["result"]["protocolVersion"], "2025-06-18")
        self.assertTrue(out[0]["result"]["sessionId"])
        self.assertEqual(names(out[1]), ["pay.lookup", "pay.transfer"])
        self.assertEqual(text_of(out[2]["result"]), "record 7")
        # toolgated speaks the revision the upstream answered
        self.broker.wait_log("mcp upstream pay: connected (protocol "
                             "2025-06-18)")
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["protocol"], "2025-06-18")
        self.assertTrue(calls[0]["grant"])

    def test_held_call_with_progress_at_2025_06_18(self):
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": transfer("500.00", "old"),
                                  "progress": True}],
                                identity="agent-stranger",
                                protocol="2025-06-18")
        res = out[0]["result"]
        self.assertTrue(res["isError"], res)
        self.assertEqual(toolgate_meta(res)["status"], "pending")
        self.assertGreaterEqual(len(out[0]["progress"]), 1, out)
        self.assertEqual(self.up.calls("tools/call"), [])


SECRET_TO = "GB33BUKB20201555555555"


class Redacted(GatewayCase):
    """A policy's redact map covers MCP tools by their NAME.X names: the
    audit copy of the arguments is redacted, the upstream and the grant
    get the real values, and the broker's log never holds them."""

    policy = dict(POLICY, redact={"pay.*": ["to"]})

    def test_arguments_redacted_in_the_audit_only(self):
        args = transfer("3.00", SECRET_TO)
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": args}])
        self.assertEqual(text_of(out[0]["result"]),
                         "transferred 3.00 USD to " + SECRET_TO)
        (call,) = self.up.calls("tools/call")
        self.assertEqual(call["params"]["arguments"], args)
        st, _, jwks = self.broker.client("agent-payments").get("/v1/jwks")
        claims = harness.verify_grant(call["grant"], jwks)
        self.assertEqual(claims["args"]["to"], SECRET_TO)
        denied = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                     "arguments": args}],
                                   identity="agent-support")[0]["result"]
        self.assertEqual(toolgate_meta(denied)["decision"], "deny")
        for x in (claims["jti"], toolgate_meta(denied)["id"]):
            recs = audit_of(self.broker, x)
            self.assertTrue(recs, x)
            self.assertEqual(recs[0]["details"]["args"],
                             dict(args, to="[redacted]"))
            self.assertNotIn(SECRET_TO, json.dumps(recs))
        # the audit chain still verifies
        p = self.broker.ctl_db("audit", "verify")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse([ln for ln in self.broker.log_lines()
                          if SECRET_TO in ln])


@unittest.skipUnless(harness.ENGINE == "postgresql",
                     "two brokers share a database on PostgreSQL only")
class TwoBrokers(GatewayCase):
    """A call held by one broker is approved on another broker of the
    same PostgreSQL database: the holder hears of it (the change feed)
    and forwards the call, once."""

    extra_config = ("mcp-hold = 100",)

    def test_held_here_approved_there(self):
        with harness.Broker(policy=self.policy, db=self.broker.db) as other:
            a = self.broker.agent_start(
                [{"op": "call", "name": "pay.transfer",
                  "arguments": transfer("900.00", "elsewhere")}],
                identity="agent-stranger")
            try:
                alice = other.client("approver-alice")

                def pending():
                    st, _, page = alice.get("/v1/approvals")
                    ids = [i["id"] for i in page.get("items", [])
                           if i["args"].get("to") == "elsewhere"]
                    return ids or None
                (x,) = wait_for(pending, 120, "the held call's intent")
                p = other.ctl("approve", x, identity="approver-alice")
                self.assertEqual(p.returncode, 0, p.stderr)
            finally:
                out = mcp_peers.agent_finish(a)
        self.assertEqual(text_of(out[0]["result"]),
                         "transferred 900.00 USD to elsewhere", out)
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1, calls)
        st, _, jwks = self.broker.client("agent-stranger").get("/v1/jwks")
        self.assertEqual(harness.verify_grant(calls[0]["grant"],
                                              jwks)["jti"], x)


class JsonUpstream(GatewayCase):
    upstream_json = True

    def test_forward_with_json_answers(self):
        out = self.broker.agent([{"op": "list"},
                                 {"op": "call", "name": "pay.lookup",
                                  "arguments": {"id": "c-7"}}])
        self.assertEqual(names(out[0]), ["pay.lookup", "pay.transfer"])
        self.assertEqual(text_of(out[1]["result"]), "record c-7")
        self.assertEqual(len(self.up.calls("tools/call")), 1)


class Misbehaving(GatewayCase):
    """mcp-timeout = 3: a hung upstream costs 3 s, not the broker."""

    def call_lookup(self):
        return self.broker.agent([{"op": "call", "name": "pay.lookup",
                                   "arguments": {"id": 1}}])[0]

    def assertUpstreamFailed(self, step, text):
        res = step["result"]
        self.assertTrue(res["isError"], res)
        self.assertIn("toolgate allowed this call, but it did not complete",
                      text_of(res))
        self.assertIn(text, text_of(res))
        self.assertEqual(res["_meta"]["toolgate"]["decision"], "allow")
        self.assertEqual(res["_meta"]["toolgate"]["forward"], "failed")
        self.assertTrue(res["_meta"]["toolgate"]["id"].startswith("in_"))
        recs = audit_of(self.broker, res["_meta"]["toolgate"]["id"],
                        until="mcp.forward")
        self.assertEqual(recs[-1]["details"]["outcome"], "failed")
        self.assertIn(text, recs[-1]["details"]["detail"])

    def test_hang(self):
        self.up.mode(tools_call="hang")
        t0 = time.monotonic()
        step = self.call_lookup()
        self.assertUpstreamFailed(step, "within 3 s")
        self.assertLess(time.monotonic() - t0, 60)
        self.assertEqual(len(self.up.calls("tools/call")), 1)
        # the broker still answers
        self.assertEqual(self.broker.agent([{"op": "ping"}])[0]["result"],
                         {})

    def test_garbage(self):
        for mode, text in (("garbage", "not a JSON-RPC message"),
                           ("garbage-sse", "not a JSON-RPC message"),
                           ("close", "closed in the middle"),
                           ("http500", "HTTP 500")):
            with self.subTest(mode=mode):
                self.up.reset()
                self.up.mode(tools_call=mode)
                self.assertUpstreamFailed(self.call_lookup(), text)
                self.assertEqual(len(self.up.calls("tools/call")), 1)

    def test_list_changed_duplicates_and_bad_names(self):
        before = names(self.broker.agent([{"op": "list"}])[0])
        self.assertIn("pay.transfer", before)
        self.assertNotIn("pay.refund", before)
        # the SDK sends notifications/tools/list_changed on its stream
        self.up.add_tool("refund")
        wait_for(lambda: "pay.refund" in names(
            self.broker.agent([{"op": "list"}])[0]), 60, "pay.refund")
        # a list with transfer twice: neither is offered
        self.up.mode(tools_list="duplicate")
        self.up.add_tool("audit_log")
        self.broker.wait_log("lists tool transfer more than once")
        wait_for(lambda: names(self.broker.agent([{"op": "list"}])[0]) ==
                 ["pay.lookup"], 60, "transfer dropped")
        out = self.broker.agent([{"op": "call", "name": "pay.transfer",
                                  "arguments": TRANSFER}])
        self.assertEqual(out[0]["error"]["code"], -32602)
        # names outside the grammar are not offered; upper case is
        self.up.mode(tools_list="bad-names")
        self.up.add_tool("poke")
        wait_for(lambda: names(self.broker.agent([{"op": "list"}])[0]) ==
                 ["pay.GetUser", "pay.lookup"], 60, "bad names dropped")
        self.broker.wait_log('tool "has space" is not offered')
        self.up.reset()
        self.up.add_tool("again")
        wait_for(lambda: "pay.transfer" in names(
            self.broker.agent([{"op": "list"}])[0]), 60, "transfer back")

    def test_garbage_list_keeps_the_last_one(self):
        self.up.mode(tools_list="garbage")
        since = len(self.broker.log_lines())
        self.up.add_tool("ignored")
        self.broker.wait_log("tools/list failed", since=since)
        self.assertIn("pay.transfer",
                      names(self.broker.agent([{"op": "list"}])[0]))
        # down while it reconnects: a call is not sent, and says so
        out = self.call_lookup()["result"]
        if "_meta" in out:
            self.assertEqual(out["_meta"]["toolgate"]["forward"], "not_sent")
            self.assertIn("It did not run", text_of(out))
        self.up.reset()
        self.broker.wait_log("mcp upstream pay: connected", timeout=90,
                             since=since)


class Refreshed(GatewayCase):
    """mcp-refresh = 2: the tool lists are fetched again on a timer, so a
    tool the upstream adds without notifications/tools/list_changed is
    offered all the same."""

    extra_config = ("mcp-refresh = 2",)

    def test_timer_refresh_without_a_notification(self):
        self.assertNotIn("pay.quiet",
                         names(self.broker.agent([{"op": "list"}])[0]))
        self.up.add_tool("quiet", silent=True)
        wait_for(lambda: "pay.quiet" in names(
            self.broker.agent([{"op": "list"}])[0]), 120, "pay.quiet")
        # toolgated asked again on its own session
        lists = [c for c in self.up.calls("tools/list") if c["session"]]
        self.assertTrue(lists, self.up.calls())
        out = self.broker.agent([{"op": "call", "name": "pay.quiet",
                                  "arguments": {}}])
        self.assertEqual(text_of(out[0]["result"]), "quiet called")


class DeadUpstream(unittest.TestCase):
    def test_unreachable_upstream(self):
        port = harness.free_port()
        with McpBroker(["mcp-upstream = gone http://127.0.0.1:%d/mcp" % port],
                       policy=POLICY) as b:
            b.wait_log("mcp upstream gone")
            b.wait_log("cannot connect")
            out = b.agent([{"op": "list"},
                           {"op": "call", "name": "gone.x", "arguments": {}}])
            self.assertEqual(out[0]["result"]["tools"], [])
            self.assertEqual(out[1]["error"]["code"], -32602)


class HttpsUpstream(unittest.TestCase):
    def test_verified_with_the_configured_ca(self):
        k = harness.pki()
        up = Upstream(cert=os.path.join(k, "broker.pem"),
                      key=os.path.join(k, "broker.key"),
                      ca=os.path.join(k, "ca.pem"))
        try:
            url = "https://127.0.0.1:%d/mcp" % up.port
            with McpBroker(["mcp-upstream = pay " + url,
                            "mcp-upstream-ca = " + os.path.join(k, "ca.pem")],
                           policy=POLICY) as b:
                b.wait_log("mcp upstream pay: connected")
                out = b.agent([{"op": "call", "name": "pay.lookup",
                                "arguments": {"id": 5}}])
                self.assertEqual(text_of(out[0]["result"]), "record 5")
            # the system store does not know the test CA: refused
            with McpBroker(["mcp-upstream = pay " + url], policy=POLICY) as b:
                b.wait_log("TLS failed")
                out = b.agent([{"op": "list"}])
                self.assertEqual(out[0]["result"]["tools"], [])
            # the name in the URL must be in the certificate
            with McpBroker(["mcp-upstream = pay https://127.0.0.2:%d/mcp" %
                            up.port, "mcp-upstream-ca = " +
                            os.path.join(k, "ca.pem")], policy=POLICY) as b:
                b.wait_log("TLS failed")
        finally:
            up.stop()


class BadConfig(unittest.TestCase):
    def start_fails(self, lines, text):
        b = McpBroker(lines, policy=POLICY)
        try:
            p = subprocess.run(b._argv(), capture_output=True, text=True,
                               timeout=30)
        finally:
            import shutil
            shutil.rmtree(b.dir, ignore_errors=True)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("toolgated.conf:", p.stderr)
        self.assertIn(text, p.stderr)
        return p.stderr

    def test_bad_lines_exit_2_naming_the_line(self):
        ok = "mcp-upstream = pay http://127.0.0.1:1/mcp"
        for lines, text in (
                (["mcp-upstream = pay"], "NAME URL"),
                (["mcp-upstream = pay ftp://x/mcp"], "http:// or https://"),
                (["mcp-upstream = pay http://"], "pay"),
                (["mcp-upstream = pay not a url"], "NAME URL"),
                (["mcp-upstream = Pay http://x/mcp"], "[a-z0-9_-]"),
                (["mcp-upstream = p.y http://x/mcp"], "[a-z0-9_-]"),
                (["mcp-upstream = pay http://u:p@x/mcp"], "user name"),
                ([ok, "mcp-upstream = pay http://127.0.0.1:2/mcp"],
                 "already defined on line 1"),
                (["mcp-upstream-ca = /nonexistent/ca.pem"], "cannot read"),
                (["mcp-hold = 0"], "1..3600"),
                (["mcp-timeout = soon"], "mcp-timeout")):
            with self.subTest(lines=lines):
                err = self.start_fails(lines, text)
                self.assertIn(":%d:" % len(lines), err)


class Stdio(GatewayCase):
    def test_stdio_bridge_with_the_sdk(self):
        out = self.broker.stdio_agent([
            {"op": "list"}, {"op": "ping"},
            {"op": "call", "name": "pay.transfer", "arguments": TRANSFER},
            {"op": "call", "name": "pay.nope", "arguments": {}}])
        self.assertEqual(names(out[0]), ["pay.lookup", "pay.transfer"])
        self.assertEqual(out[1]["result"], {})
        self.assertEqual(text_of(out[2]["result"]),
                         "transferred 12.50 USD to DE89370400440532013000")
        self.assertEqual(out[3]["error"]["code"], -32602)
        calls = self.up.calls("tools/call")
        self.assertEqual(len(calls), 1)
        self.assertTrue(calls[0]["grant"])
        # the bridge ended its session when the host closed stdin
        self.broker.wait_log("ended by agent-payments")

    def test_stdio_bridge_broker_down(self):
        k = self.broker.pki
        env = dict(os.environ, TOOLGATE_URL="https://127.0.0.1:%d" %
                   harness.free_port(), TOOLGATE_CA=os.path.join(k, "ca.pem"),
                   TOOLGATE_CERT=os.path.join(k, "agent-payments.pem"),
                   TOOLGATE_KEY=os.path.join(k, "agent-payments.key"))
        p = subprocess.run([harness.CTL, "mcp", "stdio"], env=env,
                           input='{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
                           'garbage\n', capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(ln) for ln in p.stdout.splitlines()]
        self.assertEqual(lines[0]["id"], 1)
        self.assertIn("unreachable", lines[0]["error"]["message"])
        self.assertEqual(lines[1]["error"]["code"], -32700)


if __name__ == "__main__":
    unittest.main(verbosity=2)
