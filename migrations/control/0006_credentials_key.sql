-- Which master key each tenant's credentials are derived from (its id, a fingerprint of the
-- key, never the key), so the master key can be rolled: tenants move to the new key one at a
-- time while the old one stays configured. Empty on rows from before it was recorded; silo
-- fills it in with the master key it starts with when no previous key is configured.
ALTER TABLE tenants ADD COLUMN credentials_key TEXT NOT NULL DEFAULT '';
