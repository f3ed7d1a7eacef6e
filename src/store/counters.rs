//! The `counters` table: metadata written at creation, values written by flushes.

use crate::domain::counter::{CounterMeta, CounterState};
use crate::domain::ids::{CounterId, TenantId};
use crate::error::{ApiResult, OrInternal};
use crate::rows::{self, Row};
use crate::store::int;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

const COLUMNS: &str = "id, tenant_id, label, value, max_delta, version, created_ms, updated_ms";

/// A counter from the columns of `COLUMNS`.
fn counter_of(row: &mut Row) -> ApiResult<(CounterMeta, CounterState)> {
    let meta = CounterMeta {
        counter_id: row.text(0)?,
        tenant_id: row.text(1)?,
        label: row.opt_text(2)?,
        max_delta: row.int(4)?,
        created_ms: row.uint(6)?,
    };
    let state = CounterState {
        value: row.int(3)?,
        version: row.uint(5)?,
        updated_ms: row.uint(7)?,
    };
    Ok((meta, state))
}

/// The insert of a new counter; `created_by` is its creator's `actor_id`.
pub fn insert(
    db: &D1Database,
    meta: &CounterMeta,
    state: &CounterState,
    created_by: &str,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(format!(
        "INSERT INTO counters ({COLUMNS}, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .bind(&[
        meta.counter_id.as_str().into(),
        meta.tenant_id.as_str().into(),
        meta.label.as_deref().map_or(JsValue::NULL, JsValue::from),
        int(state.value),
        int(meta.max_delta),
        int(state.version),
        int(meta.created_ms),
        int(state.updated_ms),
        created_by.into(),
    ])
    .or_internal("binding a counter insert")
}

/// A counter's record and who created it (`None`: a visitor, on a migration route).
pub async fn find(
    db: &D1Database,
    id: &str,
) -> ApiResult<Option<(CounterMeta, CounterState, Option<String>)>> {
    let statement = db
        .prepare(format!(
            "SELECT {COLUMNS}, created_by FROM counters WHERE id = ?1"
        ))
        .bind(&[id.into()])
        .or_internal("binding a counter lookup")?;
    let Some(mut row) = rows::d1_first(statement, "reading a counter").await? else {
        return Ok(None);
    };
    let (meta, state) = counter_of(&mut row)?;
    Ok(Some((meta, state, row.opt_text(8)?)))
}

/// One page of every tenant's counter ids in creation order, starting after `after`
/// (the operator's reconciliation walks them).
pub async fn ids_page(
    db: &D1Database,
    after: Option<&CounterId>,
    limit: u32,
) -> ApiResult<Vec<String>> {
    let after = after.map(|c| c.to_string()).unwrap_or_default();
    let statement = db
        .prepare("SELECT id FROM counters WHERE id > ?1 ORDER BY id LIMIT ?2")
        .bind(&[after.into(), int(limit)])
        .or_internal("binding a counter id page")?;
    rows::each(
        rows::d1(statement, "listing counter ids").await?,
        |mut row| row.text(0),
    )
}

/// One page of a tenant's counters in creation order, starting after `after`.
pub async fn page(
    db: &D1Database,
    tenant: &TenantId,
    after: Option<&CounterId>,
    limit: u32,
) -> ApiResult<Vec<(CounterMeta, CounterState)>> {
    let after = after.map(|c| c.to_string()).unwrap_or_default();
    let statement = db
        .prepare(format!(
            "SELECT {COLUMNS} FROM counters WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))
        .bind(&[tenant.to_string().into(), after.into(), int(limit)])
        .or_internal("binding a counter page")?;
    rows::each(rows::d1(statement, "listing counters").await?, |mut row| {
        counter_of(&mut row)
    })
}

/// Copies a counter's value to D1. Applies only when `version` is newer than what D1
/// holds, so a repeated or late flush can never move the value backwards.
pub async fn write_value(db: &D1Database, id: &str, state: &CounterState) -> ApiResult<()> {
    db.prepare("UPDATE counters SET value = ?1, version = ?2, updated_ms = ?3 WHERE id = ?4 AND version < ?2")
        .bind(&[int(state.value), int(state.version), int(state.updated_ms), id.into()])
        .or_internal("binding a counter flush")?
        .run()
        .await
        .or_internal("flushing a counter to D1")?;
    Ok(())
}

/// The id of the tenant's counter with this label, creating it (value 0) with
/// `new_id` if there is none; concurrent first uses settle on one row.
pub async fn find_or_create_by_label(
    db: &D1Database,
    tenant: &TenantId,
    label: &str,
    new_id: &CounterId,
    now_ms: u64,
) -> ApiResult<String> {
    db.prepare(
        "INSERT OR IGNORE INTO counters (id, tenant_id, label, value, max_delta, version, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, 0, 50, 0, ?4, ?4)",
    )
    .bind(&[new_id.to_string().into(), tenant.to_string().into(), label.into(), int(now_ms)])
    .or_internal("binding a counter creation by label")?
    .run()
    .await
    .or_internal("creating a counter by label")?;
    let statement = db
        .prepare("SELECT id FROM counters WHERE tenant_id = ?1 AND label = ?2")
        .bind(&[tenant.to_string().into(), label.into()])
        .or_internal("binding a counter lookup by label")?;
    rows::d1_first(statement, "reading a counter by label")
        .await?
        .ok_or_else(|| crate::error::ApiError::internal("a counter vanished after creation"))?
        .text(0)
}
