-- Fleet schema, version 1 (PostgreSQL): the policy bundles the control plane distributes
-- and the last heartbeat of every gate. Times are BIGINT microseconds since the Unix epoch.
CREATE TABLE fleet_bundles (
    revision   TEXT   NOT NULL PRIMARY KEY,
    signed     BYTEA  NOT NULL,
    key_id     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    pushed_at  BIGINT NOT NULL
);
CREATE INDEX fleet_bundles_pushed ON fleet_bundles (pushed_at);

CREATE TABLE fleet_gates (
    gate_id     TEXT   NOT NULL PRIMARY KEY,
    report      BYTEA  NOT NULL,
    reported_at BIGINT NOT NULL
);
