//! The `tenants` table.

use crate::domain::ids::TenantId;
use crate::domain::input::TenantChanges;
use crate::domain::views::{Tenant, TenantSettings};
use crate::error::{ApiResult, OrInternal};
use crate::rows::{self, Row};
use crate::store::int;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

const COLUMNS: &str =
    "id, label, created_ms, updated_ms, page_auto_create, count_bots, respect_dnt, allowed_origins";

/// A tenant from the columns of `COLUMNS`.
fn tenant_of(mut row: Row) -> ApiResult<Tenant> {
    Ok(Tenant {
        tenant_id: row.text(0)?,
        label: row.text(1)?,
        created_ms: row.uint(2)?,
        updated_ms: row.uint(3)?,
        settings: TenantSettings {
            page_auto_create: row.flag(4)?,
            count_bots: row.flag(5)?,
            respect_dnt: row.flag(6)?,
        },
        // Written by this module from a validated list; unreadable means none.
        allowed_origins: row.opt_text(7)?.and_then(|json| {
            let list: serde_json::Value = serde_json::from_str(&json).ok()?;
            list.as_array()?
                .iter()
                .map(|o| o.as_str().map(str::to_string))
                .collect()
        }),
    })
}

fn flag(b: bool) -> JsValue {
    int(u8::from(b))
}

fn origins_json(origins: Option<&Vec<String>>) -> JsValue {
    origins
        .and_then(|list| serde_json::to_string(list).ok())
        .map_or(JsValue::NULL, |json| JsValue::from(json.as_str()))
}

fn insert_sql(verb: &str) -> String {
    format!("{verb} INTO tenants ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
}

fn bind_insert(statement: D1PreparedStatement, t: &Tenant) -> ApiResult<D1PreparedStatement> {
    statement
        .bind(&[
            t.tenant_id.as_str().into(),
            t.label.as_str().into(),
            int(t.created_ms),
            int(t.updated_ms),
            flag(t.settings.page_auto_create),
            flag(t.settings.count_bots),
            flag(t.settings.respect_dnt),
            origins_json(t.allowed_origins.as_ref()),
        ])
        .or_internal("binding a tenant insert")
}

pub fn insert(db: &D1Database, t: &Tenant) -> ApiResult<D1PreparedStatement> {
    bind_insert(db.prepare(insert_sql("INSERT")), t)
}

async fn first(statement: D1PreparedStatement) -> ApiResult<Option<Tenant>> {
    rows::d1_first(statement, "reading a tenant")
        .await?
        .map(tenant_of)
        .transpose()
}

pub async fn find(db: &D1Database, id: &TenantId) -> ApiResult<Option<Tenant>> {
    let statement = db
        .prepare(format!("SELECT {COLUMNS} FROM tenants WHERE id = ?1"))
        .bind(&[id.to_string().into()])
        .or_internal("binding a tenant lookup")?;
    first(statement).await
}

/// The tenant with this label, created with `template`'s id and settings if there is
/// none yet (two first uses at once settle on one row).
pub async fn find_or_create_by_label(db: &D1Database, template: &Tenant) -> ApiResult<Tenant> {
    bind_insert(db.prepare(insert_sql("INSERT OR IGNORE")), template)?
        .run()
        .await
        .or_internal("creating a tenant by label")?;
    let statement = db
        .prepare(format!("SELECT {COLUMNS} FROM tenants WHERE label = ?1"))
        .bind(&[template.label.as_str().into()])
        .or_internal("binding a tenant lookup by label")?;
    first(statement)
        .await?
        .ok_or_else(|| crate::error::ApiError::internal("a tenant vanished after creation"))
}

/// Applies changes and answers the tenant as it now is (`None` if there is no such tenant).
pub async fn update(
    db: &D1Database,
    id: &TenantId,
    changes: &TenantChanges,
    now_ms: u64,
) -> ApiResult<Option<Tenant>> {
    let optional_flag = |b: Option<bool>| b.map_or(JsValue::NULL, flag);
    let statement = db
        .prepare(format!(
            "UPDATE tenants SET label = COALESCE(?2, label), page_auto_create = COALESCE(?3, page_auto_create),
             count_bots = COALESCE(?4, count_bots), respect_dnt = COALESCE(?6, respect_dnt),
             allowed_origins = CASE WHEN ?7 THEN ?8 ELSE allowed_origins END,
             updated_ms = ?5 WHERE id = ?1 RETURNING {COLUMNS}"
        ))
        .bind(&[
            id.to_string().into(),
            changes.label.as_deref().map_or(JsValue::NULL, JsValue::from),
            optional_flag(changes.page_auto_create),
            optional_flag(changes.count_bots),
            int(now_ms),
            optional_flag(changes.respect_dnt),
            flag(changes.allowed_origins.is_some()),
            origins_json(changes.allowed_origins.as_ref().and_then(Option::as_ref)),
        ])
        .or_internal("binding a tenant update")?;
    first(statement).await
}

/// The next tenants' ids after `after`, in order: the daily backup walks them all.
pub async fn ids_after(db: &D1Database, after: &str) -> ApiResult<Vec<String>> {
    let statement = db
        .prepare("SELECT id FROM tenants WHERE id > ?1 ORDER BY id LIMIT 100")
        .bind(&[after.into()])
        .or_internal("binding a tenant listing")?;
    rows::each(rows::d1(statement, "listing tenants").await?, |mut row| {
        row.text(0)
    })
}
