//! The routing table: which path and method is which operation, who may call it, and the
//! 404 / 405 answers for everything else. Pure, so the whole table is tested natively.

use crate::domain::access::{Need, Scope};
use crate::domain::ids::{CounterId, CredentialId, TenantId};
use crate::domain::page::PageId;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A public read, callable from any browser: braked per client at the edge (no
    /// object hop), CORS-enabled.
    Public,
    /// A public request that counts: admitted against the client's budget inside the
    /// object it counts, CORS-enabled.
    Counting,
    /// A badge: an image that always renders, whoever asks and however often; counting
    /// badges spend the budget of the object they count.
    Badge,
    /// Needs an administrator key.
    Admin,
    /// An administrator key, or a key of the path's tenant with this scope.
    Scoped(Scope),
    /// Operational endpoints: neither limited nor authenticated.
    Open,
}

impl Access {
    /// What the authorization step asks of the caller.
    pub fn need(self) -> Need {
        match self {
            Access::Admin => Need::Admin,
            Access::Scoped(scope) => Need::Scope(scope),
            Access::Public | Access::Counting | Access::Badge | Access::Open => Need::Nothing,
        }
    }

    /// Callable from browsers on any site: CORS applies.
    pub fn is_public(self) -> bool {
        matches!(self, Access::Public | Access::Counting | Access::Badge)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    CreateTenant,
    GetTenant(TenantId),
    UpdateTenant(TenantId),
    CreateCounter(TenantId),
    ListCounters(TenantId),
    GetCounter(TenantId, CounterId),
    Increment(TenantId, CounterId),
    SetValue(TenantId, CounterId),
    Visit(TenantId, PageId),
    GetPage(TenantId, PageId),
    DeletePage(TenantId, PageId),
    PageHistory(TenantId, PageId),
    Stats(TenantId),
    Export(TenantId),
    Import(TenantId),
    /// The migration routes, on the default tenant.
    LegacyCounterIncrement,
    LegacyCounterRead,
    WebCounterIncrement,
    WebCounterRead,
    VisitorGetCounter,
    LegacyVisit(PageId),
    LegacyVisits(PageId),
    CounterBadge(TenantId, CounterId),
    PageBadge(TenantId, PageId),
    /// V2: keyed mutations, reads and the operation history.
    V2Increment(TenantId, CounterId),
    V2Set(TenantId, CounterId),
    V2GetCounter(TenantId, CounterId),
    Operations(TenantId, CounterId),
    /// Credentials of a tenant, or (`None`) the managed administrator keys.
    CreateCredential(Option<TenantId>),
    ListCredentials(TenantId),
    RotateCredential(Option<TenantId>, CredentialId),
    RevokeCredential(Option<TenantId>, CredentialId),
    Reconcile,
    /// A GitHub API path: cached from KV when the refresh keeps it, else proxied.
    GitHub,
    /// `/view/top/{N}/{field}`, raw: checked by the handler (the feature may be off).
    GitHubView(String, String),
}

impl Route {
    /// Served by the annex Worker: heavy, rarely asked, and kept out of the edge
    /// Worker's bundle (ARCHITECTURE.md, two Workers). The GitHub routes only while the
    /// cache is on: off, the edge answers their 404 without a second invocation.
    pub fn in_annex(&self, github_enabled: bool) -> bool {
        match self {
            Route::Stats(_) | Route::Export(_) | Route::Import(_) => true,
            Route::GitHub | Route::GitHubView(..) => github_enabled,
            _ => false,
        }
    }

    /// The tenant a route acts on, when its path names one.
    pub fn tenant(&self) -> Option<TenantId> {
        match self {
            Route::GetTenant(t)
            | Route::UpdateTenant(t)
            | Route::CreateCounter(t)
            | Route::ListCounters(t)
            | Route::GetCounter(t, _)
            | Route::Increment(t, _)
            | Route::SetValue(t, _)
            | Route::Visit(t, _)
            | Route::GetPage(t, _)
            | Route::DeletePage(t, _)
            | Route::PageHistory(t, _)
            | Route::Stats(t)
            | Route::Export(t)
            | Route::Import(t)
            | Route::CounterBadge(t, _)
            | Route::PageBadge(t, _)
            | Route::V2Increment(t, _)
            | Route::V2Set(t, _)
            | Route::V2GetCounter(t, _)
            | Route::Operations(t, _)
            | Route::ListCredentials(t) => Some(*t),
            Route::CreateCredential(t)
            | Route::RotateCredential(t, _)
            | Route::RevokeCredential(t, _) => *t,
            Route::Health
            | Route::CreateTenant
            | Route::LegacyCounterIncrement
            | Route::LegacyCounterRead
            | Route::WebCounterIncrement
            | Route::WebCounterRead
            | Route::VisitorGetCounter
            | Route::LegacyVisit(_)
            | Route::LegacyVisits(_)
            | Route::GitHub
            | Route::GitHubView(..)
            | Route::Reconcile => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(raw: &str) -> Method {
        match raw {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    /// The path pattern, for logs: ids never appear in it.
    pub pattern: &'static str,
    pub access: Access,
}

/// A path that exists, before its method is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pattern: &'static str,
    get: Option<(Route, Access)>,
    post: Option<(Route, Access)>,
    patch: Option<(Route, Access)>,
    delete: Option<(Route, Access)>,
}

impl Resource {
    fn at(pattern: &'static str) -> Self {
        Resource {
            pattern,
            ..Resource::default()
        }
    }

    fn get(mut self, route: Route, access: Access) -> Self {
        self.get = Some((route, access));
        self
    }

    fn post(mut self, route: Route, access: Access) -> Self {
        self.post = Some((route, access));
        self
    }

    fn patch(mut self, route: Route, access: Access) -> Self {
        self.patch = Some((route, access));
        self
    }

    fn delete(mut self, route: Route, access: Access) -> Self {
        self.delete = Some((route, access));
        self
    }

    fn routes(&self) -> impl Iterator<Item = &(Route, Access)> {
        [&self.get, &self.post, &self.patch, &self.delete]
            .into_iter()
            .flatten()
    }

    pub fn pattern(&self) -> &'static str {
        self.pattern
    }

    /// The methods this path answers, for `Allow` and preflight answers.
    pub fn allow(&self) -> Vec<&'static str> {
        let mut allow = Vec::with_capacity(5);
        if self.get.is_some() {
            allow.extend(["GET", "HEAD"]);
        }
        if self.post.is_some() {
            allow.push("POST");
        }
        if self.patch.is_some() {
            allow.push("PATCH");
        }
        if self.delete.is_some() {
            allow.push("DELETE");
        }
        allow.push("OPTIONS");
        allow
    }

    /// The tenant this path belongs to, if any (every route of one path shares it).
    pub fn tenant(&self) -> Option<TenantId> {
        self.routes().find_map(|(route, _)| route.tenant())
    }

    /// True when this path is a badge (an image for any page).
    pub fn is_badge(&self) -> bool {
        self.routes().all(|(_, a)| *a == Access::Badge)
    }

    /// True when the annex Worker answers this path (`Route::in_annex`; every route of
    /// one path lives in the same Worker).
    pub fn in_annex(&self, github_enabled: bool) -> bool {
        self.routes()
            .any(|(route, _)| route.in_annex(github_enabled))
    }

    /// True when some method of this path is callable from browsers.
    pub fn is_public(&self) -> bool {
        self.routes().any(|(_, a)| a.is_public())
    }

    pub fn select(self, method: Method) -> ApiResult<Matched> {
        let allow = self.allow();
        let chosen = match method {
            Method::Get | Method::Head => self.get,
            Method::Post => self.post,
            Method::Patch => self.patch,
            Method::Delete => self.delete,
            Method::Options | Method::Other => None,
        };
        chosen
            .map(|(route, access)| Matched {
                route,
                pattern: self.pattern,
                access,
            })
            .ok_or(ApiError::MethodNotAllowed { allow })
    }
}

/// Finds the resource at `path` (as it appears in the URL, without the query). Ids are
/// parsed here, so a bad id is INVALID_UUID, a bad page id INVALID_PARAMETER, and no
/// handler ever sees one.
pub fn resolve(path: &str) -> ApiResult<Resource> {
    use Access::*;
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let tenant = |raw: &str| TenantId::parse(raw);
    let counter = |raw: &str| CounterId::parse(raw);
    let page = |raw: &str| PageId::from_segment(raw);
    let credential = |raw: &str| CredentialId::parse(raw);
    Ok(match segments.as_slice() {
        ["healthz"] => Resource::at("/healthz").get(Route::Health, Open),
        ["healthcheck"] => Resource::at("/healthcheck").get(Route::Health, Open),
        ["tenants"] => Resource::at("/tenants").post(Route::CreateTenant, Admin),
        ["tenants", t] => {
            let t = tenant(t)?;
            Resource::at("/tenants/{tenant_id}")
                .get(Route::GetTenant(t), Public)
                .post(Route::CreateCounter(t), Scoped(Scope::CounterCreate))
                .patch(Route::UpdateTenant(t), Admin)
        }
        ["tenants", t, "counters"] => {
            let t = tenant(t)?;
            Resource::at("/tenants/{tenant_id}/counters")
                .get(Route::ListCounters(t), Scoped(Scope::CounterRead))
                .post(Route::CreateCounter(t), Scoped(Scope::CounterCreate))
        }
        ["tenants", t, "pages", p, "badge.svg"] => {
            Resource::at("/tenants/{tenant_id}/pages/{page_id}/badge.svg")
                .get(Route::PageBadge(tenant(t)?, page(p)?), Badge)
        }
        // Before the counter badge: a page may be named `badge.svg`.
        ["tenants", t, "pages", p] => {
            let (t, p) = (tenant(t)?, page(p)?);
            Resource::at("/tenants/{tenant_id}/pages/{page_id}")
                .get(Route::GetPage(t, p.clone()), Public)
                .delete(Route::DeletePage(t, p), Admin)
        }
        ["tenants", t, c, "badge.svg"] | ["tenants", t, "counters", c, "badge.svg"] => {
            Resource::at("/tenants/{tenant_id}/{counter_id}/badge.svg")
                .get(Route::CounterBadge(tenant(t)?, counter(c)?), Badge)
        }
        ["tenants", t, "pages", p, "visit"] => {
            Resource::at("/tenants/{tenant_id}/pages/{page_id}/visit")
                .post(Route::Visit(tenant(t)?, page(p)?), Counting)
        }
        ["tenants", t, "pages", p, "history"] => {
            Resource::at("/tenants/{tenant_id}/pages/{page_id}/history")
                .get(Route::PageHistory(tenant(t)?, page(p)?), Public)
        }
        ["tenants", t, "stats"] => Resource::at("/tenants/{tenant_id}/stats")
            .get(Route::Stats(tenant(t)?), Scoped(Scope::TenantRead)),
        ["tenants", t, "export"] => Resource::at("/tenants/{tenant_id}/export")
            .get(Route::Export(tenant(t)?), Scoped(Scope::TenantExport)),
        ["tenants", t, "import"] => {
            Resource::at("/tenants/{tenant_id}/import").post(Route::Import(tenant(t)?), Admin)
        }
        ["tenants", t, "counters", c] | ["tenants", t, c] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            Resource::at("/tenants/{tenant_id}/{counter_id}").get(Route::GetCounter(t, c), Public)
        }
        ["tenants", t, "counters", c, "inc"] | ["tenants", t, c, "inc"] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            Resource::at("/tenants/{tenant_id}/{counter_id}/inc")
                .post(Route::Increment(t, c), Counting)
        }
        ["tenants", t, "counters", c, "set"] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            Resource::at("/tenants/{tenant_id}/counters/{counter_id}/set")
                .post(Route::SetValue(t, c), Scoped(Scope::CounterAdjust))
        }
        ["v2", "tenants", t, "counters", c, rest @ ..] => {
            let (t, c) = (tenant(t)?, counter(c)?);
            match rest {
                [] => Resource::at("/v2/tenants/{tenant_id}/counters/{counter_id}")
                    .get(Route::V2GetCounter(t, c), Scoped(Scope::CounterRead)),
                ["inc"] => Resource::at("/v2/tenants/{tenant_id}/counters/{counter_id}/inc")
                    .post(Route::V2Increment(t, c), Scoped(Scope::CounterIncrement)),
                ["set"] => Resource::at("/v2/tenants/{tenant_id}/counters/{counter_id}/set")
                    .post(Route::V2Set(t, c), Scoped(Scope::CounterAdjust)),
                ["operations"] => {
                    Resource::at("/v2/tenants/{tenant_id}/counters/{counter_id}/operations")
                        .get(Route::Operations(t, c), Scoped(Scope::CounterHistory))
                }
                _ => return Err(ApiError::NotFound),
            }
        }
        ["v2", "tenants", t, "credentials"] => {
            let t = tenant(t)?;
            Resource::at("/v2/tenants/{tenant_id}/credentials")
                .get(Route::ListCredentials(t), Admin)
                .post(Route::CreateCredential(Some(t)), Admin)
        }
        ["v2", "tenants", t, "credentials", id, "rotate"] => {
            Resource::at("/v2/tenants/{tenant_id}/credentials/{credential_id}/rotate").post(
                Route::RotateCredential(Some(tenant(t)?), credential(id)?),
                Admin,
            )
        }
        ["v2", "tenants", t, "credentials", id, "revoke"] => {
            Resource::at("/v2/tenants/{tenant_id}/credentials/{credential_id}/revoke").post(
                Route::RevokeCredential(Some(tenant(t)?), credential(id)?),
                Admin,
            )
        }
        ["v2", "admin", "credentials"] => {
            Resource::at("/v2/admin/credentials").post(Route::CreateCredential(None), Admin)
        }
        ["v2", "admin", "credentials", id, "rotate"] => {
            Resource::at("/v2/admin/credentials/{credential_id}/rotate")
                .post(Route::RotateCredential(None, credential(id)?), Admin)
        }
        ["v2", "admin", "credentials", id, "revoke"] => {
            Resource::at("/v2/admin/credentials/{credential_id}/revoke")
                .post(Route::RevokeCredential(None, credential(id)?), Admin)
        }
        ["v2", "admin", "reconcile"] => {
            Resource::at("/v2/admin/reconcile").get(Route::Reconcile, Admin)
        }
        ["api", "v1", "counter"] => Resource::at("/api/v1/counter")
            .get(Route::LegacyCounterRead, Public)
            .post(Route::LegacyCounterIncrement, Counting),
        ["web-counter", "increment"] => Resource::at("/web-counter/increment")
            .get(Route::WebCounterIncrement, Counting)
            .post(Route::WebCounterIncrement, Counting),
        ["web-counter"] => Resource::at("/web-counter/").get(Route::WebCounterRead, Public),
        ["api", "v1", "visitor", "getCounter"] => {
            Resource::at("/api/v1/visitor/getCounter").get(Route::VisitorGetCounter, Public)
        }
        ["visit", p] => {
            Resource::at("/visit/{page_id}").post(Route::LegacyVisit(page(p)?), Counting)
        }
        ["visits", p] => {
            Resource::at("/visits/{page_id}").get(Route::LegacyVisits(page(p)?), Public)
        }
        ["view", "top", n, field] => Resource::at("/view/top/{n}/{field}")
            .get(Route::GitHubView(n.to_string(), field.to_string()), Public),
        // The API root and organisations are GitHub's (404 when the cache is off).
        [""] | ["orgs", ..] => github_proxy(),
        _ => return Err(ApiError::NotFound),
    })
}

/// `resolve`, and with the GitHub cache on, every other path is GitHub's.
pub fn resolve_with(path: &str, github_enabled: bool) -> ApiResult<Resource> {
    match resolve(path) {
        Err(ApiError::NotFound) if github_enabled => Ok(github_proxy()),
        other => other,
    }
}

/// Any other GET path, when the GitHub cache is on: proxied to (or cached from) GitHub.
pub fn github_proxy() -> Resource {
    Resource::at("/{github path}").get(Route::GitHub, Access::Public)
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

/// One decoded query parameter of an absolute URL (the first, if repeated).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, query) = path_and_query(url);
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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
                Access::Scoped(Scope::CounterCreate),
            ),
            (
                "POST",
                format!("/tenants/{T}/counters"),
                Route::CreateCounter(t),
                Access::Scoped(Scope::CounterCreate),
            ),
            (
                "GET",
                format!("/tenants/{T}/counters"),
                Route::ListCounters(t),
                Access::Scoped(Scope::CounterRead),
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
                Access::Counting,
            ),
            (
                "POST",
                format!("/tenants/{T}/counters/{C}/inc"),
                Route::Increment(t, c),
                Access::Counting,
            ),
            (
                "POST",
                format!("/tenants/{T}/counters/{C}/set"),
                Route::SetValue(t, c),
                Access::Scoped(Scope::CounterAdjust),
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
    fn every_v2_route() {
        let t = TenantId::parse(T).unwrap();
        let c = CounterId::parse(C).unwrap();
        const K: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6d";
        let k = CredentialId::parse(K).unwrap();
        let cases = [
            (
                "POST",
                format!("/v2/tenants/{T}/counters/{C}/inc"),
                Route::V2Increment(t, c),
                Access::Scoped(Scope::CounterIncrement),
            ),
            (
                "POST",
                format!("/v2/tenants/{T}/counters/{C}/set"),
                Route::V2Set(t, c),
                Access::Scoped(Scope::CounterAdjust),
            ),
            (
                "GET",
                format!("/v2/tenants/{T}/counters/{C}"),
                Route::V2GetCounter(t, c),
                Access::Scoped(Scope::CounterRead),
            ),
            (
                "GET",
                format!("/v2/tenants/{T}/counters/{C}/operations"),
                Route::Operations(t, c),
                Access::Scoped(Scope::CounterHistory),
            ),
            (
                "POST",
                format!("/v2/tenants/{T}/credentials"),
                Route::CreateCredential(Some(t)),
                Access::Admin,
            ),
            (
                "GET",
                format!("/v2/tenants/{T}/credentials"),
                Route::ListCredentials(t),
                Access::Admin,
            ),
            (
                "POST",
                format!("/v2/tenants/{T}/credentials/{K}/rotate"),
                Route::RotateCredential(Some(t), k),
                Access::Admin,
            ),
            (
                "POST",
                format!("/v2/tenants/{T}/credentials/{K}/revoke"),
                Route::RevokeCredential(Some(t), k),
                Access::Admin,
            ),
            (
                "POST",
                "/v2/admin/credentials".to_string(),
                Route::CreateCredential(None),
                Access::Admin,
            ),
            (
                "POST",
                format!("/v2/admin/credentials/{K}/rotate"),
                Route::RotateCredential(None, k),
                Access::Admin,
            ),
            (
                "POST",
                format!("/v2/admin/credentials/{K}/revoke"),
                Route::RevokeCredential(None, k),
                Access::Admin,
            ),
            (
                "GET",
                "/v2/admin/reconcile".to_string(),
                Route::Reconcile,
                Access::Admin,
            ),
        ];
        for (method, path, expected, access) in cases {
            let m = route(method, &path).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!((m.route, m.access), (expected, access), "{method} {path}");
        }
        assert_eq!(
            route("GET", &format!("/v2/tenants/{T}/counters/{C}/nope")).unwrap_err(),
            ApiError::NotFound
        );
        assert_eq!(
            route("POST", "/v2/admin/credentials/nope/revoke")
                .unwrap_err()
                .code(),
            "INVALID_UUID"
        );
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
                allow: vec!["GET", "HEAD", "POST", "PATCH", "OPTIONS"]
            }
        );
        assert_eq!(route("GET", "/tenants").unwrap_err().status(), 405);
    }

    #[test]
    fn unknown_paths_and_bad_ids() {
        for path in [
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
    fn pages_and_migration_routes() {
        let t = TenantId::parse(T).unwrap();
        let p = PageId::new("/posts/hello".into()).unwrap();
        let m = route(
            "POST",
            &format!("/tenants/{T}/pages/%2Fposts%2Fhello/visit"),
        )
        .unwrap();
        assert_eq!(
            (m.route, m.access),
            (Route::Visit(t, p.clone()), Access::Counting)
        );
        let m = route("DELETE", &format!("/tenants/{T}/pages/%2Fposts%2Fhello")).unwrap();
        assert_eq!(
            (m.route, m.access),
            (Route::DeletePage(t, p.clone()), Access::Admin)
        );
        let m = route(
            "GET",
            &format!("/tenants/{T}/pages/%2Fposts%2Fhello/history"),
        )
        .unwrap();
        assert_eq!(m.route, Route::PageHistory(t, p.clone()));
        assert_eq!(
            route("PATCH", &format!("/tenants/{T}")).unwrap().route,
            Route::UpdateTenant(t)
        );
        assert_eq!(
            route("GET", "/web-counter/").unwrap().route,
            Route::WebCounterRead
        );
        assert_eq!(
            route("GET", "/web-counter/increment").unwrap().route,
            Route::WebCounterIncrement
        );
        assert_eq!(
            route("POST", "/web-counter/increment").unwrap().route,
            Route::WebCounterIncrement
        );
        assert_eq!(
            route("POST", "/api/v1/counter").unwrap().route,
            Route::LegacyCounterIncrement
        );
        assert_eq!(
            route("GET", "/api/v1/visitor/getCounter").unwrap().route,
            Route::VisitorGetCounter
        );
        assert_eq!(
            route("POST", "/visit/home").unwrap().route,
            Route::LegacyVisit(PageId::new("home".into()).unwrap())
        );
        assert_eq!(
            route("GET", "/visits/home").unwrap().route,
            Route::LegacyVisits(PageId::new("home".into()).unwrap())
        );
        for bad in [
            "/visit/%zz",
            "/visit/a%00",
            &format!("/tenants/{T}/pages/{}/visit", "a".repeat(513)),
        ] {
            assert_eq!(
                resolve(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad}"
            );
        }
    }

    #[test]
    fn embed_routes() {
        let t = TenantId::parse(T).unwrap();
        let c = CounterId::parse(C).unwrap();
        assert_eq!(
            route("GET", &format!("/tenants/{T}/{C}/badge.svg"))
                .unwrap()
                .route,
            Route::CounterBadge(t, c)
        );
        assert_eq!(
            route("GET", &format!("/tenants/{T}/counters/{C}/badge.svg"))
                .unwrap()
                .route,
            Route::CounterBadge(t, c)
        );
        assert_eq!(
            route("GET", &format!("/tenants/{T}/pages/%2Fa/badge.svg"))
                .unwrap()
                .route,
            Route::PageBadge(t, PageId::new("/a".into()).unwrap())
        );
        // A page may be called badge.svg; it is a page, not a counter's badge.
        assert_eq!(
            route("GET", &format!("/tenants/{T}/pages/badge.svg"))
                .unwrap()
                .route,
            Route::GetPage(t, PageId::new("badge.svg".into()).unwrap())
        );
        assert_eq!(
            route("GET", &format!("/tenants/{T}/{C}/badge.svg"))
                .unwrap()
                .access,
            Access::Badge
        );
    }

    #[test]
    fn github_paths() {
        assert_eq!(route("GET", "/").unwrap().route, Route::GitHub);
        assert_eq!(
            route("GET", "/orgs/acme/repos").unwrap().route,
            Route::GitHub
        );
        assert_eq!(
            route("GET", "/view/top/3/stars").unwrap().route,
            Route::GitHubView("3".into(), "stars".into())
        );
        assert_eq!(route("POST", "/orgs/acme").unwrap_err().status(), 405);
    }

    #[test]
    fn the_annex_answers_stats_transfers_and_github() {
        let in_annex =
            |path: &str, github: bool| resolve_with(path, github).is_ok_and(|r| r.in_annex(github));
        for path in [
            format!("/tenants/{T}/stats"),
            format!("/tenants/{T}/export"),
            format!("/tenants/{T}/import"),
        ] {
            assert!(in_annex(&path, false), "{path}");
        }
        for path in [
            "/view/top/3/stars",
            "/orgs/acme/repos",
            "/",
            "/repos/acme/widgets",
        ] {
            assert!(in_annex(path, true), "{path}");
            // The cache off: the edge answers their 404 itself.
            assert!(!in_annex(path, false), "{path}");
        }
        for path in [
            format!("/tenants/{T}"),
            format!("/tenants/{T}/{C}/inc"),
            format!("/tenants/{T}/pages/p/visit"),
            format!("/tenants/{T}/pages/stats"),
            "/healthz".into(),
            "/v2/admin/reconcile".into(),
        ] {
            assert!(!in_annex(&path, true), "{path}");
        }
        // A malformed id is refused by the edge itself.
        assert_eq!(
            resolve_with("/tenants/not-a-uuid/stats", true)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn publicness_drives_cors() {
        assert!(resolve(&format!("/tenants/{T}")).unwrap().is_public());
        assert!(!resolve("/tenants").unwrap().is_public());
    }

    #[test]
    fn reads_query_parameters() {
        assert_eq!(
            query_param("https://x/a?path=%2Forgs%2Facme&b=2", "path").as_deref(),
            Some("/orgs/acme")
        );
        assert_eq!(query_param("https://x/a?b=2", "path"), None);
        assert_eq!(query_param("https://x/a", "path"), None);
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
