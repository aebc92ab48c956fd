// agent.mjs: an MCP agent for toolgate's integration tests, built with the
// official SDK's Client — over StreamableHTTPClientTransport with a client
// certificate (undici dispatcher), or over StdioClientTransport running a
// command (toolgatectl mcp stdio).  It runs a list of steps in one
// session and prints one JSON line per step, then exits 0 (a step's
// failure is in its line, not in the exit status).
//
//   node agent.mjs --url URL --cert F --key F --ca F [--protocol V] STEPS
//   node agent.mjs --stdio COMMAND [ARG...] --  STEPS
//
// --protocol V asks for protocol revision V in initialize (the SDK's
// Client always asks for its newest, 2025-11-25; the request is
// rewritten on its way out, and the Client then speaks what the server
// answers, MCP-Protocol-Version header included).
//
// STEPS is a JSON array of:
//   {"op": "list"}                          tools/list
//   {"op": "call", "name": N, "arguments": {...}, "progress": true}
//                                           ("progress": "lines" also prints
//                                           each as it comes: {"progress": p})
//   {"op": "ping"}
//   {"op": "session"}                       session id, protocol version
//   {"op": "terminate"}                     DELETE the session
// Each line: {"ok": true, "result": ...} or {"ok": false, "error":
// {"code", "message"}}; progress notifications seen are in "progress".
import { readFileSync } from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';

function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined;
}

// fetch, with initialize asking for --protocol when given
function askingFor(version, fetchFn) {
  if (!version)
    return fetchFn;
  return (url, init) => {
    if (typeof init?.body === 'string') {
      const msg = JSON.parse(init.body);
      if (msg?.method === 'initialize') {
        msg.params.protocolVersion = version;
        init = { ...init, body: JSON.stringify(msg) };
      }
    }
    return fetchFn(url, init);
  };
}

function httpTransport() {
  const version = option('--protocol');
  if (!option('--cert'))
    return new StreamableHTTPClientTransport(new URL(option('--url')),
      { fetch: askingFor(version, undiciFetch) });
  const dispatcher = new Agent({
    connect: {
      cert: readFileSync(option('--cert')),
      key: readFileSync(option('--key')),
      ca: readFileSync(option('--ca')),
    },
  });
  const fetchWithCert = (url, init) => undiciFetch(url, { ...init, dispatcher });
  return new StreamableHTTPClientTransport(new URL(option('--url')),
    { fetch: askingFor(version, fetchWithCert) });
}

function stdioTransport() {
  const at = process.argv.indexOf('--stdio');
  const end = process.argv.indexOf('--', at);
  const cmd = process.argv.slice(at + 1, end);
  return new StdioClientTransport({ command: cmd[0], args: cmd.slice(1), env: process.env,
    stderr: 'inherit' });
}

function errorOf(e) {
  return { code: e?.code ?? null, message: String(e?.message ?? e) };
}

async function step(client, transport, s) {
  const progress = [];
  const onprogress = (p) => {
    progress.push(p);
    if (s.progress === 'lines')
      process.stdout.write(JSON.stringify({ progress: p }) + '\n');
  };
  const opts = s.progress ? { onprogress, timeout: 120000 } : { timeout: 120000 };
  switch (s.op) {
    case 'list':
      return { result: await client.listTools(undefined, opts) };
    case 'call':
      return { result: await client.callTool({ name: s.name, arguments: s.arguments }, undefined, opts), progress };
    case 'ping':
      return { result: await client.ping(opts) };
    case 'session':
      return { result: { sessionId: transport.sessionId ?? null,
        protocolVersion: transport.protocolVersion ?? null,
        server: client.getServerVersion() ?? null,
        capabilities: client.getServerCapabilities() ?? null } };
    case 'terminate':
      await transport.terminateSession();
      return { result: { sessionId: transport.sessionId ?? null } };
    default:
      throw new Error(`unknown step ${s.op}`);
  }
}

async function main() {
  const steps = JSON.parse(process.argv[process.argv.length - 1]);
  const transport = process.argv.includes('--stdio') ? stdioTransport() : httpTransport();
  const client = new Client({ name: 'toolgate-test-agent', version: '1.0.0' });
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  try {
    await client.connect(transport);
  } catch (e) {
    out({ ok: false, connect: true, error: errorOf(e) });
    return;
  }
  for (const s of steps) {
    try {
      out({ ok: true, ...(await step(client, transport, s)) });
    } catch (e) {
      out({ ok: false, error: errorOf(e) });
    }
  }
  await client.close();
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`agent: ${e?.stack ?? e}\n`);
  process.exit(1);
});
