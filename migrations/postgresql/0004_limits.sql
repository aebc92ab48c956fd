-- 0004 (PostgreSQL): usage of the policy's cumulative limits — the same
-- tables as ../0004_limits.sql (read its comments) in PostgreSQL's
-- dialect.  Several brokers count into one usage: a decision locks the
-- limit_usage row of each (limit, key) it checks (SELECT ... FOR UPDATE,
-- after INSERT ... ON CONFLICT DO NOTHING of an empty row when there is
-- none), so two brokers cannot both spend the same headroom, and a row
-- nobody holds any more is deleted with its buckets.  Amounts are whole
-- units and micro-units in bigint columns: no numeric, no floating point.

CREATE TABLE limit_defs (
  name  text  PRIMARY KEY,
  def   text  NOT NULL
);

CREATE TABLE limit_usage (
  id      bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name    text    NOT NULL,
  key     text    NOT NULL,
  agent   text,
  n       bigint  NOT NULL,
  whole   bigint  NOT NULL,
  micro   bigint  NOT NULL,
  oldest  bigint  NOT NULL,
  newest  bigint  NOT NULL,
  UNIQUE (name, key)
);
CREATE INDEX limit_usage_agent ON limit_usage (agent, id)
  WHERE agent IS NOT NULL;

CREATE TABLE limit_buckets (
  usage_id  bigint  NOT NULL REFERENCES limit_usage (id),
  at        bigint  NOT NULL,
  n         bigint  NOT NULL,
  whole     bigint  NOT NULL,
  micro     bigint  NOT NULL,
  PRIMARY KEY (usage_id, at)
);

ALTER TABLE intents ADD COLUMN limit_json text;
