-- Retention finds expired rows through an index keyed by day first, then by the row's
-- own key: rows arriving page by page (an import) are each added where their day's rows
-- of that page end, instead of somewhere across one global time index. An import of
-- 1,000,000 rows went from about 10,700 to 38,900 rows/s locally without the old index.
CREATE INDEX visits_by_day ON visits (ts / 86400000, tenant_id, page_id, seq);

DROP INDEX visits_by_time;
