-- 0007 (PostgreSQL): ../0007_mcp_calls.sql in PostgreSQL's dialect (the
-- same partial index): the intents an MCP tools/call repeated with the
-- same arguments may join, found by the call's hash.
CREATE INDEX intents_open_calls ON intents (intent_sha256)
  WHERE decision = 'pending' AND redeemed_at IS NULL
    AND status IN ('pending', 'allowed');
