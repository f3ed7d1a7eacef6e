//! The rate limiter object: one per client IP, holding that client's windows in memory.
//! Every isolate of every location asks the same object, so the limit holds globally,
//! not per isolate. Nothing is persisted: a window outlives its object's eviction only
//! in the client's favour, which is the right way to fail for a courtesy limit.

use crate::domain::rate_limit::{RatePolicy, Window};
use crate::http::router::query_param;
use crate::platform::now_ms;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

#[durable_object]
pub struct RateLimiter {
    windows: RefCell<HashMap<String, (Window, RatePolicy)>>,
}

impl DurableObject for RateLimiter {
    fn new(_state: State, _env: Env) -> Self {
        RateLimiter {
            windows: RefCell::new(HashMap::new()),
        }
    }

    /// `/admit?class=get&limit=30&window_ms=60000` → `allowed remaining retry_after`.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let param = |name: &str| query_param(&url, name).unwrap_or_default();
        let policy = RatePolicy {
            limit: param("limit").parse().unwrap_or(0),
            window_ms: param("window_ms").parse().unwrap_or(60_000),
        };
        let now = now_ms();
        let mut windows = self.windows.borrow_mut();
        windows.retain(|_, (w, p)| !w.is_expired(now, *p));
        let (window, stored_policy) = windows.entry(param("class")).or_default();
        *stored_policy = policy;
        let d = window.admit(now, policy);
        Response::ok(format!(
            "{} {} {}",
            u8::from(d.allowed),
            d.remaining,
            d.retry_after_seconds
        ))
    }
}
