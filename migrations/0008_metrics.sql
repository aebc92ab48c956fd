-- 0008: what /metrics reads without scanning the intents (CONTRACT §12).
--
-- The number of pending intents, kept in the counters table: the SQLite
-- engine adds one when it stores a pending intent and takes one away
-- when an intent leaves pending, in the same transaction, so the gauge is
-- right whichever process (broker or toolgatectl --db) made the change.
--
-- Pending intents past half their approval TTL (the alert of
-- proto/metrics.md): an index on the moment each one reaches it, so the
-- scrape reads only the few that have.
INSERT INTO counters (name, value)
  SELECT 'pending', count(*) FROM intents WHERE status = 'pending';
CREATE INDEX intents_pending_half ON intents
  ((created_at + (expires_at - created_at) / 2)) WHERE status = 'pending';
