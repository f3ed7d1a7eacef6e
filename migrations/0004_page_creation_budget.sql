-- Pages created by visits are budgeted per tenant and hour (PAGE_CREATE_PER_HOUR): the
-- creation statement counts a tenant's pages created in the last hour through this index.
CREATE INDEX pages_by_tenant_created ON pages (tenant_id, created_ms);
