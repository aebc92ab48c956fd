// upstream.mjs: an MCP server for toolgate's integration tests, built with
// the official SDK's McpServer over Streamable HTTP (one server and
// transport per session, as the SDK's own examples do).  It offers
// `transfer` (amount, currency, to) and `lookup` (id), records every
// JSON-RPC message it receives with the headers it came with
// (Toolgate-Grant among them), and misbehaves on request.
//
//   node upstream.mjs [--port N] [--host H] [--tls-cert F --tls-key F]
//                     [--json] [--no-record] [--protocol V]
//
// --json answers requests with application/json instead of SSE;
// --protocol V answers initialize with revision V whatever the client asks
// (an upstream that speaks an older revision); --no-record keeps no calls (scripts/bench: memory stays flat).  Once
// listening it prints one line: {"port": N}.  Side endpoints, for tests:
//   GET  /_test/calls           every message received, oldest first
//   POST /_test/reset           forget them, back to normal behaviour
//   POST /_test/mode            {"METHOD": "BEHAVIOUR", ...} (below)
//   POST /_test/add_tool        {"name": N}: a new tool on every session;
//                               the SDK sends notifications/tools/list_changed
//                               (not with "silent": true: only a client that
//                               lists the tools again sees it)
//   POST /_test/forget_sessions every session forgotten, its streams left
//                               open: requests on it answer 404, as from a
//                               server that restarted behind a proxy
// Behaviours: for tools/call and tools/list: "hang" (never answer),
// "garbage" (200 with a body that is not JSON), "garbage-sse" (an SSE
// event that is not JSON), "close" (start an SSE answer, then drop the
// connection mid-event), "http500"; for tools/list also "duplicate"
// (transfer listed twice) and "bad-names" (names toolgate cannot offer).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const MAX_BODY = 8 * 1024 * 1024;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(name);

const calls = [];
let modes = {};
const extraTools = [];
const sessions = new Map(); // session id -> { server, transport }
let txCount = 0;

function addTool(server, name, silent = false) {
  const notify = server.sendToolListChanged;
  if (silent)
    server.sendToolListChanged = () => {};
  try {
    registerAdded(server, name);
  } finally {
    server.sendToolListChanged = notify;
  }
}

function registerAdded(server, name) {
  server.registerTool(name, {
    description: `added tool ${name}`,
    inputSchema: { note: z.string().optional() },
  }, async (args) => ({
    content: [{ type: 'text', text: `${name} called` }],
  }));
}

function newServer() {
  const server = new McpServer({ name: 'toolgate-test-upstream', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true } } });
  server.registerTool('transfer', {
    description: 'Move money to an account',
    inputSchema: {
      amount: z.union([z.string(), z.number()]),
      currency: z.string(),
      to: z.string(),
    },
  }, async ({ amount, currency, to }) => {
    txCount += 1;
    return {
      content: [{ type: 'text', text: `transferred ${amount} ${currency} to ${to}` }],
      structuredContent: { ref: `tx-${txCount}`, amount, currency, to },
    };
  });
  server.registerTool('lookup', {
    description: 'Look a customer record up',
    inputSchema: { id: z.union([z.string(), z.number()]) },
  }, async ({ id }) => ({
    content: [{ type: 'text', text: `record ${id}` }],
  }));
  for (const name of extraTools)
    addTool(server, name);
  return server;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

function record(req, msg) {
  if (flag('--no-record'))
    return;
  const h = req.headers;
  calls.push({
    method: msg && typeof msg === 'object' ? msg.method ?? null : null,
    id: msg && typeof msg === 'object' ? msg.id ?? null : null,
    params: msg && typeof msg === 'object' ? msg.params ?? null : null,
    grant: h['toolgate-grant'] ?? null,
    session: h['mcp-session-id'] ?? null,
    protocol: h['mcp-protocol-version'] ?? null,
    accept: h.accept ?? null,
    at: Date.now(),
  });
}

function duplicateList(id) {
  const schema = { type: 'object', properties: { amount: { type: 'string' } } };
  return {
    jsonrpc: '2.0', id, result: {
      tools: [
        { name: 'transfer', description: 'first transfer', inputSchema: schema },
        { name: 'transfer', description: 'second transfer', inputSchema: schema },
        { name: 'lookup', description: 'Look a customer record up', inputSchema: { type: 'object' } },
      ],
    },
  };
}

function badNamesList(id) {
  const schema = { type: 'object' };
  return {
    jsonrpc: '2.0', id, result: {
      tools: [
        { name: 'has space', inputSchema: schema },
        { name: 'x'.repeat(130), inputSchema: schema },
        { name: '', inputSchema: schema },
        { name: 'a..b', inputSchema: schema },
        { name: 'GetUser', description: 'upper case is fine', inputSchema: schema },
        { name: 7, inputSchema: schema },
        { description: 'no name', inputSchema: schema },
        { name: 'lookup', description: 'Look a customer record up', inputSchema: schema },
      ],
    },
  };
}

// Returns true when the request was answered (or deliberately not) here.
function misbehave(msg, req, res) {
  const mode = msg && typeof msg === 'object' ? modes[msg.method] : undefined;
  switch (mode) {
    case undefined:
      return false;
    case 'hang':
      return true;
    case 'garbage':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('this is not JSON {');
      return true;
    case 'garbage-sse':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: message\ndata: {"jsonrpc":"2.0","id":\n\n');
      return true;
    case 'close':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"jsonrpc":"2.0","id":' + JSON.stringify(msg.id) + ',"res');
      setTimeout(() => res.socket?.destroy(), 50);
      return true;
    case 'http500':
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('upstream exploded');
      return true;
    case 'duplicate':
      sendJson(res, 200, duplicateList(msg.id));
      return true;
    case 'bad-names':
      sendJson(res, 200, badNamesList(msg.id));
      return true;
    default:
      return false;
  }
}

// The SDK (1.32, typescript-sdk issue #2559) never drops a JSON-mode
// POST's entry from its stream map, so a long-lived session grows by one
// entry (and its closures) per call: about 6 KB, 200 MB per bench run,
// and a heap whose garbage collection slowed every later call.  Each
// entry is dropped as its answer is resolved, as the SDK's own fix does;
// where the private fields are not as expected this does nothing.
function plugJsonStreamLeak(transport) {
  const map = transport._webStandardTransport?._streamMapping;
  if (!(map instanceof Map))
    return;
  const set = map.set.bind(map);
  map.set = (id, entry) => {
    if (entry && typeof entry.resolveJson === 'function' && !entry.controller) {
      const resolve = entry.resolveJson;
      entry.resolveJson = (response) => {
        map.delete(id);
        resolve(response);
      };
    }
    return set(id, entry);
  };
}

async function handleMcp(req, res) {
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'POST') {
    let text, msg;
    try {
      text = await readBody(req);
      msg = JSON.parse(text);
    } catch (e) {
      record(req, null);
      sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      return;
    }
    record(req, msg);
    if (misbehave(msg, req, res))
      return;
    let entry = sid ? sessions.get(sid) : undefined;
    if (!entry && !sid && isInitializeRequest(msg)) {
      if (option('--protocol'))
        msg.params.protocolVersion = option('--protocol');
      const server = newServer();
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: flag('--json'),
        onsessioninitialized: (id) => sessions.set(id, { server, transport }),
      });
      transport.onclose = () => {
        if (transport.sessionId)
          sessions.delete(transport.sessionId);
      };
      if (flag('--json'))
        plugJsonStreamLeak(transport);
      await server.connect(transport);
      await transport.handleRequest(req, res, msg);
      return;
    }
    if (!entry) {
      sendJson(res, sid ? 404 : 400, { jsonrpc: '2.0', id: null,
        error: { code: -32000, message: sid ? 'Session not found' : 'No session' } });
      return;
    }
    await entry.transport.handleRequest(req, res, msg);
    return;
  }
  const entry = sid ? sessions.get(sid) : undefined;
  if (!entry) {
    sendJson(res, sid ? 404 : 400, { jsonrpc: '2.0', id: null,
      error: { code: -32000, message: 'Session not found' } });
    return;
  }
  await entry.transport.handleRequest(req, res);
}

async function handleTest(req, res, path) {
  if (req.method === 'GET' && path === '/_test/calls') {
    sendJson(res, 200, { calls, sessions: sessions.size });
    return;
  }
  const text = req.method === 'POST' ? await readBody(req) : '';
  const body = text ? JSON.parse(text) : {};
  if (path === '/_test/reset') {
    calls.length = 0;
    modes = {};
  } else if (path === '/_test/mode') {
    modes = { ...modes, ...body };
  } else if (path === '/_test/forget_sessions') {
    sessions.clear();
  } else if (path === '/_test/add_tool') {
    extraTools.push(body.name);
    for (const { server } of sessions.values())
      addTool(server, body.name, body.silent === true);
  } else {
    sendJson(res, 404, { error: 'no such test endpoint' });
    return;
  }
  sendJson(res, 200, { ok: true });
}

async function handle(req, res) {
  const path = new URL(req.url, 'http://x').pathname;
  try {
    if (path === '/mcp')
      await handleMcp(req, res);
    else if (path.startsWith('/_test/'))
      await handleTest(req, res, path);
    else
      sendJson(res, 404, { error: 'not found' });
  } catch (e) {
    if (!res.headersSent)
      sendJson(res, 500, { error: String(e) });
  }
}

const certFile = option('--tls-cert');
const server = certFile
  ? https.createServer({ cert: readFileSync(certFile), key: readFileSync(option('--tls-key')) }, handle)
  : http.createServer(handle);
server.keepAliveTimeout = 30000;
server.listen(Number(option('--port', '0')), option('--host', '127.0.0.1'), () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => process.exit(0));
