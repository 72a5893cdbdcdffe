-- The webhook outbox: one row per lifecycle event and receiver URL, written in the same
-- transaction as the registry change it reports, delivered by the routers' workers.
-- Portable subset: TEXT ids (UUID v7), BIGINT unix-millisecond timestamps.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    -- The event's id (X-Silo-Delivery); UUID v7, so it orders a tenant's events.
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- No foreign key: tenant.deleted outlives its tenant's row.
    tenant_id       TEXT NOT NULL,
    tenant_slug     TEXT NOT NULL,
    url             TEXT NOT NULL,
    -- The exact bytes every attempt sends and signs.
    body            TEXT NOT NULL,
    -- pending, delivered or failed (its attempts used up).
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A router delivering it holds it until then; another may take it over afterwards.
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (tenant_id, url, status, event_id);
