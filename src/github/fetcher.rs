//! The GitHub fetcher object: one Durable Object per cached path or proxied target,
//! through which every request that must ask GitHub (a miss, or a copy past its fresh
//! window) goes. Requests to one object share its context, so concurrent ones share one
//! upstream fetch — which plain Worker requests cannot do, as each request's promises
//! are its own. It answers as the client is to be answered: status, GitHub's headers,
//! `X-Cache`, `Age` and the body.

// The annex Worker builds the types and calls its callers need, not the class; what
// only the class uses is unused there. The edge's build checks this module in full.
#![cfg_attr(feature = "annex", allow(unused_imports, dead_code))]

use crate::config::{self, GitHubConfig};
use crate::domain::github::allowance::DailyAllowance;
use crate::domain::github::answers::{
    cacheable, copy_stands_in, is_json, marks_private, may_serve_stale, private_scopes, public_view,
};
use crate::domain::github::proxy_rules::{proxy_target, Target};
use crate::domain::github::CachedPath;
use crate::error::{ApiError, OrInternal};
use crate::github::cache::{self, Entry, ProxyMeta};
use crate::github::refresh::{confirm, keep_fetched, Refreshed};
use crate::github::single_flight::SingleFlight;
use crate::github::upstream::{self, fetch_cached, Answer, Fetched};
use crate::http::log;
use crate::http::respond;
use crate::http::router::query_param;
use crate::platform::now_ms;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{DurableObject, Env, Headers, Request, Response, State};

/// An answer ready for the client, shared by every request that waited for it.
#[derive(Debug, Clone)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Rc<Vec<u8>>,
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
            body: Rc::new(entry.body.into_bytes()),
            cache,
            confirmed_ms,
        }
    }

    fn passed(answer: Answer, cache: &'static str) -> Served {
        Served {
            status: answer.status,
            headers: answer.headers,
            body: Rc::new(answer.body),
            cache,
            confirmed_ms: now_ms(),
        }
    }

    pub fn proxied(meta: ProxyMeta, body: Vec<u8>, cache: &'static str) -> Served {
        Served {
            status: meta.status,
            headers: meta.headers,
            body: Rc::new(body),
            cache,
            confirmed_ms: meta.stored_ms,
        }
    }

    /// Whether an object may hold it for the cache time: JSON, or no success at all (a
    /// redirect, a 404) — never another kind of content.
    fn holdable(&self) -> bool {
        let content_type = self
            .headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str());
        is_json(content_type) || !(200..300).contains(&self.status)
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
        // Copied only when other requests still share it.
        let body = Rc::try_unwrap(self.body).unwrap_or_else(|shared| shared.as_ref().clone());
        Ok(Response::from_bytes(body)?
            .with_status(self.status)
            .with_headers(headers))
    }
}

// The classes live in the edge Worker; the annex reaches them through its bindings.
#[cfg_attr(not(feature = "annex"), worker::durable_object)]
pub struct GitHubFetcher {
    env: Env,
    flights: SingleFlight<Result<Served, ApiError>>,
    /// Small proxied answers KV does not keep (a 404, a redirect, a copy past the write
    /// allowance), for the cache time: repeats of them spend no token quota either.
    recent: RefCell<Vec<(String, Served)>>,
    /// In the one object named `WRITES`: the proxy's KV writes today.
    writes: Cell<DailyAllowance>,
}

/// The object that counts the proxy's KV writes for the whole service.
const WRITES: &str = "proxy-writes";
/// Answers larger than this are not held in an object's memory.
const RECENT_MAX_BYTES: usize = 64 * 1024;

#[cfg(not(feature = "annex"))]
impl DurableObject for GitHubFetcher {
    fn new(_state: State, env: Env) -> Self {
        GitHubFetcher {
            env,
            flights: SingleFlight::default(),
            recent: RefCell::default(),
            writes: Cell::default(),
        }
    }

    /// `/?path=/orgs/acme/repos` (a cached path), `/?proxy=/repos/a/b%3Fx%3D1` (a
    /// canonical proxy target, checked again here), or `/?write=1` (to `WRITES`).
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        if query_param(&url, "write").is_some() {
            return self.take_write();
        }
        let served = async {
            let config = config::get(&self.env)?;
            let github = config.github.clone();
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
            let target = proxy_target(path, query)?;
            let key = target.upstream.clone();
            let cache_ms = github.proxy_cache_seconds * 1000;
            if let Some(held) = self.held(&key, cache_ms) {
                return Ok(held);
            }
            let served = self
                .flights
                .run(&key, || proxied(&self.env, github, target))
                .await?;
            if served.cache == "MISS" && served.body.len() <= RECENT_MAX_BYTES && served.holdable()
            {
                // An object serves one target (and its repository): a short list.
                let mut recent = self.recent.borrow_mut();
                recent.retain(|(k, s)| {
                    *k != key && now_ms().saturating_sub(s.confirmed_ms) < cache_ms
                });
                recent.push((key, served.clone()));
            }
            Ok(served)
        };
        respond::from_object(
            "github fetcher",
            served
                .await
                .and_then(|s| s.into_response().or_internal("answering")),
        )
    }
}

impl GitHubFetcher {
    /// 204 when one of today's proxy writes is granted, 429 when they are spent.
    fn take_write(&self) -> worker::Result<Response> {
        let limit = config::get(&self.env).map_or(0, |c| c.github.proxy_writes_per_day);
        let mut writes = self.writes.get();
        let granted = writes.take(now_ms(), limit);
        self.writes.set(writes);
        Ok(Response::empty()?.with_status(if granted { 204 } else { 429 }))
    }

    /// The answer this object relayed within the cache time, as a HIT.
    fn held(&self, key: &str, cache_ms: u64) -> Option<Served> {
        let recent = self.recent.borrow();
        let (_, held) = recent.iter().find(|(k, _)| k == key)?;
        let young = now_ms().saturating_sub(held.confirmed_ms) < cache_ms;
        young.then(|| Served {
            cache: "HIT",
            ..held.clone()
        })
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
            let (fresh, kept) = keep_fetched(&kv, &path, existing.as_ref(), body, etags).await;
            if kept == Refreshed::Confirmed {
                confirm(&kv, &path).await;
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
        ensure_public(env, &kv, &config, repository).await?;
    }
    let answer = relayable(&config, &target.upstream).await?;
    let answer = kept(env, &kv, &config, &key, target.organisation, answer).await?;
    Ok(Served::passed(answer, "MISS"))
}

/// Whether a repository is public, from its proxied copy or by asking for it (and
/// keeping the answer): a token that reads private repositories cannot relay their
/// contents, issues or archives. A redirect (a renamed repository) lets the inside
/// answer with its own redirect, which is checked when followed.
async fn ensure_public(
    env: &Env,
    kv: &cache::Kv,
    config: &GitHubConfig,
    repository: &str,
) -> Result<(), ApiError> {
    let key = cache::proxy_key(repository);
    let status = match cache::proxy_get(kv, &key).await {
        Some((meta, _)) => meta.status,
        None => {
            let answer = relayable(config, repository).await?;
            kept(env, kv, config, &key, false, answer).await?.status
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
    env: &Env,
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
    if !write_allowed(env).await {
        log::failure(
            "github proxy",
            &"GITHUB_PROXY_WRITES_PER_DAY reached: proxied answers are not kept in KV until tomorrow (UTC)",
        );
        return Ok(answer);
    }
    let meta = ProxyMeta {
        status: answer.status,
        headers: answer.headers.clone(),
        stored_ms: now_ms(),
    };
    cache::proxy_put(kv, key, &meta, &answer.body, config.proxy_cache_seconds).await;
    Ok(answer)
}

/// Asks the `WRITES` object for one of today's proxy writes; unreachable means no.
async fn write_allowed(env: &Env) -> bool {
    let asked = async {
        let stub = env.durable_object("GITHUB_FETCHER")?.get_by_name(WRITES)?;
        stub.fetch_with_str("https://fetcher/?write=1").await
    };
    match asked.await {
        Ok(answer) => answer.status_code() == 204,
        Err(e) => {
            log::failure("github proxy", &format!("asking for a write: {e}"));
            false
        }
    }
}
