-- 0003 (PostgreSQL): ../0003_lifecycle.sql in PostgreSQL's dialect: the
-- hash of args not kept, and partial indexes for the approval queue's
-- closed lists and the grant window's sweep.
ALTER TABLE intents ADD COLUMN args_sha256 text;
DROP INDEX intents_decided;
CREATE INDEX intents_closed ON intents (status, decided_at, seq)
  WHERE approvals_required > 0;
CREATE INDEX intents_unredeemed ON intents (decided_at)
  WHERE status = 'allowed' AND redeemed_at IS NULL;
