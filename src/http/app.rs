//! The request pipeline, in order: route, CORS, authentication or rate limit, handler,
//! response headers, one log line. Every error, from any stage, leaves through
//! `respond::error`.

use crate::config;
use crate::domain::auth::{is_admin, presented_key};
use crate::domain::rate_limit::Decision;
use crate::error::{ApiError, ApiResult};
use crate::http::context::Ctx;
use crate::http::log::RequestLog;
use crate::http::router::{github_proxy, path_and_query, resolve, Access, Method};
use crate::http::{cors, rate_limit, respond, tenant_origins};
use crate::platform::{new_uuid, now_ms};
use crate::routes;
use worker::{Env, Request, Response};

pub async fn handle(req: Request, env: &Env) -> worker::Result<Response> {
    let started = now_ms();
    let request_id = req
        .headers()
        .get("CF-Ray")
        .ok()
        .flatten()
        .or_else(|| new_uuid().ok())
        .unwrap_or_default();
    let method_name = req.method().to_string();
    let origin = req.headers().get("Origin").ok().flatten();
    let mut pattern = "unmatched";
    let mut tenant_id = None;
    let mut limit: Option<Decision> = None;

    let outcome = serve(req, env, &mut pattern, &mut tenant_id, &mut limit).await;
    let (mut response, failure) = match outcome {
        Ok(response) => (response, None),
        Err(e) => (respond::error(&e)?, Some(e)),
    };
    let allowed_origin = origin.filter(|_| !matches!(failure, Some(ApiError::Forbidden(_))));
    cors::decorate(response.headers(), allowed_origin.as_deref())?;
    if let Some(decision) = &limit {
        rate_limit::decorate(response.headers(), decision)?;
    }
    response.headers().set("X-Request-Id", &request_id)?;
    if method_name == "HEAD" {
        response = Response::empty()?
            .with_status(response.status_code())
            .with_headers(response.headers().clone());
    }

    let status = response.status_code();
    let wanted = status >= 500 || config::get(env).map_or(true, |c| c.request_log);
    if !wanted {
        return Ok(response);
    }
    RequestLog {
        time: crate::domain::time::rfc3339(started),
        level: if status >= 500 { "error" } else { "info" },
        request_id: &request_id,
        method: &method_name,
        route: pattern,
        status,
        duration_ms: now_ms().saturating_sub(started),
        tenant_id,
        error: failure.filter(|e| e.status() >= 500).map(|e| e.to_string()),
    }
    .emit();
    Ok(response)
}

async fn serve(
    req: Request,
    env: &Env,
    pattern: &mut &'static str,
    tenant_id: &mut Option<String>,
    limit: &mut Option<Decision>,
) -> ApiResult<Response> {
    let url = req.inner().url();
    let (path, query) = path_and_query(&url);
    let config = config::get(env)?;
    let resource = match resolve(path) {
        // With the GitHub cache on, every other GET path is GitHub's.
        Err(ApiError::NotFound) if config.github.enabled() => github_proxy(),
        other => other?,
    };
    let query = query.map(str::to_string);
    let path = path.to_string();
    *pattern = resource.pattern();
    let origin = req.headers().get("Origin").ok().flatten();
    if let Some(origin) = origin.as_deref() {
        let tenant_list = match resource.tenant() {
            Some(tenant) => tenant_origins::of(env, &tenant).await,
            None => None,
        };
        cors::check_origin(tenant_list.as_ref().unwrap_or(&config.cors), origin)?;
    }
    let method = Method::parse(req.method().as_ref());
    if method == Method::Options {
        return cors::preflight(&resource).map_err(ApiError::internal);
    }
    let matched = resource.select(method)?;

    match matched.access {
        Access::Admin => {
            let header = |name| req.headers().get(name).ok().flatten();
            let (x_api_key, authorization) = (header("X-API-Key"), header("Authorization"));
            let presented = presented_key(x_api_key.as_deref(), authorization.as_deref());
            if !is_admin(presented, config.admin_api_key.as_deref()) {
                return Err(ApiError::Unauthorized);
            }
        }
        Access::Public => {
            let (class, policy) = match method {
                Method::Post => ("post", config.rate_limit_post),
                _ => ("get", config.rate_limit_get),
            };
            if policy.is_enabled() {
                let client =
                    rate_limit::client_key(req.headers().get("CF-Connecting-IP").ok().flatten());
                match rate_limit::admit(env, &client, class, policy).await {
                    Ok(decision) => {
                        *limit = Some(decision);
                        if !decision.allowed {
                            return Err(ApiError::RateLimitExceeded {
                                retry_after_seconds: decision.retry_after_seconds,
                            });
                        }
                    }
                    // A courtesy limit fails open: an unreachable limiter must not take
                    // the counters down with it.
                    Err(e) => crate::http::log::failure("rate limiter unavailable", &e),
                }
            }
        }
        Access::Open => {}
    }

    let mut ctx = Ctx {
        req,
        path,
        query,
        env,
        config,
        tenant_id: None,
    };
    let answer = routes::dispatch(&mut ctx, matched.route).await;
    *tenant_id = ctx.tenant_id.take();
    answer
}
