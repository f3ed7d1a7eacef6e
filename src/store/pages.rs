//! The `pages`, `visits` and `visit_days` tables: page records, the visit log the page
//! objects flush, history queries and retention.

use crate::config::Config;
use crate::domain::history::{Bucket, HistoryRange};
use crate::domain::page::PageState;
use crate::domain::visit::DAY_MS;
use crate::domain::visit::{rows_json, VisitRow};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::rows;
use crate::store::int;
use worker::{D1Database, D1PreparedStatement};

const HOUR_MS: u64 = 3_600_000;

/// Creates the page if its tenant creates pages on first visit, is under its page cap
/// and has created fewer than its hourly budget in the last hour; one statement, so
/// concurrent first visits cannot pass the cap or the budget together.
pub async fn create_if_allowed(
    db: &D1Database,
    tenant: &str,
    page: &str,
    now_ms: u64,
    config: &Config,
) -> ApiResult<()> {
    db.prepare(
        "INSERT INTO pages (tenant_id, page_id, count, version, created_ms, updated_ms)
         SELECT ?1, ?2, 0, 0, ?3, ?3
         WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND page_auto_create = 1)
           AND (SELECT COUNT(*) FROM pages WHERE tenant_id = ?1) < ?4
           AND (SELECT COUNT(*) FROM pages WHERE tenant_id = ?1 AND created_ms > ?5) < ?6
         ON CONFLICT DO NOTHING",
    )
    .bind(&[
        tenant.into(),
        page.into(),
        int(now_ms),
        int(config.max_pages_per_tenant),
        int(now_ms.saturating_sub(HOUR_MS)),
        int(config.page_create_per_hour),
    ])
    .or_internal("binding a page creation")?
    .run()
    .await
    .or_internal("creating a page")
    .map(drop)
}

/// Why a tenant that creates pages on first visit did not create one: its cap, or its
/// hourly budget (then when the oldest creation of the hour leaves it).
pub async fn why_not_created<T>(
    db: &D1Database,
    tenant: &str,
    now_ms: u64,
    config: &Config,
) -> ApiResult<T> {
    let since = now_ms.saturating_sub(HOUR_MS);
    let statement = db
        .prepare(
            "SELECT (SELECT COUNT(*) FROM pages WHERE tenant_id = ?1),
                    COUNT(*), MIN(created_ms)
             FROM pages WHERE tenant_id = ?1 AND created_ms > ?2",
        )
        .bind(&[tenant.into(), int(since)])
        .or_internal("binding a page creation check")?;
    let row = rows::d1_first(statement, "checking page creation")
        .await?
        .ok_or_else(|| ApiError::internal("page creation check answered nothing"))?;
    let (pages, recent, oldest_recent) = (row.uint(0)?, row.uint(1)?, row.opt_uint(2)?);
    if pages >= config.max_pages_per_tenant {
        return Err(ApiError::PageLimitReached {
            limit: config.max_pages_per_tenant,
        });
    }
    if recent >= config.page_create_per_hour {
        let frees_at = oldest_recent.unwrap_or(now_ms) + HOUR_MS;
        return Err(ApiError::RateLimitExceeded {
            retry_after_seconds: frees_at.saturating_sub(now_ms).div_ceil(1000).max(1),
        });
    }
    Err(ApiError::internal("a page was neither created nor refused"))
}

/// Rows one deletion statement removes: a page with a long history is deleted in
/// bounded steps.
const DELETE_ROWS: u64 = 20_000;

/// Deletes a page with its visit log, daily totals and record.
pub async fn delete(db: &D1Database, tenant: &str, page: &str) -> ApiResult<()> {
    loop {
        let step = db
            .prepare(
                "DELETE FROM visits WHERE tenant_id = ?1 AND page_id = ?2 AND seq IN
                   (SELECT seq FROM visits WHERE tenant_id = ?1 AND page_id = ?2 LIMIT ?3)",
            )
            .bind(&[tenant.into(), page.into(), int(DELETE_ROWS)])
            .or_internal("binding a visit deletion")?;
        let changed = crate::store::changed(db, vec![step], "deleting a page's visits").await?;
        if changed.iter().sum::<u64>() < DELETE_ROWS {
            break;
        }
    }
    let statement = |sql: &str| {
        db.prepare(sql)
            .bind(&[tenant.into(), page.into()])
            .or_internal("binding a page deletion")
    };
    let mut statements = crate::store::stats::delete_page_statements(db, tenant, page)?;
    statements.push(statement(
        "DELETE FROM visit_days WHERE tenant_id = ?1 AND page_id = ?2",
    )?);
    statements.push(statement(
        "DELETE FROM pages WHERE tenant_id = ?1 AND page_id = ?2",
    )?);
    db.batch(statements)
        .await
        .or_internal("deleting a page")
        .map(drop)
}

pub async fn find(db: &D1Database, tenant: &str, page: &str) -> ApiResult<Option<PageState>> {
    let statement = db
        .prepare("SELECT count, version, created_ms, updated_ms FROM pages WHERE tenant_id = ?1 AND page_id = ?2")
        .bind(&[tenant.into(), page.into()])
        .or_internal("binding a page lookup")?;
    let Some(row) = rows::d1_first(statement, "reading a page").await? else {
        return Ok(None);
    };
    Ok(Some(PageState {
        tenant_id: tenant.to_string(),
        page_id: page.to_string(),
        count: row.uint(0)?,
        seq: row.uint(1)?,
        flushed_seq: row.uint(1)?,
        created_ms: row.uint(2)?,
        updated_ms: row.uint(3)?,
    }))
}

/// The statements of one flush, one D1 transaction: the rows (one statement, the rows
/// bound as one JSON value; ignored if D1 already has them, so a retried flush adds
/// nothing), the page's count, applied only if newer, and the stats rollups of every row
/// not rolled up yet (`store::stats`).
pub fn flush_statements(
    db: &D1Database,
    page: &PageState,
    rows: &[VisitRow],
    today: u64,
    exact_visitors: u64,
) -> ApiResult<Vec<D1PreparedStatement>> {
    let mut statements = Vec::with_capacity(8);
    let rows_json = rows_json(rows);
    if !rows.is_empty() {
        statements.push(
            db.prepare(
                "INSERT OR IGNORE INTO visits (tenant_id, page_id, seq, ts, referrer_host, country, agent, counted, is_unique)
                 SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
                 FROM json_each(?3)",
            )
            .bind(&[
                page.tenant_id.as_str().into(),
                page.page_id.as_str().into(),
                rows_json.as_str().into(),
            ])
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
    if !rows.is_empty() {
        statements.extend(crate::store::stats::rollup_statements(
            db,
            &page.tenant_id,
            &page.page_id,
            &rows_json,
            today,
            exact_visitors,
        )?);
    }
    Ok(statements)
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
    let statement = db
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
        .or_internal("binding a history query")?;
    rows::each(rows::d1(statement, "reading history").await?, |row| {
        Ok(Bucket {
            start: row.uint(0)?,
            visits: row.uint(1)?,
            uniques: row.uint(2)?,
        })
    })
}

/// One retention step: the oldest day with expired rows, and the key (`[tenant, page,
/// seq]` as JSON) that its first `RETENTION_BATCH_ROWS` rows end before — `None` when
/// the rest of the day fits in the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub day: u64,
    pub before: Option<String>,
}

/// The next retention step, found through `visits_by_day` (the day, then the row's key):
/// the job's cursor is simply the oldest row left, so a run picks up wherever the last
/// one stopped. `None` when no day before `cutoff_day` has rows.
pub async fn next_expired(
    db: &D1Database,
    cutoff_day: u64,
    rows: u64,
) -> ApiResult<Option<Expired>> {
    let statement = db
        .prepare(format!(
            // The oldest day by `ORDER BY … LIMIT 1`, not `MIN` with a null check: that
            // check, pushed into the aggregate, made SQLite scan every row.
            "SELECT d.day, (SELECT json_array(tenant_id, page_id, seq) FROM visits
                WHERE ts / {DAY_MS} = d.day ORDER BY ts / {DAY_MS}, tenant_id, page_id, seq
                LIMIT 1 OFFSET ?2)
             FROM (SELECT ts / {DAY_MS} AS day FROM visits WHERE ts / {DAY_MS} < ?1
                   ORDER BY ts / {DAY_MS} LIMIT 1) d"
        ))
        .bind(&[int(cutoff_day), int(rows)])
        .or_internal("binding an expiry lookup")?;
    let Some(mut found) = crate::rows::d1_first(statement, "finding expired visits").await? else {
        return Ok(None);
    };
    Ok(Some(Expired {
        day: found.uint(0)?,
        before: found.opt_text(1)?,
    }))
}

/// Moves a step's rows (`next_expired`) into their day's totals: the totals grow by
/// exactly what is deleted, in one transaction, so history (rows plus totals) is exact
/// before, during and after retention. Answers how many rows moved.
pub async fn roll_up(db: &D1Database, step: &Expired) -> ApiResult<u64> {
    // Two texts rather than `?2 IS NULL OR …`: the index serves a plain range only.
    let rows = match step.before {
        Some(_) => format!(
            "FROM visits WHERE ts / {DAY_MS} = ?1
               AND (tenant_id, page_id, seq) < (?2 ->> 0, ?2 ->> 1, ?2 ->> 2)"
        ),
        None => format!("FROM visits WHERE ts / {DAY_MS} = ?1"),
    };
    let mut params = vec![int(step.day)];
    if let Some(before) = &step.before {
        params.push(before.as_str().into());
    }
    let rollup = vec![
        db.prepare(format!(
            "INSERT INTO visit_days (tenant_id, page_id, day, visits, uniques)
                 SELECT tenant_id, page_id, ?1, SUM(counted), SUM(is_unique)
                 {rows} GROUP BY tenant_id, page_id
                 ON CONFLICT (tenant_id, page_id, day) DO UPDATE
                 SET visits = visits + excluded.visits, uniques = uniques + excluded.uniques"
        ))
        .bind(&params)
        .or_internal("binding a rollup")?,
        db.prepare(format!("DELETE {rows}"))
            .bind(&params)
            .or_internal("binding a retention delete")?,
    ];
    let changed = crate::store::changed(db, rollup, "rolling up visits").await?;
    Ok(changed.last().copied().unwrap_or(0))
}
