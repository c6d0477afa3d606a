-- Workflow state, version 1 (PostgreSQL): every reserved or executed step per workflow id,
-- and the token that holds each non-repeatable (workflow, action, callee, resource).
-- Times are BIGINT microseconds since the Unix epoch.
CREATE TABLE workflow_steps (
    token    TEXT    NOT NULL PRIMARY KEY,
    workflow TEXT    NOT NULL,
    wf_id    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    callee   TEXT    NOT NULL,
    resource TEXT    NOT NULL,
    done     INTEGER NOT NULL DEFAULT 0,
    at       BIGINT NOT NULL
);
CREATE INDEX workflow_steps_run ON workflow_steps (workflow, wf_id, action, callee);

CREATE TABLE workflow_once (
    workflow TEXT NOT NULL,
    action   TEXT NOT NULL,
    callee   TEXT NOT NULL,
    resource TEXT NOT NULL,
    token    TEXT NOT NULL,
    PRIMARY KEY (workflow, action, callee, resource)
);
