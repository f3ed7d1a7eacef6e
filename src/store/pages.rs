//! The `pages`, `visits` and `visit_days` tables: page records, the visit log the page
//! objects flush, history queries and retention.

use crate::domain::history::HistoryRange;
use crate::domain::visit::DAY_MS;
use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use crate::objects::page_storage::{PageState, VisitRow};
use crate::store::int;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// D1 binds at most 100 parameters per statement; a visit row takes 9.
pub const ROWS_PER_INSERT: usize = 11;

#[derive(Deserialize)]
struct PageRow {
    count: u64,
    version: u64,
    created_ms: u64,
    updated_ms: u64,
}

/// Creates the page if its tenant creates pages on first visit and is under `cap`
/// pages; one statement, so concurrent first visits cannot pass the cap together.
pub async fn create_if_allowed(
    db: &D1Database,
    tenant: &str,
    page: &str,
    now_ms: u64,
    cap: u64,
) -> ApiResult<()> {
    db.prepare(
        "INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms)
         SELECT ?1, ?2, 0, 0, ?3, ?3
         WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND page_auto_create = 1)
           AND (SELECT COUNT(*) FROM pages WHERE tenant_id = ?1) < ?4
         ON CONFLICT DO NOTHING",
    )
    .bind(&[tenant.into(), page.into(), int(now_ms), int(cap)])
    .or_internal("binding a page creation")?
    .run()
    .await
    .or_internal("creating a page")
    .map(drop)
}

pub async fn find(db: &D1Database, tenant: &str, page: &str) -> ApiResult<Option<PageState>> {
    let row: Option<PageRow> = db
        .prepare("SELECT count, version, created_ms, updated_ms FROM pages WHERE tenant_id = ?1 AND page_id = ?2")
        .bind(&[tenant.into(), page.into()])
        .or_internal("binding a page lookup")?
        .first(None)
        .await
        .or_internal("reading a page")?;
    Ok(row.map(|r| PageState {
        tenant_id: tenant.to_string(),
        page_id: page.to_string(),
        count: r.count,
        seq: r.version,
        flushed_seq: r.version,
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
    }))
}

/// The statements of one flush: the rows (ignored if D1 already has them, so a retried
/// flush adds nothing) and the page's count, applied only if newer.
pub fn flush_statements(
    db: &D1Database,
    page: &PageState,
    rows: &[VisitRow],
) -> ApiResult<Vec<D1PreparedStatement>> {
    let mut statements = Vec::with_capacity(rows.len() / ROWS_PER_INSERT + 2);
    let optional = |v: &Option<String>| v.as_deref().map_or(JsValue::NULL, JsValue::from);
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut params = Vec::with_capacity(chunk.len() * 9);
        for row in chunk {
            params.extend([
                page.tenant_id.as_str().into(),
                page.page_id.as_str().into(),
                int(row.seq),
                int(row.ts),
                optional(&row.referrer_host),
                optional(&row.country),
                row.agent.as_str().into(),
                int(row.counted),
                int(row.is_unique),
            ]);
        }
        statements.push(
            db.prepare(format!(
                "INSERT OR IGNORE INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
                 VALUES {placeholders}"
            ))
            .bind(&params)
            .or_internal("binding visit rows")?,
        );
    }
    statements.push(
        db.prepare(
            "UPDATE pages SET count = ?1, version = ?2, updated_ms = ?3
             WHERE tenant_id = ?4 AND page_id = ?5 AND version < ?2",
        )
        .bind(&[
            int(page.count),
            int(page.seq),
            int(page.updated_ms),
            page.tenant_id.as_str().into(),
            page.page_id.as_str().into(),
        ])
        .or_internal("binding a page count")?,
    );
    Ok(statements)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Bucket {
    pub start: u64,
    pub visits: u64,
    pub uniques: u64,
}

/// Counted visits and uniques per bucket, from the visit log and, for days retention has
/// already deleted, from the daily totals. Uses `visits_by_page_time`.
pub async fn history(
    db: &D1Database,
    tenant: &str,
    page: &str,
    range: &HistoryRange,
) -> ApiResult<Vec<Bucket>> {
    let bucket = range.granularity.bucket_ms();
    // The bucket and day lengths are our own constants, written into the SQL as integer
    // literals: bound JavaScript numbers would turn the arithmetic into floating point.
    let rows: Vec<Bucket> = db
        .prepare(format!(
            "SELECT start, SUM(visits) AS visits, SUM(uniques) AS uniques FROM (
               SELECT (ts / {bucket}) * {bucket} AS start, SUM(counted) AS visits, SUM(is_unique) AS uniques
               FROM visits WHERE tenant_id = ?1 AND page_id = ?2 AND ts >= ?3 AND ts < ?4
               GROUP BY start
               UNION ALL
               SELECT ((day * {DAY_MS}) / {bucket}) * {bucket} AS start, visits, uniques
               FROM visit_days WHERE tenant_id = ?1 AND page_id = ?2 AND day * {DAY_MS} >= ?3 AND day * {DAY_MS} < ?4
             ) GROUP BY start ORDER BY start"
        ))
        .bind(&[tenant.into(), page.into(), int(range.from_ms), int(range.to_ms)])
        .or_internal("binding a history query")?
        .all()
        .await
        .or_internal("reading history")?
        .results()
        .or_internal("decoding history")?;
    Ok(rows)
}

/// Keeps the totals of days about to leave the log (only days not summed before, so a
/// day half-deleted by an earlier run keeps its full total), then deletes up to `limit`
/// rows older than `cutoff_ms`. Answers how many rows were deleted.
pub async fn expire_visits(db: &D1Database, cutoff_ms: u64, limit: u32) -> ApiResult<u64> {
    let cutoff_day_ms = cutoff_ms / DAY_MS * DAY_MS;
    let results = db
        .batch(vec![
            db.prepare(format!(
                "INSERT OR IGNORE INTO visit_days (tenant_id, page_id, day, visits, uniques)
                 SELECT tenant_id, page_id, ts / {DAY_MS}, SUM(counted), SUM(is_unique)
                 FROM visits WHERE ts < ?1 GROUP BY tenant_id, page_id, ts / {DAY_MS}"
            ))
            .bind(&[int(cutoff_day_ms)])
            .or_internal("binding a rollup")?,
            db.prepare(
                "DELETE FROM visits WHERE (tenant_id, page_id, seq) IN
                   (SELECT tenant_id, page_id, seq FROM visits WHERE ts < ?1 LIMIT ?2)",
            )
            .bind(&[int(cutoff_day_ms), int(limit)])
            .or_internal("binding a retention delete")?,
        ])
        .await
        .or_internal("expiring visits")?;
    let deleted = results
        .last()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok(deleted as u64)
}
