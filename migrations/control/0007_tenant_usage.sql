-- What each tenant uses: requests served (every router adds its count every few seconds) and
-- the last measurement of its users, projects and database size (by stats, or `silo tenant
-- usage --measure`), for the fleet view sorted by any of them.
CREATE TABLE tenant_usage (
    tenant_id      TEXT PRIMARY KEY,
    requests       BIGINT NOT NULL DEFAULT 0,
    users          BIGINT,
    projects       BIGINT,
    database_bytes BIGINT,
    measured_at    BIGINT
);
