//! Talking to the GitHub API: one request with the token, a timeout and the headers
//! GitHub expects; whole paginated lists, conditionally when ETags are known.

use crate::config::GitHubConfig;
use crate::domain::github::{classify, merge_pages, next_link, CachedPath, UpstreamOutcome};
use crate::error::ApiError;
use crate::http::log;
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers};

/// One upstream answer, reduced to what the cache and proxy use.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
    pub link: Option<String>,
    /// GitHub's headers worth passing on to clients.
    pub passed_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    /// Unreachable, 5xx, or rate-limited.
    Unavailable(String),
}

impl Failure {
    pub fn to_error(&self) -> ApiError {
        match self {
            Failure::Timeout => ApiError::UpstreamUnavailable { timeout: true },
            Failure::Unavailable(_) => ApiError::UpstreamUnavailable { timeout: false },
        }
    }
}

const PASSED_HEADERS: [&str; 8] = [
    "content-type",
    "etag",
    "last-modified",
    "link",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-github-media-type",
];

/// GETs `target` (a path under the API URL, or an absolute URL under it).
pub async fn get(
    config: &GitHubConfig,
    target: &str,
    etag: Option<&str>,
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
    let headers = Headers::new();
    let set = |k: &str, v: &str| {
        headers
            .set(k, v)
            .map_err(|e| Failure::Unavailable(e.to_string()))
    };
    set("Accept", "application/vnd.github+json")?;
    set("User-Agent", "edgecount")?;
    set("X-GitHub-Api-Version", "2022-11-28")?;
    if let Some(token) = &config.token {
        set("Authorization", &format!("Bearer {token}"))?;
    }
    if let Some(etag) = etag {
        set("If-None-Match", etag)?;
    }
    let request = crate::platform::request("GET", &url, Some(&headers), None)
        .map_err(|e| Failure::Unavailable(e.to_string()))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let timer = Box::pin(Delay::from(Duration::from_millis(config.timeout_ms)));
    let mut response = match select(sent, timer).await {
        Either::Left((answer, _)) => answer.map_err(|e| Failure::Unavailable(e.to_string()))?,
        Either::Right(((), _)) => {
            controller.abort();
            return Err(Failure::Timeout);
        }
    };
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let remaining = header("x-ratelimit-remaining");
    if let Some(left) = &remaining {
        let line = serde_json::json!({"level": "info", "upstream": "github", "path": target, "status": response.status_code(), "rate_limit_remaining": left});
        worker::console_log!("{line}");
    }
    let status = response.status_code();
    if classify(
        status,
        remaining.as_deref(),
        header("retry-after").as_deref(),
    ) == UpstreamOutcome::Failed
    {
        return Err(Failure::Unavailable(format!("GitHub answered {status}")));
    }
    let passed_headers = PASSED_HEADERS
        .iter()
        .filter_map(|name| header(name).map(|v| (name.to_string(), v)))
        .collect();
    let (etag, link) = (header("etag"), header("link"));
    let body = response
        .text()
        .await
        .map_err(|e| Failure::Unavailable(e.to_string()))?;
    Ok(Answer {
        status,
        body,
        etag,
        link,
        passed_headers,
    })
}

/// A cached path as upstream has it now.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// Every page answered 304 to its stored ETag.
    NotModified,
    Fresh {
        body: String,
        etags: Vec<String>,
    },
    /// GitHub's own non-failure answer (a 404 for an org that does not exist, say).
    Definitive(Answer),
}

/// Fetches a cached path whole: lists are followed page by page through `Link` headers
/// and merged. With stored ETags, each page is asked conditionally; if any page changed
/// the whole list is fetched again, so the merged copy is never half old.
pub async fn fetch_cached(
    config: &GitHubConfig,
    path: &CachedPath,
    etags: &[String],
) -> Result<Fetched, Failure> {
    if !etags.is_empty() && pages_unchanged(config, path, etags).await? {
        return Ok(Fetched::NotModified);
    }
    let mut target = path.upstream();
    let mut bodies = Vec::new();
    let mut new_etags = Vec::new();
    loop {
        let answer = get(config, &target, None).await?;
        if !(200..300).contains(&answer.status) {
            return Ok(Fetched::Definitive(answer));
        }
        new_etags.push(answer.etag.clone().unwrap_or_default());
        let next = path
            .is_list()
            .then(|| next_link(answer.link.as_deref()))
            .flatten();
        bodies.push(answer.body);
        match next {
            Some(url) if bodies.len() < MAX_PAGES => target = url,
            Some(_) => {
                log::failure(
                    "github pagination",
                    &format!("{} has more than {MAX_PAGES} pages", path.upstream()),
                );
                break;
            }
            None => break,
        }
    }
    let body = if path.is_list() {
        merge_pages(&bodies).map_err(|e| Failure::Unavailable(e.to_string()))?
    } else {
        bodies.pop().unwrap_or_default()
    };
    Ok(Fetched::Fresh {
        body,
        etags: new_etags,
    })
}

/// A list of 100 per page stops at this many pages (100,000 entries).
const MAX_PAGES: usize = 1_000;

async fn pages_unchanged(
    config: &GitHubConfig,
    path: &CachedPath,
    etags: &[String],
) -> Result<bool, Failure> {
    let mut target = path.upstream();
    for (i, etag) in etags.iter().enumerate() {
        if etag.is_empty() {
            return Ok(false);
        }
        let answer = get(config, &target, Some(etag)).await?;
        if answer.status != 304 {
            return Ok(false);
        }
        if i + 1 < etags.len() {
            // A 304 carries no Link header: page n+1 of a list is its first page's URL
            // with `page=n+1`.
            target = format!("{}&page={}", path.upstream(), i + 2);
        }
    }
    Ok(true)
}
