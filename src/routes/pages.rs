//! Page routes: a visit, a page's count, and its history.

use crate::domain::history::HistoryRange;
use crate::domain::ids::TenantId;
use crate::domain::page::PageId;
use crate::domain::visit::{country, referrer_host, AgentClass};
use crate::error::{ApiError, ApiResult};
use crate::http::context::Ctx;
use crate::http::respond::{self, OrInternal};
use crate::objects::page_protocol::{PageCall, Visitor};
use crate::platform::now_ms;
use crate::store::{self, pages, tenants};
use serde::Deserialize;
use worker::{Env, Method, Request, RequestInit};

/// What a page object answers.
#[derive(Debug, Deserialize)]
pub struct PageAnswer {
    pub page_id: String,
    pub count: u64,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub uniques_today: u64,
}

pub async fn visit(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    page: PageId,
) -> ApiResult<worker::Response> {
    let answer = record_visit(ctx, &tenant, &page).await?;
    let body = serde_json::json!({"page_id": answer.page_id, "count": answer.count, "unique": answer.unique});
    respond::json(200, body.to_string()).or_internal("answering")
}

pub async fn read(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    page: PageId,
) -> ApiResult<worker::Response> {
    let answer = read_page(ctx.env, &tenant, &page).await?;
    let body = serde_json::json!({"page_id": answer.page_id, "count": answer.count, "uniques_today": answer.uniques_today});
    respond::json(200, body.to_string()).or_internal("answering")
}

pub async fn history(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    page: PageId,
) -> ApiResult<worker::Response> {
    let range = HistoryRange::parse(
        ctx.query("from")?.as_deref(),
        ctx.query("to")?.as_deref(),
        ctx.query("granularity")?.as_deref(),
        now_ms(),
    )?;
    let db = store::database(ctx.env)?;
    let tenant_id = tenant.to_string();
    if pages::find(&db, &tenant_id, page.as_str()).await?.is_none() {
        return Err(match tenants::find(&db, &tenant).await? {
            None => ApiError::TenantNotFound,
            Some(_) => ApiError::PageNotFound,
        });
    }
    let found = pages::history(&db, &tenant_id, page.as_str(), &range).await?;
    // Every bucket of the range, empty ones as zeros, so charts need no gap filling.
    let step = range.granularity.bucket_ms();
    let mut found = found.into_iter().peekable();
    let mut series = Vec::new();
    let mut start = range.from_ms;
    while start < range.to_ms {
        let (visits, uniques) = match found.peek() {
            Some(b) if b.start == start => found.next().map_or((0, 0), |b| (b.visits, b.uniques)),
            _ => (0, 0),
        };
        series.push(serde_json::json!({
            "start": crate::domain::time::rfc3339(start),
            "visits": visits,
            "uniques": uniques,
        }));
        start += step;
    }
    respond::json(200, serde_json::json!({ "series": series }).to_string()).or_internal("answering")
}

/// Counts a visit of the calling client on a page, through the page's object.
pub async fn record_visit(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    page: &PageId,
) -> ApiResult<PageAnswer> {
    let user_agent = ctx.header("User-Agent");
    let visitor = Visitor {
        ip: ctx.header("CF-Connecting-IP").unwrap_or_default(),
        agent: AgentClass::of(user_agent.as_deref()),
        user_agent: user_agent.unwrap_or_default(),
        referrer_host: referrer_host(ctx.header("Referer").as_deref()),
        country: country(ctx.req.cf().and_then(|cf| cf.country()).as_deref()),
        dnt: ctx.header("DNT").as_deref().map(str::trim) == Some("1"),
    };
    let call = PageCall::Visit {
        tenant: tenant.to_string(),
        page: page.as_str().to_string(),
        visitor,
    };
    call_page(ctx.env, &call).await
}

pub async fn read_page(env: &Env, tenant: &TenantId, page: &PageId) -> ApiResult<PageAnswer> {
    call_page(
        env,
        &PageCall::Read {
            tenant: tenant.to_string(),
            page: page.as_str().to_string(),
        },
    )
    .await
}

async fn call_page(env: &Env, call: &PageCall) -> ApiResult<PageAnswer> {
    let page = PageId::new(call.page().to_string())?;
    let stub = env
        .durable_object("PAGE")
        .and_then(|ns| ns.get_by_name(&page.object_name(call.tenant())))
        .or_internal("reaching a page object")?;
    let mut init = RequestInit::new();
    let body = serde_json::to_string(call).or_internal("encoding a page call")?;
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request =
        Request::new_with_init("https://page/", &init).or_internal("building a page call")?;
    let mut answer = stub
        .fetch_with_request(request)
        .await
        .or_internal("calling a page object")?;
    let status = answer.status_code();
    let text = answer
        .text()
        .await
        .or_internal("reading a page object's answer")?;
    if status == 200 {
        return serde_json::from_str(&text).or_internal("decoding a page object's answer");
    }
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string));
    Err(match code.as_deref() {
        Some("TENANT_NOT_FOUND") => ApiError::TenantNotFound,
        Some("PAGE_NOT_FOUND") => ApiError::PageNotFound,
        Some("PAGE_LIMIT_REACHED") => ApiError::PageLimitReached {
            limit: crate::config::get(env)?.max_pages_per_tenant,
        },
        Some("INVALID_PARAMETER") => ApiError::InvalidParameter("page_id is not valid".into()),
        _ => ApiError::Internal(format!("page object answered {status}: {text}")),
    })
}
