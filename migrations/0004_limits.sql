-- 0004: usage of the policy's cumulative limits (CONTRACT §8.3,
-- proto/policy.md "How usage is kept").
--
-- A decision must not sum the intents table: usage is kept per limit and
-- key, as a running total (limit_usage) over per-second buckets
-- (limit_buckets) of the intents counted.  A bucket leaves the total when
-- it leaves the rolling window; an intent that is rejected or expires is
-- taken out of its bucket and the total.  So a decision reads one row per
-- limit that applies, whatever the history, and the window is exact to
-- the second (intents are timed in seconds).
--
-- Amounts are exact: whole units and micro-units in two integer columns
-- (an amount is below 10^15 whole units; no REAL anywhere).  limit_usage
-- holds them normalised (micro 0..999999); the broker adds and compares
-- them in 128-bit integers and never lets a total wrap.

-- What each limit counted when its usage was built: its tools,
-- principals, per, window and currency, as RFC 8785 JSON.  A policy that
-- changes any of these (or adds the limit) has that limit's usage
-- recounted from the intents of its window when it is applied; one that
-- drops the limit drops its usage.
CREATE TABLE limit_defs (
  name  TEXT PRIMARY KEY,
  def   TEXT NOT NULL
) WITHOUT ROWID;

-- One row per (limit, key) with counted intents.  key is the RFC 8785
-- text of the JSON array of the limit's "per" values; agent is the
-- caller's identity when "per" includes "agent" (who may see the row).
-- oldest: the "at" of the oldest bucket (0: none); newest: no bucket is
-- later (so a new second's bucket need not be looked for).
CREATE TABLE limit_usage (
  id      INTEGER PRIMARY KEY,
  name    TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  agent   TEXT,
  n       INTEGER NOT NULL,
  whole   INTEGER NOT NULL,
  micro   INTEGER NOT NULL,
  oldest  INTEGER NOT NULL,
  newest  INTEGER NOT NULL,
  UNIQUE (name, key)
);
CREATE INDEX limit_usage_agent ON limit_usage (agent, id)
  WHERE agent IS NOT NULL;

-- The intents counted under one usage row, by the second they were
-- created in (intents.created_at): how many and their amounts.
CREATE TABLE limit_buckets (
  usage_id  INTEGER NOT NULL REFERENCES limit_usage (id),
  at        INTEGER NOT NULL,
  n         INTEGER NOT NULL,
  whole     INTEGER NOT NULL,
  micro     INTEGER NOT NULL,
  PRIMARY KEY (usage_id, at)
) WITHOUT ROWID;

-- The limit a decision named (the first one breached), as the answer
-- showed it: {"name", "max", "used", "window", "frees_at"}.
ALTER TABLE intents ADD COLUMN limit_json TEXT;
