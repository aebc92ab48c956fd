-- 0002 (PostgreSQL): ../0002_approvals_killswitch.sql in PostgreSQL's
-- dialect: rejections, kill switches, and the change counter a decision
-- reads inside its transaction.  Every trip and reset also sends NOTIFY
-- toolgate 'k' in its transaction, so every broker hears of it at commit.

ALTER TABLE intents ADD COLUMN closed_by text;
ALTER TABLE intents ADD COLUMN closed_reason text;
CREATE INDEX intents_decided ON intents (status, decided_at);

CREATE TABLE killswitches (
  id            bigint  PRIMARY KEY,
  scope         text    NOT NULL CHECK (scope IN ('global','agent','tool')),
  target        text,
  reason        text    NOT NULL,
  tripped_by    text    NOT NULL,
  tripped_at    bigint  NOT NULL,
  reset_by      text,
  reset_at      bigint,
  reset_reason  text
);
CREATE INDEX killswitches_engaged ON killswitches (id) WHERE reset_at IS NULL;

CREATE TABLE counters (
  name   text    PRIMARY KEY,
  value  bigint  NOT NULL
);
INSERT INTO counters (name, value) VALUES ('killswitch', 0);
