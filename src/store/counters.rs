//! The `counters` table: metadata written at creation, values written by flushes.

use crate::domain::counter::{CounterMeta, CounterState};
use crate::domain::ids::{CounterId, TenantId};
use crate::error::{ApiResult, OrInternal};
use crate::store::int;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

const COLUMNS: &str = "id, tenant_id, label, value, max_delta, version, created_ms, updated_ms";

#[derive(Deserialize)]
struct Row {
    id: String,
    tenant_id: String,
    label: Option<String>,
    value: i64,
    max_delta: i64,
    version: u64,
    created_ms: u64,
    updated_ms: u64,
}

impl Row {
    fn into_domain(self) -> (CounterMeta, CounterState) {
        let meta = CounterMeta {
            counter_id: self.id,
            tenant_id: self.tenant_id,
            label: self.label,
            max_delta: self.max_delta,
            created_ms: self.created_ms,
        };
        let state = CounterState {
            value: self.value,
            version: self.version,
            updated_ms: self.updated_ms,
        };
        (meta, state)
    }
}

pub fn insert(
    db: &D1Database,
    meta: &CounterMeta,
    state: &CounterState,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(format!(
        "INSERT INTO counters ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
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
    ])
    .or_internal("binding a counter insert")
}

pub async fn find(db: &D1Database, id: &str) -> ApiResult<Option<(CounterMeta, CounterState)>> {
    let row: Option<Row> = db
        .prepare(format!("SELECT {COLUMNS} FROM counters WHERE id = ?1"))
        .bind(&[id.into()])
        .or_internal("binding a counter lookup")?
        .first(None)
        .await
        .or_internal("reading a counter")?;
    Ok(row.map(Row::into_domain))
}

/// One page of a tenant's counters in creation order, starting after `after`.
pub async fn page(
    db: &D1Database,
    tenant: &TenantId,
    after: Option<&CounterId>,
    limit: u32,
) -> ApiResult<Vec<(CounterMeta, CounterState)>> {
    let after = after.map(|c| c.to_string()).unwrap_or_default();
    let rows: Vec<Row> = db
        .prepare(format!(
            "SELECT {COLUMNS} FROM counters WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))
        .bind(&[tenant.to_string().into(), after.into(), int(limit)])
        .or_internal("binding a counter page")?
        .all()
        .await
        .or_internal("listing counters")?
        .results()
        .or_internal("decoding counters")?;
    Ok(rows.into_iter().map(Row::into_domain).collect())
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
    #[derive(Deserialize)]
    struct IdRow {
        id: String,
    }
    let row: Option<IdRow> = db
        .prepare("SELECT id FROM counters WHERE tenant_id = ?1 AND label = ?2")
        .bind(&[tenant.to_string().into(), label.into()])
        .or_internal("binding a counter lookup by label")?
        .first(None)
        .await
        .or_internal("reading a counter by label")?;
    row.map(|r| r.id)
        .ok_or_else(|| crate::error::ApiError::internal("a counter vanished after creation"))
}
