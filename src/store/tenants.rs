//! The `tenants` table.

use crate::domain::ids::TenantId;
use crate::domain::views::Tenant;
use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use crate::store::int;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

#[derive(Deserialize)]
struct Row {
    id: String,
    label: String,
    created_ms: u64,
    updated_ms: u64,
}

pub fn insert(db: &D1Database, t: &Tenant) -> ApiResult<D1PreparedStatement> {
    db.prepare("INSERT INTO tenants (id, label, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[
            t.tenant_id.as_str().into(),
            t.label.as_str().into(),
            int(t.created_ms),
            int(t.updated_ms),
        ])
        .or_internal("binding a tenant insert")
}

pub async fn find(db: &D1Database, id: &TenantId) -> ApiResult<Option<Tenant>> {
    let row: Option<Row> = db
        .prepare("SELECT id, label, created_ms, updated_ms FROM tenants WHERE id = ?1")
        .bind(&[id.to_string().into()])
        .or_internal("binding a tenant lookup")?
        .first(None)
        .await
        .or_internal("reading a tenant")?;
    Ok(row.map(|r| Tenant {
        tenant_id: r.id,
        label: r.label,
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
    }))
}
