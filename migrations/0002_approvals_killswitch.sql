-- 0002: what approvers decided (rejections), kill switches, and a change
-- counter the broker reads inside each decision's transaction so that a
-- trip by any thread or process is seen by the very next decision.

ALTER TABLE intents ADD COLUMN closed_by TEXT;      -- rejecting approver
ALTER TABLE intents ADD COLUMN closed_reason TEXT;  -- rejection reason
CREATE INDEX intents_decided ON intents (status, decided_at);

CREATE TABLE killswitches (
  id            INTEGER PRIMARY KEY,
  scope         TEXT    NOT NULL CHECK (scope IN ('global','agent','tool')),
  target        TEXT,             -- NULL for global
  reason        TEXT    NOT NULL,
  tripped_by    TEXT    NOT NULL,
  tripped_at    INTEGER NOT NULL,
  reset_by      TEXT,
  reset_at      INTEGER,
  reset_reason  TEXT
);
CREATE INDEX killswitches_engaged ON killswitches (id) WHERE reset_at IS NULL;

-- One row per counter; bumped in the same transaction as the change.
CREATE TABLE counters (
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('killswitch', 0);
