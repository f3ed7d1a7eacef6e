//! The `credentials` and `credential_audit` tables. Every change to a credential is
//! written in one D1 batch with its audit row: who did it, and when.

use crate::domain::access::Scopes;
use crate::domain::credentials::Credential;
use crate::domain::ids::TenantId;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::rows::{self, Row};
use crate::store::int;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

const COLUMNS: &str =
    "id, tenant_id, secret_hash, scopes, created_ms, expires_ms, revoked_ms, rotated_from";

/// Credentials one tenant lists at most (the newest).
pub const LIST_MAX: u32 = 1_000;

fn credential_of(mut row: Row) -> ApiResult<Credential> {
    let uuid = |text: Option<String>| -> ApiResult<Option<uuid::Uuid>> {
        text.map(|t| {
            uuid::Uuid::try_parse(&t)
                .map_err(|_| ApiError::internal("a stored id that is not a UUID"))
        })
        .transpose()
    };
    Ok(Credential {
        id: uuid(Some(row.text(0)?))?.ok_or_else(|| ApiError::internal("no id"))?,
        tenant_id: row.opt_text(1)?.map(|t| TenantId::parse(&t)).transpose()?,
        secret_hash: row.text(2)?,
        scopes: Scopes::split(&row.text(3)?),
        created_ms: row.uint(4)?,
        expires_ms: row.opt_uint(5)?,
        revoked_ms: row.opt_uint(6)?,
        rotated_from: uuid(row.opt_text(7)?)?,
    })
}

fn opt_int(n: Option<u64>) -> JsValue {
    n.map_or(JsValue::NULL, int)
}

fn audit(
    db: &D1Database,
    c: &Credential,
    action: &str,
    actor_id: &str,
    at_ms: u64,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO credential_audit (credential_id, tenant_id, action, actor_id, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&[
        c.id.hyphenated().to_string().into(),
        c.tenant_id.map_or(JsValue::NULL, |t| t.to_string().into()),
        action.into(),
        actor_id.into(),
        int(at_ms),
    ])
    .or_internal("binding a credential audit row")
}

/// Stores a new credential (`action`: `issue` or `rotate`) with its audit row.
pub async fn insert(
    db: &D1Database,
    c: &Credential,
    action: &str,
    actor_id: &str,
) -> ApiResult<()> {
    let insert = db
        .prepare(format!(
            "INSERT INTO credentials ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))
        .bind(&[
            c.id.hyphenated().to_string().into(),
            c.tenant_id.map_or(JsValue::NULL, |t| t.to_string().into()),
            c.secret_hash.as_str().into(),
            c.scopes.join().into(),
            int(c.created_ms),
            opt_int(c.expires_ms),
            JsValue::NULL,
            c.rotated_from
                .map_or(JsValue::NULL, |r| r.hyphenated().to_string().into()),
        ])
        .or_internal("binding a credential insert")?;
    let audit = audit(db, c, action, actor_id, c.created_ms)?;
    db.batch(vec![insert, audit])
        .await
        .or_internal("storing a credential")?;
    Ok(())
}

pub async fn find(db: &D1Database, id: &uuid::Uuid) -> ApiResult<Option<Credential>> {
    let statement = db
        .prepare(format!("SELECT {COLUMNS} FROM credentials WHERE id = ?1"))
        .bind(&[id.hyphenated().to_string().into()])
        .or_internal("binding a credential lookup")?;
    rows::d1_first(statement, "reading a credential")
        .await?
        .map(credential_of)
        .transpose()
}

/// A tenant's credentials (`None`: the managed administrator keys), oldest first.
pub async fn list(db: &D1Database, tenant: Option<&TenantId>) -> ApiResult<Vec<Credential>> {
    let tenant = tenant.map_or(JsValue::NULL, |t| t.to_string().into());
    let statement = db
        .prepare(format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM credentials WHERE tenant_id IS ?1
             ORDER BY id DESC LIMIT ?2) ORDER BY id"
        ))
        .bind(&[tenant, int(LIST_MAX)])
        .or_internal("binding a credential list")?;
    rows::each(
        rows::d1(statement, "listing credentials").await?,
        credential_of,
    )
}

/// Revokes a live credential with its audit row; false when it was not live (already
/// revoked, or expired) by the time the write ran.
pub async fn revoke(
    db: &D1Database,
    c: &Credential,
    actor_id: &str,
    now_ms: u64,
) -> ApiResult<bool> {
    let update = db
        .prepare(
            "UPDATE credentials SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL
             AND (expires_ms IS NULL OR expires_ms > ?2)",
        )
        .bind(&[c.id.hyphenated().to_string().into(), int(now_ms)])
        .or_internal("binding a revocation")?;
    // The audit row is written only if the update changed the credential.
    let audit = db
        .prepare(
            "INSERT INTO credential_audit (credential_id, tenant_id, action, actor_id, at_ms)
             SELECT id, tenant_id, 'revoke', ?2, ?3 FROM credentials WHERE id = ?1 AND revoked_ms = ?3",
        )
        .bind(&[
            c.id.hyphenated().to_string().into(),
            actor_id.into(),
            int(now_ms),
        ])
        .or_internal("binding a revocation audit row")?;
    let changed = crate::store::changed(db, vec![update, audit], "revoking a credential").await?;
    Ok(changed.first().is_some_and(|&n| n > 0))
}
