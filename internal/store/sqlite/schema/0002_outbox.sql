-- Warden store schema, version 2 (SQLite): the transactional outbox. An audit event is
-- inserted here in the same transaction as the change it records; the server appends it
-- to the audit log and then deletes it (docs/store.md, "Outbox").
CREATE TABLE outbox (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,                -- the event's id
    data       BLOB    NOT NULL,                       -- its canonical bytes
    created_at INTEGER NOT NULL
) STRICT;
