//! Credentials (issue, list, rotate, revoke; tenant keys and managed administrator keys)
//! and the operator's reconciliation. All administrator-only: the router says so.

use crate::domain::credentials::{issued_json, list_json, new_key, Credential};
use crate::domain::cursor::page_limit;
use crate::domain::ids::{CounterId, CredentialId, TenantId};
use crate::domain::input::NewCredential;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::body::read_limited;
use crate::http::context::Ctx;
use crate::http::{principal, respond};
use crate::objects::counter_protocol::CounterCall;
use crate::platform::{now_ms, random_bytes};
use crate::routes::counters::call_object;
use crate::store::{self, counters, credentials, tenants};
use worker::Response;

/// Counters one reconciliation page checks at most: each is an object request, and an
/// invocation's subrequests are limited.
pub const RECONCILE_DEFAULT: u32 = 20;
pub const RECONCILE_MAX: u32 = 50;

pub async fn create(ctx: &mut Ctx<'_>, tenant: Option<TenantId>) -> ApiResult<Response> {
    let body = read_limited(&mut ctx.req).await?;
    let now = now_ms();
    let new = match tenant {
        Some(_) => NewCredential::parse(&body, now)?,
        None => NewCredential::parse_admin(&body, now)?,
    };
    let db = store::database(ctx.env)?;
    if let Some(t) = &tenant {
        if tenants::find(&db, t).await?.is_none() {
            return Err(ApiError::TenantNotFound);
        }
    }
    issue(ctx, tenant, new.scopes, new.expires_ms, None).await
}

/// Stores a new credential and answers it with its key, shown this once.
async fn issue(
    ctx: &Ctx<'_>,
    tenant: Option<TenantId>,
    scopes: crate::domain::access::Scopes,
    expires_ms: Option<u64>,
    rotated_from: Option<uuid::Uuid>,
) -> ApiResult<Response> {
    let now = now_ms();
    let id = *CredentialId::generate(now, random_bytes()?).as_uuid();
    let (api_key, secret_hash) = new_key(&id, random_bytes()?);
    let credential = Credential {
        id,
        tenant_id: tenant,
        secret_hash,
        scopes,
        created_ms: now,
        expires_ms,
        revoked_ms: None,
        rotated_from,
    };
    let action = if rotated_from.is_some() {
        "rotate"
    } else {
        "issue"
    };
    let db = store::database(ctx.env)?;
    credentials::insert(&db, &credential, action, &ctx.actor().id()).await?;
    respond::json(201, issued_json(&credential, &api_key)).or_internal("answering")
}

pub async fn list(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let db = store::database(ctx.env)?;
    if tenants::find(&db, &tenant).await?.is_none() {
        return Err(ApiError::TenantNotFound);
    }
    let listed = credentials::list(&db, Some(&tenant)).await?;
    respond::json(200, list_json(&listed)).or_internal("answering")
}

/// The live credential `id` under `tenant` (`None`: a managed administrator key), or
/// CREDENTIAL_NOT_FOUND — also for one that is revoked, expired or another tenant's.
async fn live(ctx: &Ctx<'_>, tenant: Option<TenantId>, id: CredentialId) -> ApiResult<Credential> {
    let db = store::database(ctx.env)?;
    credentials::find(&db, id.as_uuid())
        .await?
        .filter(|c| c.tenant_id == tenant && c.is_live(now_ms()))
        .ok_or(ApiError::CredentialNotFound)
}

/// A new credential with the same scopes and expiry; the old one stays valid until it
/// is revoked, so clients can move over without a gap.
pub async fn rotate(
    ctx: &mut Ctx<'_>,
    tenant: Option<TenantId>,
    id: CredentialId,
) -> ApiResult<Response> {
    let old = live(ctx, tenant, id).await?;
    issue(ctx, tenant, old.scopes, old.expires_ms, Some(old.id)).await
}

pub async fn revoke(
    ctx: &mut Ctx<'_>,
    tenant: Option<TenantId>,
    id: CredentialId,
) -> ApiResult<Response> {
    let credential = live(ctx, tenant, id).await?;
    let db = store::database(ctx.env)?;
    if !credentials::revoke(&db, &credential, &ctx.actor().id(), now_ms()).await? {
        return Err(ApiError::CredentialNotFound);
    }
    // This isolate stops accepting the key at once; others within the cache's minute.
    principal::forget(&credential.id);
    Ok(Response::empty().or_internal("answering")?.with_status(204))
}

/// `GET /v2/admin/reconcile`: every counter's ledger checked by its own object, a page
/// of counters at a time.
pub async fn reconcile(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let limit = page_limit(
        ctx.query("limit")?.as_deref(),
        RECONCILE_DEFAULT,
        RECONCILE_MAX,
    )?;
    let scope = uuid::Uuid::nil();
    let key = ctx.config.cursor_key();
    let after = match ctx.query("cursor")? {
        Some(c) => Some(CounterId::from_uuid(key.decode(&scope, &c)?)),
        None => None,
    };
    let db = store::database(ctx.env)?;
    let mut ids = counters::ids_page(&db, after.as_ref(), limit + 1).await?;
    let more = ids.len() > limit as usize;
    ids.truncate(limit as usize);
    let mut body = String::from(r#"{"counters":["#);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let counter = CounterId::parse(id)?;
        let mut answer = call_object(ctx.env, counter, &CounterCall::Reconcile).await?;
        body.push_str(
            &answer
                .text()
                .await
                .or_internal("reading a reconciliation")?,
        );
    }
    let next = match (more, ids.last()) {
        (true, Some(last)) => format!(
            "\"{}\"",
            key.encode(&scope, CounterId::parse(last)?.as_uuid())
        ),
        _ => "null".into(),
    };
    body.push_str(&format!(r#"],"next_cursor":{next}}}"#));
    respond::json(200, body).or_internal("answering")
}
