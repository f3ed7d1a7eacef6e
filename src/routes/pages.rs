//! Page routes: a visit, a page's count, its history, and its deletion.

use crate::domain::budget::Decision;
use crate::domain::crypto::hex;
use crate::domain::ids::TenantId;
use crate::domain::page::PageId;
use crate::domain::visit::{country, referrer_host, visitor_hash};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::http::respond;
use crate::objects::page_protocol::{call_url, PageCall, PageView, VisitAnswer, Visitor};
use crate::store::{self, pages, tenants};
use worker::{Env, Response};

/// A visit as the page object decided it, with the client's budget.
pub struct Visited {
    pub answer: VisitAnswer,
    pub budget: Option<Decision>,
}

/// `POST …/visit`: the object's answer is the client's, streamed through.
pub async fn visit(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let call = visit_call(ctx, &tenant, &page, false).await;
    respond::relay(call_page(ctx.env, &call).await?)
}

pub async fn read(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let call = PageCall::Read {
        tenant: tenant.to_string(),
        page: page.as_str().to_string(),
    };
    respond::relay(call_page(ctx.env, &call).await?)
}

/// `DELETE /tenants/{t}/pages/{p}` (admin): the page, its visit log and its history.
pub async fn delete(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let call = PageCall::Delete {
        tenant: tenant.to_string(),
        page: page.as_str().to_string(),
    };
    call_page(ctx.env, &call).await?;
    Ok(Response::empty().or_internal("answering")?.with_status(204))
}

pub async fn history(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let range = ctx.history_range()?;
    let db = store::database(ctx.env)?;
    let tenant_id = tenant.to_string();
    if pages::find(&db, &tenant_id, page.as_str()).await?.is_none() {
        return Err(match tenants::find(&db, &tenant).await? {
            None => ApiError::TenantNotFound,
            Some(_) => ApiError::PageNotFound,
        });
    }
    let found = pages::history(&db, &tenant_id, page.as_str(), &range).await?;
    let body = serde_json::to_string(&range.fill(found)).or_internal("encoding history")?;
    respond::json(200, body).or_internal("answering")
}

/// Counts a visit of the calling client on a page, through the page's object.
/// `count_all` counts it whatever its user agent (the migration routes).
pub async fn record_visit(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    page: &PageId,
    count_all: bool,
) -> ApiResult<Visited> {
    let call = visit_call(ctx, tenant, page, count_all).await;
    let mut answer = call_page(ctx.env, &call).await?;
    let budget = respond::budget_of(&answer);
    Ok(Visited {
        answer: decode(&mut answer, VisitAnswer::from_json).await?,
        budget,
    })
}

/// The visit of the calling client: what the object needs to decide it, no more. The
/// address and user agent stay here: the object gets their day-scoped hashes.
async fn visit_call(ctx: &Ctx<'_>, tenant: &TenantId, page: &PageId, count_all: bool) -> PageCall {
    let salt = ctx.salt().await;
    let ip = ctx.header("CF-Connecting-IP").unwrap_or_default();
    let user_agent = ctx.header("User-Agent").unwrap_or_default();
    let visitor = Visitor {
        visitor: salt
            .as_deref()
            .map(|salt| hex(&visitor_hash(salt.as_bytes(), &ip, &user_agent))),
        agent: ctx.agent,
        // The embed script names where the visitor came from (`referrer`, empty for
        // nowhere); otherwise the request's own Referer says it.
        referrer_host: match ctx.query("referrer") {
            Ok(Some(named)) => referrer_host(Some(&named)),
            _ => referrer_host(ctx.header("Referer").as_deref()),
        },
        country: country(ctx.req.cf().and_then(|cf| cf.country()).as_deref()),
        dnt: ctx.header("DNT").as_deref().map(str::trim) == Some("1"),
        client: ctx.budget_client(salt.as_deref()).as_str().to_string(),
        count_all,
    };
    PageCall::Visit {
        tenant: tenant.to_string(),
        page: page.as_str().to_string(),
        visitor,
    }
}

pub async fn read_page(env: &Env, tenant: &TenantId, page: &PageId) -> ApiResult<PageView> {
    let call = PageCall::Read {
        tenant: tenant.to_string(),
        page: page.as_str().to_string(),
    };
    decode(&mut call_page(env, &call).await?, PageView::from_json).await
}

/// A page object's answer, parsed by `parse`.
async fn decode<T>(
    answer: &mut Response,
    parse: fn(&serde_json::Value) -> Option<T>,
) -> ApiResult<T> {
    let text = answer
        .text()
        .await
        .or_internal("reading a page object's answer")?;
    serde_json::from_str(&text)
        .ok()
        .as_ref()
        .and_then(parse)
        .ok_or_else(|| ApiError::internal("a page object's answer that does not parse"))
}

/// Calls the page's object; a success is its answer, an error becomes ours.
pub(crate) async fn call_page(env: &Env, call: &PageCall) -> ApiResult<Response> {
    let page = PageId::new(call.page().to_string())?;
    let stub = env
        .durable_object("PAGE")
        .and_then(|ns| ns.get_by_name(&page.object_name(call.tenant())))
        .or_internal("reaching a page object")?;
    let url = call_url(call).or_internal("encoding a page call")?;
    let mut answer = stub
        .fetch_with_str(&url)
        .await
        .or_internal("calling a page object")?;
    let status = answer.status_code();
    if (200..300).contains(&status) {
        return Ok(answer);
    }
    let text = answer
        .text()
        .await
        .or_internal("reading a page object's answer")?;
    let error: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let code = error["errors"][0]["code"].as_str().unwrap_or_default();
    let retry_after = answer
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Err(match code {
        "TENANT_NOT_FOUND" => ApiError::TenantNotFound,
        "PAGE_NOT_FOUND" => ApiError::PageNotFound,
        "PAGE_LIMIT_REACHED" => ApiError::PageLimitReached {
            limit: crate::config::get(env)?.max_pages_per_tenant,
        },
        "RATE_LIMIT_EXCEEDED" => ApiError::RateLimitExceeded {
            retry_after_seconds: retry_after,
        },
        "INVALID_PARAMETER" => ApiError::InvalidParameter("page_id is not valid".into()),
        _ => ApiError::Internal(format!("page object answered {status}: {text}")),
    })
}
