//! The routing table: which path and method is which operation, who may call it, and the
//! 404 / 405 answers for everything else. Pure, so the whole table is tested natively.

use crate::domain::ids::{CounterId, TenantId};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Callable from any browser: rate-limited and CORS-enabled.
    Public,
    /// Needs the administrator key.
    Admin,
    /// Operational endpoints: neither limited nor authenticated.
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    CreateTenant,
    GetTenant(TenantId),
    CreateCounter(TenantId),
    ListCounters(TenantId),
    GetCounter(TenantId, CounterId),
    Increment(TenantId, CounterId),
    SetValue(TenantId, CounterId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Other,
}

impl Method {
    pub fn parse(raw: &str) -> Method {
        match raw {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    /// The path pattern, for logs: ids never appear in it.
    pub pattern: &'static str,
    pub access: Access,
}

/// A path that exists, before its method is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pattern: &'static str,
    get: Option<(Route, Access)>,
    post: Option<(Route, Access)>,
}

impl Resource {
    pub fn pattern(&self) -> &'static str {
        self.pattern
    }

    /// The methods this path answers, for `Allow` and preflight answers.
    pub fn allow(&self) -> Vec<&'static str> {
        let mut allow = Vec::with_capacity(4);
        if self.get.is_some() {
            allow.extend(["GET", "HEAD"]);
        }
        if self.post.is_some() {
            allow.push("POST");
        }
        allow.push("OPTIONS");
        allow
    }

    /// True when some method of this path is callable from browsers.
    pub fn is_public(&self) -> bool {
        [self.get, self.post]
            .iter()
            .flatten()
            .any(|(_, a)| *a == Access::Public)
    }

    pub fn select(&self, method: Method) -> ApiResult<Matched> {
        let chosen = match method {
            Method::Get | Method::Head => self.get,
            Method::Post => self.post,
            Method::Options | Method::Other => None,
        };
        chosen
            .map(|(route, access)| Matched {
                route,
                pattern: self.pattern,
                access,
            })
            .ok_or_else(|| ApiError::MethodNotAllowed {
                allow: self.allow(),
            })
    }
}

/// Finds the resource at `path` (as it appears in the URL, without the query). Ids are
/// parsed here, so a bad id is INVALID_UUID and no handler ever sees one.
pub fn resolve(path: &str) -> ApiResult<Resource> {
    use Access::*;
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let tenant = |raw: &str| TenantId::parse(raw);
    let counter = |raw: &str| CounterId::parse(raw);
    let resource = |pattern, get, post| Ok(Resource { pattern, get, post });
    match segments.as_slice() {
        ["healthz"] => resource("/healthz", Some((Route::Health, Open)), None),
        ["healthcheck"] => resource("/healthcheck", Some((Route::Health, Open)), None),
        ["tenants"] => resource("/tenants", None, Some((Route::CreateTenant, Admin))),
        ["tenants", t] => {
            let t = tenant(t)?;
            resource(
                "/tenants/{tenant_id}",
                Some((Route::GetTenant(t), Public)),
                Some((Route::CreateCounter(t), Admin)),
            )
        }
        ["tenants", t, "counters"] => {
            let t = tenant(t)?;
            resource(
                "/tenants/{tenant_id}/counters",
                Some((Route::ListCounters(t), Admin)),
                Some((Route::CreateCounter(t), Admin)),
            )
        }
        ["tenants", t, "counters", c] | ["tenants", t, c] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            resource(
                "/tenants/{tenant_id}/{counter_id}",
                Some((Route::GetCounter(t, c), Public)),
                None,
            )
        }
        ["tenants", t, "counters", c, "inc"] | ["tenants", t, c, "inc"] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            resource(
                "/tenants/{tenant_id}/{counter_id}/inc",
                None,
                Some((Route::Increment(t, c), Public)),
            )
        }
        ["tenants", t, "counters", c, "set"] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            resource(
                "/tenants/{tenant_id}/counters/{counter_id}/set",
                None,
                Some((Route::SetValue(t, c), Admin)),
            )
        }
        _ => Err(ApiError::NotFound),
    }
}

/// The path and query of an absolute URL, without parsing the rest: the runtime hands
/// over URLs it has already parsed, and the hot path should not pay to parse them again.
pub fn path_and_query(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let target = &after_scheme[path_start..];
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
    const C: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6c";

    fn route(method: &str, path: &str) -> ApiResult<Matched> {
        resolve(path)?.select(Method::parse(method))
    }

    #[test]
    fn every_v1_route_and_alias() {
        let t = TenantId::parse(T).unwrap();
        let c = CounterId::parse(C).unwrap();
        let cases = [
            (
                "POST",
                "/tenants".to_string(),
                Route::CreateTenant,
                Access::Admin,
            ),
            (
                "GET",
                format!("/tenants/{T}"),
                Route::GetTenant(t),
                Access::Public,
            ),
            (
                "POST",
                format!("/tenants/{T}"),
                Route::CreateCounter(t),
                Access::Admin,
            ),
            (
                "POST",
                format!("/tenants/{T}/counters"),
                Route::CreateCounter(t),
                Access::Admin,
            ),
            (
                "GET",
                format!("/tenants/{T}/counters"),
                Route::ListCounters(t),
                Access::Admin,
            ),
            (
                "GET",
                format!("/tenants/{T}/{C}"),
                Route::GetCounter(t, c),
                Access::Public,
            ),
            (
                "GET",
                format!("/tenants/{T}/counters/{C}"),
                Route::GetCounter(t, c),
                Access::Public,
            ),
            (
                "HEAD",
                format!("/tenants/{T}/{C}"),
                Route::GetCounter(t, c),
                Access::Public,
            ),
            (
                "POST",
                format!("/tenants/{T}/{C}/inc"),
                Route::Increment(t, c),
                Access::Public,
            ),
            (
                "POST",
                format!("/tenants/{T}/counters/{C}/inc"),
                Route::Increment(t, c),
                Access::Public,
            ),
            (
                "POST",
                format!("/tenants/{T}/counters/{C}/set"),
                Route::SetValue(t, c),
                Access::Admin,
            ),
            ("GET", "/healthz".to_string(), Route::Health, Access::Open),
            (
                "GET",
                "/healthcheck/".to_string(),
                Route::Health,
                Access::Open,
            ),
        ];
        for (method, path, expected, access) in cases {
            let m = route(method, &path).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!((m.route, m.access), (expected, access), "{method} {path}");
            assert!(!m.pattern.contains(T));
        }
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        let err = route("DELETE", &format!("/tenants/{T}/{C}/inc")).unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                allow: vec!["POST", "OPTIONS"]
            }
        );
        let err = route("PUT", &format!("/tenants/{T}")).unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                allow: vec!["GET", "HEAD", "POST", "OPTIONS"]
            }
        );
        assert_eq!(route("GET", "/tenants").unwrap_err().status(), 405);
    }

    #[test]
    fn unknown_paths_and_bad_ids() {
        for path in [
            "/",
            "",
            "/nope",
            "/tenants/x/y/z/w/v",
            &format!("/tenants/{T}/{C}/dec"),
            "//tenants",
        ] {
            assert_eq!(resolve(path).unwrap_err(), ApiError::NotFound, "{path}");
        }
        assert_eq!(resolve("/tenants/nope").unwrap_err().code(), "INVALID_UUID");
        assert_eq!(
            resolve(&format!("/tenants/{T}/nope/inc"))
                .unwrap_err()
                .code(),
            "INVALID_UUID"
        );
        assert_eq!(
            resolve(&format!("/tenants/{T}/counters/x/set"))
                .unwrap_err()
                .code(),
            "INVALID_UUID"
        );
    }

    #[test]
    fn publicness_drives_cors() {
        assert!(resolve(&format!("/tenants/{T}")).unwrap().is_public());
        assert!(!resolve("/tenants").unwrap().is_public());
    }

    #[test]
    fn splits_urls_without_a_parser() {
        assert_eq!(
            path_and_query("https://counter/inc?t=1&d=2"),
            ("/inc", Some("t=1&d=2"))
        );
        assert_eq!(path_and_query("https://counter/read"), ("/read", None));
        assert_eq!(path_and_query("https://counter"), ("", None));
        assert_eq!(path_and_query("https://counter/set?"), ("/set", Some("")));
    }
}
