-- 0007: what the MCP gateway (CONTRACT §9) needs from the schema.
--
-- A tools/call that needs approval and is called again with the same
-- arguments joins the intent it made instead of making a new one.  Such
-- an intent's intent_sha256 is the hash of the call itself (the RFC 8785
-- text of {"args", "iss", "tool"}: proto/mcp.md), so the repeat finds it
-- by that hash.  Only intents a repeat can join are indexed: decided
-- pending, still pending or allowed, and not yet redeemed (the forward
-- redeems them); every other intent, decided at once or closed, stays
-- out of the index.
CREATE INDEX intents_open_calls ON intents (intent_sha256)
  WHERE decision = 'pending' AND redeemed_at IS NULL
    AND status IN ('pending', 'allowed');
