//! The rate-limit edge: asks the client's limiter object whether this request may
//! proceed, and reports the answer in headers.

use crate::domain::rate_limit::{Decision, RatePolicy};
use crate::error::{ApiError, ApiResult};
use crate::http::respond::OrInternal;
use worker::{Env, Headers};

/// `CF-Connecting-IP` is set by Cloudflare's edge; locally it may be absent, and then
/// every caller shares one bucket.
pub fn client_key(header: Option<String>) -> String {
    match header {
        Some(ip)
            if ip.len() <= 45
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':') =>
        {
            ip
        }
        Some(_) => "malformed".into(),
        None => "unknown".into(),
    }
}

pub async fn admit(
    env: &Env,
    client: &str,
    class: &str,
    policy: RatePolicy,
) -> ApiResult<Decision> {
    let stub = env
        .durable_object("RATE_LIMITER")
        .and_then(|ns| ns.get_by_name(client))
        .or_internal("reaching the rate limiter")?;
    let url = format!(
        "https://rate-limiter/admit?class={class}&limit={}&window_ms={}",
        policy.limit, policy.window_ms
    );
    let text = stub
        .fetch_with_str(&url)
        .await
        .or_internal("asking the rate limiter")?
        .text()
        .await
        .or_internal("reading the rate limiter")?;
    let mut fields = text.split(' ').map(str::parse::<u64>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(allowed)), Some(Ok(remaining)), Some(Ok(retry_after_seconds))) => Ok(Decision {
            allowed: allowed == 1,
            limit: policy.limit,
            remaining: remaining as u32,
            retry_after_seconds,
        }),
        _ => Err(ApiError::Internal(format!(
            "rate limiter answered {text:?}"
        ))),
    }
}

pub fn decorate(headers: &Headers, decision: &Decision) -> worker::Result<()> {
    headers.set("X-RateLimit-Limit", &decision.limit.to_string())?;
    headers.set("X-RateLimit-Remaining", &decision.remaining.to_string())
}
