//! Building responses: JSON bodies, the contract's error shape with its headers, and
//! the budget headers objects set and the Worker relays.

use crate::domain::budget::Decision;
use crate::error::{ApiError, ApiResult};
use worker::{Headers, Response, ResponseBody, ResponseBuilder};

pub const JSON: &str = "application/json; charset=utf-8";

fn json_headers() -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("Content-Type", JSON)?;
    headers.set("Cache-Control", "no-store")?;
    Ok(headers)
}

pub fn json(status: u16, body: impl Into<String>) -> worker::Result<Response> {
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(json_headers()?))
}

/// A JSON answer whose body is already made (for example streamed from an object).
pub fn json_body(status: u16, body: ResponseBody) -> worker::Result<Response> {
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_headers(json_headers()?)
        .body(body))
}

/// The one place an `ApiError` becomes HTTP.
pub fn error(err: &ApiError) -> worker::Result<Response> {
    let response = json(err.status(), err.body())?;
    match err {
        ApiError::MethodNotAllowed { allow } => {
            response.headers().set("Allow", &allow.join(", "))?
        }
        ApiError::RateLimitExceeded {
            retry_after_seconds,
        } => response
            .headers()
            .set("Retry-After", &retry_after_seconds.to_string())?,
        _ => {}
    }
    Ok(response)
}

/// How a Durable Object answers the Worker: its result, or its error in the contract's
/// shape, with internal detail logged under `context` (it never crosses to the client).
pub fn from_object(context: &str, answer: ApiResult<Response>) -> worker::Result<Response> {
    answer.or_else(|e| {
        if let ApiError::Internal(detail) = &e {
            crate::http::log::failure(context, detail);
        }
        error(&e)
    })
}

/// A counted object's answer with its budget decision, as the client sees it: the
/// object sets these headers on its own answer (or the Worker on a batch member's), and
/// the Worker relays them.
pub fn budgeted(status: u16, body: String, budget: Option<&Decision>) -> worker::Result<Response> {
    let response = json(status, body)?;
    if let Some(decision) = budget {
        decorate_budget(response.headers(), decision)?;
    }
    Ok(response)
}

pub fn decorate_budget(headers: &Headers, decision: &Decision) -> worker::Result<()> {
    headers.set("X-RateLimit-Limit", &decision.limit.to_string())?;
    headers.set("X-RateLimit-Remaining", &decision.remaining.to_string())?;
    if !decision.allowed {
        headers.set("Retry-After", &decision.retry_after_seconds.to_string())?;
    }
    Ok(())
}

/// The budget decision an object's answer carries (refused when it names a
/// `Retry-After`).
pub fn budget_of(answer: &Response) -> Option<Decision> {
    let header = |name| answer.headers().get(name).ok().flatten();
    let number = |name| header(name)?.parse::<u64>().ok();
    let retry_after = number("Retry-After");
    Some(Decision {
        allowed: retry_after.is_none(),
        limit: u32::try_from(number("X-RateLimit-Limit")?).ok()?,
        remaining: u32::try_from(number("X-RateLimit-Remaining")?).ok()?,
        retry_after_seconds: retry_after.unwrap_or(0),
    })
}

/// An object's answer as ours: its status, headers (a copy: a fetched answer's own
/// cannot be changed) and body, streamed through.
pub fn relay(answer: Response) -> ApiResult<Response> {
    let status = answer.status_code();
    let headers = worker::web_sys::Headers::new_with_headers(&answer.headers().0)
        .map_err(|e| ApiError::Internal(format!("copying headers: {e:?}")))?;
    let (_, body) = answer.into_parts();
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_headers(Headers(headers))
        .body(body))
}
