-- Which derivation of the master key each tenant's database credentials use, so a key rotation
-- can move tenants forward one at a time without locking any out.
ALTER TABLE tenants ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 1;
