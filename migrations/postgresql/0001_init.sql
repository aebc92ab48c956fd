-- 0001 (PostgreSQL): policy versions, intents, approvals, replay guard,
-- audit chain — the same schema as ../0001_init.sql in PostgreSQL's
-- dialect, plus what several brokers on one database need: the chain
-- head row.  Applied by the first toolgated or toolgatectl --db to
-- connect, inside one transaction holding the migration advisory lock,
-- together with the schema_version row (store_pg_db.c).
--
-- Times are unix seconds (bigint), amounts the canonical decimal text:
-- no floating point anywhere.  Ids that users see (policy versions, kill
-- switches) are assigned max + 1 under the chain-head lock, so they stay
-- gap-free like SQLite's; the others are identity columns.

CREATE TABLE policy_versions (
  version     bigint  PRIMARY KEY,
  created_at  bigint  NOT NULL,
  actor       text    NOT NULL,
  sha256      text    NOT NULL,
  body        text    NOT NULL
);

-- seq stands in for SQLite's rowid: the approval queue's tie-break.
CREATE TABLE intents (
  id                 text    PRIMARY KEY,
  seq                bigint  GENERATED ALWAYS AS IDENTITY,
  agent              text    NOT NULL,
  jti                text    NOT NULL,
  tool               text    NOT NULL,
  args               text,
  amount_value       text,
  amount_currency    text,
  reason             text,
  status             text    NOT NULL CHECK (status IN
                       ('pending','allowed','denied','rejected','expired')),
  decision           text    NOT NULL CHECK (decision IN ('allow','pending','deny')),
  reason_code        text    NOT NULL,
  reason_text        text    NOT NULL,
  policy_version     bigint  NOT NULL,
  rule               text,
  approvals_required integer NOT NULL DEFAULT 0,
  approver_roles     text,
  intent_sha256      text    NOT NULL,
  created_at         bigint  NOT NULL,
  expires_at         bigint,
  decided_at         bigint,
  redeemed_at        bigint,
  redeemed_by        text
);
CREATE INDEX intents_pending ON intents (created_at, seq) WHERE status = 'pending';

-- id orders approvals as they were counted (under the intent's row lock).
CREATE TABLE approvals (
  id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  intent_id  text    NOT NULL REFERENCES intents (id),
  approver   text    NOT NULL,
  at         bigint  NOT NULL,
  comment    text,
  UNIQUE (intent_id, approver)
);

-- Replay guard keyed on (iss, jti): INSERT ... ON CONFLICT DO NOTHING
-- makes a second claim from any broker a no-op, so the first one wins.
CREATE TABLE seen_jti (
  iss        text    NOT NULL,
  jti        text    NOT NULL,
  prune_at   bigint  NOT NULL,
  PRIMARY KEY (iss, jti)
);
CREATE INDEX seen_jti_prune ON seen_jti (prune_at);

-- The hash chain.  record holds the exact canonical bytes that were hashed.
CREATE TABLE audit (
  seq        bigint  PRIMARY KEY,
  event      text    NOT NULL,
  intent_id  text,
  record     text    NOT NULL,
  prev_hash  text    NOT NULL,
  hash       text    NOT NULL
);
CREATE INDEX audit_intent ON audit (intent_id) WHERE intent_id IS NOT NULL;

-- The newest record's seq and hash (NULL: the chain is empty), in one
-- row.  Every write transaction locks it (SELECT ... FOR UPDATE) before
-- its first write, so appends from all brokers form one chain with one
-- sequence, while readers and the other tables take no lock at all.
CREATE TABLE audit_head (
  one   boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq   bigint  NOT NULL,
  hash  text
);
INSERT INTO audit_head (seq, hash) VALUES (0, NULL);

-- Accidents, not attackers: audit verify catches deliberate edits.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'audit records are append-only'; END$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
