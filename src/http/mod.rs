//! The HTTP edge: routing, CORS, rate limiting, body limits, responses and logs.

pub mod app;
pub mod body;
pub mod brake;
pub mod context;
pub mod cors;
pub mod log;
pub mod openapi;
pub mod respond;
pub mod router;
pub mod tenant_origins;
