//! The brakes: floods from one client are slowed at the edge with the platform's Rate
//! Limiting bindings — no Durable Object is asked, so a braked request costs us nothing
//! but the Worker invocation. A binding counts per Cloudflare location and is eventually
//! consistent: a brake, not a budget (budgets for counting live in the counted objects,
//! `domain::budget`).
//!
//! - `READ_BRAKE` counts every plain read of a client.
//! - `REFUSAL_BRAKE` counts a client's counting requests and badges that an object
//!   *refused* — no such counter, page or tenant; over budget; no page may be created —
//!   which, sent to ever new made-up ids, would each buy an object request and a D1 read.
//!   A client that behaves is never charged, so the hot path makes no binding call. A
//!   client the binding stops is remembered in this isolate until its window ends and
//!   answered without asking any object.

use crate::domain::client::ClientKey;
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use crate::platform::call_binding;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::JsValue;
use worker::js_sys::{Object, Reflect};
use worker::Env;

/// What a braked client is told: the bindings' period in `wrangler.toml`.
const RETRY_AFTER_SECONDS: u64 = 60;

/// Clients stopped by the refusal brake that this isolate remembers at most.
const STOPPED_MAX: usize = 10_000;

thread_local! {
    /// Clients the refusal brake stopped, and until when (Unix ms).
    static STOPPED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// Refuses the read when the client's read brake is on.
pub async fn check_read(env: &Env, client: &ClientKey) -> ApiResult<()> {
    if spend(env, "READ_BRAKE", client).await {
        Ok(())
    } else {
        Err(ApiError::RateLimitExceeded {
            retry_after_seconds: RETRY_AFTER_SECONDS,
        })
    }
}

/// Whether the refusal brake stopped this client (memory only: no binding call).
pub fn stopped(client: &ClientKey, now_ms: u64) -> bool {
    STOPPED.with(|s| {
        s.borrow()
            .get(client.as_str())
            .is_some_and(|&until| until > now_ms)
    })
}

/// An object refused this client's counting request: charge the refusal brake, and
/// remember the client as stopped if the brake says so.
pub async fn refused(env: &Env, client: &ClientKey, now_ms: u64) {
    if spend(env, "REFUSAL_BRAKE", client).await {
        return;
    }
    STOPPED.with(|s| {
        let mut stopped = s.borrow_mut();
        if stopped.len() >= STOPPED_MAX {
            stopped.retain(|_, until| *until > now_ms);
            if stopped.len() >= STOPPED_MAX {
                stopped.clear();
            }
        }
        stopped.insert(
            client.as_str().to_string(),
            now_ms + RETRY_AFTER_SECONDS * 1_000,
        );
    });
}

/// The answer to a stopped client's counting request.
pub fn stop() -> ApiError {
    ApiError::RateLimitExceeded {
        retry_after_seconds: RETRY_AFTER_SECONDS,
    }
}

/// Spends one unit of `binding` for the client; false when it is exhausted. Without the
/// binding (an older `wrangler.toml`) or when it fails, the answer is yes: a brake
/// protects, it must not break.
async fn spend(env: &Env, binding: &str, client: &ClientKey) -> bool {
    let Ok(brake) = Reflect::get(env, &JsValue::from_str(binding)) else {
        return true;
    };
    if brake.is_undefined() {
        return true;
    }
    match limit(&brake, client.as_str()).await {
        Ok(success) => success,
        Err(e) => {
            log::failure("brake unavailable", &e);
            true
        }
    }
}

/// `limit({key})` on the binding itself, its `{success}` read as it comes: workers-rs
/// decodes the answer through `serde_wasm_bindgen`, whose generic decoder and the float
/// formatting its messages reach are bundle weight for one flag.
async fn limit(brake: &JsValue, key: &str) -> Result<bool, String> {
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))
        .map_err(|e| format!("{e:?}"))?;
    let outcome = call_binding(brake, "limit", &[&options]).await?;
    Reflect::get(&outcome, &JsValue::from_str("success"))
        .ok()
        .and_then(|s| s.as_bool())
        .ok_or_else(|| "an answer without success".to_string())
}
