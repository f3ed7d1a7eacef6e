//! The GitHub fetcher object: one Durable Object per cached path, through which every
//! request that must ask GitHub (a miss, or a copy past its fresh window) goes. Requests
//! to one object share its context, so concurrent ones share one upstream fetch — which
//! plain Worker requests cannot do, as each request's promises are its own.

use crate::config::{self, GitHubConfig};
use crate::domain::github::{may_serve_stale, CachedPath};
use crate::error::ApiError;
use crate::github::cache::{self, Entry, EntryMeta};
use crate::github::refresh::store_entry;
use crate::github::single_flight::SingleFlight;
use crate::github::upstream::{fetch_cached, Answer, Fetched};
use crate::http::respond::{self, OrInternal};
use crate::http::router::query_param;
use crate::platform::now_ms;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

/// What a request for a cached path gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "served", rename_all = "snake_case")]
pub enum Served {
    /// The copy, and how: HIT, MISS or STALE.
    Copy { entry: Entry, state: String },
    /// GitHub's own answer (a 404 for an org that does not exist, say), not cached.
    Passed { answer: Answer },
}

#[durable_object]
pub struct GitHubFetcher {
    env: Env,
    flights: SingleFlight<Result<Served, ApiError>>,
}

impl DurableObject for GitHubFetcher {
    fn new(_state: State, env: Env) -> Self {
        GitHubFetcher {
            env,
            flights: SingleFlight::default(),
        }
    }

    /// `/?path=/orgs/acme/repos` → `Served` as JSON.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let served = async {
            let config = config::get(&self.env)?;
            let path = query_param(&req.inner().url(), "path");
            let path = path
                .and_then(|p| CachedPath::of(&p, &config.github.orgs))
                .ok_or(ApiError::NotFound)?;
            let github = config.github.clone();
            self.flights
                .run(&path.kv_key(), || {
                    refreshed_copy(&self.env, github, path.clone())
                })
                .await
        };
        respond::from_object(
            "github fetcher",
            served.await.and_then(|s| {
                respond::json(200, serde_json::to_string(&s).or_internal("encoding")?)
                    .or_internal("answering")
            }),
        )
    }
}

/// The copy after asking GitHub: renewed on 304, replaced when changed, fetched on a
/// miss; when GitHub fails, the old copy (STALE) while it is young enough.
async fn refreshed_copy(
    env: &Env,
    config: GitHubConfig,
    path: CachedPath,
) -> Result<Served, ApiError> {
    let kv = cache::store(env)?;
    let key = path.kv_key();
    let existing = cache::get(&kv, &key).await?;
    let age_ms = existing
        .as_ref()
        .map(|e| now_ms().saturating_sub(e.meta.fetched_ms));
    if let (Some(entry), Some(age)) = (&existing, age_ms) {
        // Another request renewed it while this one waited for the object.
        if age <= config.fresh_seconds * 1000 {
            return Ok(Served::Copy {
                entry: entry.clone(),
                state: "HIT".into(),
            });
        }
    }
    let etags = existing
        .as_ref()
        .map(|e| e.meta.etags.clone())
        .unwrap_or_default();
    match fetch_cached(&config, &path, &etags).await {
        Ok(Fetched::NotModified) => {
            let entry = existing.ok_or_else(|| ApiError::internal("304 without a copy"))?;
            let renewed = Entry {
                meta: EntryMeta {
                    fetched_ms: now_ms(),
                    ..entry.meta
                },
                body: entry.body,
            };
            cache::put(&kv, &key, &renewed).await?;
            Ok(Served::Copy {
                entry: renewed,
                state: "HIT".into(),
            })
        }
        Ok(Fetched::Fresh { body, etags }) => {
            let fresh = Entry {
                body,
                meta: EntryMeta {
                    fetched_ms: now_ms(),
                    etags,
                },
            };
            store_entry(&kv, &path, &fresh).await?;
            Ok(Served::Copy {
                entry: fresh,
                state: "MISS".into(),
            })
        }
        Ok(Fetched::Definitive(answer)) => Ok(Served::Passed { answer }),
        Err(failure) => match (existing, age_ms) {
            (Some(entry), Some(age)) if may_serve_stale(age, config.stale_max_seconds) => {
                Ok(Served::Copy {
                    entry,
                    state: "STALE".into(),
                })
            }
            _ => Err(failure.to_error()),
        },
    }
}
