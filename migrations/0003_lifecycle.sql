-- 0003: what the lifecycle rules of CONTRACT §13 need from the schema.
--
-- args_sha256: an intent denied unknown_principal keeps no args, only
-- their hash, so a stranger's certificate cannot fill the disk.
--
-- The approval queue's closed lists (status allowed/rejected/expired,
-- newest first) only ever show intents that needed approval: index only
-- those, so the decisions made at once (nearly all of them) no longer pay
-- for that index.  The grant window's sweep looks for allowed intents not
-- yet redeemed, oldest first: a partial index holds exactly those, so the
-- sweep never walks the redeemed ones however many there are.
ALTER TABLE intents ADD COLUMN args_sha256 TEXT;
DROP INDEX intents_decided;
CREATE INDEX intents_closed ON intents (status, decided_at)
  WHERE approvals_required > 0;
CREATE INDEX intents_unredeemed ON intents (decided_at)
  WHERE status = 'allowed' AND redeemed_at IS NULL;
