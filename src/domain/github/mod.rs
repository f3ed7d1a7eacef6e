//! GitHub cache rules: which organisations and paths are cached and what a cached copy
//! may hold; the modules below cover lists, answers, the views and the proxy's rules.
//! Upstream data is validated here before anything is built from it.

pub mod allowance;
pub mod answers;
pub mod lists;
pub mod proxy_rules;
pub mod ranking;

use crate::error::{ApiError, ApiResult};
use lists::{merge_pages, public_repo, PER_PAGE};
use serde_json::Value;

/// A GitHub login: 1..=39 characters, alphanumeric or single hyphens inside.
pub fn parse_org(raw: &str) -> Option<String> {
    let ok = (1..=39).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !raw.starts_with('-')
        && !raw.ends_with('-')
        && !raw.contains("--");
    ok.then(|| raw.to_string())
}

/// `GITHUB_ORGS`: comma-separated logins; an empty list turns the feature off.
pub fn parse_orgs(raw: &str) -> Result<Vec<String>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| parse_org(o).ok_or_else(|| format!("GITHUB_ORGS: {o:?} is not a GitHub login")))
        .collect()
}

/// `GITHUB_API_URL`: the token travels only over `https`, or to a loopback address
/// (a local stand-in for tests).
pub fn parse_api_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let host = |rest: &str| {
        let authority = rest.split('/').next().unwrap_or_default();
        match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
            None => authority.split(':').next().unwrap_or_default().to_string(),
        }
    };
    let ok = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => !host(rest).is_empty(),
        (_, Some(rest)) => {
            let host = host(rest);
            host == "localhost" || host == "::1" || is_ipv4_loopback(&host)
        }
        _ => false,
    };
    if ok && !url.contains(['?', '#', '@']) {
        Ok(url.to_string())
    } else {
        Err(format!(
            "GITHUB_API_URL must be an https URL (http only to a loopback address), got {url:?}"
        ))
    }
}

/// `127.x.y.z` (std's address parser would cost the bundle more than this check).
fn is_ipv4_loopback(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts[0] == "127"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
}

/// The paths the refresh keeps in KV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedPath {
    Root,
    Org(String),
    Members(String),
    Repos(String),
}

impl CachedPath {
    /// The cached path this request path names, for one of the configured orgs.
    pub fn of(path: &str, orgs: &[String]) -> Option<CachedPath> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Some(CachedPath::Root);
        }
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        let org = |o: &str| orgs.iter().find(|c| c.eq_ignore_ascii_case(o)).cloned();
        match segments.as_slice() {
            ["orgs", o] => org(o).map(CachedPath::Org),
            ["orgs", o, "members"] => org(o).map(CachedPath::Members),
            ["orgs", o, "repos"] => org(o).map(CachedPath::Repos),
            _ => None,
        }
    }

    /// Every cached path of the configured orgs, in refresh order.
    pub fn all(orgs: &[String]) -> Vec<CachedPath> {
        let mut paths = vec![CachedPath::Root];
        for org in orgs {
            paths.extend([
                CachedPath::Org(org.clone()),
                CachedPath::Members(org.clone()),
                CachedPath::Repos(org.clone()),
            ]);
        }
        paths
    }

    /// The upstream path (lists ask for the largest pages GitHub gives). Members are
    /// asked for as public members: with a member's token GitHub lists concealed ones too.
    pub fn upstream(&self) -> String {
        match self {
            CachedPath::Root => "/".into(),
            CachedPath::Org(o) => format!("/orgs/{o}"),
            CachedPath::Members(o) => format!("/orgs/{o}/public_members?per_page={PER_PAGE}"),
            CachedPath::Repos(o) => format!("/orgs/{o}/repos?per_page={PER_PAGE}"),
        }
    }

    /// The copy kept for a list from its pages' items: only what anyone may see,
    /// whatever the token could read.
    pub fn public_list(&self, pages: &[Vec<Value>]) -> ApiResult<String> {
        match self {
            CachedPath::Repos(_) => merge_pages(pages, public_repo),
            _ => merge_pages(pages, |_| true),
        }
    }

    /// The copy kept for a single answer (the root or an organisation).
    pub fn public_object(&self, body: &[u8]) -> ApiResult<String> {
        match self {
            CachedPath::Org(_) => answers::public_org(body),
            _ => match serde_json::from_slice::<Value>(body) {
                Ok(value @ Value::Object(_)) => Ok(value.to_string()),
                _ => Err(ApiError::Internal(
                    "upstream answer is not a JSON object".into(),
                )),
            },
        }
    }

    /// The path as clients ask for it (what `CachedPath::of` reads back).
    pub fn request_path(&self) -> String {
        match self {
            CachedPath::Root => "/".into(),
            CachedPath::Org(o) => format!("/orgs/{o}"),
            CachedPath::Members(o) => format!("/orgs/{o}/members"),
            CachedPath::Repos(o) => format!("/orgs/{o}/repos"),
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(self, CachedPath::Members(_) | CachedPath::Repos(_))
    }

    pub fn kv_key(&self) -> String {
        match self {
            CachedPath::Root => "gh:path:/".into(),
            CachedPath::Org(o) => format!("gh:path:/orgs/{}", o.to_ascii_lowercase()),
            CachedPath::Members(o) => format!("gh:path:/orgs/{}/members", o.to_ascii_lowercase()),
            CachedPath::Repos(o) => format!("gh:path:/orgs/{}/repos", o.to_ascii_lowercase()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_must_be_https_or_loopback() {
        assert_eq!(
            parse_api_url("https://api.github.com/").unwrap(),
            "https://api.github.com"
        );
        assert_eq!(
            parse_api_url("https://ghe.example/api/v3").unwrap(),
            "https://ghe.example/api/v3"
        );
        assert!(parse_api_url("http://127.0.0.1:9999").is_ok());
        assert!(parse_api_url("http://localhost:8787").is_ok());
        assert!(parse_api_url("http://[::1]:1").is_ok());
        for bad in [
            "http://api.github.com",
            "http://127.0.0.1.evil.test",
            "http://localhost.evil.test",
            "ftp://x",
            "https://",
            "https://user@evil.test",
            "api.github.com",
            "http://10.0.0.1",
        ] {
            assert!(parse_api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orgs_and_cached_paths() {
        assert_eq!(
            parse_orgs(" acme, Other-Org ,").unwrap(),
            vec!["acme", "Other-Org"]
        );
        assert!(parse_orgs("acme,bad org").is_err());
        assert!(parse_orgs("-x").is_err());
        assert!(parse_orgs(&"a".repeat(40)).is_err());
        assert_eq!(parse_orgs("").unwrap(), Vec::<String>::new());
        let orgs = vec!["Acme".to_string()];
        assert_eq!(CachedPath::of("/", &orgs), Some(CachedPath::Root));
        assert_eq!(
            CachedPath::of("/orgs/acme", &orgs),
            Some(CachedPath::Org("Acme".into()))
        );
        assert_eq!(
            CachedPath::of("/orgs/ACME/repos/", &orgs),
            Some(CachedPath::Repos("Acme".into()))
        );
        assert_eq!(CachedPath::of("/orgs/other/repos", &orgs), None);
        assert_eq!(CachedPath::of("/repos/acme/x", &orgs), None);
        assert_eq!(CachedPath::all(&orgs).len(), 4);
        for path in CachedPath::all(&orgs) {
            assert_eq!(CachedPath::of(&path.request_path(), &orgs), Some(path));
        }
        assert_eq!(
            CachedPath::Repos("Acme".into()).kv_key(),
            "gh:path:/orgs/acme/repos"
        );
    }
}
