//! The HTTP edge: routing, CORS, rate limiting, body limits, responses and logs.

pub mod app;
pub mod body;
pub mod brake;
pub mod context;
pub mod cors;
pub mod log;
/// The OpenAPI document's source: built natively and served as a static asset
/// (`public/openapi.json`), so it costs the Worker's bundle nothing.
#[cfg(test)]
pub mod openapi;
pub mod principal;
pub mod report;
pub mod respond;
pub mod router;
pub mod tenant_origins;
