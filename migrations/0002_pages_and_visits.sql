-- Pages and visits. A page counter's Durable Object is the authority for its count and
-- writes its visit log here in batches; rows carry the object's sequence number, so a
-- retried flush never duplicates one.

-- Tenant settings: create a page on its first visit; count bots in `count`.
ALTER TABLE tenants ADD COLUMN page_auto_create INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN count_bots INTEGER NOT NULL DEFAULT 0;

CREATE TABLE pages (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  page_id     TEXT NOT NULL,
  count       INTEGER NOT NULL DEFAULT 0,
  version     INTEGER NOT NULL DEFAULT 0,   -- the object's visit count at the last flush
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, page_id)
);

-- The visit log: no IP, no user agent; a referrer host, a country, an agent class.
CREATE TABLE visits (
  tenant_id      TEXT NOT NULL,
  page_id        TEXT NOT NULL,
  seq            INTEGER NOT NULL,          -- per page object, from 1
  ts             INTEGER NOT NULL,          -- Unix milliseconds
  referrer_host  TEXT,
  country        TEXT,
  agent          TEXT NOT NULL,             -- browser | bot | other
  counted        INTEGER NOT NULL,          -- 1 when it counted (bots only if the tenant says so)
  is_unique      INTEGER NOT NULL,          -- first counted visit of this visitor that day
  PRIMARY KEY (tenant_id, page_id, seq)
) WITHOUT ROWID;

-- History of one page over a time range.
CREATE INDEX visits_by_page_time ON visits (tenant_id, page_id, ts);
-- Retention: the oldest rows first.
CREATE INDEX visits_by_time ON visits (ts);

-- Daily totals of days whose rows retention has deleted.
CREATE TABLE visit_days (
  tenant_id  TEXT NOT NULL,
  page_id    TEXT NOT NULL,
  day        INTEGER NOT NULL,              -- days since 1970-01-01 (UTC)
  visits     INTEGER NOT NULL,
  uniques    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, page_id, day)
) WITHOUT ROWID;
