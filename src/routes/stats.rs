//! `GET /tenants/{t}/stats`: a site's visits, visitors, series and top lists over a
//! range, answered from the rollups (`store::stats`) — rows read grow with the range's
//! buckets and the top lists, never with the number of visits.

use crate::domain::ids::TenantId;
use crate::domain::stats::StatsQuery;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::http::respond;
use crate::store::{self, tenants};
use worker::Response;

pub async fn read(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let query = StatsQuery::parse(
        ctx.history_range()?,
        ctx.query("limit")?.as_deref(),
        ctx.query("page")?.as_deref(),
    )?;
    // A share link may be public: its holder's reads are braked like any public read.
    crate::http::brake::check_read(ctx.env, &ctx.client).await?;
    let db = store::database(ctx.env)?;
    if tenants::find(&db, &tenant).await?.is_none() {
        return Err(ApiError::TenantNotFound);
    }
    let answer = store::stats::stats(&db, &tenant.to_string(), &query).await?;
    let response = respond::json(200, answer.json).or_internal("answering")?;
    // What the answer cost in D1, for operators and the tests that keep it flat.
    response
        .headers()
        .set("X-D1-Rows-Read", &answer.rows_read.to_string())
        .or_internal("answering")?;
    Ok(response)
}
