//! CORS: which origins may call from a browser, and the headers that say so.

use crate::domain::cors::AllowedOrigins;
use crate::error::{ApiError, ApiResult};
use crate::http::router::Resource;
use worker::{Headers, Response};

const ALLOWED_HEADERS: &str = "Content-Type, Idempotency-Key, X-API-Key, Authorization";
const EXPOSED_HEADERS: &str = "X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After, X-Request-Id";

/// A browser request from an origin that is not allowed is refused before it does
/// anything: hiding the answer is not enough when the request itself counts.
pub fn check_origin(allowed: &AllowedOrigins, origin: &str) -> ApiResult<()> {
    if allowed.allows(origin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Origin {origin} is not allowed"
        )))
    }
}

pub fn decorate(headers: &Headers, origin: Option<&str>) -> worker::Result<()> {
    if let Some(origin) = origin {
        headers.set("Access-Control-Allow-Origin", origin)?;
        headers.set("Access-Control-Expose-Headers", EXPOSED_HEADERS)?;
        headers.append("Vary", "Origin")?;
    }
    Ok(())
}

pub fn preflight(resource: &Resource) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("Allow", &resource.allow().join(", "))?;
    headers.set("Access-Control-Allow-Methods", &resource.allow().join(", "))?;
    headers.set("Access-Control-Allow-Headers", ALLOWED_HEADERS)?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}
