-- Warden store schema, version 1 (SQLite). Times are INTEGER microseconds since the Unix
-- epoch, UTC. STRICT tables reject values of the wrong type.
CREATE TABLE entries (
    name       TEXT    NOT NULL PRIMARY KEY,
    spiffe_id  TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    zone       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attrs      BLOB    NOT NULL DEFAULT x''
) STRICT;

CREATE TABLE join_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,           -- SHA-256 of the secret
    entry_name TEXT    NOT NULL REFERENCES entries (name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER                                 -- NULL while unused
) STRICT;
CREATE INDEX join_tokens_entry ON join_tokens (entry_name);

CREATE TABLE svids (
    serial     TEXT    NOT NULL PRIMARY KEY,           -- lower-case hex
    spiffe_id  TEXT    NOT NULL,
    entry_name TEXT    NOT NULL,                       -- no FK: server/admin SVIDs have no entry
    kind       TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX svids_spiffe_id ON svids (spiffe_id);

CREATE TABLE trust_states (
    version    INTEGER NOT NULL PRIMARY KEY CHECK (version > 0),
    signed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
