#!/usr/bin/env python3
"""prefill: the "growth" fixtures of issue 5's benchmark.

  prefill.py policy OUT [--principals 10000] [--rules 10000]
      writes a policy with that many principals (agent-00000 ... plus the
      real demo identities, agent-payments among them) and that many rules
      spread over roles, agent-payments' own rules last in its roles so the
      evaluator cannot stop early.

  prefill.py db DB [--intents 1000000] [--audit-key FILE]
      appends that many decided intents and one "decision" audit record each
      to a database that toolgated or toolgatectl --db has already migrated
      (schema migrations/0001 to 0005), in one transaction.  The allowed
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
    total_rules = sum(len(r.get("rules", [])) for r in roles.values())
    with open(a.out, "w") as f:
        json.dump(pol, f, indent=1, sort_keys=True)
    print("prefill: policy with %d principals, %d roles, %d rules -> %s" %
          (len(principals), len(roles), total_rules, a.out))


def cmd_db(a):
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -262144")
    uv = db.execute("PRAGMA user_version").fetchone()[0]
    if uv < 2:
        sys.exit("prefill: %s is at schema %d; start toolgated or run "
                 "toolgatectl --db on it first" % (a.db, uv))
    row = db.execute("SELECT version, body FROM policy_versions "
                     "ORDER BY version DESC LIMIT 1").fetchone()
    if row is None:
        sys.exit("prefill: apply a policy first")
    pversion, body = row
    key = audit_key(a.audit_key) if a.audit_key else None
    agents = sorted(json.loads(body)["principals"])[:1000]
    t_start = time.time()
    db.execute("BEGIN IMMEDIATE")
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC "
                      "LIMIT 1").fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    now = int(time.time())
    first_t = now - 30 * 86400
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
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print("prefill: %d intents and audit records (chain now at seq %d) in "
          "%.1f s" % (a.intents, seq, time.time() - t_start))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("policy")
    sp.add_argument("out")
    sp.add_argument("--principals", type=int, default=10000)
    sp.add_argument("--rules", type=int, default=10000)
    sd = sub.add_parser("db")
    sd.add_argument("db")
    sd.add_argument("--intents", type=int, default=1000000)
    sd.add_argument("--audit-key", help="tag the records with this key file")
    a = p.parse_args()
    cmd_policy(a) if a.cmd == "policy" else cmd_db(a)


if __name__ == "__main__":
    main()
