-- Rollups the stats API reads instead of the visit log. A page object's flush writes
-- its visit rows and rolls every row of that page not rolled up yet (seq > rolled_seq)
-- into these tables, in the same D1 batch (one transaction): the rollups always add up to
-- exactly the rows the log has received, however often a flush is retried.
ALTER TABLE pages ADD COLUMN rolled_seq INTEGER NOT NULL DEFAULT 0;

-- Totals per hour (unit 0) and per day (unit 1), per page and for the whole tenant
-- (page_id ''). visits: every stored visit; counted: those that counted; bots: agent
-- 'bot'; uniques: first visits of a visitor to a page that day (visitor-days).
-- sampled / level (tenant day rows only): the site-wide visitors of the day, see
-- stats_visitors; sampled is NULL for days rolled up before site-wide visitors existed.
CREATE TABLE stats_series (
  tenant_id  TEXT NOT NULL,
  page_id    TEXT NOT NULL,
  unit       INTEGER NOT NULL,
  start      INTEGER NOT NULL,               -- hours or days since 1970-01-01 (UTC)
  visits     INTEGER NOT NULL,
  counted    INTEGER NOT NULL,
  bots       INTEGER NOT NULL,
  uniques    INTEGER NOT NULL,
  sampled    INTEGER DEFAULT 0,
  level      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, page_id, unit, start)
) WITHOUT ROWID;

-- Top lists: visits per page (dim 0), referrer host (1), country (2) and agent class (3)
-- in aligned blocks of 2^level days (level 0..8: 1, 2, 4, ... 256 days). The whole
-- tenant's rows (page_id '') exist at every level, so any range of days is at most a
-- dozen or so blocks however long (90 days: at most 10); a page's own rows (dims 1-3) only per day. key '' is
-- "none" (no referrer, no country). Referrers count counted visits only (a bot's
-- Referer is whatever it says).
CREATE TABLE stats_top (
  tenant_id  TEXT NOT NULL,
  page_id    TEXT NOT NULL,
  dim        INTEGER NOT NULL,
  level      INTEGER NOT NULL,
  start      INTEGER NOT NULL,               -- first day of the block, a multiple of 2^level
  key        TEXT NOT NULL,
  visits     INTEGER NOT NULL,
  counted    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, page_id, dim, level, start, key)
) WITHOUT ROWID;

-- Site-wide unique visitors of a tenant's day: a 52-bit keyed hash per visitor (derived
-- from the day's visitor hash and the tenant, so it links nothing across tenants), kept
-- only while its day may still receive visits and deleted after it. Every page of the
-- tenant inserts into the one set, so a visitor reading three pages is one. Exact while
-- the day holds at most STATS_EXACT_VISITORS hashes; past that the day keeps only hashes
-- below 2^(52 - level) (level goes up by one, halving the set), and visitors are
-- estimated as sampled × 2^level.
CREATE TABLE stats_visitors (
  tenant_id  TEXT NOT NULL,
  day        INTEGER NOT NULL,
  hash       INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, day, hash)
) WITHOUT ROWID;

CREATE TRIGGER stats_visitor_added AFTER INSERT ON stats_visitors BEGIN
  UPDATE stats_series SET sampled = sampled + 1
  WHERE tenant_id = NEW.tenant_id AND page_id = '' AND unit = 1 AND start = NEW.day;
END;

-- Raising a day's level keeps only the hashes the new level samples.
CREATE TRIGGER stats_level_raised AFTER UPDATE OF level ON stats_series BEGIN
  DELETE FROM stats_visitors
  WHERE tenant_id = NEW.tenant_id AND day = NEW.start AND (hash >> (52 - NEW.level)) != 0;
END;

-- (Every CASE's END is followed by a space: wrangler splits this file into statements,
-- and takes a CASE without one for a block that has not ended.)
-- Backfill: the visit log as it is, rolled up as a flush would have done it, and the days
-- retention already moved into visit_days as day totals (bots not known there).
-- Site-wide visitors of these days are not known: sampled stays NULL.
INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques, sampled)
SELECT v.tenant_id, CASE w.whole WHEN 1 THEN '' ELSE v.page_id END AS page, u.unit, v.ts / u.len,
       COUNT(*), SUM(v.counted), SUM(v.agent = 'bot'), SUM(v.is_unique), NULL
FROM visits v,
     (SELECT 0 AS unit, 3600000 AS len UNION ALL SELECT 1, 86400000) u,
     (SELECT 0 AS whole UNION ALL SELECT 1) w
WHERE true
GROUP BY 1, 2, 3, 4;

INSERT INTO stats_series (tenant_id, page_id, unit, start, visits, counted, bots, uniques, sampled)
SELECT d.tenant_id, CASE w.whole WHEN 1 THEN '' ELSE d.page_id END AS page, 1, d.day,
       SUM(d.visits), SUM(d.visits), 0, SUM(d.uniques), NULL
FROM visit_days d, (SELECT 0 AS whole UNION ALL SELECT 1) w
WHERE true
GROUP BY 1, 2, 3, 4
ON CONFLICT DO UPDATE SET visits = visits + excluded.visits, counted = counted + excluded.counted,
  uniques = uniques + excluded.uniques;

INSERT INTO stats_top (tenant_id, page_id, dim, level, start, key, visits, counted)
SELECT v.tenant_id, CASE WHEN d.dim > 0 AND l.level = 0 AND w.whole = 0 THEN v.page_id ELSE '' END AS page,
       d.dim, l.level, (v.ts / 86400000) >> l.level << l.level,
       CASE d.dim WHEN 0 THEN v.page_id WHEN 1 THEN COALESCE(v.referrer_host, '')
                  WHEN 2 THEN COALESCE(v.country, '') ELSE v.agent END AS key,
       COUNT(*), SUM(v.counted)
FROM visits v,
     (SELECT 0 AS dim UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) d,
     (SELECT value AS level FROM json_each('[0,1,2,3,4,5,6,7,8]')) l,
     (SELECT 0 AS whole UNION ALL SELECT 1) w
WHERE (w.whole = 1 OR (d.dim > 0 AND l.level = 0)) AND NOT (d.dim = 1 AND v.counted = 0)
GROUP BY 1, 2, 3, 4, 5, 6;

UPDATE pages SET rolled_seq = COALESCE(
  (SELECT MAX(seq) FROM visits v WHERE v.tenant_id = pages.tenant_id AND v.page_id = pages.page_id), 0);
