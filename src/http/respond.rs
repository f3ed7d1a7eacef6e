//! Building responses: JSON bodies, the contract's error shape with its headers, and
//! conversion of runtime failures into internal errors.

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

/// Runtime and binding failures carry detail that belongs in the log only.
pub trait OrInternal<T> {
    fn or_internal(self, context: &str) -> Result<T, ApiError>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self, context: &str) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::Internal(format!("{context}: {e}")))
    }
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

/// The internal header that carries a budget decision from a counted object to the
/// Worker, which turns it into `X-RateLimit-*` (and `Retry-After` when refused).
pub const BUDGET_HEADER: &str = "X-Edgecount-Budget";

/// An object's answer with its budget decision, if it made one.
pub fn with_budget(response: Response, budget: Option<Decision>) -> ApiResult<Response> {
    if let Some(decision) = budget {
        response
            .headers()
            .set(BUDGET_HEADER, &decision.to_wire())
            .or_internal("answering")?;
    }
    Ok(response)
}

/// The budget decision an object's answer carries.
pub fn budget_of(answer: &Response) -> Option<Decision> {
    let raw = answer.headers().get(BUDGET_HEADER).ok().flatten()?;
    Decision::from_wire(&raw)
}
