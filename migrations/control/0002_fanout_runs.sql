-- The history of migration fan-outs started through the admin API or the CLI.
CREATE TABLE fanout_runs (
    id             TEXT PRIMARY KEY,
    target_version BIGINT NOT NULL,
    concurrency    BIGINT NOT NULL,
    tenants        TEXT NOT NULL,
    status         TEXT NOT NULL,
    migrated       BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT
);
