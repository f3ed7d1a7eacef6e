//! The GitHub fetcher object: one Durable Object per cached path or proxied target,
//! through which every request that must ask GitHub (a miss, or a copy past its fresh
//! window) goes. Requests to one object share its context, so concurrent ones share one
//! upstream fetch — which plain Worker requests cannot do, as each request's promises
//! are its own. It answers as the client is to be answered: status, GitHub's headers,
//! `X-Cache`, `Age` and the body.

use crate::config::{self, GitHubConfig};
use crate::domain::github::answers::{
    cacheable, copy_stands_in, marks_private, may_serve_stale, private_scopes, public_view,
};
use crate::domain::github::proxy_rules::{proxy_target, Refusal, Target};
use crate::domain::github::CachedPath;
use crate::error::ApiError;
use crate::github::cache::{self, Entry, EntryMeta, ProxyMeta};
use crate::github::refresh::{confirm, store_entry};
use crate::github::single_flight::SingleFlight;
use crate::github::upstream::{self, fetch_cached, Answer, Fetched};
use crate::http::log;
use crate::http::respond::{self, OrInternal};
use crate::http::router::query_param;
use crate::platform::now_ms;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Headers, Request, Response, State};

/// An answer ready for the client, shared by every request that waited for it.
#[derive(Debug, Clone)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Rc<[u8]>,
    /// HIT, MISS or STALE.
    pub cache: &'static str,
    /// When upstream last vouched for the body.
    pub confirmed_ms: u64,
}

impl Served {
    /// A cached path's copy.
    pub fn copy(entry: Entry, cache: &'static str, confirmed_ms: u64) -> Served {
        Served {
            status: 200,
            headers: vec![("content-type".into(), respond::JSON.into())],
            body: entry.body.into_bytes().into(),
            cache,
            confirmed_ms,
        }
    }

    fn passed(answer: Answer, cache: &'static str) -> Served {
        Served {
            status: answer.status,
            headers: answer.headers,
            body: answer.body.into(),
            cache,
            confirmed_ms: now_ms(),
        }
    }

    pub fn proxied(meta: ProxyMeta, body: Vec<u8>, cache: &'static str) -> Served {
        Served {
            status: meta.status,
            headers: meta.headers,
            body: body.into(),
            cache,
            confirmed_ms: meta.stored_ms,
        }
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let headers = Headers::new();
        for (name, value) in &self.headers {
            headers.set(name, value)?;
        }
        if !self.headers.iter().any(|(n, _)| n == "content-type") {
            headers.set("Content-Type", respond::JSON)?;
        }
        headers.set("X-Cache", self.cache)?;
        let age = now_ms().saturating_sub(self.confirmed_ms) / 1000;
        headers.set("Age", &age.to_string())?;
        Ok(Response::from_bytes(self.body.to_vec())?
            .with_status(self.status)
            .with_headers(headers))
    }
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

    /// `/?path=/orgs/acme/repos` (a cached path) or `/?proxy=/repos/a/b%3Fx%3D1` (a
    /// canonical proxy target, checked again here).
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let served = async {
            let config = config::get(&self.env)?;
            let github = config.github.clone();
            let url = req.inner().url();
            if let Some(path) = query_param(&url, "path") {
                let path = CachedPath::of(&path, &github.orgs).ok_or(ApiError::NotFound)?;
                let key = path.kv_key();
                return self
                    .flights
                    .run(&key, || refreshed_copy(&self.env, github, path))
                    .await;
            }
            let target = query_param(&url, "proxy").ok_or(ApiError::NotFound)?;
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target.as_str(), None),
            };
            let target = proxy_target(path, query).map_err(|refusal| match refusal {
                Refusal::NotProxied => ApiError::NotFound,
                Refusal::Invalid(why) => ApiError::InvalidParameter(why.into()),
            })?;
            let key = target.upstream.clone();
            self.flights
                .run(&key, || proxied(&self.env, github, target))
                .await
        };
        respond::from_object(
            "github fetcher",
            served
                .await
                .and_then(|s| s.into_response().or_internal("answering")),
        )
    }
}

/// The copy after asking GitHub: confirmed on 304, replaced when changed, fetched on a
/// miss. When GitHub fails, or refuses (401, 403, 404), the old copy (STALE) while its
/// last confirmation is young enough.
async fn refreshed_copy(
    env: &Env,
    config: GitHubConfig,
    path: CachedPath,
) -> Result<Served, ApiError> {
    let kv = cache::store(env)?;
    let key = path.kv_key();
    let existing = cache::get(&kv, &key).await;
    let confirmations = cache::confirmations(&kv).await;
    let confirmed_ms = existing
        .as_ref()
        .map(|e| e.confirmed_ms(&key, &confirmations))
        .unwrap_or(0);
    let age_ms = now_ms().saturating_sub(confirmed_ms);
    if let Some(entry) = &existing {
        // Another request renewed it while this one waited for the object.
        if age_ms <= config.fresh_seconds * 1000 {
            return Ok(Served::copy(entry.clone(), "HIT", confirmed_ms));
        }
    }
    let etags = existing
        .as_ref()
        .map(|e| e.meta.etags.clone())
        .unwrap_or_default();
    let stale = |existing: Option<Entry>| {
        existing
            .filter(|_| may_serve_stale(age_ms, config.stale_max_seconds))
            .map(|entry| Served::copy(entry, "STALE", confirmed_ms))
    };
    match fetch_cached(&config, &path, &etags).await {
        Ok(Fetched::NotModified) => {
            let entry = existing.ok_or_else(|| ApiError::internal("304 without a copy"))?;
            confirm(&kv, &path).await;
            Ok(Served::copy(entry, "HIT", now_ms()))
        }
        Ok(Fetched::Fresh { body, etags }) => {
            let fresh = Entry {
                body,
                meta: EntryMeta {
                    fetched_ms: now_ms(),
                    etags: cache::storable_etags(etags),
                },
            };
            if existing
                .as_ref()
                .is_some_and(|e| e.body == fresh.body && e.meta.etags == fresh.meta.etags)
            {
                confirm(&kv, &path).await;
            } else {
                store_entry(&kv, &path, &fresh).await;
            }
            Ok(Served::copy(fresh, "MISS", now_ms()))
        }
        Ok(Fetched::Definitive(answer)) => match stale(existing) {
            Some(copy) if copy_stands_in(answer.status) => Ok(copy),
            _ => Ok(Served::passed(answer, "MISS")),
        },
        Err(failure) => stale(existing).ok_or_else(|| failure.to_error()),
    }
}

/// A proxied target: the copy another request stored while this one waited, else
/// GitHub's answer — relayed once and kept when it is successful JSON. Inside a
/// repository, only once the repository itself is seen to be public.
async fn proxied(env: &Env, config: GitHubConfig, target: Target) -> Result<Served, ApiError> {
    let kv = cache::store(env)?;
    let key = cache::proxy_key(&target.upstream);
    if let Some((meta, body)) = cache::proxy_get(&kv, &key).await {
        return Ok(Served::proxied(meta, body, "HIT"));
    }
    if let Some(repository) = &target.repository {
        ensure_public(&kv, &config, repository).await?;
    }
    let answer = relayable(&config, &target.upstream).await?;
    let answer = kept(&kv, &config, &key, target.organisation, answer).await?;
    Ok(Served::passed(answer, "MISS"))
}

/// Whether a repository is public, from its proxied copy or by asking for it (and
/// keeping the answer): a token that reads private repositories cannot relay their
/// contents, issues or archives. A redirect (a renamed repository) lets the inside
/// answer with its own redirect, which is checked when followed.
async fn ensure_public(
    kv: &cache::Kv,
    config: &GitHubConfig,
    repository: &str,
) -> Result<(), ApiError> {
    let key = cache::proxy_key(repository);
    let status = match cache::proxy_get(kv, &key).await {
        Some((meta, _)) => meta.status,
        None => {
            let answer = relayable(config, repository).await?;
            kept(kv, config, &key, false, answer).await?.status
        }
    };
    match status {
        200 | 300..=399 => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

/// GitHub's answer, if it may be relayed at all: not with a classic token whose scopes
/// reach beyond public data (502, logged), and never one that marks anything private
/// (404).
async fn relayable(config: &GitHubConfig, target: &str) -> Result<Answer, ApiError> {
    let answer = upstream::get(config, target, None, config.proxy_max_bytes)
        .await
        .map_err(|f| f.to_error())?;
    if config.token.is_some() {
        let risky = private_scopes(answer.scopes.as_deref());
        if !risky.is_empty() {
            log::failure(
                "github proxy",
                &format!(
                    "GITHUB_TOKEN has scopes beyond public data ({}); nothing is relayed until it is replaced by a token that reads public repositories only",
                    risky.join(", ")
                ),
            );
            return Err(ApiError::UpstreamUnavailable { timeout: false });
        }
    }
    if marks_private(&answer.body) {
        return Err(ApiError::NotFound);
    }
    Ok(answer)
}

/// Successful JSON as anyone may see it, kept in KV (a failed write is logged).
async fn kept(
    kv: &cache::Kv,
    config: &GitHubConfig,
    key: &str,
    organisation: bool,
    mut answer: Answer,
) -> Result<Answer, ApiError> {
    if !cacheable(answer.status, answer.header("content-type")) {
        return Ok(answer);
    }
    // JSON that names the token's fields but does not parse is not relayed.
    let public = public_view(&answer.body, organisation)
        .map_err(|_| ApiError::UpstreamUnavailable { timeout: false })?;
    if let Some(public) = public {
        answer.body = public;
    }
    let meta = ProxyMeta {
        status: answer.status,
        headers: answer.headers.clone(),
        stored_ms: now_ms(),
    };
    cache::proxy_put(kv, key, &meta, &answer.body, config.proxy_cache_seconds).await;
    Ok(answer)
}
