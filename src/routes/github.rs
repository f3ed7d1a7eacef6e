//! GitHub cache routes: the refreshed paths from KV, the top-N views, and a caching
//! proxy for the GET paths the proxy's rules allow. All answer 404 when `GITHUB_ORGS` is
//! empty. A KV copy that is fresh is answered here; anything that must ask GitHub goes
//! through the path's fetcher object, which answers as the client is to be answered.

use crate::config::GitHubConfig;
use crate::domain::github::answers::rebase_link;
use crate::domain::github::proxy_rules::proxy_target;
use crate::domain::github::ranking::{parse_top_n, rank, ViewField};
use crate::domain::github::CachedPath;
use crate::domain::page::percent_encode;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::github::cache;
use crate::github::fetcher::Served;
use crate::http::context::Ctx;
use crate::http::respond;
use crate::platform::{get_unfollowed, now_ms};
use worker::{Headers, Response};

fn github(ctx: &Ctx<'_>) -> ApiResult<GitHubConfig> {
    let config = &ctx.config.github;
    if config.enabled() {
        Ok(config.clone())
    } else {
        Err(ApiError::NotFound)
    }
}

/// A GET of a GitHub path: from KV when the refresh keeps it, else through the proxy.
pub async fn path(ctx: &mut Ctx<'_>, path: &str) -> ApiResult<Response> {
    let config = github(ctx)?;
    let has_query = ctx.query.as_deref().is_some_and(|q| !q.is_empty());
    let answer = match CachedPath::of(path, &config.orgs) {
        Some(cached) if !has_query => serve_cached(ctx, &config, &cached).await?,
        _ => proxy(ctx, path).await?,
    };
    finish(ctx, &config, answer)
}

async fn serve_cached(
    ctx: &Ctx<'_>,
    config: &GitHubConfig,
    path: &CachedPath,
) -> ApiResult<Response> {
    if let Some(copy) = fresh_copy(ctx, config, path).await? {
        return copy.into_response().or_internal("answering");
    }
    ask_fetcher(
        ctx,
        &path.kv_key(),
        &format!("path={}", percent_encode(&path.request_path())),
    )
    .await
}

/// The KV copy while upstream vouched for it within the fresh window: one KV read, two
/// when the body is older than the window and a later confirmation may cover it.
async fn fresh_copy(
    ctx: &Ctx<'_>,
    config: &GitHubConfig,
    path: &CachedPath,
) -> ApiResult<Option<Served>> {
    let kv = cache::store(ctx.env)?;
    let key = path.kv_key();
    let Some(entry) = cache::get(&kv, &key).await else {
        return Ok(None);
    };
    let fresh = |ms: u64| now_ms().saturating_sub(ms) <= config.fresh_seconds * 1000;
    let mut confirmed = entry.meta.fetched_ms;
    if !fresh(confirmed) {
        confirmed = entry.confirmed_ms(&key, &cache::confirmations(&kv).await);
    }
    Ok(fresh(confirmed).then(|| Served::copy(entry, "HIT", confirmed)))
}

/// Any other path the rules allow: the KV copy, else the target's fetcher object (one
/// upstream request for all concurrent misses).
async fn proxy(ctx: &Ctx<'_>, path: &str) -> ApiResult<Response> {
    let target = proxy_target(path, ctx.query.as_deref())?;
    let kv = cache::store(ctx.env)?;
    let upstream = target.upstream;
    if let Some((meta, body)) = cache::proxy_get(&kv, &cache::proxy_key(&upstream)).await {
        return Served::proxied(meta, body, "HIT")
            .into_response()
            .or_internal("answering");
    }
    ask_fetcher(
        ctx,
        &format!("proxy:{upstream}"),
        &format!("proxy={}", percent_encode(&upstream)),
    )
    .await
}

/// The fetcher object's answer, relayed as it is (its errors are already the contract's).
async fn ask_fetcher(ctx: &Ctx<'_>, name: &str, query: &str) -> ApiResult<Response> {
    let stub = ctx
        .env
        .durable_object("GITHUB_FETCHER")
        .and_then(|ns| ns.get_by_name(name))
        .or_internal("reaching the GitHub fetcher")?;
    // A redirect the object relays is GitHub's, for the client: not followed here.
    let request = get_unfollowed(&format!("https://fetcher/?{query}"), &Headers::new())
        .or_internal("calling the GitHub fetcher")?;
    let answer = stub
        .fetch_with_request(request)
        .await
        .or_internal("calling the GitHub fetcher")?;
    respond::relay(answer)
}

/// What every answer of GitHub's data carries: links back through this service instead
/// of to GitHub, and no chance for a browser to run it as a page.
fn finish(ctx: &Ctx<'_>, config: &GitHubConfig, answer: Response) -> ApiResult<Response> {
    let url = ctx.req.inner().url();
    let origin = url
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()))
        .unwrap_or_default();
    let headers = answer.headers();
    for name in ["link", "location"] {
        if let Some(value) = headers.get(name).ok().flatten() {
            headers
                .set(name, &rebase_link(&value, &config.api_url, &origin))
                .or_internal("answering")?;
        }
    }
    headers
        .set("X-Content-Type-Options", "nosniff")
        .or_internal("answering")?;
    headers
        .set("Content-Security-Policy", "default-src 'none'; sandbox")
        .or_internal("answering")?;
    Ok(answer)
}

/// `GET /view/top/{N}/{field}?org=`: the view and the record of confirmations from KV.
pub async fn view(ctx: &mut Ctx<'_>, n: &str, field: &str) -> ApiResult<Response> {
    let config = github(ctx)?;
    let n = parse_top_n(n)?;
    let field = ViewField::parse(field)?;
    let org = match (ctx.query("org")?, config.orgs.as_slice()) {
        (Some(asked), orgs) => orgs
            .iter()
            .find(|o| o.eq_ignore_ascii_case(&asked))
            .cloned()
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!("org {asked:?} is not configured"))
            })?,
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(ApiError::InvalidParameter(
                "several orgs are configured: choose one with ?org=".into(),
            ))
        }
    };
    let kv = cache::store(ctx.env)?;
    let (ranked, cache_state, confirmed_ms) =
        match cache::get(&kv, &cache::view_key(&org, field)).await {
            Some(view) => {
                // Read as a `Value`: a typed `Vec` would bring serde's float formatting in.
                let ranked = match serde_json::from_str(&view.body) {
                    Ok(serde_json::Value::Array(items)) => items,
                    _ => return Err(ApiError::internal("decoding a cached view")),
                };
                // A view is as recent as the last confirmation of the list it was built from.
                let list = CachedPath::Repos(org.clone()).kv_key();
                let confirmed = view.confirmed_ms(&list, &cache::confirmations(&kv).await);
                (ranked, "HIT", confirmed)
            }
            None => {
                // No refresh yet: build the view from the repository list, fetching it once.
                let path = CachedPath::Repos(org.clone());
                let mut answer = serve_cached(ctx, &config, &path).await?;
                if answer.status_code() != 200 {
                    return finish(ctx, &config, answer);
                }
                let body = answer
                    .text()
                    .await
                    .or_internal("reading the repository list")?;
                let ranked = rank(&body, field)?
                    .into_iter()
                    .map(|(name, value)| serde_json::json!([name, value]))
                    .collect();
                (ranked, "MISS", now_ms())
            }
        };
    let top: Vec<&serde_json::Value> = ranked.iter().take(n).collect();
    let response = respond::json(
        200,
        serde_json::to_string(&top).or_internal("encoding a view")?,
    )
    .or_internal("answering")?;
    let age = now_ms().saturating_sub(confirmed_ms) / 1000;
    let headers = response.headers();
    headers
        .set("X-Cache", cache_state)
        .or_internal("answering")?;
    headers
        .set("Age", &age.to_string())
        .or_internal("answering")?;
    Ok(response)
}
