-- Fleet schema, version 1 (SQLite): the policy bundles the control plane distributes and
-- the last heartbeat of every gate. Times are INTEGER microseconds since the Unix epoch.
CREATE TABLE fleet_bundles (
    revision   TEXT    NOT NULL PRIMARY KEY,
    signed     BLOB    NOT NULL,
    key_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    pushed_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX fleet_bundles_pushed ON fleet_bundles (pushed_at);

CREATE TABLE fleet_gates (
    gate_id     TEXT    NOT NULL PRIMARY KEY,
    report      BLOB    NOT NULL,
    reported_at INTEGER NOT NULL
) STRICT;
