//! edgecount: counters for the edge. Entry points only; ARCHITECTURE.md has the map.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod objects;
pub mod platform;
pub mod routes;
pub mod store;

use worker::{event, Context, Env, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::app::handle(req, &env).await
}
