-- Approvals schema, version 1 (PostgreSQL). Times are BIGINT microseconds since the Unix
-- epoch, UTC.
CREATE TABLE approval_requests (
    id          TEXT    NOT NULL PRIMARY KEY,
    requester   TEXT    NOT NULL,
    filed_by    TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    amount      BIGINT NOT NULL,
    currency    TEXT    NOT NULL,
    intent_hash TEXT    NOT NULL,
    required    BIGINT NOT NULL CHECK (required > 0),
    policy_id   TEXT    NOT NULL,
    workflow    TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX approval_requests_created ON approval_requests (created_at);

CREATE TABLE approval_decisions (
    approval_id TEXT    NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
    approver    TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason      TEXT    NOT NULL,
    statement   BYTEA   NOT NULL,
    signature   BYTEA   NOT NULL,
    key_id      TEXT    NOT NULL,
    decided_at  BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

CREATE TABLE approval_approvers (
    name       TEXT    NOT NULL PRIMARY KEY,
    public_key BYTEA   NOT NULL,
    spiffe_id  TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);
