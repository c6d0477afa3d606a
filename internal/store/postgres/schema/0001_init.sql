-- Warden store schema, version 1 (PostgreSQL). Names use the "C" collation so that
-- ORDER BY name is byte order, as in SQLite, whatever the database locale.
CREATE TABLE entries (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    spiffe_id  TEXT        NOT NULL UNIQUE,
    role       TEXT        NOT NULL,
    class      TEXT        NOT NULL,
    zone       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attrs      BYTEA       NOT NULL DEFAULT ''::bytea
);

CREATE TABLE join_tokens (
    hash       BYTEA       NOT NULL PRIMARY KEY,       -- SHA-256 of the secret
    entry_name TEXT COLLATE "C" NOT NULL REFERENCES entries (name) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ                             -- NULL while unused
);
CREATE INDEX join_tokens_entry ON join_tokens (entry_name);

CREATE TABLE svids (
    serial     TEXT        NOT NULL PRIMARY KEY,       -- lower-case hex
    spiffe_id  TEXT        NOT NULL,
    entry_name TEXT        NOT NULL,                   -- no FK: server/admin SVIDs have no entry
    kind       TEXT        NOT NULL,
    not_before TIMESTAMPTZ NOT NULL,
    not_after  TIMESTAMPTZ NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX svids_spiffe_id ON svids (spiffe_id);

CREATE TABLE trust_states (
    version    BIGINT      NOT NULL PRIMARY KEY CHECK (version > 0),
    signed     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
