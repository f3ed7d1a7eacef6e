-- Tenants and counters. D1 is the queryable copy: counter values arrive here from each
-- counter's Durable Object in batches; the object is the authority.

CREATE TABLE tenants (
  id          TEXT PRIMARY KEY,            -- UUIDv7
  label       TEXT NOT NULL UNIQUE,
  created_ms  INTEGER NOT NULL,            -- Unix milliseconds
  updated_ms  INTEGER NOT NULL
);

CREATE TABLE counters (
  id          TEXT PRIMARY KEY,            -- UUIDv7, also the name of its Durable Object
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  label       TEXT,                        -- optional; unique within the tenant when set
  value       INTEGER NOT NULL,
  max_delta   INTEGER NOT NULL,
  version     INTEGER NOT NULL DEFAULT 0,  -- the object's mutation count at the last flush
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  UNIQUE (tenant_id, label)
);

-- Keyset pagination of a tenant's counters in creation order.
CREATE INDEX counters_by_tenant ON counters (tenant_id, id);

-- Idempotency-Key records of creations (increments and sets keep theirs in the counter's
-- object). Pruned by age when new keys are written.
CREATE TABLE idempotency_keys (
  key          TEXT PRIMARY KEY,
  fingerprint  TEXT NOT NULL,
  status       INTEGER NOT NULL,
  body         TEXT NOT NULL,
  created_ms   INTEGER NOT NULL
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_ms);
