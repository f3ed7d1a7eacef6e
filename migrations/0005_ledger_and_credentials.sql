-- Who created a counter, so an object that adopts its record from D1 (its creation's
-- hand-over failed) attributes its first operation. NULL: created by a visit to a
-- migration route (anonymous).
ALTER TABLE counters ADD COLUMN created_by TEXT;

-- Tenant and administrator keys: only the SHA-256 of each secret is kept. tenant_id is
-- NULL for a managed administrator key. scopes is a space-separated sorted list.
CREATE TABLE credentials (
  id TEXT PRIMARY KEY,
  tenant_id TEXT REFERENCES tenants(id),
  secret_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER,
  revoked_ms INTEGER,
  rotated_from TEXT
);
CREATE INDEX credentials_by_tenant ON credentials (tenant_id, id);

-- Every issue, rotation and revocation of a credential: who did it and when.
CREATE TABLE credential_audit (
  seq INTEGER PRIMARY KEY,
  credential_id TEXT NOT NULL,
  tenant_id TEXT,
  action TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE INDEX credential_audit_by_credential ON credential_audit (credential_id);
