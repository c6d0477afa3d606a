-- Approvals schema, version 2 (PostgreSQL): the audience of the request (part of the
-- binding hash) and single use. consumed_at is 0 until a gate consumes the approval when
-- it forwards the approved call; the consuming UPDATE matches consumed_at = 0, so of
-- concurrent consumers exactly one changes the row (row lock, READ COMMITTED re-check).
ALTER TABLE approval_requests ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_requests ADD COLUMN consumed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approval_requests ADD COLUMN consumed_by TEXT NOT NULL DEFAULT '';
