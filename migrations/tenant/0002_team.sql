-- Team features: invitations, API tokens and the audit log, all inside the tenant's database.

-- An invitation token is shown once and stored as its SHA-256; it works once, until it expires.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    created_at  BIGINT NOT NULL
);

-- API tokens act as their user, limited to their scopes (space-separated) and never beyond
-- the user's role. Removing the user removes their tokens.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- What happened in this tenant, newest last; details is a JSON object as text.
CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    action     TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT,
    target     TEXT,
    details    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
