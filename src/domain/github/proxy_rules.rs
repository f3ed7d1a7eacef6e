//! Which paths the proxy may send to GitHub with the operator's token, and the exact form
//! it sends. The path is decoded once, checked, and re-encoded: what is checked is what
//! GitHub receives, so `/%75ser/emails`, `//user`, `/x/../user` and `/USER` cannot slip a
//! refused path past the rules.
//!
//! Refused (404, nothing sent): data about the token's own account, installation or app;
//! organisation and repository areas only members, collaborators or admins can read; and
//! variants of public endpoints that show private events to the token's own user.

use crate::domain::page::{percent_decode, percent_encode};
use crate::error::ApiError;

/// Longest path and query the proxy forwards (GitHub's own URLs are far shorter).
pub const MAX_TARGET_BYTES: usize = 2_048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a path the proxy will ask GitHub for: the client sees 404.
    NotProxied,
    /// Malformed or too long: the client sees 400 with this reason.
    Invalid(&'static str),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::NotProxied => ApiError::NotFound,
            Refusal::Invalid(why) => ApiError::InvalidParameter(why.into()),
        }
    }
}

/// What the proxy may ask GitHub for, in the form it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `/path?query`, canonical: what GitHub receives and what the cache is keyed by.
    pub upstream: String,
    /// For a path inside a repository, the repository itself (`/repos/{o}/{r}` or
    /// `/repositories/{id}`): the proxy relays the inside only of a repository it has
    /// seen to be public, whatever the token could read.
    pub repository: Option<String>,
    /// An organisation itself (`/orgs/{org}`, `/organizations/{id}`): only its public
    /// fields are relayed.
    pub organisation: bool,
}

/// The upstream target for a proxied request, or why there is none.
pub fn proxy_target(raw_path: &str, raw_query: Option<&str>) -> Result<Target, Refusal> {
    let query = raw_query.filter(|q| !q.is_empty());
    if raw_path.len() + query.map_or(0, str::len) > MAX_TARGET_BYTES {
        return Err(Refusal::Invalid("the path and query are too long"));
    }
    if let Some(q) = query {
        if q.bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
        {
            return Err(Refusal::Invalid("the query holds characters URLs may not"));
        }
    }
    let segments = decoded_segments(raw_path)?;
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let rewrite = rule(&lower)?;
    let encoded: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| match rewrite {
            Some((at, with)) if at == i => with.to_string(),
            _ => percent_encode(segment),
        })
        .collect();
    let join = |parts: &[String]| format!("/{}", parts.join("/"));
    let repository = match lower.as_slice() {
        ["repos", _, _, _, ..] => Some(join(&encoded[..3])),
        ["repositories", _, _, ..] => Some(join(&encoded[..2])),
        _ => None,
    };
    let organisation = matches!(lower.as_slice(), ["orgs" | "organizations", _]);
    let path = join(&encoded);
    let query = match query {
        Some(q) => Some(checked_query(q, &lower)?),
        None => None,
    };
    Ok(Target {
        upstream: match query {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path,
        },
        repository,
        organisation,
    })
}

/// The query as sent: JSONP (`callback`, whose body would carry GitHub's headers, the
/// token's scopes among them) is refused; a search asks for public results only and
/// never for the token's own user (`@me`).
fn checked_query(raw: &str, segments: &[&str]) -> Result<String, Refusal> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("callback"))
    {
        return Err(Refusal::Invalid("JSONP (callback) is not proxied"));
    }
    let ["search", kind] = segments else {
        return Ok(raw.to_string());
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (key, value) in &pairs {
        let mut value = value.clone();
        if key == "q" {
            let lower = value.to_ascii_lowercase();
            if lower.contains("@me") {
                return Err(Refusal::NotProxied);
            }
            if matches!(*kind, "repositories" | "issues") && !lower.contains("is:public") {
                value.push_str(" is:public");
            }
        }
        out.push(format!(
            "{}={}",
            percent_encode(key),
            percent_encode(&value)
        ));
    }
    Ok(out.join("&"))
}

/// The path's segments, percent-decoded (`+` stays `+`: paths are not form data), with no empty, `.` or `..` segment (a trailing
/// slash is dropped) and no control characters or backslashes.
fn decoded_segments(raw: &str) -> Result<Vec<String>, Refusal> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(Refusal::NotProxied);
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/')
        .map(|encoded| {
            let bytes: Vec<u8> = percent_decode(encoded).ok_or(Refusal::NotProxied)?;
            let segment = String::from_utf8(bytes).map_err(|_| Refusal::NotProxied)?;
            let bad = segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['/', '\\'])
                || segment.chars().any(char::is_control);
            if bad {
                Err(Refusal::NotProxied)
            } else {
                Ok(segment)
            }
        })
        .collect()
}

/// Areas of the token's own account, installation or app, refused wherever they start.
const ACCOUNT_ROOTS: [&str; 10] = [
    "user",
    "notifications",
    "authorizations",
    "installation",
    "app",
    "applications",
    "marketplace_listing",
    "enterprises",
    "scim",
    "teams",
];

/// What an organisation shows anyone; the rest needs membership or ownership.
const PUBLIC_ORG_AREAS: [&str; 4] = ["repos", "members", "public_members", "events"];

/// Repository areas that need push or admin access, or show the token's own settings.
const PRIVATE_REPO_AREAS: [&str; 19] = [
    "hooks",
    "keys",
    "invitations",
    "collaborators",
    "traffic",
    "dependabot",
    "code-scanning",
    "secret-scanning",
    "vulnerability-alerts",
    "automated-security-fixes",
    "private-vulnerability-reporting",
    "security-advisories",
    "codespaces",
    "interaction-limits",
    "notifications",
    "subscription",
    "installation",
    "autolinks",
    "teams",
];

/// Parts of a repository's Actions that are settings and secrets, not public runs.
const PRIVATE_ACTIONS_AREAS: [&str; 8] = [
    "secrets",
    "variables",
    "runners",
    "runner-groups",
    "permissions",
    "oidc",
    "organization-secrets",
    "organization-variables",
];

/// Top-level areas of public data; everything else (the token's account, installation
/// and app, `/rate_limit`, an Enterprise Server's admin areas, GraphQL, …) is refused.
const PUBLIC_ROOTS: [&str; 18] = [
    "repos",
    "repositories",
    "users",
    "user",
    "orgs",
    "organizations",
    "search",
    "gists",
    "licenses",
    "emojis",
    "gitignore",
    "codes_of_conduct",
    "events",
    "meta",
    "octocat",
    "zen",
    "networks",
    "versions",
];

/// Searches whose results are public data once restricted (`is:public` where GitHub
/// would include what the token can see).
const PUBLIC_SEARCHES: [&str; 4] = ["repositories", "issues", "users", "topics"];

/// `Ok(None)`: forward as is; `Ok(Some((i, s)))`: forward with segment `i` replaced by
/// `s`; `Err`: refuse.
fn rule(segments: &[&str]) -> Result<Option<(usize, &'static str)>, Refusal> {
    let refuse = Err(Refusal::NotProxied);
    match segments {
        // The API root.
        [] => Ok(None),
        // `/user/{id}/...` (numeric) is a public user by id, as GitHub's own links use.
        ["user", id, rest @ ..] if is_id(id) => user_rule(rest),
        [root, ..] if ACCOUNT_ROOTS.contains(root) || !PUBLIC_ROOTS.contains(root) => refuse,
        // The token's own gists and starred gists.
        ["gists"] | ["gists", "starred"] => refuse,
        ["search", kind] if PUBLIC_SEARCHES.contains(kind) => Ok(None),
        ["search", ..] => refuse,
        ["orgs" | "organizations", _, rest @ ..] => match rest {
            [] => Ok(None),
            // With a member's token GitHub adds concealed members: ask for public ones.
            ["members", ..] => Ok(Some((2, "public_members"))),
            [area, ..] if PUBLIC_ORG_AREAS.contains(area) => Ok(None),
            _ => refuse,
        },
        ["users", _, rest @ ..] => user_rule(rest),
        ["repos", _, _, rest @ ..] | ["repositories", _, rest @ ..] => repo_rule(rest),
        _ => Ok(None),
    }
}

fn user_rule(rest: &[&str]) -> Result<Option<(usize, &'static str)>, Refusal> {
    match rest {
        // For the token's own user these include private events: only `/public` variants.
        ["events" | "received_events"] | ["events", "orgs", ..] => Err(Refusal::NotProxied),
        // With the owner's token, a user's gists may include secret ones.
        ["installation" | "settings" | "docker" | "gists", ..] => Err(Refusal::NotProxied),
        _ => Ok(None),
    }
}

fn repo_rule(rest: &[&str]) -> Result<Option<(usize, &'static str)>, Refusal> {
    let private = match rest {
        [area, ..] if PRIVATE_REPO_AREAS.contains(area) => true,
        ["actions", area, ..] => PRIVATE_ACTIONS_AREAS.contains(area),
        ["environments", _, "secrets" | "variables", ..] => true,
        ["branches", ..] => rest.contains(&"protection"),
        _ => false,
    };
    if private {
        Err(Refusal::NotProxied)
    } else {
        Ok(None)
    }
}

fn is_id(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str) -> bool {
        proxy_target(path, None) == Err(Refusal::NotProxied)
    }

    #[test]
    fn the_tokens_own_account_is_never_asked_for() {
        for path in [
            "/user",
            "/user/",
            "/user/emails",
            "/user/repos",
            "/USER/Emails",
            "/%75ser/emails",
            "/%55SER",
            "//user/emails",
            "/user//emails",
            "/x/../user/emails",
            "/./user",
            "/user%2Femails",
            "/notifications",
            "/notifications/threads/1",
            "/authorizations",
            "/installation/repositories",
            "/app",
            "/app/installations",
            "/applications/grants",
            "/marketplace_listing/plans",
            "/issues",
            "/gists",
            "/gists/starred",
            "/feeds",
            "/teams/1/members",
            "/enterprises/acme/audit-log",
            "/repos/acme/site/notifications",
            "/repos/acme/site/subscription",
            "/repos/acme/site/installation",
            "/users/octocat/installation",
            "/users/octocat/events",
            "/users/octocat/received_events",
            "/users/octocat/events/orgs/acme",
            "/users/octocat/settings/billing/usage",
            "/user/583231/events",
        ] {
            assert!(refused(path), "{path} must be refused");
        }
    }

    #[test]
    fn member_and_admin_areas_are_refused() {
        for path in [
            "/orgs/acme/teams",
            "/orgs/acme/hooks",
            "/orgs/acme/actions/secrets",
            "/orgs/acme/outside_collaborators",
            "/orgs/acme/invitations",
            "/orgs/acme/audit-log",
            "/orgs/acme/issues",
            "/orgs/acme/installations",
            "/orgs/acme/settings/billing/actions",
            "/organizations/1/credential-authorizations",
            "/repos/acme/site/hooks",
            "/repos/acme/site/keys",
            "/repos/acme/site/collaborators",
            "/repos/acme/site/traffic/views",
            "/repos/acme/site/actions/secrets",
            "/repos/acme/site/actions/variables/X",
            "/repos/acme/site/environments/prod/secrets",
            "/repos/acme/site/branches/main/protection",
            "/repos/acme/site/dependabot/alerts",
            "/repositories/42/hooks",
        ] {
            assert!(refused(path), "{path} must be refused");
        }
    }

    #[test]
    fn public_paths_pass_in_the_form_checked() {
        let ok = |p: &str, q: Option<&str>| proxy_target(p, q).unwrap().upstream;
        assert_eq!(ok("/", None), "/");
        assert_eq!(ok("/repos/acme/site", None), "/repos/acme/site");
        assert_eq!(ok("/repos/acme/site/", None), "/repos/acme/site");
        assert_eq!(
            ok("/repos/acme/site/issues", Some("state=open&page=2")),
            "/repos/acme/site/issues?state=open&page=2"
        );
        assert_eq!(
            ok("/repos/acme/site/contents/docs/a%20b.md", None),
            "/repos/acme/site/contents/docs/a%20b.md"
        );
        assert_eq!(
            ok("/repos/acme/site/actions/runs", None),
            "/repos/acme/site/actions/runs"
        );
        assert_eq!(
            ok("/users/octocat/events/public", None),
            "/users/octocat/events/public"
        );
        assert_eq!(
            ok("/user/583231/repos", Some("page=2")),
            "/user/583231/repos?page=2"
        );
        assert_eq!(
            ok("/organizations/9/repos", Some("page=2")),
            "/organizations/9/repos?page=2"
        );
        assert_eq!(ok("/orgs/acme", None), "/orgs/acme");
        assert_eq!(ok("/gists/abc123", None), "/gists/abc123");
        assert_eq!(ok("/search/users", Some("q=x")), "/search/users?q=x");
        // Encoded characters are re-encoded one way.
        assert_eq!(
            ok("/repos/acme/site/git/ref/heads%2Bx", None),
            "/repos/acme/site/git/ref/heads%2Bx"
        );
        assert_eq!(
            ok("/repos/acme/site/git/ref/heads+x", None),
            "/repos/acme/site/git/ref/heads%2Bx"
        );
    }

    #[test]
    fn members_are_asked_for_as_public_members() {
        assert_eq!(
            proxy_target("/orgs/acme/members", Some("page=2"))
                .unwrap()
                .upstream,
            "/orgs/acme/public_members?page=2"
        );
        assert_eq!(
            proxy_target("/orgs/Acme/Members/octocat", None)
                .unwrap()
                .upstream,
            "/orgs/Acme/public_members/octocat"
        );
    }

    #[test]
    fn only_public_areas_and_public_searches() {
        for path in [
            "/rate_limit",
            "/graphql",
            "/enterprise/stats/all",
            "/admin/keys",
            "/setup/api/settings",
            "/users/octocat/gists",
            "/search/code",
            "/search/commits",
            "/search/labels",
        ] {
            assert!(refused(path), "{path} must be refused");
        }
        assert_eq!(
            proxy_target("/search/issues", Some("q=involves:@ME")),
            Err(Refusal::NotProxied)
        );
        let search = proxy_target("/search/issues", Some("q=org%3Aacme+bug&per_page=5")).unwrap();
        assert_eq!(
            search.upstream,
            "/search/issues?q=org%3Aacme%20bug%20is%3Apublic&per_page=5"
        );
        // The canonical form is a fixed point: the object checks it again.
        let (path, query) = search.upstream.split_once('?').unwrap();
        assert_eq!(proxy_target(path, Some(query)).unwrap(), search);
        assert!(matches!(
            proxy_target("/repos/acme/site", Some("callback=steal")),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn inside_a_repository_names_the_repository() {
        let inside = proxy_target("/repos/Acme/Site/contents/.env", None).unwrap();
        assert_eq!(inside.repository.as_deref(), Some("/repos/Acme/Site"));
        let by_id = proxy_target("/repositories/42/issues", Some("page=2")).unwrap();
        assert_eq!(by_id.repository.as_deref(), Some("/repositories/42"));
        assert_eq!(
            proxy_target("/repos/acme/site", None).unwrap().repository,
            None
        );
        assert!(proxy_target("/orgs/acme", None).unwrap().organisation);
        assert!(!proxy_target("/orgs/acme/repos", None).unwrap().organisation);
    }

    #[test]
    fn malformed_targets() {
        assert!(refused("/repos/acme/x%zz"));
        assert!(refused("/repos/acme/x%ff"));
        assert!(refused("/repos/acme/x%00"));
        assert!(refused("/repos/acme/x%5C..%5Cuser"));
        assert!(refused("no-slash"));
        let long = format!("/repos/acme/{}", "a".repeat(MAX_TARGET_BYTES));
        assert!(matches!(
            proxy_target(&long, None),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            proxy_target("/x", Some("a b")),
            Err(Refusal::Invalid(_))
        ));
    }
}
