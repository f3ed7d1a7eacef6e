//! The read brake: floods of plain reads are slowed per client at the edge, with the
//! platform's Rate Limiting binding (`READ_BRAKE` in `wrangler.toml`) — no Durable Object
//! is asked, so a refused read costs us nothing but the Worker invocation. The binding
//! counts per Cloudflare location and is eventually consistent: a brake, not a budget.
//! Budgets for counting requests live in the counted objects (`domain::budget`).

use crate::domain::client::ClientKey;
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use worker::Env;

/// What a refused read is told: the binding's shortest period.
const RETRY_AFTER_SECONDS: u64 = 10;

/// Refuses the read when the client's brake is on. Without the binding (an older
/// `wrangler.toml`) or when it fails, reads pass: the brake protects, it must not break.
pub async fn check(env: &Env, client: &ClientKey) -> ApiResult<()> {
    let Ok(brake) = env.rate_limiter("READ_BRAKE") else {
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
