//! GitHub cache routes: the refreshed paths from KV, the top-N views, and a caching
//! proxy for every other GET path. All answer 404 when `GITHUB_ORGS` is empty.

use crate::config::GitHubConfig;
use crate::domain::github::{parse_top_n, rank, CachedPath, ViewField};
use crate::domain::page::percent_encode;
use crate::error::{ApiError, ApiResult};
use crate::github::cache::{self, Entry};
use crate::github::fetcher::Served;
use crate::github::upstream;
use crate::http::context::Ctx;
use crate::http::respond::{self, OrInternal};
use crate::platform::now_ms;
use worker::{Cache, Headers, Response};

/// Proxied answers stay in the Cache API this long.
const PROXY_TTL_SECONDS: u32 = 60;

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
    match CachedPath::of(path, &config.orgs) {
        Some(cached) if !has_query => serve_cached(ctx, &config, &cached).await,
        _ => proxy(ctx, &config, path).await,
    }
}

async fn serve_cached(
    ctx: &Ctx<'_>,
    config: &GitHubConfig,
    path: &CachedPath,
) -> ApiResult<Response> {
    match cached_copy(ctx, config, path).await? {
        Served::Copy { entry, state } => answer(&entry, &state),
        Served::Passed { answer: a } => passed_on(a.status, a.body, &a.passed_headers),
    }
}

/// The KV copy while it is fresh (one KV read); otherwise the path's fetcher object asks
/// GitHub, once for all concurrent requests.
async fn cached_copy(ctx: &Ctx<'_>, config: &GitHubConfig, path: &CachedPath) -> ApiResult<Served> {
    let kv = cache::store(ctx.env)?;
    if let Some(entry) = cache::get(&kv, &path.kv_key()).await? {
        if now_ms().saturating_sub(entry.meta.fetched_ms) <= config.fresh_seconds * 1000 {
            return Ok(Served::Copy {
                entry,
                state: "HIT".into(),
            });
        }
    }
    let stub = ctx
        .env
        .durable_object("GITHUB_FETCHER")
        .and_then(|ns| ns.get_by_name(&path.kv_key()))
        .or_internal("reaching the GitHub fetcher")?;
    let url = format!(
        "https://fetcher/?path={}",
        percent_encode(&path.request_path())
    );
    let mut answer = stub
        .fetch_with_str(&url)
        .await
        .or_internal("calling the GitHub fetcher")?;
    let text = answer
        .text()
        .await
        .or_internal("reading the GitHub fetcher")?;
    match answer.status_code() {
        200 => serde_json::from_str(&text).or_internal("decoding the GitHub fetcher"),
        502 => Err(ApiError::UpstreamUnavailable { timeout: false }),
        504 => Err(ApiError::UpstreamUnavailable { timeout: true }),
        404 => Err(ApiError::NotFound),
        other => Err(ApiError::Internal(format!(
            "GitHub fetcher answered {other}: {text}"
        ))),
    }
}

/// `GET /view/top/{N}/{field}?org=`: one KV read.
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
    let (ranked, cache_state, fetched_ms) = match cache::get(&kv, &cache::view_key(&org, field))
        .await?
    {
        Some(view) => {
            let ranked: Vec<serde_json::Value> =
                serde_json::from_str(&view.body).or_internal("decoding a cached view")?;
            (ranked, "HIT", view.meta.fetched_ms)
        }
        None => {
            // No refresh yet: build the view from the repository list, fetching it once.
            let entry = match cached_copy(ctx, &config, &CachedPath::Repos(org.clone())).await? {
                Served::Copy { entry, .. } => entry,
                Served::Passed { answer: a } => {
                    return passed_on(a.status, a.body, &a.passed_headers)
                }
            };
            let ranked = rank(&entry.body, field)?
                .into_iter()
                .map(|(name, value)| serde_json::json!([name, value]))
                .collect();
            (ranked, "MISS", entry.meta.fetched_ms)
        }
    };
    let top: Vec<&serde_json::Value> = ranked.iter().take(n).collect();
    let response = respond::json(
        200,
        serde_json::to_string(&top).or_internal("encoding a view")?,
    )
    .or_internal("answering")?;
    cache_headers(&response, cache_state, fetched_ms)?;
    Ok(response)
}

/// Any other GET path: the Cache API's copy, else GitHub's answer (cached briefly).
async fn proxy(ctx: &Ctx<'_>, config: &GitHubConfig, path: &str) -> ApiResult<Response> {
    let target = match ctx.query.as_deref().filter(|q| !q.is_empty()) {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let cache_key = format!("{}{target}", config.api_url);
    let cache = Cache::default();
    if let Some(hit) = cache
        .get(cache_key.as_str(), false)
        .await
        .or_internal("reading the proxy cache")?
    {
        let (_, body) = hit.into_parts();
        let response = respond::json_body(200, body).or_internal("answering")?;
        response
            .headers()
            .set("X-Cache", "HIT")
            .or_internal("answering")?;
        return Ok(response);
    }
    let answer = upstream::get(config, &target, None)
        .await
        .map_err(|f| f.to_error())?;
    if answer.status == 200 {
        let stored = passed_on(200, answer.body.clone(), &answer.passed_headers)?;
        stored
            .headers()
            .set(
                "Cache-Control",
                &format!("public, max-age={PROXY_TTL_SECONDS}"),
            )
            .or_internal("caching")?;
        cache
            .put(cache_key.as_str(), stored)
            .await
            .or_internal("writing the proxy cache")?;
    }
    let response = passed_on(answer.status, answer.body, &answer.passed_headers)?;
    response
        .headers()
        .set("X-Cache", "MISS")
        .or_internal("answering")?;
    Ok(response)
}

fn answer(entry: &Entry, cache_state: &str) -> ApiResult<Response> {
    let response = respond::json(200, entry.body.clone()).or_internal("answering")?;
    cache_headers(&response, cache_state, entry.meta.fetched_ms)?;
    Ok(response)
}

fn cache_headers(response: &Response, cache_state: &str, fetched_ms: u64) -> ApiResult<()> {
    let age = now_ms().saturating_sub(fetched_ms) / 1000;
    response
        .headers()
        .set("X-Cache", cache_state)
        .or_internal("answering")?;
    response
        .headers()
        .set("Age", &age.to_string())
        .or_internal("answering")
}

/// GitHub's answer with GitHub's relevant headers.
fn passed_on(status: u16, body: String, headers: &[(String, String)]) -> ApiResult<Response> {
    let out = Headers::new();
    for (name, value) in headers {
        out.set(name, value).or_internal("answering")?;
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        out.set("Content-Type", respond::JSON)
            .or_internal("answering")?;
    }
    Ok(Response::ok(body)
        .or_internal("answering")?
        .with_status(status)
        .with_headers(out))
}
