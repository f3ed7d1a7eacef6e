//! `POST /tenants` and `GET /tenants/{tenant_id}`.

use crate::domain::idempotency::fingerprint;
use crate::domain::ids::TenantId;
use crate::domain::input::{NewTenant, TenantChanges};
use crate::domain::views::{tenant_json, Tenant};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::body::read_limited;
use crate::http::context::Ctx;
use crate::http::respond;
use crate::platform::{now_ms, random_bytes};
use crate::routes::creation::{commit_once, reply};
use crate::store::{self, idempotency::Answer, tenants};
use worker::Response;

pub async fn create(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let new = NewTenant::parse(&read_limited(&mut ctx.req).await?)?;
    let keyed = ctx
        .idempotency_key()?
        .map(|k| (k, fingerprint(&["create tenant", &new.label])));
    let db = store::database(ctx.env)?;
    let now = now_ms();
    let tenant = Tenant {
        tenant_id: TenantId::generate(now, random_bytes()?).to_string(),
        label: new.label,
        created_ms: now,
        updated_ms: now,
        settings: new.settings,
        allowed_origins: new.allowed_origins,
    };
    let answer = Answer {
        status: 201,
        body: tenant_json(&tenant),
    };
    let outcome = commit_once(
        &db,
        keyed,
        vec![tenants::insert(&db, &tenant)?],
        answer,
        now,
    )
    .await?;
    reply(&outcome)
}

pub async fn read(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let db = store::database(ctx.env)?;
    let found = tenants::find(&db, &tenant)
        .await?
        .ok_or(ApiError::TenantNotFound)?;
    respond::json(200, tenant_json(&found)).or_internal("answering")
}

pub async fn update(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let changes = TenantChanges::parse(&read_limited(&mut ctx.req).await?)?;
    let db = store::database(ctx.env)?;
    let updated = tenants::update(&db, &tenant, &changes, now_ms())
        .await
        .map_err(|e| match &e {
            ApiError::Internal(detail)
                if store::violation(detail) == Some(store::Violation::TenantLabel) =>
            {
                ApiError::TenantLabelExists
            }
            _ => e,
        })?;
    let updated = updated.ok_or(ApiError::TenantNotFound)?;
    crate::http::tenant_origins::forget(&tenant);
    respond::json(200, tenant_json(&updated)).or_internal("answering")
}
