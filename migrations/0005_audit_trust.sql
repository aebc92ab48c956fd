-- 0005: retention and what the broker does not take on trust
-- (CONTRACT §10 "Audit an outsider can verify", proto/audit.md).
--
-- audit_cut: where `toolgatectl audit prune` cut the chain.  The records
-- up to seq were moved to an archive; the chain kept here goes on after
-- that record, whose hash was hash.  checkpoint is the signed checkpoint
-- (compact JWS, grant key) of that record: the line the archive ends
-- with, and where a verifier of what is left starts.  At most one row.
CREATE TABLE audit_cut (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  seq         INTEGER NOT NULL,
  hash        TEXT    NOT NULL,
  checkpoint  TEXT    NOT NULL
);

-- The broker loads the policy in force only when it matches the newest
-- policy.apply record: this finds that record without walking the chain,
-- and costs nothing on the other appends.
CREATE INDEX audit_policy ON audit (seq) WHERE event = 'policy.apply';

-- Records may be deleted only up to the cut (prune archives them first).
DROP TRIGGER audit_no_delete;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
WHEN OLD.seq > coalesce((SELECT seq FROM audit_cut), 0)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; toolgatectl audit prune archives old ones'); END;
