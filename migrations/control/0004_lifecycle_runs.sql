-- Every lifecycle run on a tenant (backup, restore, clone, move), whoever started it: what was
-- asked, how it ended, and why not when it failed. Kept after the tenant is deleted.
CREATE TABLE lifecycle_runs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    slug        TEXT NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    error       TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX lifecycle_runs_tenant ON lifecycle_runs (tenant_id, started_at);
