//! The scheduled refresh: every cached path of every configured org, conditionally, and
//! the top-N views recomputed whenever an org's repository list changed.

use crate::config::{self, GitHubConfig};
use crate::domain::github::{rank, CachedPath, ViewField};
use crate::error::{ApiError, ApiResult};
use crate::github::cache::{self, Entry, EntryMeta};
use crate::github::upstream::{fetch_cached, Fetched};
use crate::http::log;
use crate::platform::now_ms;
use worker::Env;

pub async fn run(env: &Env) {
    let outcome = async {
        let config = config::get(env)?;
        if !config.github.enabled() {
            return Ok((0, 0));
        }
        let kv = cache::store(env)?;
        let mut changed = 0;
        let paths = CachedPath::all(&config.github.orgs);
        for path in &paths {
            match refresh_path(&config.github, &kv, path).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => log::failure("github refresh", &format!("{}: {e}", path.upstream())),
            }
        }
        Ok::<_, ApiError>((paths.len(), changed))
    };
    match outcome.await {
        Ok((paths, changed)) => {
            let line = serde_json::json!({"level": "info", "job": "github_refresh", "paths": paths, "changed": changed});
            worker::console_log!("{line}");
        }
        Err(e) => log::failure("github refresh", &e),
    }
}

/// Refreshes one path; true when KV changed. A 304 (or an upstream failure) writes
/// nothing: the copy and its fetch time stay as they were.
pub async fn refresh_path(
    config: &GitHubConfig,
    kv: &cache::Kv,
    path: &CachedPath,
) -> ApiResult<bool> {
    let key = path.kv_key();
    let existing = cache::get(kv, &key).await?;
    let etags = existing
        .as_ref()
        .map(|e| e.meta.etags.clone())
        .unwrap_or_default();
    match fetch_cached(config, path, &etags).await {
        Ok(Fetched::NotModified) => Ok(false),
        Ok(Fetched::Fresh { body, etags }) => {
            if existing.as_ref().is_some_and(|e| e.body == body) {
                return Ok(false);
            }
            let entry = Entry {
                body,
                meta: EntryMeta {
                    fetched_ms: now_ms(),
                    etags,
                },
            };
            store_entry(kv, path, &entry).await?;
            Ok(true)
        }
        Ok(Fetched::Definitive(answer)) => Err(ApiError::Internal(format!(
            "GitHub answered {}",
            answer.status
        ))),
        Err(failure) => Err(ApiError::Internal(format!("upstream: {failure:?}"))),
    }
}

/// Writes a cached path and, for a repository list, the views built from it.
pub async fn store_entry(kv: &cache::Kv, path: &CachedPath, entry: &Entry) -> ApiResult<()> {
    cache::put(kv, &path.kv_key(), entry).await?;
    if let CachedPath::Repos(org) = path {
        for field in ViewField::ALL {
            let ranked = rank(&entry.body, field)?;
            let view = Entry {
                body: serde_json::to_string(&ranked).map_err(ApiError::internal)?,
                meta: EntryMeta {
                    fetched_ms: entry.meta.fetched_ms,
                    etags: Vec::new(),
                },
            };
            cache::put(kv, &cache::view_key(org, field), &view).await?;
        }
    }
    Ok(())
}
