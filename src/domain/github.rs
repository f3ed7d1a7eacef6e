//! GitHub cache rules: which organisations and paths are cached, how a paginated list is
//! followed, how repositories rank in the top-N views, and when an upstream answer counts
//! as a failure. Upstream data is validated here before anything is built from it.

use crate::error::{ApiError, ApiResult};
use serde_json::Value;
use std::cmp::Ordering;

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

    /// The upstream path (lists ask for the largest pages GitHub gives).
    pub fn upstream(&self) -> String {
        match self {
            CachedPath::Root => "/".into(),
            CachedPath::Org(o) => format!("/orgs/{o}"),
            CachedPath::Members(o) => format!("/orgs/{o}/members?per_page=100"),
            CachedPath::Repos(o) => format!("/orgs/{o}/repos?per_page=100"),
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

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: Option<&str>) -> Option<String> {
    link?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// Concatenates the JSON arrays of a list's pages; a page that is not an array is an
/// upstream error, not data.
pub fn merge_pages(pages: &[String]) -> ApiResult<String> {
    let mut all = Vec::new();
    for page in pages {
        match serde_json::from_str::<Value>(page) {
            Ok(Value::Array(items)) => all.extend(items),
            _ => {
                return Err(ApiError::Internal(
                    "upstream list page is not a JSON array".into(),
                ))
            }
        }
    }
    serde_json::to_string(&all).map_err(ApiError::internal)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewField {
    Forks,
    LastUpdated,
    OpenIssues,
    Stars,
}

impl ViewField {
    pub const ALL: [ViewField; 4] = [
        ViewField::Forks,
        ViewField::LastUpdated,
        ViewField::OpenIssues,
        ViewField::Stars,
    ];

    pub fn parse(raw: &str) -> ApiResult<ViewField> {
        match raw {
            "forks" => Ok(ViewField::Forks),
            "last_updated" => Ok(ViewField::LastUpdated),
            "open_issues" => Ok(ViewField::OpenIssues),
            "stars" => Ok(ViewField::Stars),
            _ => Err(ApiError::InvalidParameter(
                "field must be one of forks, last_updated, open_issues, stars".into(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ViewField::Forks => "forks",
            ViewField::LastUpdated => "last_updated",
            ViewField::OpenIssues => "open_issues",
            ViewField::Stars => "stars",
        }
    }

    fn source(self) -> &'static str {
        match self {
            ViewField::Forks => "forks_count",
            ViewField::LastUpdated => "updated_at",
            ViewField::OpenIssues => "open_issues_count",
            ViewField::Stars => "stargazers_count",
        }
    }
}

/// `N` of `/view/top/{N}/...`: an integer of at least 1; more than there are gives all.
pub fn parse_top_n(raw: &str) -> ApiResult<usize> {
    let invalid = || ApiError::InvalidParameter("N must be an integer of at least 1".into());
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match raw.trim_start_matches('0') {
        "" => Err(invalid()),
        digits => Ok(digits.parse().unwrap_or(usize::MAX)),
    }
}

/// Every repository ranked by `field`, highest first, ties by full name ascending:
/// `[["Org/repo", value], ...]`. Entries without a full name or a value of the right
/// type are left out rather than guessed.
pub fn rank(repos: &str, field: ViewField) -> ApiResult<Vec<(String, Value)>> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(repos) else {
        return Err(ApiError::Internal(
            "cached repository list is not a JSON array".into(),
        ));
    };
    let mut ranked: Vec<(String, Value)> = items
        .iter()
        .filter_map(|repo| {
            let name = repo.get("full_name")?.as_str()?.to_string();
            let value = repo.get(field.source())?;
            let valid = match field {
                ViewField::LastUpdated => value.as_str().is_some(),
                _ => value.as_u64().is_some(),
            };
            valid.then(|| (name, value.clone()))
        })
        .collect();
    ranked.sort_by(|(an, av), (bn, bv)| {
        let by_value = match field {
            // RFC 3339 UTC timestamps order as strings.
            ViewField::LastUpdated => bv.as_str().cmp(&av.as_str()),
            _ => bv.as_u64().cmp(&av.as_u64()),
        };
        match by_value {
            Ordering::Equal => an.cmp(bn),
            other => other,
        }
    });
    Ok(ranked)
}

/// How an upstream answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    Fresh,
    NotModified,
    /// A failure that a stale copy may cover: 5xx, or 403/429 when rate-limited.
    Failed,
    /// Anything else (404, 401, other 4xx): GitHub's own answer, passed on.
    Definitive,
}

pub fn classify(
    status: u16,
    rate_limit_remaining: Option<&str>,
    retry_after: Option<&str>,
) -> UpstreamOutcome {
    match status {
        200..=299 => UpstreamOutcome::Fresh,
        304 => UpstreamOutcome::NotModified,
        429 => UpstreamOutcome::Failed,
        403 if rate_limit_remaining.map(str::trim) == Some("0") || retry_after.is_some() => {
            UpstreamOutcome::Failed
        }
        500..=599 => UpstreamOutcome::Failed,
        _ => UpstreamOutcome::Definitive,
    }
}

/// A stale copy may stand in for a failed upstream while it is younger than the limit.
pub fn may_serve_stale(age_ms: u64, stale_max_seconds: u64) -> bool {
    age_ms < stale_max_seconds.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn follows_next_links() {
        let link = r#"<https://api.example/orgs/a/repos?page=2>; rel="next", <https://api.example/orgs/a/repos?page=3>; rel="last""#;
        assert_eq!(
            next_link(Some(link)).as_deref(),
            Some("https://api.example/orgs/a/repos?page=2")
        );
        let last = r#"<https://api.example/x?page=1>; rel="prev", <https://api.example/x?page=1>; rel="first""#;
        assert_eq!(next_link(Some(last)), None);
        assert_eq!(next_link(None), None);
        assert_eq!(next_link(Some("garbage")), None);
    }

    #[test]
    fn merges_pages_and_refuses_non_lists() {
        assert_eq!(
            merge_pages(&["[1,2]".into(), "[3]".into()]).unwrap(),
            "[1,2,3]"
        );
        assert!(merge_pages(&["{\"message\":\"x\"}".into()]).is_err());
    }

    #[test]
    fn ranks_with_ties_by_name() {
        let repos = json!([
            {"full_name": "acme/b", "stargazers_count": 5, "forks_count": 1, "open_issues_count": 0, "updated_at": "2024-01-02T00:00:00Z"},
            {"full_name": "acme/a", "stargazers_count": 5, "forks_count": 9, "open_issues_count": 3, "updated_at": "2024-03-01T00:00:00Z"},
            {"full_name": "acme/c", "stargazers_count": 7, "forks_count": 1, "open_issues_count": 3, "updated_at": "2023-12-31T23:59:59Z"},
            {"full_name": "acme/broken", "stargazers_count": "many"},
            {"stargazers_count": 100}
        ])
        .to_string();
        let names = |f| {
            rank(&repos, f)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(ViewField::Stars), ["acme/c", "acme/a", "acme/b"]);
        assert_eq!(names(ViewField::Forks), ["acme/a", "acme/b", "acme/c"]);
        assert_eq!(names(ViewField::OpenIssues), ["acme/a", "acme/c", "acme/b"]);
        assert_eq!(
            names(ViewField::LastUpdated),
            ["acme/a", "acme/b", "acme/c"]
        );
        assert_eq!(rank(&repos, ViewField::Stars).unwrap()[0].1, json!(7));
        assert!(rank("{}", ViewField::Stars).is_err());
    }

    #[test]
    fn top_n_and_fields() {
        assert_eq!(parse_top_n("3").unwrap(), 3);
        assert_eq!(parse_top_n("99999999999999999999999").unwrap(), usize::MAX);
        for bad in ["0", "-1", "abc", "", "1.5", "+2", "00"] {
            assert_eq!(
                parse_top_n(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad:?}"
            );
        }
        assert_eq!(ViewField::parse("stars").unwrap(), ViewField::Stars);
        assert!(ViewField::parse("watchers").is_err());
    }

    #[test]
    fn upstream_outcomes_and_staleness() {
        assert_eq!(classify(200, None, None), UpstreamOutcome::Fresh);
        assert_eq!(classify(304, None, None), UpstreamOutcome::NotModified);
        assert_eq!(classify(503, None, None), UpstreamOutcome::Failed);
        assert_eq!(classify(403, Some("0"), None), UpstreamOutcome::Failed);
        assert_eq!(classify(403, Some("12"), None), UpstreamOutcome::Definitive);
        assert_eq!(classify(429, None, Some("60")), UpstreamOutcome::Failed);
        assert_eq!(classify(404, None, None), UpstreamOutcome::Definitive);
        assert!(may_serve_stale(86_399_999, 86_400));
        assert!(!may_serve_stale(86_400_000, 86_400));
    }
}
