//! Route handlers: parse the request into typed values, call the domain, a store or an
//! object, shape the answer. Each file reads like its part of the API contract.

pub mod counters;
pub mod creation;
pub mod credentials;
pub mod embeds;
pub mod export;
pub mod github;
pub mod import;
pub mod increments;
pub mod migration;
pub mod pages;
pub mod stats;
pub mod tenants;

use crate::error::{ApiError, ApiResult};
use crate::http::context::Ctx;
use crate::http::router::Route;
use worker::Response;

pub async fn dispatch(ctx: &mut Ctx<'_>, route: Route) -> ApiResult<Response> {
    if let Some(tenant) = route.tenant() {
        ctx.tenant_id = Some(tenant.to_string());
    }
    #[cfg(not(feature = "annex"))]
    return edge(ctx, route).await;
    #[cfg(feature = "annex")]
    return annex(ctx, route).await;
}

/// The edge Worker's routes. The annex's get here only as the GitHub cache's 404 while
/// it is off: the edge hands the rest over first (`Route::in_annex`,
/// `http::app::to_annex`). Every route is named, so a new one must pick its Worker.
#[cfg(not(feature = "annex"))]
async fn edge(ctx: &mut Ctx<'_>, route: Route) -> ApiResult<Response> {
    use crate::error::OrInternal;
    use crate::http::respond;
    match route {
        Route::Health => respond::json(
            200,
            concat!(
                r#"{"status":"ok","version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            ),
        )
        .or_internal("answering"),
        Route::CreateTenant => tenants::create(ctx).await,
        Route::GetTenant(t) => tenants::read(ctx, t).await,
        Route::CreateCounter(t) => counters::create(ctx, t).await,
        Route::ListCounters(t) => counters::list(ctx, t).await,
        Route::GetCounter(t, c) => counters::read(ctx, t, c).await,
        Route::Increment(t, c) => counters::increment(ctx, t, c, false).await,
        Route::SetValue(t, c) => counters::set(ctx, t, c, false).await,
        Route::V2Increment(t, c) => counters::increment(ctx, t, c, true).await,
        Route::V2Set(t, c) => counters::set(ctx, t, c, true).await,
        Route::V2GetCounter(t, c) => counters::read(ctx, t, c).await,
        Route::Operations(t, c) => counters::operations(ctx, t, c).await,
        Route::CreateCredential(t) => credentials::create(ctx, t).await,
        Route::ListCredentials(t) => credentials::list(ctx, t).await,
        Route::RotateCredential(t, id) => credentials::rotate(ctx, t, id).await,
        Route::RevokeCredential(t, id) => credentials::revoke(ctx, t, id).await,
        Route::Reconcile => credentials::reconcile(ctx).await,
        Route::UpdateTenant(t) => tenants::update(ctx, t).await,
        Route::Visit(t, p) => pages::visit(ctx, t, p).await,
        Route::GetPage(t, p) => pages::read(ctx, t, p).await,
        Route::DeletePage(t, p) => pages::delete(ctx, t, p).await,
        Route::PageHistory(t, p) => pages::history(ctx, t, p).await,
        Route::LegacyCounterIncrement => migration::counter_increment(ctx).await,
        Route::LegacyCounterRead => migration::counter_read(ctx).await,
        Route::WebCounterIncrement => migration::web_counter_increment(ctx).await,
        Route::WebCounterRead | Route::VisitorGetCounter => migration::web_counter_read(ctx).await,
        Route::LegacyVisit(p) => migration::visit(ctx, p).await,
        Route::LegacyVisits(p) => migration::visits(ctx, p).await,
        Route::CounterBadge(t, c) => embeds::counter_badge(ctx, t, c).await,
        Route::PageBadge(t, p) => embeds::page_badge(ctx, t, p).await,
        // The GitHub cache is off (on, they are the annex's).
        Route::GitHub | Route::GitHubView(..) => Err(ApiError::NotFound),
        Route::Stats(_) | Route::Export(_) | Route::Import(_) => Err(ApiError::internal(
            "an annex route reached the edge's handlers",
        )),
    }
}

/// The annex Worker's routes; it is reached only through the edge, which sends it
/// nothing else. Every route is named, so a new one must pick its Worker.
#[cfg(feature = "annex")]
async fn annex(ctx: &mut Ctx<'_>, route: Route) -> ApiResult<Response> {
    match route {
        Route::Stats(t) => stats::read(ctx, t).await,
        Route::Export(t) => export::export(ctx, t).await,
        Route::Import(t) => import::import(ctx, t).await,
        Route::GitHub => {
            let path = ctx.path.clone();
            github::path(ctx, &path).await
        }
        Route::GitHubView(n, field) => github::view(ctx, &n, &field).await,
        Route::Health
        | Route::CreateTenant
        | Route::GetTenant(_)
        | Route::UpdateTenant(_)
        | Route::CreateCounter(_)
        | Route::ListCounters(_)
        | Route::GetCounter(..)
        | Route::Increment(..)
        | Route::SetValue(..)
        | Route::Visit(..)
        | Route::GetPage(..)
        | Route::DeletePage(..)
        | Route::PageHistory(..)
        | Route::LegacyCounterIncrement
        | Route::LegacyCounterRead
        | Route::WebCounterIncrement
        | Route::WebCounterRead
        | Route::VisitorGetCounter
        | Route::LegacyVisit(_)
        | Route::LegacyVisits(_)
        | Route::CounterBadge(..)
        | Route::PageBadge(..)
        | Route::V2Increment(..)
        | Route::V2Set(..)
        | Route::V2GetCounter(..)
        | Route::Operations(..)
        | Route::CreateCredential(_)
        | Route::ListCredentials(_)
        | Route::RotateCredential(..)
        | Route::RevokeCredential(..)
        | Route::Reconcile => Err(ApiError::NotFound),
    }
}
