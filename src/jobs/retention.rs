//! Visit retention: deletes visit rows older than `VISIT_RETENTION_DAYS` in bounded
//! batches, after keeping each day's totals in `visit_days`. Whatever one run leaves,
//! the next continues.

use crate::config;
use crate::domain::visit::DAY_MS;
use crate::error::ApiResult;
use crate::http::log;
use crate::platform::now_ms;
use crate::store;
use worker::Env;

/// Rows deleted per statement, and statements per run: bounded work per invocation.
const BATCH_ROWS: u32 = 5_000;
const MAX_BATCHES: u32 = 20;

pub async fn run(env: &Env) {
    match expire(env).await {
        Ok(deleted) => {
            let line =
                serde_json::json!({"level": "info", "job": "retention", "deleted_visits": deleted});
            worker::console_log!("{line}");
        }
        Err(e) => log::failure("retention", &e),
    }
}

async fn expire(env: &Env) -> ApiResult<u64> {
    let config = config::get(env)?;
    let db = store::database(env)?;
    let cutoff = now_ms().saturating_sub(config.visit_retention_days * DAY_MS);
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        let n = store::pages::expire_visits(&db, cutoff, BATCH_ROWS).await?;
        deleted += n;
        if n < u64::from(BATCH_ROWS) {
            break;
        }
    }
    Ok(deleted)
}
