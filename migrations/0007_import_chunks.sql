-- Imports from other services add to totals, so each chunk of a file may be applied only
-- once: its key is claimed in the same D1 transaction that adds its totals, and a chunk
-- whose key is already here is known to be applied (see docs/export-format.md).
CREATE TABLE import_chunks (
  tenant_id   TEXT NOT NULL,
  key         TEXT NOT NULL,                -- sha256 of the tenant, format, chunk number and lines
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
