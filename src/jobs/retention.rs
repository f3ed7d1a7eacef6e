//! Visit retention: visit rows older than `VISIT_RETENTION_DAYS` are moved into their
//! days' totals (`visit_days`) a bounded step at a time — about `RETENTION_BATCH_ROWS`
//! rows, the oldest first, across every page — each step one transaction that adds to
//! the totals exactly what it deletes, so every page's history is exact at every moment,
//! however a run is cut short. The cursor is the oldest expired row, found through
//! `visits_by_day` (day first, then the row's key), so a run picks up wherever the last
//! one stopped; a run stops after
//! `RETENTION_RUN_SECONDS`, and the next daily run continues.

use crate::config;
use crate::domain::visit::DAY_MS;
use crate::error::ApiResult;
use crate::http::log;
use crate::platform::now_ms;
use crate::store;
use worker::Env;

/// One run, logged; a failure is also handed back for the error report.
pub async fn run(env: &Env) -> Result<(), String> {
    match expire(env).await {
        Ok((moved, done)) => {
            log::job(
                "retention",
                serde_json::json!({"rolled_up_visits": moved, "caught_up": done}),
            );
            Ok(())
        }
        Err(e) => {
            log::failure("retention", &e);
            Err(e.to_string())
        }
    }
}

/// Rows moved, and whether no expired row is left.
async fn expire(env: &Env) -> ApiResult<(u64, bool)> {
    let config = config::get(env)?;
    let db = store::database(env)?;
    let started = now_ms();
    // Whole days only: a day's rows expire together.
    let cutoff_day = started.saturating_sub(config.visit_retention_days * DAY_MS) / DAY_MS;
    let budget_ms = config.retention_run_seconds * 1000;
    // Site-wide visitor hashes of days before yesterday go (flushes still add to
    // yesterday's set after midnight; its salt is gone, so nothing new can match them).
    store::stats::expire_visitors(&db, (started / DAY_MS).saturating_sub(1)).await?;
    let mut moved = 0;
    loop {
        let Some(step) =
            store::pages::next_expired(&db, cutoff_day, config.retention_batch_rows).await?
        else {
            return Ok((moved, true));
        };
        moved += store::pages::roll_up(&db, &step).await?;
        if now_ms().saturating_sub(started) >= budget_ms {
            return Ok((moved, false));
        }
    }
}
