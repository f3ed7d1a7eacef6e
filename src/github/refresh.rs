//! The scheduled refresh: every cached path of every configured org, conditionally, and
//! the top-N views recomputed whenever an org's repository list changed.
//!
//! Write budget: a path's body (and an org's views) is written only when GitHub's data
//! changed; that a path was confirmed unchanged goes into one shared record, written once
//! per run. An unchanged org costs one KV write per run in all (288 a day at the
//! shipped five-minute schedule), within the free plan's 1,000.

use crate::config::{self, GitHubConfig};
use crate::domain::github::ranking::{rank, ViewField};
use crate::domain::github::CachedPath;
use crate::error::{ApiError, ApiResult};
use crate::github::cache::{self, Confirmations, Entry, EntryMeta};
use crate::github::upstream::{fetch_cached, Fetched};
use crate::http::log;
use crate::platform::now_ms;
use worker::Env;

/// One run, logged; a failed run is also handed back for the error report. A path that
/// fails is logged only: one upstream path gone bad would otherwise report every run.
pub async fn run(env: &Env) -> Result<(), String> {
    let outcome = async {
        let config = config::get(env)?;
        if !config.github.enabled() {
            return Ok((0, 0));
        }
        let kv = cache::store(env)?;
        let paths = CachedPath::all(&config.github.orgs);
        let mut confirmations = cache::confirmations(&kv).await;
        // Paths no longer configured drop out of the record.
        confirmations.retain(|key, _| paths.iter().any(|p| &p.kv_key() == key));
        let mut changed = 0;
        for path in &paths {
            match refresh_path(&config.github, &kv, path).await {
                Ok(outcome) => {
                    confirmations.insert(path.kv_key(), now_ms().into());
                    changed += usize::from(outcome == Refreshed::Changed);
                }
                Err(e) => log::failure("github refresh", &format!("{}: {e}", path.upstream())),
            }
        }
        cache::put_confirmations(&kv, &confirmations).await;
        Ok::<_, ApiError>((paths.len(), changed))
    };
    match outcome.await {
        Ok((paths, changed)) => {
            let line = serde_json::json!({"level": "info", "job": "github_refresh", "paths": paths, "changed": changed});
            worker::console_log!("{line}");
            Ok(())
        }
        Err(e) => {
            log::failure("github refresh", &e);
            Err(e.to_string())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// GitHub confirmed the copy (304, or the same data again): nothing written.
    Confirmed,
    /// The copy was replaced.
    Changed,
}

/// Refreshes one path. An upstream failure or refusal keeps the copy as it was.
pub async fn refresh_path(
    config: &GitHubConfig,
    kv: &cache::Kv,
    path: &CachedPath,
) -> ApiResult<Refreshed> {
    let existing = cache::get(kv, &path.kv_key()).await;
    let etags = existing
        .as_ref()
        .map(|e| e.meta.etags.clone())
        .unwrap_or_default();
    match fetch_cached(config, path, &etags).await {
        Ok(Fetched::NotModified) => Ok(Refreshed::Confirmed),
        Ok(Fetched::Fresh { body, etags }) => {
            Ok(keep_fetched(kv, path, existing.as_ref(), body, etags)
                .await
                .1)
        }
        Ok(Fetched::Definitive(answer)) => Err(ApiError::Internal(format!(
            "GitHub answered {}",
            answer.status
        ))),
        Err(failure) => Err(ApiError::Internal(format!("upstream: {failure:?}"))),
    }
}

/// A path as just fetched, written (with its views) only when it differs from the copy
/// KV holds. ETags that do not fit KV's metadata are not kept: comparing what would be
/// kept, a long list fetched whole every run is still written only on change.
pub async fn keep_fetched(
    kv: &cache::Kv,
    path: &CachedPath,
    existing: Option<&Entry>,
    body: String,
    etags: Vec<String>,
) -> (Entry, Refreshed) {
    let fetched = Entry {
        body,
        meta: EntryMeta {
            fetched_ms: now_ms(),
            etags: cache::storable_etags(etags),
        },
    };
    let same =
        existing.is_some_and(|e| e.body == fetched.body && e.meta.etags == fetched.meta.etags);
    if same {
        return (fetched, Refreshed::Confirmed);
    }
    store_entry(kv, path, &fetched).await;
    (fetched, Refreshed::Changed)
}

/// Writes a cached path and, for a repository list, the views built from it. A failed
/// write is logged; the next change writes again.
pub async fn store_entry(kv: &cache::Kv, path: &CachedPath, entry: &Entry) {
    cache::put(kv, &path.kv_key(), entry).await;
    let CachedPath::Repos(org) = path else {
        return;
    };
    for field in ViewField::ALL {
        let view = rank(&entry.body, field)
            .and_then(|ranked| serde_json::to_string(&ranked).map_err(ApiError::internal));
        match view {
            Ok(body) => {
                let view = Entry {
                    body,
                    meta: EntryMeta {
                        fetched_ms: entry.meta.fetched_ms,
                        etags: Vec::new(),
                    },
                };
                cache::put(kv, &cache::view_key(org, field), &view).await;
            }
            Err(e) => log::failure("github views", &e),
        }
    }
}

/// Records that upstream confirmed one path's copy now (a request's own revalidation,
/// between scheduled runs): a read and a write of the shared record.
pub async fn confirm(kv: &cache::Kv, path: &CachedPath) -> Confirmations {
    let mut confirmations = cache::confirmations(kv).await;
    confirmations.insert(path.kv_key(), now_ms().into());
    cache::put_confirmations(kv, &confirmations).await;
    confirmations
}
