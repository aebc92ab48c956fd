-- 0001: policy versions, intents, approvals, replay guard, audit chain.
-- Applied by toolgated at start and by toolgatectl --db, inside one
-- BEGIN IMMEDIATE transaction together with PRAGMA user_version.

CREATE TABLE policy_versions (
  version     INTEGER PRIMARY KEY,
  created_at  INTEGER NOT NULL,
  actor       TEXT    NOT NULL,
  sha256      TEXT    NOT NULL,
  body        TEXT    NOT NULL
);

-- One row per intent that reached a decision.  Amounts are kept as the
-- canonical decimal text the agent signed; no REAL columns anywhere.
CREATE TABLE intents (
  id                 TEXT PRIMARY KEY,
  agent              TEXT    NOT NULL,
  jti                TEXT    NOT NULL,
  tool               TEXT    NOT NULL,
  args               TEXT,              -- canonical JSON object or NULL
  amount_value       TEXT,
  amount_currency    TEXT,
  reason             TEXT,              -- the agent's reason for approvers
  status             TEXT    NOT NULL CHECK (status IN
                       ('pending','allowed','denied','rejected','expired')),
  decision           TEXT    NOT NULL CHECK (decision IN ('allow','pending','deny')),
  reason_code        TEXT    NOT NULL,
  reason_text        TEXT    NOT NULL,
  policy_version     INTEGER NOT NULL,
  rule               TEXT,              -- JSON: role, rule index, tool, tier
  approvals_required INTEGER NOT NULL DEFAULT 0,
  approver_roles     TEXT,              -- JSON array of role names
  intent_sha256      TEXT    NOT NULL,
  created_at         INTEGER NOT NULL,
  expires_at         INTEGER,           -- pending only
  decided_at         INTEGER,
  redeemed_at        INTEGER,
  redeemed_by        TEXT
);
CREATE INDEX intents_pending ON intents (created_at) WHERE status = 'pending';

-- id orders approvals as they were counted (grants list approvers in
-- approval order); the UNIQUE pair makes each approver count once.
CREATE TABLE approvals (
  id         INTEGER PRIMARY KEY,
  intent_id  TEXT    NOT NULL REFERENCES intents (id),
  approver   TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  comment    TEXT,
  UNIQUE (intent_id, approver)
);

-- Replay guard keyed on (iss, jti), never on token bytes (libb64 makes
-- signatures malleable).  Rows live until the intent's exp plus skew.
CREATE TABLE seen_jti (
  iss        TEXT    NOT NULL,
  jti        TEXT    NOT NULL,
  prune_at   INTEGER NOT NULL,
  PRIMARY KEY (iss, jti)
) WITHOUT ROWID;
CREATE INDEX seen_jti_prune ON seen_jti (prune_at);

-- The hash chain.  record holds the exact canonical bytes that were hashed.
CREATE TABLE audit (
  seq        INTEGER PRIMARY KEY,
  event      TEXT    NOT NULL,
  intent_id  TEXT,
  record     TEXT    NOT NULL,
  prev_hash  TEXT    NOT NULL,
  hash       TEXT    NOT NULL
);
CREATE INDEX audit_intent ON audit (intent_id) WHERE intent_id IS NOT NULL;

-- Accidents, not attackers: audit verify catches deliberate edits.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
