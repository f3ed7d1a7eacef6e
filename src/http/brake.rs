//! The brakes: floods from one client are slowed at the edge with the platform's Rate
//! Limiting bindings — no Durable Object is asked, so a braked request costs us nothing
//! but the Worker invocation. `READ_BRAKE` slows plain reads; `COUNT_BRAKE` slows counting
//! requests and badges, whose objects each keep a budget per client but which, sent to
//! ever new made-up ids, would otherwise buy one object request and a D1 read apiece.
//! A binding counts per Cloudflare location and is eventually consistent: a brake, not a
//! budget. Budgets for counting live in the counted objects (`domain::budget`).

use crate::domain::client::ClientKey;
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use worker::Env;

/// What a braked client is told: the bindings' period in `wrangler.toml`.
const RETRY_AFTER_SECONDS: u64 = 60;

/// Which brake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brake {
    Read,
    Count,
}

impl Brake {
    fn binding(self) -> &'static str {
        match self {
            Brake::Read => "READ_BRAKE",
            Brake::Count => "COUNT_BRAKE",
        }
    }
}

/// Refuses the request when the client's brake is on. Without the binding (an older
/// `wrangler.toml`) or when it fails, requests pass: a brake protects, it must not break.
pub async fn check(env: &Env, brake: Brake, client: &ClientKey) -> ApiResult<()> {
    let Ok(brake) = env.rate_limiter(brake.binding()) else {
        return Ok(());
    };
    match brake.limit(client.as_str().to_string()).await {
        Ok(outcome) if !outcome.success => Err(ApiError::RateLimitExceeded {
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            log::failure("read brake unavailable", &e);
            Ok(())
        }
    }
}
