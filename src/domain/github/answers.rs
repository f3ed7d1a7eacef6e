//! What GitHub's answers mean for the cache: which a copy may stand in for, which headers
//! travel with a copy, what may be cached, and what must never be relayed.

use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

/// How an upstream answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    Fresh,
    NotModified,
    /// A failure a stale copy may cover, never passed on as GitHub's: 5xx, 429, a
    /// rate-limited 403, and 401 (the token is the operator's; no client can fix it).
    Failed,
    /// GitHub's own answer (404, 403, a redirect), passed on unless a copy stands in.
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
        401 | 429 => UpstreamOutcome::Failed,
        403 if rate_limit_remaining.map(str::trim) == Some("0") || retry_after.is_some() => {
            UpstreamOutcome::Failed
        }
        500..=599 => UpstreamOutcome::Failed,
        _ => UpstreamOutcome::Definitive,
    }
}

/// A cached path's copy stands in for these answers while it is young enough: a
/// refusal (a token revoked or blocked, a secondary rate limit) or a path that vanished
/// for a moment must not blank a page that showed the data minutes ago.
pub fn copy_stands_in(status: u16) -> bool {
    matches!(status, 401 | 403 | 404)
}

/// A stale copy may stand in while its last confirmation is younger than the limit.
pub fn may_serve_stale(age_ms: u64, stale_max_seconds: u64) -> bool {
    age_ms < stale_max_seconds.saturating_mul(1000)
}

/// GitHub's headers that travel with an answer and its cached copies. Never the token's
/// scopes or expiry.
pub const PASSED_HEADERS: [&str; 11] = [
    "content-type",
    "etag",
    "last-modified",
    "link",
    "location",
    "x-github-media-type",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
    "x-ratelimit-used",
];

/// A `Link` or `Location` value with the API's URLs made this service's: a client paging
/// through a proxied list keeps asking the cache, not GitHub.
pub fn rebase_link(value: &str, api_url: &str, origin: &str) -> String {
    value.replace(&format!("{api_url}/"), &format!("{origin}/"))
}

/// JSON (GitHub's `application/json` or a `+json` media type).
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(media) = content_type.and_then(|c| c.split(';').next()) else {
        return false;
    };
    let media = media.trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Only successful JSON is kept: a redirect, an error or a binary answer is relayed once.
pub fn cacheable(status: u16, content_type: Option<&str>) -> bool {
    status == 200 && is_json(content_type)
}

/// A classic token's scopes beyond public data (`X-OAuth-Scopes`): with any of them the
/// token reads private repositories, organisations or the account, and the proxy refuses
/// to relay what it fetched. No scope, or `public_repo` alone, reads public data only.
pub fn private_scopes(x_oauth_scopes: Option<&str>) -> Vec<String> {
    x_oauth_scopes
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "public_repo")
        .map(str::to_string)
        .collect()
}

/// Whether a JSON body marks anything in it private (`"private": true`, or a
/// `"visibility"` of private or internal), anywhere. A scan, not a parse: keys inside
/// JSON strings are escaped, so only real members match.
pub fn marks_private(body: &[u8]) -> bool {
    member_value_starts(body, b"\"private\"", &[b"true"])
        || member_value_starts(body, b"\"visibility\"", &[b"\"private\"", b"\"internal\""])
}

fn member_value_starts(body: &[u8], key: &[u8], values: &[&[u8]]) -> bool {
    let mut from = 0;
    while let Some(at) = body[from..].windows(key.len()).position(|w| w == key) {
        let after = from + at + key.len();
        if let [b':', rest @ ..] = skip_space(&body[after..]) {
            let value = skip_space(rest);
            if values.iter().any(|v| value.starts_with(v)) {
                return true;
            }
        }
        from = after;
    }
    false
}

/// What the token may do and what only admins see, in GitHub's objects: removed from
/// everything relayed or kept, at any depth.
const TOKEN_FIELDS: [&str; 3] = ["permissions", "role_name", "security_and_analysis"];

pub fn strip_token_fields(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for name in TOKEN_FIELDS {
                fields.remove(name);
            }
            fields.values_mut().for_each(strip_token_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_token_fields),
        _ => {}
    }
}

/// A proxied JSON answer as anyone may see it: an organisation keeps its public fields;
/// anything else loses the token's permissions and admin settings. `None`: the body is
/// already that (most are: it is parsed only when a scan finds such a field).
pub fn public_view(body: &[u8], organisation: bool) -> ApiResult<Option<Vec<u8>>> {
    if organisation {
        return public_org(body).map(|org| Some(org.into_bytes()));
    }
    let quoted = |name: &str| format!("\"{name}\"");
    if !TOKEN_FIELDS
        .iter()
        .any(|name| member_value_starts(body, quoted(name).as_bytes(), &[b""]))
    {
        return Ok(None);
    }
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::Internal("upstream answer is not JSON".into()))?;
    strip_token_fields(&mut value);
    Ok(Some(value.to_string().into_bytes()))
}

fn skip_space(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\n' | b'\r' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// An organisation as anyone sees it. With an owner's token GitHub adds the plan,
/// billing email, private repository counts and settings; none of those is kept.
pub fn public_org(body: &[u8]) -> ApiResult<String> {
    const PUBLIC: [&str; 30] = [
        "login",
        "id",
        "node_id",
        "url",
        "repos_url",
        "events_url",
        "hooks_url",
        "issues_url",
        "members_url",
        "public_members_url",
        "avatar_url",
        "description",
        "name",
        "company",
        "blog",
        "location",
        "email",
        "twitter_username",
        "is_verified",
        "has_organization_projects",
        "has_repository_projects",
        "public_repos",
        "public_gists",
        "followers",
        "following",
        "html_url",
        "created_at",
        "updated_at",
        "archived_at",
        "type",
    ];
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::Internal(
            "upstream organisation is not a JSON object".into(),
        ));
    };
    let kept: Map<String, Value> = fields
        .into_iter()
        .filter(|(k, _)| PUBLIC.contains(&k.as_str()))
        .collect();
    serde_json::to_string(&kept).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes() {
        assert_eq!(classify(200, None, None), UpstreamOutcome::Fresh);
        assert_eq!(classify(304, None, None), UpstreamOutcome::NotModified);
        assert_eq!(classify(503, None, None), UpstreamOutcome::Failed);
        assert_eq!(classify(401, None, None), UpstreamOutcome::Failed);
        assert_eq!(classify(403, Some("0"), None), UpstreamOutcome::Failed);
        assert_eq!(classify(403, Some("12"), None), UpstreamOutcome::Definitive);
        assert_eq!(classify(429, None, Some("60")), UpstreamOutcome::Failed);
        assert_eq!(classify(404, None, None), UpstreamOutcome::Definitive);
        assert_eq!(classify(302, None, None), UpstreamOutcome::Definitive);
        assert!(copy_stands_in(404) && copy_stands_in(403) && copy_stands_in(401));
        assert!(!copy_stands_in(302) && !copy_stands_in(410));
        assert!(may_serve_stale(86_399_999, 86_400));
        assert!(!may_serve_stale(86_400_000, 86_400));
    }

    #[test]
    fn links_point_back_here() {
        let link = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com.evil.test/x>; rel="last""#;
        assert_eq!(
            rebase_link(link, "https://api.github.com", "https://count.example"),
            r#"<https://count.example/repositories/1/issues?page=2>; rel="next", <https://api.github.com.evil.test/x>; rel="last""#
        );
    }

    #[test]
    fn relayed_answers_lose_the_tokens_fields() {
        let repo = br#"{"full_name":"acme/site","permissions":{"admin":true},"owner":{"role_name":"admin"}}"#;
        let view = public_view(repo, false).unwrap().unwrap();
        assert_eq!(view, br#"{"full_name":"acme/site","owner":{}}"#.to_vec());
        assert_eq!(public_view(br#"[{"id":1}]"#, false).unwrap(), None);
        let org = br#"{"login":"acme","billing_email":"x@acme.test"}"#;
        assert_eq!(
            public_view(org, true).unwrap().unwrap(),
            br#"{"login":"acme"}"#.to_vec()
        );
    }

    #[test]
    fn only_json_successes_are_cached() {
        assert!(cacheable(200, Some("application/json; charset=utf-8")));
        assert!(cacheable(200, Some("application/vnd.github+json")));
        assert!(!cacheable(200, Some("application/octet-stream")));
        assert!(!cacheable(200, Some("text/html")));
        assert!(!cacheable(200, None));
        assert!(!cacheable(302, Some("application/json")));
        assert!(!cacheable(404, Some("application/json")));
    }

    #[test]
    fn token_scopes() {
        assert!(private_scopes(None).is_empty());
        assert!(private_scopes(Some("")).is_empty());
        assert!(private_scopes(Some("public_repo")).is_empty());
        assert_eq!(private_scopes(Some("repo, user")), ["repo", "user"]);
        assert_eq!(private_scopes(Some("public_repo, read:org")), ["read:org"]);
    }

    #[test]
    fn private_markers() {
        assert!(marks_private(br#"{"id":1,"private":true}"#));
        assert!(marks_private(b"[{\"private\" :\n true}]"));
        assert!(marks_private(br#"{"visibility":"internal"}"#));
        assert!(marks_private(br#"{"parent":{"visibility": "private"}}"#));
        assert!(!marks_private(
            br#"{"private":false,"visibility":"public"}"#
        ));
        assert!(!marks_private(br#"{"body":"the \"private\": true flag"}"#));
        assert!(!marks_private(br#"{"private_gists":3}"#));
        assert!(!marks_private(b""));
    }

    #[test]
    fn organisations_keep_public_fields_only() {
        let owner_view = json!({"login": "acme", "id": 1, "public_repos": 3,
            "billing_email": "money@acme.test", "plan": {"name": "team"},
            "total_private_repos": 9, "two_factor_requirement_enabled": true});
        let kept: Value =
            serde_json::from_str(&public_org(owner_view.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(kept, json!({"login": "acme", "id": 1, "public_repos": 3}));
        assert!(public_org(b"[]").is_err());
    }
}
