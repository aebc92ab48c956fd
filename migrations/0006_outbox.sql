-- 0006: events out (CONTRACT §10).  An event is written here in the same
-- transaction as the change it reports, one row per sink that wants it,
-- and deleted once that sink has it (or gave it up, or the bound dropped
-- it).  Each sink's row holds its lease (which broker delivers to it now:
-- one at a time, so delivery stays in order), its back-off and its
-- counters, so all of them survive restarts and are shared by every
-- broker on the database.

CREATE TABLE notify_sinks (
  name               TEXT PRIMARY KEY,
  events             TEXT    NOT NULL,   -- the notify line's patterns
  target             TEXT    NOT NULL,   -- scheme://host:port, no path
  lease_owner        TEXT,               -- "host/listen" of the broker
  lease_until        INTEGER NOT NULL DEFAULT 0,
  attempts           INTEGER NOT NULL DEFAULT 0,   -- failures in a row
  next_at            INTEGER NOT NULL DEFAULT 0,   -- next attempt
  delivered          INTEGER NOT NULL DEFAULT 0,
  failed             INTEGER NOT NULL DEFAULT 0,   -- failed attempts
  given_up           INTEGER NOT NULL DEFAULT 0,
  dropped            INTEGER NOT NULL DEFAULT 0,
  last_error         TEXT,
  last_error_at      INTEGER,
  last_delivered_at  INTEGER
);

-- id is the delivery order of a sink's events.  An audit.record row names
-- its record (audit_seq) instead of copying it: the record is read when
-- it is sent, so a SIEM stream does not store the audit twice.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY,
  sink       TEXT    NOT NULL,
  event_id   TEXT    NOT NULL,           -- "ev_...": Toolgate-Delivery
  type       TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  audit_seq  INTEGER,
  data       TEXT                        -- JSON object; NULL: audit.record
);
CREATE INDEX outbox_sink ON outbox (sink, id);

-- queue: bumped with every change of the approval queue (a new pending
-- intent, one leaving pending, an approval), so long-polls on the queue
-- (GET /v1/approvals?wait=N&since=GEN) see changes by any process.
-- checkpoint: when the last audit.checkpoint event was written, so that
-- several brokers on one database write one per period between them.
INSERT INTO counters (name, value) VALUES ('queue', 0), ('checkpoint', 0);
