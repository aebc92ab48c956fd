-- 0006 (PostgreSQL): events out (CONTRACT §10) — the same schema as
-- ../0006_outbox.sql in PostgreSQL's dialect.  An event is written to
-- outbox in the same transaction as the change it reports (under the
-- chain-head lock, so ids are handed out in commit order: the delivery
-- order), one row per sink that wants it, and deleted once that sink has
-- it (or gave it up, or the bound dropped it).  Each sink's row holds its
-- lease (which broker delivers to it now: one at a time, so delivery
-- stays in order across brokers), its back-off and its counters.

CREATE TABLE notify_sinks (
  name               text    PRIMARY KEY,
  events             text    NOT NULL,   -- the notify line's patterns
  target             text    NOT NULL,   -- scheme://host:port, no path
  lease_owner        text,               -- "host/listen" of the broker
  lease_until        bigint  NOT NULL DEFAULT 0,
  attempts           bigint  NOT NULL DEFAULT 0,   -- failures in a row
  next_at            bigint  NOT NULL DEFAULT 0,   -- next attempt
  delivered          bigint  NOT NULL DEFAULT 0,
  failed             bigint  NOT NULL DEFAULT 0,   -- failed attempts
  given_up           bigint  NOT NULL DEFAULT 0,
  dropped            bigint  NOT NULL DEFAULT 0,
  last_error         text,
  last_error_at      bigint,
  last_delivered_at  bigint
);

-- An audit.record row names its record (audit_seq) instead of copying it.
CREATE TABLE outbox (
  id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sink       text    NOT NULL,
  event_id   text    NOT NULL,           -- "ev_...": Toolgate-Delivery
  type       text    NOT NULL,
  at         bigint  NOT NULL,
  audit_seq  bigint,
  data       text                        -- JSON object; NULL: audit.record
);
CREATE INDEX outbox_sink ON outbox (sink, id);

-- queue: bumped with every change of the approval queue; checkpoint:
-- when the last audit.checkpoint event was written (one per period
-- between all brokers).
INSERT INTO counters (name, value) VALUES ('queue', 0), ('checkpoint', 0);
