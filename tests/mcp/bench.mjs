// bench.mjs: the MCP gateway's part of scripts/bench.  One allowed
// tools/call, the same call straight to the upstream and through
// toolgated, measured in one run with the same client: at one
// connection each, blocks of calls alternate direct / gateway (the
// latency the gateway adds), then a phase of each at --connections
// (calls/s).  A benchmark, not a test: nothing passes or fails on the
// figures.  Only calls answered with a plain tool result count as calls
// (latencies and calls/s); anything else is an error, counted by kind:
// http_STATUS, rpc_CODE (a JSON-RPC error), deny_REASON or pending (a
// toolgate refusal), forward_failed / forward_not_sent (the gateway could
// not forward), tool_error (the tool's own isError result), bad_answer
// (no JSON-RPC answer to this call), network.  The first answer of each
// kind goes to stderr.
//
//   node bench.mjs --direct URL --direct-tool NAME
//                  --gateway URL --gateway-tool NAME --cert F --key F --ca F
//                  [--duration S] [--warmup S] [--connections N]
//                  [--intents URL --intent-iss NAME]
//
// --intents: the intent path's auto-allow decision (POST URL/v1/intents,
// a crm.lookup intent signed by --key as --intent-iss, presigned before
// the run) is the third target of the one-connection alternation, through
// the same client stack (undici over mTLS) as the gateway:
// decision1_p50_ms and same_client_ratio (added p50 / its p50) join the
// line.
//
// Prints one line: mcpbench direct1_p50_ms=... gateway1_p50_ms=...
// added_p50_ms=... added_p99_ms=... directN_rps=... gatewayN_rps=...
// errors=N error_kinds=KIND:N,...  (rps: successful calls only).
// Exits 3 after the line when errors dominate a phase (more errors than
// calls): its figures then measure refusals, not forwards.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { Agent, request } from 'undici';

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const DURATION = Number(option('--duration', '5')) * 1000;
const WARMUP = Number(option('--warmup', '1')) * 1000;
const CONNS = Number(option('--connections', '16'));
const ACCEPT = 'application/json, text/event-stream';

function target(url, tool, tls) {
  return {
    url, tool,
    dispatcher: new Agent({ connections: CONNS + 1, pipelining: 1,
      keepAliveTimeout: 60000, connect: tls }),
    session: null,
  };
}

const direct = target(option('--direct'), option('--direct-tool'));
const agentTls = {
  cert: readFileSync(option('--cert')), key: readFileSync(option('--key')),
  ca: readFileSync(option('--ca')),
};
const gateway = target(option('--gateway'), option('--gateway-tool'),
  agentTls);
const intents = option('--intents') ?
  target(`${option('--intents')}/v1/intents`, null, agentTls) : null;

// Enough signed intents for the one-connection phase (each decision
// takes well over 0.3 ms), signed before it so that signing is not
// measured; exp - iat is the contract's 300 s.
function presign(iss, n) {
  const key = createPrivateKey(agentTls.key);
  const b64 = (x) => Buffer.from(x).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'ES256', typ: 'JWT' }));
  const iat = Math.floor(Date.now() / 1000), tag = randomBytes(6).toString('hex');
  const pool = [];
  for (let i = 0; i < n; i++) {
    const body = b64(JSON.stringify({ iss, aud: 'toolgate',
      jti: `bench-${tag}-${i}`, iat, exp: iat + 300, tool: 'crm.lookup',
      args: { customer: `c-${i % 1000}` } }));
    const sig = sign('sha256', Buffer.from(`${head}.${body}`),
      { key, dsaEncoding: 'ieee-p1363' });
    pool.push(`${head}.${body}.${b64(sig)}`);
  }
  return pool;
}

async function post(t, msg) {
  const headers = { 'content-type': 'application/json', accept: ACCEPT };
  if (t.session) {
    headers['mcp-session-id'] = t.session;
    headers['mcp-protocol-version'] = '2025-06-18';
  }
  const r = await request(t.url, { method: 'POST', headers,
    body: JSON.stringify(msg), dispatcher: t.dispatcher });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text };
}

// The JSON-RPC message of an answer: JSON, or the last SSE event's data.
function message(text) {
  if (text.startsWith('{'))
    return JSON.parse(text);
  const data = text.split('\n').filter((l) => l.startsWith('data: '));
  return JSON.parse(data[data.length - 1].slice(6));
}

async function connect(t) {
  const r = await post(t, { jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: { name: 'toolgate-bench', version: '1' } } });
  if (r.status !== 200 || !r.headers['mcp-session-id'])
    throw new Error(`${t.url}: initialize answered ${r.status}: ${r.text}`);
  t.session = r.headers['mcp-session-id'];
  await post(t, { jsonrpc: '2.0', method: 'notifications/initialized' });
}

// The gateway reads the upstream's tools by itself: wait for ours.
async function offered(t) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await post(t, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const m = r.status === 200 ? message(r.text) : null;
    if (m?.result?.tools?.some((x) => x.name === t.tool))
      return;
    if (Date.now() > deadline)
      throw new Error(`${t.url} does not offer ${t.tool}: ${r.text}`);
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

// What an answer to tools/call `id` was: 'ok' or the kind of error.
function kindOf(r, id) {
  if (r.status !== 200)
    return `http_${r.status}`;
  let m;
  try {
    m = message(r.text);
  } catch (e) {
    return 'bad_answer';
  }
  if (m === null || typeof m !== 'object' || m.id !== id)
    return 'bad_answer';
  if (m.error)
    return `rpc_${m.error.code}`;
  if (!m.result || typeof m.result !== 'object')
    return 'bad_answer';
  if (!m.result.isError)
    return 'ok';
  const tg = m.result._meta?.toolgate;
  if (tg?.decision === 'deny')
    return `deny_${tg.reason_code}`;
  if (tg?.status === 'pending')
    return 'pending';
  if (tg?.forward)
    return `forward_${tg.forward}`;
  return 'tool_error';
}

const firstSeen = new Set();
function note(kind, text) {
  if (firstSeen.has(kind))
    return;
  firstSeen.add(kind);
  process.stderr.write(`bench.mjs: first ${kind}: ${String(text).slice(0, 400)}\n`);
}

// One presigned intent decided: 'ok' when allowed at once.
async function decide(t) {
  const jws = t.pool.pop();
  if (jws === undefined)
    return 'pool_dry';
  let r, text;
  try {
    r = await request(t.url, { method: 'POST', body: jws,
      headers: { 'content-type': 'application/jose' },
      dispatcher: t.dispatcher });
    text = await r.body.text();
  } catch (e) {
    note('network', e?.message ?? e);
    return 'network';
  }
  let status;
  try {
    status = JSON.parse(text).status;
  } catch (e) {
    status = undefined;
  }
  const kind = r.statusCode === 200 && status === 'allowed' ? 'ok' :
    `intent_${r.statusCode}`;
  if (kind !== 'ok')
    note(kind, `${t.url}: HTTP ${r.statusCode}: ${text}`);
  return kind;
}

let nextId = 10;
async function call(t) {
  if (t.pool)
    return decide(t);
  const id = nextId++;
  let r;
  try {
    r = await post(t, { jsonrpc: '2.0', id, method: 'tools/call',
      params: { name: t.tool, arguments: { id: 'c-1' } } });
  } catch (e) {
    note('network', e?.message ?? e);
    return 'network';
  }
  const kind = kindOf(r, id);
  if (kind !== 'ok')
    note(kind, `${t.url}: HTTP ${r.status}: ${r.text}`);
  return kind;
}

function quantile(sorted, q) {
  if (sorted.length === 0)
    return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// Closed loop on conns connections for the duration, after the warm-up.
async function phase(t, conns) {
  const lat = [];
  const kinds = new Map();
  let errors = 0;
  const start = Date.now(), measureFrom = start + WARMUP;
  const end = measureFrom + DURATION;
  async function loop() {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      const kind = await call(t);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (Date.now() < measureFrom)
        continue;
      if (kind === 'ok') {
        lat.push(ms);
      } else {
        errors++;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
    }
  }
  await Promise.all(Array.from({ length: conns }, loop));
  lat.sort((a, b) => a - b);
  // Successful calls only: a refusal is not a forward.
  return { rps: lat.length / (DURATION / 1000), calls: lat.length,
    p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), errors, kinds };
}

// One connection each, the targets alternated in blocks of BLOCK calls
// (a b c, b c a, ...) for the duration after the warm-up: each is
// measured on a warm path, as a closed loop of its own would be, and all
// see the same machine and the same upstream whatever drifts meanwhile.
// The first calls of a block, after the switch, are not counted.  rps:
// calls over the time spent in that target's own calls.
const BLOCK = 50, BLOCK_SKIP = 3;
async function alternatedPhase(targets) {
  const runs = targets.map(() => ({ lat: [], kinds: new Map(), errors: 0,
    busy: 0 }));
  const start = Date.now(), measureFrom = start + WARMUP;
  const end = measureFrom + DURATION;
  for (let n = 0; Date.now() < end; n++) {
    for (let k = 0; k < targets.length; k++) {
      const i = (n + k) % targets.length;
      for (let c = 0; c < BLOCK; c++) {
        const t0 = process.hrtime.bigint();
        const kind = await call(targets[i]);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (Date.now() < measureFrom || c < BLOCK_SKIP)
          continue;
        const r = runs[i];
        if (kind === 'ok') {
          r.lat.push(ms);
          r.busy += ms;
        } else {
          r.errors++;
          r.kinds.set(kind, (r.kinds.get(kind) ?? 0) + 1);
        }
      }
    }
  }
  return runs.map((r) => {
    r.lat.sort((x, y) => x - y);
    return { rps: r.busy > 0 ? r.lat.length / (r.busy / 1000) : 0,
      calls: r.lat.length, p50: quantile(r.lat, 0.5),
      p99: quantile(r.lat, 0.99), errors: r.errors, kinds: r.kinds };
  });
}

async function main() {
  await connect(direct);
  await connect(gateway);
  await offered(gateway);
  if (intents)
    intents.pool = presign(option('--intent-iss'),
      Math.ceil((DURATION + WARMUP) / 1000 * 3000));
  const [d1, g1, i1] = await alternatedPhase(intents ?
    [direct, gateway, intents] : [direct, gateway]);
  const dn = await phase(direct, CONNS);
  const gn = await phase(gateway, CONNS);
  const f = (x) => x.toFixed(3);
  const phases = { direct1: d1, gateway1: g1, directN: dn, gatewayN: gn };
  if (i1)
    phases.decision1 = i1;
  const kinds = new Map();
  for (const p of Object.values(phases))
    for (const [k, n] of p.kinds)
      kinds.set(k, (kinds.get(k) ?? 0) + n);
  const kindText = [...kinds].map(([k, n]) => `${k}:${n}`).join(',') ||
    'none';
  const dominated = Object.entries(phases).filter(([, p]) =>
    p.errors > p.calls).map(([name]) => name);
  process.stdout.write(`mcpbench direct1_p50_ms=${f(d1.p50)} ` +
    `direct1_p99_ms=${f(d1.p99)} gateway1_p50_ms=${f(g1.p50)} ` +
    `gateway1_p99_ms=${f(g1.p99)} added_p50_ms=${f(g1.p50 - d1.p50)} ` +
    `added_p99_ms=${f(g1.p99 - d1.p99)} direct1_rps=${d1.rps.toFixed(1)} ` +
    `gateway1_rps=${g1.rps.toFixed(1)} directN_rps=${dn.rps.toFixed(1)} ` +
    `gatewayN_rps=${gn.rps.toFixed(1)} conns=${CONNS} ` +
    (i1 ? `decision1_p50_ms=${f(i1.p50)} decision1_p99_ms=${f(i1.p99)} ` +
      `same_client_ratio=${(i1.p50 > 0 ? (g1.p50 - d1.p50) / i1.p50 : 0).toFixed(2)} ` : '') +
    `errors=${d1.errors + g1.errors + dn.errors + gn.errors + (i1 ? i1.errors : 0)} ` +
    `error_kinds=${kindText} ` +
    `errors_dominate=${dominated.join(',') || 'none'}\n`);
  await direct.dispatcher.close();
  await gateway.dispatcher.close();
  if (intents)
    await intents.dispatcher.close();
  if (dominated.length > 0) {
    process.stderr.write(`bench.mjs: errors dominate ${dominated.join(', ')} ` +
      `(${kindText}): those figures measure refusals, not calls\n`);
    process.exitCode = 3;
  }
}

main().catch((e) => {
  process.stderr.write(`bench.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
