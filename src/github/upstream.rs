//! Talking to the GitHub API: one GET with the token, no redirect followed, one timeout
//! over headers and body, and a body read as a stream up to a cap; whole paginated lists,
//! conditionally when ETags are known.

use crate::config::GitHubConfig;
use crate::domain::github::answers::{classify, UpstreamOutcome, PASSED_HEADERS};
use crate::domain::github::lists::{next_link, page_items, page_url, PER_PAGE};
use crate::domain::github::CachedPath;
use crate::error::ApiError;
use crate::http::{body, log};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Response};

/// One upstream answer, reduced to what the cache and proxy use.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// GitHub's headers that travel on (`PASSED_HEADERS`), names in lower case.
    pub headers: Vec<(String, String)>,
    /// The token's classic scopes (`X-OAuth-Scopes`): read, never passed on.
    pub scopes: Option<String>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    /// Unreachable, 5xx, rate-limited, or the token refused.
    Unavailable(String),
    /// The answer is larger than the cap; nothing of it is kept.
    TooLarge,
}

impl Failure {
    pub fn to_error(&self) -> ApiError {
        match self {
            Failure::Timeout => ApiError::UpstreamUnavailable { timeout: true },
            Failure::Unavailable(_) | Failure::TooLarge => {
                ApiError::UpstreamUnavailable { timeout: false }
            }
        }
    }
}

/// GETs `target` (a path under the API URL, or an absolute URL under it), reading at
/// most `cap` bytes of body.
pub async fn get(
    config: &GitHubConfig,
    target: &str,
    etag: Option<&str>,
    cap: usize,
) -> Result<Answer, Failure> {
    let url = if target.starts_with("http://") || target.starts_with("https://") {
        // Only ever follow links back to the configured API: a page must not send the
        // token elsewhere.
        if !target.starts_with(&format!("{}/", config.api_url)) {
            return Err(Failure::Unavailable(format!(
                "refusing to follow a link off the API: {target}"
            )));
        }
        target.to_string()
    } else {
        format!("{}{target}", config.api_url)
    };
    let unavailable = |e: worker::Error| Failure::Unavailable(e.to_string());
    let headers = Headers::new();
    headers
        .set("Accept", "application/vnd.github+json")
        .map_err(unavailable)?;
    headers
        .set("User-Agent", "edgecount")
        .map_err(unavailable)?;
    headers
        .set("X-GitHub-Api-Version", "2022-11-28")
        .map_err(unavailable)?;
    if let Some(token) = &config.token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(unavailable)?;
    }
    if let Some(etag) = etag {
        headers.set("If-None-Match", etag).map_err(unavailable)?;
    }
    let request = crate::platform::get_unfollowed(&url, &headers).map_err(unavailable)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(unavailable)?;
        read_answer(response, target, cap).await
    };
    // The timeout covers the body too: a trickling answer cannot hold the request.
    let timer = Delay::from(Duration::from_millis(config.timeout_ms));
    let outcome = match select(Box::pin(exchange), Box::pin(timer)).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(((), _)) => Err(Failure::Timeout),
    };
    if outcome.is_err() {
        // Whatever is still coming is not wanted.
        controller.abort();
    }
    outcome
}

async fn read_answer(mut response: Response, target: &str, cap: usize) -> Result<Answer, Failure> {
    let status = response.status_code();
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let remaining = header("x-ratelimit-remaining");
    if let Some(left) = &remaining {
        let line = serde_json::json!({"level": "info", "upstream": "github", "path": target, "status": status, "rate_limit_remaining": left});
        worker::console_log!("{line}");
    }
    match classify(
        status,
        remaining.as_deref(),
        header("retry-after").as_deref(),
    ) {
        UpstreamOutcome::Failed => {
            if status == 401 {
                log::failure(
                    "github",
                    &"GitHub refused the token (401): renew GITHUB_TOKEN",
                );
            }
            return Err(Failure::Unavailable(format!("GitHub answered {status}")));
        }
        UpstreamOutcome::NotModified => {
            return Ok(Answer {
                status,
                body: Vec::new(),
                headers: Vec::new(),
                scopes: None,
            })
        }
        UpstreamOutcome::Fresh | UpstreamOutcome::Definitive => {}
    }
    let declared = header("content-length").and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(Failure::TooLarge);
    }
    let headers = PASSED_HEADERS
        .iter()
        .filter_map(|name| header(name).map(|v| (name.to_string(), v)))
        .collect();
    let scopes = header("x-oauth-scopes");
    let body = match response.stream() {
        Ok(mut stream) => body::collect_capped(&mut stream, cap)
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))?
            .ok_or(Failure::TooLarge)?,
        // No body at all (a 204, say).
        Err(_) => Vec::new(),
    };
    Ok(Answer {
        status,
        body,
        headers,
        scopes,
    })
}

/// A cached path as upstream has it now.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// Every page answered 304 to its stored ETag.
    NotModified,
    /// The public copy to keep, and each page's ETag.
    Fresh { body: String, etags: Vec<String> },
    /// GitHub's own non-failure answer (a 404 for an org that does not exist, say).
    Definitive(Answer),
}

/// A list stops at this many pages of 100: every page is held in memory while merged.
const MAX_PAGES: usize = 30;

/// Fetches a cached path whole: lists are followed page by page through `Link` headers
/// and merged. A list whose last page is full is asked for one page more (empty, with
/// its own ETag), so that an appended page changes an ETag the next refresh checks.
/// With stored ETags, each page is asked conditionally; if any page changed the whole
/// list is fetched again, so the merged copy is never half old.
pub async fn fetch_cached(
    config: &GitHubConfig,
    path: &CachedPath,
    etags: &[String],
) -> Result<Fetched, Failure> {
    if !etags.is_empty() && pages_unchanged(config, path, etags).await? {
        return Ok(Fetched::NotModified);
    }
    let cap = config.proxy_max_bytes;
    let first = path.upstream();
    let mut target = first.clone();
    let mut pages = Vec::new();
    let mut new_etags = Vec::new();
    loop {
        let answer = get(config, &target, None, cap).await?;
        if !(200..300).contains(&answer.status) {
            if pages.is_empty() {
                return Ok(Fetched::Definitive(answer));
            }
            // Half a list is never kept.
            return Err(Failure::Unavailable(format!(
                "{target} answered {}",
                answer.status
            )));
        }
        new_etags.push(answer.header("etag").unwrap_or_default().to_string());
        if !path.is_list() {
            let body = path
                .public_object(&answer.body)
                .map_err(|e| Failure::Unavailable(e.to_string()))?;
            return Ok(Fetched::Fresh {
                body,
                etags: new_etags,
            });
        }
        let items = page_items(&answer.body).map_err(|e| Failure::Unavailable(e.to_string()))?;
        let full = items.len() >= PER_PAGE;
        pages.push(items);
        let next = match next_link(answer.header("link")) {
            Some(url) => Some(url),
            None if full => Some(page_url(&first, pages.len() + 1)),
            None => None,
        };
        match next {
            Some(url) if pages.len() < MAX_PAGES => target = url,
            Some(_) => {
                log::failure(
                    "github pagination",
                    &format!("{first} has more than {MAX_PAGES} pages; the rest is not kept"),
                );
                break;
            }
            None => break,
        }
    }
    let body = path
        .public_list(&pages)
        .map_err(|e| Failure::Unavailable(e.to_string()))?;
    Ok(Fetched::Fresh {
        body,
        etags: new_etags,
    })
}

async fn pages_unchanged(
    config: &GitHubConfig,
    path: &CachedPath,
    etags: &[String],
) -> Result<bool, Failure> {
    let first = path.upstream();
    for (i, etag) in etags.iter().enumerate() {
        if etag.is_empty() {
            return Ok(false);
        }
        // A 304 carries no Link header: page n of a list is its first page's URL with
        // `page=n`.
        let target = if i == 0 {
            first.clone()
        } else {
            page_url(&first, i + 1)
        };
        let answer = get(config, &target, Some(etag), config.proxy_max_bytes).await?;
        if answer.status != 304 {
            return Ok(false);
        }
    }
    Ok(true)
}
