//! The migration routes: the older counter services' APIs, answered in their own shapes
//! on the default tenant (`DEFAULT_TENANT_LABEL`), which is created on first use with
//! page auto-creation on. They count every client — `curl`, scripts, `ab` — as the
//! services they replace did; budgets still apply per client.

use crate::domain::counter::Delta;
use crate::domain::ids::{CounterId, TenantId};
use crate::domain::page::PageId;
use crate::domain::views::{Tenant, TenantSettings};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::http::respond;
use crate::objects::counter_protocol::CounterCall;
use crate::platform::{now_ms, random_bytes};
use crate::routes::counters::call_object;
use crate::routes::pages::{read_page, record_visit};
use crate::store::{self, counters, tenants};
use std::cell::OnceCell;
use worker::{Headers, Response};

/// The counter `POST /api/v1/counter` increments.
const LEGACY_COUNTER_LABEL: &str = "counter";
/// The page the web-counter routes count.
const WEB_COUNTER_PAGE: &str = "web-counter";

thread_local! {
    // Both exist forever once created, so an isolate looks them up once.
    static DEFAULT_TENANT: OnceCell<TenantId> = const { OnceCell::new() };
    static LEGACY_COUNTER: OnceCell<CounterId> = const { OnceCell::new() };
}

async fn default_tenant(ctx: &Ctx<'_>) -> ApiResult<TenantId> {
    if let Some(id) = DEFAULT_TENANT.with(|c| c.get().copied()) {
        return Ok(id);
    }
    let now = now_ms();
    let template = Tenant {
        tenant_id: TenantId::generate(now, random_bytes()?).to_string(),
        label: ctx.config.default_tenant_label.clone(),
        created_ms: now,
        updated_ms: now,
        settings: TenantSettings {
            page_auto_create: true,
            count_bots: true,
            ..TenantSettings::default()
        },
        allowed_origins: None,
    };
    let tenant = tenants::find_or_create_by_label(&store::database(ctx.env)?, &template).await?;
    let id = TenantId::parse(&tenant.tenant_id)?;
    DEFAULT_TENANT.with(|c| *c.get_or_init(|| id));
    Ok(id)
}

async fn legacy_counter(ctx: &Ctx<'_>, tenant: &TenantId) -> ApiResult<CounterId> {
    if let Some(id) = LEGACY_COUNTER.with(|c| c.get().copied()) {
        return Ok(id);
    }
    let now = now_ms();
    let new_id = CounterId::generate(now, random_bytes()?);
    let db = store::database(ctx.env)?;
    let id =
        counters::find_or_create_by_label(&db, tenant, LEGACY_COUNTER_LABEL, &new_id, now).await?;
    let id = CounterId::parse(&id)?;
    LEGACY_COUNTER.with(|c| *c.get_or_init(|| id));
    Ok(id)
}

fn web_counter_page() -> ApiResult<PageId> {
    PageId::new(WEB_COUNTER_PAGE.into())
}

fn plain(body: String) -> ApiResult<Response> {
    let headers = Headers::new();
    headers
        .set("Content-Type", "text/plain; charset=utf-8")
        .or_internal("answering")?;
    headers
        .set("Cache-Control", "no-store")
        .or_internal("answering")?;
    Ok(Response::ok(body)
        .or_internal("answering")?
        .with_headers(headers))
}

async fn counter_value(ctx: &Ctx<'_>, call: CounterCall, counter: CounterId) -> ApiResult<i64> {
    let mut answer = call_object(ctx.env, counter, &call).await?;
    let status = answer.status_code();
    let retry_after = answer.headers().get("Retry-After").ok().flatten();
    let text = answer.text().await.or_internal("reading a counter")?;
    if status == 429 {
        return Err(ApiError::RateLimitExceeded {
            retry_after_seconds: retry_after.and_then(|v| v.parse().ok()).unwrap_or(60),
        });
    }
    let value: serde_json::Value = serde_json::from_str(&text).or_internal("decoding a counter")?;
    if status != 200 {
        return Err(ApiError::Internal(format!(
            "legacy counter answered {status}: {text}"
        )));
    }
    value["value"]
        .as_i64()
        .ok_or_else(|| ApiError::internal("counter answer without a value"))
}

/// `POST /api/v1/counter` → 204; over the client's budget, 429.
pub async fn counter_increment(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let tenant = default_tenant(ctx).await?;
    let counter = legacy_counter(ctx, &tenant).await?;
    let client = ctx.budget_client(ctx.salt().await.as_deref());
    let call = CounterCall::Increment {
        tenant,
        delta: Delta::ONE,
        key: None,
        client: Some(client),
        view: false,
        actor: ctx.actor(),
    };
    counter_value(ctx, call, counter).await?;
    Ok(Response::empty().or_internal("answering")?.with_status(204))
}

/// `GET /api/v1/counter` → `{"count": N}`.
pub async fn counter_read(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let tenant = default_tenant(ctx).await?;
    let counter = legacy_counter(ctx, &tenant).await?;
    let value = counter_value(ctx, CounterCall::Read { tenant }, counter).await?;
    respond::json(200, format!(r#"{{"count":{value}}}"#)).or_internal("answering")
}

/// `GET|POST /web-counter/increment` → the new count as a bare number. Over the client's
/// budget it is the count as it stands, with `Retry-After`; a `HEAD` only reads.
pub async fn web_counter_increment(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    if ctx.head {
        return web_counter_read(ctx).await;
    }
    let tenant = default_tenant(ctx).await?;
    let visited = record_visit(ctx, &tenant, &web_counter_page()?, true).await?;
    let response = plain(visited.answer.count.to_string())?;
    if let Some(decision) = &visited.budget {
        respond::decorate_budget(response.headers(), decision).or_internal("answering")?;
    }
    Ok(response)
}

/// `GET /web-counter/` and `GET /api/v1/visitor/getCounter` → the count as a bare number.
pub async fn web_counter_read(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let tenant = default_tenant(ctx).await?;
    plain(
        page_count(ctx, &tenant, &web_counter_page()?)
            .await?
            .to_string(),
    )
}

/// `POST /visit/{page_id}` → `{"status": "success", "message": ...}`; a visit over the
/// client's budget was not recorded, so it is 429 rather than a success that lies.
pub async fn visit(ctx: &mut Ctx<'_>, page: PageId) -> ApiResult<Response> {
    let tenant = default_tenant(ctx).await?;
    let visited = record_visit(ctx, &tenant, &page, true).await?;
    if let Some(decision) = visited.budget.filter(|d| !d.allowed) {
        return Err(ApiError::RateLimitExceeded {
            retry_after_seconds: decision.retry_after_seconds,
        });
    }
    let message = format!("Visit recorded for page {}", page.as_str());
    respond::json(
        200,
        // The old service's shape, its key order included.
        format!(
            r#"{{"status":"success","message":{}}}"#,
            serde_json::Value::from(message)
        ),
    )
    .or_internal("answering")
}

/// `GET /visits/{page_id}` → `{"count": N, "served_via": "durable_object"}`.
pub async fn visits(ctx: &mut Ctx<'_>, page: PageId) -> ApiResult<Response> {
    let tenant = default_tenant(ctx).await?;
    let count = page_count(ctx, &tenant, &page).await?;
    respond::json(
        200,
        format!(r#"{{"count":{count},"served_via":"durable_object"}}"#),
    )
    .or_internal("answering")
}

/// A page never visited counts zero here: these APIs had no notion of a missing page.
async fn page_count(ctx: &Ctx<'_>, tenant: &TenantId, page: &PageId) -> ApiResult<u64> {
    match read_page(ctx.env, tenant, page).await {
        Ok(answer) => Ok(answer.count),
        Err(ApiError::PageNotFound) => Ok(0),
        Err(e) => Err(e),
    }
}
