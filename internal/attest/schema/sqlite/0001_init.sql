-- Attestation state shared by control-plane replicas, version 1 (SQLite). Times are
-- INTEGER microseconds since the Unix epoch, UTC. A nonce row is issued, then consumed
-- once (used_at); the credential-activation challenge issued with it, if any, is kept as
-- the SHA-256 of its secret until the enrollment or renewal that answers it.
CREATE TABLE attest_nonces (
    nonce         TEXT    NOT NULL PRIMARY KEY, -- hex of 32 random bytes
    subject       TEXT    NOT NULL,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER NOT NULL DEFAULT 0,
    secret_sha256 TEXT    NOT NULL DEFAULT '',  -- '' when no activation was issued or it was taken
    ek_name       TEXT    NOT NULL DEFAULT '',
    ak_name       TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX attest_nonces_subject ON attest_nonces (subject, used_at, expires_at);
CREATE INDEX attest_nonces_expires ON attest_nonces (expires_at);
