//! edgecount: counters for the edge. Entry points only; ARCHITECTURE.md has the map.

// Objects keep state in RefCells and await in between: a borrow held across an await
// panics when another request touches the same cell.
#![deny(clippy::await_holding_refcell_ref)]

pub mod config;
pub mod domain;
pub mod embeds;
pub mod error;
pub mod github;
pub mod http;
pub mod jobs;
pub mod lanes;
pub mod objects;
pub mod platform;
pub mod routes;
pub mod rows;
pub mod shared_result;
pub mod store;

#[cfg(feature = "annex")]
use domain::sentry::{Event, Kind};
use worker::{event, Context, Env, Request, Response};
#[cfg(feature = "annex")]
use worker::{ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    http::app::handle(req, &env, &ctx).await
}

// The scheduled jobs run in the annex Worker (ARCHITECTURE.md, two Workers).
#[cfg(feature = "annex")]
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    let config = config::get(&env).ok();
    if let Some(config) = &config {
        http::report::entered(config, &wasm_bindgen::JsValue::UNDEFINED);
    }
    let retention = config.is_some_and(|c| c.retention_cron == event.cron());
    let outcomes = if retention {
        vec![
            ("retention", jobs::retention::run(&env).await),
            ("backup", jobs::backup::run(&env).await),
        ]
    } else {
        vec![("github refresh", github::refresh::run(&env).await)]
    };
    // Each job has logged its own outcome; a failed one is also reported.
    for (job, outcome) in outcomes {
        if let Err(message) = outcome {
            let event = Event {
                kind: Kind::Job,
                context: job.into(),
                message,
                request_id: None,
                tenant_id: None,
            };
            http::report::report(&env, event, &|sending| ctx.wait_until(sending));
        }
    }
}
