-- The control registry: which tenants exist, where their databases live, and in what state.
-- Portable subset: TEXT ids (UUID v7), BIGINT unix-millisecond timestamps.

CREATE TABLE tenants (
    id             TEXT PRIMARY KEY,
    slug           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    plan           TEXT NOT NULL,
    status         TEXT NOT NULL,
    server         TEXT NOT NULL,
    database_name  TEXT NOT NULL,
    schema_version BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE INDEX tenants_server ON tenants (server);
CREATE INDEX tenants_status ON tenants (status);

CREATE TABLE tenant_domains (
    domain     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);
