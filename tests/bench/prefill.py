#!/usr/bin/env python3
"""prefill: the "growth" fixtures of issue 5's benchmark.

  prefill.py policy OUT [--principals 10000] [--rules 10000] [--limits 0]
      writes a policy with that many principals (agent-00000 ... plus the
      real demo identities, agent-payments among them) and that many rules
      spread over roles, agent-payments' own rules last in its roles so the
      evaluator cannot stop early, and that many cumulative limits (0 to
      10; the demo's own are dropped), every one of which counts the
      measured call (crm.lookup by agent-payments): keyed by agent, tool,
      everyone, the customer in args, with windows of a minute to a week,
      maxima never reached.

  prefill.py db DB [--intents 1000000] [--audit-key FILE]
      appends that many decided intents and one "decision" audit record each
      to a database that toolgated or toolgatectl --db has already migrated
      (schema migrations/0001 to 0005), in one transaction, and the usage
      of the applied policy's cumulative limits that those intents make: for
      each limit, the pending and allowed intents created inside its window
      whose tool and principal it covers, by key and second
      (limit_usage, limit_buckets; proto/policy.md "How usage is kept"),
      exactly what the broker counts when a policy adding the limit is
      applied (tests/integration/test_limits.py compares the two).  The allowed
      ones are marked redeemed, as a month of real traffic leaves them:
      one still redeemable after its grant window would be expired by the
      broker's sweeper (and the sweep is not what growth measures).  The audit
      records continue the existing hash chain exactly as broker/core/audit.c
      writes it (proto/audit.md, format 2): record = RFC 8785 JSON of
      {actor, at, details, event, format: 2, intent_id, seq}; hash =
      SHA-256 hex of prev_hash (hex text) followed by the record bytes;
      `toolgatectl --db DB audit verify` must pass afterwards.  With
      --audit-key (the broker's), each record is tagged and each allow
      carries its args_mac, as the broker writes them (proto/audit.md
      "Tags"), so a broker with that key verifies every tag at start.

Python standard library only (sqlite3, json, hashlib).  Owns nothing of the
broker: it writes rows the way the broker would, it never changes a schema.
"""

import argparse
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import time

GENESIS = "0" * 64


def canon(obj):
    """The canonical bytes broker/core/canon.c writes (RFC 8785): for our
    content (ASCII names and strings, small integers, no reals) that is
    compact JSON with sorted keys."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def audit_key(path):
    """(key id, key bytes) of the first key of an --audit-key file."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key = bytes.fromhex(line)
                return hashlib.sha256(key).hexdigest()[:16], key
    sys.exit("prefill: %s holds no key" % path)


def tagged(key, prev, text):
    """The record's bytes with its tag (proto/audit.md "Tags")."""
    kid, k = key
    mac = hmac.new(k, b"toolgate audit tag v1\n" + prev.encode() +
                   text.encode(), hashlib.sha256).hexdigest()
    return text[:-1] + ',"tag":"%s.%s"}' % (kid, mac)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _limit(name, per, window):
    return {"name": name, "tools": ["crm.*"], "per": per, "window": window,
            "max_count": 1000000000}


# Ten limits that all count crm.lookup (scripts/bench's measured call).
BENCH_LIMITS = [
    _limit("crm-agent-minute", ["agent"], 60),
    _limit("crm-agent-hourly", ["agent"], 3600),
    _limit("crm-agent-daily", ["agent"], 86400),
    _limit("crm-agent-weekly", ["agent"], 604800),
    _limit("crm-tool-daily", ["tool"], 86400),
    _limit("crm-all-hourly", [], 3600),
    _limit("crm-all-daily", [], 86400),
    _limit("crm-agent-tool-daily", ["agent", "tool"], 86400),
    _limit("crm-customer-daily", ["/customer"], 86400),
    _limit("crm-agent-customer-weekly", ["agent", "/customer"], 604800),
]


def pattern_match(pattern, tool):
    """policy_pattern_match: exact, or "prefix.*" and one more char."""
    if pattern.endswith(".*"):
        return tool.startswith(pattern[:-1]) and len(tool) > len(pattern) - 1
    return pattern == tool


def json_pointer(doc, ptr):
    """RFC 6901; None when there is no such member."""
    if ptr == "":
        return doc
    for part in ptr[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and \
                int(part) < len(doc) and (part == "0" or part[0] != "0"):
            doc = doc[int(part)]
        else:
            return None
    return doc


def limit_key(limit, agent, tool, args):
    """The usage key as the broker writes it: RFC 8785 text of the array
    of the per values (our values are short ASCII strings and integers,
    so compact sorted JSON is that text; none needs the sha256 form)."""
    vals = []
    for p in limit.get("per", ["agent"]):
        vals.append(agent if p == "agent" else tool if p == "tool" else
                    json_pointer(args, p))
    return canon(vals)


def amount_units(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 1000000 + int((frac + "000000")[:6])


class Usage:
    """The usage of the applied policy's limits that the intents written
    make, kept as the broker keeps it."""

    def __init__(self, limits, now):
        self.limits = limits
        self.now = now
        self.rows = {}      # (name, key) -> [agent, {at: [n, units]}]

    def add(self, agent, tool, args, status, created_at, amount):
        if status not in ("pending", "allowed"):
            return
        for l in self.limits:
            if created_at <= self.now - l["window"]:
                continue
            if not any(pattern_match(t, tool) for t in l["tools"]):
                continue
            if "principals" in l and agent not in l["principals"]:
                continue
            units = 0
            if "max_amount" in l:
                if amount is None or amount[1] != l["currency"]:
                    continue
                units = amount_units(amount[0])
            key = limit_key(l, agent, tool, args)
            row = self.rows.setdefault((l["name"], key), [
                agent if "agent" in l.get("per", ["agent"]) else None, {}])
            b = row[1].setdefault(created_at, [0, 0])
            b[0] += 1
            b[1] += units

    def write(self, db):
        for (name, key), (agent, buckets) in self.rows.items():
            n = sum(b[0] for b in buckets.values())
            units = sum(b[1] for b in buckets.values())
            cur = db.execute(
                "INSERT INTO limit_usage (name, key, agent, n, whole, micro, "
                "oldest, newest) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name, "
                "key) DO UPDATE SET n = n + excluded.n, oldest = "
                "min(oldest, excluded.oldest), newest = max(newest, "
                "excluded.newest) RETURNING id, n",
                (name, key, agent, n, units // 1000000, units % 1000000,
                 min(buckets), max(buckets)))
            uid = cur.fetchone()[0]
            if units:
                sys.exit("prefill: amount limits on top of existing usage "
                         "are not supported")
            db.executemany(
                "INSERT INTO limit_buckets (usage_id, at, n, whole, micro) "
                "VALUES (?,?,?,?,?) ON CONFLICT (usage_id, at) DO UPDATE "
                "SET n = n + excluded.n",
                [(uid, at, b[0], b[1] // 1000000, b[1] % 1000000)
                 for at, b in buckets.items()])
        return len(self.rows)


def cmd_policy(a):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "..", "policies", "example.json")) as f:
        pol = json.load(f)
    roles = pol["roles"]
    principals = pol["principals"]
    base_rules = sum(len(r.get("rules", [])) for r in roles.values())
    n_rules = max(a.rules - base_rules, 0)
    per_role = 100
    n_roles = (n_rules + per_role - 1) // per_role
    made = 0
    for r in range(n_roles):
        rules = []
        for k in range(min(per_role, n_rules - made)):
            i = made + k
            if i % 10 == 0:
                # prefix patterns make matching do more than one lookup
                rules.append({"tool": "svc%04d.*" % (i // 10)})
            elif i % 10 == 1:
                rules.append({"tool": "svc%04d.write" % (i // 10),
                              "approvals": 1,
                              "approvers": ["finance-approver"]})
            else:
                rules.append({"tool": "svc%04d.op%d" % (i // 10, i % 10)})
        made += len(rules)
        roles["bulk-%03d" % r] = {"rules": rules}
    n_agents = max(a.principals - len(principals), 0)
    for i in range(n_agents):
        principals["agent-%05d" % i] = {
            "roles": ["bulk-%03d" % (i % max(n_roles, 1)),
                      "bulk-%03d" % ((i * 7 + 3) % max(n_roles, 1))]
            if n_roles else []}
    # The measured agent holds ten bulk roles besides its own, so its
    # evaluation walks about a thousand non-matching rules first.
    ap = principals["agent-payments"]
    ap["roles"] = ["bulk-%03d" % r for r in range(min(10, n_roles))] + \
        ap["roles"]
    pol["limits"] = BENCH_LIMITS[:a.limits]
    total_rules = sum(len(r.get("rules", [])) for r in roles.values())
    with open(a.out, "w") as f:
        json.dump(pol, f, indent=1, sort_keys=True)
    print("prefill: policy with %d principals, %d roles, %d rules, %d "
          "limits -> %s" % (len(principals), len(roles), total_rules,
                            len(pol["limits"]), a.out))


def cmd_db(a):
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -262144")
    uv = db.execute("PRAGMA user_version").fetchone()[0]
    if uv < 4:
        sys.exit("prefill: %s is at schema %d; start toolgated or run "
                 "toolgatectl --db on it first" % (a.db, uv))
    row = db.execute("SELECT version, body FROM policy_versions "
                     "ORDER BY version DESC LIMIT 1").fetchone()
    if row is None:
        sys.exit("prefill: apply a policy first")
    pversion, body = row
    key = audit_key(a.audit_key) if a.audit_key else None
    policy = json.loads(body)
    agents = sorted(policy["principals"])[:1000]
    t_start = time.time()
    db.execute("BEGIN IMMEDIATE")
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC "
                      "LIMIT 1").fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    now = int(time.time())
    first_t = now - 30 * 86400
    usage = Usage(policy.get("limits", []), now)
    rnd = os.urandom

    intents = []
    audits = []
    chunk = 20000

    def flush():
        db.executemany(
            "INSERT INTO intents (id, agent, jti, tool, args, "
            "amount_value, amount_currency, reason, status, decision, "
            "reason_code, reason_text, policy_version, rule, "
            "approvals_required, approver_roles, intent_sha256, "
            "created_at, expires_at, decided_at, redeemed_at, redeemed_by) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", intents)
        db.executemany(
            "INSERT INTO audit (seq, event, intent_id, record, prev_hash, "
            "hash) VALUES (?,?,?,?,?,?)", audits)
        intents.clear()
        audits.clear()

    for i in range(a.intents):
        t = min(first_t + (i * (30 * 86400)) // max(a.intents, 1), now)
        iid = "in_" + rnd(16).hex()
        agent = agents[i % len(agents)]
        tool = "crm.lookup" if i % 3 else "svc%04d.op%d" % (i % 1000,
                                                            2 + i % 8)
        denied = (i % 10 == 9)
        status = "denied" if denied else "allowed"
        decision = "deny" if denied else "allow"
        code = "no_permission" if denied else "policy_allow"
        text = ("no rule of the caller's roles allows this tool"
                if denied else "allowed by policy")
        args = {"customer": "c-%d" % (i % 100000)}
        sha = hashlib.sha256(b"prefill-%d" % i).hexdigest()
        rule = None if denied else canon({"role": "bulk", "rule": i % 100,
                                          "tool": tool})
        usage.add(agent, tool, args, status, t, None)
        intents.append((iid, agent, "pf-%d" % i, tool, canon(args), None,
                        None, None, status, decision, code, text, pversion,
                        rule, 0, None, sha, t, None, t,
                        None if denied else t, None if denied else
                        "tool-payments"))
        seq += 1
        details = {"status": status, "reason_code": code, "tool": tool,
                   "policy_version": pversion, "approvals_required": 0,
                   "intent_sha256": sha, "args": args}
        if key and not denied:
            details["args_mac"] = hmac.new(
                key[1], b"toolgate audit args v1\n" + canon(args).encode(),
                hashlib.sha256).hexdigest()
        rec = canon({"seq": seq, "at": rfc3339(t), "actor": agent,
                     "event": "decision", "intent_id": iid,
                     "details": details, "format": 2})
        if key:
            rec = tagged(key, prev, rec)
        h = hashlib.sha256((prev + rec).encode()).hexdigest()
        audits.append((seq, "decision", iid, rec, prev, h))
        prev = h
        if len(intents) >= chunk:
            flush()
    flush()
    keys = usage.write(db)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print("prefill: %d intents and audit records (chain now at seq %d), "
          "usage of %d limit keys, in %.1f s" % (a.intents, seq, keys,
                                                 time.time() - t_start))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("policy")
    sp.add_argument("out")
    sp.add_argument("--principals", type=int, default=10000)
    sp.add_argument("--rules", type=int, default=10000)
    sp.add_argument("--limits", type=int, default=0,
                    choices=range(len(BENCH_LIMITS) + 1))
    sd = sub.add_parser("db")
    sd.add_argument("db")
    sd.add_argument("--intents", type=int, default=1000000)
    sd.add_argument("--audit-key", help="tag the records with this key file")
    a = p.parse_args()
    cmd_policy(a) if a.cmd == "policy" else cmd_db(a)


if __name__ == "__main__":
    main()
