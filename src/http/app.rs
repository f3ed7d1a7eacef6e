//! The request pipeline, in order: route, CORS, authentication or the read brake,
//! handler, response headers, and a log line for what is worth one. Every error, from
//! any stage, leaves through `respond::error`. Counting requests meet their budget inside
//! the object they count, not here: the edge spends no object request on limits.

use crate::config::{self, Fault, LogMode};
use crate::domain::access::{authorize, Principal};
use crate::domain::agent::AgentClass;
use crate::domain::auth::presented_key;
use crate::domain::client::ClientKey;
use crate::domain::sentry::{Event, Kind};
use crate::error::{ApiError, ApiResult};
use crate::http::brake;
use crate::http::context::Ctx;
use crate::http::log::RequestLog;
use crate::http::router::{path_and_query, resolve_with, Access, Method};
use crate::http::{cors, principal, report, respond, tenant_origins};
use crate::platform::{in_bot_list, new_uuid, now_ms};
use crate::routes;
use worker::{Context, Env, Request, Response};

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> worker::Result<Response> {
    let started = now_ms();
    if let Ok(config) = config::get(env) {
        report::entered(&config, ctx.as_ref());
    }
    let request_id = req
        .headers()
        .get("CF-Ray")
        .ok()
        .flatten()
        .or_else(|| new_uuid().ok())
        .unwrap_or_default();
    // The request's own method: workers-rs reads a method it does not know (QUERY, say)
    // as GET, which would let it count.
    let method_name = req.inner().method();
    let origin = req.headers().get("Origin").ok().flatten();
    let url = req.inner().url();
    let badge = path_and_query(&url).0.ends_with("/badge.svg");
    let mut pattern = "unmatched";
    let mut tenant_id = None;
    let mut counting = None;

    let outcome = serve(
        req,
        &url,
        env,
        ctx,
        &mut pattern,
        &mut tenant_id,
        &mut counting,
    )
    .await;
    // The annex answered through its own pipeline (CORS, logs, reports): pass it on.
    #[cfg(not(feature = "annex"))]
    if pattern == ANNEX {
        if let Ok(response) = outcome {
            return Ok(response);
        }
    }
    let (mut response, failure) = match outcome {
        Ok(response) => (response, None),
        // A badge is an image whatever went wrong, even before its handler ran.
        Err(e) if badge => (routes::embeds::error_badge(&e).map_err(to_worker)?, Some(e)),
        Err(e) => (respond::error(&e)?, Some(e)),
    };
    // An object refused this client's counting request: charge its refusal brake.
    if let Some((client, refused_by_handler)) = counting {
        let status = response.status_code();
        let refused = refused_by_handler
            || matches!(status, 403 | 404 | 429)
            || response.headers().has("Retry-After").unwrap_or(false);
        if refused {
            brake::refused(env, &client, now_ms()).await;
        }
    }
    let allowed_origin = origin.filter(|_| !matches!(failure, Some(ApiError::Forbidden(_))));
    cors::decorate(response.headers(), allowed_origin.as_deref())?;
    response.headers().set("X-Request-Id", &request_id)?;
    if method_name == "HEAD" {
        response = Response::empty()?
            .with_status(response.status_code())
            .with_headers(response.headers().clone());
    }

    let status = response.status_code();
    if status >= 500 {
        report_failure(
            env,
            ctx,
            &request_id,
            pattern,
            tenant_id.clone(),
            &failure,
            status,
        );
    }
    let duration_ms = now_ms().saturating_sub(started);
    let (mode, slow_ms) =
        config::get(env).map_or((LogMode::All, 0), |c| (c.request_log, c.slow_request_ms));
    if !mode.wants(status, duration_ms, slow_ms) {
        return Ok(response);
    }
    RequestLog {
        time: crate::domain::time::rfc3339(started),
        level: if status >= 500 {
            "error"
        } else if matches!(status, 401 | 403 | 429) || duration_ms >= slow_ms {
            "warn"
        } else {
            "info"
        },
        request_id: &request_id,
        method: &method_name,
        route: pattern,
        status,
        duration_ms,
        tenant_id,
        error: failure.filter(|e| e.status() >= 500).map(|e| e.to_string()),
    }
    .emit();
    Ok(response)
}

/// Serves the request; `counting` learns the client of a counting request or badge (not
/// GitHub's image proxy) and whether its handler saw an object refuse it.
async fn serve(
    req: Request,
    url: &str,
    env: &Env,
    waits: &Context,
    pattern: &mut &'static str,
    tenant_id: &mut Option<String>,
    counting: &mut Option<(ClientKey, bool)>,
) -> ApiResult<Response> {
    let (path, query) = path_and_query(url);
    let config = config::get(env)?;
    let method = Method::parse(&req.inner().method());
    if config.fault == Some(Fault::Panic) && method == Method::Post {
        panic!("EDGECOUNT_FAULT=panic: a deliberate panic");
    }
    let resource = resolve_with(path, config.github.enabled())?;
    // The annex's paths go before anything else is decided here: it decides it all.
    #[cfg(not(feature = "annex"))]
    if resource.in_annex(config.github.enabled()) {
        *pattern = ANNEX;
        return to_annex(req, env).await;
    }
    let query = query.map(str::to_string);
    let path = path.to_string();
    *pattern = resource.pattern();
    let header = |name| req.headers().get(name).ok().flatten();
    let client = ClientKey::from_header(header("CF-Connecting-IP").as_deref());
    // A presented key must verify before anything else is decided: 401 on any route,
    // whatever else is wrong with the request. A preflight carries no key.
    let principal = if method == Method::Options {
        Principal::Anonymous
    } else {
        let (x_api_key, authorization) = (header("X-API-Key"), header("Authorization"));
        let presented = presented_key(x_api_key.as_deref(), authorization.as_deref());
        match principal::resolve(env, &config, presented, &client).await {
            Err(ApiError::Unauthorized) => {
                brake::refused(env, &client, now_ms()).await;
                return Err(ApiError::Unauthorized);
            }
            other => other?,
        }
    };
    // An <img> sends no Origin; a badge answers every page (its Referer decides counting).
    let origin = header("Origin").filter(|_| !resource.is_badge());
    if let Some(origin) = origin.as_deref() {
        let tenant_list = match resource.tenant() {
            Some(tenant) => tenant_origins::of(env, &tenant, &client).await?,
            None => None,
        };
        cors::check_origin(tenant_list.as_ref().unwrap_or(&config.cors), origin)?;
    }
    if method == Method::Options {
        return cors::preflight(&resource).map_err(ApiError::internal);
    }
    let matched = resource.select(method)?;

    let mut agent = AgentClass::Other;
    let mut braked = false;
    // One authorization step for every route: the route's need decides (401 / 403).
    authorize(
        &principal,
        matched.access.need(),
        matched.route.tenant().as_ref(),
    )?;
    match matched.access {
        Access::Admin | Access::Scoped(_) => {}
        Access::Public => brake::check_read(env, &client).await?,
        Access::Counting | Access::Badge => {
            let asn = req.cf().and_then(|cf| cf.asn());
            agent = AgentClass::of(header("User-Agent").as_deref(), asn, in_bot_list);
            // GitHub's image proxy is one address for every reader: its budget is per
            // badge, in the object, and it is never braked.
            if agent != AgentClass::Proxy {
                if brake::stopped(&client, now_ms()) {
                    // Refused here, so charged nothing more.
                    if matched.access == Access::Counting {
                        return Err(brake::stop());
                    }
                    braked = true;
                } else {
                    *counting = Some((client.clone(), false));
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
        waits,
        config,
        client,
        head: method == Method::Head,
        agent,
        braked,
        refused: false,
        tenant_id: None,
        principal,
    };
    let answer = routes::dispatch(&mut ctx, matched.route).await;
    *tenant_id = ctx.tenant_id.take();
    if let Some((_, refused)) = counting.as_mut() {
        *refused = ctx.refused;
    }
    answer
}

/// Stands for the route of a request passed to the annex Worker, in the edge's own log
/// line and error report when the annex could not be reached. A panic in the annex is
/// reported twice: by the annex's hook, and here, as a call that failed.
#[cfg(not(feature = "annex"))]
const ANNEX: &str = "(annex)";

/// Hands the request, untouched, to the annex Worker (service binding `ANNEX`), which
/// runs this same pipeline for its routes: stats, export, import and the GitHub cache.
#[cfg(not(feature = "annex"))]
async fn to_annex(req: Request, env: &Env) -> ApiResult<Response> {
    let sent = async { env.service("ANNEX")?.fetch_request(req).await };
    sent.await
        .map_err(|e| ApiError::internal(format!("the annex Worker did not answer: {e}")))
}

/// A request answered 5xx becomes an error report (with a DSN set), sent after the
/// answer.
fn report_failure(
    env: &Env,
    ctx: &Context,
    request_id: &str,
    route: &str,
    tenant_id: Option<String>,
    failure: &Option<ApiError>,
    status: u16,
) {
    let event = Event {
        kind: Kind::Request,
        context: route.into(),
        message: failure
            .as_ref()
            .map_or_else(|| format!("answered {status}"), ToString::to_string),
        request_id: Some(request_id.into()),
        tenant_id,
    };
    report::report(env, event, &|sending| ctx.wait_until(sending));
}

fn to_worker(e: ApiError) -> worker::Error {
    worker::Error::RustError(e.to_string())
}
