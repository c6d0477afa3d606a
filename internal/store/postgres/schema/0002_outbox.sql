-- Warden store schema, version 2 (PostgreSQL): the transactional outbox. An audit event
-- is inserted here in the same transaction as the change it records; the server appends
-- it to the audit log and then deletes it (docs/store.md, "Outbox").
CREATE TABLE outbox (
    seq        BIGSERIAL NOT NULL PRIMARY KEY,
    id         TEXT      NOT NULL UNIQUE,              -- the event's id
    data       BYTEA     NOT NULL,                     -- its canonical bytes
    created_at BIGINT    NOT NULL                      -- microseconds since the Unix epoch
);
